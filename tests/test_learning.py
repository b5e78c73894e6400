"""Learning tests: GANs trained through the real train step and DataParallel (one device) learn their data,
and a broken generator fails the same checks.

- Points (gan_jax.synthetic, toy MLPs): every objective covers the modes of ring8 with sharp samples;
  one recipe learns grid25; the EMA generator is at least as good as the raw one. Scored with the
  mode-collapse metrics of VEEGAN and PacGAN (gan_jax.metrics.modes) on 2,500 samples.
- Images (DCGAN, uint8 images as training reads them): the pixel-value distribution of the samples
  moves most of the way to that of a synthetic dataset of coloured squares on black.

Recipes and thresholds were chosen on several seeds (values in the comments); each test then fixes
one seed. The thresholds leave wide margins, so that other CPUs or XLA versions, whose float rounding
sends the chaotic GAN dynamics elsewhere, pass too, while the controls fail them by far.
"""
from typing import Tuple

import jax
import numpy as np
import pytest

from gan_jax import checks
from gan_jax import config as config_lib
from gan_jax import losses
from gan_jax import data
from gan_jax import synthetic
from gan_jax.metrics import modes
from gan_jax.train import create_train_state

# These tests train for thousands of steps: their programs are worth optimising (conftest.py).
pytestmark = pytest.mark.usefixtures("optimized_programs")

NUM_EVAL_SAMPLES = synthetic.NUM_EVAL_SAMPLES  # 2,500 (VEEGAN's, PacGAN's), modes.MIN_COUNT's count
SEED = 0

# One recipe for every objective on ring8: toy MLPs (3 hidden layers of 64) with a 2-D latent (with a
# 16-D one, a third of the runs dropped a mode), batch 128, Adam(2e-3, b1=0, b2=0.99) and a generator
# EMA. At a constant learning rate Adam keeps moving G's weights by about the size of a mode (3 std =
# 0.06), so the raw samples are blurred; the EMA (what the code base samples and evaluates) averages that
# out. After 3,000 steps (seeds 0-2, every objective) the EMA samples covered 8/8 modes (7/8 once) with
# 84-95% high quality, the raw ones 2-8 modes and 10-73%; after 2,000 steps the EMA's 7-8 and 75-89%.
RING8_RECIPE = dict(model="toy", latent_dim=2, g_width=64, d_width=64, batch_size=128, g_lr=2e-3, d_lr=2e-3,
                    g_b1=0.0, d_b1=0.0, g_b2=0.99, d_b2=0.99, ema_decay=0.999)
RING8_STEPS = 3000
# Training points: enough for these models (50,000 gave the same results), and few enough that
# DataParallel's shuffle of them, which on CPU runs at every step, stays cheap (50,000: ~35 ms a step).
RING8_POINTS, GRID25_POINTS = 2048, 4096
# What an objective needs besides the recipe. The gradient penalty is weighted 1, not WGAN-GP's 10: a
# 1-Lipschitz critic has little slope left to sharpen modes of std 0.02 (weight 10, batch 256: 7-8
# modes, 34-57% high quality after 3,000 steps).
OBJECTIVE_SETTINGS = {"nonsaturating": {}, "hinge": {}, "wgan": dict(gp_weight=1.0), "lsgan": {},
                      "rpgan": {}}
RING8_MIN_MODES, RING8_MIN_HIGH_QUALITY = 7, 0.7

# grid25 needs wider MLPs, a larger batch and a larger step: after 4,000 steps (seeds 0-3) 24-25/25
# modes and 77-86% high quality; after 3,000 steps 18-25 modes and 60-77%; after 2,000 steps,
# half-learned, 11-20 modes and 39-49%.
GRID25_RECIPE = dict(RING8_RECIPE, loss="hinge", g_width=128, d_width=128, batch_size=256, g_lr=3e-3,
                     d_lr=3e-3)
GRID25_STEPS = 4000
GRID25_MIN_MODES, GRID25_MIN_HIGH_QUALITY = 20, 0.6

# The EMA's samples may be worse than the raw weights' by this much high-quality fraction: the two
# estimates come from 2,500 samples each (standard error ~0.01).
EMA_TOLERANCE = 0.02

# Tiny DCGAN on 16x16 images (one hidden transposed conv, BatchNorm, dropout in D). With Adam(2e-3, 0.5)
# the histogram distance fell from ~1.0 to 0.10-0.29 in 200 steps (seeds 0-4).
IMAGE_RECIPE = dict(model="dcgan", image_size=16, g_width=8, d_width=8, latent_dim=16, batch_size=32,
                    g_lr=2e-3, d_lr=2e-3)
IMAGE_STEPS = 200
IMAGE_MAX_DISTANCE_RATIO = 0.5  # of the distance at initialisation
SQUARE_COLOURS = np.array([[255, 40, 40], [40, 255, 40], [40, 40, 255]], np.uint8)

# A generator that cannot learn: Adam's step is g_lr, so G stays at its initialisation (the config
# requires g_lr > 0).
FROZEN_GENERATOR = dict(g_lr=1e-12)


def _config(**fields):
  config = config_lib.defaults()
  config.update(dict(seed=SEED, num_steps=1, **fields))
  checks.check_run(config, num_devices=1)  # a recipe the command line would accept
  return config


_train = synthetic.train  # (config, data, steps, steps_per_call=1000): DataParallel on one device
_samples = synthetic.generate  # (state, num, ema=True): latents drawn with seed EVAL_SEED


# ---- Points ----


def _point_statistics(state, data: synthetic.Points, ema: bool = True) -> modes.ModeStatistics:
  return synthetic.score(state, data, ema, NUM_EVAL_SAMPLES)


def _check_modes(stats: modes.ModeStatistics, min_modes: int, min_high_quality: float) -> Tuple[bool, str]:
  """(whether `stats` meet both thresholds, a message with the values and the thresholds)."""
  passed = stats.modes_covered >= min_modes and stats.high_quality_fraction >= min_high_quality
  return passed, f"{stats}; needed >= {min_modes} modes and >= {100 * min_high_quality:.0f}% high quality"


def _ring8():
  return synthetic.sample("ring8", RING8_POINTS, seed=SEED)


def _train_ring8(loss: str, **overrides):
  config = _config(dataset="ring8", loss=loss, **{**RING8_RECIPE, **OBJECTIVE_SETTINGS[loss], **overrides})
  return _train(config, _ring8().points, RING8_STEPS)


@pytest.fixture(scope="module")
def ring8_states():
  """loss -> the state trained with RING8_RECIPE, trained once for the tests that read it."""
  trained = {}

  def state(loss):
    if loss not in trained:
      trained[loss] = _train_ring8(loss)
    return trained[loss]
  return state


def test_mode_statistics_of_known_samples():
  data = synthetic.sample("ring8", NUM_EVAL_SAMPLES, seed=1)
  real = modes.mode_statistics(data.points, data.centres, data.std)
  assert real.modes_covered == 8 and real.high_quality_fraction > 0.98, real  # 3 std hold 98.9%
  collapsed = modes.mode_statistics(np.repeat(data.centres[:1], 100, axis=0), data.centres, data.std)
  assert collapsed.modes_covered == 1 and collapsed.high_quality_fraction == 1.0, collapsed
  between_modes = (data.centres[0] + data.centres[1]) / 2  # on neither mode's 3-std disc
  blurred = modes.mode_statistics(np.repeat(between_modes[None], 100, axis=0), data.centres, data.std)
  assert blurred.modes_covered == 0 and blurred.high_quality_fraction == 0.0, blurred
  # A mode with fewer than min_count high-quality samples is not covered.
  few = np.concatenate([np.repeat(data.centres[:1], 100, axis=0), np.repeat(data.centres[1:2], 19, axis=0)])
  assert modes.mode_statistics(few, data.centres, data.std).modes_covered == 1


def test_synthetic_datasets_are_deterministic_mixtures():
  grid = synthetic.sample("grid25", 5000, seed=3)
  assert grid.points.dtype == np.float32 and grid.points.shape == (5000, 2) and len(grid.centres) == 25
  np.testing.assert_array_equal(grid.points, synthetic.sample("grid25", 5000, seed=3).points)
  assert not np.array_equal(grid.points, synthetic.sample("grid25", 5000, seed=4).points)
  stats = modes.mode_statistics(grid.points, grid.centres, grid.std, min_count=150)
  assert stats.modes_covered == 25 and stats.high_quality_fraction > 0.98, stats


def test_float_data_reach_the_model_unscaled():
  points = np.array([[2.0, -3.5]], np.float32)
  np.testing.assert_array_equal(data.to_model_range(points), points)
  np.testing.assert_array_equal(data.to_model_range(np.array([0, 255], np.uint8)), [-1.0, 1.0])


@pytest.mark.parametrize("loss", sorted(losses.OBJECTIVES))
def test_every_objective_learns_ring8(ring8_states, loss):
  assert loss in OBJECTIVE_SETTINGS, f"give the new objective {loss} its settings in OBJECTIVE_SETTINGS"
  passed, message = _check_modes(_point_statistics(ring8_states(loss), _ring8()), RING8_MIN_MODES,
                                 RING8_MIN_HIGH_QUALITY)
  assert passed, f"{loss}: {message}"


def test_ema_samples_are_at_least_as_good_as_the_raw_ones(ring8_states):
  state = ring8_states("nonsaturating")
  ema, raw = _point_statistics(state, _ring8(), ema=True), _point_statistics(state, _ring8(), ema=False)
  assert ema.modes_covered >= raw.modes_covered, f"EMA: {ema}; raw: {raw}"
  assert ema.high_quality_fraction >= raw.high_quality_fraction - EMA_TOLERANCE, f"EMA: {ema}; raw: {raw}"


def test_hinge_learns_grid25():
  data = synthetic.sample("grid25", GRID25_POINTS, seed=SEED)
  state = _train(_config(dataset="grid25", **GRID25_RECIPE), data.points, GRID25_STEPS)
  passed, message = _check_modes(_point_statistics(state, data), GRID25_MIN_MODES, GRID25_MIN_HIGH_QUALITY)
  assert passed, message


def _reversed_generator_loss(objective: losses.Objective) -> losses.Objective:
  return losses.Objective(objective.d_loss, lambda fake, real=None: -objective.g_loss(fake, real))


def test_a_generator_trained_the_wrong_way_fails_the_ring8_check(monkeypatch):
  """The check of test_every_objective_learns_ring8 can fail: G trained to make its samples look fake
  (the non-saturating loss negated), D as usual."""
  monkeypatch.setitem(losses.OBJECTIVES, "nonsaturating",
                      _reversed_generator_loss(losses.OBJECTIVES["nonsaturating"]))
  state = _train_ring8("nonsaturating")
  passed, message = _check_modes(_point_statistics(state, _ring8()), RING8_MIN_MODES, RING8_MIN_HIGH_QUALITY)
  assert not passed, f"a generator trained the wrong way passed: {message}"


# ---- Images ----


def _coloured_squares(num: int, size: int, seed: int) -> np.ndarray:
  """uint8 (num, size, size, 3): one square of a SQUARE_COLOURS colour, side size/4 to size/2, at a
  random place on black."""
  rng = np.random.default_rng(seed)
  side = rng.integers(size // 4, size // 2 + 1, num)
  top, left = rng.integers(0, size - side + 1), rng.integers(0, size - side + 1)
  pixels = np.arange(size)
  rows = (pixels >= top[:, None]) & (pixels < (top + side)[:, None])
  columns = (pixels >= left[:, None]) & (pixels < (left + side)[:, None])
  inside = rows[:, :, None] & columns[:, None, :]
  colours = SQUARE_COLOURS[rng.integers(0, len(SQUARE_COLOURS), num)]
  return np.where(inside[..., None], colours[:, None, None, :], 0).astype(np.uint8)


def _histogram_distance(images, reference) -> float:
  """Total variation distance between the pixel-value histograms (8 bins on [-1, 1]) of two image
  sets, averaged over the channels: 0 for the same distribution of values, 1 for disjoint ones."""
  def histograms(x):
    x = np.clip(np.asarray(x, np.float64), -1, 1)
    return np.stack([np.histogram(x[..., c], bins=8, range=(-1, 1))[0] / x[..., c].size
                     for c in range(x.shape[-1])])
  return float(0.5 * np.abs(histograms(images) - histograms(reference)).sum(axis=1).mean())


def _image_distances(**overrides) -> Tuple[float, float]:
  """(histogram distance of DCGAN samples to the data at initialisation, after IMAGE_STEPS steps)."""
  config = _config(**{**IMAGE_RECIPE, **overrides})
  images = _coloured_squares(1024, config.image_size, seed=SEED)
  reference = data.to_model_range(images)
  initial = create_train_state(config, jax.random.PRNGKey(config.seed), images.shape[1:])
  before = _histogram_distance(_samples(initial, 512, ema=False), reference)
  trained = _train(config, images, IMAGE_STEPS, steps_per_call=100)
  return before, _histogram_distance(_samples(trained, 512, ema=False), reference)


def _check_image_distances(before: float, after: float) -> Tuple[bool, str]:
  passed = after < IMAGE_MAX_DISTANCE_RATIO * before
  return passed, (f"histogram distance to the data {before:.3f} at initialisation, {after:.3f} after "
                  f"{IMAGE_STEPS} steps; needed < {IMAGE_MAX_DISTANCE_RATIO} x the initial one")


def test_dcgan_samples_move_towards_the_image_data():
  passed, message = _check_image_distances(*_image_distances())
  assert passed, message


def test_a_frozen_dcgan_generator_fails_the_image_check():
  passed, message = _check_image_distances(*_image_distances(**FROZEN_GENERATOR))
  assert not passed, f"a frozen generator passed: {message}"
