"""Run by test_parallel.py in a process with 8 simulated CPU devices: trains the same steps on 1 device,
on 8 devices with shard_map and on 8 devices with pmap, and on 1 device with the steps of a call fused into
one compiled loop, and prints the largest parameter differences; then the same for streamed input (batches
placed from the host by DataParallel.batch_placer) on 1 and 8 devices.

The run switches on everything that draws randomness or averages over the batch: class-conditional
models, dropout, spectral norm, two D updates per step, DiffAugment with ADA, lazy R1, instance noise,
feature matching (a global-batch mean), label smoothing and the EMA."""
import json
import sys

import jax
import numpy as np

from gan_jax import parallel
from gan_jax.train import create_train_state
from conftest import tiny_config

EVERYTHING = dict(conditional=True, d_spectral_norm=True, d_steps=2, augment="color,translation,cutout",
                  augment_p=0.5, ada_target=0.6, ada_interval=1, ada_kimg=1.0, r1_gamma=1.0, reg_every=2,
                  instance_noise=0.1, instance_noise_steps=100, feature_matching=0.1, label_smoothing=0.1,
                  ema_decay=0.9)


def train(strategy, num_devices, images, labels, fuse_steps=None, streamed=False):
  dp = parallel.DataParallel(strategy, parallel.local_devices(num_devices), fuse_steps=fuse_steps)
  state = create_train_state(tiny_config(**EVERYTHING), jax.random.PRNGKey(0), images.shape[1:],
                             num_classes=10, axis_name=dp.axis_name)
  state = dp.put_state(state)
  if streamed:  # 6 steps of 2 D updates of 16 images, in an order of the host's choosing
    place = dp.batch_placer(16)
    rows = np.random.RandomState(1).randint(0, len(images), (6, 32))
    batches = (place({"image": images[r], "label": labels[r]}) for r in rows)
    step = lambda state: dp.streaming_train_function(global_batch=16)(state, batches, 3)
  else:
    data = dp.put_data(images, labels)
    step = lambda state: dp.train_function(global_batch=16, steps=3)(state, *data)
  for _ in range(2):
    state, metrics = step(state)
  state = dp.get_state(state)
  assert int(state.step) == 6
  leaves = jax.tree.leaves((state.g_params, state.g_batch_stats, state.g_ema_params, state.d_params,
                            state.d_batch_stats, state.g_opt_state, state.d_opt_state, state.augment_p))
  return np.concatenate([np.asarray(x, np.float64).ravel() for x in leaves]), metrics


def main():
  assert jax.device_count() == 8, jax.devices()
  rng = np.random.RandomState(0)
  images = rng.randint(0, 256, (96, 32, 32, 3)).astype(np.uint8)
  labels = rng.randint(0, 10, 96).astype(np.int32)
  reference, ref_metrics = train("shard_map", 1, images, labels)
  result = {"scale": float(np.abs(reference).max())}
  for strategy in ("shard_map", "pmap"):
    params, metrics = train(strategy, 8, images, labels)
    result[strategy] = float(np.abs(params - reference).max())
    result[strategy + "_d_loss"] = float(np.abs(np.asarray(metrics["d_loss"]) -
                                               np.asarray(ref_metrics["d_loss"])).max())
  # The accelerators' path (a call's steps in one compiled loop, lazy R1 decided on the device) against
  # the CPU's (a host loop of one-step programs), which all the runs above took.
  params, _ = train("shard_map", 1, images, labels, fuse_steps=True)
  result["fused"] = float(np.abs(params - reference).max())
  stream_reference, _ = train("shard_map", 1, images, labels, streamed=True)
  for strategy in ("shard_map", "pmap"):
    params, _ = train(strategy, 8, images, labels, streamed=True)
    result["stream_" + strategy] = float(np.abs(params - stream_reference).max())
  json.dump(result, sys.stdout)


if __name__ == "__main__":
  main()
