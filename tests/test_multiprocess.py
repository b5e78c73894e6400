"""A real multi-process run: 2 processes on localhost (jax.distributed, gloo collectives on CPU), 2
simulated devices each, against one process with 4 devices and the same global batch.

Each host reads and permutes only its own shard of the data, so the two runs draw their batches in
different orders (also when they stream it). The dataset is one image repeated: then every global batch is the same in both runs,
and what is compared is the distributed machinery itself (global-batch-keyed randomness, cross-process
gradient and BatchNorm averages, checkpoints written by the processes together, resume)."""
import os
import socket

import jax
import numpy as np
import orbax.checkpoint as ocp
from PIL import Image

from conftest import TINY_FLAGS, CliProcess, run_cli, xla_flags_with_devices


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run_two_processes(args):
  """Runs the two processes to the end; returns their logs (stdout and stderr)."""
  port = _free_port()
  env = {"XLA_FLAGS": xla_flags_with_devices(2)}
  processes = [CliProcess("gan_jax.main", *args, "--distributed", f"--coordinator_address=127.0.0.1:{port}",
                          "--num_processes=2", f"--process_id={i}", env=env) for i in range(2)]
  results = [process.wait(timeout=600) for process in processes]
  for result in results:
    assert result.returncode == 0, result.stderr[-3000:]
  return [result.stdout + result.stderr for result in results]


def _exported(workdir):
  variables = ocp.StandardCheckpointer().restore(os.path.join(workdir, "export", "generator_raw"))
  return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(variables)])


def test_two_processes_train_like_one_process_with_as_many_devices(tmp_path):
  from gan_jax import import_images  # pylint: disable=g-import-not-at-top
  # 8x8: DCGAN's smallest size, the same distributed machinery in the smallest programs (as in
  # multidevice_check.py).
  image = np.random.RandomState(0).randint(0, 256, (8, 8, 3), np.uint8)
  os.makedirs(tmp_path / "src" / "only")
  for i in range(16):
    Image.fromarray(image).save(tmp_path / "src" / "only" / f"{i}.png")
  data_dir = str(tmp_path / "tfds")
  import_images.import_images(str(tmp_path / "src"), "same_image", data_dir)
  common = ["--dataset=same_image", f"--data_dir={data_dir}", "--batch_size=8", "--num_steps=10",
            "--config.image_size=8", *TINY_FLAGS]

  single = tmp_path / "single"
  result = run_cli("gan_jax.main", *common, f"--workdir={single}",
                   env={"XLA_FLAGS": xla_flags_with_devices(4)})
  assert result.returncode == 0, result.stderr[-3000:]

  multi = tmp_path / "multi"
  logs = _run_two_processes([*common, f"--workdir={multi}"])
  for i, log in enumerate(logs):
    assert f"same_image[train] shard {i}/2" in log  # each process reads its own half
    assert "with 4 devices" in log
  difference = np.abs(_exported(single) - _exported(multi)).max()
  print(f"max |2 processes - 1 process| over G's parameters: {difference:.2e}")
  # G's weights after 10 Adam steps of 2e-4 (each can move 2e-3): the runs average the same 4 device
  # gradients in another order (gloo across processes), a relative ~1e-7 that Adam passes on unamplified
  # unless a gradient is itself rounding noise, which none of this DCGAN's is (no bias before a
  # BatchNorm; measured 1.2e-7 on 8x8 images, 2.0e-6 on 32x32). A wrong shard, key or average moves
  # weights by ~lr per step, 2e-4 or more.
  assert difference < 1e-4, difference
  assert sorted(os.listdir(multi / "checkpoints")) == sorted(os.listdir(single / "checkpoints"))

  # Streamed input (gan_jax.data.streaming): each process streams its own shard and places its rows of the
  # global batch; the result is the same.
  streamed = tmp_path / "streamed"
  logs = _run_two_processes([*common, "--input_pipeline=stream", f"--workdir={streamed}"])
  assert all("images/host, streamed" in log for log in logs)
  difference = np.abs(_exported(single) - _exported(streamed)).max()
  print(f"max |2 processes streamed - 1 process in memory| over G's parameters: {difference:.2e}")
  assert difference < 1e-4, difference

  # The two-process run resumes from the checkpoint the processes wrote together, with the data position
  # saved in it.
  logs = _run_two_processes([*[a for a in common if a != "--num_steps=10"], "--num_steps=15",
                             "--input_pipeline=stream", f"--workdir={streamed}"])
  assert all(f"Resuming {streamed} from step 10" in log for log in logs)
  assert not any("has no streaming data position" in log for log in logs)
