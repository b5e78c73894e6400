"""Splits kept whole in host memory and on the devices: the decoded cache, the memory budget, the
epoch order in which the compiled step visits them and the model's value range.

Decoding is the slow part of reading (CIFAR-10's 50,000 JPEGs: ~7 s on one core, most of a warm start),
so a decoded split is kept in the user cache (gan_jax.user_cache, `decoded/`) and read from there while
the prepared files are unchanged (same names, sizes and modification times).
"""
import dataclasses
import glob
import hashlib
import os
import re
from typing import Iterator, Optional, Sequence, Tuple
import zipfile

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import files
from gan_jax import user_cache
from gan_jax.data import images as images_lib
from gan_jax.data import sources
from gan_jax.errors import UserError

# Larger decoded splits are not cached: they would fill the user's disk for a few seconds of decoding.
MAX_CACHED_BYTES = 4 * 2**30
_DATA_STREAM = 1  # the data order's stream of the run's key


@dataclasses.dataclass(frozen=True)
class ImageDataset:
  """A whole split in host memory: images uint8 (N, H, W, C), labels int32 (N,)."""
  images: np.ndarray
  labels: np.ndarray
  class_names: Sequence[str]

  streams = False  # kept whole on the devices (parallel.training_input)

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


def to_model_range(data):
  """uint8 images -> float32 in [-1, 1]; float data (e.g. 2-D points, gan_jax.synthetic) are already
  in the model's range and pass through unchanged."""
  if jnp.issubdtype(data.dtype, jnp.floating):
    return data
  return data.astype(jnp.float32) / 127.5 - 1.0


def epoch_order(base_key, epoch, num_examples):
  """The order in which epoch `epoch` visits the host's shard: a function of (key, epoch) alone, so the
  data position is restored with the step."""
  return jax.random.permutation(
      jax.random.fold_in(jax.random.fold_in(base_key, _DATA_STREAM), epoch), num_examples)


def _decoded_cache_path(source, name: str, split: str, shard_index: int,
                        shard_count: int) -> Optional[str]:
  """Where the decoded shard is cached, named by a fingerprint of the split's prepared files; None for
  sources without files (tfds's mock data)."""
  if isinstance(source, sources.JpegNpzSource):
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


def memory_budget_bytes(devices: Sequence) -> int:
  """What a split kept whole on every device may take: a quarter of the host's memory (which holds every
  copy when the devices are CPU devices) and a quarter of an accelerator's."""
  host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
  if devices[0].platform == "cpu":
    return host // len(devices)
  device_limit = (devices[0].memory_stats() or {}).get("bytes_limit")
  return min(host, device_limit // 4) if device_limit else host


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
  source = sources.open_source(name, split, data_dir)
  indices = np.arange(len(source)) if indices is None else np.asarray(indices)
  for start in range(0, len(indices), sources.READ_CHUNK):
    records = sources.read_records(source, indices[start:start + sources.READ_CHUNK])
    images = [images_lib.record_image(r["image"])[None] for r in records]
    yield (np.concatenate([images_lib.fit_to_size(image, image_size) if image_size else image for image in images]),
           np.asarray([r.get("label", 0) for r in records], np.int32))


def load_images(name: str, split: str = "train", data_dir: Optional[str] = None,
                image_size: Optional[int] = None, shard_index: int = 0,
                shard_count: int = 1, source=None) -> ImageDataset:
  """Reads shard `shard_index` of `shard_count` (one per host) of a split into host memory (from
  `source` where the caller has opened it)."""
  if source is None:
    source = sources.open_source(name, split, data_dir)
  n = len(source)
  if n < shard_count:
    raise UserError(f"dataset '{name}' split '{split}' has {n} images, fewer than {shard_count} hosts")
  cache_path = _decoded_cache_path(source, name, split, shard_index, shard_count)
  cached = _read_cached(cache_path)
  if cached is not None:
    images, labels = cached
  else:
    indices = np.arange(shard_index * n // shard_count, (shard_index + 1) * n // shard_count)
    records = sources.read_records(source, indices)
    images = np.stack([images_lib.record_image(r["image"]) for r in records])
    labels = np.asarray([r.get("label", 0) for r in records], np.int32)
    _write_cached(cache_path, images, labels)
  class_names = sources.class_names(source)
  if image_size is not None:
    images = images_lib.fit_to_size(images, image_size)
  logging.info("Loaded %s[%s] shard %d/%d%s: %s images, %d classes", name, split, shard_index,
               shard_count, " from the decoded cache" if cached is not None else "", images.shape,
               len(class_names))
  return ImageDataset(images=images, labels=labels, class_names=class_names)
