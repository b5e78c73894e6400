"""DCGAN at 64x64 (Radford et al.'s LSUN/CelebA setting): one more 2x stage than the CIFAR model
(4 -> 8 -> 16 -> 32 -> 64, G's last hidden layer 64 channels doubling downwards to 512 at 4x4; D
mirrored), non-saturating BCE, Adam(2e-4, b1=0.5), batch 128, EMA of G.

Run:  python -m gan_jax.import_images --src=faces/ --name=faces64 --image_size=64   # faces/<class>/*.jpg
      python -m gan_jax.main --config=experiments/dcgan64.py --dataset=faces64 --mirror
A split larger than a quarter of the memory (CelebA's 200k faces: 2.3 GiB at 64x64) is streamed from its
files instead of being kept on the devices (gan_jax.data.streaming; --input_pipeline forces either path).
Result: not yet measured (no 64x64 dataset is prepared on this project's machines).
"""
import ml_collections

import experiments
from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = experiments.with_model(config_lib.defaults(), "dcgan")
  config.image_size = 64
  config.ema_decay = 0.999
  return config
