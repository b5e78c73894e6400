"""Standard tfds datasets are prepared on first use where tfds can do it, and explained in one line
within seconds where it cannot (no TensorFlow, no internet); never minutes of download retries."""
import importlib.util
import time

import numpy as np
import pytest

from gan_jax import data
from gan_jax.errors import UserError


def _pretend_tensorflow_is_installed(monkeypatch):
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: object() if name == "tensorflow" else real_find_spec(name, *a))


def test_without_tensorflow_the_message_comes_at_once(tmp_path, monkeypatch):
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
  start = time.time()
  with pytest.raises(UserError, match="cannot be prepared here: TensorFlow, which tfds needs"):
    data.open_source("cifar10", "train", str(tmp_path))
  assert time.time() - start < 10


def test_offline_the_message_comes_within_seconds(tmp_path, monkeypatch):
  _pretend_tensorflow_is_installed(monkeypatch)
  monkeypatch.setattr(data.sources, "_INTERNET_PROBE", "https://10.255.255.1/")  # never answers over HTTPS
  monkeypatch.setattr(data.sources, "_PROBE_SECONDS", 0.5)

  def no_download(*args, **kwargs):
    raise AssertionError("tfds's builder was called: a download would be attempted offline")
  monkeypatch.setattr(data.sources.tfds, "builder", no_download)
  start = time.time()
  with pytest.raises(UserError, match="the internet is not reachable"):
    data.open_source("mnist", "train", str(tmp_path))
  assert time.time() - start < 10
  assert not (tmp_path / "mnist").exists() and not (tmp_path / "downloads").exists()


def test_where_tfds_can_prepare_it_the_dataset_is_prepared_on_first_use(tmp_path, monkeypatch):
  """tfds's download cannot run here (no internet): its builder and reader are stubs, and the test
  checks the route: not prepared -> tfds's Python builder prepares it as array_record -> it is read."""
  monkeypatch.setattr(data.sources, "_why_cannot_prepare", lambda: None)
  built = []

  class Builder:
    def __init__(self, name, data_dir, file_format):
      built.append((name, data_dir, file_format))
      self.version_dir = tmp_path / name / "3.0.2"

    def download_and_prepare(self):
      self.version_dir.mkdir(parents=True)
      (self.version_dir / "dataset_info.json").write_text("{}")

  def data_source(name, split, data_dir, download):
    assert not download  # never tfds's own download path, which retries for minutes offline
    if not (tmp_path / name / "3.0.2" / "dataset_info.json").exists():
      raise AssertionError(f"Dataset {name} not found")
    return f"source of {name}[{split}]"

  monkeypatch.setattr(data.sources.tfds, "builder", Builder)
  monkeypatch.setattr(data.sources.tfds, "data_source", data_source)
  assert data.open_source("cifar10", "train", str(tmp_path)) == "source of cifar10[train]"
  assert built == [("cifar10", str(tmp_path), "array_record")]
  assert data.open_source("cifar10", "test", str(tmp_path)) == "source of cifar10[test]"
  assert len(built) == 1  # prepared once
  # A user's own dataset is never "prepared" by tfds.
  with pytest.raises(UserError, match="import your images"):
    data.open_source("my_photos", "train", str(tmp_path))
  assert len(built) == 1


def _write_packed(path, images, labels, classes):
  """A split in ../shared/tools/cifar10_jpeg.py's format."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  chunks = []
  for image in images:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG")
    chunks.append(buffer.getvalue())
  np.savez(path, data=np.frombuffer(b"".join(chunks), np.uint8),
           offsets=np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64),
           labels=np.asarray(labels, np.uint8), classes=np.array(classes))
  return chunks


def test_a_split_packed_as_jpeg_bytes_is_read_without_tfds(tmp_path, monkeypatch):
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = np.random.RandomState(0).randint(0, 256, (6, 16, 16, 3)).astype(np.uint8)
  chunks = _write_packed(tmp_path / "toys_train_jpeg.npz", images, [0, 1, 2, 0, 1, 2], ["a", "b", "c"])
  monkeypatch.setattr(data.sources, "tfds", None)  # as on a machine without tensorflow-datasets
  source = data.open_source("toys_jpeg", "train", str(tmp_path))
  assert isinstance(source, data.JpegNpzSource) and len(source) == 6
  assert data.class_names(source) == ["a", "b", "c"]  # pylint: disable=protected-access
  loaded = data.load_images("toys_jpeg", "train", str(tmp_path), image_size=32)
  decoded = np.stack([np.asarray(Image.open(io.BytesIO(c)).convert("RGB")) for c in chunks])
  assert loaded.images.shape == (6, 32, 32, 3) and loaded.labels.tolist() == [0, 1, 2, 0, 1, 2]
  assert (loaded.images[:, 8:24, 8:24] == decoded).all()  # centred on a black canvas, as other splits
  with pytest.raises(UserError, match="needs tensorflow-datasets, which is not installed.*toys_test_jpeg.npz"):
    data.open_source("toys_jpeg", "test", str(tmp_path))
  (tmp_path / "bad_train_jpeg.npz").write_bytes(b"not an npz")
  with pytest.raises(UserError, match="is not a split packed as JPEG bytes"):
    data.open_source("bad_jpeg", "train", str(tmp_path))
