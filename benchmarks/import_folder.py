"""How fast `gan_jax.import_images` turns a big folder of JPEGs into a dataset, and how much memory it takes.

    python benchmarks/import_folder.py [--images=100000] [--size=64] [--image_size=0] [--corrupt=0] \
        [--workers=N]

Writes --images synthetic JPEGs of --size pixels (smooth random colour fields, compressible like photos,
not like noise) into --classes class folders, --corrupt of them unreadable (a truncated JPEG, a text file
named .jpg, an empty file, in turn), then imports the folder with --workers processes and prints the
images per second, the seconds, and the peak memory: of this process (ru_maxrss) and of the process tree
(the PSS of this process and its workers summed, sampled every 0.25 s). --image_size=0 stores the files
as they are (decoded once to check them); another size crops, resizes and encodes each image as PNG.

Measured on this project's quiet 2-core machine (AMD EPYC, 2026-11-25 17:43), 100,000 images of 64x64:
    python benchmarks/import_folder.py --images=100000             13.8 s, 7244 images/s, this process
                                                                   417 MiB (RSS), tree 592 MiB (PSS)
Smoke runs on the same 2 cores shared with other work, 2000 images of 64x64:
    python benchmarks/import_folder.py --images=2000               0.7 s, 3039 images/s, tree 133 MiB
    python benchmarks/import_folder.py --images=2000 --workers=1   0.5 s, 3906 images/s, tree 72 MiB
    python benchmarks/import_folder.py --images=2000 --corrupt=10 --image_size=32
                                                                   0.9 s, 2275 images/s, tree 136 MiB
Starting the pool (~0.3 s) outweighs a second core at 2000 images; at 10,000 two workers were 1.4x
(files kept) and 1.7x (resized to 32) faster than one. The writing process (tfds's encoding, shuffling
and writing: ~0.1 ms an image here, profiled) bounds the rate near 10k images/s however many workers decode.
"""
import concurrent.futures
import io
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image
import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_jax import import_images  # pylint: disable=g-import-not-at-top
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top

_IMAGES = flags.DEFINE_integer("images", 100000, "Images in the synthetic folder (the unreadable included).")
_SIZE = flags.DEFINE_integer("size", 64, "Side of the synthetic images, in pixels.")
_CLASSES = flags.DEFINE_integer("classes", 5, "Class folders.")
_CORRUPT = flags.DEFINE_integer("corrupt", 0, "How many of the images are unreadable files.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 0, "--image_size of the import (0: keep the files).")
_WORKERS = flags.DEFINE_integer("workers", None, "--workers of the import (default: one per CPU).")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Where the folder and the dataset go (default: a "
                                "temporary folder, removed at the end).")


def _jpeg(index: int, size: int, seed: int) -> bytes:
  # A 4x4 random colour grid upsampled: smooth, so its JPEG is as small as a photo's, not a noise image's.
  rng = np.random.default_rng([seed, index])
  grid = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
  buffer = io.BytesIO()
  grid.resize((size, size), Image.BICUBIC).save(buffer, format="JPEG", quality=90)
  return buffer.getvalue()


def _unreadable(index: int, size: int, seed: int) -> bytes:
  kind = index % 3
  if kind == 0:  # a truncated JPEG: the header reads, the pixels do not
    jpeg = _jpeg(index, size, seed)
    return jpeg[:jpeg.index(b"\xff\xda") + 40]
  return b"not an image\n" if kind == 1 else b""


def _write_files(root: str, indices: range, size: int, classes: int, seed: int, corrupt: set) -> None:
  for index in indices:
    write = _unreadable if index in corrupt else _jpeg
    with open(os.path.join(root, f"class_{index % classes}", f"{index:07d}.jpg"), "wb") as f:
      f.write(write(index, size, seed))


def write_synthetic_folder(root: str, n: int, size: int = 64, classes: int = 5, seed: int = 0,
                           corrupt: int = 0, workers: int = 0) -> list:
  """Writes n JPEGs into root/class_<k>/ (image i in class i % classes), `corrupt` of them unreadable
  (spread evenly), with `workers` processes (0: one per CPU). The same arguments give the same files.
  Returns the paths of the unreadable files."""
  if not 0 <= corrupt <= n:
    raise UserError(f"--corrupt={corrupt} must be between 0 and --images={n}")
  corrupt_indices = set(np.linspace(0, n - 1, corrupt, dtype=int).tolist()) if corrupt else set()
  for k in range(classes):
    os.makedirs(os.path.join(root, f"class_{k}"), exist_ok=True)
  workers = workers or os.cpu_count()
  step = -(-n // (4 * workers)) or 1
  # Not forked from this process, whose caller may run threads (a test's JAX) that a fork can deadlock;
  # not from the fork server either, which import_images starts with the modules its workers need.
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
    for done in [pool.submit(_write_files, root, range(start, min(start + step, n)), size, classes, seed,
                             corrupt_indices) for start in range(0, n, step)]:
      done.result()
  return [os.path.join(root, f"class_{i % classes}", f"{i:07d}.jpg") for i in sorted(corrupt_indices)]


class PeakMemory:
  """Samples the summed PSS (resident memory, each shared page split between the processes that share
  it) of this process and all its descendants, in a thread, until stopped; keeps the peak in bytes."""

  def __init__(self, interval: float = 0.25):
    self.peak = 0
    self._interval, self._stop = interval, threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _run(self):
    me = psutil.Process()
    while not self._stop.is_set():
      total = 0
      for process in [me] + me.children(recursive=True):
        try:
          total += process.memory_full_info().pss
        except psutil.Error:  # a worker that just ended
          pass
      self.peak = max(self.peak, total)
      self._stop.wait(self._interval)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()


def run(work_dir: str) -> None:
  src, data_dir = os.path.join(work_dir, "src"), os.path.join(work_dir, "tfds")
  start = time.perf_counter()
  write_synthetic_folder(src, _IMAGES.value, _SIZE.value, _CLASSES.value, corrupt=_CORRUPT.value)
  print(f"wrote {_IMAGES.value} {_SIZE.value}x{_SIZE.value} JPEGs ({_CORRUPT.value} unreadable) in "
        f"{time.perf_counter() - start:.1f} s")
  workers = os.cpu_count() if _WORKERS.value is None else _WORKERS.value
  with PeakMemory() as memory:
    start = time.perf_counter()
    imported = import_images.import_images(src, "synthetic", data_dir, _IMAGE_SIZE.value,
                                           workers=workers)
    seconds = time.perf_counter() - start
  main_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
  print(f"imported {imported.examples} (skipped {len(imported.skipped)}) with --workers={workers} "
        f"(of {os.cpu_count()} CPUs), --image_size={_IMAGE_SIZE.value}: {seconds:.1f} s, "
        f"{_IMAGES.value / seconds:.0f} images/s; peak memory: this process {main_peak:.0f} MiB (RSS), "
        f"process tree {memory.peak / 2**20:.0f} MiB (PSS)")


def main(argv):
  del argv
  try:
    if _WORK_DIR.value:
      run(_WORK_DIR.value)
    else:
      with tempfile.TemporaryDirectory(prefix="import_folder_") as work_dir:
        run(work_dir)
  except UserError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
