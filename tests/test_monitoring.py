"""TensorBoard summaries, read back with TensorBoard's own event reader, and the progress bar."""
import contextlib
import fcntl
import io
import os
import pty
import struct
import termios

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from gan_jax import monitoring


def _events(workdir):
  accumulator = event_accumulator.EventAccumulator(str(workdir / monitoring.TENSORBOARD_DIR),
                                                   size_guidance={"scalars": 0, "images": 0})
  accumulator.Reload()
  return accumulator


# The log line of _row(10, 0.5) with 42 s left.
_LOG_LINE = ("step 10/20 epoch 2.50 | d_loss 0.5000 g_loss 2.0000 D(x) 0.600 D(G(z)) 0.400 augment_p 0.25 | "
             "110 img/s | ETA 0:00:42")


def _row(step, d_loss):
  return {"step": step, "epoch": step / 4, "d_loss": d_loss, "g_loss": 2.0, "d_real": 0.6, "d_fake": 0.4,
          "images_per_sec": 100.0 + step, "augment_p": 0.25}


@contextlib.contextmanager
def _terminal(columns):
  """(stream to write to, function returning what the terminal received): a pseudo-terminal `columns`
  wide."""
  controller, terminal = pty.openpty()
  fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
  os.set_blocking(controller, False)
  stream = os.fdopen(terminal, "w")

  def received():
    stream.flush()
    chunks = []
    while True:
      try:
        chunks.append(os.read(controller, 65536))
      except BlockingIOError:
        return b"".join(chunks).decode()
  try:
    yield stream, received
  finally:
    stream.close()
    os.close(controller)


def test_scalars_images_and_scores_read_back(tmp_path):
  grid = np.random.RandomState(0).randint(0, 256, (6, 8, 8, 1)).astype(np.uint8)
  with monitoring.Monitor(str(tmp_path), start_step=0, total_steps=10) as monitor:
    for step in (5, 10):
      monitor.report(_row(step, d_loss=step / 10), "0:00:01")
      monitor.samples(step, grid, columns=3)
    monitor.evaluation({"step": 10, "fid": 42.5, "num_samples": 16, "protocol": "p", "reference": "r"})
  events = _events(tmp_path)
  scalars = events.Tags()["scalars"]
  assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "train/images_per_sec",
          "train/augment_p", "train/epoch", "eval/fid"} == set(scalars)
  assert [(e.step, e.value) for e in events.Scalars("train/d_loss")] == [(5, 0.5), (10, 1.0)]
  assert [e.value for e in events.Scalars("train/images_per_sec")] == [105.0, 110.0]
  assert [(e.step, e.value) for e in events.Scalars("eval/fid")] == [(10, 42.5)]
  images = events.Images("samples")
  # 2 rows of 3 8x8 cells with 2-pixel padding; grayscale is stored as RGB.
  assert [(i.step, i.width, i.height) for i in images] == [(5, 32, 22), (10, 32, 22)]


def test_a_resumed_run_replaces_what_was_logged_after_its_checkpoint(tmp_path):
  with monitoring.Monitor(str(tmp_path), start_step=0, total_steps=15) as monitor:
    for step in (5, 10, 15):
      monitor.report(_row(step, d_loss=float(step)), "0:00:01")
  # The checkpoint was at step 10: step 15 is done again, with other values.
  with monitoring.Monitor(str(tmp_path), start_step=10, total_steps=20) as monitor:
    for step in (15, 20):
      monitor.report(_row(step, d_loss=step * 100.0), "0:00:01")
  assert [(e.step, e.value) for e in _events(tmp_path).Scalars("train/d_loss")] == [
      (5, 5.0), (10, 10.0), (15, 1500.0), (20, 2000.0)]


def test_progress_bar_on_a_terminal_and_log_lines_elsewhere(tmp_path, caplog):
  with _terminal(columns=150) as (stream, received):
    with monitoring.Monitor(str(tmp_path / "a"), start_step=0, total_steps=20, stream=stream) as monitor:
      monitor.advance(10)
      monitor.report(_row(10, 0.5), "0:00:42")
    shown = received()
  assert "50%" in shown and "step 10/20" in shown
  assert ("ETA 0:00:42 | 110 img/s | d_loss 0.5000 g_loss 2.0000 D(x) 0.600 D(G(z)) 0.400 augment_p 0.25"
          in shown)

  with _terminal(columns=0) as (stream, received):  # a terminal without a size shows no bar
    with caplog.at_level("INFO"):
      with monitoring.Monitor(str(tmp_path / "c"), start_step=0, total_steps=20, stream=stream) as monitor:
        monitor.report(_row(10, 0.5), "0:00:42")
    assert "step 10/20" not in received()
  assert _LOG_LINE in caplog.text
  caplog.clear()

  with caplog.at_level("INFO"):
    with monitoring.Monitor(str(tmp_path / "b"), start_step=0, total_steps=20,
                            stream=io.StringIO()) as monitor:
      monitor.advance(10)
      monitor.report(_row(10, 0.5), "0:00:42")
  assert _LOG_LINE in caplog.text


def test_an_inactive_monitor_writes_nothing(tmp_path):
  with monitoring.Monitor(str(tmp_path), start_step=0, total_steps=20, active=False) as monitor:
    monitor.report(_row(10, 0.5), "0:00:01")
    monitor.samples(10, np.zeros((4, 8, 8, 3), np.uint8), columns=2)
  assert not (tmp_path / monitoring.TENSORBOARD_DIR).exists()
