"""Shared test setup: a persistent XLA compilation cache (tests compile the same tiny models many times,
also in subprocesses), a fresh metrics cache, tiny configs and image folders."""
import os
import signal
import sys
import tempfile
import threading
import time

_CACHE = os.path.join(tempfile.gettempdir(), "gan_jax_test_xla_cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
# Unbounded, in every process (gan_jax's subprocesses too: compilation_cache.enable keeps this): a
# bounded cache reads the access-time files of all its entries before each write, which with the
# thousands of tiny programs the tests compile made the suite slower, and it cannot write at all into
# entries written unbounded (compilation_cache.enable says why).
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", "-1")
# Every program, however quickly compiled (jax caches only those over 1 s by default): at -O0 most of the
# suite's programs compile in under a second, and the subprocesses of the command-line tests compile the
# same ones again. Measured 2026-12-03 (AMD EPYC, AVX2, no AVX-512; cold cache, `pytest -n 0
# tests/test_cli.py`): 121.1 s with jax's 1 s threshold (3 entries written), 103.3 s with none (28).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests run tiny models for a few steps, so compiling dominates their time: LLVM at -O0 without its
# expensive passes. Measured 2026-12-02 on 2 cores (AMD EPYC, AVX2, no AVX-512; cold cache, first call
# of the tiny dcgan train step of tiny_config, one process after the other): 12.6 s to compile and run
# at -O1, 8.0 s at -O0, and a step then takes 31 against 51 ms; the everything-on step of
# multidevice_check.py 19.5 against 14.8 s (9 against 31 ms a step). Tests that train for thousands of
# steps compile at -O1 instead (the `optimized_programs` fixture). Subprocesses inherit the flags.
XLA_TEST_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_TEST_FLAGS}".strip()


def xla_flags_with_devices(count: int) -> str:
  """XLA_FLAGS for a subprocess with `count` simulated CPU devices, keeping the flags this suite runs
  with (the user's too: `--xla_cpu_max_isa=AVX2` rehearses an AVX2-only CPU's code, README)."""
  return f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count={count}"

# Converted Inception weights and reference statistics go to a fresh cache: no stale statistics of an
# earlier run's (mock) data. The weights themselves come from $GAN_JAX_INCEPTION_WEIGHTS (README.md).
os.environ["GAN_JAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="gan_jax_test_cache_")

import numpy as np  # pylint: disable=g-import-not-at-top
from PIL import Image  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

@pytest.fixture
def optimized_programs(monkeypatch):
  """Programs compiled while the test runs are optimised by LLVM at -O1 (XLA_TEST_FLAGS: -O0): for tests
  whose time goes into running their programs, not into compiling them. Patches `jax.jit` for calls made
  during the test (gan_jax's DataParallel compiles its steps so), which puts the level into the
  compiler options and so into the compilation cache's key."""
  import jax  # pylint: disable=g-import-not-at-top
  jit = jax.jit

  def optimized_jit(*args, **kwargs):
    kwargs["compiler_options"] = {"xla_backend_optimization_level": 1, **(kwargs.get("compiler_options") or {})}
    return jit(*args, **kwargs)
  monkeypatch.setattr(jax, "jit", optimized_jit)


# Orbax (asyncio_utils._run_sync_via_new_loop) closes the event loop of a failed restore without awaiting
# its other tasks, on purpose (asyncio.run's teardown races across threads); the reads of the damaged
# checkpoint's other arrays finish afterwards, and their callbacks meet the closed loop: "Event loop is
# closed", raised in Orbax's threads, after the restore, with nothing written. Not ours to close.
ORBAX_CLOSED_LOOP = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

def damage_checkpoint(directory):
  """Overwrites every data file of the Orbax checkpoint in `directory` (its OCDBT manifest and chunks)."""
  for root, _, files in os.walk(directory):
    for name in files:
      if "ocdbt" in root or name.endswith("manifest.ocdbt"):
        with open(os.path.join(root, name), "wb") as f:
          f.write(b"garbage")


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# Command-line overrides that make any run tiny. 8x8 images (TINY_IMAGE_SIZE): DCGAN's smallest size, one
# resolution step in G and D (the data pipeline resizes the 32x32 test images). Measured 2026-12-06 (AMD
# EPYC, 2 cores, AVX2, no AVX-512; -O0, no cache): the tiny train step lowers in 1.5 s and compiles in
# 3.4 s at 32x32, in 0.5 and 1.7 s at 8x8.
TINY_IMAGE_SIZE = 8
TINY_FLAGS = ["--config.g_width=8", "--config.d_width=8", "--latent_dim=16",
              f"--config.image_size={TINY_IMAGE_SIZE}", "--steps_per_call=5", "--log_every=5", "--sample_every=5",
              "--checkpoint_every=5", "--config.num_samples=16"]


def tiny_config(model_args=None, **overrides):
  """The dcgan preset at tiny widths and TINY_IMAGE_SIZE with config `overrides`; `model_args` sets the
  architecture's own settings (those of overrides["model"] where that switches the architecture)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from experiments import dcgan  # pylint: disable=g-import-not-at-top
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  config = dcgan.get_config()
  config.update(dict(g_width=8, d_width=8, latent_dim=16, image_size=TINY_IMAGE_SIZE, batch_size=16,
                     num_steps=10, steps_per_call=5, log_every=5, sample_every=5, checkpoint_every=5,
                     num_samples=16))
  if overrides.get("model", config.model) != config.model:
    config.model_args = ml_collections.ConfigDict(models.switch_args(config.model_args, overrides["model"]))
  config.update(overrides)
  config.model_args.update(model_args or {})
  return config


# The modules that take longest go first, longest first, so that neither of the two xdist workers starts
# one of them when the other has nothing left (pytest.ini: --dist loadscope hands out whole modules in
# collection order). Seconds of a worker's time each, cold cache, 2026-12-04 (2-core AMD EPYC with
# AVX-512): presets 96, cli 80, learning 66, benchmarks 63, parallel 62, metrics_inception 45,
# multiprocess 44, train_features 41, layers 34, evaluate 33, models_resnet 28, fault_drills 27,
# streaming 26, augment 23; the rest under 22. In the order of 2026-12-01 (the first five and
# multiprocess, cli, learning, evaluate) train_features ran last, alone, for the suite's last 28 s.
_LONGEST_FIRST = ("test_presets.py", "test_cli.py", "test_learning.py", "test_benchmarks.py",
                  "test_parallel.py", "test_metrics_inception.py", "test_multiprocess.py",
                  "test_train_features.py", "test_layers.py", "test_evaluate.py", "test_models_resnet.py",
                  "test_fault_drills.py", "test_streaming.py", "test_augment.py")


def pytest_collection_modifyitems(items):
  rank = lambda item: (_LONGEST_FIRST.index(item.path.name) if item.path.name in _LONGEST_FIRST
                       else len(_LONGEST_FIRST))
  items.sort(key=rank)  # stable: the order within a module is kept


class StandInInception:
  """Cheap features that depend on every pixel, in place of the Inception network (no weights, nothing
  to compile): for tests of the metrics' plumbing. The network itself is tested against its published
  reference in test_metrics_inception.py. Counts the images it embeds."""
  has_logits = False

  def __init__(self, dim: int = 8):
    self.dim = dim
    self.images_seen = 0

  def missing_head_message(self):
    return "the stand-in has no logits head"

  def features(self, images, batch_size=None):
    """As InceptionFeatures.features: an array of uint8 images, or an iterable of such arrays."""
    del batch_size
    if not isinstance(images, np.ndarray):
      images = np.concatenate([np.asarray(chunk) for chunk in images])
    self.images_seen += len(images)
    flat = images.reshape(len(images), -1).astype(np.float64) / 255
    return flat @ np.random.RandomState(0).normal(size=(flat.shape[1], self.dim))


def write_image_folder(root, classes=("cat", "dog"), per_class=6, size=32, seed=0, mode="RGB"):
  """Random PNG images in root/<class>/; returns {path: pixels}."""
  rng = np.random.RandomState(seed)
  written = {}
  for name in classes:
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(per_class):
      shape = (size, size) if mode == "L" else (size, size, 3)
      pixels = rng.randint(0, 256, shape).astype(np.uint8)
      path = os.path.join(root, name, f"{i}.png")
      Image.fromarray(pixels).save(path)
      written[path] = pixels
  return written


@pytest.fixture(scope="session")
def image_dataset(tmp_path_factory):
  """A prepared tfds dataset 'tiny_pics' (12 RGB 32x32 images, 2 classes): (data_dir, name)."""
  from gan_jax import import_images  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("pics")
  write_image_folder(str(root / "src"))
  data_dir = str(root / "tfds")
  import_images.import_images(str(root / "src"), "tiny_pics", data_dir)
  return data_dir, "tiny_pics"


_cli_server = None
_cli_server_lock = threading.Lock()  # one request at a time on its pipes, whichever thread asks


def _ask_cli_server(request: dict) -> dict:
  import json  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  global _cli_server
  with _cli_server_lock:
    if _cli_server is None or _cli_server.poll() is not None:
      _cli_server = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "cli_server.py")], cwd=REPO,
                                     env=dict(os.environ, PYTHONPATH=REPO), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
    _cli_server.stdin.write(json.dumps(request) + "\n")
    _cli_server.stdin.flush()
    answer = _cli_server.stdout.readline()
    if not answer:
      raise RuntimeError(f"tests/cli_server.py ended (exit status {_cli_server.wait()}) on a {list(request)} "
                         "request")
    return json.loads(answer)


class CliProcess:
  """`python -m module args` from `cwd` (default: the repo), running: forked from a process that has
  imported gan_jax's libraries (cli_server.py, started on the first command), ~3.5 s less per command
  than a fresh interpreter. Its stdout and stderr go to files, never to pipes (a process blocked on a
  full pipe would stall the others of a multi-process run in a collective)."""

  def __init__(self, module, *args, env=None, cwd=REPO):
    self.args = [module, *args]
    self._scratch = tempfile.TemporaryDirectory()
    self._files = {name: os.path.join(self._scratch.name, name) for name in ("stdout", "stderr")}
    for path in self._files.values():
      open(path, "w").close()
    command = dict(module=module, args=list(args), env=dict(os.environ, **(env or {})), cwd=str(cwd),
                   **self._files)
    self.pid = _ask_cli_server({"start": command})["pid"]
    self.returncode = None

  def poll(self):
    """The exit status once the process has ended (-N: killed by signal N), else None."""
    if self.returncode is None:
      self.returncode = _ask_cli_server({"poll": self.pid}).get("returncode")
    return self.returncode

  def lines(self, stream="stderr"):
    """The lines the process writes to `stream`, as it writes them, until it has ended."""
    with open(self._files[stream]) as f:
      partial = ""
      while True:
        partial += f.readline()
        if partial.endswith("\n"):
          yield partial
          partial = ""
        elif self.poll() is not None:
          rest = partial + f.read()
          yield from rest.splitlines(keepends=True)
          return
        else:
          time.sleep(0.05)

  def send_signal(self, signum):
    """As Popen.send_signal: nothing once the process has ended."""
    if self.returncode is None:
      try:
        os.kill(self.pid, signum)
      except ProcessLookupError:  # ended and reaped by the server since
        pass

  def kill(self):
    self.send_signal(signal.SIGKILL)

  def wait(self, timeout=300):
    """The CompletedProcess once the process has ended; killed and TimeoutExpired after `timeout` s."""
    import subprocess  # pylint: disable=g-import-not-at-top
    if self.returncode is None:
      answer = _ask_cli_server({"wait": self.pid, "timeout": timeout})
      self.returncode = answer.get("returncode")
    with open(self._files["stdout"]) as out, open(self._files["stderr"]) as err:
      stdout, stderr = out.read(), err.read()
    if self.returncode is None:
      raise subprocess.TimeoutExpired(self.args, timeout, stdout, stderr)
    self._scratch.cleanup()
    return subprocess.CompletedProcess(self.args, self.returncode, stdout, stderr)


def run_cli(module, *args, env=None, timeout=300):
  """Runs `python -m module args` from the repo (a CliProcess) to its end; returns the CompletedProcess."""
  return CliProcess(module, *args, env=env).wait(timeout)


def run_cli_cases(module, cases):
  """[run_cli(module, *args) for args in cases], for the many bad-input cases; each result has the
  seconds its command took as `.seconds`."""
  results = []
  for args in cases:
    start = time.time()
    results.append(run_cli(module, *args))
    results[-1].seconds = time.time() - start
  return results
