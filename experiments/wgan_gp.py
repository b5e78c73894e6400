"""WGAN-GP (Gulrajani et al. 2017), the Keras notebooks' "future work", as its CIFAR-10 DCGAN script trains
it (igul222/improved_wgan_training, gan_cifar.py, MODE='wgan-gp'): the DCGAN models (ReLU in G, a critic
without BatchNorm or dropout), Wasserstein loss with gradient penalty 10, Adam(1e-4, b1=0.5, b2=0.9),
5 critic updates per generator update, batch 64, latent 128, 200,000 generator updates (README,
"Recipes", lists each value with its source and every deviation with its reason).

Run:  python -m gan_jax.main --config=experiments/wgan_gp.py --dataset=cifar10
Result: not yet measured on a GPU (see README.md for the results table).
"""
import ml_collections

import experiments
from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = experiments.with_model(config_lib.defaults(), "dcgan")
  config.loss = "wgan"
  config.gp_weight = 10.0
  config.model_args.g_activation = "relu"
  config.model_args.d_dropout = 0.0
  config.latent_dim = 128
  config.d_steps = 5
  config.batch_size = 64
  config.g_lr = config.d_lr = 1e-4
  config.g_b1 = config.d_b1 = 0.5
  config.g_b2 = config.d_b2 = 0.9
  return config_lib.train_for_steps(config, 200_000)
