"""WGAN-GP (Gulrajani et al. 2017), the Keras notebooks' "future work": the DCGAN models with a
Wasserstein critic (no dropout), gradient penalty 10, Adam(1e-4, b1=0, b2=0.9), 5 critic updates per
generator update.

Run:  python -m gan_jax.main --config=experiments/wgan_gp.py --dataset=cifar10
Result: not yet measured on a GPU (see README.md for the results table).
"""
import ml_collections

from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = config_lib.defaults()
  config.loss = "wgan"
  config.gp_weight = 10.0
  config.d_dropout = 0.0
  config.d_steps = 5
  config.batch_size = 64
  config.g_lr = config.d_lr = 1e-4
  config.g_b1 = config.d_b1 = 0.0
  config.g_b2 = config.d_b2 = 0.9
  return config_lib.train_for_steps(config, 100_000)
