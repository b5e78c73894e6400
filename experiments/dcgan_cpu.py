"""DCGAN sized for a 2-core CPU: the dcgan preset at half its widths, batch 64, with an EMA of G (the
samples and FIDs of a short run come from the averaged weights, which are smoother).

Run:  python benchmarks/cpu_quality.py --preset=dcgan_cpu --minutes=30   # train, then FID-5k vs 10k
      python -m gan_jax.main --config=experiments/dcgan_cpu.py --dataset=cifar10_jpeg --data_dir=.data/tfds \
          --train_minutes=30
Result (2-core CPU, 30 minutes, quiet machine, 2026-11-25, EMA weights with the raw G's BatchNorm
statistics, before the EMA had statistics of its own): 11,761 steps (752,704 images), FID 71.5 of
5,000 EMA samples against the fixed 10,000-image training subset, KID 0.0545 +- 0.0013 (README, "Quality
on a CPU"); CIFAR-like objects (docs/dcgan_cpu_30min.png). On a slower CPU of the same kind
(2026-12-01, ~345 images/s, both runs alone on the machine): 8,989 steps, FID 87.7 with the EMA's own
statistics, against 91.7 (9,067 steps) for the code before them. `cifar10_laptop` reached 54.6 there.
With --conditional (2026-12-02, a faster CPU of the kind, ~450 images/s): 12,157 steps, FID-5k 63.8,
KID 0.0477 +- 0.0013, Inception linear-probe accuracy 28.6% (real test images 76.5%, chance 10%),
intra-FID 126.6 (500 samples per class); docs/dcgan_cpu_conditional_30min.png.
"""
import ml_collections

import experiments
from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = experiments.with_model(config_lib.defaults(), "dcgan")
  config.g_width = config.d_width = 32
  config.batch_size = 64
  config.ema_decay = 0.999
  # The stopping rule is --train_minutes; the step count only bounds it.
  config = config_lib.train_for_steps(config, 200_000)
  config.steps_per_call = 20  # a few seconds per compiled call on 2 cores
  config.log_every = 200
  config.sample_every = config.checkpoint_every = 2000
  return config
