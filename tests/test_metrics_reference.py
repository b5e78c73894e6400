"""Reference statistics: computed once per dataset split and protocol, then read from the cache."""
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import metrics
from gan_jax.errors import UserError
from gan_jax.metrics import reference
from conftest import StandInInception


def test_statistics_are_computed_once_and_round_trip(tmp_path):
  extractor = StandInInception(dim=16)
  with tfds.testing.mock_data(num_examples=12):
    first = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), inception=extractor)
    images = tfds.data_source("cifar10", split="train")
    pixels = np.stack([np.asarray(images[i]["image"]) for i in range(12)])
    again = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), inception=extractor)
  assert extractor.images_seen == 12
  expected = extractor.features(pixels, None)
  np.testing.assert_allclose(first.mu, expected.mean(0))
  np.testing.assert_allclose(first.sigma, np.cov(expected, rowvar=False))
  for field in ("mu", "sigma", "features"):
    np.testing.assert_array_equal(getattr(again, field), getattr(first, field))
  assert again.dataset_size == 12 and "cifar10[train] 12 images" in again.description
  [cached] = os.listdir(tmp_path / "reference_stats")
  assert cached == f"cifar10_train_all_{metrics.PROTOCOL}.npz"


def test_subsets_sizes_and_splits_have_their_own_files(tmp_path):
  extractor = StandInInception(dim=16)
  with tfds.testing.mock_data(num_examples=12):
    subset = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), reference_size=5,
                                          image_size=36, inception=extractor)
    smaller = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), reference_size=4,
                                           image_size=36, inception=extractor)
    test_split = metrics.reference_statistics("cifar10", "test", cache_dir=str(tmp_path),
                                              inception=extractor)
  assert len(subset.features) == 5 and len(smaller.features) == 4 and len(test_split.features) == 12
  assert "5 of 12 images (seed 0)" in subset.description
  assert sorted(os.listdir(tmp_path / "reference_stats")) == [
      f"cifar10_test_all_{metrics.PROTOCOL}.npz", f"cifar10_train_36px_n4-seed0_{metrics.PROTOCOL}.npz",
      f"cifar10_train_36px_n5-seed0_{metrics.PROTOCOL}.npz"]


def test_the_subset_is_fixed_and_seeded(tmp_path):
  first = reference.reference_subset(50000, 10000)
  assert len(np.unique(first)) == 10000 and np.all(np.diff(first) > 0) and first[-1] < 50000
  np.testing.assert_array_equal(first, reference.reference_subset(50000, 10000))
  # Known values: the subset must not change with numpy versions or calls, or cached statistics and
  # FIDs of different sessions would silently differ.
  np.testing.assert_array_equal(reference.reference_subset(10, 4), [2, 4, 8, 9])
  extractor = StandInInception(dim=16)
  with tfds.testing.mock_data(num_examples=12):
    subset = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), reference_size=4,
                                          inception=extractor)
    images = tfds.data_source("cifar10", split="train")
    chosen = np.stack([np.asarray(images[int(i)]["image"]) for i in reference.reference_subset(12, 4)])
  np.testing.assert_allclose(subset.features, extractor.features(chosen, None), rtol=1e-6)


def test_a_subset_of_the_whole_split_shares_its_statistics(tmp_path):
  extractor = StandInInception(dim=16)
  with tfds.testing.mock_data(num_examples=12):
    metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), reference_size=12,
                                 inception=extractor)
  assert os.listdir(tmp_path / "reference_stats") == [f"cifar10_train_all_{metrics.PROTOCOL}.npz"]


@pytest.mark.parametrize("size", [13, -1])
def test_a_reference_size_beyond_the_split_is_a_user_error(tmp_path, size):
  with tfds.testing.mock_data(num_examples=12):
    with pytest.raises(UserError, match=f"--reference_size={size} must be between 1 and the 12 images of "
                       r"cifar10\[train\], or 0 for the whole split"):
      metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), reference_size=size,
                                   inception=StandInInception(dim=16))
  assert not os.path.exists(tmp_path / "reference_stats")


def test_a_split_that_changed_size_is_recomputed(tmp_path):
  extractor = StandInInception(dim=16)
  with tfds.testing.mock_data(num_examples=8):
    metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), inception=extractor)
  with tfds.testing.mock_data(num_examples=10):
    grown = metrics.reference_statistics("cifar10", "train", cache_dir=str(tmp_path), inception=extractor)
  assert extractor.images_seen == 18 and grown.dataset_size == 10


def test_statistics_of_another_protocol_are_refused(tmp_path):
  path = str(tmp_path / "stats.npz")
  metrics.ReferenceStatistics.from_features(np.eye(4), "x", 4).save(path)
  with np.load(path) as f:
    contents = dict(f)
  np.savez(path, **{**contents, "protocol": np.array("other-network")})
  with pytest.raises(UserError, match="protocol other-network"):
    metrics.ReferenceStatistics.load(path)


def test_unknown_metric_is_a_user_error():
  reference = metrics.ReferenceStatistics.from_features(np.eye(4), "x", 4)
  with pytest.raises(UserError, match="unknown metrics"):
    metrics.evaluate_features(np.eye(4), reference, metrics=("fid", "lpips"))
