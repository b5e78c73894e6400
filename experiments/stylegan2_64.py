"""StyleGAN2-lite at 64x64 (StyleGAN2-ADA's small-dataset setting at a lower resolution): the
stylegan2_cifar10 recipe (non-saturating loss, lazy R1, Adam(0.0025, 0, 0.99), ADA, EMA) with one more
resolution stage and R1 gamma 0.1 (StyleGAN2-ADA scales gamma with resolution^2: 0.01 at 32 -> ~0.05 at
64; 0.1 is its conservative choice for small datasets at 64-128).

Run:  python -m gan_jax.import_images --src=faces/ --name=faces64 --image_size=64
      python -m gan_jax.main --config=experiments/stylegan2_64.py --dataset=faces64
Result: not yet measured (no 64x64 dataset is prepared on this project's machines).
"""
import ml_collections

from experiments import stylegan2_cifar10


def get_config() -> ml_collections.ConfigDict:
  config = stylegan2_cifar10.get_config()
  config.image_size = 64
  config.r1_gamma = 0.1
  return config
