"""Image datasets read through tfds: standard tfds datasets by name or the user's own prepared folders.

Everything is read with `tfds.data_source` (array_record files), which needs no TensorFlow; a split packed
as JPEG bytes in one .npz (JpegNpzSource: the CIFAR-10 mirror as ../shared/tools/cifar10_jpeg.py packs
it) is read without tfds at all, so a machine that only trains on it needs neither tfds nor array_record.
Images stay
uint8 on the host and on the devices; the train step scales them to [-1, 1]. A split that fits the
memory budget is read whole into memory and kept on the devices (load_images); a larger one is streamed
(gan_jax.data.streaming); load_split chooses.

Decoding is the slow part of reading (CIFAR-10's 50,000 JPEGs: ~7 s on one core, most of a warm start),
so a decoded split is kept in the user cache (gan_jax.user_cache, `decoded/`) and read from there while
the prepared files are unchanged (same names, sizes and modification times).

The package: images (fitting images to the model's size), sources (where splits come from: tfds,
preparing standard datasets, packed JPEG splits), in_memory (whole splits in memory), streaming (splits
read batch by batch); `load_split` chooses between the last two.
"""
from typing import Optional

from absl import logging

from gan_jax.data import streaming
from gan_jax.data.images import fit_to_size, record_image, square_resize  # pylint: disable=unused-import
from gan_jax.data.in_memory import (ImageDataset, MAX_CACHED_BYTES, epoch_order,  # pylint: disable=unused-import
                                        iterate_images, iterate_labelled_images, load_images,
                                        memory_budget_bytes, to_model_range)
from gan_jax.data.sources import (STANDARD_DATASETS, JpegNpzSource, Source, class_names,  # pylint: disable=unused-import
                                      default_data_dir, jpeg_npz_path, open_source, prepare_standard)
from gan_jax.errors import UserError

INPUT_PIPELINES = ("auto", "memory", "stream")


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
  return streaming.StreamingDataset(source, image_size=image_size, class_names=class_names(source),
                                    shard_index=shard_index, shard_count=shard_count, workers=workers)
