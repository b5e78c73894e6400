"""SNGAN (Miyato et al. 2018): the ResNet for CIFAR-10 with spectral norm in D and the hinge loss,
Adam(2e-4, b1=0, b2=0.9), 5 D updates per G update, batch 64; plus an EMA of G.

Run:  python -m gan_jax.main --config=experiments/sngan.py --dataset=cifar10 --train_minutes=10
      (class-conditional, with conditional BatchNorm in G and a projection D: add --conditional)
Result: not yet measured on a GPU (see README.md for the results table). The paper reports FID 21.7
(unconditional, CIFAR-10, 50k G updates).
"""
import ml_collections

from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = config_lib.defaults()
  config.model = "resnet"
  config.latent_dim = 128
  config.g_width = 256
  config.d_width = 128
  config.d_spectral_norm = True
  config.loss = "hinge"
  config.batch_size = 64
  config.d_steps = 5
  config.g_lr = config.d_lr = 2e-4
  config.g_b1 = config.d_b1 = 0.0
  config.g_b2 = config.d_b2 = 0.9
  config.ema_decay = 0.999
  return config_lib.train_for_steps(config, 50_000)
