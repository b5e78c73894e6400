"""Class-conditional BigGAN (Brock et al. 2019) for CIFAR-10 with DiffAugment (Zhao et al. 2020), as
mit-han-lab/data-efficient-gans trains it (DiffAugment-biggan-cifar/scripts/DiffAugment-biggan-cifar10.sh
on BigGAN-PyTorch's defaults): spectral norm in G and D, a projection discriminator, hinge loss,
Adam(2e-4, b1=0, b2=0.999), 4 D updates per G update, translation + cutout applied to everything D sees,
random left-right flips, and an EMA of G with decay 0.9999 from step 1,000 (README, "Recipes", lists each
value with its source and every deviation with its reason).

Run:  python -m gan_jax.main --config=experiments/biggan_cifar10.py --dataset=cifar10 --train_minutes=10
      (25 minutes in 10-minute pieces: run the same command again with the same --workdir; it resumes)
Result: not yet measured on a GPU (see README.md for the results table). DiffAugment-biggan-cifar/README.md
gives fid10k 8.70 and is10k 9.16 for this recipe: 10,000 generated images against the CIFAR-10 test split
(its inception_tf.py computes the reference moments from the loader with train=False); this does not
compare with gan_jax's default protocol of 50,000 samples against the training split.
"""
import ml_collections

import experiments
from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = experiments.with_model(config_lib.defaults(), "biggan")
  config.conditional = True
  config.mirror = True
  config.latent_dim = 128
  config.model_args.embed_dim = 128
  config.g_width = 64  # 4 * 64 = 256 channels in every block, as BigGAN's CIFAR model
  config.d_width = 64
  config.model_args.attention_resolution = 0
  config.loss = "hinge"
  config.augment = "translation,cutout"
  config.batch_size = 64
  config.d_steps = 4
  config.g_lr = config.d_lr = 2e-4
  config.g_b1 = config.d_b1 = 0.0
  config.g_b2 = config.d_b2 = 0.999
  config.ema_decay = 0.9999
  config.ema_warmup = False
  config.ema_start = 1000
  config.num_samples = 100  # 10 per class, one row per class
  return config_lib.train_for_steps(config, 100_000)
