"""DCGAN sized for a 2-core CPU: the dcgan preset at half its widths, batch 64, with an EMA of G (the
samples and FIDs of a short run come from the averaged weights, which are smoother).

Run:  python benchmarks/cpu_quality.py --preset=dcgan_cpu --minutes=30   # train, then FID-5k vs 10k
      python -m gan_jax.main --config=experiments/dcgan_cpu.py --dataset=cifar10_jpeg --data_dir=.data/tfds \
          --train_minutes=30
Result (2-core CPU, 30 minutes): 5,851 steps, FID 159.1 of 2,000 EMA samples against 2,000 training
images, KID 0.141 (README, "Quality on a CPU"); colours and layouts of CIFAR-10, no objects yet.
"""
import ml_collections

from gan_jax import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  config = config_lib.defaults()
  config.g_width = config.d_width = 32
  config.batch_size = 64
  config.ema_decay = 0.999
  # The stopping rule is --train_minutes; the step count only bounds it.
  config = config_lib.train_for_steps(config, 200_000)
  config.steps_per_call = 20  # a few seconds per compiled call on 2 cores
  config.log_every = 200
  config.sample_every = config.checkpoint_every = 2000
  return config
