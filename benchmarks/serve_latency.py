"""How fast the web gallery answers, and whether its memory stays flat.

    python benchmarks/serve_latency.py --preset=dcgan [--requests=100] [--soak_requests=1000] [--n=16]

Writes a workdir with a randomly initialised checkpoint of the preset (full size; the weights do not
change the cost of a request), starts `python -m gan_jax.serve` on it on a free port of 127.0.0.1 and
measures, from this process over HTTP:
  - the first /api/sample?n=N (compiling the sampler for its batch size; the server gets an empty
    compilation cache) and the p50/p95 latency of --requests more, each with a new seed;
  - the server's resident memory (RSS, from /proc) before --soak_requests more requests that mix grid
    sizes and interpolation strips, and after each quarter of them (flat memory: no growth after the
    first quarter, in which the allocator reaches its working set).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from absl import app
from absl import flags
import jax
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import experiments  # pylint: disable=g-import-not-at-top
from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
from gan_jax import run_info  # pylint: disable=g-import-not-at-top
from gan_jax import train  # pylint: disable=g-import-not-at-top
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top

_PRESET = flags.DEFINE_string("preset", "dcgan", "Preset to serve: experiments/<name>.py.")
_REQUESTS = flags.DEFINE_integer("requests", 100, "Timed grid requests after the first.")
_SOAK = flags.DEFINE_integer("soak_requests", 1000, "Requests between the two memory readings.")
_N = flags.DEFINE_integer("n", 16, "Images per timed grid.")


def write_workdir(workdir: str, preset: str) -> None:
  """config.json, dataset.json and one checkpoint of the preset's freshly initialised state."""
  config = experiments.load_preset(preset)
  image_shape = (config.image_size, config.image_size, 3)
  class_names = [f"class_{i}" for i in range(10)] if config.conditional else []
  state = train.create_train_state(config, jax.random.PRNGKey(0), image_shape, num_classes=len(class_names))
  config_lib.save(config, os.path.join(workdir, "config.json"))
  run_info.save(workdir, image_shape, class_names)
  checkpoints = checkpointing.Checkpoints(workdir, config.keep_checkpoints)
  checkpoints.save(state)
  checkpoints.wait()


def rss_mib(pid: int) -> float:
  with open(f"/proc/{pid}/status") as f:
    return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) / 1024


def fetch(url: str) -> float:
  """Seconds until the whole answer has arrived."""
  start = time.perf_counter()
  with urllib.request.urlopen(url, timeout=120) as response:
    response.read()
    if response.status != 200:
      raise RuntimeError(f"{url}: HTTP {response.status}")
  return time.perf_counter() - start


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as workdir:
    try:
      write_workdir(workdir, _PRESET.value)
    except UserError as e:
      sys.exit(f"error: {e}")
    # An empty compilation cache: the first request pays the full compile, as on a fresh machine.
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.path.join(workdir, "xla"))
    server = subprocess.Popen([sys.executable, "-m", "gan_jax.serve", f"--workdir={workdir}", "--port=0"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
      banner = server.stdout.readline()
      match = re.search(r"at (http://\S+/)", banner)
      if not match:
        sys.exit(f"error: the server did not start: {banner!r}")
      base = match.group(1)
      first = fetch(f"{base}api/sample?n={_N.value}&seed=0")
      latencies = np.array([fetch(f"{base}api/sample?n={_N.value}&seed={seed}")
                            for seed in range(1, _REQUESTS.value + 1)]) * 1e3
      # Every batch size compiled once before the first reading: what follows must not grow.
      for n in (1, 64, 200):
        fetch(f"{base}api/sample?n={n}")
      fetch(f"{base}api/interpolate?steps=8")
      rss = [rss_mib(server.pid)]
      start = time.perf_counter()
      for i in range(_SOAK.value):
        if i % 4 == 3:
          fetch(f"{base}api/interpolate?steps={2 + i % 31}&seed={i}")
        else:
          fetch(f"{base}api/sample?n={1 + (i * 7) % 64}&seed={i}")
        if (i + 1) % (_SOAK.value // 4) == 0:
          rss.append(rss_mib(server.pid))
      soak_seconds = time.perf_counter() - start
    finally:
      server.terminate()
      server.wait(timeout=30)
  result = {"preset": _PRESET.value, "n": _N.value, "device": jax.devices()[0].device_kind,
            "cpu_count": os.cpu_count(), "first_request_ms": round(first * 1e3, 1),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "p95_ms": round(float(np.percentile(latencies, 95)), 1), "requests": _REQUESTS.value,
            "soak_requests": _SOAK.value, "rss_mib_each_quarter": [round(r, 1) for r in rss], "soak_seconds": round(soak_seconds, 1)}
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main)
