"""How long a checkpoint save stalls training: Orbax's synchronous save against its asynchronous one.

    python benchmarks/checkpoint_stall.py --preset=dcgan --saves=5

Saves the full training state of a preset (G, EMA, D, both Adam states: what the trainer saves) --saves
times with each mode, with --gap_seconds between saves standing in for the training steps in between,
and prints per mode the median stall (the time `Checkpoints.save` holds the training loop) and the time
the last write still needed after the loop went on (`wait`).
"""
import os
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import experiments  # pylint: disable=g-import-not-at-top
from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
from gan_jax import train  # pylint: disable=g-import-not-at-top
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top

_PRESET = flags.DEFINE_string("preset", "dcgan", "Preset whose state is saved: experiments/<name>.py.")
_SAVES = flags.DEFINE_integer("saves", 5, "Saves per mode.")
_GAP = flags.DEFINE_float("gap_seconds", 2.0, "Seconds between saves (the training steps in between).")


def measure(state, asynchronous: bool, saves: int, gap_seconds: float):
  """(median stall s, final wait s) of `saves` saves in a fresh directory."""
  with tempfile.TemporaryDirectory() as workdir:
    checkpoints = checkpointing.Checkpoints(workdir, keep=2, asynchronous=asynchronous)
    stalls = []
    for i in range(saves):
      state = state.replace(step=state.step + 1)
      start = time.perf_counter()
      checkpoints.save(state)
      stalls.append(time.perf_counter() - start)
      time.sleep(gap_seconds)
    start = time.perf_counter()
    checkpoints.wait()
    return float(np.median(stalls)), time.perf_counter() - start


def main(argv):
  del argv
  try:
    config = experiments.load_preset(_PRESET.value)
  except UserError as e:
    sys.exit(f"error: {e}")
  state = train.create_train_state(config, jax.random.PRNGKey(0), (config.image_size,) * 2 + (3,),
                                   num_classes=10 if config.conditional else 0)
  megabytes = sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20
  print(f"{_PRESET.value}: state {megabytes:.1f} MiB, {_SAVES.value} saves {_GAP.value:g} s apart, "
        f"{jax.devices()[0].platform}")
  print("| mode | stall per save, median (ms) | final wait (ms) |\n| --- | --- | --- |")
  for asynchronous in (False, True):
    stall, wait = measure(state, asynchronous, _SAVES.value, _GAP.value)
    print(f"| {'asynchronous' if asynchronous else 'synchronous'} | {stall * 1e3:.0f} | {wait * 1e3:.0f} |")


if __name__ == "__main__":
  app.run(main)
