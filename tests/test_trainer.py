"""End to end under tfds's mock data: artifacts, exact resume, corrupt checkpoints."""
import csv
import errno
import json
import math
import os
import shutil

import imageio.v2 as imageio
import jax
import numpy as np
import orbax.checkpoint as ocp
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow_datasets as tfds

from gan_jax import artifacts
from gan_jax import generation
from gan_jax import trainer
from gan_jax.errors import UserError
from conftest import ORBAX_CLOSED_LOOP, TINY_IMAGE_SIZE, damage_checkpoint, tiny_config


def _train(workdir, **overrides):
  with tfds.testing.mock_data(num_examples=64):
    return trainer.train_and_evaluate(tiny_config(**overrides), str(workdir))


def _exported_generator(workdir):
  return jax.tree.leaves(ocp.StandardCheckpointer().restore(os.path.join(workdir, "export", "generator")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A 20-step run, and the same run done as 10 steps + resume to 20."""
  root = tmp_path_factory.mktemp("runs")
  straight, resumed = root / "straight", root / "resumed"
  _train(straight, num_steps=20)
  first = _train(resumed, num_steps=10)
  second = _train(resumed, num_steps=20)
  return straight, resumed, first, second


def test_run_leaves_every_artifact(runs):
  workdir = runs[0]
  samples = sorted(os.listdir(workdir / "samples"))
  assert samples == [f"step_{s:07d}.png" for s in (5, 10, 15, 20)]
  grid = Image.open(workdir / "samples" / samples[-1])
  grid.verify()
  real = np.asarray(Image.open(workdir / "real_samples.png"))
  # A 5x5 grid of the tiny run's images, 2-pixel padding, upscaled 2x.
  assert real.shape[:2] == (2 * (5 * (TINY_IMAGE_SIZE + 2) + 2),) * 2
  frames = imageio.mimread(workdir / "progress.gif")
  assert len(frames) == 4
  Image.open(workdir / "losses.png").verify()
  with open(workdir / "losses.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
  for row in rows:
    assert set(row) == {"step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "images_per_sec", "real_sign"}
    assert all(math.isfinite(float(v)) for v in row.values())
  assert float(rows[-1]["epoch"]) == pytest.approx(20 / (64 // 16))
  assert (workdir / "config.json").exists()
  assert sorted(os.listdir(workdir / "checkpoints")) == ["10", "15", "20"]  # keep_checkpoints=3
  assert len(_exported_generator(workdir)) > 0


def test_tensorboard_has_every_logged_row_and_grid_once_also_across_a_resume(runs):
  workdir = runs[1]
  events = event_accumulator.EventAccumulator(str(workdir / "tensorboard"),
                                              size_guidance={"scalars": 0, "images": 0})
  events.Reload()
  with open(workdir / "losses.csv") as f:
    rows = list(csv.DictReader(f))
  for column in ("d_loss", "g_loss", "d_real", "d_fake", "images_per_sec", "real_sign"):
    logged = events.Scalars(f"train/{column}")
    assert [e.step for e in logged] == [5, 10, 15, 20]
    np.testing.assert_allclose([e.value for e in logged], [float(r[column]) for r in rows], rtol=1e-6)
  grid = Image.open(workdir / "samples" / "step_0000020.png")
  # TensorBoard gets the grids without the PNG files' 2x upscaling.
  assert [(i.step, 2 * i.width, 2 * i.height) for i in events.Images("samples")] == [
      (step, grid.width, grid.height) for step in (5, 10, 15, 20)]


def test_resume_is_bitwise_exact(runs):
  straight, resumed, first, second = runs
  assert first["step"] == 10 and second["step"] == 20
  for a, b in zip(_exported_generator(straight), _exported_generator(resumed), strict=True):
    np.testing.assert_array_equal(a, b)
  with open(straight / "losses.csv") as f1, open(resumed / "losses.csv") as f2:
    straight_rows, resumed_rows = list(csv.DictReader(f1)), list(csv.DictReader(f2))
  keys = ("step", "d_loss", "g_loss", "d_real", "d_fake")
  assert [[r[k] for k in keys] for r in straight_rows] == [[r[k] for k in keys] for r in resumed_rows]


@ORBAX_CLOSED_LOOP
def test_corrupt_latest_checkpoint_falls_back_to_previous(runs, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(runs[0], workdir)
  shutil.rmtree(workdir / "export")
  latest = workdir / "checkpoints" / "20"
  damage_checkpoint(latest)
  summary = _train(workdir, num_steps=20)
  assert summary["step"] == 20
  assert os.path.isdir(workdir / "checkpoints_corrupt" / "20")  # kept, not deleted
  for a, b in zip(_exported_generator(runs[0]), _exported_generator(workdir), strict=True):
    np.testing.assert_array_equal(a, b)  # redone from step 15: the same result


def test_workdir_with_other_settings_is_refused(runs, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(runs[0], workdir)
  before = sorted(os.listdir(workdir / "checkpoints"))
  with pytest.raises(UserError, match="batch_size: 16 in the workdir, 32 now"):
    _train(workdir, num_steps=30, batch_size=32)
  assert sorted(os.listdir(workdir / "checkpoints")) == before


def test_a_workdir_of_the_flat_config_layout_resumes_and_loads(runs, tmp_path):
  """Before the architectures owned their settings (config.model_args), config.json held them as fields
  of its own, with those of every other architecture; such a workdir resumes and loads as before."""
  workdir = tmp_path / "run"
  shutil.copytree(runs[0], workdir)
  with open(workdir / "config.json") as f:
    recorded = json.load(f)
  flat = {k: v for k, v in recorded.items() if k != "model_args"}
  flat.update(recorded["model_args"])
  flat.update(embed_dim=128, mbstd_group=4, mapping_layers=2, attention_resolution=0, g_spectral_norm=False)
  with open(workdir / "config.json", "w") as f:
    json.dump(flat, f)
  config, state, _ = generation.load_run(str(workdir))
  assert dict(config.model_args) == recorded["model_args"] and int(state.step) == 20
  assert _train(workdir, num_steps=25)["step"] == 25
  with pytest.raises(UserError, match="model_args: .*'d_dropout': 0.3.* in the workdir, .*'d_dropout': 0.5"):
    _train(workdir, num_steps=30, model_args=dict(d_dropout=0.5))


def test_full_disk_is_one_clear_error_and_keeps_checkpoints(runs, tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  shutil.copytree(runs[0], workdir)

  def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(workdir / "losses.csv"))

  monkeypatch.setattr(artifacts.LossLog, "append", disk_full)
  with pytest.raises(UserError, match=r"No space left on device \(.*losses\.csv\).*resume from the last checkpoint"):
    _train(workdir, num_steps=30)
  assert "20" in os.listdir(workdir / "checkpoints")


def test_unknown_dataset_writes_nothing(tmp_path):
  with pytest.raises(UserError, match="unknown dataset"):
    trainer.train_and_evaluate(tiny_config(dataset="no_such_dataset"), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
