"""Streaming input for splits that do not fit in memory: batches read from the prepared array_record files.

in_memory.py keeps a small split whole on every device, and the compiled step draws its batches there. A split
too large for that (CelebA or LSUN at 64x64 and up, a big folder of photos) is read here instead, batch by
batch, with grain: random access into the tfds source, a fresh global shuffle every epoch, decoding and
resizing in threads (or worker processes), batching per host, and a background thread that puts the next
batches on the devices while the current step runs. Everything is a function of the seed and the
position, and the position (grain's iterator state) is saved with each checkpoint, so a resumed run
reads exactly the batches an uninterrupted one would have.
"""
import dataclasses
import json
from typing import Any, Callable, Optional, Sequence

from absl import flags
try:
  import grain
except ImportError:  # a machine that keeps its splits in memory can do without it (the GPU image of README.md)
  grain = None
import numpy as np

from gan_jax.data import images as images_lib
from gan_jax.errors import UserError

# Batches read ahead on the host (decoded, not yet on the devices), and batches already on the devices:
# two there is double buffering, enough for a step never to wait while the loader keeps up.
_HOST_BUFFER, _DEVICE_BUFFER = 4, 2
_READ_THREADS = 2  # per process: the training process, or each worker process


@dataclasses.dataclass(frozen=True)
class _Record:
  """One example of the source as the model takes it: (image uint8 (S, S, C), label int32)."""
  image_size: int
  channels: int

  def __call__(self, record: dict) -> dict:
    image = images_lib.record_image(record["image"])
    if image.shape[-1] != self.channels:  # a grayscale image in an RGB dataset, or the reverse
      image = (np.repeat(image, self.channels, axis=-1) if image.shape[-1] == 1
               else image[..., :1] if self.channels == 1 else image[..., :self.channels])
    return {"image": images_lib.fit_to_size(image[None], self.image_size)[0],
            "label": np.int32(record.get("label", 0))}


class StreamingDataset:
  """One host's shard of a split, read batch by batch (see the module docstring).

  Offers what the trainer needs of a dataset: its length, classes and image shape, a few images for the
  preview grid, and an endless, resumable stream of batches.
  """

  streams = True  # read batch by batch (parallel.training_input)

  def __init__(self, source, *, image_size: int, class_names: Sequence[str], shard_index: int = 0,
               shard_count: int = 1, workers: int = 0):
    if grain is None:
      raise UserError("streamed input needs grain, which is not installed (`pip install grain`); a split "
                      "that fits the memory budget is read without it (--input_pipeline=memory)")
    self.class_names = list(class_names)
    self.workers = workers
    channels = source.dataset_info.features["image"].shape[-1] or 3
    self.image_shape = (image_size, image_size, channels)
    self._record = _Record(image_size, channels)
    self._shard = grain.MapDataset.source(source)[shard_index::shard_count]

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def __len__(self) -> int:
    return len(self._shard)

  def preview(self, count: int) -> np.ndarray:
    """The shard's first `count` images, as the model sees them (the real-image grid)."""
    return np.stack([self._record(self._shard[i])["image"] for i in range(min(count, len(self)))])

  def batches(self, batch_size: int, seed: int, to_devices: Callable[[dict], Any],
              position: Optional[dict] = None) -> "Batches":
    """Endless batches of `batch_size` examples, in an order reshuffled every epoch from `seed`,
    placed on the devices by `to_devices`; from the start, or from a `position` that
    Batches.position returned."""
    examples = self._shard.shuffle(seed=seed).repeat().map(self._record)
    # Each read thread makes whole batches (the dataset is batched before it is iterated); the buffer,
    # counted in batches, keeps every thread busy.
    stream = examples.batch(batch_size, drop_remainder=True).to_iter_dataset(
        grain.ReadOptions(num_threads=_READ_THREADS, prefetch_buffer_size=2 * _READ_THREADS))
    if self.workers:
      if not flags.FLAGS.is_parsed():
        # grain's worker processes read its absl flags, which only an absl program has parsed: in
        # research code that imports gan_jax, they keep their defaults.
        flags.FLAGS.mark_as_parsed()
      stream = stream.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.workers))
    stream = grain.experimental.ThreadPrefetchIterDataset(stream, prefetch_buffer_size=_HOST_BUFFER)
    stream = grain.experimental.ThreadPrefetchIterDataset(stream.map(to_devices),
                                                          prefetch_buffer_size=_DEVICE_BUFFER)
    return Batches(iter(stream), position)


class Batches:
  """An iterator of device batches whose position can be saved and restored."""

  def __init__(self, iterator, position: Optional[dict] = None):
    self._iterator = iterator
    if position is not None:
      self._iterator.set_state(position)

  def __iter__(self):
    return self

  def __next__(self):
    return next(self._iterator)

  @property
  def position(self) -> dict:
    """Where the next batch comes from: a JSON-able dict for the checkpoint. Read-ahead batches are not
    counted as read. (It is the same on every host of a run, each reading its own shard in the same
    steps, so the chief's copy serves all.)"""
    return json.loads(json.dumps(self._iterator.get_state()))

  def close(self) -> None:
    """Stops the read-ahead threads and worker processes."""
    if self._iterator is not None:
      self._iterator.close()
      # Freed now, not at interpreter exit, where grain's iterators fail to close again.
      self._iterator = None
