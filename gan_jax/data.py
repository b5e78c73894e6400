"""Image datasets read through tfds: standard tfds datasets by name or the user's own prepared folders.

Everything is read with `tfds.data_source` (array_record files), which needs no TensorFlow. Images stay
uint8 on the host and on the devices; the train step scales them to [-1, 1].
"""
import dataclasses
import glob
import os
from typing import Optional, Sequence

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from gan_jax.errors import UserError

# Datasets that tfds knows how to prepare. Any other name must be a dataset prepared in data_dir, for
# example by `python -m gan_jax.import_images`.
STANDARD_DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn_cropped")
_READ_CHUNK = 4096


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


def default_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def _prepare_hint(name: str, data_dir: str) -> str:
  if name in STANDARD_DATASETS:
    return (f"prepare it once where there is internet: `pip install tensorflow-cpu && tfds build {name} "
            f"--file_format=array_record --data_dir={data_dir}`, or import its image files under another name "
            f"with `python -m gan_jax.import_images --src=DIR --name={name}_images --data_dir={data_dir}` and "
            f"train with --dataset={name}_images")
  return (f"import your images with `python -m gan_jax.import_images --src=DIR --name={name} "
          f"--data_dir={data_dir}`, or pick one of {', '.join(STANDARD_DATASETS)}")


def open_source(name: str, split: str, data_dir: Optional[str] = None):
  """Opens a prepared split as a random-access tfds source. Never downloads."""
  data_dir = data_dir or default_data_dir()
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise UserError(f"unknown dataset '{name}': it is neither a tfds dataset nor prepared in "
                    f"{data_dir}; {_prepare_hint(name, data_dir)}") from e
  except (AssertionError, NotImplementedError, FileNotFoundError, ValueError) as e:
    # tfds says "not found" (AssertionError), "wrong file format" (NotImplementedError) or "unknown
    # split" (ValueError) here.
    prepared = glob.glob(os.path.join(data_dir, name, "*", "dataset_info.json")) + glob.glob(
        os.path.join(data_dir, name, "*", "*", "dataset_info.json"))
    if not prepared:
      reason = f"nothing under {os.path.join(data_dir, name)}"
    else:
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"dataset '{name}' split '{split}' is not prepared as array_record in {data_dir} "
                    f"({reason}); {_prepare_hint(name, data_dir)}") from e


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


def pad_to_size(images: np.ndarray, image_size: int) -> np.ndarray:
  """Centres images on a black square canvas of `image_size` (MNIST's 28x28 -> 32x32)."""
  _, h, w, _ = images.shape
  if (h, w) == (image_size, image_size):
    return images
  if h > image_size or w > image_size or (image_size - h) % 2 or (image_size - w) % 2:
    raise UserError(f"images are {h}x{w} but the model needs {image_size}x{image_size}; set "
                    f"--image_size={max(h, w)} or re-import them with `python -m gan_jax.import_images "
                    f"--image_size={image_size}`")
  ph, pw = (image_size - h) // 2, (image_size - w) // 2
  return np.pad(images, ((0, 0), (ph, ph), (pw, pw), (0, 0)))


def load_images(name: str, split: str = "train", data_dir: Optional[str] = None,
                image_size: Optional[int] = None, shard_index: int = 0,
                shard_count: int = 1) -> ImageDataset:
  """Reads shard `shard_index` of `shard_count` (one per host) of a split into host memory."""
  source = open_source(name, split, data_dir)
  n = len(source)
  if n < shard_count:
    raise UserError(f"dataset '{name}' split '{split}' has {n} images, fewer than {shard_count} hosts")
  indices = np.arange(shard_index * n // shard_count, (shard_index + 1) * n // shard_count)
  records = _read_all(source, indices)
  images = np.stack([np.asarray(r["image"], np.uint8) for r in records])
  if images.ndim == 3:
    images = images[..., None]
  labels = np.asarray([r.get("label", 0) for r in records], np.int32)
  label_feature = source.dataset_info.features["label"] if "label" in source.dataset_info.features else None
  class_names = list(label_feature.names) if label_feature is not None else ["all"]
  if image_size is not None:
    images = pad_to_size(images, image_size)
  logging.info("Loaded %s[%s] shard %d/%d: %s images, %d classes", name, split, shard_index,
               shard_count, images.shape, len(class_names))
  return ImageDataset(images=images, labels=labels, class_names=class_names)
