"""Where a train step's time goes, in gan_jax and in the same step in PyTorch (benchmarks/torch_reference.py).

    python benchmarks/step_profile.py --preset=sngan --batch_size=16 --threads=2

Profiles one warmed-up train step on each side and prints the time per kind of operation:
- JAX: jax.profiler's trace of the jit step; each XLA:CPU thunk is classified by the HLO it runs (its
  fusion's body in the compiled module): convolutions (forward, input gradient, weight gradient), dots,
  pooling (reduce-window), reductions, copies/transposes, other fusions. Thunks may run concurrently,
  so the kinds can add up to more than the wall time.
- PyTorch: torch.profiler's self CPU time per aten operator, grouped into the same kinds.
Then the dominant convolution shapes alone (`--conv_shapes`: batch x size x channels_in x channels_out x
kernel), forward, input gradient and weight gradient, on both sides: what the kernels themselves reach.
"""
import collections
import gzip
import glob
import json
import os
import re
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cpu_threads  # pylint: disable=g-import-not-at-top
from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top

# torch_reference's flags serve here too: --threads, --batch_size, --set.
_PRESET = flags.DEFINE_string("preset", "sngan", "Preset: dcgan or sngan (those torch_reference has).")
_CONV_SHAPES = flags.DEFINE_list("conv_shapes", ["16x32x256x256x3", "16x16x256x256x3", "32x32x128x128x3"],
                                 "Convolutions timed alone: batch x size x in x out x kernel (stride 1, SAME).")
_KINDS = ("conv forward", "conv input gradient", "conv weight gradient", "dot / linear", "pooling",
          "batch norm", "reductions", "copies / transposes", "other")


def _hlo_kinds(hlo: str) -> dict:
  """{instruction name: kind} for the compiled module's instructions (what their thunks run)."""
  bodies = {m.group(1): m.group(2)
            for m in re.finditer(r"^(?:ENTRY )?%(\S+) \(.*?\{\n(.*?)\n\}", hlo, re.S | re.M)}
  kinds = {}
  for line in hlo.splitlines():
    match = re.match(r"\s*(?:ROOT )?%(\S+) = \S+ (\S+?)\(", line)
    if not match:
      continue
    called = re.search(r"calls=%([^,\s]+)", line)
    body = bodies.get(called.group(1), "") if called else line
    kinds[match.group(1)] = _kind_of(match.group(1), body)
  return kinds


def _kind_of(name: str, body: str) -> str:
  conv = re.search(r"convolution\((.*?)\), window=\{size=([\dx]+)", body)
  if conv:
    if int(conv.group(2).split("x")[0]) > 7:  # the window is a feature map: a weight gradient
      return "conv weight gradient"
    return "conv input gradient" if "transpose(jvp" in body else "conv forward"
  if re.search(r" dot\(", body):
    return "dot / linear"
  if "reduce-window" in body:
    return "pooling"
  if re.search(r" reduce\(", body):
    return "reductions"
  if "copy" in name or "transpose" in name:
    return "copies / transposes"
  return "other"


def profile_jax(config):
  """(wall ms, {kind: thunk ms}) of one jit train step."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  shape = (config.image_size, config.image_size, 3)
  total = config.batch_size * config.d_steps
  state = train.create_train_state(config, jax.random.PRNGKey(0), shape)
  batch = {"image": jnp.zeros((total,) + shape), "label": jnp.zeros((total,), jnp.int32)}
  rng = jax.random.PRNGKey(1)
  compiled = jax.jit(train.train_step, donate_argnums=0).lower(state, batch, rng).compile()
  kinds = _hlo_kinds(compiled.as_text())
  for _ in range(2):  # warm-up
    state, metrics = compiled(state, batch, rng)
    jax.block_until_ready(metrics)
  start = time.perf_counter()
  state, metrics = compiled(state, batch, rng)
  jax.block_until_ready(metrics)
  wall = time.perf_counter() - start
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    state, metrics = compiled(state, batch, rng)
    jax.block_until_ready(metrics)
    jax.profiler.stop_trace()
    with gzip.open(glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]) as f:
      trace = json.load(f)
  times = collections.defaultdict(float)
  for event in trace["traceEvents"]:
    if event.get("ph") == "X" and event["name"] in kinds:
      times[kinds[event["name"]]] += event.get("dur", 0) / 1e3
  return wall * 1e3, times


_TORCH_KINDS = (("convolution_backward", "conv input + weight gradient"), ("convolution", "conv forward"),
                ("mkldnn_conv", "conv forward"), ("addmm", "dot / linear"), ("mm", "dot / linear"),
                ("pool", "pooling"), ("upsample", "other"), ("batch_norm", "batch norm"),
                ("sum", "reductions"), ("mean", "reductions"), ("norm", "reductions"),
                ("copy", "copies / transposes"), ("cat", "copies / transposes"))


def profile_torch(torch, config):
  """(wall ms, {kind: self CPU ms}) of one torch train step."""
  step, _, _ = torch_reference.torch_step_function(torch, config)
  step()
  start = time.perf_counter()
  step()
  wall = time.perf_counter() - start
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
    step()
  times = collections.defaultdict(float)
  for event in profiler.key_averages():
    name = event.key.replace("aten::", "")
    kind = next((k for pattern, k in _TORCH_KINDS if pattern in name), "other")
    times[kind] += event.self_cpu_time_total / 1e3
  return wall * 1e3, times


def conv_kernels(torch, shape: str):
  """{'jax'|'torch': (forward, input gradient, weight gradient) ms} and GFLOP of one such convolution."""
  import jax  # pylint: disable=g-import-not-at-top
  batch, size, c_in, c_out, k = (int(v) for v in shape.split("x"))
  rng = np.random.RandomState(0)
  x = rng.randn(batch, size, size, c_in).astype(np.float32)
  w = (rng.randn(k, k, c_in, c_out) * 0.01).astype(np.float32)
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  functions = [jax.jit(conv), jax.jit(jax.grad(lambda x, w: conv(x, w).sum())),
               jax.jit(jax.grad(lambda w, x: conv(x, w).sum()))]
  results = {"jax": tuple(_best_ms(lambda f=f, a=a: jax.block_until_ready(f(*a)))
                          for f, a in zip(functions, ((x, w), (x, w), (w, x))))}
  if torch is not None:
    tx, tw = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(w.transpose(3, 2, 0, 1).copy())
    y = torch.nn.functional.conv2d(tx, tw, padding=k // 2)
    dy = torch.ones_like(y)
    results["torch"] = (
        _best_ms(lambda: torch.nn.functional.conv2d(tx, tw, padding=k // 2)),
        _best_ms(lambda: torch.nn.grad.conv2d_input(tx.shape, tw, dy, padding=k // 2)),
        _best_ms(lambda: torch.nn.grad.conv2d_weight(tx, tw.shape, dy, padding=k // 2)))
  return results, 2 * batch * size * size * c_in * c_out * k * k / 1e9


def _best_ms(function, repeats: int = 5) -> float:
  function()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    function()
    best = min(best, time.perf_counter() - start)
  return best * 1e3


def main(argv):
  del argv
  threads = cpu_threads.limit(torch_reference._THREADS.value)  # pylint: disable=protected-access
  import jax  # pylint: disable=g-import-not-at-top  (after cpu_threads.limit: XLA sizes its pool at start)
  try:
    import torch  # pylint: disable=g-import-not-at-top
    cpu_threads.limit_torch(torch, threads)
  except ImportError:
    torch = None
    print("torch is not installed (pip install torch, CPU build): the PyTorch columns are skipped")
  config = torch_reference.load_preset(_PRESET.value, torch_reference._SET.value)  # pylint: disable=protected-access
  print(f"{_PRESET.value}: batch {config.batch_size} x {config.d_steps} D steps, {threads} CPUs, "
        f"JAX {jax.__version__}" + (f", torch {torch.__version__}" if torch else ""))
  jax_wall, jax_times = profile_jax(config)
  torch_wall, torch_times = profile_torch(torch, config) if torch else (None, {})
  kinds = list(_KINDS) + ["conv input + weight gradient"]
  print("| kind | JAX thunk ms | torch self ms |\n| --- | --- | --- |")
  for kind in kinds:
    if jax_times.get(kind) or torch_times.get(kind):
      print(f"| {kind} | {jax_times.get(kind, 0):.0f} | {torch_times.get(kind, 0):.0f} |")
  print(f"| **wall time of the step** | **{jax_wall:.0f}** | **{torch_wall or 0:.0f}** |")
  print("\n| convolution (B x S x Cin x Cout x K) | GFLOP | JAX fwd / dx / dw ms | torch fwd / dx / dw ms |"
        "\n| --- | --- | --- | --- |")
  for shape in _CONV_SHAPES.value:
    results, gflop = conv_kernels(torch, shape)
    sides = ["/".join(f"{ms:.0f}" for ms in results[side]) if side in results else "-"
             for side in ("jax", "torch")]
    print(f"| {shape} | {gflop:.1f} | {sides[0]} | {sides[1]} |")


if __name__ == "__main__":
  app.run(main)
