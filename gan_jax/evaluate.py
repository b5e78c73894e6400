"""Score a trained generator, or a file of images, with FID, KID, IS, precision/recall and, for
conditional generators, the Inception linear-probe accuracy and intra-FID.

    python -m gan_jax.evaluate --workdir=RUN [--num_samples=50000] [--step=N]   # -> RUN/metrics.json
    python -m gan_jax.evaluate --samples=FILE.npz --dataset=cifar10             # a plain uint8 array
    python -m gan_jax.evaluate --workdir=RUN --num_samples=5000 --reference_size=10000  # quick
    python -m gan_jax.evaluate --workdir=RUN --vgg16_weights=vgg16-397923af.pth  # + published P/R

Precision and recall as published need torchvision's VGG-16 weights (--vgg16_weights); without them
only precision_inception and recall_inception (the same k-NN metric on Inception features) are reported.
A --samples file may hold the class of each image ('labels' beside 'images') for the class metrics.

Generated images are compared with the statistics of the run's training split, or of a fixed, seeded
subset of it (--reference_size), cached per protocol; see gan_jax/metrics/__init__.py. Publishable FIDs
use --num_samples=50000 against the whole split; FIDs of other sizes compare only among themselves.
"""
import json
import sys
from typing import Dict, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np

from gan_jax import generation
from gan_jax import metrics
from gan_jax import scoring
from gan_jax.errors import UserError


def evaluate_run(workdir: str, num_samples: int = 50000, step: Optional[int] = None,
                 metric_names: Sequence[str] = metrics.ALL_METRICS,
                 inception: Optional[metrics.InceptionFeatures] = None,
                 batch_size: int = metrics.inception.DEFAULT_BATCH_SIZE,
                 reference_size: Optional[int] = None,
                 vgg: Optional[metrics.VGGFeatures] = None) -> Dict[str, float]:
  """Scores the run's generator against its training split (or that split's seeded subset of
  `reference_size` images) and records the result in `<workdir>/metrics.json`. Precision and recall
  on VGG-16 features need `vgg`; the class metrics need a conditional run."""
  config, state, _ = generation.load_run(workdir, step)
  inception = inception or metrics.load_inception()
  batch_size = min(batch_size, num_samples)  # the last batch is padded to a full one
  references = scoring.run_references(config, state.num_classes, inception, metric_names, batch_size,
                                      reference_size, vgg)
  return scoring.score_generator(state, workdir, num_samples, references, inception, metric_names,
                                 batch_size)


def load_labels(path: str, count: int) -> Optional[np.ndarray]:
  """The int labels of a samples .npz ('labels', one per image); None where it has none."""
  if not path.endswith(".npz"):
    return None
  with np.load(path) as loaded:
    if "labels" not in loaded.files:
      return None
    labels = loaded["labels"]
  if labels.shape != (count,) or labels.dtype.kind not in "iu" or (count and labels.min() < 0):
    raise UserError(f"{path} holds labels {labels.dtype} {labels.shape}; expected {count} class indices, "
                    "one per image")
  return labels.astype(np.int32)


def load_samples(path: str) -> np.ndarray:
  """uint8 (N, H, W, C) images from an .npz (key 'images', or its only array) or .npy file."""
  try:
    loaded = np.load(path)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read samples from {path} ({e}); give an .npz or .npy of uint8 images") from e
  if isinstance(loaded, np.lib.npyio.NpzFile):
    keys = list(loaded.keys())
    if "images" not in keys and len(set(keys) - {"labels"}) != 1:
      raise UserError(f"{path} holds {keys}; name the image array 'images'")
    images = loaded["images" if "images" in keys else next(k for k in keys if k != "labels")]
  else:
    images = loaded
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
    raise UserError(f"{path} holds {images.dtype} images of shape {images.shape}; expected uint8 "
                    "(N, H, W, 1 or 3)")
  return images


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("workdir", None, "Training run to evaluate (its newest checkpoint).")
  flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the newest).")
  flags.DEFINE_string("samples", None, "Instead of a run: an .npz/.npy of uint8 images.")
  flags.DEFINE_string("dataset", "cifar10", "With --samples: the dataset to compare with.")
  flags.DEFINE_string("split", "train", "With --samples: the reference split.")
  flags.DEFINE_string("data_dir", None, "tfds data directory.")
  flags.DEFINE_integer("num_samples", 50000, "Generated images to score (50000 for papers).")
  flags.DEFINE_integer("reference_size", 0, "Compare with a fixed, seeded subset of this many images of "
                       "the reference split (0 = the whole split, as papers do).")
  flags.DEFINE_list("metrics", list(metrics.ALL_METRICS), "Metrics: fid, kid, is, pr (precision/recall), "
                    "probe (linear-probe accuracy), intra_fid; the last two for conditional runs.")
  flags.DEFINE_string("vgg16_weights", None, "torchvision's VGG-16 state_dict (vgg16-397923af.pth) for "
                      "precision/recall as published; without it only precision_inception and "
                      "recall_inception.")
  flags.DEFINE_integer("batch_size", 500, "Images per Inception batch.")
  flags.DEFINE_string("inception_weights", None, "Inception weights file (default: cache).")


def main(argv):
  del argv
  args = flags.FLAGS
  try:
    unknown = set(args.metrics) - set(metrics.ALL_METRICS)
    if unknown:
      raise UserError(f"unknown --metrics {sorted(unknown)}; choose from {', '.join(metrics.ALL_METRICS)}")
    if bool(args.workdir) == bool(args.samples):
      raise UserError("give exactly one of --workdir=RUN or --samples=FILE.npz")
    inception = metrics.load_inception(args.inception_weights)
    vgg = metrics.load_vgg16(args.vgg16_weights) if args.vgg16_weights and "pr" in args.metrics else None
    if args.workdir:
      result = evaluate_run(args.workdir, args.num_samples, args.step, args.metrics, inception,
                            args.batch_size, args.reference_size, vgg)
    else:
      images = load_samples(args.samples)
      labels = load_labels(args.samples, len(images))
      batch_size = min(args.batch_size, len(images))
      config = ml_collections.ConfigDict(dict(dataset=args.dataset, split=args.split,
                                              data_dir=args.data_dir, image_size=images.shape[1]))
      num_classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
      references = scoring.run_references(config, num_classes, inception, args.metrics, batch_size,
                                          args.reference_size, vgg)
      result = metrics.evaluate_images(images, references.statistics, inception, metrics=args.metrics,
                                       batch_size=batch_size, vgg=references.vgg,
                                       vgg_reference=references.vgg_features, labels=labels,
                                       probe=references.probe)
  except UserError as e:
    sys.exit(f"error: {e}")
  logging.info("Metrics: %s", result)
  print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
