"""StyleGAN2-lite for CIFAR-10 (gan_jax/models/stylegan2.py) trained as StyleGAN2-ADA's CIFAR config:
non-saturating loss with lazy R1 (gamma 0.01 every 16 steps), Adam(0.0025, b1=0, b2=0.99), batch 64,
EMA of G, and adaptive augmentation: DiffAugment's color/translation/cutout with ADA's probability
(target E[sign D(x)] = 0.6). Half the reference width (256 channels) for speed.

Run:  python -m gan_jax.main --config=experiments/stylegan2_cifar10.py --dataset=cifar10 --train_minutes=10
      (class-conditional: add --conditional)
Result: not yet measured on a GPU (see README.md for the results table). StyleGAN2-ADA reports FID 2.92
(unconditional) after ~100M images.
"""
import ml_collections

from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = config_lib.defaults()
  config.model = "stylegan2"
  config.latent_dim = 256
  config.g_width = 256
  config.d_width = 256
  config.mapping_layers = 2
  config.mbstd_group = 4
  config.loss = "nonsaturating"
  config.r1_gamma = 0.01
  config.reg_every = 16
  config.augment = "color,translation,cutout"
  config.augment_p = 0.0
  config.ada_target = 0.6
  config.ada_interval = 4
  config.ada_kimg = 100.0
  config.batch_size = 64
  config.g_lr = config.d_lr = 0.0025
  config.g_b1 = config.d_b1 = 0.0
  config.g_b2 = config.d_b2 = 0.99
  config.ema_decay = 0.999
  return config_lib.train_for_steps(config, 200_000)
