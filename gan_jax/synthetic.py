"""Synthetic 2-D datasets with known modes: mixtures of equally likely isotropic Gaussians, the standard
mode-collapse benchmarks (Metz et al. 2017, Unrolled GAN; Srivastava et al. 2017, VEEGAN; Lin et al.
2018, PacGAN). Since the modes are known, what a generator learned can be scored exactly
(gan_jax.metrics.modes).

  ring8:  8 Gaussians evenly spaced on a circle of radius 2, std 0.02
  grid25: 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05
"""
from typing import NamedTuple

import numpy as np


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
