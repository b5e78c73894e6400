"""What a person watching a run sees: TensorBoard summaries and, on a terminal, a progress bar.

`<workdir>/tensorboard` (`tensorboard --logdir=RUN/tensorboard`): every losses.csv column as the scalar
`train/<column>` (d_loss, g_loss, d_real = D(x), d_fake = D(G(z)), images_per_sec, augment_p, ...), the
scores of evaluations during training as `eval/<metric>` (FID) and the fixed-noise grids as the image
`samples`. They are written with tensorboardX, which needs no TensorFlow.
"""
import contextlib
import io
import os
import sys
from typing import Dict, Optional, TextIO

from absl import logging
import numpy as np
import tensorboardX
import tqdm
from tqdm.contrib import DummyTqdmFile

from gan_jax import artifacts

TENSORBOARD_DIR = "tensorboard"
_FLUSH_SECONDS = 10  # how stale TensorBoard may be while a run goes on


class Monitor:
  """TensorBoard summaries and progress of one training call, from `start_step` towards `total_steps`.

  Progress is a tqdm bar where `stream` (stderr) is a terminal with a width, log lines elsewhere; while
  the bar is shown, log lines are printed above it instead of through it. Inactive (processes other than the
  chief of a multi-host run) it writes nothing and only logs the lines.
  """

  def __init__(self, workdir: str, start_step: int, total_steps: int, active: bool = True,
               stream: Optional[TextIO] = None):
    self.total_steps = total_steps
    stream = stream or sys.stderr
    self._writer = self._bar = None
    self._cleanup = contextlib.ExitStack()
    if not active:
      return
    # A resumed run redoes the steps after its checkpoint: TensorBoard drops what was logged past it,
    # as losses.csv does. The files are named by the second they were opened in; the start step in the
    # name keeps a call that resumes within the same second from overwriting the previous call's file,
    # and sorts after it.
    self._writer = tensorboardX.SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR),
                                              purge_step=start_step + 1 if start_step else None,
                                              flush_secs=_FLUSH_SECONDS,
                                              filename_suffix=f".from_step_{start_step:010d}")
    self._cleanup.callback(self._writer.close)
    if _terminal_columns(stream):
      self._bar = tqdm.tqdm(total=total_steps, initial=start_step, file=stream, unit="step",
                            dynamic_ncols=True, smoothing=0.1,
                            bar_format="{percentage:3.0f}%|{bar}| step {n}/{total} [{elapsed}{postfix}]")
      self._cleanup.callback(self._bar.close)
      self._cleanup.enter_context(_log_lines_above(stream))

  def __enter__(self) -> "Monitor":
    return self

  def __exit__(self, *exc_info) -> None:
    self._cleanup.close()

  def advance(self, step: int) -> None:
    """Training reached `step`."""
    if self._bar is not None:
      self._bar.update(step - self._bar.n)

  def report(self, row: Dict[str, float], eta) -> None:
    """A losses.csv row and the time left: scalars to TensorBoard, text to the bar or the log."""
    if self._writer is not None:
      for column, value in row.items():
        if column != "step":
          self._writer.add_scalar(f"train/{column}", value, row["step"])
    losses = (f"d_loss {row['d_loss']:.4f} g_loss {row['g_loss']:.4f} D(x) {row['d_real']:.3f} "
              f"D(G(z)) {row['d_fake']:.3f}"
              + "".join(f" {k} {row[k]:.4g}" for k in artifacts.EXTRA_COLUMNS if k in row))
    speed = f"{row['images_per_sec']:.0f} img/s"
    if self._bar is not None:  # what matters most first: a narrow terminal cuts the end of the line
      self._bar.set_postfix_str(f"ETA {eta} | {speed} | {losses} | epoch {row['epoch']:.2f}", refresh=True)
    else:
      logging.info("step %d/%d epoch %.2f | %s | %s | ETA %s", row["step"], self.total_steps, row["epoch"],
                   losses, speed, eta)

  def samples(self, step: int, images_uint8: np.ndarray, columns: int) -> None:
    """The fixed-noise grid of `step`, as the image TensorBoard shows with a step slider."""
    if self._writer is None:
      return
    grid = artifacts.image_grid(images_uint8, columns)
    if grid.shape[-1] == 1:
      grid = np.repeat(grid, 3, axis=-1)
    self._writer.add_image("samples", grid, step, dataformats="HWC")

  def evaluation(self, result: Dict) -> None:
    """The scores of an evaluation during training (a scoring.score_generator result)."""
    if self._writer is None:
      return
    for name, value in result.items():
      if name not in ("step", "num_samples") and isinstance(value, (int, float)):
        self._writer.add_scalar(f"eval/{name}", value, result["step"])


def _terminal_columns(stream: TextIO) -> int:
  """The width of the terminal `stream` writes to; 0 for a file or pipe, and for a terminal without a
  window size (a pseudo-terminal nobody looks at), where a bar would show nothing at all."""
  try:
    return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
  except (OSError, ValueError, io.UnsupportedOperation):
    return 0


@contextlib.contextmanager
def _log_lines_above(stream: TextIO):
  """Sends absl's log lines through tqdm.write, which prints them on `stream` above the bar instead of
  into it."""
  handler = logging.get_absl_handler().python_handler
  original = handler.stream
  handler.stream = DummyTqdmFile(stream)
  try:
    yield
  finally:
    handler.stream = original
