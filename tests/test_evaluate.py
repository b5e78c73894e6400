"""FID during training and `python -m gan_jax.evaluate` on a tiny run (real Inception weights, see
test_metrics_inception.py for where they come from); the class metrics of a conditional run and
precision/recall on VGG-16 features, with a cheap stand-in for the Inception network."""
import json
import math
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import jax

from gan_jax import evaluate
from gan_jax import generation
from gan_jax import metrics
from gan_jax import trainer
from gan_jax.metrics import inception as inception_lib
from gan_jax.metrics import vgg as vgg_lib
from gan_jax.errors import UserError
from conftest import StandInInception, run_cli, run_cli_cases, tiny_config
import torch_files


@pytest.fixture(scope="module")
def weights_env():
  """Points load_inception() at the weights the metrics tests use (env var or default cache)."""
  try:
    return inception_lib.resolve_weights(os.environ.get(inception_lib.WEIGHTS_ENV))
  except UserError as e:
    pytest.fail(f"needs the FID Inception weights: {e}", pytrace=False)


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
  """A run evaluated during training and after it, with a stand-in for the Inception network (what is
  checked is the trainer's and evaluate's bookkeeping; the network has its own tests)."""
  workdir = tmp_path_factory.mktemp("eval_run")
  stand_in = StandInInception()
  with tfds.testing.mock_data(num_examples=64), pytest.MonkeyPatch.context() as patch:
    patch.setattr(metrics, "load_inception", lambda *args, **kwargs: stand_in)
    trainer.train_and_evaluate(tiny_config(num_steps=20, eval_every=10, eval_samples=16), str(workdir))
    result = evaluate.evaluate_run(str(workdir), num_samples=16, metric_names=("fid", "kid", "pr"))
  assert stand_in.images_seen >= 3 * 16  # two evaluations during training and one after
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
  for name in ("fid", "kid", "precision_inception", "recall_inception"):
    assert math.isfinite(result[name]), result
  assert 0 <= result["precision_inception"] <= 1 and 0 <= result["recall_inception"] <= 1
  # Precision/recall as published need the VGG-16 weights; an unconditional run has no class metrics.
  assert not {"precision", "recall", "probe_accuracy", "intra_fid"} & set(result)
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
  # Labels beside the images (gan_jax.sample writes both) are the classes for the class metrics.
  assert evaluate.load_labels(str(good), 4) is None
  labelled = tmp_path / "labelled.npz"
  np.savez(labelled, images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.array([0, 1, 1, 0]))
  assert evaluate.load_samples(str(labelled)).shape == (4, 8, 8, 3)
  np.testing.assert_array_equal(evaluate.load_labels(str(labelled), 4), [0, 1, 1, 0])
  with pytest.raises(UserError, match="expected 5 class indices, one per image"):
    evaluate.load_labels(str(labelled), 5)


EVALUATE_ERRORS = [
    ([], "give exactly one of --workdir=RUN or --samples=FILE.npz"),
    (["--metrics=fid,foo"], "unknown --metrics"),
    (["--samples=/no/such/file.npz"], "cannot read samples"),
    (["--workdir=/no/such/run"], "has no config.json"),
    (["--workdir=/no/such/run", "--vgg16_weights=/no/such/vgg16.pth"],
     "VGG-16 weights /no/such/vgg16.pth do not exist; download torchvision's"),
]


@pytest.fixture(scope="module")
def evaluate_error_runs(weights_env):
  del weights_env
  return run_cli_cases("gan_jax.evaluate", [args for args, _ in EVALUATE_ERRORS])


@pytest.mark.parametrize("case", range(len(EVALUATE_ERRORS)), ids=[" ".join(a) for a, _ in EVALUATE_ERRORS])
def test_evaluate_cli_errors(evaluate_error_runs, case):
  result = evaluate_error_runs[case]
  assert result.returncode != 0
  assert EVALUATE_ERRORS[case][1] in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


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


def _narrow_vgg(directory):
  """A narrow VGG-16 (tests/test_metrics_vgg.py) with random weights, from a torchvision-layout file."""
  narrow = dict(widths=(2, 2, 4, 4, 4), hidden=8)
  rng = np.random.RandomState(0)
  state = {name: (rng.normal(size=shape) * 0.3).astype(np.float32)
           for name, shape in vgg_lib.torchvision_shapes(**narrow, num_classes=10).items()}
  path = os.path.join(directory, "vgg16_narrow.pth")
  torch_files.save_state_dict(path, state)
  return vgg_lib.load_vgg16(path, **narrow)


def test_class_metrics_of_a_conditional_run(tmp_path, monkeypatch):
  """FID during training adds the linear-probe accuracy; evaluate adds intra-FID where every class has
  enough images, and precision/recall on VGG-16 features with the VGG weights."""
  stand_in = StandInInception()
  monkeypatch.setattr(metrics, "load_inception", lambda *args, **kwargs: stand_in)
  # 10 images per class instead of 100: a small test.
  monkeypatch.setattr(metrics.classes, "INTRA_FID_MIN_PER_CLASS", 10)
  workdir = str(tmp_path / "run")
  # 200 mock images of 10 random classes: each class has more than 10 (2.4 standard deviations).
  with tfds.testing.mock_data(num_examples=200):
    trainer.train_and_evaluate(tiny_config(num_steps=10, eval_every=10, eval_samples=40,
                                           conditional=True), workdir)
    with open(os.path.join(workdir, "metrics.json")) as f:
      during_training = json.load(f)["10"]
    result = evaluate.evaluate_run(workdir, num_samples=100, inception=stand_in,
                                   metric_names=("fid", "pr", "probe", "intra_fid"),
                                   vgg=_narrow_vgg(str(tmp_path)))
    few = evaluate.evaluate_run(workdir, num_samples=99, inception=stand_in,
                                metric_names=("probe", "intra_fid"))
  assert 0 <= during_training["probe_accuracy"] <= 1
  assert 0 <= during_training["probe_accuracy_real_test"] <= 1
  assert "intra_fid" not in during_training  # left to evaluate: one FID per class
  for name in ("fid", "intra_fid", "precision", "recall", "precision_inception", "recall_inception",
               "probe_accuracy", "probe_accuracy_real_test"):
    assert math.isfinite(result[name]), (name, result)
  assert result["probe_accuracy_real_test"] == during_training["probe_accuracy_real_test"]  # one probe
  assert result["precision_protocol"].startswith("vgg16-w2x2x4x4x4-h8-")
  assert "intra_fid" not in few  # 9 images of class 9: below the minimum
  with open(os.path.join(workdir, "metrics.json")) as f:
    history = json.load(f)
  assert history["10"]["probe_accuracy"] == few["probe_accuracy"]  # the last evaluation of step 10


def test_conditional_sampling_draws_the_classes_asked_for(tmp_path):
  from gan_jax.train import create_train_state  # pylint: disable=g-import-not-at-top
  state = create_train_state(tiny_config(conditional=True), jax.random.PRNGKey(0), (32, 32, 3),
                             num_classes=3)
  (every_class, labels), = generation.generated_batches(state, 6, batch_size=6)
  (only_2, labels_2), = generation.generated_batches(state, 6, batch_size=6, class_index=2)
  np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2])
  np.testing.assert_array_equal(labels_2, [2] * 6)
  # The same latents: where both asked for class 2 the images agree, elsewhere the class changed them.
  np.testing.assert_array_equal(only_2[[2, 5]], every_class[[2, 5]])
  assert np.abs(only_2[[0, 1, 3, 4]].astype(int) - every_class[[0, 1, 3, 4]]).max() > 0


def test_weights_without_the_logits_head_say_so_in_one_line(caplog):
  stand_in = StandInInception()
  images = np.random.RandomState(0).randint(0, 256, (12, 8, 8, 3), dtype=np.uint8)
  reference = metrics.ReferenceStatistics.from_features(stand_in.features(images), "real", 12)
  with caplog.at_level("WARNING"):
    result = metrics.evaluate_images(images, reference, stand_in, metrics=("fid", "is"))
  assert "fid" in result and "is" not in result
  [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert warning == "No Inception Score: the stand-in has no logits head"
