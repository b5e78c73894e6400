"""A folder of images -> a prepared tfds dataset (array_record, no TensorFlow) -> training arrays."""
import os

import numpy as np
import pytest

from gan_jax import data
from gan_jax import import_images
from gan_jax.errors import UserError
from conftest import write_image_folder


def _pixel_bytes(images):
  return sorted(image.tobytes() for image in images)


def test_round_trip_keeps_pixels_labels_and_classes(tmp_path):
  written = write_image_folder(str(tmp_path / "src"), classes=("b_dog", "a_cat"), per_class=5)
  import_images.import_images(str(tmp_path / "src"), "pets", str(tmp_path / "tfds"))
  dataset = data.load_images("pets", data_dir=str(tmp_path / "tfds"))
  assert dataset.class_names == ["a_cat", "b_dog"]
  assert dataset.images.shape == (10, 32, 32, 3) and dataset.images.dtype == np.uint8
  assert _pixel_bytes(dataset.images) == _pixel_bytes(written.values())
  by_pixels = {image.tobytes(): label for image, label in zip(dataset.images, dataset.labels)}
  for path, pixels in written.items():
    assert by_pixels[pixels.tobytes()] == (0 if "a_cat" in path else 1)


def test_train_and_test_splits_resize_and_grayscale(tmp_path):
  write_image_folder(str(tmp_path / "src" / "train"), per_class=4, size=40)
  write_image_folder(str(tmp_path / "src" / "test"), per_class=2, size=40, seed=1)
  import_images.import_images(str(tmp_path / "src"), "gray", str(tmp_path / "tfds"), image_size=16,
                              channels=1)
  train = data.load_images("gray", "train", data_dir=str(tmp_path / "tfds"))
  test = data.load_images("gray", "test", data_dir=str(tmp_path / "tfds"))
  assert train.images.shape == (8, 16, 16, 1) and test.images.shape == (4, 16, 16, 1)
  padded = data.load_images("gray", "test", data_dir=str(tmp_path / "tfds"), image_size=32)
  assert padded.images.shape == (4, 32, 32, 1)
  assert (padded.images[:, :8] == 0).all()  # centred on a black canvas


def test_host_shards_partition_the_split(image_dataset):
  data_dir, name = image_dataset
  whole = data.load_images(name, data_dir=data_dir)
  shards = [data.load_images(name, data_dir=data_dir, shard_index=i, shard_count=3) for i in range(3)]
  assert _pixel_bytes(np.concatenate([s.images for s in shards])) == _pixel_bytes(whole.images)


@pytest.mark.parametrize("case, message", [
    ("missing", "is not a folder"),
    ("no_classes", "no class subfolders"),
    ("tfds_name", "is a tfds dataset name"),
    ("bad_name", "lower_snake_case"),
    ("exists", "already exists"),
    ("not_square", "set --image_size"),
])
def test_bad_imports_are_explained(tmp_path, case, message):
  src, name = str(tmp_path / "src"), "pics"
  os.makedirs(src)
  if case != "no_classes":
    write_image_folder(src, per_class=1)
  if case == "missing":
    src = str(tmp_path / "nowhere")
  elif case == "tfds_name":
    name = "cifar10"
  elif case == "bad_name":
    name = "My Pics"
  elif case == "exists":
    os.makedirs(tmp_path / "tfds" / name)
  elif case == "not_square":
    from PIL import Image  # pylint: disable=g-import-not-at-top
    os.makedirs(os.path.join(src, "aaa"))
    Image.new("RGB", (30, 20)).save(os.path.join(src, "aaa", "0.png"))
  with pytest.raises(UserError, match=message):
    import_images.import_images(src, name, str(tmp_path / "tfds"))
