"""A folder of images -> a prepared tfds dataset (array_record, no TensorFlow) -> training arrays."""
import concurrent.futures.process
import os

import numpy as np
import pytest

from gan_jax import data
from gan_jax import import_images
from gan_jax.errors import UserError
from conftest import run_cli
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
  monkeypatch.setattr(data.sources, "read_records", no_decoding)
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
    ("no_images", "no images"),
    ("tfds_name", "is a tfds dataset name"),
    ("bad_name", "lower_snake_case"),
    ("exists", "already exists"),
    ("not_square", "set --image_size"),
])
def test_bad_imports_are_explained(tmp_path, case, message):
  src, name = str(tmp_path / "src"), "pics"
  os.makedirs(src)
  if case == "no_images":
    os.makedirs(os.path.join(src, "cat"))
    with open(os.path.join(src, "cat", "notes.txt"), "w") as f:
      f.write("not an image file")
  elif case != "no_classes":
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


def _truncated_jpeg(path):
  """A JPEG cut inside its pixel data: the header reads, decoding fails."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(np.random.RandomState(0).randint(0, 256, (32, 32, 3), np.uint8)).save(path)
  jpeg = path.read_bytes()
  path.write_bytes(jpeg[:jpeg.index(b"\xff\xda") + 40])  # the whole header, a little of the scan


def _add_unreadable_files(src):
  """A truncated JPEG (the first file: it cannot give the image size), a text file named .jpg and an
  empty .png; returns their paths in file order."""
  bad = [src / "cat" / "0.jpg", src / "cat" / "notes.jpg", src / "dog" / "empty.png"]
  _truncated_jpeg(bad[0])
  bad[1].write_text("not an image")
  bad[2].write_bytes(b"")
  (src / "cat" / "readme.txt").write_text("no image extension: not even looked at")
  return [str(path) for path in bad]


def test_unreadable_files_are_skipped_counted_and_named_once(tmp_path, caplog):
  src = tmp_path / "src"
  written = write_image_folder(str(src), classes=("cat", "dog"), per_class=6)
  bad = _add_unreadable_files(src)
  imported = import_images.import_images(str(src), "pics", str(tmp_path / "tfds"))
  assert imported.examples == {"train": 12} and imported.skipped == bad
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "skipped" in r.msg]
  assert warnings == [f"skipped 3 of 15 files under {src} that are not readable images: "
                      "cat/0.jpg, cat/notes.jpg, dog/empty.png"]
  dataset = data.load_images("pics", data_dir=str(tmp_path / "tfds"))
  assert dataset.images.shape == (12, 32, 32, 3)
  by_pixels = {image.tobytes(): label for image, label in zip(dataset.images, dataset.labels)}
  assert by_pixels == {pixels.tobytes(): int("dog" in path) for path, pixels in written.items()}


def test_the_warning_names_ten_skipped_files():
  skipped = [f"/src/cat/{i}.jpg" for i in range(11)]
  assert import_images._skipped_warning(skipped, 20, "/src") == (  # pylint: disable=protected-access
      f"skipped 11 of 20 files under /src that are not readable images: "
      f"{', '.join(f'cat/{i}.jpg' for i in range(10))}, ...")


@pytest.mark.parametrize("split, image_size", [("train", 0), ("train", 32), ("test", 32)])
def test_a_split_without_a_readable_image_is_one_error_and_leaves_nothing(tmp_path, split, image_size):
  src = tmp_path / "src"
  write_image_folder(str(src / "train"), per_class=2)
  write_image_folder(str(src / "test"), per_class=1)
  for path in (src / split).glob("*/*.png"):
    path.write_text("not an image")
  with pytest.raises(UserError, match=f"none of the [0-9]+ image files of split '{split}' can be read"):
    import_images.import_images(str(src), "pics", str(tmp_path / "tfds"), image_size=image_size)
  assert not os.path.exists(tmp_path / "tfds" / "pics")  # the retry is not blocked


def test_a_worker_that_dies_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
  write_image_folder(str(tmp_path / "src"), per_class=2)

  def killed_worker(*args):
    raise concurrent.futures.process.BrokenProcessPool("A process in the process pool was terminated")
    yield  # pylint: disable=unreachable
  monkeypatch.setattr(import_images, "_decode_all", killed_worker)
  with pytest.raises(UserError, match="a decoding worker process died .* retry with fewer --workers"):
    import_images.import_images(str(tmp_path / "src"), "pics", str(tmp_path / "tfds"), image_size=32)
  assert not os.path.exists(tmp_path / "tfds" / "pics")


def test_the_dataset_is_the_same_whatever_the_number_of_workers(tmp_path):
  src = tmp_path / "src"
  write_image_folder(str(src), per_class=10, size=32)
  write_image_folder(str(tmp_path / "big"), per_class=4, size=40, seed=3)
  for path in (tmp_path / "big").glob("*/*.png"):  # some to resize, among those stored as they are
    path.rename(src / path.parent.name / f"big_{path.name}")
  _add_unreadable_files(src)
  files = {}
  for workers in (1, 2):
    data_dir = tmp_path / f"tfds_{workers}"
    imported = import_images.import_images(str(src), "pics", str(data_dir), image_size=32, workers=workers)
    assert imported.examples == {"train": 28} and len(imported.skipped) == 3
    files[workers] = {p.name: p.read_bytes() for p in (data_dir / "pics").glob("*/*.array_record*")}
  assert files[1] and files[1] == files[2]


def test_the_command_line_reports_what_it_imported_and_skipped(tmp_path):
  src = tmp_path / "src"
  write_image_folder(str(src), per_class=2)
  (src / "dog" / "bad.png").write_text("not an image")
  result = run_cli("gan_jax.import_images", f"--src={src}", "--name=pics",
                   f"--data_dir={tmp_path / 'tfds'}", "--workers=2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "skipped 1 of 5 files under" in result.stderr and "dog/bad.png" in result.stderr
  assert "Imported 4 train images; unreadable files skipped: 1" in result.stdout
  assert "--dataset=pics" in result.stdout.splitlines()[-1]


def _upscaled_digits(root, per_class, saved_mode, seed=0):
  """An MNIST-like folder: 28x28 grayscale 'digits' upscaled to 640x480 by nearest neighbour and saved as
  PNG (in `saved_mode`, L or RGB) in root/train/<digit>/ and root/test/<digit>/; returns
  {split: {28x28 pixels as bytes: digit}}."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  originals = {}
  for split, count in (("train", per_class), ("test", 1)):
    originals[split] = {}
    for digit in range(3):
      os.makedirs(root / split / str(digit))
      for i in range(count):
        pixels = rng.randint(0, 256, (28, 28)).astype(np.uint8)
        pixels[rng.rand(28, 28) < 0.6] = 0  # mostly black, as MNIST is
        Image.fromarray(pixels).resize((640, 480), Image.NEAREST).convert(saved_mode).save(
            root / split / str(digit) / f"{digit * 100 + i}.png")
        originals[split][pixels.tobytes()] = digit
  return originals


@pytest.mark.parametrize("saved_mode", ["L", "RGB"])
def test_nearest_recovers_upscaled_originals_exactly_and_trains_like_mnist(tmp_path, saved_mode):
  originals = _upscaled_digits(tmp_path / "src", per_class=4, saved_mode=saved_mode)
  data_dir = str(tmp_path / "tfds")
  imported = import_images.import_images(str(tmp_path / "src"), "digits", data_dir, image_size=28,
                                         channels=1, resize="nearest", workers=1)
  assert imported.examples == {"train": 12, "test": 3}
  for split in ("train", "test"):
    dataset = data.load_images("digits", split, data_dir=data_dir)
    assert dataset.images.shape == (len(originals[split]), 28, 28, 1)  # as tfds's mnist records
    assert dataset.class_names == ["0", "1", "2"]
    assert {i.tobytes(): int(l) for i, l in zip(dataset.images, dataset.labels)} == originals[split]
  # What training takes: 28x28 centred on a black 32x32 canvas, scaled to [-1, 1].
  from gan_jax import parallel  # pylint: disable=g-import-not-at-top
  train = data.load_split("digits", "train", data_dir, 32, budget_bytes=2**30)
  assert train.images.shape == (12, 32, 32, 1) and train.images.dtype == np.uint8
  scaled = np.asarray(data.to_model_range(train.images))
  assert scaled.min() == -1.0 and scaled.max() <= 1.0 and (scaled[:, :2] == -1.0).all()
  np.testing.assert_allclose(scaled[:, 2:30, 2:30], train.images[:, 2:30, 2:30] / 127.5 - 1.0, atol=1e-6)
  assert sorted(i[2:30, 2:30].tobytes() for i in train.images) == sorted(originals["train"])


def test_bicubic_does_not_recover_upscaled_originals(tmp_path):
  """Why --resize=nearest exists: the default crops the 640x480 frame's centre square and smooths."""
  originals = _upscaled_digits(tmp_path / "src", per_class=1, saved_mode="L")
  data_dir = str(tmp_path / "tfds")
  import_images.import_images(str(tmp_path / "src"), "digits", data_dir, image_size=28, channels=1,
                              workers=1)
  images = data.load_images("digits", data_dir=data_dir).images
  assert not set(i.tobytes() for i in images) & set(originals["train"])


@pytest.mark.parametrize("image_size, message", [
    (0, "--resize=nearest needs --image_size"),
    (32, "is not a nearest-neighbour upscale of a 32x32 image"),
    (1000, "is not a nearest-neighbour upscale of a 1000x1000 image"),
])
def test_nearest_with_a_wrong_size_is_one_error_and_leaves_nothing(tmp_path, image_size, message):
  _upscaled_digits(tmp_path / "src", per_class=1, saved_mode="L")
  with pytest.raises(UserError, match=message):
    import_images.import_images(str(tmp_path / "src"), "digits", str(tmp_path / "tfds"),
                                image_size=image_size, channels=1, resize="nearest")
  assert not os.path.exists(tmp_path / "tfds" / "digits")


def _write_idx1(path, labels):
  """An idx1-ubyte labels file as MNIST publishes them, gzipped when `path` ends in .gz."""
  import gzip  # pylint: disable=g-import-not-at-top
  import struct  # pylint: disable=g-import-not-at-top
  raw = struct.pack(">II", 0x801, len(labels)) + bytes(labels)
  path.write_bytes(gzip.compress(raw) if str(path).endswith(".gz") else raw)


FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover"]


@pytest.mark.parametrize("labels_name", ["t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"])
def test_an_unlabelled_test_folder_takes_its_labels_in_file_order(tmp_path, labels_name):
  """Fashion-MNIST's mirror: train/<0..9>/NNNN.png, unlabelled test/NNNN.png, labels in an idx1 file."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  src = tmp_path / "src"
  write_image_folder(str(src / "train"), classes=("0", "1", "2"), per_class=2, size=28, mode="L")
  os.makedirs(src / "test")
  labels = [2, 0, 1, 1, 0, 2, 2, 1, 0, 0, 1, 2]
  rng, by_pixels = np.random.RandomState(5), {}
  for i, label in enumerate(labels):  # 12 files: numeric order (2 before 10) is not the names' order
    pixels = rng.randint(0, 256, (28, 28)).astype(np.uint8)
    Image.fromarray(pixels).save(src / "test" / f"{i}.png")
    by_pixels[pixels.tobytes()] = label
  _write_idx1(tmp_path / labels_name, labels)
  data_dir = str(tmp_path / "tfds")
  imported = import_images.import_images(str(src), "fashion", data_dir, channels=1,
                                         class_names=FASHION_NAMES, test_labels=str(tmp_path / labels_name))
  assert imported.examples == {"train": 6, "test": 12}
  test = data.load_images("fashion", "test", data_dir=data_dir)
  assert test.class_names == FASHION_NAMES and test.images.shape == (12, 28, 28, 1)
  assert {i.tobytes(): int(l) for i, l in zip(test.images, test.labels)} == by_pixels
  assert data.load_images("fashion", data_dir=data_dir).class_names == FASHION_NAMES


@pytest.mark.parametrize("case, message", [
    ("count", "holds 3 image files but --test_labels=.* has 4 labels"),
    ("label", "has label 7, but there are only 2 classes"),
    ("magic", "is not an idx1-ubyte labels file"),
    ("truncated", "says it holds 3 labels but has 2 label bytes"),
    ("missing", "cannot be read"),
    ("no_test", "has no train/ and test/ folders"),
    ("names", "--class_names has 3 names but there are 2 class folders"),
])
def test_bad_test_labels_and_class_names_are_explained(tmp_path, case, message):
  src = tmp_path / "src"
  write_image_folder(str(src / "train"), per_class=1)
  write_image_folder(str(tmp_path / "flat"), classes=("x",), per_class=3)
  os.rename(tmp_path / "flat" / "x", src / "test")
  labels_path = tmp_path / "labels-idx1-ubyte"
  _write_idx1(labels_path, {"count": [0, 1, 0, 1], "label": [0, 7, 1]}.get(case, [0, 1, 0]))
  if case == "magic":
    labels_path.write_bytes(b"\x00\x00\x08\x03" + labels_path.read_bytes()[4:])
  elif case == "truncated":
    labels_path.write_bytes(labels_path.read_bytes()[:-1])
  elif case == "missing":
    labels_path = tmp_path / "nowhere"
  elif case == "no_test":
    src = src / "train"
  class_names = ["a", "b", "c"] if case == "names" else None
  with pytest.raises(UserError, match=message):
    import_images.import_images(str(src), "pics", str(tmp_path / "tfds"), class_names=class_names,
                                test_labels=str(labels_path))
  assert not os.path.exists(tmp_path / "tfds" / "pics")


def test_the_command_line_takes_nearest_class_names_and_test_labels(tmp_path):
  originals = _upscaled_digits(tmp_path / "src", per_class=1, saved_mode="L")
  src = tmp_path / "src"
  for path in (src / "test").glob("*/*.png"):  # an unlabelled test folder, as Fashion-MNIST's mirror has
    path.rename(src / "test" / f"{path.parent.name}.png")
  _write_idx1(tmp_path / "labels-idx1-ubyte.gz", [0, 1, 2])
  data_dir = tmp_path / "tfds"
  result = run_cli("gan_jax.import_images", f"--src={src}", "--name=clothes", f"--data_dir={data_dir}",
                   "--image_size=28", "--channels=1", "--resize=nearest", "--workers=1",
                   "--class_names=T-shirt/top,Trouser,Ankle boot",
                   f"--test_labels={tmp_path / 'labels-idx1-ubyte.gz'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Imported 3 train, 3 test images" in result.stdout
  assert "0 -> T-shirt/top, 1 -> Trouser, 2 -> Ankle boot" in result.stderr
  test = data.load_images("clothes", "test", data_dir=str(data_dir))
  assert test.class_names == ["T-shirt/top", "Trouser", "Ankle boot"]
  assert {i.tobytes(): int(l) for i, l in zip(test.images, test.labels)} == originals["test"]


def test_an_unprepared_mnist_points_to_the_offline_mirrors(tmp_path):
  with pytest.raises(UserError, match="Real MNIST and Fashion-MNIST without internet"):
    data.open_source("fashion_mnist", "train", str(tmp_path), prepare=False)
