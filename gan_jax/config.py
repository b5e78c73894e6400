"""Checks on a run's configuration, and its record in the workdir (config.json)."""
import json
import math
import os

import ml_collections

from gan_jax import models
from gan_jax import parallel
from gan_jax.errors import UserError
from gan_jax.models import dcgan

# Fields that may change when a run is resumed: they do not change what is trained.
RESUMABLE_FIELDS = frozenset({
    "num_steps", "num_epochs", "train_minutes", "log_every", "sample_every", "checkpoint_every",
    "keep_checkpoints", "num_devices", "parallelism", "steps_per_call", "data_dir", "eval_every",
    "eval_samples"})


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise UserError(message)


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises UserError naming the first bad field and what to do about it."""
  _require(bool(config.dataset), "--dataset is empty; name a tfds dataset (e.g. cifar10) or an imported one")
  _require(config.model in models.MODEL_NAMES,
           f"--model={config.model} is unknown; choose one of {', '.join(models.MODEL_NAMES)}")
  _require(config.g_activation in dcgan.ACTIVATION_NAMES,
           f"--g_activation={config.g_activation} is unknown; choose one of {', '.join(dcgan.ACTIVATION_NAMES)}")
  _require(config.parallelism in parallel.STRATEGIES,
           f"--parallelism={config.parallelism} is unknown; choose one of {', '.join(parallel.STRATEGIES)}")
  size = config.image_size
  _require(size >= 8 and 2**int(round(math.log2(size))) == size,
           f"--image_size={size} must be a power of two >= 8 (e.g. 32)")
  for name in ("batch_size", "latent_dim", "g_width", "d_width", "steps_per_call", "log_every",
               "sample_every", "checkpoint_every", "keep_checkpoints", "num_samples"):
    _require(config[name] > 0, f"--{name}={config[name]} must be a positive integer")
  for name in ("num_steps", "num_epochs", "num_devices", "train_minutes", "eval_every"):
    _require(config[name] >= 0, f"--{name}={config[name]} must be >= 0")
  _require(config.num_steps > 0 or config.num_epochs > 0, "set --num_steps or --num_epochs to a positive value")
  for name in ("g_lr", "d_lr"):
    _require(config[name] > 0, f"--{name}={config[name]} must be > 0")
  for name in ("g_b1", "g_b2", "d_b1", "d_b2"):
    _require(0 <= config[name] < 1, f"--{name}={config[name]} must be in [0, 1)")
  _require(0 <= config.d_dropout < 1, f"--d_dropout={config.d_dropout} must be in [0, 1)")
  _require(config.batch_size % num_devices == 0,
           f"--batch_size={config.batch_size} is not divisible by the {num_devices} devices; use a "
           f"multiple of {num_devices} or set --num_devices")
  _require(config.eval_samples > 1, f"--eval_samples={config.eval_samples} must be > 1")
  for name in ("log_every", "sample_every", "checkpoint_every", "eval_every"):
    _require(config[name] % config.steps_per_call == 0,
             f"--{name}={config[name]} must be a multiple of --steps_per_call={config.steps_per_call}")


def save(config: ml_collections.ConfigDict, path: str) -> None:
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(config.to_json(indent=2, sort_keys=True))
  os.replace(tmp, path)


def check_resumable(config: ml_collections.ConfigDict, path: str) -> None:
  """Refuses to resume a workdir whose run was defined differently (its config.json at `path`)."""
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path} ({e}); it records the run in this workdir: restore it, or "
                    "choose a new --workdir") from e
  current = json.loads(config.to_json())
  differences = [f"{k}: {saved.get(k)!r} in the workdir, {current.get(k)!r} now"
                 for k in sorted(set(saved) | set(current))
                 if k not in RESUMABLE_FIELDS and saved.get(k) != current.get(k)]
  if differences:
    raise UserError(f"the workdir {os.path.dirname(path)} holds a run with other settings "
                    f"({'; '.join(differences)}); pass the same settings to resume it, or choose a new "
                    "--workdir")
