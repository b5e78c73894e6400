"""Run by test_parallel.py in a process with 8 simulated CPU devices: trains the same steps on 1 device,
on 8 devices with shard_map and on 8 devices with pmap, and prints the largest parameter difference."""
import json
import sys

import jax
import numpy as np

from gan_jax import parallel
from gan_jax.train import create_train_state
from conftest import tiny_config


def train(strategy, num_devices, images, labels):
  dp = parallel.DataParallel(strategy, parallel.local_devices(num_devices))
  state = create_train_state(tiny_config(), jax.random.PRNGKey(0), images.shape[1:],
                             axis_name=dp.axis_name)
  state = dp.put_state(state)
  data = dp.put_data(images, labels)
  step = dp.train_function(global_batch=16, steps=3)
  for _ in range(2):
    state, metrics = step(state, *data)
  state = dp.get_state(state)
  assert int(state.step) == 6
  leaves = jax.tree.leaves((state.g_params, state.g_batch_stats, state.d_params,
                            state.g_opt_state, state.d_opt_state))
  return np.concatenate([np.asarray(x, np.float64).ravel() for x in leaves]), metrics


def main():
  assert jax.device_count() == 8, jax.devices()
  rng = np.random.RandomState(0)
  images = rng.randint(0, 256, (48, 32, 32, 3)).astype(np.uint8)
  labels = rng.randint(0, 10, 48).astype(np.int32)
  reference, ref_metrics = train("shard_map", 1, images, labels)
  result = {"scale": float(np.abs(reference).max())}
  for strategy in ("shard_map", "pmap"):
    params, metrics = train(strategy, 8, images, labels)
    result[strategy] = float(np.abs(params - reference).max())
    result[strategy + "_d_loss"] = float(np.abs(np.asarray(metrics["d_loss"]) -
                                               np.asarray(ref_metrics["d_loss"])).max())
  json.dump(result, sys.stdout)


if __name__ == "__main__":
  main()
