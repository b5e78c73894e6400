"""Run by test_parallel.py in a process with 8 simulated CPU devices: trains the same steps on 1 device,
on 8 devices with shard_map and with pmap, on 1 device with the steps of a call fused into one compiled
loop, and on 8 devices from streamed batches (placed from the host by DataParallel.batch_placer), and
prints how far each run's state is from the 1-device run's; then the same for a run with a planted bug
(one device's labels off by one), which the test must tell apart.

On CPU the in-memory and the streamed runs of a strategy share one train-step program (parallel.py: the
in-memory rows are drawn by a program of their own), so the streamed runs check batch_placer's
placement against the rows program's, and compile only once. R1 is applied every step: lazily
(reg_every > 1) each host-loop run would compile two programs, and the host's and the device's decision
of a lazy step are compared in test_train_features.py.

The run switches on everything that draws randomness or averages over the batch: class-conditional
models, dropout, spectral norm, two D updates per step, DiffAugment with ADA, R1, instance noise,
feature matching (a global-batch mean), label smoothing and the EMA.

What a difference is measured against. Equal programs on 1 and 8 devices differ only in the order of
float32 reductions (a batch mean over 8 partial sums instead of one), a relative error of ~1e-7 per
gradient. Adam would turn that into anything up to its full step: it divides each gradient by its own
magnitude, and parameters whose gradient is zero in exact arithmetic (the biases before BatchNorm)
have gradients of pure rounding noise, which Adam follows with steps of ~lr in a direction the CPU's
reduction order decides (an AVX2-only EPYC gave 1.3e-4 = 0.6 lr where an AVX-512 Xeon gave 1e-5).
So the runs here use SGD, whose update is linear in the gradient: rounding stays a rounding, and each
group of the state (G's weights, D's, their statistics, the EMA, ADA's probability) is compared by
max |difference| / max |change over the run|, which is scale-free. Adam itself is the same elementwise
code on every device, applied to gradients that are already averaged.
"""
import json
import sys

import jax
import numpy as np
import optax

from gan_jax import data
from gan_jax import parallel
from gan_jax.train import create_train_state
from conftest import tiny_config

EVERYTHING = dict(conditional=True, model_args=dict(d_spectral_norm=True), d_steps=2, augment="color,translation,cutout",
                  augment_p=0.5, ada_target=0.6, ada_interval=1, ada_kimg=1.0, r1_gamma=1.0,
                  instance_noise=0.1, instance_noise_steps=100, feature_matching=0.1, label_smoothing=0.1,
                  ema_decay=0.9)
SGD_LEARNING_RATE = 0.01  # moves the weights by ~1e-2 in 6 steps: far above float32 rounding of them
GLOBAL_BATCH, STEPS_PER_CALL, CALLS = 16, 3, 2
GROUPS = ("g_params", "g_batch_stats", "g_ema_params", "g_ema_batch_stats", "d_params", "d_batch_stats",
          "augment_p")


def initial_state(axis_name, image_shape):
  state = create_train_state(tiny_config(**EVERYTHING), jax.random.PRNGKey(0), image_shape,
                             num_classes=10, axis_name=axis_name)
  sgd = optax.sgd(SGD_LEARNING_RATE)
  return state.replace(g_tx=sgd, d_tx=sgd, g_opt_state=sgd.init(state.g_params),
                       d_opt_state=sgd.init(state.d_params))


def streamed_rows(key, num_examples):
  """The rows the in-memory path reads in steps 0..5 (its epoch orders), to stream the same batches."""
  rows_per_step = GLOBAL_BATCH * EVERYTHING["d_steps"]
  epoch_steps = num_examples // rows_per_step
  steps = range(STEPS_PER_CALL * CALLS)
  return [np.asarray(data.epoch_order(key, s // epoch_steps, num_examples))[
      (s % epoch_steps) * rows_per_step:][:rows_per_step] for s in steps]


def train(strategy, num_devices, images, labels, fuse_steps=None, streamed=False, shifted_device=None):
  """The state's groups (float64 arrays) after each call, and the last call's metrics.

  `shifted_device` (streamed input only) plants a bug: that device's rows get the next class's label.
  """
  dp = parallel.DataParallel(strategy, parallel.local_devices(num_devices), fuse_steps=fuse_steps)
  state = initial_state(dp.axis_name, images.shape[1:])
  if streamed:
    place = dp.batch_placer(GLOBAL_BATCH)
    local_batch = GLOBAL_BATCH // num_devices
    def batch(rows):
      batch_labels = labels[rows].reshape(EVERYTHING["d_steps"], num_devices, local_batch)
      if shifted_device is not None:
        batch_labels[:, shifted_device] = (batch_labels[:, shifted_device] + 1) % 10
      return place({"image": images[rows], "label": batch_labels.reshape(-1)})
    batches = (batch(rows) for rows in streamed_rows(state.key, len(images)))
    step = lambda state: dp.streaming_train_function(global_batch=GLOBAL_BATCH)(state, batches,
                                                                                STEPS_PER_CALL)
  else:
    data = dp.put_data(images, labels)
    step = lambda state: dp.train_function(global_batch=GLOBAL_BATCH, steps=STEPS_PER_CALL)(state, *data)
  state, after_calls = dp.put_state(state), []
  for _ in range(CALLS):
    state, metrics = step(state)
    after_calls.append(groups(dp.get_state(state)))
  assert int(dp.get_state(state).step) == STEPS_PER_CALL * CALLS
  return after_calls, metrics


def groups(state):
  return {name: np.concatenate([np.asarray(x, np.float64).ravel()
                                for x in jax.tree.leaves(getattr(state, name))]) for name in GROUPS}


def relative_difference(run, reference, initial) -> float:
  """max over the groups of max |run - reference| / max |reference - initial|."""
  return max(float(np.abs(run[g] - reference[g]).max() / np.abs(reference[g] - initial[g]).max())
             for g in GROUPS)


def main():
  assert jax.device_count() == 8, jax.devices()
  rng = np.random.RandomState(0)
  # 8x8: DCGAN's smallest size (one resolution step for G and D), the same machinery in the smallest
  # programs. Measured 2026-12-01 (2 cores, Xeon with AVX-512, cold cache): this check took 2m03s with
  # 8x8 images, 2m29s with 16x16.
  images = rng.randint(0, 256, (96, 8, 8, 3)).astype(np.uint8)
  labels = rng.randint(0, 10, 96).astype(np.int32)
  initial = groups(initial_state(None, images.shape[1:]))
  reference, ref_metrics = train("shard_map", 1, images, labels)
  result = {}
  for strategy in ("shard_map", "pmap"):
    run, metrics = train(strategy, 8, images, labels)
    result[strategy] = relative_difference(run[-1], reference[-1], initial)
    result[strategy + "_d_loss"] = float(np.abs(np.asarray(metrics["d_loss"]) /
                                                np.asarray(ref_metrics["d_loss"]) - 1).max())
  # The accelerators' path (a call's steps in one compiled loop) against
  # the CPU's (a host loop of one-step programs), which all the runs above took: one call of 3 steps
  # (loops of convolutions run slowly on CPU, see train.convolutions_slow_in_control_flow).
  dp = parallel.DataParallel("shard_map", parallel.local_devices(1), fuse_steps=True)
  state, _ = dp.train_function(global_batch=GLOBAL_BATCH, steps=STEPS_PER_CALL)(
      dp.put_state(initial_state(dp.axis_name, images.shape[1:])), *dp.put_data(images, labels))
  result["fused"] = relative_difference(groups(state), reference[0], initial)
  # Streamed batches (gan_jax.data.streaming's path) of the rows the in-memory path read.
  for strategy in ("shard_map", "pmap"):
    run, _ = train(strategy, 8, images, labels, streamed=True)
    result["stream_" + strategy] = relative_difference(run[-1], reference[-1], initial)
  # The negative control: the streamed 8-device run with one device's labels off by one (the same
  # compiled programs as stream_shard_map's: a bug in the data, not in the step).
  run, _ = train("shard_map", 8, images, labels, streamed=True, shifted_device=3)
  result["control_shifted_labels"] = relative_difference(run[-1], reference[-1], initial)
  json.dump(result, sys.stdout)


if __name__ == "__main__":
  main()
