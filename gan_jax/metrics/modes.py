"""Mode-collapse metrics for data with known modes (gan_jax.synthetic), as in Unrolled GAN, VEEGAN and
PacGAN: pure numpy, no Inception network.

A sample is *high quality* when it lies within 3 standard deviations (Euclidean distance 3 * std) of
its nearest mode; it then belongs to that mode. A mode is *covered* when at least `min_count` high
quality samples belong to it. The default, 20, is PacGAN's threshold for 2,500 samples (VEEGAN's and
PacGAN's sample count): a mode that a generator drops gets at most a few stray samples, while a covered
mode of ring8 (grid25) expects 2,500 / 8 ~ 310 (100) of them, so neither noise nor a small imbalance
between modes flips the count. Scale it with the number of samples.
"""
from typing import NamedTuple

import numpy as np

MIN_COUNT = 20  # high-quality samples a mode needs to count as covered, for 2,500 samples
RADIUS_IN_STD = 3.0


class ModeStatistics(NamedTuple):
  modes_covered: int
  num_modes: int
  high_quality_fraction: float  # of the samples, within 3 std of their nearest mode
  counts: np.ndarray  # int (num_modes,): high-quality samples per mode

  def __str__(self):
    return (f"{self.modes_covered}/{self.num_modes} modes covered, "
            f"{100 * self.high_quality_fraction:.1f}% high-quality samples, per mode {self.counts.tolist()}")


def nearest_modes(samples, centres):
  """(index of the nearest centre (N,), distance to it (N,)) for samples (N, D) and centres (K, D)."""
  samples, centres = np.asarray(samples, np.float64), np.asarray(centres, np.float64)
  distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)
  nearest = np.argmin(distances, axis=1)
  return nearest, distances[np.arange(len(samples)), nearest]


def mode_statistics(samples, centres, std: float, min_count: int = MIN_COUNT) -> ModeStatistics:
  """Modes covered and the high-quality fraction of `samples` (N, D) for modes at `centres` (K, D)."""
  nearest, distance = nearest_modes(samples, centres)
  high_quality = distance <= RADIUS_IN_STD * std
  counts = np.bincount(nearest[high_quality], minlength=len(centres))
  return ModeStatistics(modes_covered=int(np.sum(counts >= min_count)), num_modes=len(centres),
                        high_quality_fraction=float(np.mean(high_quality)), counts=counts)
