"""Training throughput of the presets: images/s, step time, compile time and MFU, per parallelism strategy.

    python benchmarks/train_throughput.py                                  # every preset, shard_map
    python benchmarks/train_throughput.py --presets=dcgan,biggan_cifar10 --strategies=shard_map,pmap
    python benchmarks/train_throughput.py --set=compute_dtype=bfloat16     # override fields of each preset
    python benchmarks/train_throughput.py --presets=dcgan,dcgan:compute_dtype=bfloat16   # ...or of one
    python benchmarks/train_throughput.py --input_stall                    # also time a constant batch
    python benchmarks/train_throughput.py --flops_only                     # FLOPs per step, no training
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python benchmarks/train_throughput.py  # 8 CPU devices

images/s counts the real images D sees (batch_size * d_steps per step). Each preset's first row is
`jax.jit(train_step)` on one constant batch on one device ("bare jit", compiled apart with
.lower().compile()); the strategies' rows are the trainer's path (DataParallel: batches drawn on the
device, several steps per call), with vs_bare = their step time / the bare step's (target <= 1.1x on one
device). compile_s of a strategy is its first call minus the steps it ran. FLOPs per step come from XLA's
cost analysis of one D update and one G update, lowered apart and counted before optimisation (XLA counts
a loop's body once, so the fused multi-step function cannot be used; see _flops): d_steps * D + G, with lazily applied penalties counted
1/reg_every of the time. MFU = those FLOPs per second / (devices * the device's dense bfloat16 peak),
whatever the compute dtype, so float32 runs show how far they are from the tensor cores' best.

The data are random uint8 images of the dataset's shape: pixel values do not change the cost of drawing a
batch on the device, so no prepared dataset is needed.
"""
import os
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import experiments  # pylint: disable=g-import-not-at-top
from benchmarks import step_flops  # pylint: disable=g-import-not-at-top
from gan_jax import parallel  # pylint: disable=g-import-not-at-top
from gan_jax import train  # pylint: disable=g-import-not-at-top
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top

_PRESETS = flags.DEFINE_list("presets", ["dcgan", "sngan", "wgan_gp", "biggan_cifar10", "stylegan2_cifar10"],
                             "Presets (experiments/<name>.py) to measure, each optionally with overrides of "
                             "its own: name:field=value[:field=value...].")
_SET = flags.DEFINE_list("set", [], "field=value overrides applied to every preset.")
_STRATEGIES = flags.DEFINE_list("strategies", ["shard_map"], "Parallelism strategies to compare.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 50000, "Dataset size kept on the devices.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 10, "Classes, for conditional presets.")
_CALLS = flags.DEFINE_integer("calls", 10, "Timed calls (each runs config.steps_per_call steps).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions; the best is reported.")
_BARE = flags.DEFINE_bool("bare", True, "Also time the bare jit step (one more compilation per preset), "
                          "which vs_bare compares with.")
_INPUT_STALL = flags.DEFINE_bool("input_stall", False, "Also time a constant batch: the difference is "
                                 "what drawing batches on the device costs.")
_FLOPS_ONLY = flags.DEFINE_bool("flops_only", False, "Print each preset's FLOPs per step and stop (no "
                                "training; quick even for full-size presets on a CPU).")
_PEAK_TFLOPS = flags.DEFINE_float("peak_tflops", 0.0, "Dense bf16 peak of one device (default: known "
                                  "GPUs; none on CPU).")

# Dense (no sparsity) bfloat16 tensor-core peaks, TFLOP/s, by a substring of jax's device_kind.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L4": 121.0,
                    "A10G": 70.0, "V100": 125.0}


def peak_flops(device) -> float:
  if _PEAK_TFLOPS.value:
    return _PEAK_TFLOPS.value * 1e12
  for kind, tflops in PEAK_BF16_TFLOPS.items():
    if kind in device.device_kind:
      return tflops * 1e12
  return 0.0


def _time_calls(function, state, images, labels, calls):
  start = time.perf_counter()
  for _ in range(calls):
    state, metrics = function(state, images, labels)
  jax.block_until_ready((state, metrics))
  return state, time.perf_counter() - start


def measure_bare_step(config, image_shape, num_classes):
  """(compile seconds, seconds per step) of jax.jit(train_step) on one constant batch, one device: what
  the trainer's path (DataParallel) is compared with."""
  state = train.create_train_state(config, jax.random.PRNGKey(0), image_shape, num_classes=num_classes)
  rows = config.batch_size * config.d_steps
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (rows,) + image_shape, minval=-1.0),
           "label": jnp.arange(rows, dtype=jnp.int32) % max(num_classes, 1)}
  rng = jax.random.PRNGKey(2)
  start = time.perf_counter()
  step = jax.jit(train.train_step, donate_argnums=0).lower(state, batch, rng).compile()
  compile_seconds = time.perf_counter() - start
  state, metrics = step(state, batch, rng)
  jax.block_until_ready(metrics)
  best = float("inf")
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    for _ in range(_CALLS.value):
      state, metrics = step(state, batch, rng)
    jax.block_until_ready(metrics)
    best = min(best, (time.perf_counter() - start) / _CALLS.value)
  return compile_seconds, best


def measure(config, dp, data, image_shape, num_classes, constant_batch):
  """(compile seconds, seconds per step) of the preset's fused train function."""
  state = dp.put_state(train.create_train_state(config, jax.random.PRNGKey(0), image_shape,
                                                num_classes=num_classes, axis_name=dp.axis_name))
  steps = config.steps_per_call
  function = dp.train_function(global_batch=config.batch_size, steps=steps, constant_batch=constant_batch)
  state, first = _time_calls(function, state, *data, 1)
  best = float("inf")
  for _ in range(_REPEATS.value):
    state, seconds = _time_calls(function, state, *data, _CALLS.value)
    best = min(best, seconds)
  step_seconds = best / (_CALLS.value * steps)
  return first - step_seconds * steps, step_seconds


def main(argv):
  del argv
  device = jax.devices()[0]
  peak = peak_flops(device)
  print(f"JAX {jax.__version__} on {jax.device_count()} x {device.device_kind}; peak "
        f"{peak / 1e12:.0f} TFLOP/s per device (dense bf16)" if peak else
        f"JAX {jax.__version__} on {jax.device_count()} x {device.device_kind}; no known peak: MFU n/a "
        "(--peak_tflops)")
  print(f"{'preset':18} {'strategy':9} {'dtype':8} {'batch':>5} {'d_steps':>7} {'compile_s':>9} {'step_ms':>8} "
        f"{'images/s':>9} {'GFLOP/step':>10} {'TFLOP/s':>8} {'MFU':>6} {'vs_bare':>7}")
  rng = np.random.RandomState(0)
  for spec in _PRESETS.value:
    name, *overrides = spec.split(":")
    try:
      config = experiments.load_preset(name, _SET.value + overrides)
    except UserError as e:
      raise SystemExit(f"error: {e}") from e
    image_shape = (config.image_size, config.image_size, 3)
    images = rng.randint(0, 256, (_NUM_EXAMPLES.value,) + image_shape, dtype=np.uint8)
    labels = rng.randint(0, _NUM_CLASSES.value, _NUM_EXAMPLES.value).astype(np.int32)
    flops = step_flops.flops_per_step(config, image_shape, _NUM_CLASSES.value)
    images_per_step = config.batch_size * config.d_steps
    if _FLOPS_ONLY.value:
      print(f"{name:18} {'-':9} {config.compute_dtype[:8]:8} {config.batch_size:5d} {config.d_steps:7d} "
            f"{'':9} {'':8} {'':9} {flops / 1e9:10.2f}", flush=True)
      continue
    bare_step_s = None
    if _BARE.value:
      bare_compile_s, bare_step_s = measure_bare_step(config, image_shape, _NUM_CLASSES.value)
      print(f"{name:18} {'bare jit':9} {config.compute_dtype[:8]:8} {config.batch_size:5d} {config.d_steps:7d} "
            f"{bare_compile_s:9.1f} {bare_step_s * 1e3:8.2f} {images_per_step / bare_step_s:9.0f} "
            f"{flops / 1e9:10.2f}", flush=True)
    for strategy in _STRATEGIES.value:
      config.parallelism = strategy
      dp = parallel.DataParallel(strategy, parallel.local_devices(config.num_devices))
      data = dp.put_data(images, labels)
      compile_s, step_s = measure(config, dp, data, image_shape, _NUM_CLASSES.value, False)
      achieved = flops / step_s
      mfu = f"{100 * achieved / (peak * dp.num_global):5.1f}%" if peak else "n/a"
      print(f"{name:18} {strategy:9} {config.compute_dtype[:8]:8} {config.batch_size:5d} {config.d_steps:7d} "
            f"{compile_s:9.1f} {step_s * 1e3:8.2f} {images_per_step / step_s:9.0f} {flops / 1e9:10.2f} "
            f"{achieved / 1e12:8.2f} {mfu:>6} "
            f"{f'{step_s / bare_step_s:6.2f}x' if bare_step_s else '-':>7}", flush=True)
      if _INPUT_STALL.value:
        _, constant_step_s = measure(config, dp, data, image_shape, _NUM_CLASSES.value, True)
        print(f"{'':18} {strategy:9} constant batch: {constant_step_s * 1e3:.2f} ms/step; drawing batches "
              f"on the device costs {100 * (1 - constant_step_s / step_s):.2f}% of the step", flush=True)


if __name__ == "__main__":
  app.run(main)
