"""SNGAN sized for a 2-core CPU: the sngan preset's ResNets at a quarter of G's and half of D's width, and
2 D updates per G update instead of 5, so that a short run makes enough G updates; otherwise sngan's
recipe (hinge loss, spectral norm in D, Adam(2e-4, b1=0, b2=0.9) decaying linearly over num_steps, batch
64 for D and 128 for G, EMA of G; README, "Recipes").

Run:  python benchmarks/cpu_quality.py --preset=sngan_cpu --minutes=30   # train, then FID-5k vs 10k
      python -m gan_jax.main --config=experiments/sngan_cpu.py --dataset=cifar10_jpeg --data_dir=.data/tfds \
          --train_minutes=30
Result (2-core CPU, 30 minutes, quiet machine, 2026-11-25, before sngan's G batch of 128, lr decay and
the EMA statistics): 802 steps (102,656 images), FID 92.5 of 5,000
EMA samples against the fixed 10,000-image training subset, KID 0.0719 +- 0.0017 (README, "Quality on a
CPU"; docs/sngan_cpu_30min.png). Before and after those fixes on a slower CPU of the same kind, one after
the other (2026-12-02): 567 steps, FID 137.8, KID 0.1397 +- 0.0029 (commit cba2d36); 389 steps, FID 141.7,
KID 0.1303 +- 0.0026 (this preset): G's batch of 128 makes a step 1.5x slower, and per CPU-minute the two
are level.
"""
import ml_collections

from experiments import sngan


def get_config() -> ml_collections.ConfigDict:
  config = sngan.get_config()
  config.g_width = 64
  config.d_width = 64
  config.d_steps = 2
  config.num_steps = 200_000  # the stopping rule is --train_minutes; the step count only bounds it
  config.steps_per_call = 10  # a few seconds per compiled call on 2 cores
  config.log_every = 100
  config.sample_every = config.checkpoint_every = 1000
  return config
