"""Generator and discriminator architectures, chosen by `config.model`."""
from gan_jax.models import dcgan

_MODELS = {"dcgan": (dcgan.Generator, dcgan.Discriminator)}
MODEL_NAMES = tuple(_MODELS)


def build(config, image_shape, axis_name=None):
  """Returns (generator, discriminator) modules for images of `image_shape` (H, W, C).

  `axis_name` names the device axes that BatchNorm statistics are averaged over during training.
  """
  generator_cls, discriminator_cls = _MODELS[config.model]
  height, _, channels = image_shape
  generator = generator_cls(image_size=height, channels=channels, width=config.g_width,
                            activation=config.g_activation, axis_name=axis_name)
  discriminator = discriminator_cls(width=config.d_width, dropout_rate=config.d_dropout)
  return generator, discriminator
