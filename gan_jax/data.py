"""Image datasets read through tfds: standard tfds datasets by name or the user's own prepared folders.

Everything is read with `tfds.data_source` (array_record files), which needs no TensorFlow; a split packed
as JPEG bytes in one .npz (JpegNpzSource: the CIFAR-10 mirror as ../shared/tools/cifar10_jpeg.py packs
it) is read without tfds at all, so a machine that only trains on it needs neither tfds nor array_record.
Images stay
uint8 on the host and on the devices; the train step scales them to [-1, 1]. A split that fits the
memory budget is read whole into memory and kept on the devices (load_images); a larger one is streamed
(gan_jax.streaming); load_split chooses.

Decoding is the slow part of reading (CIFAR-10's 50,000 JPEGs: ~7 s on one core, most of a warm start),
so a decoded split is kept in the user cache (gan_jax.user_cache, `decoded/`) and read from there while
the prepared files are unchanged (same names, sizes and modification times).
"""
import dataclasses
import glob
import hashlib
import importlib.util
import io
import os
import re
import types
import urllib.error
import urllib.request
import zipfile
from typing import Iterator, Optional, Sequence, Tuple

from absl import logging
import numpy as np
from PIL import Image
try:
  import tensorflow_datasets as tfds
except ImportError:  # a machine that reads only JpegNpzSource splits (the GPU image of README.md)
  tfds = None

from gan_jax import files
from gan_jax import streaming
from gan_jax import user_cache
from gan_jax.errors import UserError

# Datasets that tfds knows how to prepare. Any other name must be a dataset prepared in data_dir, for
# example by `python -m gan_jax.import_images`.
STANDARD_DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn_cropped")
_READ_CHUNK = 4096
# Larger decoded splits are not cached: they would fill the user's disk for a few seconds of decoding.
MAX_CACHED_BYTES = 4 * 2**30


@dataclasses.dataclass(frozen=True)
class ImageDataset:
  """A whole split in host memory: images uint8 (N, H, W, C), labels int32 (N,)."""
  images: np.ndarray
  labels: np.ndarray
  class_names: Sequence[str]

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def __len__(self) -> int:
    return len(self.images)

  @property
  def image_shape(self) -> tuple:
    return self.images.shape[1:]

  def preview(self, count: int) -> np.ndarray:
    """The first `count` images (the real-image grid)."""
    return self.images[:count]


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
  gan_jax.streaming use of a tfds source: len, source[i] and source.__getitems__ (records {"image":
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


def _read_all(source, indices: np.ndarray) -> list:
  getitems = getattr(source, "__getitems__", None)
  records = []
  for start in range(0, len(indices), _READ_CHUNK):
    chunk = [int(i) for i in indices[start:start + _READ_CHUNK]]
    try:
      records.extend(getitems(chunk))
    except Exception:  # pylint: disable=broad-except
      # Batched reads are an optimisation; tfds's mock sources only support source[i].
      records.extend(source[i] for i in chunk)
  return records


def _decoded_cache_path(source, name: str, split: str, shard_index: int,
                        shard_count: int) -> Optional[str]:
  """Where the decoded shard is cached, named by a fingerprint of the split's prepared files; None for
  sources without files (tfds's mock data)."""
  if isinstance(source, JpegNpzSource):
    files = [source.path]
  else:
    info_dir = getattr(source.dataset_info, "data_dir", None)
    base_split = split.split("[")[0]
    files = sorted(glob.glob(os.path.join(info_dir, f"*-{base_split}.array_record*"))) if info_dir else []
  if not files:
    return None
  fingerprint = hashlib.sha1()
  for path in files:
    stat = os.stat(path)
    fingerprint.update(f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
  fingerprint.update(split.encode())
  prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{name}_{split}_{shard_index}of{shard_count}")
  return os.path.join(user_cache.root(), "decoded", f"{prefix}_{fingerprint.hexdigest()[:16]}.npz")


def _read_cached(path: Optional[str]):
  if not path or not os.path.exists(path):
    return None
  try:
    with np.load(path) as cached:
      return cached["images"], cached["labels"]
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:  # truncated or foreign: decode again
    logging.warning("Ignoring unreadable decoded cache %s (%s)", path, e)
    return None


def _write_cached(path: Optional[str], images: np.ndarray, labels: np.ndarray) -> None:
  """Writes atomically and removes this shard's entries of earlier versions of the files. Best effort:
  a full or read-only disk costs only the next start's decoding time."""
  if not path or images.nbytes > MAX_CACHED_BYTES:
    return
  folder, stale_prefix = os.path.dirname(path), os.path.basename(path).rsplit("_", 1)[0] + "_"
  try:
    os.makedirs(folder, exist_ok=True)
    with files.atomic_path(path) as partial, open(partial, "wb") as f:
      np.savez(f, images=images, labels=labels)
    for entry in os.listdir(folder):  # (files being written are hidden: they never match the prefix)
      if entry.startswith(stale_prefix) and entry.endswith(".npz") and entry != os.path.basename(path):
        os.remove(os.path.join(folder, entry))
  except OSError as e:
    logging.warning("Could not cache the decoded dataset in %s (%s); the next start decodes it again",
                    folder, e.strerror or e)


def fit_to_size(images: np.ndarray, image_size: int) -> np.ndarray:
  """Images (N, H, W, C) as the model takes them, `image_size` square: smaller ones centred on a black
  canvas (MNIST's 28x28 -> 32x32), others centre-cropped to a square and resized (bicubic)."""
  _, h, w, _ = images.shape
  if (h, w) == (image_size, image_size):
    return images
  if h <= image_size and w <= image_size and not (image_size - h) % 2 and not (image_size - w) % 2:
    ph, pw = (image_size - h) // 2, (image_size - w) // 2
    return np.pad(images, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  channels = images.shape[-1]
  pictures = (Image.fromarray(image[..., 0] if channels == 1 else image) for image in images)
  return np.stack([np.asarray(square_resize(p, image_size)).reshape(image_size, image_size, channels)
                   for p in pictures])


def square_resize(image: Image.Image, size: int) -> Image.Image:
  """The image's centre square, resized to `size` (bicubic): training and import_images alike."""
  side = min(image.size)
  left, top = (image.width - side) // 2, (image.height - side) // 2
  return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def record_image(image) -> np.ndarray:
  """A source record's decoded image as uint8 (H, W, C): grayscale images come as (H, W)."""
  image = np.asarray(image, np.uint8)
  return image[..., None] if image.ndim == 2 else image


INPUT_PIPELINES = ("auto", "memory", "stream")


def memory_budget_bytes(devices: Sequence) -> int:
  """What a split kept whole on every device may take: a quarter of the host's memory (which holds every
  copy when the devices are CPU devices) and a quarter of an accelerator's."""
  host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
  if devices[0].platform == "cpu":
    return host // len(devices)
  device_limit = (devices[0].memory_stats() or {}).get("bytes_limit")
  return min(host, device_limit // 4) if device_limit else host


def load_split(name: str, split: str, data_dir: Optional[str], image_size: int, *, pipeline: str = "auto",
               budget_bytes: int, shard_index: int = 0, shard_count: int = 1, workers: int = 0):
  """This host's shard of a split, as an ImageDataset in memory or a streaming.StreamingDataset.

  `pipeline` "auto" streams when the decoded shard would exceed `budget_bytes`, or when its images have
  no fixed size; "memory" and "stream" force a path. `workers`: the streaming path's decoding processes
  (0: threads of this process).
  """
  if pipeline not in INPUT_PIPELINES:
    raise UserError(f"--input_pipeline={pipeline} is unknown; use one of {', '.join(INPUT_PIPELINES)}")
  source = open_source(name, split, data_dir)
  shape = source.dataset_info.features["image"].shape
  decoded_bytes = len(source) // shard_count * image_size * image_size * (shape[-1] or 3)
  fixed_size = None not in shape
  if pipeline == "auto":
    pipeline = "memory" if fixed_size and decoded_bytes <= budget_bytes else "stream"
    logging.info("%s[%s]: %.2f GiB decoded per host against a memory budget of %.2f GiB%s: %s input",
                 name, split, decoded_bytes / 2**30, budget_bytes / 2**30,
                 "" if fixed_size else " (images of varying sizes)", pipeline)
  if pipeline == "memory":
    if not fixed_size:
      raise UserError(f"the images of dataset '{name}' have no fixed size {tuple(shape)}, so they cannot be "
                      "read whole into memory; use --input_pipeline=stream (or auto)")
    return load_images(name, split, data_dir, image_size=image_size, shard_index=shard_index,
                       shard_count=shard_count, source=source)
  return streaming.StreamingDataset(source, image_size=image_size, class_names=_class_names(source),
                                    shard_index=shard_index, shard_count=shard_count, workers=workers)


def iterate_images(name: str, split: str, data_dir: Optional[str], image_size: Optional[int] = None,
                   indices: Optional[np.ndarray] = None) -> Iterator[np.ndarray]:
  """The images of a split (or those at `indices`) in order, fitted to `image_size` (None: as they are),
  in chunks of uint8 (n, H, W, C): a pass over a split of any size in bounded memory."""
  for images, _ in iterate_labelled_images(name, split, data_dir, image_size, indices):
    yield images


def iterate_labelled_images(name: str, split: str, data_dir: Optional[str],
                            image_size: Optional[int] = None,
                            indices: Optional[np.ndarray] = None) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """As iterate_images, with each chunk's int32 labels (0 for a dataset without labels)."""
  source = open_source(name, split, data_dir)
  indices = np.arange(len(source)) if indices is None else np.asarray(indices)
  for start in range(0, len(indices), _READ_CHUNK):
    records = _read_all(source, indices[start:start + _READ_CHUNK])
    images = [record_image(r["image"])[None] for r in records]
    yield (np.concatenate([fit_to_size(image, image_size) if image_size else image for image in images]),
           np.asarray([r.get("label", 0) for r in records], np.int32))


def _class_names(source) -> list:
  features = source.dataset_info.features
  return list(features["label"].names) if "label" in features else ["all"]


def load_images(name: str, split: str = "train", data_dir: Optional[str] = None,
                image_size: Optional[int] = None, shard_index: int = 0,
                shard_count: int = 1, source=None) -> ImageDataset:
  """Reads shard `shard_index` of `shard_count` (one per host) of a split into host memory (from
  `source` where the caller has opened it)."""
  if source is None:
    source = open_source(name, split, data_dir)
  n = len(source)
  if n < shard_count:
    raise UserError(f"dataset '{name}' split '{split}' has {n} images, fewer than {shard_count} hosts")
  cache_path = _decoded_cache_path(source, name, split, shard_index, shard_count)
  cached = _read_cached(cache_path)
  if cached is not None:
    images, labels = cached
  else:
    indices = np.arange(shard_index * n // shard_count, (shard_index + 1) * n // shard_count)
    records = _read_all(source, indices)
    images = np.stack([record_image(r["image"]) for r in records])
    labels = np.asarray([r.get("label", 0) for r in records], np.int32)
    _write_cached(cache_path, images, labels)
  class_names = _class_names(source)
  if image_size is not None:
    images = fit_to_size(images, image_size)
  logging.info("Loaded %s[%s] shard %d/%d%s: %s images, %d classes", name, split, shard_index,
               shard_count, " from the decoded cache" if cached is not None else "", images.shape,
               len(class_names))
  return ImageDataset(images=images, labels=labels, class_names=class_names)
