"""Images from a trained run: a grid, a latent-interpolation GIF, or N samples for external scorers.

    python -m gan_jax.sample --workdir=RUN --out=grid.png [--num=64] [--class=cat]
    python -m gan_jax.sample --workdir=RUN --out=walk.gif [--num=8] [--keyframes=4] [--frames=16]
    python -m gan_jax.sample --workdir=RUN --out=samples.npz --num=50000   # uint8 'images', 'labels'

Samples come from the generator's EMA weights (--raw: the trained weights) of the newest checkpoint
(--step to pick another). Without --class a conditional run's grid has one row per class.
"""
import math
import os
import sys
from typing import List, Optional

from absl import app
from absl import flags
import imageio.v2 as imageio
import numpy as np

from gan_jax import artifacts
from gan_jax import files
from gan_jax import generation
from gan_jax.errors import UserError

OUTPUT_KINDS = (".png", ".gif", ".npz")


def walk_frames(sampler: generation.Sampler, num_paths: int, keyframes: int, frames: int, seed: int,
                class_index: Optional[int] = None) -> List[np.ndarray]:
  """uint8 grids of `num_paths` latent paths, one grid per frame: each path walks through `keyframes`
  latents of the seed and back to the first (a seamless loop), `frames` frames per segment. Path i shows
  class i mod num_classes, or the class asked for."""
  segment = np.repeat(np.arange(keyframes), frames * num_paths)  # frame-major: a frame's paths together
  path = np.tile(np.arange(num_paths), keyframes * frames)
  fractions = np.tile(np.repeat(np.arange(frames) / frames, num_paths), keyframes)
  labels = np.tile(generation.sample_labels(np.arange(num_paths), sampler.num_classes, class_index),
                   keyframes * frames)
  images = sampler.images(seed, segment * num_paths + path, (segment + 1) % keyframes * num_paths + path,
                          fractions, labels)
  columns = math.ceil(math.sqrt(num_paths))
  return [artifacts.image_grid(frame, columns) for frame in np.split(images, keyframes * frames)]


def write_samples(workdir: str, out: str, num: int = 64, class_value: Optional[str] = None,
                  step: Optional[int] = None, seed: int = 0, ema: bool = True, keyframes: int = 4,
                  frames: int = 16) -> str:
  """Writes `out` (.png grid, .gif interpolation or .npz samples) from the run in `workdir`."""
  kind = os.path.splitext(out)[1].lower()
  if kind not in OUTPUT_KINDS:
    raise UserError(f"--out={out} must end in {', '.join(OUTPUT_KINDS)} (grid, interpolation GIF, "
                    "samples)")
  for name, value, low in (("num", num, 1), ("keyframes", keyframes, 2), ("frames", frames, 1)):
    if value < low:
      raise UserError(f"--{name}={value} must be an integer >= {low}")
  _, state, class_names = generation.load_run(workdir, step)
  label = generation.class_index(class_value, class_names, state.num_classes)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  if kind == ".npz":
    batches = list(generation.generated_batches(state, num, seed=seed, class_index=label, ema=ema))
    with files.atomic_path(out) as tmp:
      np.savez(tmp, images=np.concatenate([b[0] for b in batches]),
               labels=np.concatenate([b[1] for b in batches]))
  elif kind == ".png":
    images, columns = generation.Sampler(state, ema).grid(num, seed, label)
    artifacts.save_grid(images, out, columns=columns)
  else:
    grids = walk_frames(generation.Sampler(state, ema), num, keyframes, frames, seed, label)
    with files.atomic_path(out) as tmp:
      imageio.mimsave(tmp, grids, format="GIF", duration=0.08, loop=0)
  return out


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("workdir", None, "Training run to sample from.", required=True)
  flags.DEFINE_string("out", None, "Output: .png (grid), .gif (latent interpolation) or .npz (samples).",
                      required=True)
  flags.DEFINE_integer("num", 64, "Images in the grid, paths in the GIF, or samples in the .npz.")
  flags.DEFINE_string("class", None, "Class name or index (conditional runs); default: all classes.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")
  flags.DEFINE_integer("seed", 0, "Seed of the latents.")
  flags.DEFINE_bool("raw", False, "Use the trained generator weights instead of their EMA.")
  flags.DEFINE_integer("keyframes", 4, "GIF: random latents each path passes through.")
  flags.DEFINE_integer("frames", 16, "GIF: frames between two keyframes.")


def main(argv):
  del argv
  args = flags.FLAGS
  try:
    path = write_samples(args.workdir, args.out, args.num, args["class"].value, args.step, args.seed,
                         not args.raw, args.keyframes, args.frames)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(path)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
