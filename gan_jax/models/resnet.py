"""SNGAN's ResNet generator and discriminator (Miyato et al. 2018, the CIFAR-10 model), for any power-of-two
image size >= 8. BigGAN (biggan.py) is built from the same blocks.

G: Dense(z) -> 4x4 -> one up-sampling residual block per doubling -> BN-ReLU-conv3x3-tanh; conditional
  G uses class-conditional BatchNorm in the blocks. D: SNGAN's optimised block on the image, down-sampling
  blocks to 8x8, two blocks at 8x8, ReLU, global sum pooling, Dense(1) (+ projection when conditional).

Self-attention (`attention_resolution` > 0) runs on feature maps of that resolution: in G after the block
that outputs it, in D after the first block that outputs it (so before the first block that reads it);
`attention_resolutions` lists the resolutions where both G and D have such maps.
"""
import math
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import layers

GLOROT = nn.initializers.xavier_uniform()  # SNGAN's initialiser


def num_blocks(image_size: int) -> int:
  """G's up-sampling blocks: one per doubling from 4x4 to `image_size` (a power of two >= 8)."""
  steps = int(round(math.log2(max(image_size, 1) / 4)))
  if image_size < 8 or 4 * 2**steps != image_size:
    raise ValueError(f"ResNet models need a power-of-two image size >= 8, got {image_size}")
  return steps


def discriminator_downsampling(image_size: int) -> list:
  """Whether each of D's blocks halves the resolution: down to 8x8 (4x4 for 8x8 images), then two more
  blocks at that resolution; 32x32: 32 -> 16 -> 8, 8, 8 as in SNGAN."""
  return [True] * max(num_blocks(image_size) - 1, 1) + [False, False]


def attention_resolutions(image_size: int) -> tuple:
  """The resolutions that can hold self-attention: those of feature maps that both G and D compute."""
  g_resolutions = {8 * 2**i for i in range(num_blocks(image_size))}
  d_resolutions = {image_size // 2**i for i in range(1, sum(discriminator_downsampling(image_size)) + 1)}
  return tuple(sorted(g_resolutions & d_resolutions))


def check_attention_resolution(resolution: int, image_size: int) -> None:
  if resolution and resolution not in attention_resolutions(image_size):
    raise ValueError(f"--config.model_args.attention_resolution={resolution} does not occur in the ResNet models for "
                     f"{image_size}x{image_size} images; choose one of {attention_resolutions(image_size)} "
                     "or 0 for none")


def _upsample(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _avg_pool(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class GBlock(nn.Module):
  """Up-sampling residual block: BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, shortcut upsample-conv1x1.

  Both BatchNorms get `condition` (see layers.ConditionalBatchNorm): labels when `num_classes` > 0,
  a conditioning vector, or None for plain BatchNorm.
  """
  channels: int
  num_classes: int = 0
  spectral_norm: bool = False
  kernel_init: Callable = GLOROT
  axis_name: Any = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, condition=None, *, train: bool):
    sn = layers.SpectralNormWrapper(self.spectral_norm, train)
    conv = lambda size, name: nn.Conv(self.channels, (size, size), kernel_init=self.kernel_init,
                                      dtype=self.dtype, name=name)
    norm = lambda name: layers.ConditionalBatchNorm(
        num_classes=self.num_classes, spectral_norm=self.spectral_norm, kernel_init=self.kernel_init,
        axis_name=self.axis_name, dtype=self.dtype, name=name)
    h = nn.relu(norm("bn1")(x, condition, train=train))
    h = sn(conv(3, "conv1"), _upsample(h))
    h = nn.relu(norm("bn2")(h, condition, train=train))
    h = sn(conv(3, "conv2"), h)
    return h + sn(conv(1, "shortcut"), _upsample(x))


def synthesis(x, conditions: Sequence, *, image_channels: int, num_classes: int, spectral_norm: bool,
              kernel_init: Callable, attention_resolution: int, axis_name, dtype, train: bool):
  """G after its input layer, (B, 4, 4, C) -> float32 images in [-1, 1]: one GBlock per entry of
  `conditions` (its BatchNorms' condition), self-attention after the block that outputs
  `attention_resolution`, then BN-ReLU-conv3x3-tanh. Call it inside a module's compact method."""
  for condition in conditions:
    x = GBlock(x.shape[-1], num_classes=num_classes, spectral_norm=spectral_norm, kernel_init=kernel_init,
               axis_name=axis_name, dtype=dtype)(x, condition, train=train)
    if x.shape[1] == attention_resolution:
      x = layers.SelfAttention(spectral_norm=spectral_norm, kernel_init=kernel_init, dtype=dtype)(
          x, train=train)
  x = nn.relu(layers.ConditionalBatchNorm(axis_name=axis_name, dtype=dtype)(x, train=train))
  x = layers.SpectralNormWrapper(spectral_norm, train)(
      nn.Conv(image_channels, (3, 3), kernel_init=kernel_init, dtype=dtype), x)
  return jnp.tanh(x.astype(jnp.float32))


class Generator(nn.Module):
  """latent (B, D) [+ labels (B,)] -> images (B, image_size, image_size, channels) in [-1, 1]."""
  image_size: int = 32
  channels: int = 3
  width: int = 256  # channels of every block
  num_classes: int = 0
  spectral_norm: bool = False
  attention_resolution: int = 0
  axis_name: Any = None  # device axes for cross-device BatchNorm statistics
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    blocks = num_blocks(self.image_size)
    check_attention_resolution(self.attention_resolution, self.image_size)
    sn = layers.SpectralNormWrapper(self.spectral_norm, train)
    x = sn(nn.Dense(4 * 4 * self.width, kernel_init=GLOROT, dtype=self.dtype), z)
    condition = labels if self.num_classes else None
    return synthesis(x.reshape(z.shape[0], 4, 4, self.width), [condition] * blocks,
                     image_channels=self.channels, num_classes=self.num_classes,
                     spectral_norm=self.spectral_norm, kernel_init=GLOROT,
                     attention_resolution=self.attention_resolution, axis_name=self.axis_name,
                     dtype=self.dtype, train=train)


class DBlock(nn.Module):
  """Residual block of D: ReLU-conv3x3-ReLU-conv3x3[-avgpool], shortcut conv1x1[-avgpool] (identity
  when it neither pools nor changes the channels).

  `first` makes it SNGAN's optimised block for the image: no leading ReLU, and the shortcut pools before
  its conv1x1.
  """
  channels: int
  downsample: bool = True
  first: bool = False
  spectral_norm: bool = False
  kernel_init: Callable = GLOROT
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    sn = layers.SpectralNormWrapper(self.spectral_norm, train)
    conv = lambda size, name: nn.Conv(self.channels, (size, size), kernel_init=self.kernel_init,
                                      dtype=self.dtype, name=name)
    pool = _avg_pool if self.downsample else lambda t: t
    h = sn(conv(3, "conv1"), x if self.first else nn.relu(x))
    h = pool(sn(conv(3, "conv2"), nn.relu(h)))
    if self.first:
      shortcut = sn(conv(1, "shortcut"), pool(x))
    elif self.downsample or x.shape[-1] != self.channels:
      shortcut = pool(sn(conv(1, "shortcut"), x))
    else:
      shortcut = x
    return h + shortcut


class Discriminator(nn.Module):
  """images (B, H, W, C) [+ labels (B,)] -> (logits (B,), features (B, width)), both float32."""
  width: int = 128  # channels of every block
  num_classes: int = 0
  spectral_norm: bool = False
  attention_resolution: int = 0
  kernel_init: Callable = GLOROT  # of every conv and dense layer
  embedding_init: Callable = nn.linear.default_embed_init  # of the projection
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool, example_keys: Optional[jax.Array] = None):
    """`example_keys` is accepted for the common interface and unused: this D has no dropout."""
    del example_keys
    layers.require_labels(labels, self.num_classes)
    image_size = x.shape[1]
    check_attention_resolution(self.attention_resolution, image_size)
    sn = layers.SpectralNormWrapper(self.spectral_norm, train)
    x = x.astype(self.dtype)
    attended = False
    for i, downsample in enumerate(discriminator_downsampling(image_size)):
      x = DBlock(self.width, downsample=downsample, first=i == 0, spectral_norm=self.spectral_norm,
                 kernel_init=self.kernel_init, dtype=self.dtype)(x, train=train)
      if x.shape[1] == self.attention_resolution and not attended:
        x = layers.SelfAttention(spectral_norm=self.spectral_norm, kernel_init=self.kernel_init,
                                 dtype=self.dtype)(x, train=train)
        attended = True
    features = jnp.sum(nn.relu(x).astype(jnp.float32), axis=(1, 2))
    logits = sn(nn.Dense(1, kernel_init=self.kernel_init), features)[:, 0]
    if self.num_classes:
      logits += layers.projection(features, labels, self.num_classes, sn, self.embedding_init)
    return logits, features


def default_args():
  return {"g_spectral_norm": False,
          "d_spectral_norm": False,
          "attention_resolution": 0}  # a self-attention block at this resolution (0 = none)


def check(args, config, image_shape, per_device_batch):
  del config, per_device_batch
  check_attention_resolution(args["attention_resolution"], image_shape[0])


def build(config, args, image_shape, *, num_classes, axis_name, dtype):
  height, _, channels = image_shape
  generator = Generator(image_size=height, channels=channels, width=config.g_width, num_classes=num_classes,
                        spectral_norm=args["g_spectral_norm"],
                        attention_resolution=args["attention_resolution"], axis_name=axis_name, dtype=dtype)
  discriminator = Discriminator(width=config.d_width, num_classes=num_classes,
                                spectral_norm=args["d_spectral_norm"],
                                attention_resolution=args["attention_resolution"], dtype=dtype)
  return generator, discriminator
