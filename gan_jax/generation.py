"""A run's generator, restored from its workdir, and the latents, labels and grids it is shown with.

The one library module for drawing images from a run: `gan_jax.sample` (files), `gan_jax.evaluate` and
the trainer (scores, fixed-noise grids) and `gan_jax.serve` (the web gallery) all use it.
"""
import functools
import math
import os
from typing import Iterator, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import artifacts
from gan_jax import checkpointing
from gan_jax import config as config_lib
from gan_jax import run_info
from gan_jax.errors import UserError
from gan_jax.train import GANState, create_train_state

EVAL_SEED = 12345  # evaluation noise, independent of the training seed
_EVAL_BATCH = 500
# A Sampler runs every request as one of these batch sizes: at most three compilations per generator.
SAMPLER_BATCH_SIZES = (4, 16, 64)


def run_template(workdir: str):
  """(config, abstract state, class_names) of the run in `workdir`: the shapes and dtypes its
  checkpoints restore into (nothing initialised or compiled: a command that samples starts sooner)."""
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise UserError(f"{workdir} has no config.json: give the workdir of a training run")
  config = config_lib.load_saved(config_path)
  recorded = run_info.load(workdir)
  if recorded is None:
    # Checked before the checkpoints are touched: a state of another layout would fail to restore and
    # be moved aside as corrupt.
    raise UserError(f"{workdir} has no {run_info.FILENAME}, which every run of this gan_jax version "
                    "writes when it starts; its checkpoints come from an older version, whose state "
                    "this one cannot restore: train the run again")
  image_shape, class_names = recorded
  template = create_train_state(config, jax.random.PRNGKey(config.seed), image_shape,
                                num_classes=len(class_names), abstract=True)
  return config, template, class_names


def load_run(workdir: str, step: Optional[int] = None):
  """(config, state, class_names) of the run in `workdir` at `step` (default: its newest checkpoint)."""
  config, template, class_names = run_template(workdir)
  checkpoints = checkpointing.Checkpoints(workdir, config.keep_checkpoints)
  if step is None:
    state = checkpoints.restore_latest(template)
  else:
    state = checkpoints.restore(step, template)
  if state is None:
    raise UserError(f"{workdir} has no readable checkpoint{'' if step is None else f' at step {step}'}")
  return config, state, class_names


def sample_labels(indices: np.ndarray, num_classes: int, class_index: Optional[int] = None) -> np.ndarray:
  """The class of each sample: `class_index` for all of them, or index mod num_classes, so that every
  class is drawn equally often (0 for unconditional generators)."""
  if class_index is not None:
    return np.full(len(indices), class_index, np.int32)
  return (indices % max(num_classes, 1)).astype(np.int32)


def generated_batches(state: GANState, num_samples: int, seed: int = EVAL_SEED,
                      batch_size: int = _EVAL_BATCH, class_index: Optional[int] = None,
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


def generated_images(state: GANState, num_samples: int, seed: int = EVAL_SEED,
                     batch_size: int = _EVAL_BATCH) -> Iterator[np.ndarray]:
  """uint8 samples of the generator's EMA weights, `batch_size` at a time (classes balanced)."""
  for images, _ in generated_batches(state, num_samples, seed, batch_size):
    yield images


def grid_layout(num_samples: int, num_classes: int = 0) -> Tuple[np.ndarray, np.ndarray, int]:
  """(latent index, label, columns) of the cells of a sample grid.

  Unconditional: `num_samples` latents in a square-ish grid. Conditional: one row per class with
  max(1, num_samples // num_classes) columns; column j uses the same latent in every row, so a column
  shows one latent rendered as each class.
  """
  if not num_classes:
    return (np.arange(num_samples), np.zeros(num_samples, np.int32),
            math.ceil(math.sqrt(num_samples)))
  columns = max(1, num_samples // num_classes)
  return (np.tile(np.arange(columns), num_classes),
          np.repeat(np.arange(num_classes, dtype=np.int32), columns), columns)


def grid_inputs(key, num_samples: int, latent_dim: int,
                num_classes: int = 0) -> Tuple[jax.Array, jax.Array, int]:
  """(latents, labels, columns) of a sample grid laid out by `grid_layout`, latents drawn from `key`."""
  latent_ids, labels, columns = grid_layout(num_samples, num_classes)
  z = jax.random.normal(key, (int(latent_ids.max()) + 1, latent_dim))[latent_ids]
  return z, jnp.asarray(labels), columns


def slerp(a, b, t):
  """Spherical interpolation between latents a and b (rows), at fraction t: stays on the shell where
  Gaussian latents live, unlike a straight line through the low-norm middle."""
  a_unit = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b_unit = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  omega = jnp.arccos(jnp.clip(jnp.sum(a_unit * b_unit, axis=-1, keepdims=True), -1.0, 1.0))
  sin_omega = jnp.sin(omega)
  safe = sin_omega > 1e-6
  wa = jnp.where(safe, jnp.sin((1 - t) * omega) / jnp.where(safe, sin_omega, 1.0), 1 - t)
  wb = jnp.where(safe, jnp.sin(t * omega) / jnp.where(safe, sin_omega, 1.0), t)
  return wa * a + wb * b


def class_index(value: Optional[str], class_names: Sequence[str], num_classes: int,
                argument: str = "--class") -> Optional[int]:
  """A class given as a name or an index (`argument` names where it was given, for the message);
  None when not given."""
  if value is None:
    return None
  if not num_classes:
    raise UserError(f"{argument} needs a class-conditional run; this run was trained without "
                    "--conditional")
  if value in class_names:
    return list(class_names).index(value)
  if value.isdigit() and int(value) < num_classes:
    return int(value)
  raise UserError(f"{argument}={value} is not a class of this run; use a name "
                  f"({', '.join(class_names)}) or an index below {num_classes}")


@functools.partial(jax.jit, static_argnames="ema")
def _render(state: GANState, seed, start_ids, end_ids, fractions, labels, *, ema: bool):
  """Image i from the latent at `fractions[i]` of the way from latent `start_ids[i]` to `end_ids[i]`
  of `seed` (the start latent itself where the ids agree)."""
  key = jax.random.PRNGKey(seed)
  latent = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (state.latent_dim,)))
  return state.generate(slerp(latent(start_ids), latent(end_ids), fractions[:, None]), labels, ema=ema)


class Sampler:
  """Images of one generator, compiled once per batch size of `batch_sizes`.

  A request of n images runs as the smallest of those batches that holds it (padded), or as several of
  the largest, so however many requests of whatever sizes come, nothing is compiled after the first of
  each size. Latent number i of a seed is the same in every batch: a grid of 4 is the first row of the
  grid of 16 with the same seed.
  """

  def __init__(self, state: GANState, ema: bool = True,
               batch_sizes: Sequence[int] = SAMPLER_BATCH_SIZES):
    self.step, self.latent_dim, self.num_classes = int(state.step), state.latent_dim, state.num_classes
    self.ema, self.batch_sizes = ema, tuple(sorted(batch_sizes))
    # Only what generating reads, placed on the device once instead of copied in with every request.
    self._state = jax.device_put(state.replace(d_params=None, d_batch_stats=None, g_opt_state=None,
                                               d_opt_state=None))

  def images(self, seed: int, start_ids, end_ids, fractions, labels) -> np.ndarray:
    """uint8 images, one per entry of the arguments (see `_render`)."""
    largest, count = self.batch_sizes[-1], len(start_ids)
    columns = [np.asarray(start_ids, np.int32), np.asarray(end_ids, np.int32),
               np.asarray(fractions, np.float32), np.asarray(labels, np.int32)]
    chunks = []
    for begin in range(0, count, largest):
      size = min(count - begin, largest)
      batch = next(b for b in self.batch_sizes if b >= size)
      padded = [np.pad(c[begin:begin + size], (0, batch - size)) for c in columns]
      images = _render(self._state, np.int32(seed), *padded, ema=self.ema)
      chunks.append(artifacts.to_uint8(images)[:size])
    return np.concatenate(chunks)

  def grid(self, num_samples: int, seed: int = 0,
           class_index: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """(uint8 images, columns) of a `grid_layout` grid; `class_index` renders all of it as that class."""
    latent_ids, labels, columns = grid_layout(num_samples,
                                              self.num_classes if class_index is None else 0)
    if class_index is not None:
      labels = np.full(num_samples, class_index, np.int32)
    return self.images(seed, latent_ids, latent_ids, np.zeros(len(latent_ids)), labels), columns

  def interpolation(self, steps: int, seed: int = 0,
                    class_index: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """(uint8 images, columns): `steps` images along the path from a seed's latent 0 to its latent 1;
    a conditional generator without `class_index` walks that path once per class, one row each."""
    if class_index is not None or not self.num_classes:
      row_labels = [class_index or 0]
    else:
      row_labels = range(self.num_classes)
    rows = len(row_labels)
    fractions = np.tile(np.linspace(0.0, 1.0, steps), rows)
    labels = np.repeat(np.asarray(row_labels, np.int32), steps)
    return self.images(seed, np.zeros(rows * steps), np.ones(rows * steps), fractions, labels), steps
