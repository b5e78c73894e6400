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


def test_decoded_split_is_cached_until_the_prepared_files_change(tmp_path, monkeypatch):
  monkeypatch.setenv("GAN_JAX_CACHE_DIR", str(tmp_path / "cache"))
  write_image_folder(str(tmp_path / "src"), per_class=3)
  data_dir = str(tmp_path / "tfds")
  import_images.import_images(str(tmp_path / "src"), "cached", data_dir)
  decoded = data.load_images("cached", data_dir=data_dir)
  cached_files = os.listdir(tmp_path / "cache" / "decoded")
  assert len(cached_files) == 1

  def no_decoding(*args):
    raise AssertionError("decoded again although the cache is valid")
  monkeypatch.setattr(data, "_read_all", no_decoding)
  again = data.load_images("cached", data_dir=data_dir)
  np.testing.assert_array_equal(again.images, decoded.images)
  np.testing.assert_array_equal(again.labels, decoded.labels)
  assert again.class_names == decoded.class_names
  monkeypatch.undo()

  # Re-importing other images under the same name is seen: the stale entry is replaced.
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(os.path.join(data_dir, "cached"))
  write_image_folder(str(tmp_path / "src2"), per_class=3, seed=7)
  import_images.import_images(str(tmp_path / "src2"), "cached", data_dir)
  monkeypatch.setenv("GAN_JAX_CACHE_DIR", str(tmp_path / "cache"))
  changed = data.load_images("cached", data_dir=data_dir)
  assert _pixel_bytes(changed.images) != _pixel_bytes(decoded.images)
  assert len(os.listdir(tmp_path / "cache" / "decoded")) == 1
  assert os.listdir(tmp_path / "cache" / "decoded") != cached_files


def test_an_unusable_decoded_cache_only_costs_decoding(tmp_path, monkeypatch):
  write_image_folder(str(tmp_path / "src"), per_class=2)
  data_dir = str(tmp_path / "tfds")
  import_images.import_images(str(tmp_path / "src"), "uncached", data_dir)
  blocker = tmp_path / "not_a_dir"
  blocker.write_text("a file where the cache directory should be")
  monkeypatch.setenv("GAN_JAX_CACHE_DIR", str(blocker))
  assert data.load_images("uncached", data_dir=data_dir).images.shape == (4, 32, 32, 3)
  # A truncated entry is ignored and rewritten.
  monkeypatch.setenv("GAN_JAX_CACHE_DIR", str(tmp_path / "cache"))
  first = data.load_images("uncached", data_dir=data_dir)
  entry = tmp_path / "cache" / "decoded" / os.listdir(tmp_path / "cache" / "decoded")[0]
  entry.write_bytes(entry.read_bytes()[:100])
  np.testing.assert_array_equal(data.load_images("uncached", data_dir=data_dir).images, first.images)
  np.testing.assert_array_equal(data.load_images("uncached", data_dir=data_dir).images, first.images)


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


def test_a_truncated_image_fails_the_import_by_name_and_leaves_nothing(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  src = tmp_path / "src"
  write_image_folder(str(src), per_class=2)
  broken = src / "cat" / "truncated.jpg"
  Image.fromarray(np.random.RandomState(0).randint(0, 256, (32, 32, 3), np.uint8)).save(broken)
  jpeg = broken.read_bytes()
  broken.write_bytes(jpeg[:jpeg.index(b"\xff\xda") + 40])  # the whole header, a little of the scan
  with pytest.raises(UserError, match=f"cannot read image {broken}"):
    import_images.import_images(str(src), "pics", str(tmp_path / "tfds"))
  assert not os.path.exists(tmp_path / "tfds" / "pics")  # the retry is not blocked
  broken.unlink()
  import_images.import_images(str(src), "pics", str(tmp_path / "tfds"))
  assert len(data.load_images("pics", data_dir=str(tmp_path / "tfds"))) == 4
