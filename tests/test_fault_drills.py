"""Fault drills: a run killed with SIGKILL at random moments (some right as a checkpoint is being written)
and started again until it finishes ends exactly where an uninterrupted run ends."""
import csv
import os
import random
import threading

import jax
import numpy as np
import orbax.checkpoint as ocp

from conftest import TINY_FLAGS, CliProcess, run_cli

NUM_STEPS = 40


def _final_variables(workdir):
  leaves = []
  for name in ("generator_raw", "generator", "discriminator"):
    variables = ocp.StandardCheckpointer().restore(os.path.join(workdir, "export", name))
    leaves += [np.asarray(x) for x in jax.tree.leaves(variables)]
  return leaves


def _logged_steps(workdir):
  with open(os.path.join(workdir, "losses.csv"), newline="") as f:
    return [int(row["step"]) for row in csv.DictReader(f)]


def _run_until_killed(args, kill_after_line: str, delay: float) -> int:
  """Starts the run; SIGKILLs it `delay` s after it logs a line containing `kill_after_line`. Returns
  the exit code (0 when it finished first)."""
  process = CliProcess("gan_jax.main", *args)
  for line in process.lines():
    if kill_after_line in line:
      threading.Timer(delay, process.kill).start()
      break
  return process.wait(timeout=300).returncode


def test_killed_and_restarted_runs_end_bitwise_equal_to_an_uninterrupted_run(tmp_path, image_dataset):
  data_dir, name = image_dataset
  common = [f"--dataset={name}", f"--data_dir={data_dir}", "--batch_size=4", f"--num_steps={NUM_STEPS}",
            *TINY_FLAGS]
  straight = tmp_path / "straight"
  result = run_cli("gan_jax.main", *common, f"--workdir={straight}")
  assert result.returncode == 0, result.stderr[-2000:]

  drilled = tmp_path / "drilled"
  rng = random.Random(0)
  # Kill moments: right after a row is logged (the checkpoint of that step is being written then), a
  # random moment just after one, and a random moment into the training of a restarted run (after its
  # first compiled call; 20 steps and 4 checkpoints remain then, over a second on any CPU). Each must
  # land before the run ends. (A fourth kill, right after step 35's row, repeated the first's kind of
  # moment; each run costs ~14 s in the suite: 84 s for the test's 6 runs, 2026-12-03, AVX2 EPYC.)
  plan = [("step 10/", 0.0), ("step 20/", rng.uniform(0.0, 0.05)), ("First call", rng.uniform(0.0, 0.5))]
  for line, delay in plan:
    code = _run_until_killed([*common, f"--workdir={drilled}"], line, delay)
    assert code == -9, (line, delay, code)
  result = run_cli("gan_jax.main", *common, f"--workdir={drilled}")  # finishes the run
  assert result.returncode == 0, result.stderr[-2000:]

  for a, b in zip(_final_variables(straight), _final_variables(drilled), strict=True):
    np.testing.assert_array_equal(a, b)
  assert _logged_steps(drilled) == _logged_steps(straight) == list(range(5, NUM_STEPS + 1, 5))
