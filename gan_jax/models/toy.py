"""MLP generator and discriminator for low-dimensional data such as 2-D points (gan_jax.synthetic), the
setting of the mode-collapse experiments of Unrolled GAN, VEEGAN and PacGAN: fast enough to train to
convergence in a test, and its samples can be scored exactly (gan_jax.metrics.modes).

G's output is unsquashed (no tanh): the points are not confined to [-1, 1]. Unconditional only.
"""
import math
from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

HIDDEN_LAYERS = 3


class Generator(nn.Module):
  """latent (B, D) -> samples (B, *output_shape), float32: ReLU MLP with a linear output."""
  output_shape: Tuple[int, ...] = (2,)
  width: int = 128
  hidden_layers: int = HIDDEN_LAYERS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    del labels, train  # unconditional; no BatchNorm or dropout
    x = z.astype(self.dtype)
    for _ in range(self.hidden_layers):
      x = nn.relu(nn.Dense(self.width, dtype=self.dtype)(x))
    x = nn.Dense(math.prod(self.output_shape), dtype=self.dtype)(x)
    return x.astype(jnp.float32).reshape((z.shape[0],) + tuple(self.output_shape))


class Discriminator(nn.Module):
  """samples (B, ...) -> (logits (B,), features (B, width)): LeakyReLU MLP, features its last hidden layer."""
  width: int = 128
  hidden_layers: int = HIDDEN_LAYERS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool, example_keys: Optional[jax.Array] = None):
    del labels, train, example_keys  # unconditional; no dropout
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    for _ in range(self.hidden_layers):
      x = nn.leaky_relu(nn.Dense(self.width, dtype=self.dtype)(x), 0.2)
    features = x.astype(jnp.float32)
    logits = nn.Dense(1)(features)[:, 0]
    return logits, features


def build(config, args, image_shape, *, num_classes, axis_name, dtype):
  """`image_shape` is the shape of one example, (2,) for points. `axis_name` is unused: no BatchNorm.
  No settings of its own (`args` is empty)."""
  del args, axis_name
  if num_classes:
    raise ValueError("the toy models are unconditional; train them without --conditional")
  generator = Generator(output_shape=tuple(image_shape), width=config.g_width, dtype=dtype)
  discriminator = Discriminator(width=config.d_width, dtype=dtype)
  return generator, discriminator
