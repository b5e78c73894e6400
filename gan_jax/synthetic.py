"""Synthetic 2-D datasets with known modes: mixtures of equally likely isotropic Gaussians, the standard
mode-collapse benchmarks (Metz et al. 2017, Unrolled GAN; Srivastava et al. 2017, VEEGAN; Lin et al.
2018, PacGAN). Since the modes are known, what a generator learned can be scored exactly
(gan_jax.metrics.modes); `train` and `score` are the learning tests' (tests/test_learning.py) and
benchmarks/mode_collapse_fixes.py's way to train a recipe on them and score it.

  ring8:  8 Gaussians evenly spaced on a circle of radius 2, std 0.02
  grid25: 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05
"""
from typing import NamedTuple

import jax
import numpy as np

from gan_jax import parallel
from gan_jax.metrics import modes as modes_lib
from gan_jax.train import create_train_state

NUM_EVAL_SAMPLES = 2500  # VEEGAN's and PacGAN's sample count, for which modes.MIN_COUNT is set
EVAL_SEED = 1234  # of the latents that `score` and `generate` draw by default


class Points(NamedTuple):
  points: np.ndarray  # float32 (N, 2)
  centres: np.ndarray  # float32 (modes, 2), the means of the mixture's components
  std: float  # standard deviation of every component, in each coordinate


def _ring_centres(num_modes: int = 8, radius: float = 2.0) -> np.ndarray:
  angles = 2 * np.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid_centres(coordinates=(-4.0, -2.0, 0.0, 2.0, 4.0)) -> np.ndarray:
  xs, ys = np.meshgrid(coordinates, coordinates, indexing="ij")
  return np.stack([xs.ravel(), ys.ravel()], axis=1)


# name -> (centres, std)
MIXTURES = {
    "ring8": (_ring_centres(), 0.02),
    "grid25": (_grid_centres(), 0.05),
}


def sample(name: str, num_points: int, seed: int = 0) -> Points:
  """`num_points` points of the mixture `name` (a key of MIXTURES); the same seed gives the same points."""
  if name not in MIXTURES:
    raise ValueError(f"unknown synthetic dataset '{name}'; choose one of {', '.join(MIXTURES)}")
  centres, std = MIXTURES[name]
  rng = np.random.default_rng(seed)
  modes = rng.integers(0, len(centres), num_points)
  points = centres[modes] + std * rng.standard_normal((num_points, 2))
  return Points(points.astype(np.float32), centres.astype(np.float32), std)


def train(config, data: np.ndarray, steps: int, steps_per_call: int = 1000):
  """The state after `steps` train steps of `config` (seeded by config.seed) on `data` (float points or
  uint8 images) through parallel.DataParallel on one device, in calls of `steps_per_call` steps as
  training makes them."""
  if steps % steps_per_call:
    raise ValueError(f"steps ({steps}) must be a multiple of steps_per_call ({steps_per_call})")
  dp = parallel.DataParallel("shard_map", jax.local_devices()[:1])
  state = create_train_state(config, jax.random.PRNGKey(config.seed), data.shape[1:], axis_name=dp.axis_name)
  state = dp.put_state(state)
  on_device = dp.put_data(data, np.zeros(len(data), np.int32))
  train_function = dp.train_function(global_batch=config.batch_size, steps=steps_per_call)
  for _ in range(steps // steps_per_call):
    state, _ = train_function(state, *on_device)
  return dp.get_state(state)


def generate(state, num: int, ema: bool = True, seed: int = EVAL_SEED) -> np.ndarray:
  """`num` samples of the EMA generator (ema=False: the raw one) from latents drawn with `seed`."""
  z = jax.random.normal(jax.random.PRNGKey(seed), (num, state.latent_dim))
  return np.asarray(state.generate(z, ema=ema))


def score(state, data: Points, ema: bool = True, num: int = NUM_EVAL_SAMPLES) -> modes_lib.ModeStatistics:
  """Mode statistics of `num` samples of the generator of `state` against the modes of `data`."""
  return modes_lib.mode_statistics(generate(state, num, ema), data.centres, data.std)
