"""Where splits come from: tfds sources of standard datasets (prepared on first use where that can work,
with an offline probe that says why not) and of the user's prepared folders, and splits packed as JPEG
bytes (JpegNpzSource), read without tfds.

A source is anything with the `Source` protocol: a new storage format is one class here (or in a file of
its own) and one branch of `open_source`.
"""
import glob
import importlib.util
import io
import os
import types
import urllib.error
import urllib.request
import zipfile
from typing import Optional, Protocol, Sequence

from absl import logging
import numpy as np
from PIL import Image
try:
  import tensorflow_datasets as tfds
except ImportError:  # a machine that reads only JpegNpzSource splits (the GPU image of README.md)
  tfds = None

from gan_jax.errors import UserError

# Datasets that tfds knows how to prepare. Any other name must be a dataset prepared in data_dir, for
# example by `python -m gan_jax.import_images`.
STANDARD_DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn_cropped")
READ_CHUNK = 4096  # records read at once


class Source(Protocol):
  """What gan_jax reads of a split: len, source[i] and (optionally, faster) source.__getitems__ give
  records {"image": uint8 (H, W[, C]), "label": int}; dataset_info gives data_dir (or None) and
  features["image"].shape and features["label"].names (tfds's DatasetInfo has them)."""
  dataset_info: object

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> dict: ...


def default_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


# Standard datasets whose images public mirrors hold as files import_images reads (README.md says how).
_MIRROR_HINTS = dict.fromkeys(("mnist", "fashion_mnist"), " (README.md, 'Real MNIST and Fashion-MNIST "
                              "without internet', names public mirrors and gives the commands)")


def _prepare_hint(name: str, data_dir: str) -> str:
  if name in STANDARD_DATASETS:
    return (f"it is prepared on first use where TensorFlow is installed (`pip install -e \".[tf]\"`) and the "
            f"internet is reachable; or copy a prepared {data_dir}/{name} from another machine, or import its "
            f"image files under another name with `python -m gan_jax.import_images --src=DIR "
            f"--name={name}_images --data_dir={data_dir}` and train with --dataset={name}_images"
            + _MIRROR_HINTS.get(name, ""))
  return (f"import your images with `python -m gan_jax.import_images --src=DIR --name={name} "
          f"--data_dir={data_dir}`, or pick one of {', '.join(STANDARD_DATASETS)}")


# tfds fetches its datasets from their hosts or its GCS mirror; one quick HTTPS request tells whether a
# download can work, where tfds itself would retry for minutes. (A TCP connection is not enough: some
# sandboxes accept any connection and answer nothing.)
_INTERNET_PROBE = "https://storage.googleapis.com/"
_PROBE_SECONDS = 3.0


def _why_cannot_prepare() -> Optional[str]:
  """None when tfds can prepare a standard dataset here; else the reason, for the user."""
  if importlib.util.find_spec("tensorflow") is None:
    return "TensorFlow, which tfds needs to prepare it, is not installed"
  try:
    urllib.request.urlopen(urllib.request.Request(_INTERNET_PROBE, method="HEAD"),
                           timeout=_PROBE_SECONDS).close()
  except urllib.error.HTTPError:
    pass  # an HTTP answer, whatever its status, proves the way out
  except (OSError, ValueError):  # URLError, timeouts, TLS failures
    return f"the internet is not reachable ({_INTERNET_PROBE} did not answer within {_PROBE_SECONDS:g} s)"
  return None


def prepare_standard(name: str, data_dir: str) -> None:
  """Downloads and prepares tfds dataset `name` as array_record, as `tfds.load` would (with tfds's
  progress bars), through tfds's Python API: its `tfds build` command needs apache_beam."""
  reason = _why_cannot_prepare()
  if reason:
    raise UserError(f"dataset '{name}' is not prepared in {data_dir} and cannot be prepared here: {reason}; "
                    f"{_prepare_hint(name, data_dir)}")
  logging.info("Preparing %s in %s (first use: download and conversion)", name, data_dir)
  tfds.builder(name, data_dir=data_dir, file_format="array_record").download_and_prepare()


def open_source(name: str, split: str, data_dir: Optional[str] = None, prepare: bool = True):
  """Opens a prepared split as a random-access tfds source. With `prepare`, a standard dataset that is
  not prepared yet is prepared first when it can be (prepare_standard); nothing else is downloaded."""
  data_dir = data_dir or default_data_dir()
  packed = jpeg_npz_path(name, split, data_dir)
  if packed and os.path.exists(packed):
    return JpegNpzSource(packed)
  try:
    return _open_prepared(name, split, data_dir)
  except UserError:
    if not (prepare and name in STANDARD_DATASETS and not _prepared_versions(name, data_dir)):
      raise
  prepare_standard(name, data_dir)
  return _open_prepared(name, split, data_dir)


def _prepared_versions(name: str, data_dir: str) -> list:
  return glob.glob(os.path.join(data_dir, name, "*", "dataset_info.json")) + glob.glob(
      os.path.join(data_dir, name, "*", "*", "dataset_info.json"))


def _open_prepared(name: str, split: str, data_dir: str):
  if tfds is None:
    packed = jpeg_npz_path(name, split, data_dir)
    raise UserError(f"dataset '{name}' split '{split}' needs tensorflow-datasets, which is not installed "
                    "(`pip install tensorflow-datasets array_record`)"
                    + (f", or the packed split {packed}" if packed else ""))
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise UserError(f"unknown dataset '{name}': it is neither a tfds dataset nor prepared in "
                    f"{data_dir}; {_prepare_hint(name, data_dir)}") from e
  except (AssertionError, NotImplementedError, FileNotFoundError, ValueError) as e:
    # tfds says "not found" (AssertionError), "wrong file format" (NotImplementedError) or "unknown
    # split" (ValueError) here.
    if not _prepared_versions(name, data_dir):
      reason = f"nothing under {os.path.join(data_dir, name)}"
    else:
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"dataset '{name}' split '{split}' is not prepared as array_record in {data_dir} "
                    f"({reason}); {_prepare_hint(name, data_dir)}") from e


def jpeg_npz_path(name: str, split: str, data_dir: str) -> Optional[str]:
  """Where a dataset named `<stem>_jpeg` keeps a split packed as JPEG bytes: `<data_dir>/<stem>_<split>_jpeg.npz`
  (the names ../shared/tools/cifar10_jpeg.py writes: cifar10_jpeg -> cifar10_train_jpeg.npz); None for
  other names."""
  stem = name[:-len("_jpeg")] if name.endswith("_jpeg") else ""
  return os.path.join(data_dir, f"{stem}_{split}_jpeg.npz") if stem else None


class JpegNpzSource:
  """A split packed as JPEG bytes in one .npz (`data`: the files concatenated, uint8; `offsets`: int
  (n + 1,); `labels`; optional `classes`), read without tfds. It offers what this module and
  gan_jax.data.streaming use of a tfds source: len, source[i] and source.__getitems__ (records {"image":
  uint8 (H, W, 3), "label": int}) and dataset_info (data_dir, features' image shape and label names).
  Every image must have the first one's size."""

  def __init__(self, path: str):
    try:
      with np.load(path) as f:
        self._data, self._offsets, self._labels = f["data"], f["offsets"], f["labels"].astype(np.int32)
        classes = [str(c) for c in f["classes"]] if "classes" in f.files else None
      shape = self._decode(0).shape
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as e:
      raise UserError(f"{path} is not a split packed as JPEG bytes (keys data, offsets, labels): {e}") from e
    self.path = path
    classes = classes or [str(c) for c in range(int(self._labels.max()) + 1)]
    self.dataset_info = types.SimpleNamespace(data_dir=os.path.dirname(path), features={
        "image": types.SimpleNamespace(shape=shape), "label": types.SimpleNamespace(names=classes)})

  def _decode(self, index: int) -> np.ndarray:
    encoded = self._data[self._offsets[index]:self._offsets[index + 1]].tobytes()
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))

  def __len__(self) -> int:
    return len(self._offsets) - 1

  def __getitem__(self, index: int) -> dict:
    return {"image": self._decode(int(index)), "label": int(self._labels[index])}

  def __getitems__(self, indices: Sequence[int]) -> list:
    return [self[i] for i in indices]


def read_records(source, indices: np.ndarray) -> list:
  """The records at `indices`, READ_CHUNK at a time (batched where the source can)."""
  getitems = getattr(source, "__getitems__", None)
  records = []
  for start in range(0, len(indices), READ_CHUNK):
    chunk = [int(i) for i in indices[start:start + READ_CHUNK]]
    try:
      records.extend(getitems(chunk))
    except Exception:  # pylint: disable=broad-except
      # Batched reads are an optimisation; tfds's mock sources only support source[i].
      records.extend(source[i] for i in chunk)
  return records


def class_names(source) -> list:
  """The split's class names (["all"] for a dataset without labels)."""
  features = source.dataset_info.features
  return list(features["label"].names) if "label" in features else ["all"]
