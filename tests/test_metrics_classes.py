"""Class fidelity of conditional generators: the linear probe and intra-FID on constructed features,
the probe's cache beside the reference statistics, and the class metrics in evaluate_features."""
import os

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import tensorflow_datasets as tfds

from gan_jax import metrics
from gan_jax.metrics import classes
from gan_jax.metrics import reference
from gan_jax.metrics import scores
from conftest import StandInInception


def _class_features(num_classes, per_class, dim, separation, seed=0):
  """Unit Gaussians around one random centre per class (the same centres for every seed, scaled by
  `separation`), the noise drawn with `seed`: (features, labels)."""
  centres = np.random.RandomState(100).normal(size=(num_classes, dim)) * separation
  labels = np.repeat(np.arange(num_classes), per_class)
  return centres[labels] + np.random.RandomState(seed).normal(size=(len(labels), dim)), labels


def test_the_probe_separates_separable_classes_and_is_at_chance_on_shuffled_labels():
  x, labels = _class_features(num_classes=5, per_class=200, dim=32, separation=1.0)
  held_out, held_out_labels = _class_features(num_classes=5, per_class=100, dim=32, separation=1.0,
                                              seed=1)
  probe = classes.fit_probe(x, labels, num_classes=5)
  assert probe.train_accuracy > 0.97 and probe.accuracy(held_out, held_out_labels) > 0.95
  # Labels that say nothing about the features: fitted, the probe still predicts new points at chance.
  rng = np.random.RandomState(1)
  shuffled = classes.fit_probe(x, rng.permutation(labels), num_classes=5)
  fresh, fresh_labels = _class_features(num_classes=5, per_class=400, dim=32, separation=1.0, seed=2)
  assert abs(shuffled.accuracy(fresh, fresh_labels) - 0.2) < 0.05
  # Standardisation: a feature scaled by 1e4 gives the same predictions.
  scaled = x * np.where(np.arange(32) == 3, 1e4, 1.0)
  np.testing.assert_array_equal(classes.fit_probe(scaled, labels, 5).predict(scaled), probe.predict(x))


def test_the_probe_minimises_its_objective():
  """The fit reaches the optimum of the documented objective, found here in float64 by scipy."""
  x, labels = _class_features(num_classes=3, per_class=30, dim=4, separation=0.5, seed=3)
  probe = classes.fit_probe(x, labels, num_classes=3, l2=0.1)
  z = (x - x.mean(0)) / x.std(0)
  one_hot = np.eye(3)[labels]

  def objective(flat):
    weights, bias = flat[:12].reshape(4, 3), flat[12:]
    log_p = scipy.special.log_softmax(z @ weights + bias, axis=1)
    return -np.sum(one_hot * log_p) / len(z) + 0.05 * np.sum(weights * weights)

  optimum = scipy.optimize.minimize(objective, np.zeros(15), method="BFGS", options={"gtol": 1e-10})
  fitted = objective(np.concatenate([probe.weights.ravel(), probe.bias]))
  assert optimum.fun <= fitted < optimum.fun + 1e-6
  np.testing.assert_allclose(probe.weights, optimum.x[:12].reshape(4, 3), atol=2e-3)
  assert optimum.fun < objective(np.zeros(15)) - 0.1  # far from where both started


def test_fid_of_samples_equals_fid_with_fewer_samples_than_dimensions():
  rng = np.random.RandomState(0)
  mixing = rng.normal(size=(64, 64)) / 8
  a, b = rng.normal(size=(40, 64)) @ mixing, rng.normal(size=(25, 64)) @ mixing * 1.3 + 0.2
  assert scores.fid_of_samples(a, b) == pytest.approx(scores.fid(a, b), rel=1e-6)
  assert scores.fid_of_samples(b, a) == pytest.approx(scores.fid(b, a), rel=1e-6)
  big = rng.normal(size=(100, 64))
  assert scores.fid_of_samples(big, big + 1) == pytest.approx(scores.fid(big, big + 1), rel=1e-12)


def test_intra_fid_is_the_mean_of_per_class_fids_and_grows_when_classes_are_permuted():
  # Class-shifted Gaussians: class c of either set is N(shift_c, I); generated class c of the second
  # generator holds the images of class c + 1.
  rng = np.random.RandomState(0)
  dim, per_class, num_classes = 8, 120, 3
  shifts = np.array([0.0, 3.0, 6.0])
  real_labels = np.repeat(np.arange(num_classes), per_class + 10)
  real = rng.normal(size=(len(real_labels), dim)) + shifts[real_labels, None]
  labels = np.repeat(np.arange(num_classes), per_class)
  generated = rng.normal(size=(len(labels), dim)) + shifts[labels, None]
  value, why_not = classes.intra_fid(generated, labels, real, real_labels, num_classes)
  by_hand = np.mean([scores.fid(generated[labels == c], real[real_labels == c]) for c in range(3)])
  assert why_not == "" and value == pytest.approx(by_hand, rel=1e-6)
  assert value < 2  # same distributions per class: sampling error only
  permuted, _ = classes.intra_fid(generated, (labels + 1) % num_classes, real, real_labels, num_classes)
  # Each permuted class is shifted by 3 (or 6) in every dimension: |mu1 - mu2|^2 = 9 * 8 (or 36 * 8).
  assert permuted > 50 * value and permuted == pytest.approx((72 + 72 + 288) / 3, rel=0.1)


def test_intra_fid_needs_enough_images_of_every_class():
  rng = np.random.RandomState(0)
  labels = np.repeat([0, 1], [100, 99])
  features = rng.normal(size=(len(labels), 4))
  real_labels = np.repeat([0, 1], 150)
  value, why_not = classes.intra_fid(features, labels, rng.normal(size=(300, 4)), real_labels, 2)
  assert value is None
  assert why_not == ("intra-FID needs 100 images of every class on either side; class 1 has 99 generated "
                     "images")
  assert classes.intra_fid(features, labels, rng.normal(size=(300, 4)), real_labels, 2,
                           min_per_class=99)[0] is not None


def test_class_metrics_of_generated_features():
  x, labels = _class_features(num_classes=4, per_class=150, dim=16, separation=1.0)
  statistics = metrics.ReferenceStatistics.from_features(x, "real", len(x), labels=labels)
  probe = classes.fit_probe(x, labels, 4)
  probe = probe.with_test_accuracy(x[::3], labels[::3], "test")
  generated, generated_labels = _class_features(num_classes=4, per_class=120, dim=16, separation=1.0,
                                                seed=1)
  results = metrics.evaluate_features(generated, statistics, metrics=("probe", "intra_fid"),
                                      labels=generated_labels, probe=probe)
  assert results["probe_accuracy"] > 0.95 and results["probe_accuracy_real_test"] > 0.95
  assert results["intra_fid"] == pytest.approx(np.mean(
      [scores.fid(generated[generated_labels == c], x[labels == c]) for c in range(4)]), rel=1e-6)
  wrong = metrics.evaluate_features(generated, statistics, metrics=("probe", "intra_fid"),
                                    labels=(generated_labels + 1) % 4, probe=probe)
  assert wrong["probe_accuracy"] < 0.05 and wrong["intra_fid"] > 10 * results["intra_fid"]
  # Without labels (an unconditional generator) there are no class metrics.
  assert metrics.evaluate_features(generated, statistics, metrics=("probe", "intra_fid"), probe=probe) == {}


def test_the_probe_is_fitted_once_and_cached_beside_the_statistics(tmp_path):
  extractor = StandInInception()
  with tfds.testing.mock_data(num_examples=40):
    statistics = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path),
                                              inception=extractor, need_labels=True)
    source = tfds.data_source("cifar10", split="train")
    expected_labels = [int(source[i]["label"]) for i in range(40)]
    probe = metrics.reference_probe("cifar10", "train", statistics, cache_dir=str(tmp_path),
                                    inception=extractor)
    seen = extractor.images_seen
    again = metrics.reference_probe("cifar10", "train", statistics, cache_dir=str(tmp_path),
                                    inception=extractor)
  np.testing.assert_array_equal(statistics.labels, expected_labels)
  assert seen == 80  # the training split, then the test split for the probe's ceiling
  assert extractor.images_seen == seen  # nothing computed again
  np.testing.assert_array_equal(again.weights, probe.weights)
  assert 0 <= probe.test_accuracy <= 1 and again.test_accuracy == probe.test_accuracy
  assert "tested on cifar10[test]" in again.description
  with tfds.testing.mock_data(num_examples=44):
    grown = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), inception=extractor,
                                         need_labels=True)
    refitted = metrics.reference_probe("cifar10", "train", grown, cache_dir=str(tmp_path),
                                       inception=extractor)
  assert refitted.dataset_size == 44 and probe.dataset_size == 40
  assert sorted(os.listdir(tmp_path / "reference_stats")) == [
      f"cifar10_test_all_{metrics.PROTOCOL}.npz", f"cifar10_train_all_{metrics.PROTOCOL}.npz",
      f"cifar10_train_all_{metrics.PROTOCOL}_{classes.PROBE_PROTOCOL}.npz"]


def test_statistics_cached_without_labels_are_recomputed_when_labels_are_needed(tmp_path):
  extractor = StandInInception()
  with tfds.testing.mock_data(num_examples=12):
    first = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), inception=extractor)
    path = reference.statistics_path(str(tmp_path), "cifar10", "train", None, None)
    # As gan_jax wrote them before labels were kept.
    dataclass_without = metrics.ReferenceStatistics(first.mu, first.sigma, first.features,
                                                    first.description, first.dataset_size)
    dataclass_without.save(path)
    assert metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path),
                                        inception=extractor).labels is None
    assert extractor.images_seen == 12
    relabelled = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path),
                                              inception=extractor, need_labels=True)
  assert extractor.images_seen == 24
  np.testing.assert_array_equal(relabelled.labels, first.labels)
