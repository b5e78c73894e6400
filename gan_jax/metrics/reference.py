"""Reference statistics of a dataset split, cached on disk, and evaluation of images against them."""
import dataclasses
import os
from typing import Dict, Optional, Sequence

from absl import logging
import numpy as np

from gan_jax import data
from gan_jax import files
from gan_jax import user_cache
from gan_jax.errors import UserError
from gan_jax.metrics import inception as inception_lib
from gan_jax.metrics import scores

# Names the feature extractor and input protocol in cache file names, so that statistics computed under
# another protocol are never mixed up with these.
PROTOCOL = "inception-2015-12-05-pool3_tf-bilinear-299"
ALL_METRICS = ("fid", "kid", "is", "pr")
# Seed of the fixed random subset of a split that reference_size selects; part of the cache name.
SUBSET_SEED = 0


@dataclasses.dataclass(frozen=True)
class ReferenceStatistics:
  """Inception pool3 statistics of a set of real images.

  mu (2048,) and sigma (2048, 2048) are float64 for FID; features (N, 2048) float32 are kept for KID and
  precision/recall. `dataset_size` is the size of the split they were drawn from.
  """
  mu: np.ndarray
  sigma: np.ndarray
  features: np.ndarray
  description: str
  dataset_size: int

  @classmethod
  def from_features(cls, features: np.ndarray, description: str, dataset_size: int):
    mu, sigma = scores.mean_and_covariance(features)
    return cls(mu=mu, sigma=sigma, features=np.asarray(features, np.float32), description=description,
               dataset_size=dataset_size)

  def save(self, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with files.atomic_path(path) as temporary:
      np.savez(temporary, mu=self.mu, sigma=self.sigma, features=self.features,
               description=np.array(self.description), dataset_size=np.array(self.dataset_size),
               protocol=np.array(PROTOCOL))

  @classmethod
  def load(cls, path: str) -> "ReferenceStatistics":
    with np.load(path) as f:
      if str(f["protocol"]) != PROTOCOL:
        raise UserError(f"{path} holds statistics of protocol {f['protocol']}, not {PROTOCOL}")
      return cls(mu=f["mu"], sigma=f["sigma"], features=f["features"], description=str(f["description"]),
                 dataset_size=int(f["dataset_size"]))


def statistics_path(cache_dir: str, dataset: str, split: str, reference_size: Optional[int],
                    image_size: Optional[int]) -> str:
  """Where the statistics of a split (or of its seeded subset of `reference_size` images) are cached."""
  size = f"_{image_size}px" if image_size else ""
  images = f"n{reference_size}-seed{SUBSET_SEED}" if reference_size else "all"
  return os.path.join(cache_dir, "reference_stats", f"{dataset}_{split}{size}_{images}_{PROTOCOL}.npz")


def reference_subset(dataset_size: int, reference_size: int) -> np.ndarray:
  """The sorted indices of the fixed random subset of `reference_size` of `dataset_size` images."""
  indices = np.random.RandomState(SUBSET_SEED).choice(dataset_size, reference_size, replace=False)
  return np.sort(indices)


def reference_statistics(dataset: str, split: str = "train", data_dir: Optional[str] = None,
                         cache_dir: Optional[str] = None, reference_size: Optional[int] = None,
                         image_size: Optional[int] = None,
                         inception: Optional[inception_lib.InceptionFeatures] = None,
                         batch_size: int = inception_lib.DEFAULT_BATCH_SIZE) -> ReferenceStatistics:
  """Statistics of a dataset split, computed once and then read from the cache.

  The standard protocol uses the whole training split (reference_size None or 0). With reference_size,
  a fixed random subset (`reference_subset`, seed SUBSET_SEED) of that many images is used: cheaper
  statistics for quick comparisons, whose FIDs are comparable only with FIDs of the same protocol.
  image_size fits images as the training data is fitted (gan_jax.data.fit_to_size), so that real and
  generated images have the same format. A cached file whose split has since changed size is recomputed.
  """
  cache_dir = cache_dir or user_cache.root()
  dataset_size = len(data.open_source(dataset, split, data_dir))
  if reference_size and not 0 < reference_size <= dataset_size:
    raise UserError(f"--reference_size={reference_size} must be between 1 and the {dataset_size} images "
                    f"of {dataset}[{split}], or 0 for the whole split")
  if reference_size == dataset_size:
    reference_size = None  # the subset would be the whole split: share its statistics
  path = statistics_path(cache_dir, dataset, split, reference_size, image_size)
  if os.path.exists(path):
    cached = ReferenceStatistics.load(path)
    if cached.dataset_size == dataset_size:
      return cached
    logging.info("%s was computed on %d images, the split now has %d: recomputing", path,
                 cached.dataset_size, dataset_size)
  subset = reference_subset(dataset_size, reference_size) if reference_size else None
  # Read in chunks: the split may be larger than memory (gan_jax.streaming).
  images = data.iterate_images(dataset, split, data_dir, image_size, subset)
  if reference_size:
    description = f"{dataset}[{split}] {reference_size} of {dataset_size} images (seed {SUBSET_SEED})"
  else:
    description = f"{dataset}[{split}] {dataset_size} images"
  inception = inception or inception_lib.load_inception(cache_dir=cache_dir)
  logging.info("Computing Inception statistics of %s", description)
  features = inception.features(images, batch_size=batch_size)
  statistics = ReferenceStatistics.from_features(features, description=f"{description}, {PROTOCOL}",
                                                 dataset_size=dataset_size)
  statistics.save(path)
  return statistics


def evaluate_features(features: np.ndarray, reference: ReferenceStatistics,
                      logits: Optional[np.ndarray] = None, metrics: Sequence[str] = ALL_METRICS,
                      kid_subsets: int = 100, kid_subset_size: int = 1000,
                      pr_k: int = 3) -> Dict[str, float]:
  """Metrics of generated images' Inception outputs against `reference`.

  Keys: fid; kid, kid_std; is, is_std (only with logits); precision, recall.
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
    results["precision"], results["recall"] = scores.precision_recall(reference.features, features,
                                                                      k=pr_k)
  return results


def evaluate_images(images, reference: ReferenceStatistics,
                    inception: Optional[inception_lib.InceptionFeatures] = None,
                    metrics: Sequence[str] = ALL_METRICS,
                    batch_size: int = inception_lib.DEFAULT_BATCH_SIZE, **metric_options) -> Dict[str, float]:
  """Metrics of uint8 images (an array or an iterable of batches) against `reference`.

  The Inception Score is included when the Inception weights have the logits head. metric_options go to
  `evaluate_features`.
  """
  inception = inception or inception_lib.load_inception()
  if "is" in metrics and not inception.has_logits:
    logging.warning("No Inception Score: %s", inception.missing_head_message())
  if "is" in metrics and inception.has_logits:
    features, logits = inception.features_and_logits(images, batch_size=batch_size)
  else:
    features, logits = inception.features(images, batch_size=batch_size), None
  results = evaluate_features(features, reference, logits, metrics, **metric_options)
  results["num_images"] = len(features)
  return results
