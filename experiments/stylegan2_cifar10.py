"""StyleGAN2-lite for CIFAR-10 (gan_jax/models/stylegan2.py) trained as StyleGAN2-ADA's cifar
configuration (NVlabs/stylegan2-ada-pytorch, train.py cfg_specs['cifar'] and training/training_loop.py):
non-saturating loss with lazy R1 (gamma 0.01 every 16 steps), Adam with b1=0 at G's rate 0.002 and beta2
0.99 ** 0.8 (the reference's G_reg_interval=4 rescaling), batch 64, minibatch-stddev groups of 32, an
EMA of G with a half-life of 500k images ramped up over the first 5% of the images seen, per-pixel noise
inputs in G, a D without skip connections ('orig'), and adaptive
augmentation (target E[sign D(x)] = 0.6, adjusted every 4 steps, 500k images to move the probability by
1) with DiffAugment's color/translation/cutout in place of ADA's pipeline. Half the reference width
(README, "Recipes", lists each value with its source and every deviation with its reason).

Run:  python -m gan_jax.main --config=experiments/stylegan2_cifar10.py --dataset=cifar10 --train_minutes=10
      (class-conditional: add --conditional)
Result: not yet measured on a GPU (see README.md for the results table). Karras et al. 2020 (Training
Generative Adversarial Networks with Limited Data) report FID 2.92 +- 0.05 for unconditional CIFAR-10 with
this configuration at full width: 50,000 generated images against the 50,000 training images.
"""
import ml_collections

import experiments
from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = experiments.with_model(config_lib.defaults(), "stylegan2")
  config.latent_dim = 256
  config.g_width = 256
  config.d_width = 256
  config.model_args.mapping_layers = 2
  config.model_args.mbstd_group = 32
  config.model_args.noise_inputs = True
  config.model_args.d_architecture = "orig"  # the cifar configuration's D_kwargs.architecture
  config.loss = "nonsaturating"
  config.r1_gamma = 0.01
  config.reg_every = 16
  config.augment = "color,translation,cutout"
  config.augment_p = 0.0
  config.ada_target = 0.6
  config.ada_interval = 4
  config.ada_kimg = 500.0
  config.batch_size = 64
  config.g_lr = 0.0025 * 4 / 5  # lr * G_reg_interval / (G_reg_interval + 1)
  config.d_lr = 0.0025
  config.g_b1 = config.d_b1 = 0.0
  config.g_b2 = 0.99 ** (4 / 5)
  config.d_b2 = 0.99
  config.ema_kimg = 500.0
  config.ema_rampup = 0.05
  return config_lib.train_for_steps(config, 200_000)
