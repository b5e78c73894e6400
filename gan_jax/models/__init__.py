"""Generator and discriminator architectures, chosen by `config.model`.

Every architecture follows one contract, which the train step relies on:

  Generator:      G(z, labels=None, *, train) -> images (B, H, W, C), float32, in [-1, 1] (tanh),
                  except StyleGAN2's unsquashed output (saved images are clipped) and the toy
                  MLP's points (B, *shape) (gan_jax.synthetic)
  Discriminator:  D(x, labels=None, *, train, example_keys=None) -> (logits (B,), features (B, F)),
                  both float32; `features` are the activations the logits are read from (used by
                  feature matching and by the projection of conditional models).

- Conditional models (num_classes > 0) need `labels` (B,) int32; unconditional ones ignore them.
- The only mutable collection is "batch_stats": BatchNorm running statistics and spectral norm's
  power-iteration vectors, both updated when `train` is True.
- G is deterministic given (z, labels); D's only randomness is per-example dropout keyed by
  `example_keys` (B, 2), so results do not depend on how a batch is split over devices.
- `dtype` is the compute dtype (bfloat16 for mixed precision); parameters stay float32.
- `axis_name` names the device axes that BatchNorm statistics are averaged over during training.
"""
import jax.numpy as jnp

from gan_jax.models import biggan
from gan_jax.models import dcgan
from gan_jax.models import resnet
from gan_jax.models import stylegan2
from gan_jax.models import toy

_BUILDERS = {"dcgan": dcgan.build, "resnet": resnet.build, "biggan": biggan.build,
             "stylegan2": stylegan2.build, "toy": toy.build}
MODEL_NAMES = tuple(_BUILDERS)
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build(config, image_shape, num_classes: int = 0, axis_name=None):
  """Returns (generator, discriminator) modules for images of `image_shape` (H, W, C).

  `num_classes` > 0 makes both class-conditional.
  """
  return _BUILDERS[config.model](config, tuple(image_shape), num_classes=num_classes,
                                 axis_name=axis_name, dtype=COMPUTE_DTYPES[config.compute_dtype])
