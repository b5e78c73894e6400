"""DCGAN as in the Keras notebooks: non-saturating BCE, Adam(2e-4, b1=0.5), batch 128, no EMA or
augmentation. The baseline row of the results table.

Run:  python -m gan_jax.main --config=experiments/dcgan.py --dataset=cifar10
      (any field can be overridden: --batch_size=256, --config.g_width=128, ...)
Result: not yet measured on a GPU (see README.md for the results table).
"""
import ml_collections

import experiments
from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  # The defaults are this model's settings.
  return experiments.with_model(config_lib.defaults(), "dcgan")
