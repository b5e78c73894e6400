"""Reference statistics of a dataset split, cached on disk, and evaluation of images against them."""
import dataclasses
import os
from typing import Dict, Optional, Sequence

from absl import logging
import numpy as np

from gan_jax.data import in_memory
from gan_jax.data import sources
from gan_jax import files
from gan_jax import user_cache
from gan_jax.errors import UserError
from gan_jax.metrics import classes
from gan_jax.metrics import inception as inception_lib
from gan_jax.metrics import scores
from gan_jax.metrics import vgg as vgg_lib

# Names the feature extractor and input protocol in cache file names, so that statistics computed under
# another protocol are never mixed up with these.
PROTOCOL = "inception-2015-12-05-pool3_tf-bilinear-299"
ALL_METRICS = ("fid", "kid", "is", "pr", "probe", "intra_fid")
# Images per chunk (in batches) when two networks (Inception, VGG-16) embed the same images.
_CHUNK_BATCHES = 4
# Seed of the fixed random subset of a split that reference_size selects; part of the cache name.
SUBSET_SEED = 0


@dataclasses.dataclass(frozen=True)
class ReferenceStatistics:
  """Inception pool3 statistics of a set of real images.

  mu (2048,) and sigma (2048, 2048) are float64 for FID; features (N, 2048) float32 are kept for KID,
  precision/recall on Inception features, the linear probe and intra-FID; labels (N,) int32 are the
  images' classes (None in statistics cached before labels were kept). `dataset_size` is the size of the
  split they were drawn from.
  """
  mu: np.ndarray
  sigma: np.ndarray
  features: np.ndarray
  description: str
  dataset_size: int
  labels: Optional[np.ndarray] = None

  @classmethod
  def from_features(cls, features: np.ndarray, description: str, dataset_size: int,
                    labels: Optional[np.ndarray] = None):
    mu, sigma = scores.mean_and_covariance(features)
    return cls(mu=mu, sigma=sigma, features=np.asarray(features, np.float32), description=description,
               dataset_size=dataset_size, labels=None if labels is None else np.asarray(labels, np.int32))

  def save(self, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    labels = {} if self.labels is None else {"labels": self.labels}
    with files.atomic_path(path) as temporary:
      np.savez(temporary, mu=self.mu, sigma=self.sigma, features=self.features,
               description=np.array(self.description), dataset_size=np.array(self.dataset_size),
               protocol=np.array(PROTOCOL), **labels)

  @classmethod
  def load(cls, path: str) -> "ReferenceStatistics":
    with np.load(path) as f:
      if str(f["protocol"]) != PROTOCOL:
        raise UserError(f"{path} holds statistics of protocol {f['protocol']}, not {PROTOCOL}")
      return cls(mu=f["mu"], sigma=f["sigma"], features=f["features"], description=str(f["description"]),
                 dataset_size=int(f["dataset_size"]), labels=f["labels"] if "labels" in f.files else None)


def statistics_path(cache_dir: str, dataset: str, split: str, reference_size: Optional[int],
                    image_size: Optional[int], protocol: str = PROTOCOL) -> str:
  """Where the statistics of a split (or of its seeded subset of `reference_size` images) are cached."""
  size = f"_{image_size}px" if image_size else ""
  images = f"n{reference_size}-seed{SUBSET_SEED}" if reference_size else "all"
  return os.path.join(cache_dir, "reference_stats", f"{dataset}_{split}{size}_{images}_{protocol}.npz")


def reference_subset(dataset_size: int, reference_size: int) -> np.ndarray:
  """The sorted indices of the fixed random subset of `reference_size` of `dataset_size` images."""
  indices = np.random.RandomState(SUBSET_SEED).choice(dataset_size, reference_size, replace=False)
  return np.sort(indices)


def _reference_images(dataset: str, split: str, data_dir: Optional[str], reference_size: Optional[int]):
  """(split size, reference_size or None for the whole split, subset indices or None, description)."""
  dataset_size = len(sources.open_source(dataset, split, data_dir))
  if reference_size and not 0 < reference_size <= dataset_size:
    raise UserError(f"--reference_size={reference_size} must be between 1 and the {dataset_size} images "
                    f"of {dataset}[{split}], or 0 for the whole split")
  if reference_size == dataset_size:
    reference_size = None  # the subset would be the whole split: share its statistics
  if reference_size:
    description = f"{dataset}[{split}] {reference_size} of {dataset_size} images (seed {SUBSET_SEED})"
    return dataset_size, reference_size, reference_subset(dataset_size, reference_size), description
  return dataset_size, None, None, f"{dataset}[{split}] {dataset_size} images"


def reference_statistics(dataset: str, split: str = "train", data_dir: Optional[str] = None,
                         cache_dir: Optional[str] = None, reference_size: Optional[int] = None,
                         image_size: Optional[int] = None,
                         inception: Optional[inception_lib.InceptionFeatures] = None,
                         batch_size: int = inception_lib.DEFAULT_BATCH_SIZE,
                         need_labels: bool = False) -> ReferenceStatistics:
  """Statistics of a dataset split, computed once and then read from the cache.

  The standard protocol uses the whole training split (reference_size None or 0). With reference_size,
  a fixed random subset (`reference_subset`, seed SUBSET_SEED) of that many images is used: cheaper
  statistics for quick comparisons, whose FIDs are comparable only with FIDs of the same protocol.
  image_size fits images as the training data is fitted (gan_jax.data.fit_to_size), so that real and
  generated images have the same format. A cached file whose split has since changed size is recomputed,
  and so is one without labels where `need_labels` (the class metrics) asks for them.
  """
  cache_dir = cache_dir or user_cache.root()
  dataset_size, reference_size, subset, description = _reference_images(dataset, split, data_dir,
                                                                         reference_size)
  path = statistics_path(cache_dir, dataset, split, reference_size, image_size)
  if os.path.exists(path):
    cached = ReferenceStatistics.load(path)
    if cached.dataset_size != dataset_size:
      logging.info("%s was computed on %d images, the split now has %d: recomputing", path,
                   cached.dataset_size, dataset_size)
    elif need_labels and cached.labels is None:
      logging.info("%s was computed without the images' labels: recomputing", path)
    else:
      return cached
  labels = []

  def images():
    # Read in chunks: the split may be larger than memory (gan_jax.data.streaming).
    for chunk, chunk_labels in in_memory.iterate_labelled_images(dataset, split, data_dir, image_size, subset):
      labels.append(chunk_labels)
      yield chunk

  inception = inception or inception_lib.load_inception(cache_dir=cache_dir)
  logging.info("Computing Inception statistics of %s", description)
  features = inception.features(images(), batch_size=batch_size)
  statistics = ReferenceStatistics.from_features(features, description=f"{description}, {PROTOCOL}",
                                                 dataset_size=dataset_size, labels=np.concatenate(labels))
  statistics.save(path)
  return statistics


def reference_vgg_features(dataset: str, split: str, vgg: vgg_lib.VGGFeatures,
                           data_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                           reference_size: Optional[int] = None, image_size: Optional[int] = None,
                           batch_size: int = vgg_lib.DEFAULT_BATCH_SIZE) -> np.ndarray:
  """VGG-16 fc2 features (N, 4096) of the same real images as reference_statistics, computed once.

  Kept as float16, as StyleGAN2-ADA keeps them for precision/recall (metrics/precision_recall.py:
  `.to(torch.float16)`): half the disk and memory of float32 (50,000 images: 400 MB).
  """
  cache_dir = cache_dir or user_cache.root()
  dataset_size, reference_size, subset, description = _reference_images(dataset, split, data_dir,
                                                                         reference_size)
  path = statistics_path(cache_dir, dataset, split, reference_size, image_size, protocol=vgg.protocol)
  if os.path.exists(path):
    with np.load(path) as f:
      if int(f["dataset_size"]) == dataset_size and str(f["protocol"]) == vgg.protocol:
        return f["features"]
    logging.info("%s was computed on another split or network: recomputing", path)
  logging.info("Computing VGG-16 features of %s", description)
  features = vgg.features(in_memory.iterate_images(dataset, split, data_dir, image_size, subset),
                          batch_size=batch_size).astype(np.float16)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with files.atomic_path(path) as temporary:
    np.savez(temporary, features=features, dataset_size=np.array(dataset_size),
             protocol=np.array(vgg.protocol), description=np.array(f"{description}, {vgg.protocol}"))
  return features


def probe_test_split(dataset: str, split: str, data_dir: Optional[str] = None) -> Optional[str]:
  """The split that tests a probe fitted on `split`: 'test' where the dataset has one (and it is not
  `split` itself), else None."""
  if split == "test":
    return None
  try:
    sources.open_source(dataset, "test", data_dir, prepare=False)
  except UserError:
    return None
  return "test"


def reference_probe(dataset: str, split: str, reference: ReferenceStatistics,
                    data_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                    reference_size: Optional[int] = None, image_size: Optional[int] = None,
                    inception: Optional[inception_lib.InceptionFeatures] = None,
                    batch_size: int = inception_lib.DEFAULT_BATCH_SIZE) -> classes.LinearProbe:
  """The linear probe (gan_jax.metrics.classes) of `reference`'s features and labels, fitted once and
  cached beside the statistics; tested on the real test split where the dataset has one."""
  if reference.labels is None:
    raise ValueError("the linear probe needs reference statistics with labels (need_labels=True)")
  cache_dir = cache_dir or user_cache.root()
  _, reference_size, _, _ = _reference_images(dataset, split, data_dir, reference_size)
  path = statistics_path(cache_dir, dataset, split, reference_size, image_size,
                         protocol=f"{PROTOCOL}_{classes.PROBE_PROTOCOL}")
  if os.path.exists(path):
    cached = classes.LinearProbe.load(path)
    if cached.dataset_size == reference.dataset_size:
      return cached
    logging.info("%s was fitted on a split of %d images, the split now has %d: fitting again", path,
                 cached.dataset_size, reference.dataset_size)
  num_classes = int(reference.labels.max()) + 1
  logging.info("Fitting the linear probe on %s (%d classes)", reference.description, num_classes)
  probe = classes.fit_probe(reference.features, reference.labels, num_classes,
                            description=f"{reference.description}, {classes.PROBE_PROTOCOL}")
  probe = dataclasses.replace(probe, dataset_size=reference.dataset_size)
  test_split = probe_test_split(dataset, split, data_dir)
  if test_split:
    test = reference_statistics(dataset, test_split, data_dir, cache_dir, image_size=image_size,
                                inception=inception, batch_size=batch_size, need_labels=True)
    probe = probe.with_test_accuracy(test.features, test.labels, f"{dataset}[{test_split}]")
  probe.save(path)
  return probe


def evaluate_features(features: np.ndarray, reference: ReferenceStatistics,
                      logits: Optional[np.ndarray] = None, metrics: Sequence[str] = ALL_METRICS,
                      kid_subsets: int = 100, kid_subset_size: int = 1000, pr_k: int = 3,
                      labels: Optional[np.ndarray] = None,
                      probe: Optional[classes.LinearProbe] = None,
                      vgg_features: Optional[np.ndarray] = None,
                      vgg_reference: Optional[np.ndarray] = None,
                      intra_fid_min_per_class: Optional[int] = None) -> Dict[str, float]:
  """Metrics of generated images' Inception outputs against `reference`.

  Keys: fid; kid, kid_std; is, is_std (only with logits); precision_inception, recall_inception (k-NN
  precision/recall on Inception pool3 features) and, only with VGG-16 features of both sets, precision
  and recall as published; with the classes the images were generated for (`labels`): probe_accuracy
  and probe_accuracy_real_test (with a probe), intra_fid (reference statistics with labels, enough
  images of every class).
  """
  unknown = set(metrics) - set(ALL_METRICS)
  if unknown:
    raise UserError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(ALL_METRICS)}")
  results = {}
  if "fid" in metrics:
    results["fid"] = scores.frechet_distance(*scores.mean_and_covariance(features), reference.mu,
                                             reference.sigma)
  if "kid" in metrics:
    results["kid"], results["kid_std"] = scores.kid(features, reference.features, kid_subsets,
                                                    kid_subset_size)
  if "is" in metrics and logits is not None:
    results["is"], results["is_std"] = scores.inception_score(logits)
  if "pr" in metrics:
    results["precision_inception"], results["recall_inception"] = scores.precision_recall(
        reference.features, features, k=pr_k)
    if vgg_features is not None and vgg_reference is not None:
      results["precision"], results["recall"] = scores.precision_recall(vgg_reference, vgg_features,
                                                                        k=pr_k)
  if labels is not None and "probe" in metrics and probe is not None:
    results["probe_accuracy"] = classes.probe_accuracy(probe, features, labels)
    if np.isfinite(probe.test_accuracy):
      results["probe_accuracy_real_test"] = probe.test_accuracy
  if labels is not None and "intra_fid" in metrics and reference.labels is not None:
    num_classes = max(int(np.max(labels)), int(np.max(reference.labels))) + 1
    minimum = intra_fid_min_per_class or classes.INTRA_FID_MIN_PER_CLASS
    value, why_not = classes.intra_fid(features, labels, reference.features, reference.labels,
                                       num_classes, minimum)
    if value is None:
      logging.warning("No intra-FID: %s", why_not)
    else:
      results["intra_fid"] = value
  return results


def evaluate_images(images, reference: ReferenceStatistics,
                    inception: Optional[inception_lib.InceptionFeatures] = None,
                    metrics: Sequence[str] = ALL_METRICS,
                    batch_size: int = inception_lib.DEFAULT_BATCH_SIZE,
                    vgg: Optional[vgg_lib.VGGFeatures] = None,
                    vgg_reference: Optional[np.ndarray] = None, **metric_options) -> Dict[str, float]:
  """Metrics of uint8 images (an array or an iterable of batches) against `reference`.

  The Inception Score is included when the Inception weights have the logits head; precision and recall
  on VGG-16 features when `vgg` and the reference's VGG features (reference_vgg_features) are given.
  metric_options go to `evaluate_features` (labels, probe, ...).
  """
  inception = inception or inception_lib.load_inception()
  if "is" in metrics and not inception.has_logits:
    logging.warning("No Inception Score: %s", inception.missing_head_message())
  want_logits = "is" in metrics and inception.has_logits
  use_vgg = vgg is not None and vgg_reference is not None and "pr" in metrics

  def embed(chunk):
    if want_logits:
      return inception.features_and_logits(chunk, batch_size=batch_size)
    return inception.features(chunk, batch_size=batch_size), None

  if use_vgg:
    # Both networks see each chunk of images once: a generator's images are drawn only once, and a
    # split larger than memory is never held whole.
    # VGG-16 at 224x224 holds ~13 MB of activations per image in its first block: smaller batches.
    vgg_batch_size = min(batch_size, vgg_lib.DEFAULT_BATCH_SIZE)
    parts = [(*embed(chunk), vgg.features(chunk, batch_size=vgg_batch_size))
             for chunk in inception_lib.rebatch(images, _CHUNK_BATCHES * batch_size)]
    features = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, inception_lib.NUM_FEATURES))
    logits = np.concatenate([p[1] for p in parts]) if want_logits and parts else None
    vgg_features = np.concatenate([p[2] for p in parts]) if parts else None
  else:
    (features, logits), vgg_features = embed(images), None
  results = evaluate_features(features, reference, logits, metrics, vgg_features=vgg_features,
                              vgg_reference=vgg_reference, **metric_options)
  results["num_images"] = len(features)
  return results
