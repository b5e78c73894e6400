"""StyleGAN2-lite at 64x64 with StyleGAN2-ADA's 'auto' configuration for that resolution at gan_jax's
batch of 64 (NVlabs/stylegan2-ada-pytorch, train.py: gamma = 0.0002 * res**2 / batch = 0.0128,
EMA half-life batch * 10 / 32 = 20k images with ramp-up 0.05, minibatch-stddev groups of 4, lr 0.0025),
the residual D of that configuration, otherwise the stylegan2_cifar10 recipe (non-saturating loss, lazy R1,
ADA, noise inputs) (README, "Recipes", lists
each value with its source and every deviation with its reason).

Run:  python -m gan_jax.import_images --src=faces/ --name=faces64 --image_size=64
      python -m gan_jax.main --config=experiments/stylegan2_64.py --dataset=faces64
Result: not yet measured (no 64x64 dataset is prepared on this project's machines).
"""
import ml_collections

from experiments import stylegan2_cifar10


def get_config() -> ml_collections.ConfigDict:
  config = stylegan2_cifar10.get_config()
  config.image_size = 64
  config.r1_gamma = 0.0002 * 64**2 / config.batch_size
  config.model_args.mbstd_group = 4
  config.ema_kimg = config.batch_size * 10 / 32
  config.model_args.d_architecture = "resnet"  # 'orig' is the cifar configuration's; 'auto' keeps the default
  return config
