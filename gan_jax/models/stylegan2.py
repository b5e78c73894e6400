"""StyleGAN2-lite (Karras et al. 2020) as in StyleGAN2-ADA's CIFAR-10 configuration, simplified.

Generator: a mapping network (z normalised by its second moment, `mapping_layers` equalised dense layers
at lr_mul 0.01) gives w; the synthesis network starts from a learned 4x4 constant and has, per
resolution, modulated 3x3 convs with weight demodulation (one at 4x4, two above, the first after 2x
upsampling) and a toRGB modulated 1x1 conv without demodulation, in the skip architecture: the RGB image
of each resolution is upsampled and summed with the next. Every layer has `g_width` channels. The output
is that RGB sum, not squashed by tanh (the contract's one exception).

Discriminator: fromRGB 1x1, then per resolution a block conv3x3 -> conv3x3 -> 2x downsampling, in the
residual architecture with a 1x1 skip, summed and scaled by 1/sqrt(2) (see below); at 4x4 minibatch
standard deviation, conv3x3, dense -> `features`, and an output dense layer. Every layer has `d_width`
channels.

Conditioning: G concatenates a normalised class embedding to the normalised z before the mapping
layers. D uses StyleGAN2-ADA's projection: a mapping network (`mapping_layers` deep) turns the label into
cmap (B, d_width), the output layer gives d_width values instead of one, and the logit is their dot
product with cmap divided by sqrt(d_width).

Both use equalised learning rate (weights N(0, 1) / lr_mul, scaled at run time by lr_mul / sqrt(fan_in))
and leaky ReLU (0.2) times sqrt(2).

Noise inputs (`noise_inputs`): after each 3x3 modulated conv, per-pixel Gaussian noise (B, H, W, 1)
times a learned strength initialised to 0, as StyleGAN2-ADA's SynthesisLayer with noise_mode='random'.
The noise is drawn from a key hashed from each example's latent (the layer's own stream), not from an
RNG argument: a fresh z gets fresh noise, and the same z always gives the same image (fixed-noise
grids, the gallery, exports and FIDs are reproducible without a noise seed).

D architectures (`architecture`): 'resnet' (StyleGAN2-ADA's default) or 'orig' (its CIFAR configuration,
`D_kwargs.architecture = 'orig'`: the same blocks without the 1x1 skip).

Left out of StyleGAN2-ADA: style mixing and path-length regularisation (the CIFAR configuration turns
both off), truncation and its running average of w (a sampling option), the float16-specific activation
clamping and weight pre-normalisation (bfloat16 has float32's range).
Also different:
- resampling uses simple filters instead of the [1, 3, 3, 1] FIR filter: bilinear upsampling with
  jax.image.resize (half-pixel centres, edges replicated; in the interior the same as the FIR filter)
  and 2x2 average pooling (D's downsampling conv runs at full resolution and is then pooled, where
  StyleGAN2 blurs and convolves with stride 2);
- minibatch-stddev groups are contiguous examples ([0..G-1], [G..2G-1], ...) rather than strided, so a
  batch made of a real half and a fake half never mixes the two in one group;
- D's label mapping has `mapping_layers` layers (StyleGAN2-ADA: 8).

Modulated convs use the non-fused form (StyleGAN2's fused_modconv=False): scale the input activations
by the styles, convolve with the shared weight, scale the output by the demodulation coefficients.
The mapping network and style affines run in float32; the convolutions in `dtype`, with demodulation
coefficients computed in float32.
"""
import functools
import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

_MAPPING_LR_MUL = 0.01
_EPS = 1e-8


def num_resolution_steps(image_size: int) -> int:
  """Number of 2x up/down-sampling stages between 4x4 and `image_size` (8, 16, 32, 64, ...)."""
  if image_size < 8 or image_size & (image_size - 1):
    raise ValueError(f"StyleGAN2 needs a power-of-two image size >= 8, got {image_size}")
  return int(math.log2(image_size)) - 2


def lrelu(x):
  """Leaky ReLU (slope 0.2) with gain sqrt(2), which keeps the activations' second moment."""
  return nn.leaky_relu(x, 0.2) * math.sqrt(2.0)


def normalize_2nd_moment(x):
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + _EPS)


def upsample2x(x):
  """Bilinear 2x upsampling of (B, H, W, C)."""
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")


def downsample2x(x):
  """2x2 average pooling of (B, H, W, C)."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def modulated_conv(x, kernel, styles, *, demodulate: bool, up: bool = False, dtype=jnp.float32):
  """Convolves example b of x (B, H, W, I) with kernel (k, k, I, O) * styles[b] (B, I) over I.

  With `demodulate`, each example's modulated weight is divided by its norm over (k, k, I) for every
  output channel, so unit-variance inputs give unit-variance outputs. `up` upsamples 2x (bilinear)
  between modulation and convolution. Returns (B, H', W', O) in `dtype`.
  """
  x = x.astype(dtype) * styles[:, None, None, :].astype(dtype)
  if up:
    x = upsample2x(x)
  y = _conv(x, kernel.astype(dtype))
  if demodulate:
    styles = styles.astype(jnp.float32)
    kernel = kernel.astype(jnp.float32)
    sum_sq = jnp.square(styles) @ jnp.sum(jnp.square(kernel), axis=(0, 1))  # (B, O)
    y = y * jax.lax.rsqrt(sum_sq + _EPS)[:, None, None, :].astype(dtype)
  return y


def latent_hash(z):
  """One uint32 per example, from all the bits of its latent (B, Z): seeds the noise inputs."""
  bits = jax.lax.bitcast_convert_type(z.astype(jnp.float32), jnp.uint32)
  # Odd multipliers per position (a multiplicative hash), summed with uint32 wrap-around.
  weights = (2 * jnp.arange(z.shape[-1], dtype=jnp.uint32) + 1) * jnp.uint32(0x9E3779B1)
  return jnp.sum(bits * weights, axis=-1, dtype=jnp.uint32)


def noise_input(seeds, layer: int, shape, dtype):
  """Standard normal noise (B, H, W, 1): example b's from its seed and the layer's index."""
  base = jax.random.PRNGKey(layer)
  keys = jax.vmap(lambda seed: jax.random.fold_in(base, seed))(seeds)
  return jax.vmap(lambda key: jax.random.normal(key, shape + (1,), jnp.float32))(keys).astype(dtype)


def _std_normal(lr_mul: float = 1.0):
  return lambda key, shape: jax.random.normal(key, shape, jnp.float32) / lr_mul


class EqualDense(nn.Module):
  """Dense layer with equalised learning rate: (..., I) -> (..., features) in `dtype`."""
  features: int
  lr_mul: float = 1.0
  bias_init: float = 0.0  # the bias's effective initial value
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1]
    kernel = self.param("kernel", _std_normal(self.lr_mul), (fan_in, self.features))
    bias = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_mul), (self.features,))
    kernel = kernel * (self.lr_mul / math.sqrt(fan_in))
    return x.astype(self.dtype) @ kernel.astype(self.dtype) + (bias * self.lr_mul).astype(self.dtype)


class EqualConv(nn.Module):
  """Same-padded conv with equalised learning rate; `down` average-pools 2x before the bias."""
  features: int
  kernel_size: int
  use_bias: bool = True
  down: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, fan_in = self.kernel_size, self.kernel_size**2 * x.shape[-1]
    kernel = self.param("kernel", _std_normal(), (k, k, x.shape[-1], self.features))
    y = _conv(x.astype(self.dtype), (kernel / math.sqrt(fan_in)).astype(self.dtype))
    if self.down:
      y = downsample2x(y)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return y


class ModulatedConv(nn.Module):
  """A style affine of w (bias initialised to 1), a modulated conv and a bias; no activation."""
  features: int
  kernel_size: int
  demodulate: bool = True
  up: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, w, noise=None):
    """`noise` (B, H', W', 1), where given, is added times a learned strength (initially 0)."""
    k, in_features = self.kernel_size, x.shape[-1]
    styles = EqualDense(in_features, bias_init=1.0, name="affine")(w)
    kernel = self.param("kernel", _std_normal(), (k, k, in_features, self.features))
    y = modulated_conv(x, kernel / math.sqrt(k * k * in_features), styles, demodulate=self.demodulate,
                       up=self.up, dtype=self.dtype)
    if noise is not None:
      strength = self.param("noise_strength", nn.initializers.zeros, ())
      y = y + noise * strength.astype(self.dtype)
    return y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)


class MappingNetwork(nn.Module):
  """Normalised z (B, Z) and/or a normalised class embedding -> (B, features) float32."""
  features: int
  num_layers: int
  num_classes: int = 0

  @nn.compact
  def __call__(self, z, labels):
    parts = [] if z is None else [normalize_2nd_moment(z.astype(jnp.float32))]
    if self.num_classes:
      embedding = EqualDense(self.features, name="embed")(jax.nn.one_hot(labels, self.num_classes))
      parts.append(normalize_2nd_moment(embedding))
    x = jnp.concatenate(parts, axis=-1)
    for i in range(self.num_layers):
      x = lrelu(EqualDense(self.features, lr_mul=_MAPPING_LR_MUL, name=f"fc{i}")(x))
    return x


def _check_labels(labels, num_classes: int) -> None:
  if num_classes and labels is None:
    raise ValueError(f"this StyleGAN2 is conditional ({num_classes} classes) and needs labels")


def minibatch_stddev(x, group_size: int):
  """Appends one channel: for each group of `group_size` contiguous examples, the standard deviation
  over the group, averaged over channels and pixels. `group_size` must divide the batch."""
  b, h, w, c = x.shape
  if b % group_size:
    raise ValueError(f"the minibatch-stddev group size {group_size} does not divide the batch of {b}; "
                     "change --mbstd_group or the batch size")
  groups = x.astype(jnp.float32).reshape(b // group_size, group_size, h, w, c)
  stddev = jnp.mean(jnp.sqrt(jnp.var(groups, axis=1) + _EPS), axis=(1, 2, 3))
  channel = jnp.broadcast_to(jnp.repeat(stddev, group_size)[:, None, None, None], (b, h, w, 1))
  return jnp.concatenate([x, channel.astype(x.dtype)], axis=-1)


class Generator(nn.Module):
  """latent (B, Z) [+ labels (B,)] -> images (B, image_size, image_size, channels) float32, unsquashed."""
  image_size: int = 32
  channels: int = 3
  width: int = 256
  mapping_layers: int = 2
  num_classes: int = 0
  noise_inputs: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    del train  # no batch statistics or dropout
    steps = num_resolution_steps(self.image_size)
    _check_labels(labels, self.num_classes)
    w = MappingNetwork(z.shape[-1], self.mapping_layers, self.num_classes, name="mapping")(z, labels)
    conv = functools.partial(ModulatedConv, self.width, 3, dtype=self.dtype)
    to_rgb = functools.partial(ModulatedConv, self.channels, 1, demodulate=False, dtype=self.dtype)
    seeds = latent_hash(z) if self.noise_inputs else None
    layers = iter(range(2 * steps + 1))

    def noise(res):  # the next 3x3 layer's noise at resolution res, or None
      layer = next(layers)
      return None if seeds is None else noise_input(seeds, layer, (res, res), self.dtype)

    const = self.param("const", _std_normal(), (4, 4, self.width))
    x = jnp.broadcast_to(const.astype(self.dtype), (z.shape[0],) + const.shape)
    x = lrelu(conv(name="b4_conv1")(x, w, noise(4)))
    # The image is accumulated in float32: the sum over resolutions is G's output.
    image = to_rgb(name="b4_torgb")(x, w).astype(jnp.float32)
    for i in range(1, steps + 1):
      res = 4 * 2**i
      x = lrelu(conv(up=True, name=f"b{res}_conv0")(x, w, noise(res)))
      x = lrelu(conv(name=f"b{res}_conv1")(x, w, noise(res)))
      image = upsample2x(image) + to_rgb(name=f"b{res}_torgb")(x, w).astype(jnp.float32)
    return image


class Discriminator(nn.Module):
  """images (B, H, W, C) [+ labels (B,)] -> (logits (B,), features (B, width)), both float32."""
  width: int = 256
  mapping_layers: int = 2
  mbstd_group: int = 4  # capped at the batch size
  num_classes: int = 0
  architecture: str = "resnet"  # resnet | orig (no skip connections)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool, example_keys: Optional[jax.Array] = None):
    """`example_keys` is accepted for the contract and unused: this D has no randomness."""
    del train, example_keys
    steps = num_resolution_steps(x.shape[1])
    _check_labels(labels, self.num_classes)
    batch = x.shape[0]
    conv = functools.partial(EqualConv, self.width, dtype=self.dtype)
    x = lrelu(conv(1, name="fromrgb")(x.astype(self.dtype)))
    for _ in range(steps):
      res = x.shape[1]
      skip = (conv(1, use_bias=False, down=True, name=f"b{res}_skip")(x) if self.architecture == "resnet"
              else None)
      x = lrelu(conv(3, name=f"b{res}_conv0")(x))
      x = lrelu(conv(3, down=True, name=f"b{res}_conv1")(x))
      if skip is not None:
        x = (skip + x) * math.sqrt(0.5)
    x = minibatch_stddev(x, min(self.mbstd_group, batch))
    x = lrelu(conv(3, name="b4_conv")(x))
    x = lrelu(EqualDense(self.width, dtype=self.dtype, name="b4_fc")(x.reshape(batch, -1)))
    features = x.astype(jnp.float32)
    if not self.num_classes:
      return EqualDense(1, name="out")(features)[:, 0], features
    cmap = MappingNetwork(self.width, self.mapping_layers, self.num_classes, name="mapping")(None, labels)
    out = EqualDense(self.width, name="out")(features)
    return jnp.sum(out * cmap, axis=-1) / math.sqrt(self.width), features


D_ARCHITECTURES = ("resnet", "orig")


def default_args():
  return {"mapping_layers": 2,  # depth of the mapping network
          "mbstd_group": 4,  # minibatch-stddev group size (must divide the per-device batch)
          "noise_inputs": False,  # per-pixel noise inputs in G
          "d_architecture": "resnet"}  # D with skip connections (resnet) or without (orig)


def check(args, config, image_shape, per_device_batch):
  del config
  num_resolution_steps(image_shape[0])
  for name in ("mapping_layers", "mbstd_group"):
    if args[name] <= 0:
      raise ValueError(f"--config.model_args.{name}={args[name]} must be a positive integer")
  if args["d_architecture"] not in D_ARCHITECTURES:
    raise ValueError(f"--config.model_args.d_architecture={args['d_architecture']} is unknown; choose one "
                     f"of {', '.join(D_ARCHITECTURES)}")
  # A larger group would mix real and generated images in D's joint batch.
  if per_device_batch % args["mbstd_group"]:
    raise ValueError(f"--config.model_args.mbstd_group={args['mbstd_group']} must divide the per-device "
                     f"batch of {per_device_batch}")


def build(config, args, image_shape, *, num_classes, axis_name, dtype):
  del axis_name  # no batch statistics to average over devices
  height, _, channels = image_shape
  num_resolution_steps(height)
  generator = Generator(image_size=height, channels=channels, width=config.g_width,
                        mapping_layers=args["mapping_layers"], num_classes=num_classes,
                        noise_inputs=args["noise_inputs"], dtype=dtype)
  discriminator = Discriminator(width=config.d_width, mapping_layers=args["mapping_layers"],
                                mbstd_group=args["mbstd_group"], num_classes=num_classes,
                                architecture=args["d_architecture"], dtype=dtype)
  return generator, discriminator
