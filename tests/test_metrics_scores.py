"""FID, KID, IS and precision/recall against direct numpy/scipy implementations of their definitions."""
import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.special

from gan_jax import metrics
from gan_jax.metrics import scores


def _features(n, dim=32, seed=0, shift=0.0, scale=1.0):
  rng = np.random.RandomState(seed)
  mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
  return np.abs(rng.normal(size=(n, dim)) @ mixing * scale + shift)


def _fid_with_sqrtm(x, y):
  """The formula as pytorch-fid and TTUR's reference code compute it."""
  mu1, mu2 = x.mean(0), y.mean(0)
  s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def test_fid_matches_sqrtm_formula():
  x, y = _features(500, seed=0), _features(400, seed=1, shift=0.3, scale=1.2)
  np.testing.assert_allclose(metrics.fid(x, y), _fid_with_sqrtm(x, y), rtol=1e-8)


def test_frechet_distance_of_known_gaussians():
  # Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
  mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
  expected = 5 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
  assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fid_of_identical_sets_is_zero_also_when_covariance_is_singular():
  x = _features(20, dim=64)  # 20 samples in 64 dimensions: rank-deficient covariance.
  # Square roots of rounding errors around the zero eigenvalues leave ~1e-8 of the scale.
  assert abs(metrics.fid(x, x)) < 1e-6 * np.trace(np.cov(x, rowvar=False))


def test_fid_grows_with_distance_between_distributions():
  x = _features(300, seed=0)
  fids = [metrics.fid(x, _features(300, seed=1, shift=shift)) for shift in (0.0, 0.5, 1.0, 2.0)]
  assert fids == sorted(fids) and fids[-1] > 10 * fids[0]


def _unbiased_mmd2(x, y):
  """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, summing over pairs one by one."""
  d, m = x.shape[1], len(x)
  k = lambda a, b: (a @ b / d + 1) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
  return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_matches_definition_on_the_same_subsets():
  x, y = _features(60, dim=8, seed=0), _features(50, dim=8, seed=1, shift=0.5)
  mean, std = metrics.kid(x, y, num_subsets=3, subset_size=20, seed=7)
  rng = np.random.RandomState(7)
  estimates = []
  for _ in range(3):
    xs = x[rng.choice(60, 20, replace=False)]
    ys = y[rng.choice(50, 20, replace=False)]
    estimates.append(_unbiased_mmd2(xs, ys))
  assert mean == pytest.approx(np.mean(estimates), rel=1e-10)
  assert std == pytest.approx(np.std(estimates), rel=1e-8)


def test_kid_is_near_zero_for_one_distribution_and_positive_between_two():
  x, x2 = _features(400, seed=0), _features(400, seed=1)
  far = _features(400, seed=2, shift=1.0)
  same, _ = metrics.kid(x, x2, num_subsets=20, subset_size=200)
  different, _ = metrics.kid(x, far, num_subsets=20, subset_size=200)
  assert abs(same) < 0.05 * different


def test_kid_subset_size_is_capped_by_the_sets():
  x, y = _features(30, dim=8, seed=0), _features(25, dim=8, seed=1)
  mean, _ = metrics.kid(x, y, num_subsets=1, subset_size=1000, seed=0)
  rng = np.random.RandomState(0)
  xs, ys = x[rng.choice(30, 25, replace=False)], y[rng.choice(25, 25, replace=False)]
  assert mean == pytest.approx(_unbiased_mmd2(xs, ys), rel=1e-10)


def test_inception_score_matches_definition():
  logits = np.random.RandomState(0).normal(scale=3, size=(103, 1008))
  mean, std = metrics.inception_score(logits, num_splits=10)
  split_scores = []
  for i in range(10):
    p = scipy.special.softmax(logits[i * 103 // 10:(i + 1) * 103 // 10], axis=1)
    marginal = p.mean(axis=0)
    split_scores.append(np.exp(np.mean([scipy.special.rel_entr(row, marginal).sum() for row in p])))
  assert mean == pytest.approx(np.mean(split_scores), rel=1e-10)
  assert std == pytest.approx(np.std(split_scores), rel=1e-8)


def test_inception_score_bounds():
  # One confident class per sample, all classes used equally: the score is the number of classes.
  confident = np.full((100, 1008), -1e4)
  confident[np.arange(100), np.arange(100) % 10] = 0
  assert metrics.inception_score(confident, num_splits=1)[0] == pytest.approx(10, rel=1e-6)
  assert metrics.inception_score(np.zeros((100, 1008)), num_splits=1)[0] == pytest.approx(1, rel=1e-9)


def _precision_recall_brute_force(real, fake, k):
  def radii(points):
    return np.sort(scipy.spatial.distance.cdist(points, points), axis=1)[:, k]
  real_radii, fake_radii = radii(real), radii(fake)
  precision = (scipy.spatial.distance.cdist(fake, real) <= real_radii[None]).any(axis=1).mean()
  recall = (scipy.spatial.distance.cdist(real, fake) <= fake_radii[None]).any(axis=1).mean()
  return precision, recall


@pytest.mark.parametrize("row_block", [1024, 16])  # 16: several blocks, the last one padded.
def test_precision_recall_matches_brute_force(monkeypatch, row_block):
  monkeypatch.setattr(scores, "_ROW_BLOCK", row_block)
  real = _features(120, dim=16, seed=0)
  fake = _features(90, dim=16, seed=1, shift=0.4, scale=0.7)
  precision, recall = metrics.precision_recall(real, fake, k=3)
  expected = _precision_recall_brute_force(real, fake, k=3)
  assert (precision, recall) == pytest.approx(expected, abs=1e-12)
  assert 0 < precision < 1 and 0 < recall < 1


def test_precision_recall_of_a_set_with_itself_is_one():
  real = _features(50, dim=16)
  assert metrics.precision_recall(real, real) == (1.0, 1.0)


def test_precision_recall_names_say_which_features_they_come_from():
  """precision/recall only from VGG-16 features (the published metric); on Inception features they are
  precision_inception/recall_inception."""
  real, fake = _features(80, dim=16, seed=0), _features(70, dim=16, seed=1, shift=0.4, scale=0.7)
  vgg_real, vgg_fake = _features(80, dim=24, seed=2), _features(70, dim=24, seed=3, shift=0.1)
  reference = metrics.ReferenceStatistics.from_features(real, "real", len(real))
  inception_only = metrics.evaluate_features(fake, reference, metrics=("pr",))
  assert set(inception_only) == {"precision_inception", "recall_inception"}
  assert (inception_only["precision_inception"], inception_only["recall_inception"]) == pytest.approx(
      _precision_recall_brute_force(real, fake, k=3), abs=1e-12)
  both = metrics.evaluate_features(fake, reference, metrics=("pr",), vgg_features=vgg_fake,
                                   vgg_reference=vgg_real)
  assert (both["precision"], both["recall"]) == pytest.approx(
      _precision_recall_brute_force(vgg_real, vgg_fake, k=3), abs=1e-12)
  assert (both["precision"], both["recall"]) != (both["precision_inception"], both["recall_inception"])
