"""FID during training and `python -m gan_jax.evaluate` on a tiny run (real Inception weights, see
test_metrics_inception.py for where they come from)."""
import json
import math
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import evaluate
from gan_jax import trainer
from gan_jax.metrics import inception as inception_lib
from gan_jax.errors import UserError
from conftest import run_cli, tiny_config


@pytest.fixture(scope="module")
def weights_env():
  """Points load_inception() at the weights the metrics tests use (env var or default cache)."""
  try:
    return inception_lib.resolve_weights(os.environ.get(inception_lib.WEIGHTS_ENV))
  except UserError as e:
    pytest.fail(f"needs the FID Inception weights: {e}", pytrace=False)


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, weights_env):
  del weights_env
  workdir = tmp_path_factory.mktemp("eval_run")
  with tfds.testing.mock_data(num_examples=64):
    trainer.train_and_evaluate(tiny_config(num_steps=20, eval_every=10, eval_samples=16), str(workdir))
    result = evaluate.evaluate_run(str(workdir), num_samples=16, metric_names=("fid", "kid", "pr"))
  return workdir, result


def test_fid_during_training_keeps_the_best_checkpoint(evaluated_run):
  workdir, _ = evaluated_run
  with open(workdir / "metrics.json") as f:
    history = json.load(f)
  assert {"10", "20"} <= set(history)
  fids = {step: history[step]["fid"] for step in ("10", "20")}
  assert all(math.isfinite(v) and v > 0 for v in fids.values())
  best = min(fids, key=fids.get)
  assert os.listdir(workdir / "best") == [best]


def test_evaluate_run_records_every_metric(evaluated_run):
  workdir, result = evaluated_run
  assert result["step"] == 20 and result["num_samples"] == 16
  for name in ("fid", "kid", "precision", "recall"):
    assert math.isfinite(result[name]), result
  assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
  with open(workdir / "metrics.json") as f:
    assert json.load(f)["20"]["kid"] == result["kid"]


def test_load_samples_checks_the_array(tmp_path):
  good = tmp_path / "good.npz"
  np.savez(good, images=np.zeros((4, 8, 8, 3), np.uint8))
  assert evaluate.load_samples(str(good)).shape == (4, 8, 8, 3)
  bad = tmp_path / "bad.npz"
  np.savez(bad, images=np.zeros((4, 8, 8, 3), np.float32))
  with pytest.raises(UserError, match="expected uint8"):
    evaluate.load_samples(str(bad))


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one of --workdir=RUN or --samples=FILE.npz"),
    (["--metrics=fid,foo"], "unknown --metrics"),
    (["--samples=/no/such/file.npz"], "cannot read samples"),
    (["--workdir=/no/such/run"], "has no config.json"),
])
def test_evaluate_cli_errors(args, message, weights_env):
  del weights_env
  result = run_cli("gan_jax.evaluate", *args)
  assert result.returncode != 0
  assert message in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


def test_evaluate_cli_refuses_a_reference_larger_than_the_split(tmp_path, image_dataset, weights_env):
  del weights_env
  data_dir, name = image_dataset
  samples = tmp_path / "samples.npz"
  np.savez(samples, images=np.zeros((4, 32, 32, 3), np.uint8))
  result = run_cli("gan_jax.evaluate", f"--samples={samples}", f"--dataset={name}",
                   f"--data_dir={data_dir}", "--reference_size=100")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"error: --reference_size=100 must be between 1 and the 12 images of {name}[train], or 0 for the "
      "whole split")
