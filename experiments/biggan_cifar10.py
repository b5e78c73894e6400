"""Class-conditional BigGAN (Brock et al. 2019) for CIFAR-10 with DiffAugment (Zhao et al. 2020):
conditional BatchNorm from a shared class embedding and hierarchical z, spectral norm in G and D,
a projection discriminator, hinge loss, Adam(2e-4, b1=0, b2=0.999), 4 D updates per G update,
batch 64, EMA of G, translation + cutout applied to everything D sees.

Run:  python -m gan_jax.main --config=experiments/biggan_cifar10.py --dataset=cifar10 --train_minutes=10
      (25 minutes in 10-minute pieces: run the same command again with the same --workdir; it resumes)
Result: not yet measured on a GPU (see README.md for the results table). DiffAugment reports FID 4.61
for this recipe after its full schedule; StudioGAN reports 4.16 for BigGAN.
"""
import ml_collections

from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = config_lib.defaults()
  config.model = "biggan"
  config.conditional = True
  config.latent_dim = 128
  config.embed_dim = 128
  config.g_width = 64  # 4 * 64 = 256 channels in every block, as BigGAN's CIFAR model
  config.d_width = 64
  config.attention_resolution = 0
  config.loss = "hinge"
  config.augment = "translation,cutout"
  config.batch_size = 64
  config.d_steps = 4
  config.g_lr = config.d_lr = 2e-4
  config.g_b1 = config.d_b1 = 0.0
  config.g_b2 = config.d_b2 = 0.999
  config.ema_decay = 0.999
  config.num_samples = 100  # 10 per class, one row per class
  return config_lib.train_for_steps(config, 100_000)
