"""Score a trained generator, or a file of images, with FID, KID, IS and precision/recall.

    python -m gan_jax.evaluate --workdir=RUN [--num_samples=50000] [--step=N]   # -> RUN/metrics.json
    python -m gan_jax.evaluate --samples=FILE.npz --dataset=cifar10             # a plain uint8 array
    python -m gan_jax.evaluate --workdir=RUN --num_samples=5000 --reference_size=10000  # quick

Generated images are compared with the statistics of the run's training split, or of a fixed, seeded
subset of it (--reference_size), cached per protocol; see gan_jax/metrics/__init__.py. Publishable FIDs
use --num_samples=50000 against the whole split; FIDs of other sizes compare only among themselves.
"""
import json
import os
import sys
from typing import Dict, Iterator, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from gan_jax import artifacts
from gan_jax import checkpointing
from gan_jax import config as config_lib
from gan_jax import metrics
from gan_jax import run_info
from gan_jax.errors import UserError
from gan_jax.train import GANState, create_train_state

_SAMPLE_BATCH = 500
_EVAL_SEED = 12345  # evaluation noise, independent of the training seed


def sample_labels(indices: np.ndarray, num_classes: int, class_index: Optional[int] = None) -> np.ndarray:
  """The class of each sample: `class_index` for all of them, or index mod num_classes, so that every
  class is drawn equally often (0 for unconditional generators)."""
  if class_index is not None:
    return np.full(len(indices), class_index, np.int32)
  return (indices % max(num_classes, 1)).astype(np.int32)


def generated_batches(state: GANState, num_samples: int, seed: int = _EVAL_SEED,
                      batch_size: int = _SAMPLE_BATCH, class_index: Optional[int] = None,
                      ema: bool = True) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """(uint8 images, labels) from the generator (BatchNorm in inference mode), `batch_size` at a time.

  Labels as `sample_labels` gives them.
  """
  @jax.jit
  def generate(state, key, labels):
    return state.generate(jax.random.normal(key, (batch_size, state.latent_dim)), labels, ema=ema)

  for start in range(0, num_samples, batch_size):
    labels = sample_labels(np.arange(start, start + batch_size), state.num_classes, class_index)
    images = generate(state, jax.random.fold_in(jax.random.PRNGKey(seed), start), labels)
    count = min(batch_size, num_samples - start)
    yield artifacts.to_uint8(images[:count]), labels[:count]


def generated_images(state: GANState, num_samples: int, seed: int = _EVAL_SEED,
                     batch_size: int = _SAMPLE_BATCH) -> Iterator[np.ndarray]:
  """uint8 samples of the generator's EMA weights, `batch_size` at a time (classes balanced)."""
  for images, _ in generated_batches(state, num_samples, seed, batch_size):
    yield images


def load_run(workdir: str, step: Optional[int] = None):
  """(config, state, class_names) of the run in `workdir` at `step` (default: its newest checkpoint)."""
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise UserError(f"{workdir} has no config.json: give the workdir of a training run")
  with open(config_path) as f:
    config = config_lib.defaults()
    config.update(json.load(f))
  recorded = run_info.load(workdir)
  if recorded is None:
    # Checked before the checkpoints are touched: a state of another layout would fail to restore and
    # be moved aside as corrupt.
    raise UserError(f"{workdir} has no {run_info.FILENAME}, which every run of this gan_jax version "
                    "writes when it starts; its checkpoints come from an older version, whose state "
                    "this one cannot restore: train the run again")
  image_shape, class_names = recorded
  template = create_train_state(config, jax.random.PRNGKey(config.seed), image_shape,
                                num_classes=len(class_names))
  checkpoints = checkpointing.Checkpoints(workdir, config.keep_checkpoints)
  if step is None:
    state = checkpoints.restore_latest(template)
  else:
    state = checkpoints.restore(step, template)
  if state is None:
    raise UserError(f"{workdir} has no readable checkpoint{'' if step is None else f' at step {step}'}")
  return config, state, class_names


def score_generator(state: GANState, workdir: str, num_samples: int,
                    reference: metrics.ReferenceStatistics, inception: metrics.InceptionFeatures,
                    metric_names: Sequence[str] = metrics.ALL_METRICS,
                    batch_size: int = metrics.inception.DEFAULT_BATCH_SIZE) -> Dict[str, float]:
  """Scores `num_samples` images of the generator and records them in `<workdir>/metrics.json`."""
  scores = metrics.evaluate_images(generated_images(state, num_samples, batch_size=batch_size),
                                   reference, inception, metrics=metric_names, batch_size=batch_size)
  result = {"step": int(state.step), "num_samples": num_samples, "protocol": metrics.PROTOCOL,
            "reference": reference.description, **scores}
  record_metrics(workdir, result)
  return result


def evaluate_run(workdir: str, num_samples: int = 50000, step: Optional[int] = None,
                 metric_names: Sequence[str] = metrics.ALL_METRICS,
                 inception: Optional[metrics.InceptionFeatures] = None,
                 batch_size: int = metrics.inception.DEFAULT_BATCH_SIZE,
                 reference_size: Optional[int] = None) -> Dict[str, float]:
  """Scores the run's generator against its training split (or that split's seeded subset of
  `reference_size` images) and records the result in `<workdir>/metrics.json`."""
  config, state, _ = load_run(workdir, step)
  inception = inception or metrics.load_inception()
  batch_size = min(batch_size, num_samples)  # the last batch is padded to a full one
  reference = metrics.reference_statistics(config.dataset, config.split, config.data_dir or None,
                                           reference_size=reference_size, image_size=config.image_size,
                                           inception=inception, batch_size=batch_size)
  return score_generator(state, workdir, num_samples, reference, inception, metric_names, batch_size)


def record_metrics(workdir: str, result: Dict) -> None:
  """metrics.json maps each evaluated step to its scores; earlier evaluations are kept."""
  path = os.path.join(workdir, "metrics.json")
  history = {}
  if os.path.exists(path):
    with open(path) as f:
      history = json.load(f)
  history[str(result["step"])] = result
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(history, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def load_samples(path: str) -> np.ndarray:
  """uint8 (N, H, W, C) images from an .npz (key 'images', or its only array) or .npy file."""
  try:
    loaded = np.load(path)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read samples from {path} ({e}); give an .npz or .npy of uint8 images") from e
  if isinstance(loaded, np.lib.npyio.NpzFile):
    keys = list(loaded.keys())
    if "images" not in keys and len(keys) != 1:
      raise UserError(f"{path} holds {keys}; name the image array 'images'")
    images = loaded["images" if "images" in keys else keys[0]]
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
  flags.DEFINE_list("metrics", list(metrics.ALL_METRICS), "Metrics: fid, kid, is, pr.")
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
    if args.workdir:
      result = evaluate_run(args.workdir, args.num_samples, args.step, args.metrics, inception,
                            args.batch_size, args.reference_size)
    else:
      images = load_samples(args.samples)
      batch_size = min(args.batch_size, len(images))
      reference = metrics.reference_statistics(args.dataset, args.split, args.data_dir,
                                               reference_size=args.reference_size,
                                               image_size=images.shape[1], inception=inception,
                                               batch_size=batch_size)
      result = metrics.evaluate_images(images, reference, inception, metrics=args.metrics,
                                       batch_size=batch_size)
  except UserError as e:
    sys.exit(f"error: {e}")
  logging.info("Metrics: %s", result)
  print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
