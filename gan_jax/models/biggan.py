"""BigGAN (Brock et al. 2019) in its CIFAR form, for any power-of-two image size >= 8, built from
resnet.py's blocks.

Spectral norm on every layer of G and D and orthogonal initialisation throughout. G has 4 * g_width
channels in every block and a hierarchical latent: z is split into one chunk for the input layer and one
per block, and each block's BatchNorms take gain and bias from linear maps of (its chunk, a shared class
embedding) (the chunk alone when unconditional). D is SNGAN's ResNet D with 4 * d_width channels and a
spectrally normalised projection. Self-attention follows resnet.py's placement rule.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import layers
from gan_jax.models import resnet

ORTHOGONAL = nn.initializers.orthogonal()


def num_latent_chunks(image_size: int) -> int:
  """z is split into this many equal chunks: one for the input layer, one per block."""
  return resnet.num_blocks(image_size) + 1


def check_latent_dim(latent_dim: int, image_size: int) -> None:
  chunks = num_latent_chunks(image_size)
  if latent_dim % chunks:
    raise ValueError(f"BigGAN splits latent_dim={latent_dim} into {chunks} equal chunks for "
                     f"{image_size}x{image_size} images (one for the input layer, one per block); use a "
                     f"multiple of {chunks}")


class Generator(nn.Module):
  """latent (B, D) [+ labels (B,)] -> images (B, image_size, image_size, channels) in [-1, 1]."""
  image_size: int = 32
  channels: int = 3
  width: int = 256  # channels of every block (BigGAN's 4 * ch)
  embed_dim: int = 128  # shared class embedding
  num_classes: int = 0
  attention_resolution: int = 0
  axis_name: Any = None  # device axes for cross-device BatchNorm statistics
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool):
    layers.require_labels(labels, self.num_classes)
    resnet.check_attention_resolution(self.attention_resolution, self.image_size)
    check_latent_dim(z.shape[-1], self.image_size)
    first, *chunks = jnp.split(z, num_latent_chunks(self.image_size), axis=-1)
    if self.num_classes:
      shared = nn.Embed(self.num_classes, self.embed_dim, embedding_init=ORTHOGONAL, name="shared")(labels)
      chunks = [jnp.concatenate([chunk, shared], axis=-1) for chunk in chunks]
    sn = layers.SpectralNormWrapper(True, train)
    x = sn(nn.Dense(4 * 4 * self.width, kernel_init=ORTHOGONAL, dtype=self.dtype), first)
    # num_classes=0: the blocks' BatchNorms read the conditioning vectors, not labels.
    return resnet.synthesis(x.reshape(z.shape[0], 4, 4, self.width), chunks, image_channels=self.channels,
                            num_classes=0, spectral_norm=True, kernel_init=ORTHOGONAL,
                            attention_resolution=self.attention_resolution, axis_name=self.axis_name,
                            dtype=self.dtype, train=train)


def default_args():
  return {"embed_dim": 128,  # the shared class embedding
          "attention_resolution": 0}  # as resnet.py's (0 = none)


def check(args, config, image_shape, per_device_batch):
  del per_device_batch
  if args["embed_dim"] <= 0:
    raise ValueError(f"--config.model_args.embed_dim={args['embed_dim']} must be a positive integer")
  resnet.check_attention_resolution(args["attention_resolution"], image_shape[0])
  check_latent_dim(config.latent_dim, image_shape[0])


def build(config, args, image_shape, *, num_classes, axis_name, dtype):
  height, _, channels = image_shape
  generator = Generator(image_size=height, channels=channels, width=4 * config.g_width,
                        embed_dim=args["embed_dim"], num_classes=num_classes,
                        attention_resolution=args["attention_resolution"], axis_name=axis_name, dtype=dtype)
  discriminator = resnet.Discriminator(width=4 * config.d_width, num_classes=num_classes, spectral_norm=True,
                                       attention_resolution=args["attention_resolution"],
                                       kernel_init=ORTHOGONAL, embedding_init=ORTHOGONAL, dtype=dtype)
  return generator, discriminator
