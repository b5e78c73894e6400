"""The streaming input path (gan_jax.data.streaming): loader speed, memory over an epoch, and the training stall.

    python benchmarks/input_pipeline.py --images=100000 --size=64 --loader_workers=0,1,2 --preset=dcgan64

Makes (once; kept in --data_dir) a synthetic folder of --images random JPEGs of --size pixels and imports
it, or reads an existing prepared --dataset. Then prints:
- loader images/s (decode, fit to the model's size, batch) for each --loader_workers count;
- the process tree's RSS (the training process and its workers) sampled over one whole epoch: start,
  peak and end, so growth shows;
- the input stall of --preset's train step: seconds per step fed by the stream against the same step fed
  one constant batch already on the devices, alternated so that both see the same machine.

Measured on this project's quiet 2-core machine (2026-11-25 17:44-17:59; README, "Input"): loader 3,386
images/s with 0 workers, 3,128 with 1, 5,148 with 2; an epoch of 100k in 30 s with the process tree's RSS
341 -> 342 (peak) -> 341 MiB; dcgan64's step (5.4 s) stalled by +0.4%, +2.0% and +5.6% in three runs,
and by -0.0% (5,192 vs 5,194 ms) with --stall_steps=10 (18:37).
"""
import itertools
import os
import sys
import threading
import time

from absl import app
from absl import flags
import jax
import numpy as np
import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import experiments  # pylint: disable=g-import-not-at-top
from gan_jax import data  # pylint: disable=g-import-not-at-top
from gan_jax import import_images  # pylint: disable=g-import-not-at-top
from gan_jax import parallel  # pylint: disable=g-import-not-at-top
from gan_jax import train  # pylint: disable=g-import-not-at-top
from benchmarks import import_folder  # pylint: disable=g-import-not-at-top

# import_folder's --images and --size say what synthetic dataset to make (--workers: its import's).
_IMAGES, _SIZE = import_folder._IMAGES, import_folder._SIZE  # pylint: disable=protected-access
_DATASET = flags.DEFINE_string("dataset", None, "A prepared dataset to read instead of the synthetic one.")
_DATA_DIR = flags.DEFINE_string("data_dir", ".data/benchmark_tfds", "tfds data directory; the synthetic "
                                "dataset is made there once, as synthetic_<images>_<size>.")
_LOADER_WORKERS = flags.DEFINE_list("loader_workers", ["0", "1", "2"], "Decoding processes to compare (0: "
                                    "threads).")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Loader batch size.")
_LOADER_BATCHES = flags.DEFINE_integer("loader_batches", 200, "Batches timed per worker count.")
_EPOCH = flags.DEFINE_bool("epoch", True, "Measure RSS over one whole epoch (with the first "
                           "--loader_workers).")
_PRESET = flags.DEFINE_string("preset", "dcgan64", "Preset whose train step measures the stall ('' skips).")
_STALL_STEPS = flags.DEFINE_integer("stall_steps", 5, "Steps per timed round; 3 rounds per feed.")


def _dataset_name() -> str:
  if _DATASET.value:
    return _DATASET.value
  name = f"synthetic_{_IMAGES.value}_{_SIZE.value}"
  if not os.path.isdir(os.path.join(_DATA_DIR.value, name)):
    folder = os.path.join(_DATA_DIR.value, f"{name}_jpeg")
    start = time.time()
    import_folder.write_synthetic_folder(folder, _IMAGES.value, _SIZE.value)
    print(f"wrote {_IMAGES.value} JPEGs in {time.time() - start:.0f} s")
    start = time.time()
    import_images.import_images(folder, name, _DATA_DIR.value,
                                workers=import_folder._WORKERS.value)  # pylint: disable=protected-access
    print(f"imported them in {time.time() - start:.0f} s")
  return name


def _open(name: str, image_size: int, workers: int):
  return data.load_split(name, "train", _DATA_DIR.value, image_size, pipeline="stream", budget_bytes=0,
                         workers=workers)


def _tree_rss() -> int:
  process = psutil.Process()
  return sum(p.memory_info().rss for p in [process] + process.children(recursive=True))


def loader_rate(name: str, workers: int) -> float:
  batches = _open(name, _SIZE.value, workers).batches(_BATCH.value, 0, to_devices=lambda b: b)
  for _ in range(5):  # start-up: worker processes, first reads
    next(batches)
  start = time.perf_counter()
  for _ in range(_LOADER_BATCHES.value):
    next(batches)
  rate = _LOADER_BATCHES.value * _BATCH.value / (time.perf_counter() - start)
  batches.close()
  return rate


def epoch_rss(name: str, workers: int):
  """(seconds, RSS at start, peak, end in MiB) over one epoch of the loader."""
  dataset = _open(name, _SIZE.value, workers)
  batches = dataset.batches(_BATCH.value, 0, to_devices=lambda b: b)
  next(batches)
  samples, done = [_tree_rss()], threading.Event()

  def sample():
    while not done.wait(0.5):
      samples.append(_tree_rss())

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  start = time.perf_counter()
  for _ in range(len(dataset) // _BATCH.value - 1):
    next(batches)
  seconds = time.perf_counter() - start
  done.set()
  sampler.join()
  samples.append(_tree_rss())
  batches.close()
  return seconds, samples[0] / 2**20, max(samples) / 2**20, samples[-1] / 2**20


def input_stall(name: str, workers: int):
  """(s/step streamed, s/step constant batch) for the preset's train step on all local devices."""
  config = experiments.load_preset(_PRESET.value)
  dataset = _open(name, config.image_size, workers)
  dp = parallel.DataParallel("shard_map", parallel.local_devices())
  state = dp.put_state(train.create_train_state(config, jax.random.PRNGKey(0), dataset.image_shape,
                                                axis_name=dp.axis_name))
  run_steps = dp.streaming_train_function(global_batch=config.batch_size)
  streamed = dataset.batches(config.batch_size * config.d_steps, 0, dp.batch_placer(config.batch_size))
  constant = itertools.repeat(next(streamed))
  times = {"streamed": [], "constant": []}
  for feed in (streamed, constant):  # compile, warm up
    state, metrics = run_steps(state, feed, 1)
    jax.block_until_ready(metrics)
  for _ in range(3):
    for feed_name, feed in (("streamed", streamed), ("constant", constant)):
      start = time.perf_counter()
      state, metrics = run_steps(state, feed, _STALL_STEPS.value)
      jax.block_until_ready(metrics)
      times[feed_name].append((time.perf_counter() - start) / _STALL_STEPS.value)
  streamed.close()
  return float(np.median(times["streamed"])), float(np.median(times["constant"]))


def main(argv):
  del argv
  name = _dataset_name()
  workers = [int(w) for w in _LOADER_WORKERS.value]
  print(f"{name} in {_DATA_DIR.value}, batch {_BATCH.value}, {os.cpu_count()} CPUs, "
        f"{jax.devices()[0].platform}")
  print("| workers | loader images/s |\n| --- | --- |")
  for count in workers:
    print(f"| {count} | {loader_rate(name, count):.0f} |")
  if _EPOCH.value:
    seconds, start, peak, end = epoch_rss(name, workers[0])
    print(f"epoch with {workers[0]} workers: {seconds:.0f} s; RSS of the process tree start {start:.0f} "
          f"MiB, peak {peak:.0f} MiB, end {end:.0f} MiB")
  if _PRESET.value:
    streamed, constant = input_stall(name, workers[0])
    print(f"{_PRESET.value} step with {workers[0]} workers: streamed {streamed * 1e3:.0f} ms, constant batch "
          f"{constant * 1e3:.0f} ms: input stall {100 * (streamed / constant - 1):+.1f}%")


if __name__ == "__main__":
  app.run(main)
