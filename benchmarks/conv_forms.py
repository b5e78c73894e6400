"""Is XLA:CPU faster when a convolution is written as a matmul? D's 5x5 stride-2 convs of the dcgan
preset in three forms, against PyTorch on the same threads.

    python benchmarks/conv_forms.py --threads=2 --batch_size=256

Per layer it prints the forward time and the weight gradient's time of
  conv     lax.conv_general_dilated (what gan_jax uses),
  matmul   patches (lax.conv_general_dilated_patches) times the reshaped kernel, and for the weight
           gradient patches^T @ dy,
  torch    torch.nn.functional.conv2d / torch.nn.grad.conv2d_weight (NCHW, its default kernels),
and one dot of the size of the middle layer's matmul form in JAX and torch, in GFLOP/s. Best of --repeats.
torch is optional (`pip install torch`); without it only the JAX columns are printed.
"""
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cpu_threads  # pylint: disable=g-import-not-at-top

_THREADS = flags.DEFINE_integer("threads", 0, "CPUs and threads for both sides (0: all CPUs).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Images (D sees real and fake: 2x the batch).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs; the best counts.")
# (input size, input channels, output channels) of the dcgan preset's D at 32x32.
LAYERS = ((32, 3, 64), (16, 64, 128), (8, 128, 256))
KERNEL, STRIDE, PADDING = 5, 2, ((1, 2), (1, 2))  # 'SAME' for 5x5 stride 2 on even sizes


def best_ms(function, repeats: int) -> float:
  function()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return min(times) * 1e3


def main(argv):
  del argv
  threads = cpu_threads.limit(_THREADS.value)
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  try:
    import torch  # pylint: disable=g-import-not-at-top
    cpu_threads.limit_torch(torch, threads)
  except ImportError:
    torch = None
    print("torch is not installed (pip install torch): JAX columns only")
  numbers = ("NHWC", "HWIO", "NHWC")
  conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (STRIDE,) * 2, PADDING,
                                                           dimension_numbers=numbers))

  def patches(x):  # (B, Ho, Wo, C * k * k), channel-major
    return jax.lax.conv_general_dilated_patches(x, (KERNEL,) * 2, (STRIDE,) * 2, PADDING,
                                                dimension_numbers=numbers)

  @jax.jit
  def matmul(x, w):
    c, o = w.shape[2:]
    return patches(x).reshape(-1, c * KERNEL**2) @ w.transpose(2, 0, 1, 3).reshape(-1, o)

  conv_weight_grad = jax.jit(lambda x, dy, w: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0])

  @jax.jit
  def matmul_weight_grad(x, dy):
    c, o = x.shape[-1], dy.shape[-1]
    grad = patches(x).reshape(-1, c * KERNEL**2).T @ dy.reshape(-1, o)
    return grad.reshape(c, KERNEL, KERNEL, o).transpose(1, 2, 0, 3)

  print(f"{threads} threads, batch {_BATCH_SIZE.value}, jax {jax.__version__}"
        + (f", torch {torch.__version__}" if torch else ""))
  print("| layer | GFLOP | forward ms: conv / matmul / torch | weight grad ms: conv / matmul / torch |")
  print("| --- | --- | --- | --- |")
  rng = np.random.RandomState(0)
  b = _BATCH_SIZE.value
  for size, c, o in LAYERS:
    x = rng.randn(b, size, size, c).astype(np.float32)
    w = (rng.randn(KERNEL, KERNEL, c, o) * 0.05).astype(np.float32)
    dy = rng.randn(b, size // STRIDE, size // STRIDE, o).astype(np.float32)
    xj, wj, dyj = jnp.asarray(x), jnp.asarray(w), jnp.asarray(dy)
    np.testing.assert_allclose(np.asarray(matmul(xj, wj)), np.asarray(conv(xj, wj)).reshape(-1, o),
                               rtol=1e-3, atol=1e-3)
    run = lambda f, *a: best_ms(lambda: jax.block_until_ready(f(*a)), _REPEATS.value)
    forward = [run(conv, xj, wj), run(matmul, xj, wj)]
    weight = [run(conv_weight_grad, xj, dyj, wj), run(matmul_weight_grad, xj, dyj)]
    if torch:
      xt, wt = torch.tensor(x).permute(0, 3, 1, 2).contiguous(), torch.tensor(w).permute(3, 2, 0, 1).contiguous()
      dyt = torch.tensor(dy).permute(0, 3, 1, 2).contiguous()
      with torch.no_grad():
        forward.append(best_ms(lambda: torch.nn.functional.conv2d(xt, wt, stride=STRIDE, padding=2),
                               _REPEATS.value))
        weight.append(best_ms(lambda: torch.nn.grad.conv2d_weight(xt, wt.shape, dyt, stride=STRIDE,
                                                                  padding=2), _REPEATS.value))
    gflop = 2 * b * (size // STRIDE)**2 * o * c * KERNEL**2 / 1e9
    print(f"| {size}x{size}x{c} -> {o} | {gflop:.2f} | {' / '.join(f'{t:.1f}' for t in forward)} | "
          f"{' / '.join(f'{t:.1f}' for t in weight)} |")
  m, k, n = b * 64, 64 * KERNEL**2, 128  # the middle layer's matmul form
  a, bm = rng.randn(m, k).astype(np.float32), rng.randn(k, n).astype(np.float32)
  dot = jax.jit(jnp.dot)
  line = f"dot {m}x{k} @ {k}x{n}: jax {2 * m * k * n / run(dot, jnp.asarray(a), jnp.asarray(bm)) / 1e6:.0f} GFLOP/s"
  if torch:
    at, bt = torch.tensor(a), torch.tensor(bm)
    line += f", torch {2 * m * k * n / best_ms(lambda: at @ bt, _REPEATS.value) / 1e6:.0f} GFLOP/s"
  print(line)


if __name__ == "__main__":
  app.run(main)
