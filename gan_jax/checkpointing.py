"""Orbax checkpoints of the full training state, with fallback past a corrupt latest checkpoint."""
import logging as std_logging
import os
import shutil
from typing import List, Optional

from absl import logging
from flax import serialization
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import files
from gan_jax.errors import UserError
from gan_jax.train import GANState

# Orbax's words for a checkpoint whose tree differs from the template's: the first for a template of
# arrays (the trainer's), the second for an abstract one (jax.ShapeDtypeStruct: the commands that read a run).
_STRUCTURE_MISMATCHES = ("tree structures do not match", "Structure mismatch")
# A checkpoint's items: the state (Orbax's name for a lone item, so checkpoints written before there was
# a second one still restore) and, for streamed input, the data position.
_STATE, _DATA = "default", "data"
# State fields added after checkpoints were first written, each with the field that older checkpoints'
# runs used in its place: such a checkpoint restores with the one copied into the other.
_ADDED_FIELDS = {"g_ema_batch_stats": "g_batch_stats"}


def _is_structure_mismatch(error: Exception) -> bool:
  return any(words in str(error) for words in _STRUCTURE_MISMATCHES)


class Checkpoints:
  """`<workdir>/<subdir>/<step>/`: G, D, EMA, optimizer states, step and PRNG key; and the data position
  of streamed input (gan_jax.data.streaming). In memory, the data position is a function of the step (see
  parallel.py) and needs no item of its own.

  With `best_metric`, the `keep` checkpoints with the lowest value of that metric are kept instead of
  the newest ones.
  """

  def __init__(self, workdir: str, keep: int, subdir: str = "checkpoints",
               best_metric: Optional[str] = None, asynchronous: bool = True, read_only: bool = False):
    """`asynchronous`: `save` returns once the state is copied to host memory and the files are written
    in a background thread (benchmarks/checkpoint_stall.py measures the difference). `read_only`: for
    readers beside a training run (the web gallery), which must neither create nor delete anything."""
    self.directory = os.path.join(os.path.abspath(workdir), subdir)
    best = dict(best_fn=lambda m: m[best_metric], best_mode="min") if best_metric else {}
    # A reader neither saves nor deletes (and Orbax warns about settings for either).
    saving = dict(max_to_keep=None, save_interval_steps=0) if read_only else dict(max_to_keep=keep)
    self.manager = ocp.CheckpointManager(
        self.directory, item_names=(_STATE, _DATA), options=ocp.CheckpointManagerOptions(
            create=not read_only, read_only=read_only, enable_async_checkpointing=asynchronous, **saving,
            **best))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def reread_steps(self) -> List[int]:
    """The steps saved now, newest last, read from disk again: another process may be saving."""
    self.manager.reload()
    return sorted(self.manager.all_steps())

  def save(self, state: GANState, metrics: Optional[dict] = None, data_position: Optional[dict] = None) -> None:
    """Saves `state`, and `data_position` (JSON-able: streaming.Batches.position) where given."""
    step = int(jax.device_get(state.step))
    if step in self.manager.all_steps():
      return
    items = {_STATE: ocp.args.StandardSave(serialization.to_state_dict(state))}
    if data_position is not None:
      items[_DATA] = ocp.args.JsonSave(data_position)
    self.manager.save(step, args=ocp.args.Composite(**items), metrics=metrics)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def restore(self, step: int, template: GANState) -> Optional[GANState]:
    """The checkpoint of `step` shaped like `template`, or None if there is none.

    Intact files of other models (another version's layer names): UserError.
    """
    if step not in self.manager.all_steps():
      return None
    # A failed read raises to the caller, who reports it; the same damage in Orbax's other reads is noise.
    _DUPLICATE_READ_ERRORS.paths.add(os.path.join(self.directory, str(step)) + os.sep)
    try:
      restored = self._restore_state(step, serialization.to_state_dict(template))
    except Exception as e:  # pylint: disable=broad-except
      if _is_structure_mismatch(e):
        raise UserError(
            f"the checkpoint at step {step} in {self.directory} holds other parameters than these models "
            "(written by another version of gan_jax, whose layer names differ); use that version for "
            "this run, or a new --workdir") from e
      raise
    # Host arrays: the caller places them (DataParallel.put_state); arrays committed to this process's
    # first device could not be moved onto a mesh that spans other processes.
    return serialization.from_state_dict(template, jax.device_get(restored))

  def _restore_state(self, step: int, template: dict) -> dict:
    restore = lambda tree: self.manager.restore(step, args=ocp.args.Composite(**{
        _STATE: ocp.args.StandardRestore(tree)}))[_STATE]
    try:
      return restore(template)
    except Exception as e:  # pylint: disable=broad-except
      saved = self.manager.item_metadata(step)[_STATE]
      missing = set(template) - set(saved or ())
      if not _is_structure_mismatch(e) or not missing or not missing <= set(_ADDED_FIELDS):
        raise
      restored = restore({k: v for k, v in template.items() if k not in missing})
      return {**restored, **{k: restored[_ADDED_FIELDS[k]] for k in missing}}

  def data_position(self, step: int) -> Optional[dict]:
    """The data position saved with the checkpoint of `step`; None where there is none (a checkpoint
    of in-memory input)."""
    if not os.path.isdir(os.path.join(self.directory, str(step), _DATA)):
      return None
    return self.manager.restore(step, args=ocp.args.Composite(**{_DATA: ocp.args.JsonRestore()}))[_DATA]

  def restore_latest(self, template: GANState) -> Optional[GANState]:
    """The newest readable checkpoint as a state shaped like `template`, or None if there is none.

    A checkpoint that fails to load, or holds non-finite parameters (never written by the trainer, whose
    NaN guard saves nothing from a diverged state), is moved to `checkpoints_corrupt/` (kept for
    inspection, never deleted) and the previous one is tried. Intact checkpoints of other models
    (another version's layer names) are left where they are: UserError.
    """
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        state = self.restore(step, template)
        params = (state.g_params, state.g_ema_params, state.d_params)
        if all(np.isfinite(p).all() for p in jax.tree.leaves(jax.device_get(params))):
          return state
        self._quarantine(step, "it holds non-finite parameters")
      except UserError:  # intact files of other models: moving them would lose the run
        raise
      except Exception as e:  # pylint: disable=broad-except
        # Orbax raises many types for damaged files (ValueError, OSError, tensorstore errors, ...).
        self._quarantine(step, f"it is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    return None

  def _quarantine(self, step: int, reason: str) -> None:
    quarantine = os.path.join(f"{self.directory}_corrupt", str(step))
    logging.warning("Checkpoint at step %d was not restored: %s; moved it to %s and trying the previous "
                    "one.", step, reason, quarantine)
    os.makedirs(os.path.dirname(quarantine), exist_ok=True)
    shutil.move(os.path.join(self.directory, str(step)), quarantine)
    self.manager.reload()


class _ReportedReadErrors(std_logging.Filter):
  """Drops asyncio's "Task (or Future) exception was never retrieved" records of failed checkpoint reads.

  Orbax reads a checkpoint's arrays in concurrent asyncio tasks; when the files are damaged every task
  fails, restore raises the first error (reported by its caller: one warning line of `restore_latest`
  or of gan_jax.serve) and closes its loop without awaiting the others
  (asyncio_utils._run_sync_via_new_loop), whose errors asyncio then logs with a traceback each when
  their futures are collected (timing-dependent: seen on CI 2026-12-02). Only errors that name a
  checkpoint directory `Checkpoints.restore` tried are dropped: those are the one already reported.
  """

  def __init__(self):
    super().__init__()
    self.paths = set()

  def filter(self, record: std_logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not (error is not None and "exception was never retrieved" in record.getMessage()
                and any(path in str(error) for path in self.paths))


_DUPLICATE_READ_ERRORS = _ReportedReadErrors()
std_logging.getLogger("asyncio").addFilter(_DUPLICATE_READ_ERRORS)

_EXPORTED_STEP = "step.txt"


def exported_step(workdir: str) -> Optional[int]:
  """The step of the complete set of exports in `workdir`, or None (none yet, or cut short)."""
  try:
    with open(os.path.join(workdir, "export", _EXPORTED_STEP)) as f:
      return int(f.read())
  except (OSError, ValueError):
    return None


def export_models(workdir: str, state: GANState) -> str:
  """Saves the final variables alone, ready for `module.apply`: `<workdir>/export/generator` (the EMA
  weights, which samples and evaluation use), `generator_raw` (the trained weights) and
  `discriminator`; then `step.txt`, written last, says that the set is complete and of which step."""
  export_dir = os.path.join(os.path.abspath(workdir), "export")
  marker = os.path.join(export_dir, _EXPORTED_STEP)
  if jax.process_index() == 0 and os.path.exists(marker):
    os.remove(marker)  # the set is incomplete until the new one is written
  checkpointer = ocp.StandardCheckpointer()
  exports = {"generator": state.generator_variables(ema=True),
             "generator_raw": state.generator_variables(ema=False),
             "discriminator": {"params": state.d_params, "batch_stats": state.d_batch_stats}}
  # Host arrays carry no device layout: the exports restore on any machine, whatever its devices.
  exports = jax.device_get(exports)
  for name, variables in exports.items():
    checkpointer.save(os.path.join(export_dir, name), variables, force=True)
  checkpointer.wait_until_finished()
  if jax.process_index() == 0:
    files.write_text(marker, str(int(jax.device_get(state.step))))
  return export_dir
