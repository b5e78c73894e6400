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
from typing import List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import artifacts
from gan_jax import evaluate
from gan_jax.errors import UserError
from gan_jax.train import GANState

OUTPUT_KINDS = (".png", ".gif", ".npz")


def grid_inputs(key, num_samples: int, latent_dim: int,
                num_classes: int = 0) -> Tuple[jax.Array, jax.Array, int]:
  """(latents, labels, columns) of a sample grid.

  Unconditional: `num_samples` latents in a square-ish grid. Conditional: one row per class with
  max(1, num_samples // num_classes) columns; column j uses the same latent in every row, so a column
  shows one latent rendered as each class.
  """
  if not num_classes:
    return (jax.random.normal(key, (num_samples, latent_dim)), jnp.zeros(num_samples, jnp.int32),
            math.ceil(math.sqrt(num_samples)))
  columns = max(1, num_samples // num_classes)
  z = jnp.tile(jax.random.normal(key, (columns, latent_dim)), (num_classes, 1))
  return z, jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), columns), columns


def slerp(a, b, t):
  """Spherical interpolation between latents a and b (rows), at fraction t: stays on the shell where
  Gaussian latents live, unlike a straight line through the low-norm middle."""
  a_unit = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b_unit = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  omega = jnp.arccos(jnp.clip(jnp.sum(a_unit * b_unit, axis=-1, keepdims=True), -1.0, 1.0))
  sin_omega = jnp.sin(omega)
  safe = sin_omega > 1e-6
  wa = jnp.where(safe, jnp.sin((1 - t) * omega) / jnp.where(safe, sin_omega, 1.0), 1 - t)
  wb = jnp.where(safe, jnp.sin(t * omega) / jnp.where(safe, sin_omega, 1.0), t)
  return wa * a + wb * b


def interpolation_latents(key, num_paths: int, keyframes: int, frames: int,
                          latent_dim: int) -> jax.Array:
  """(num_frames, num_paths, latent_dim): each path walks through `keyframes` random latents and back
  to the first (a seamless loop), `frames` frames per segment."""
  points = jax.random.normal(key, (keyframes, num_paths, latent_dim))
  path = []
  for i in range(keyframes):
    for f in range(frames):
      path.append(slerp(points[i], points[(i + 1) % keyframes], f / frames))
  return jnp.stack(path)


def interpolation_frames(state: GANState, latents, labels, *, ema: bool = True) -> List[np.ndarray]:
  """uint8 grid images, one per row of `latents` (num_frames, num_paths, latent_dim)."""
  generate = jax.jit(lambda s, z, y: s.generate(z, y, ema=ema))
  columns = math.ceil(math.sqrt(latents.shape[1]))
  return [artifacts.image_grid(artifacts.to_uint8(generate(state, z, labels)), columns)
          for z in latents]


def class_index(value: Optional[str], class_names: Sequence[str], num_classes: int) -> Optional[int]:
  """--class given as a name or an index; None when not given."""
  if value is None:
    return None
  if not num_classes:
    raise UserError("--class needs a class-conditional run; this run was trained without --conditional")
  if value in class_names:
    return list(class_names).index(value)
  if value.isdigit() and int(value) < num_classes:
    return int(value)
  raise UserError(f"--class={value} is not a class of this run; use a name ({', '.join(class_names)}) "
                  f"or an index below {num_classes}")


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
  _, state, class_names = evaluate.load_run(workdir, step)
  label = class_index(class_value, class_names, state.num_classes)
  key = jax.random.PRNGKey(seed)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  if kind == ".npz":
    batches = list(evaluate.generated_batches(state, num, seed=seed, class_index=label, ema=ema))
    tmp = f"{out}.tmp.npz"
    np.savez(tmp, images=np.concatenate([b[0] for b in batches]),
             labels=np.concatenate([b[1] for b in batches]))
    os.replace(tmp, out)
  elif kind == ".png":
    z, labels, columns = grid_inputs(key, num, state.latent_dim, 0 if label is not None else state.num_classes)
    if label is not None:
      labels = jnp.asarray(evaluate.sample_labels(np.arange(num), state.num_classes, label))
    images = jax.jit(lambda s, z, y: s.generate(z, y, ema=ema))(state, z, labels)
    artifacts.save_grid(artifacts.to_uint8(images), out, columns=columns)
  else:  # path i shows class i mod num_classes, or the class asked for
    latents = interpolation_latents(key, num, keyframes, frames, state.latent_dim)
    labels = jnp.asarray(evaluate.sample_labels(np.arange(num), state.num_classes, label))
    grids = interpolation_frames(state, latents, labels, ema=ema)
    tmp = f"{out}.tmp.gif"
    imageio.mimsave(tmp, grids, format="GIF", duration=0.08, loop=0)
    os.replace(tmp, out)
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
