"""The training loop: a run directory in, a trained GAN and the notebooks' artifacts out.

<workdir>/config.json          the run's settings (checked when the run is resumed)
<workdir>/checkpoints/<step>/  Orbax checkpoints of the full state; the run resumes from the newest
<workdir>/samples/step_*.png   grids from fixed noise every sample_every steps and at the end
<workdir>/real_samples.png     a 5x5 grid of training images
<workdir>/progress.gif         the sample grids in order
<workdir>/losses.csv, .png     step, epoch, D/G losses, D(x), D(G(z)), images/s
<workdir>/export/              the latest generator and discriminator variables alone (every clean stop)
<workdir>/metrics.json, best/  with --eval_every: FID per evaluated step, and the best checkpoint by FID
<workdir>/tensorboard/         losses, D outputs, images/s, FID and the sample grids (gan_jax.monitoring)
"""
import contextlib
import datetime
import errno
import os
import signal
import socket
import time

from absl import logging
import filelock
import jax
import ml_collections
import numpy as np

from gan_jax import artifacts
from gan_jax import checkpointing
from gan_jax import checks
from gan_jax import config as config_lib
from gan_jax import data
from gan_jax import generation
from gan_jax import metrics
from gan_jax import models
from gan_jax import monitoring
from gan_jax import parallel
from gan_jax import run_info
from gan_jax import scoring
from gan_jax import train as train_lib
from gan_jax.errors import UserError

_SAMPLE_STREAM = 2


def default_workdir(config: ml_collections.ConfigDict, root: str = "checkpoints") -> str:
  stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
  return os.path.join(root, f"{config.dataset}_{config.model}_{stamp}")


def _prepare_workdir(workdir: str) -> None:
  """Creates the workdir and proves it is writable before any work is done."""
  # One probe per process: the processes of a multi-host run prepare the same shared workdir at once.
  probe = os.path.join(workdir, f".write_test.{socket.gethostname()}.{os.getpid()}")
  try:
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise UserError(f"cannot write to workdir {workdir} ({e.strerror}); choose another --workdir or "
                    "fix its permissions") from e


class _StopRequest:
  """Turns SIGINT/SIGTERM into a request to checkpoint and stop after the current step (on CPU) or call;
  a second signal exits at once, saving nothing more."""

  def __init__(self):
    self.signal_name = None

  def __call__(self, signum, frame):
    del frame
    if self.signal_name is not None:
      logging.warning("%s received again: exiting now; the run resumes from its last checkpoint.",
                      signal.Signals(signum).name)
      logging.flush()
      os._exit(128 + signum)  # pylint: disable=protected-access
    self.signal_name = signal.Signals(signum).name
    logging.warning("%s received: saving a checkpoint, then stopping (send it again to exit at once).",
                    self.signal_name)

  @contextlib.contextmanager
  def installed(self):
    signums = (signal.SIGINT, signal.SIGTERM)
    try:
      previous = {s: signal.signal(s, self) for s in signums}
    except ValueError:  # not the main thread: signals stay with the caller
      yield self
      return
    try:
      yield self
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)


@contextlib.contextmanager
def _write_errors_as_user_errors(workdir: str):
  """Disk-full and permission errors while writing become one clear line."""
  try:
    yield
  except OSError as e:
    if e.errno not in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT):
      raise
    where = f" ({e.filename})" if e.filename else ""
    raise UserError(f"writing to {workdir} failed: {e.strerror}{where}; free space or fix permissions, then "
                    "run the same command to resume from the last checkpoint") from e


class _FidDuringTraining:
  """FID of the generator on `eval_samples` images, recorded in metrics.json; keeps the best checkpoint.

  Conditional runs also get the Inception linear-probe accuracy (and its ceiling on the real test split):
  one matrix product on the features FID computes anyway. Intra-FID, one FID per class, is left to
  `python -m gan_jax.evaluate`.

  The Inception network, the reference statistics and the probe are loaded before training starts, so a
  missing weights file stops the run at once rather than at the first evaluation.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, num_classes: int = 0):
    self.config, self.workdir = config, workdir
    self.metric_names = ("fid", "probe") if config.conditional and num_classes > 1 else ("fid",)
    # The last batch is padded to a full one: no batch larger than the evaluation itself.
    self.batch_size = min(metrics.inception.DEFAULT_BATCH_SIZE, config.eval_samples)
    self.inception = metrics.load_inception()
    self.references = scoring.run_references(config, num_classes if config.conditional else 0,
                                             self.inception, self.metric_names, self.batch_size)
    self.best = checkpointing.Checkpoints(workdir, keep=1, subdir="best", best_metric="fid")

  def __call__(self, state) -> dict:
    result = scoring.score_generator(state, self.workdir, self.config.eval_samples, self.references,
                                     self.inception, metric_names=self.metric_names,
                                     batch_size=self.batch_size)
    probe = (f", linear-probe accuracy {result['probe_accuracy']:.3f}" if "probe_accuracy" in result
             else "")
    logging.info("step %d: FID %.2f%s on %d samples", result["step"], result["fid"], probe,
                 self.config.eval_samples)
    self.best.save(state, metrics={"fid": float(result["fid"])})
    return result

  def wait(self):
    self.best.wait()


class _Divergence:
  """What to tell the user when a call's `healthy` flags show non-finite or exploding values."""

  def __init__(self, call_start_step: int, healthy: np.ndarray, metrics: dict, last_checkpoint, config):
    index = int(np.argmin(healthy))  # the call's first unhealthy step
    self.step = call_start_step + index + 1
    values = {k: float(np.asarray(v)[index]) for k, v in metrics.items()}
    bad = [f"{k}={v:.4g}" for k, v in values.items()
           if not np.isfinite(v) or abs(v) >= train_lib.MAX_ABS_LOSS]
    self.what = ", ".join(bad) if bad else "the parameters became non-finite"
    self.last_checkpoint, self.config = last_checkpoint, config

  def __str__(self):
    kept = (f"the last good checkpoint (step {self.last_checkpoint}) is kept and nothing after it was saved"
            if self.last_checkpoint is not None else "no checkpoint was saved")
    return (f"training diverged at step {self.step} ({self.what}); {kept}. Try lower learning rates "
            f"(now --g_lr={self.config.g_lr:g} --d_lr={self.config.d_lr:g}; rerunning this workdir with "
            "lower ones resumes from that checkpoint), or a regularized objective (--loss=hinge, "
            "--r1_gamma, spectral norm)")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir`; returns a summary of the finished call."""
  dp = parallel.DataParallel(config.parallelism, parallel.local_devices(config.num_devices))
  if config.num_devices > len(jax.local_devices()):
    raise UserError(f"--num_devices={config.num_devices} but this host has {len(jax.local_devices())} "
                    "devices; use 0 for all of them")
  checks.check_run(config, dp.num_global)
  config = config.copy_and_resolve_references()
  # The architecture's settings in full, so that config.json records them all.
  config.model_args = ml_collections.ConfigDict(models.resolve_args(config))
  config_path = os.path.join(workdir, "config.json")
  if os.path.exists(config_path):
    config_lib.check_resumable(config, config_path, models.default_args)
  budget = (int(config.memory_budget_gb * 2**30) if config.memory_budget_gb
            else data.memory_budget_bytes(dp.devices))
  dataset = data.load_split(config.dataset, config.split, config.data_dir or None, config.image_size,
                            pipeline=config.input_pipeline, budget_bytes=budget,
                            shard_index=jax.process_index(), shard_count=jax.process_count(),
                            workers=config.data_workers)
  _check_against_data(config, dataset)  # before anything is written to the workdir
  _prepare_workdir(workdir)
  with _write_errors_as_user_errors(workdir), _one_writer(workdir):
    if jax.process_index() == 0:
      config_lib.save(config, config_path)
    return _train(config, workdir, dp, dataset)


@contextlib.contextmanager
def _one_writer(workdir: str):
  """Holds `<workdir>/.lock` while training, so that a second run on the same workdir stops at once
  instead of writing into this one. The OS releases the lock when its process ends, however it ends;
  `.lock.owner` tells who holds it, and that its last holder ended without releasing it (a crash)."""
  if jax.process_index() != 0:  # the hosts of one run share the workdir; the chief speaks for them
    yield
    return
  lock = filelock.FileLock(os.path.join(workdir, ".lock"))
  owner_path = os.path.join(workdir, ".lock.owner")
  try:
    lock.acquire(timeout=0)
  except filelock.Timeout:
    owner = _read_text(owner_path) or "another process"
    raise UserError(f"the workdir {workdir} is in use by another run ({owner}); wait for it to end, or "
                    "choose another --workdir") from None
  try:
    previous = _read_text(owner_path)
    if previous:
      logging.warning("Taking over %s from a run that ended without releasing it (%s).", workdir, previous)
    with open(owner_path, "w") as f:
      f.write(f"pid {os.getpid()} on {socket.gethostname()}, started "
              f"{datetime.datetime.now().isoformat(timespec='seconds')}")
    yield
  finally:
    if os.path.exists(owner_path):
      os.remove(owner_path)
    lock.release()


def _read_text(path: str) -> str:
  try:
    with open(path) as f:
      return f.read().strip()
  except OSError:
    return ""


def _check_against_data(config: ml_collections.ConfigDict, dataset) -> None:
  host_batch = config.batch_size // jax.process_count()
  if host_batch * config.d_steps > len(dataset):
    raise UserError(f"--batch_size={config.batch_size} with --d_steps={config.d_steps} needs "
                    f"{host_batch * config.d_steps} images per host and step but the dataset shard has "
                    f"{len(dataset)}; lower --batch_size or --d_steps")
  if config.conditional and dataset.num_classes < 2:
    raise UserError(f"--conditional needs class labels but {config.dataset} has "
                    f"{dataset.num_classes} class; train it without --conditional")


class _Rows:
  """The rows of a run: the metrics of the calls since the last row, averaged, to losses.csv (the
  chief's `loss_log`; None elsewhere) and to the monitor (log line, TensorBoard, progress bar), with
  images/s and the ETA of whichever ends the run first, its last step or its time budget."""

  def __init__(self, loss_log, monitor, start_step: int, total_steps: int, steps_per_epoch: int,
               images_per_step: int, deadline):
    self._loss_log, self._monitor, self._deadline = loss_log, monitor, deadline
    self._total_steps, self._steps_per_epoch = total_steps, steps_per_epoch
    self._images_per_step = images_per_step
    self._pending, self._last_time, self._last_step = [], time.time(), start_step

  def add(self, metrics: dict) -> None:
    self._pending.append(metrics)

  def write(self, step: int) -> None:
    means = {k: float(np.mean(np.concatenate([np.asarray(m[k]) for m in self._pending])))
             for k in self._pending[0]}
    now = time.time()
    images_per_sec = (step - self._last_step) * self._images_per_step / max(now - self._last_time, 1e-9)
    row = dict(step=step, epoch=step / self._steps_per_epoch, images_per_sec=images_per_sec, **means)
    if self._loss_log:
      self._loss_log.append([row])
    steps_per_sec = images_per_sec / self._images_per_step
    seconds_left = (self._total_steps - step) / steps_per_sec if steps_per_sec else None
    if self._deadline and seconds_left is not None:
      seconds_left = min(seconds_left, max(self._deadline - now, 0.0))
    self._monitor.report(row, datetime.timedelta(seconds=int(seconds_left)) if seconds_left is not None
                         else "?")
    self._pending, self._last_time, self._last_step = [], now, step


def _train(config: ml_collections.ConfigDict, workdir: str, dp: parallel.DataParallel, dataset) -> dict:
  """Trains on `dataset`: a data.ImageDataset kept on the devices, or a data.streaming.StreamingDataset."""
  is_chief = jax.process_index() == 0
  host_batch = config.batch_size // jax.process_count()
  steps_per_epoch = parallel.steps_per_epoch(len(dataset), host_batch, config.d_steps)
  total_steps = config.num_steps or config.num_epochs * steps_per_epoch
  images_per_step = config.batch_size * config.d_steps  # real images D sees per step
  image_shape = dataset.image_shape
  if is_chief:
    run_info.save(workdir, image_shape, dataset.class_names)

  fid_during_training = (_FidDuringTraining(config, workdir, dataset.num_classes) if config.eval_every
                         else None)
  template = train_lib.create_train_state(config, jax.random.PRNGKey(config.seed), image_shape,
                                          num_classes=dataset.num_classes, axis_name=dp.axis_name)
  checkpoints = checkpointing.Checkpoints(workdir, config.keep_checkpoints)
  state = checkpoints.restore_latest(template) or template
  start_step = int(state.step)
  loss_log = artifacts.LossLog(os.path.join(workdir, "losses.csv"))
  if start_step:
    logging.info("Resuming %s from step %d.", workdir, start_step)
  if is_chief:
    loss_log.truncate_after(start_step)  # rows past the checkpoint are about to be redone
    real_path = os.path.join(workdir, "real_samples.png")
    if not os.path.exists(real_path):
      artifacts.save_grid(dataset.preview(25), real_path, columns=5)

  grid_z, grid_labels, grid_columns = generation.grid_inputs(
      jax.random.fold_in(jax.random.PRNGKey(config.seed), _SAMPLE_STREAM), config.num_samples,
      config.latent_dim, template.num_classes)
  generate = jax.jit(lambda s, z, y: s.generate(z, y))

  def save_samples(host_state):
    images = artifacts.to_uint8(generate(host_state, grid_z, grid_labels))  # every host joins in
    if is_chief:
      artifacts.save_grid(images, os.path.join(workdir, "samples", f"step_{int(host_state.step):07d}.png"),
                          columns=grid_columns)
      monitor.samples(int(host_state.step), images, grid_columns)

  state = dp.put_state(state)
  inputs = parallel.training_input(
      dp, dataset, global_batch=config.batch_size, d_steps=config.d_steps, seed=config.seed,
      saved_position=lambda: checkpoints.data_position(start_step), start_step=start_step)
  logging.info("Training %s on %s (%d images/host, %s, %d steps/epoch) with %d devices (%s), steps %d -> "
               "%d.", config.model, config.dataset, len(dataset), inputs.kind,
               steps_per_epoch, dp.num_global,
               config.parallelism, start_step, total_steps)
  stop = _StopRequest()
  divergence = None
  step, compile_seconds, step_seconds = start_step, None, None
  deadline = time.time() + config.train_minutes * 60 if config.train_minutes else None
  with contextlib.closing(inputs), stop.installed(), monitoring.Monitor(workdir, start_step, total_steps,
                                                                        active=is_chief) as monitor:
    rows = _Rows(loss_log if is_chief else None, monitor, start_step, total_steps, steps_per_epoch,
                 images_per_step, deadline)
    while step < total_steps:
      # Calls end on multiples of steps_per_call (where rows, grids and checkpoints fall), also after
      # a run that stopped between them.
      steps = min(config.steps_per_call - step % config.steps_per_call, total_steps - step)
      if deadline and step_seconds and not dp.fuses_steps:
        # Where a call is a host loop of one-step programs (CPU), its size is free: fit it to the budget.
        steps = max(1, min(steps, int((deadline - time.time()) / step_seconds)))
      call_start = time.time()
      state, metrics = inputs.run(state, steps, lambda: stop.signal_name is not None)
      # Waiting for each call keeps the clock honest: the budget and images/s count finished work, not
      # dispatched work (a call is many steps, so the device idles only for the host's bookkeeping).
      jax.block_until_ready(metrics)
      call_seconds = time.time() - call_start
      metrics = dict(metrics)
      healthy = np.asarray(metrics.pop("healthy"))
      steps = len(healthy)  # fewer than asked when a stop request cut the call short
      if not healthy.all():
        # Nothing of this call is kept: no row, grid, checkpoint or export from a diverged state.
        divergence = _Divergence(step, healthy, metrics, checkpoints.latest_step(), config)
        break
      step += steps
      monitor.advance(step)
      rows.add(metrics)
      if compile_seconds is None:
        compile_seconds = call_seconds
        logging.info("First call (compile + %d steps): %.1f s", steps, compile_seconds)
      else:
        step_seconds = call_seconds / steps
      finished = step >= total_steps
      # Stop when the next step would no longer fit (once its duration is known).
      out_of_time = deadline and time.time() + (step_seconds or 0.0) > deadline
      stopping = finished or out_of_time or stop.signal_name is not None
      if step % config.log_every == 0 or stopping:
        rows.write(step)
      if step % config.sample_every == 0 or stopping:
        save_samples(dp.get_state(state))
      if step % config.checkpoint_every == 0 or stopping:
        checkpoints.save(dp.get_state(state), data_position=inputs.position())
      if fid_during_training and step % config.eval_every == 0:
        monitor.evaluation(fid_during_training(dp.get_state(state)))
      if stopping:
        break
    checkpoints.wait()
    if fid_during_training:
      fid_during_training.wait()
    if divergence:
      raise UserError(str(divergence))
    if is_chief and step > start_step:
      artifacts.save_progress_gif(os.path.join(workdir, "samples"), os.path.join(workdir, "progress.gif"))
      loss_log.plot(os.path.join(workdir, "losses.png"))
    # Every clean stop (last step, time budget, signal) leaves exports of its step, also when a killed
    # run had saved its last checkpoint but not its exports.
    if step > start_step or checkpointing.exported_step(workdir) != step:
      checkpointing.export_models(workdir, dp.get_state(state))

  if stop.signal_name:
    logging.warning("Stopped by %s at step %d; run the same command to resume.", stop.signal_name, step)
  elif step < total_steps:
    logging.info("Time budget of %.1f minutes used at step %d; run the same command to continue.",
                 config.train_minutes, step)
  return {"step": step, "total_steps": total_steps, "compile_seconds": compile_seconds,
          "stopped_by": stop.signal_name, "workdir": workdir}
