"""Which generator of a run to show and score: the raw G, or the EMA weights with which BatchNorm statistics.

    python benchmarks/cpu_quality.py --preset=dcgan_cpu --minutes=10 --workdir=/tmp/ema_run \
        --num_samples=2000 --reference_size=2000
    python benchmarks/ema_statistics.py --workdir=/tmp/ema_run --num_samples=2000 --reference_size=2000

Scores the newest checkpoint of a run (or those of --steps) three ways, with the same latents and the same reference subset
(FID and KID against a seeded subset of the training split, as cpu_quality.py):
- raw: the trained weights with their running statistics;
- ema, raw statistics: the EMA weights with the raw G's running statistics (gan_jax before issue 18);
- ema, ema statistics: the EMA weights with the EMA of the statistics (GANState.generate's default).
Prints one markdown row per rule.

Measured 2026-12-01 (2-core Xeon with AVX-512, another job on the cores): dcgan_cpu trained 8 minutes
(`python -m gan_jax.main --config=experiments/dcgan_cpu.py --dataset=cifar10_jpeg --train_minutes=8`,
940 steps, samples still blobs), 1,000 samples against 1,000 training images: raw G 369.9 (KID x 100
40.3), EMA weights with the raw statistics 354.1 (38.7), EMA weights with the EMA statistics 347.7 (37.5).
One short run at FID-1k: the order, not the size of the gaps, is the result. A 30-minute run on the same
machine, quiet (8,989 steps; `--steps=4000,8989 --num_samples=1000 --reference_size=1000`): at step 4,000
raw 198.5, EMA with raw statistics 200.7, EMA with EMA statistics 197.9; at 30 minutes 128.3, 120.4 and
116.4 (KID x 100: 8.7, 7.9, 7.3).
sngan_cpu, 30 minutes (389 steps), `--steps=100,200,389 --num_samples=1000 --reference_size=1000`: at
step 389 raw 175.3, EMA with raw statistics 173.7, EMA with EMA statistics 167.1 (README, "Generator
EMA", has steps 100 and 200).
"""
import os
import sys

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from gan_jax import generation  # pylint: disable=g-import-not-at-top
from gan_jax import metrics  # pylint: disable=g-import-not-at-top
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's directory.", required=True)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 2000, "Generated images per rule.")
_REFERENCE_SIZE = flags.DEFINE_integer("reference_size", 2000, "Training images (a fixed, seeded subset).")
_STEPS = flags.DEFINE_list("steps", [], "Checkpoints (steps) to score, e.g. 2000,6000; default: the newest.")


def rules(state):
  """(name, state whose EMA generator is that rule's generator)."""
  return [("raw G, its running statistics", state.replace(g_ema_params=state.g_params,
                                                          g_ema_batch_stats=state.g_batch_stats)),
          ("EMA weights, raw G's statistics", state.replace(g_ema_batch_stats=state.g_batch_stats)),
          ("EMA weights, EMA statistics (default)", state)]


def main(argv):
  del argv
  try:
    runs = [generation.load_run(_WORKDIR.value, int(step) if step else None)
            for step in (_STEPS.value or [None])]
  except (UserError, ValueError) as e:
    sys.exit(f"error: {e}")
  config = runs[0][0]
  inception = metrics.load_inception()
  batch_size = min(metrics.inception.DEFAULT_BATCH_SIZE, _NUM_SAMPLES.value)
  reference = metrics.reference_statistics(config.dataset, config.split, config.data_dir or None,
                                           reference_size=_REFERENCE_SIZE.value,
                                           image_size=config.image_size, inception=inception,
                                           batch_size=batch_size)
  print(f"| step | generator | FID-{_NUM_SAMPLES.value} vs {_REFERENCE_SIZE.value} | KID x 100 |\n"
        "| --- | --- | --- | --- |")
  for _, state, _ in runs:
    for name, rule_state in rules(state):
      scores = metrics.evaluate_images(generation.generated_images(rule_state, _NUM_SAMPLES.value),
                                       reference, inception, metrics=("fid", "kid"), batch_size=batch_size)
      print(f"| {int(state.step)} | {name} | {scores['fid']:.1f} | {100 * scores['kid']:.2f} +- "
            f"{100 * scores['kid_std']:.2f} |", flush=True)


if __name__ == "__main__":
  app.run(main)
