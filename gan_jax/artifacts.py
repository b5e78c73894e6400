"""What a run leaves in its workdir besides checkpoints: image grids, the progress GIF, the loss log."""
import csv
import glob
import math
import os
from typing import Dict, List

from absl import logging
import imageio.v2 as imageio
# A Figure of its own, drawn by the Agg canvas: files only, no display and no pyplot (whose global state
# a library does not need, and whose import adds ~0.4 s to every command's start on 2 cores, by
# `python -X importtime`).
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from PIL import Image

from gan_jax import files

LOSS_COLUMNS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "images_per_sec")
# Columns that appear when the run uses what they measure; plotted in a third panel.
EXTRA_COLUMNS = ("real_sign", "augment_p", "d_reg", "feature_matching")


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats -> uint8 pixels."""
  return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images_uint8: np.ndarray, columns: int = 0, padding: int = 2) -> np.ndarray:
  """(N, H, W, C) uint8 -> one (rows*H, columns*W, C) image with `padding` pixels between cells."""
  n, h, w, c = images_uint8.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
  for i, image in enumerate(images_uint8):
    top, left = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
    grid[top:top + h, left:left + w] = image
  return grid


def grid_picture(images_uint8: np.ndarray, columns: int = 0, scale: int = 2) -> Image.Image:
  """A grid as a picture, upscaled `scale` times (nearest) so 32x32 images are visible."""
  grid = image_grid(images_uint8, columns)
  picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def save_grid(images_uint8: np.ndarray, path: str, columns: int = 0, scale: int = 2) -> None:
  """Writes a PNG grid (see grid_picture)."""
  _atomic_write(path, grid_picture(images_uint8, columns, scale).save, format="PNG")


def save_progress_gif(samples_dir: str, path: str, seconds_per_frame: float = 0.3) -> int:
  """Builds a GIF from the sample grids in step order; returns the number of frames."""
  frames = [imageio.imread(f) for f in sorted(glob.glob(os.path.join(samples_dir, "step_*.png")))]
  if frames:
    _atomic_write(path, lambda p, **kw: imageio.mimsave(p, frames, **kw), format="GIF",
                  duration=seconds_per_frame, loop=0)
  return len(frames)


class LossLog:
  """losses.csv: one row per logged step. Rows after a resumed step are dropped (they are redone).

  The columns are LOSS_COLUMNS, then those of EXTRA_COLUMNS the first row has.
  """

  def __init__(self, path: str):
    self.path = path

  def rows(self) -> List[Dict[str, float]]:
    """The complete rows; a last row cut short by a killed process is left out (it is redone)."""
    if not os.path.exists(self.path):
      return []
    rows = []
    with open(self.path, newline="") as f:
      for row in csv.DictReader(f):
        try:
          rows.append({k: int(v) if k == "step" else float(v) for k, v in row.items()})
        except (TypeError, ValueError):  # missing (None) or cut-off fields
          logging.warning("Ignoring an incomplete row of %s: %s", self.path, row)
    return rows

  def truncate_after(self, step: int) -> None:
    """Keeps the rows up to `step`, replacing the file atomically (a kill never loses the others)."""
    if not os.path.exists(self.path):
      return
    rows = [r for r in self.rows() if r["step"] <= step]
    columns = self._columns(rows)

    def write(path):
      with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    _atomic_write(self.path, write)

  def _columns(self, rows) -> List[str]:
    if os.path.exists(self.path):
      with open(self.path, newline="") as f:
        header = next(csv.reader(f), None)
      if header:
        return header
    return list(LOSS_COLUMNS) + [c for c in EXTRA_COLUMNS if rows and c in rows[0]]

  def append(self, rows: List[Dict[str, float]]) -> None:
    columns = self._columns(rows)
    new_file = not os.path.exists(self.path)
    with open(self.path, "a", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
      if new_file:
        writer.writeheader()
      writer.writerows(rows)

  def plot(self, path: str) -> None:
    """losses.png: D and G losses, D's mean outputs on real and fake images, and the extra columns."""
    rows = self.rows()
    if not rows:
      return
    steps = [r["step"] for r in rows]
    extras = [c for c in EXTRA_COLUMNS if c in rows[0]]
    fig = Figure(figsize=(8, 6 + 3 * bool(extras)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 + bool(extras), 1, sharex=True)
    panels = [(axes[0], (("d_loss", "D loss"), ("g_loss", "G loss")), "loss"),
              (axes[1], (("d_real", "D(x)"), ("d_fake", "D(G(z))")), "mean sigmoid(D)")]
    if extras:
      panels.append((axes[2], tuple((c, c) for c in extras), "value"))
    for axis, curves, ylabel in panels:
      for column, label in curves:
        axis.plot(steps, [r[column] for r in rows], label=label)
      axis.set_ylabel(ylabel)
      axis.legend()
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    _atomic_write(path, fig.savefig, format="png", dpi=100)


def _atomic_write(path: str, writer, **kwargs) -> None:
  """writer(temporary path, **kwargs), then the file replaces `path` (files.atomic_path)."""
  with files.atomic_path(path) as temporary:
    writer(temporary, **kwargs)
