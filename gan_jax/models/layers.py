"""Building blocks shared by the architectures: optional spectral norm and the projection head."""
import dataclasses

import flax.linen as nn
import jax.numpy as jnp


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


def projection(features, labels, num_classes: int, sn: SpectralNormWrapper):
  """The class term of a projection discriminator: <embed(y), features>, (B,) float32."""
  embedding = sn(nn.Embed(num_classes, features.shape[-1]), labels)
  return jnp.sum(embedding.astype(jnp.float32) * features.astype(jnp.float32), axis=-1)
