"""Training throughput of a preset: images/s, step time and compile time, per parallelism strategy,
with the on-device input pipeline and with a constant batch (their difference is the input's cost).

    python benchmarks/train_throughput.py [--config=experiments/dcgan.py] [--strategies=shard_map,pmap]
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python benchmarks/train_throughput.py  # 8 CPU devices

The data are random uint8 images of the dataset's shape: pixel values do not change the cost of drawing a
batch on the device, so no prepared dataset is needed.
"""
import os
import sys
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_jax import parallel  # pylint: disable=g-import-not-at-top
from gan_jax.train import create_train_state  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments",
                           "dcgan.py"), "Preset to benchmark.", lock_config=False)
_STRATEGIES = flags.DEFINE_list("strategies", list(parallel.STRATEGIES), "Strategies to compare.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 50000, "Dataset size kept on the devices.")
_CHANNELS = flags.DEFINE_integer("channels", 3, "Image channels.")
_CALLS = flags.DEFINE_integer("calls", 20, "Timed calls (each runs config.steps_per_call steps).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions; the best is reported.")


def _time_calls(function, state, images, labels, calls):
  start = time.perf_counter()
  for _ in range(calls):
    state, metrics = function(state, images, labels)
  jax.block_until_ready((state, metrics))
  return state, time.perf_counter() - start


def main(argv):
  del argv
  config = _CONFIG.value
  rng = np.random.RandomState(0)
  size = config.image_size
  images = rng.randint(0, 256, (_NUM_EXAMPLES.value, size, size, _CHANNELS.value)).astype(np.uint8)
  labels = rng.randint(0, 10, _NUM_EXAMPLES.value).astype(np.int32)
  steps = config.steps_per_call
  print(f"JAX {jax.__version__} on {jax.device_count()} x {jax.devices()[0].device_kind}; "
        f"{config.model} batch {config.batch_size}, {steps} steps per call, {_CALLS.value} calls")
  print(f"{'strategy':10} {'input':9} {'compile_s':>9} {'step_ms':>9} {'images/s':>10}")
  for strategy in _STRATEGIES.value:
    dp = parallel.DataParallel(strategy, parallel.local_devices(config.num_devices))
    data = dp.put_data(images, labels)
    results = {}
    for constant in (False, True):
      state = dp.put_state(create_train_state(config, jax.random.PRNGKey(0), images.shape[1:],
                                              axis_name=dp.axis_name))
      function = dp.train_function(global_batch=config.batch_size, steps=steps, constant_batch=constant)
      state, first = _time_calls(function, state, *data, 1)
      state, second = _time_calls(function, state, *data, 1)  # pmap may compile again once
      best = float("inf")
      for _ in range(_REPEATS.value):
        state, seconds = _time_calls(function, state, *data, _CALLS.value)
        best = min(best, seconds)
      step_s = best / (_CALLS.value * steps)
      compile_s = first + second - 2 * step_s * steps
      results[constant] = config.batch_size / step_s
      print(f"{strategy:10} {'constant' if constant else 'on-device':9} {compile_s:9.2f} "
            f"{step_s * 1e3:9.3f} {results[constant]:10.0f}")
    print(f"{strategy:10} input stall: {100 * (1 - results[False] / results[True]):.2f}% of throughput")


if __name__ == "__main__":
  app.run(main)
