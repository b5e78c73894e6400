"""Data parallelism: 8 simulated devices give the same training as 1 device for the same global batch,
with every option that draws randomness or averages over the batch switched on, and fused multi-step
calls (accelerators) the same as one-step calls (CPU), for data kept on the devices and for streamed
batches (multidevice_check.py)."""
import json
import os
import subprocess
import sys

from conftest import REPO, XLA_TEST_FLAGS


def test_eight_devices_match_one_device():
  env = dict(os.environ, XLA_FLAGS=f"{XLA_TEST_FLAGS} --xla_force_host_platform_device_count=8",
             PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]))
  result = subprocess.run([sys.executable, os.path.join(REPO, "tests", "multidevice_check.py")],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  diffs = json.loads(result.stdout.strip().splitlines()[-1])
  # Differences relative to how far the run moved each part of the state (multidevice_check.py says why
  # that is CPU-independent): float32 reduction order gives ~1e-6; 1e-3 leaves it a 100x margin, and the
  # planted bug (two devices sharing random streams) must land far above it, or the check proves nothing.
  bound = 1e-3
  for run in ("shard_map", "pmap", "fused", "stream_shard_map", "stream_pmap"):
    assert diffs[run] < bound, (run, diffs)
  assert diffs["control_misindexed_keys"] > 10 * bound, diffs
  # D's loss is a batch mean of O(1) terms: equal up to float32 rounding, relatively.
  assert diffs["shard_map_d_loss"] < 1e-5 and diffs["pmap_d_loss"] < 1e-5, diffs
