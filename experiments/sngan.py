"""SNGAN (Miyato et al. 2018) for CIFAR-10 as pfnet-research/sngan_projection trains it
(configs/sn_cifar10_unconditional.yml, updater.py): the ResNets (G 256, D 128 channels) with spectral norm
in D, hinge loss, Adam(2e-4, b1=0, b2=0.9) with both learning rates decaying linearly to 0 over 50,000
iterations, 5 D updates of 64 real and 64 generated images per G update of 128 generated images; plus an
EMA of G (README, "Recipes", lists each value with its source and every deviation with its reason).

Run:  python -m gan_jax.main --config=experiments/sngan.py --dataset=cifar10
      (class-conditional, with conditional BatchNorm in G and a projection D: add --conditional)
Result: not yet measured on a GPU (see README.md for the results table).
"""
import ml_collections

import experiments
from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = experiments.with_model(config_lib.defaults(), "resnet")
  config.latent_dim = 128
  config.g_width = 256
  config.d_width = 128
  config.model_args.d_spectral_norm = True
  config.loss = "hinge"
  config.batch_size = 64
  config.g_batch_size = 128
  config.d_steps = 5
  config.g_lr = config.d_lr = 2e-4
  config.g_b1 = config.d_b1 = 0.0
  config.g_b2 = config.d_b2 = 0.9
  config.lr_decay = "linear"
  config.ema_decay = 0.999
  return config_lib.train_for_steps(config, 50_000)
