"""DCGAN (Radford et al. 2016) as in the Keras notebooks: a transposed-conv generator and a strided-conv
discriminator with LeakyReLU and Dropout and no normalisation. G's 5x5 stride-2 transposed convs are
computed as sub-pixel convs and D's stride-2 convs have a sub-pixel input gradient
(layers.SubpixelConvTranspose, layers.StridedConv: the same functions as flax's layers, fast on CPU too).

Conditional variant: G concatenates a learned class embedding to z; D adds a projection term
(Miyato & Koyama 2018) to its logit. `d_spectral_norm` puts spectral norm on every layer of D.
"""
import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import layers

_ACTIVATIONS = {"relu": nn.relu, "leaky_relu": lambda x: nn.leaky_relu(x, 0.2)}
ACTIVATION_NAMES = tuple(_ACTIVATIONS)
_KERNEL = (5, 5)


def num_resolution_steps(image_size: int) -> int:
  """Number of 2x up/down-sampling stages between 4x4 and `image_size` (8, 16, 32, 64, ...)."""
  steps = int(round(math.log2(image_size / 4)))
  if image_size < 8 or 4 * 2**steps != image_size:
    raise ValueError(f"DCGAN needs a power-of-two image size >= 8, got {image_size}")
  return steps


class Generator(nn.Module):
  """latent (B, D) [+ labels (B,)] -> images (B, image_size, image_size, channels) in [-1, 1]."""
  image_size: int = 32
  channels: int = 3
  width: int = 64  # channels of the last hidden layer; doubled at each lower resolution
  activation: str = "leaky_relu"
  num_classes: int = 0
  axis_name: Any = None  # device axes for cross-device BatchNorm statistics
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    act = _ACTIVATIONS[self.activation]
    norm = lambda: nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name, dtype=self.dtype)
    steps = num_resolution_steps(self.image_size)
    if self.num_classes:
      z = jnp.concatenate([z, nn.Embed(self.num_classes, z.shape[-1])(labels)], axis=-1)
    x = nn.Dense(4 * 4 * self.width * 2**(steps - 1), use_bias=False, dtype=self.dtype)(z)
    x = act(norm()(x)).reshape(z.shape[0], 4, 4, -1)
    for i in reversed(range(1, steps)):
      x = layers.SubpixelConvTranspose(self.width * 2**(i - 1), _KERNEL, use_bias=False,
                                       dtype=self.dtype)(x)
      x = act(norm()(x))
    x = layers.SubpixelConvTranspose(self.channels, _KERNEL, dtype=self.dtype)(x)
    return jnp.tanh(x.astype(jnp.float32))


def example_dropout(x, rate: float, example_keys):
  """Dropout whose mask for example i depends only on example_keys[i].

  Unlike nn.Dropout (one key for the whole batch), the result does not depend on how a global batch is
  split over devices, which keeps training identical across device counts.
  """
  keep = jax.vmap(lambda key: jax.random.bernoulli(key, 1.0 - rate, x.shape[1:]))(example_keys)
  return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


class Discriminator(nn.Module):
  """images (B, H, W, C) [+ labels (B,)] -> (logits (B,), features (B, F))."""
  width: int = 64  # channels of the first conv; doubled at each stride-2 conv
  dropout_rate: float = 0.3
  num_classes: int = 0
  spectral_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool, example_keys: Optional[jax.Array] = None):
    """`example_keys` (B, 2) gives each example its own dropout randomness; needed when training."""
    use_dropout = train and self.dropout_rate > 0
    if use_dropout and example_keys is None:
      raise ValueError("Discriminator(train=True) needs example_keys for dropout")
    sn = layers.SpectralNormWrapper(enabled=self.spectral_norm, train=train)
    x = x.astype(self.dtype)
    for i in range(num_resolution_steps(x.shape[1])):
      x = nn.leaky_relu(sn(layers.StridedConv(self.width * 2**i, _KERNEL, dtype=self.dtype), x), 0.2)
      if use_dropout:
        layer_keys = jax.vmap(jax.random.fold_in, (0, None))(example_keys, i)
        x = example_dropout(x, self.dropout_rate, layer_keys)
    features = x.reshape(x.shape[0], -1).astype(jnp.float32)
    logits = sn(nn.Dense(1), features)[:, 0]
    if self.num_classes:
      logits += layers.projection(features, labels, self.num_classes, sn)
    return logits, features


def default_args():
  return {"g_activation": "leaky_relu",  # relu | leaky_relu
          "d_dropout": 0.3,
          "d_spectral_norm": False}


def check(args, config, image_shape, per_device_batch):
  del config, image_shape, per_device_batch
  if args["g_activation"] not in ACTIVATION_NAMES:
    raise ValueError(f"--config.model_args.g_activation={args['g_activation']} is unknown; choose one of "
                     f"{', '.join(ACTIVATION_NAMES)}")
  if not 0 <= args["d_dropout"] < 1:
    raise ValueError(f"--config.model_args.d_dropout={args['d_dropout']} must be in [0, 1)")


def build(config, args, image_shape, *, num_classes, axis_name, dtype):
  height, _, channels = image_shape
  generator = Generator(image_size=height, channels=channels, width=config.g_width,
                        activation=args["g_activation"], num_classes=num_classes, axis_name=axis_name,
                        dtype=dtype)
  discriminator = Discriminator(width=config.d_width, dropout_rate=args["d_dropout"],
                                num_classes=num_classes, spectral_norm=args["d_spectral_norm"], dtype=dtype)
  return generator, discriminator
