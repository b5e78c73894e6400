"""FID, KID, Inception Score and precision/recall from Inception outputs (host numpy, float64).

Precision/recall's nearest-neighbour searches run in JAX so that 50k x 50k distance matrices are cheap
on an accelerator; everything else is small enough for float64 numpy.
"""
import functools
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np


def mean_and_covariance(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Mean and (unbiased, N-1) covariance of (N, D) features, in float64."""
  features = np.asarray(features, np.float64)
  if len(features) < 2:
    raise ValueError(f"a covariance needs at least 2 samples, got {len(features)}")
  return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  eigenvalues, eigenvectors = np.linalg.eigh(matrix)
  # Covariances are PSD; rounding leaves tiny negative eigenvalues that would turn the root complex.
  return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
  """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

  tr((S1 S2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the symmetric
  PSD matrix S1^(1/2) S2 S1^(1/2), which has the same eigenvalues as S1 S2. Unlike sqrtm(S1 S2) this
  stays real and accurate when the covariances are singular (fewer samples than dimensions).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  root1 = _psd_sqrt(sigma1)
  product = root1 @ sigma2 @ root1
  eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
  trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
  """Fréchet Inception Distance between two sets of (N, 2048) pool3 features."""
  return frechet_distance(*mean_and_covariance(features1), *mean_and_covariance(features2))


def fid_of_samples(features1: np.ndarray, features2: np.ndarray) -> float:
  """`fid` of two sets of features, computed from the samples: the same value, and far cheaper when a set
  has fewer samples than dimensions (the classes of intra-FID): no D x D matrix root.

  With centred samples A (n1, D) and B (n2, D), S1 = A^T A / (n1 - 1) and S2 = B^T B / (n2 - 1), the
  non-zero eigenvalues of S1 S2 are those of M M^T, M = A B^T / sqrt((n1 - 1)(n2 - 1)) (n1 x n2): so
  tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of the smaller of M M^T, M^T M.
  """
  x1, x2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  (n1, dim), n2 = x1.shape, len(x2)
  if min(n1, n2) < 2:
    raise ValueError(f"a covariance needs at least 2 samples, got {min(n1, n2)}")
  if min(n1, n2) >= dim:
    return fid(x1, x2)
  mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
  a, b = x1 - mu1, x2 - mu2
  m = a @ b.T / np.sqrt((n1 - 1) * (n2 - 1))
  gram = m @ m.T if n1 <= n2 else m.T @ m
  trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0, None)).sum()
  diff = mu1 - mu2
  return float(diff @ diff + np.sum(a * a) / (n1 - 1) + np.sum(b * b) / (n2 - 1) - 2 * trace_sqrt)


def kid(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> Tuple[float, float]:
  """Kernel Inception Distance (Bińkowski et al. 2018): mean and std over random subsets.

  Each subset pair draws min(subset_size, N1, N2) samples without replacement from either set and
  gives the unbiased MMD^2 estimate with the polynomial kernel k(x, y) = (x.y / D + 1)^3.
  """
  features1 = np.asarray(features1, np.float64)
  features2 = np.asarray(features2, np.float64)
  dim = features1.shape[1]
  m = min(subset_size, len(features1), len(features2))
  if m < 2:
    raise ValueError("KID needs at least 2 samples in each set")
  rng = np.random.RandomState(seed)
  kernel = lambda a, b: (a @ b.T / dim + 1) ** 3
  estimates = []
  for _ in range(num_subsets):
    x = features1[rng.choice(len(features1), m, replace=False)]
    y = features2[rng.choice(len(features2), m, replace=False)]
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    estimates.append(within - 2 * k_xy.sum() / (m * m))
  return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(logits: np.ndarray, num_splits: int = 10) -> Tuple[float, float]:
  """Inception Score (Salimans et al. 2016) of (N, 1008) logits: mean and std over `num_splits` splits.

  Split i holds samples [i * N // splits, (i + 1) * N // splits), as in the original code.
  """
  # Imported here: importing scipy.special adds ~0.3 s to every command's start on 2
  # cores (`python -X importtime`).
  import scipy.special  # pylint: disable=g-import-not-at-top
  log_p = scipy.special.log_softmax(np.asarray(logits, np.float64), axis=1)
  n = len(log_p)
  if n < num_splits:
    raise ValueError(f"the Inception Score needs at least {num_splits} samples, got {n}")
  scores = []
  for i in range(num_splits):
    part = log_p[i * n // num_splits:(i + 1) * n // num_splits]
    log_marginal = scipy.special.logsumexp(part, axis=0) - np.log(len(part))
    p = np.exp(part)
    # A class with p = 0 adds nothing to the KL divergence (0 log 0 = 0).
    kl = np.where(p > 0, p * (part - log_marginal), 0).sum(axis=1).mean()
    scores.append(np.exp(kl))
  return float(np.mean(scores)), float(np.std(scores))


_ROW_BLOCK = 1024
_HIGHEST = jax.lax.Precision.HIGHEST


def _squared_distances(rows, columns):
  dots = jnp.matmul(rows, columns.T, precision=_HIGHEST)
  distances = (rows * rows).sum(1)[:, None] - 2 * dots + (columns * columns).sum(1)[None, :]
  return jnp.maximum(distances, 0)


@functools.partial(jax.jit, static_argnames="k")
def _kth_neighbour_block(rows, points, k):
  # The nearest point to a row of `points` is itself (distance 0), so its k-th neighbour is the
  # (k+1)-th smallest distance.
  return -jax.lax.top_k(-_squared_distances(rows, points), k + 1)[0][:, k]


@jax.jit
def _inside_any_ball_block(rows, centres, squared_radii):
  return (_squared_distances(rows, centres) <= squared_radii[None, :]).any(axis=1)


def _map_row_blocks(fn, rows: np.ndarray, *args) -> np.ndarray:
  """fn over fixed-size row blocks (the last one padded) so that one compiled program serves all."""
  results = []
  for start in range(0, len(rows), _ROW_BLOCK):
    block = rows[start:start + _ROW_BLOCK]
    padded = np.pad(block, ((0, _ROW_BLOCK - len(block)), (0, 0)))
    results.append(np.asarray(fn(padded, *args))[:len(block)])
  return np.concatenate(results)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> Tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

  Each set's manifold is the union of balls around its samples reaching their k-th nearest neighbour.
  Precision: the fraction of fake samples inside the real manifold; recall: the fraction of real
  samples inside the fake manifold. Distances are Euclidean, in float32 on the default device.
  """
  real = jnp.asarray(np.asarray(real, np.float32))
  fake = jnp.asarray(np.asarray(fake, np.float32))
  if min(len(real), len(fake)) <= k:
    raise ValueError(f"precision/recall with k={k} needs more than {k} samples in each set")
  real_radii = _map_row_blocks(functools.partial(_kth_neighbour_block, k=k), np.asarray(real), real)
  fake_radii = _map_row_blocks(functools.partial(_kth_neighbour_block, k=k), np.asarray(fake), fake)
  precision = _map_row_blocks(_inside_any_ball_block, np.asarray(fake), real, jnp.asarray(real_radii))
  recall = _map_row_blocks(_inside_any_ball_block, np.asarray(real), fake, jnp.asarray(fake_radii))
  return float(precision.mean()), float(recall.mean())
