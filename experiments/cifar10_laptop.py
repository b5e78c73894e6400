"""The best CIFAR-10 GAN found so far for a laptop's CPU budget: `dcgan_cpu` at batch 32, learning rates
5e-4, and DiffAugment's translation of every image D sees.

Run:  python benchmarks/cpu_quality.py --preset=cifar10_laptop --minutes=30   # train, then FID-5k vs 10k
      python -m gan_jax.main --config=experiments/cifar10_laptop.py --dataset=cifar10_jpeg \
          --data_dir=.data/tfds --train_minutes=30

How it was chosen (README, "A CPU recipe search"): 8-minute proxy runs of `dcgan_cpu` with one change
each, scored by FID of 1,000 EMA samples against the fixed 1,000-image training subset. Of the changes
tried, three helped by far more than the others: batch 32 (twice the G updates per minute), Adam's
learning rates at 5e-4 for G and D (2.5x dcgan's 2e-4; Adam's betas stay 0.5, 0.999), and DiffAugment
translation (Zhao et al. 2020: the same random shift of up to 1/8 of the size, zero-filled, for real
and generated images in every D pass and in G's loss; 2,002 steps in 8 minutes against 2,034 without
it). Measured together (2026-12-01, 2-core Xeon with AVX-512, 8 minutes, 4,294 steps): FID-1k 144.6
against 333.7 for `dcgan_cpu`; batch 32 and translation without the higher learning rates: 179.3.
Result (30 minutes, 2026-12-01, the same machine, quiet, ~292 images/s): 16,421 steps (525,472 images),
FID 54.6 of 5,000 EMA samples against the fixed 10,000-image training subset, KID 0.0373 +- 0.0013
(README, "Quality on a CPU"; docs/cifar10_laptop_30min.png): CIFAR-like objects; the goal of FID <= 40 is
not reached in 30 minutes on this CPU. On a faster CPU of the kind (2026-12-04, 2-core AMD EPYC with
AVX-512, ~680 images/s): 38,166 steps (1,221,312 images), FID 49.4, KID 0.0336 +- 0.0013 by the same
protocol (docs/cifar10_laptop_30min_epyc.png), still improving slowly at 30 minutes.
"""
import ml_collections

from experiments import dcgan_cpu


def get_config() -> ml_collections.ConfigDict:
  config = dcgan_cpu.get_config()
  config.batch_size = 32
  config.g_lr = config.d_lr = 5e-4
  config.augment = "translation"
  return config
