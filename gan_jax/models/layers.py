"""Building blocks shared by the architectures: optional spectral norm, the projection head, conditional
BatchNorm, self-attention and a transposed convolution that is fast on every backend."""
import dataclasses
import functools
from typing import Any, Callable, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class SpectralNormWrapper:
  """`sn(layer, x)` applies `layer`, spectrally normalised (Miyato et al. 2018) when `enabled`.

  Uses flax's nn.SpectralNorm: one power iteration per call, its vectors kept in "batch_stats" and
  updated only in training. Call it inside a module's compact method.
  """
  enabled: bool
  train: bool

  def __call__(self, layer: nn.Module, x, *args, **kwargs):
    if not self.enabled:
      return layer(x, *args, **kwargs)
    return nn.SpectralNorm(layer)(x, *args, update_stats=self.train, **kwargs)


def require_labels(labels, num_classes: int) -> None:
  """Raises a clear error when a class-conditional module is called without labels."""
  if num_classes and labels is None:
    raise ValueError(f"this model is class-conditional ({num_classes} classes) and needs labels (B,)")


def projection(features, labels, num_classes: int, sn: SpectralNormWrapper,
               embedding_init: Callable = nn.linear.default_embed_init):
  """The class term of a projection discriminator: <embed(y), features>, (B,) float32."""
  embedding = sn(nn.Embed(num_classes, features.shape[-1], embedding_init=embedding_init), labels)
  return jnp.sum(embedding.astype(jnp.float32) * features.astype(jnp.float32), axis=-1)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose gain and bias come from a condition, chosen by what `condition` is:

  - labels (B,) when `num_classes` > 0: a learned gain (init 1) and bias (init 0) per class, SNGAN's
    categorical conditional BatchNorm;
  - a vector (B, D) when `num_classes` is 0: gain = 1 + linear(c), bias = linear(c), BigGAN's; the
    linear maps are spectrally normalised when `spectral_norm`;
  - None: plain BatchNorm with its own learned scale and bias.

  Statistics are averaged over the devices named by `axis_name` and updated only in training.
  """
  num_classes: int = 0
  spectral_norm: bool = False
  kernel_init: Callable = nn.linear.default_kernel_init  # of the linear maps
  axis_name: Any = None
  momentum: float = 0.9  # of the running statistics: SNGAN's and BigGAN's (flax's default is 0.99)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, condition=None, *, train: bool):
    require_labels(condition, self.num_classes)
    plain = condition is None
    x = nn.BatchNorm(use_running_average=not train, use_scale=plain, use_bias=plain, momentum=self.momentum,
                     axis_name=self.axis_name, dtype=self.dtype)(x)
    if plain:
      return x
    features = x.shape[-1]
    if self.num_classes:
      gain = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.ones, dtype=self.dtype,
                      name="gain")(condition)
      bias = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.zeros, dtype=self.dtype,
                      name="bias")(condition)
    else:
      sn = SpectralNormWrapper(self.spectral_norm, train)
      linear = lambda name: nn.Dense(features, use_bias=False, kernel_init=self.kernel_init,
                                     dtype=self.dtype, name=name)
      gain = 1 + sn(linear("gain"), condition)
      bias = sn(linear("bias"), condition)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
    return x * gain.reshape(shape) + bias.reshape(shape)


class SelfAttention(nn.Module):
  """SAGAN's self-attention block (Zhang et al. 2019, in BigGAN's form) on (B, H, W, C) feature maps.

  Queries theta (C/8 channels), keys phi (C/8) and values g (C/2) are 1x1 convs, keys and values 2x2
  max-pooled; the attended values are mapped back to C channels by a 1x1 conv o and added as
  x + gamma * o, with gamma learned from 0 so that the block starts as the identity.
  """
  spectral_norm: bool = False
  kernel_init: Callable = nn.linear.default_kernel_init
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    batch, height, width, channels = x.shape
    if channels < 8:
      raise ValueError(f"self-attention needs at least 8 channels, got {channels}")
    sn = SpectralNormWrapper(self.spectral_norm, train)
    conv = lambda features, name: nn.Conv(features, (1, 1), use_bias=False, kernel_init=self.kernel_init,
                                          dtype=self.dtype, name=name)
    pool = lambda t: nn.max_pool(t, (2, 2), strides=(2, 2))
    theta = sn(conv(channels // 8, "theta"), x).reshape(batch, -1, channels // 8)
    phi = pool(sn(conv(channels // 8, "phi"), x)).reshape(batch, -1, channels // 8)
    g = pool(sn(conv(channels // 2, "g"), x)).reshape(batch, -1, channels // 2)
    # The softmax runs in float32: in bfloat16 the normalisation over all keys loses too much precision.
    attention = nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi).astype(jnp.float32), axis=-1)
    attended = jnp.einsum("bqk,bkc->bqc", attention.astype(g.dtype), g)
    o = sn(conv(channels, "o"), attended.reshape(batch, height, width, channels // 2))
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma.astype(o.dtype) * o


def _subpixel_taps(kernel_size: int, stride: int):
  """How a 1-D stride-`stride` 'SAME' transposed conv splits into `stride` stride-1 convs (phases).

  lax.conv_transpose(padding='SAME') dilates the input by `stride`, pads it by (pad, k + s - 2 - pad)
  and correlates it with the kernel, so output s * m + r reads input m + d through kernel tap
  j = s * d + pad - r. Returns (first offset d, index (taps, s) of j, mask (taps, s) of valid taps).
  """
  pad_len = kernel_size + stride - 2
  pad = kernel_size - 1 if stride > kernel_size - 1 else -(-pad_len // 2)  # lax's 'SAME' rule
  first = -(pad // stride)
  last = (kernel_size - 1 + stride - 1 - pad) // stride
  offsets = np.arange(first, last + 1)[:, None]
  taps = stride * offsets + pad - np.arange(stride)[None, :]
  valid = (taps >= 0) & (taps < kernel_size)
  return first, np.where(valid, taps, 0), valid


def _phase_conv(x, kernel, strides, taps_h, taps_w):
  """sum over taps of x shifted by an offset times a kernel tap, for every output phase, as one stride-1
  conv with strides[0] * strides[1] times the channels followed by depth-to-space.

  kernel (kh, kw, in, out); taps_*: (first offset, tap index (offsets, phases), valid (offsets, phases))
  as _subpixel_taps and _input_gradient_taps give them. Output phase r of position m reads
  x[m + first + t] through kernel tap index[t, r] (zero where not valid).
  """
  (first_h, index_h, valid_h), (first_w, index_w, valid_w) = taps_h, taps_w
  (sh, sw), channels_out = strides, kernel.shape[3]
  phase_kernel = kernel[index_h[:, :, None, None], index_w[None, None, :, :]]  # (th, rh, tw, rw, in, out)
  mask = (valid_h[:, :, None, None] & valid_w[None, None, :, :]).astype(kernel.dtype)
  phase_kernel = (phase_kernel * mask[..., None, None]).transpose(0, 2, 4, 1, 3, 5)
  phase_kernel = phase_kernel.reshape(index_h.shape[0], index_w.shape[0], kernel.shape[2],
                                      sh * sw * channels_out)
  y = _conv(x, phase_kernel, (1, 1), ((-first_h, index_h.shape[0] - 1 + first_h),
                                      (-first_w, index_w.shape[0] - 1 + first_w)))
  batch, height, width, _ = y.shape
  y = y.reshape(batch, height, width, sh, sw, channels_out).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(batch, height * sh, width * sw, channels_out)


class _ConvParameters(nn.Module):
  """The parameters of nn.Conv and nn.ConvTranspose (kernel (kh, kw, in, out), optional bias) with the
  same initialisers, for the layers below that compute those functions their own way."""
  features: int
  kernel_size: Tuple[int, int]
  strides: Tuple[int, int] = (2, 2)
  use_bias: bool = True
  kernel_init: Callable = nn.linear.default_kernel_init
  bias_init: Callable = nn.initializers.zeros
  dtype: Any = None
  param_dtype: Any = jnp.float32

  def promoted_variables(self, x):
    """(x, kernel, bias) in the compute dtype; bias is None without use_bias."""
    kernel = self.param("kernel", self.kernel_init, tuple(self.kernel_size) + (x.shape[-1], self.features),
                        self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    return nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)


class SubpixelConvTranspose(_ConvParameters):
  """nn.ConvTranspose(features, kernel_size, strides, padding='SAME') computed as one stride-1 conv with
  stride**2 times the output channels followed by depth-to-space (Shi et al. 2016's sub-pixel conv).

  Same parameters (kernel (kh, kw, in, out), bias), same initialisation and the same function as
  nn.ConvTranspose; only the computation differs: XLA:CPU runs the gradient of a transposed conv
  (an input-dilated conv) with a slow generic kernel, while a stride-1 conv is fast on every backend,
  forward and backward (DCGAN's 8x8x256 -> 16x16x128 layer, batch 64, 2 cores: forward and backward
  1,646 ms as nn.ConvTranspose, 338 ms as this layer). The kernel is rearranged (taps that fall outside it are zero) at
  every call, which costs next to nothing.
  """

  @nn.compact
  def __call__(self, x):
    (kh, kw), (sh, sw) = self.kernel_size, self.strides
    x, kernel, bias = self.promoted_variables(x)
    y = _phase_conv(x, kernel, (sh, sw), _subpixel_taps(kh, sh), _subpixel_taps(kw, sw))
    return y if bias is None else y + bias


def _same_padding(size: int, kernel_size: int, stride: int) -> Tuple[int, int]:
  """lax's 'SAME' padding of one spatial dimension."""
  pad = max((-(-size // stride) - 1) * stride + kernel_size - size, 0)
  return pad // 2, pad - pad // 2


def _input_gradient_taps(kernel_size: int, stride: int, pad_before: int):
  """How the input gradient of a 1-D stride-`stride` conv splits into `stride` stride-1 correlations of
  the output gradient: input s * m + r gets dy[m + e] through kernel tap j = r + pad_before - s * e.
  Returns (first offset e, index (offsets, s) of j, mask (offsets, s) of valid taps)."""
  phases = np.arange(stride)
  first = min(-(-(r + pad_before - kernel_size + 1) // stride) for r in phases)
  last = max((r + pad_before) // stride for r in phases)
  offsets = np.arange(first, last + 1)[:, None]
  taps = phases[None, :] + pad_before - stride * offsets
  valid = (taps >= 0) & (taps < kernel_size)
  return first, np.where(valid, taps, 0), valid


def _conv(x, kernel, strides, padding):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _strided_conv_input_gradient(dy, kernel, strides, padding, input_shape):
  """d(conv(x, kernel, strides, padding))/dx applied to dy, as one stride-1 conv + depth-to-space."""
  (kh, kw), (sh, sw) = kernel.shape[:2], strides
  dx = _phase_conv(dy, kernel.transpose(0, 1, 3, 2), strides, _input_gradient_taps(kh, sh, padding[0][0]),
                   _input_gradient_taps(kw, sw, padding[1][0]))
  return dx[:, :input_shape[1], :input_shape[2]]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _strided_conv(x, kernel, strides):
  return _conv(x, kernel, strides, _strided_conv_padding(x, kernel, strides))


def _strided_conv_padding(x, kernel, strides):
  return tuple(_same_padding(size, k, s) for size, k, s in zip(x.shape[1:3], kernel.shape[:2], strides))


def _strided_conv_forward(x, kernel, strides):
  return _strided_conv(x, kernel, strides), (x, kernel)


def _strided_conv_backward(strides, residuals, dy):
  x, kernel = residuals
  padding = _strided_conv_padding(x, kernel, strides)
  dx = _strided_conv_input_gradient(dy, kernel, strides, padding, x.shape)
  _, kernel_vjp = jax.vjp(lambda k: _conv(x, k, strides, padding), kernel)
  return dx.astype(x.dtype), kernel_vjp(dy)[0]


_strided_conv.defvjp(_strided_conv_forward, _strided_conv_backward)


class StridedConv(_ConvParameters):
  """nn.Conv(features, kernel_size, strides, padding='SAME') whose input gradient is one stride-1 conv
  followed by depth-to-space, like SubpixelConvTranspose.

  Same parameters, initialisation and function as nn.Conv, forward and backward (also the double
  backward of R1 and gradient penalties): XLA:CPU computes the input gradient of a strided conv (an
  input-dilated conv) with a slow generic kernel: for D's last DCGAN layer (8x8x128 -> 4x4x256, batch
  128, 2 cores) forward and backward took 1,872 ms, and 324 ms with this layer. The forward pass and the
  kernel's gradient are XLA's own.
  """

  @nn.compact
  def __call__(self, x):
    x, kernel, bias = self.promoted_variables(x)
    y = _strided_conv(x, kernel, tuple(self.strides))
    return y if bias is None else y + bias
