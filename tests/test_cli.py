"""`python -m gan_jax.main` as a user runs it: one clear error line for bad input, nothing lost."""
import os
import shutil
import signal

import pytest

from conftest import TINY_FLAGS, CliProcess, damage_checkpoint, run_cli, run_cli_cases, xla_flags_with_devices


def _error_line(result):
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("error: "), result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  return lines[-1]


BAD_INPUT = [
    (["--batch_size=-3"], "--batch_size=-3 must be a positive integer"),
    (["--batch_size=abc"], "invalid literal"),
    (["--config.no_such_field=1"], "the config has no field"),
    (["--config.g_widht=1"], 'the config has no field \'g_widht\'; Did you mean "g_width"'),
    (["--config=experiments/no_such_preset.py"], "cannot load the --config file ([Errno 2] No such file"),
    (["--g_lr=0"], "--g_lr=0.0 must be > 0"),
    (["--g_b1=1.5"], "must be in [0, 1)"),
    (["--num_steps=0", "--num_epochs=0"], "set --num_steps or --num_epochs"),
    (["--log_every=7"], "must be a multiple of --steps_per_call"),
    (["--model=vit"], "--model=vit is unknown"),
    (["--loss=gan"], "--loss=gan is unknown; choose one of nonsaturating, hinge, wgan, lsgan, rpgan"),
    (["--augment=color,rotate"], "names unknown augmentations ['rotate']"),
    (["--ada_target=0.6"], "--augment is empty"),
    (["--config=experiments/biggan_cifar10.py", "--latent_dim=99"], "BigGAN splits latent_dim=99 into 4"),
    (["--config=experiments/sngan.py", "--config.model_args.attention_resolution=32"], "choose one of (8, 16)"),
    (["--model=resnet", "--config.model_args.attention_resolution=8"],
     "--config.model_args.attention_resolution is not a setting of the preset's architecture"),
    (["--model=stylegan2", "--batch_size=6"], "mbstd_group=4 must divide the per-device batch of 6"),
    (["--loss=hinge", "--config.label_smoothing=0.1"], "--label_smoothing works with"),
    (["--dataset=no_such_data"], "unknown dataset 'no_such_data'"),
    (["--dataset=cifar10"], "cannot be prepared here: TensorFlow, which tfds needs to prepare it, is not installed"),
]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
  """[(its directory, its CompletedProcess)] per BAD_INPUT case, each run by gan_jax.main."""
  dirs = [tmp_path_factory.mktemp(f"bad_input_{i}") for i in range(len(BAD_INPUT))]
  results = run_cli_cases("gan_jax.main", [[f"--workdir={d / 'run'}", f"--data_dir={d / 'tfds'}", *flags]
                                           for d, (flags, _) in zip(dirs, BAD_INPUT)])
  return list(zip(dirs, results))


@pytest.mark.parametrize("case", range(len(BAD_INPUT)), ids=[" ".join(f) for f, _ in BAD_INPUT])
def test_bad_input_is_one_clear_line(bad_input_runs, case):
  directory, result = bad_input_runs[case]
  assert BAD_INPUT[case][1] in _error_line(result)
  assert result.seconds < 60  # never waits on a download
  assert not os.path.exists(directory / "tfds" / "downloads" / "extracted" / "cifar10")


def test_batch_not_divisible_by_devices(tmp_path, image_dataset):
  data_dir, name = image_dataset
  result = run_cli("gan_jax.main", f"--dataset={name}", f"--data_dir={data_dir}",
                   f"--workdir={tmp_path / 'run'}", "--batch_size=6",
                   env={"XLA_FLAGS": xla_flags_with_devices(4)})
  assert "not divisible by the 4 devices" in _error_line(result)


def test_unwritable_workdir(tmp_path, image_dataset):
  data_dir, name = image_dataset
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  result = run_cli("gan_jax.main", f"--dataset={name}", f"--data_dir={data_dir}",
                   f"--workdir={blocker / 'run'}", "--batch_size=4")
  assert "cannot write to workdir" in _error_line(result)
  assert blocker.read_text() == "not a directory"


def test_settings_the_data_rejects_leave_nothing_behind(tmp_path, image_dataset):
  data_dir, name = image_dataset
  result = run_cli("gan_jax.main", f"--dataset={name}", f"--data_dir={data_dir}",
                   f"--workdir={tmp_path / 'run'}", "--batch_size=64")
  assert "lower --batch_size" in _error_line(result)
  assert not os.path.exists(tmp_path / "run")  # a corrected command may use the same workdir


def _run_flags(image_dataset, workdir):
  data_dir, name = image_dataset
  return [f"--dataset={name}", f"--data_dir={data_dir}", f"--workdir={workdir}", "--batch_size=4", *TINY_FLAGS]


@pytest.fixture(scope="module")
def ten_step_run(tmp_path_factory, image_dataset):
  """A finished 10-step run of _run_flags (checkpoints at steps 5 and 10), trained once: the tests that
  resume it work on copies (one command-line run in all, where each trained its own)."""
  workdir = tmp_path_factory.mktemp("ten_steps") / "run"
  result = run_cli("gan_jax.main", *_run_flags(image_dataset, workdir), "--num_steps=10")
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def _copy_of(run, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(run, workdir)
  return workdir


def test_divergence_stops_the_run_and_saves_nothing_from_it(tmp_path, image_dataset, ten_step_run):
  workdir = _copy_of(ten_step_run, tmp_path)
  common = _run_flags(image_dataset, workdir)
  # Absurd learning rates (resuming with new ones is allowed) blow the run up.
  result = run_cli("gan_jax.main", *common, "--num_steps=200", "--g_lr=1e6", "--d_lr=1e6")
  line = _error_line(result)
  assert "training diverged at step" in line and "the last good checkpoint (step 10) is kept" in line, line
  assert "Try lower learning rates (now --g_lr=1e+06 --d_lr=1e+06" in line
  diverged_at = int(line.split("training diverged at step ")[1].split()[0])
  assert diverged_at > 10
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit()) == [5, 10]
  assert sorted(os.listdir(workdir / "samples")) == ["step_0000005.png", "step_0000010.png"]
  with open(workdir / "losses.csv") as f:
    rows = f.read().strip().splitlines()[1:]
  assert all("nan" not in row and "inf" not in row for row in rows), rows
  assert int(rows[-1].split(",")[0]) < diverged_at
  # Sane learning rates continue from the last good checkpoint.
  result = run_cli("gan_jax.main", *common, "--num_steps=15")
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"Resuming {workdir} from step 10" in result.stderr


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path, image_dataset):
  data_dir, name = image_dataset
  workdir = tmp_path / "run"
  args = [f"--dataset={name}", f"--data_dir={data_dir}", f"--workdir={workdir}", "--batch_size=4",
          "--checkpoint_every=50000", "--sample_every=50000", *TINY_FLAGS[:-3], "--steps_per_call=100",
          "--log_every=100"]
  process = CliProcess("gan_jax.main", *args, "--num_steps=100000")
  for line in process.lines():  # wait until the second call runs
    if "step 100/" in line:
      break
  process.send_signal(signal.SIGTERM)
  result = process.wait(timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Stopped by SIGTERM" in result.stderr
  saved = [int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit()]
  # On CPU the stop comes after the current step, not at the end of the 100-step call.
  assert len(saved) == 1 and 100 < saved[0] < 200, saved
  # The same command continues from there (here to a nearer end).
  result = run_cli("gan_jax.main", *args, f"--num_steps={saved[0] + 5}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"Resuming {workdir} from step {saved[0]}" in result.stderr
  assert os.path.exists(workdir / "export" / "generator")


def test_a_killed_run_resumes_and_its_workdir_is_taken_over(tmp_path, image_dataset):
  data_dir, name = image_dataset
  workdir = tmp_path / "run"
  args = [f"--dataset={name}", f"--data_dir={data_dir}", f"--workdir={workdir}", "--batch_size=4",
          *TINY_FLAGS]
  process = CliProcess("gan_jax.main", *args, "--num_steps=100000")
  for line in process.lines():  # kill -9 once checkpoints exist, maybe while one is being written
    if "step 20/" in line:
      break
  # A second run on the same workdir is refused while this one holds it.
  second = run_cli("gan_jax.main", *args, "--num_steps=100000")
  assert f"the workdir {workdir} is in use by another run (pid {process.pid}" in _error_line(second)
  process.kill()
  assert process.wait(timeout=60).returncode == -signal.SIGKILL
  saved = max(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
  result = run_cli("gan_jax.main", *args, f"--num_steps={saved + 5}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Taking over" in result.stderr and f"Resuming {workdir} from step {saved}" in result.stderr


def test_a_corrupt_checkpoint_is_one_warning_line(tmp_path, image_dataset, ten_step_run):
  workdir = _copy_of(ten_step_run, tmp_path)
  common = _run_flags(image_dataset, workdir)
  damage_checkpoint(workdir / "checkpoints" / "10")  # the latest checkpoint's data
  result = run_cli("gan_jax.main", *common, "--num_steps=15")
  assert result.returncode == 0, result.stderr[-2000:]
  warnings = [line for line in result.stderr.splitlines() if "was not restored" in line]
  assert len(warnings) == 1 and "moved it to" in warnings[0], result.stderr[-3000:]
  assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr[-3000:]
  assert f"Resuming {workdir} from step 5" in result.stderr


def test_the_tests_command_runner_refuses_a_jax_setting_it_cannot_apply():
  """conftest.run_cli forks commands from a process that imported jax, which read $JAX_* then: a command
  that needs another value must be run with subprocess, and is told so instead of running with the old."""
  result = run_cli("gan_jax.main", "--batch_size=-3", env={"JAX_PLATFORMS": "cpu,tpu"})
  assert result.returncode == 2 and "['JAX_PLATFORMS'] differ from the server's" in result.stderr
  result = run_cli("gan_jax.main", "--batch_size=-3", env={"GAN_JAX_SOME_SETTING": "1"})
  assert result.returncode != 0 and "batch_size" in _error_line(result)
