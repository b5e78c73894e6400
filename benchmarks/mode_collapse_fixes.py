"""Do the Keras notebooks' fixes for mode collapse help? Each fix against the same recipe without it, on
the toy grid25 set (25 Gaussians, gan_jax.synthetic), scored as the learning tests score it.

    taskset -c 1 python benchmarks/mode_collapse_fixes.py --steps=4000 --seeds=0,1,2

The recipe (BASE_RECIPE) is the learning tests' GRID25_RECIPE (tests/test_learning.py: toy MLPs 128 wide,
2-D latent, batch 256, Adam(3e-3, b1=0, b2=0.99), G EMA 0.999) with the nonsaturating loss instead of
hinge, the one loss of the two that one-sided label smoothing applies to. Each --fixes entry (a key of
FIXES) adds one fix to it:

  label_smoothing        one-sided label smoothing 0.1 (D's target for real points 0.9)
  label_smoothing_0.2    the same, 0.2
  instance_noise         Gaussian noise of std 0.1 on D's inputs, annealed linearly to 0 over --steps
  instance_noise_half    the same, annealed to 0 over the first half of --steps
  feature_matching       feature matching of weight 1.0 added to G's loss (D's last hidden layer)
  feature_matching_0.1   the same, weight 0.1

Every setting (and the baseline, always first) is trained with each of --seeds through
gan_jax.synthetic.train (train_step through parallel.DataParallel on one device) and scored with
gan_jax.synthetic.score: 2,500 samples, a mode covered with >= 20 high-quality samples, high quality =
within 3 std of a mode (gan_jax.metrics.modes), for the EMA and the raw generator. Prints a markdown
table: fix, setting, samples (EMA or raw), modes covered / high-quality percentage per seed, and the
mean over the seeds.

Measured 2026-12-01 on this project's 2-core machine, one core (taskset -c 1), Intel(R) Xeon(R)
Processor, jax 0.10.2, ~24 s a run (the full table, 5 and 3 seeds: README.md, "Mode-collapse fixes on
grid25 (toy)"). Means over seeds 0-4, modes / high quality, EMA (raw):

  baseline                  22.8 / 84% (19.0 / 57%)
  label_smoothing           23.2 / 83% (18.8 / 56%)   within seed noise; one seed fell to 16 modes
  instance_noise            24.6 / 84% (22.8 / 70%)   24-25 modes on every seed: the one fix that helped
  feature_matching          24.2 / 83% (19.2 / 54%)   within seed noise
"""
import os
import sys
import time
from typing import Dict, List, Sequence

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_jax import checks  # pylint: disable=g-import-not-at-top
from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
from gan_jax import synthetic  # pylint: disable=g-import-not-at-top

# tests/test_learning.py's GRID25_RECIPE with the nonsaturating loss (tests/test_benchmarks.py checks that
# the two stay the same apart from the loss).
BASE_RECIPE = dict(model="toy", latent_dim=2, g_width=128, d_width=128, batch_size=256, g_lr=3e-3,
                   d_lr=3e-3, g_b1=0.0, d_b1=0.0, g_b2=0.99, d_b2=0.99, ema_decay=0.999,
                   loss="nonsaturating")
NUM_POINTS = 4096  # training points, as test_learning's GRID25_POINTS
DATA_SEED = 0
BASELINE = "baseline"

# name -> (config fields it sets given the run's steps, what the table says of it)
FIXES = {
    "label_smoothing": (lambda steps: dict(label_smoothing=0.1), "label_smoothing=0.1"),
    "label_smoothing_0.2": (lambda steps: dict(label_smoothing=0.2), "label_smoothing=0.2"),
    "instance_noise": (lambda steps: dict(instance_noise=0.1, instance_noise_steps=steps),
                       "instance_noise=0.1, to 0 over all steps"),
    "instance_noise_half": (lambda steps: dict(instance_noise=0.1, instance_noise_steps=max(1, steps // 2)),
                            "instance_noise=0.1, to 0 over the first half"),
    "feature_matching": (lambda steps: dict(feature_matching=1.0), "feature_matching=1.0"),
    "feature_matching_0.1": (lambda steps: dict(feature_matching=0.1), "feature_matching=0.1"),
}

_STEPS = flags.DEFINE_integer("steps", 4000, "Train steps per run (the learning tests' GRID25_STEPS).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds (config.seed) of every setting.")
_FIXES = flags.DEFINE_list("fixes", ["label_smoothing", "instance_noise", "feature_matching"],
                           f"Fixes to compare with the baseline: any of {', '.join(FIXES)}.")


def config_for(fix: str, steps: int, seed: int):
  """The config of one run: BASE_RECIPE, plus FIXES[fix] unless fix is BASELINE."""
  fields = dict(BASE_RECIPE)
  if fix != BASELINE:
    fields.update(FIXES[fix][0](steps))
  config = config_lib.defaults()
  config.update(dict(dataset="grid25", seed=seed, num_steps=steps, **fields))
  checks.check_run(config, num_devices=1)
  return config


def run(fixes: Sequence[str], seeds: Sequence[int], steps: int, log=print) -> Dict[str, Dict[str, List]]:
  """fix -> {"ema": [ModeStatistics per seed], "raw": [...]} for BASELINE and each of `fixes`."""
  unknown = [f for f in fixes if f not in FIXES]
  if unknown:
    raise ValueError(f"unknown fixes {unknown}; choose from {', '.join(FIXES)}")
  data = synthetic.sample("grid25", NUM_POINTS, seed=DATA_SEED)
  steps_per_call = next(n for n in (1000, 500, 100, 10, 1) if steps % n == 0)
  results = {}
  for fix in [BASELINE] + [f for f in fixes if f != BASELINE]:
    results[fix] = {"ema": [], "raw": []}
    for seed in seeds:
      start = time.perf_counter()
      state = synthetic.train(config_for(fix, steps, seed), data.points, steps, steps_per_call)
      for samples in ("ema", "raw"):
        results[fix][samples].append(synthetic.score(state, data, ema=samples == "ema"))
      log(f"{fix} seed {seed}: EMA {results[fix]['ema'][-1]}; raw {results[fix]['raw'][-1]} "
          f"({time.perf_counter() - start:.0f} s)")
  return results


def table(results, seeds: Sequence[int]) -> str:
  """The markdown table of `run`'s results."""
  cell = lambda s: f"{s.modes_covered} / {100 * s.high_quality_fraction:.0f}%"
  lines = ["| fix | setting | samples | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
           "| --- | --- | --- | " + " | ".join("---" for _ in seeds) + " | --- |"]
  for fix, by_samples in results.items():
    setting = "nonsaturating, GRID25 recipe" if fix == BASELINE else FIXES[fix][1]
    for samples, stats in by_samples.items():
      mean_modes = np.mean([s.modes_covered for s in stats])
      mean_quality = 100 * np.mean([s.high_quality_fraction for s in stats])
      lines.append(f"| {fix} | {setting} | {'EMA' if samples == 'ema' else 'raw'} | "
                   + " | ".join(cell(s) for s in stats) + f" | {mean_modes:.1f} / {mean_quality:.0f}% |")
  return "\n".join(lines)


def main(argv):
  del argv
  seeds = [int(s) for s in _SEEDS.value]
  start = time.perf_counter()
  results = run(_FIXES.value, seeds, _STEPS.value, log=lambda line: print(line, flush=True))
  print(f"\n{_STEPS.value} steps per run, {len(results) * len(seeds)} runs in "
        f"{time.perf_counter() - start:.0f} s; cells: modes covered (of 25) / high-quality samples\n")
  print(table(results, seeds))


if __name__ == "__main__":
  app.run(main)
