"""A run's configuration: every field with its default, the checks that need no other module, and its
record in the workdir (config.json). The architectures', objectives' and data's own checks live with
them (gan_jax.checks gathers them for the trainer)."""
import json
import math
import os
from typing import Callable, Dict

import ml_collections

from gan_jax import files
from gan_jax.errors import UserError

LR_DECAYS = ("constant", "linear")

# Fields that may change when a run is resumed: they do not change what is trained.
RESUMABLE_FIELDS = frozenset({
    "num_steps", "num_epochs", "train_minutes", "log_every", "sample_every", "checkpoint_every",
    "keep_checkpoints", "num_devices", "parallelism", "steps_per_call", "data_dir", "eval_every",
    "eval_samples", "input_pipeline", "memory_budget_gb",
    "g_lr", "d_lr"})  # new learning rates restart a diverged run from its last checkpoint


def defaults() -> ml_collections.ConfigDict:
  """Every field a run has, with the Keras notebooks' DCGAN as the default; presets change some."""
  config = ml_collections.ConfigDict()
  # Data.
  config.dataset = "cifar10"
  config.data_dir = ""  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
  config.split = "train"
  config.image_size = 32  # MNIST's 28x28 images are padded to 32x32
  config.conditional = False  # class-conditional G and D, labels from the dataset
  config.mirror = False  # flip each real image left-right with probability 1/2 (StyleGAN2-ADA's --mirror)
  # A split is kept whole on the devices when it fits the memory budget, else streamed from its files
  # (gan_jax.data.streaming): input_pipeline auto | memory | stream; memory_budget_gb 0 = a quarter of the
  # host's memory (shared by CPU devices) and of an accelerator's. data_workers: decoding processes of
  # the streaming path (0: threads of the training process).
  config.input_pipeline = "auto"
  config.memory_budget_gb = 0.0
  config.data_workers = 0
  # Models (see gan_jax/models/): the architecture, its own settings (each architecture's default_args(),
  # e.g. --config.model_args.d_dropout=0.5; empty = all its defaults) and the settings every one has.
  config.model = "dcgan"  # dcgan | resnet (SNGAN) | biggan | stylegan2 (lite) | toy (MLPs, 2-D points)
  config.model_args = ml_collections.ConfigDict()
  config.latent_dim = 100
  config.g_width = 64  # base channel count of G
  config.d_width = 64  # base channel count of D
  config.compute_dtype = "float32"  # float32 | bfloat16 (mixed precision; parameters stay float32)
  # Objective and regularisation.
  config.loss = "nonsaturating"  # nonsaturating | hinge | wgan | lsgan | rpgan
  config.label_smoothing = 0.0  # one-sided: D's target for real images is 1 - this (nonsaturating, lsgan)
  config.r1_gamma = 0.0  # R1: gamma/2 * |grad_x D(x)|^2 on real images
  config.r2_gamma = 0.0  # R2: the same on generated images
  config.gp_weight = 0.0  # WGAN-GP: weight * (|grad D| - 1)^2 on real/fake interpolates
  config.reg_every = 1  # lazy regularisation: R1/R2/GP every this many steps, scaled up to match
  config.instance_noise = 0.0  # std of Gaussian noise added to D's inputs...
  config.instance_noise_steps = 0  # ...annealed linearly to 0 over this many steps (0 = constant)
  config.feature_matching = 0.0  # weight of |E f(x) - E f(G(z))|^2 (D's features) in G's loss
  # Of these three fixes for mode collapse, only instance noise helped on the toy grid25 set (std 0.1, 2x
  # the modes' std, annealed over the whole run: 24-25/25 modes on 5 seeds against 19-25 without); label
  # smoothing (0.1, 0.2) and feature matching (1.0, 0.1) stayed within seed noise or below. Images: not
  # measured. README.md, "Mode-collapse fixes on grid25 (toy)"; benchmarks/mode_collapse_fixes.py.
  # Augmentation of every image D sees (DiffAugment), with per-example probability augment_p;
  # ada_target > 0 adapts augment_p (ADA): up when E[sign D(x_real)] > ada_target, down otherwise.
  config.augment = ""  # comma-separated subset of color,translation,cutout ('' = none)
  config.augment_p = 1.0  # probability of each augmentation (the start value with ADA)
  config.ada_target = 0.0  # 0 = fixed augment_p; StyleGAN2-ADA uses 0.6
  config.ada_interval = 4  # steps between ADA adjustments
  config.ada_kimg = 100.0  # thousands of images for augment_p to move by 1
  # Optimisation.
  config.batch_size = 128  # global, over all devices and hosts (per D step)
  config.num_epochs = 50
  config.num_steps = 0  # > 0 overrides num_epochs
  config.d_steps = 1  # discriminator updates per generator update, each on a fresh real batch
  config.g_batch_size = 0  # generated images per G update, global (0 = batch_size)
  config.g_lr = 2e-4
  config.d_lr = 2e-4  # TTUR: a different learning rate for D
  config.g_b1 = 0.5
  config.g_b2 = 0.999
  config.d_b1 = 0.5
  config.d_b2 = 0.999
  config.lr_decay = "constant"  # constant | linear: both learning rates to 0 over num_steps
  # EMA of G's weights and BatchNorm statistics, for samples and evaluation (gan_jax.train.ema_beta).
  # ema_kimg > 0: StyleGAN2-ADA's half-life in thousands of images, ramped up to ema_rampup x the images
  # seen (0 = no ramp-up); else ema_decay per step (0 = the raw weights), with TensorFlow's warm-up
  # min(decay, (1 + step) / (10 + step)) when ema_warmup. Before step ema_start: a copy (BigGAN's).
  config.ema_decay = 0.0
  config.ema_warmup = True
  config.ema_kimg = 0.0
  config.ema_rampup = 0.0
  config.ema_start = 0
  config.seed = 0
  # Devices: 0 = all local devices; parallelism 'shard_map' (jit over a device mesh) or 'pmap'.
  config.num_devices = 0
  config.parallelism = "shard_map"
  config.steps_per_call = 10  # train steps fused into one compiled call (fewer dispatches)
  # Bookkeeping, in steps (multiples of steps_per_call).
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 5000
  config.keep_checkpoints = 3
  config.num_samples = 64  # images in each sample grid (fixed noise); conditional: split over classes
  config.train_minutes = 0.0  # wall-clock budget; 0 = none
  # FID during training (needs the Inception weights, see README.md): every eval_every steps (0 = never)
  # on eval_samples generated images; the best checkpoint by FID is kept in <workdir>/best/.
  config.eval_every = 0
  config.eval_samples = 10000
  return config


def train_for_steps(config: ml_collections.ConfigDict, num_steps: int) -> ml_collections.ConfigDict:
  """Sets a run of `num_steps` steps with the bookkeeping intervals of a long run (the presets' usual
  stopping rule is --train_minutes); returns `config`."""
  config.num_epochs = 0
  config.num_steps = num_steps
  config.steps_per_call = 50
  config.log_every = 500
  config.sample_every = 5000
  config.checkpoint_every = 5000
  return config


def require(condition: bool, message: str) -> None:
  """Raises UserError(message) unless `condition`: the one-line errors of every settings check."""
  if not condition:
    raise UserError(message)


def require_choice(field: str, value: str, choices) -> None:
  require(value in choices, f"--{field}={value} is unknown; choose one of {', '.join(choices)}")


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises UserError naming the first bad field and what to do about it (the fields' own ranges; the
  names that registries hold are checked by gan_jax.checks)."""
  require(bool(config.dataset), "--dataset is empty; name a tfds dataset (e.g. cifar10) or an imported one")
  require_choice("lr_decay", config.lr_decay, LR_DECAYS)
  size = config.image_size
  require(size >= 8 and 2**int(round(math.log2(size))) == size,
          f"--image_size={size} must be a power of two >= 8 (e.g. 32)")
  for name in ("batch_size", "latent_dim", "g_width", "d_width", "steps_per_call", "log_every",
               "sample_every", "checkpoint_every", "keep_checkpoints", "num_samples", "d_steps",
               "reg_every", "ada_interval"):
    require(config[name] > 0, f"--{name}={config[name]} must be a positive integer")
  for name in ("num_steps", "num_epochs", "num_devices", "train_minutes", "eval_every", "r1_gamma",
               "r2_gamma", "gp_weight", "instance_noise", "instance_noise_steps", "feature_matching",
               "ada_target", "memory_budget_gb", "data_workers", "ema_kimg",
               "ema_rampup", "ema_start", "g_batch_size"):
    require(config[name] >= 0, f"--{name}={config[name]} must be >= 0")
  require(config.num_steps > 0 or config.num_epochs > 0, "set --num_steps or --num_epochs to a positive value")
  for name in ("g_lr", "d_lr", "ada_kimg"):
    require(config[name] > 0, f"--{name}={config[name]} must be > 0")
  for name in ("g_b1", "g_b2", "d_b1", "d_b2", "ema_decay", "label_smoothing"):
    require(0 <= config[name] < 1, f"--{name}={config[name]} must be in [0, 1)")
  require(0 <= config.augment_p <= 1, f"--augment_p={config.augment_p} must be in [0, 1]")
  require(config.lr_decay != "linear" or config.num_steps > 0,
          "--lr_decay=linear decays the learning rates to 0 over --num_steps; set --num_steps")
  require(config.g_batch_size % num_devices == 0,
          f"--g_batch_size={config.g_batch_size} is not divisible by the {num_devices} devices; use a "
          f"multiple of {num_devices}")
  require(config.batch_size % num_devices == 0,
          f"--batch_size={config.batch_size} is not divisible by the {num_devices} devices; use a "
          f"multiple of {num_devices} or set --num_devices")
  require(config.eval_samples > 1, f"--eval_samples={config.eval_samples} must be > 1")
  for name in ("log_every", "sample_every", "checkpoint_every", "eval_every"):
    require(config[name] % config.steps_per_call == 0,
            f"--{name}={config[name]} must be a multiple of --steps_per_call={config.steps_per_call}")


def save(config: ml_collections.ConfigDict, path: str) -> None:
  files.write_text(path, config.to_json(indent=2, sort_keys=True))


# Before each architecture owned its settings (config.model_args), they were fields of the config
# itself; an older workdir's config.json is read with them moved into model_args.
_FLAT_MODEL_FIELDS = {"dcgan": ("g_activation", "d_dropout", "d_spectral_norm"),
                      "resnet": ("g_spectral_norm", "d_spectral_norm", "attention_resolution"),
                      "biggan": ("embed_dim", "attention_resolution"),
                      "stylegan2": ("mapping_layers", "mbstd_group", "noise_inputs", "d_architecture")}
_ALL_FLAT_MODEL_FIELDS = frozenset(f for fields in _FLAT_MODEL_FIELDS.values() for f in fields)


def read_saved(path: str) -> Dict:
  """A workdir's config.json as a dict in today's layout (its model settings in model_args)."""
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path} ({e}); it records the run in this workdir: restore it, or "
                    "choose a new --workdir") from e
  if "model_args" not in saved:
    fields = _FLAT_MODEL_FIELDS.get(saved.get("model", "dcgan"), ())
    saved["model_args"] = {k: saved[k] for k in fields if k in saved}
  return {k: v for k, v in saved.items() if k not in _ALL_FLAT_MODEL_FIELDS}


def load_saved(path: str) -> ml_collections.ConfigDict:
  """The config of the run that wrote `path` (fields it predates at their defaults)."""
  config = defaults()
  config.update(read_saved(path))
  return config


def check_resumable(config: ml_collections.ConfigDict, path: str,
                    model_defaults: Callable[[str], Dict] = lambda model: {}) -> None:
  """Refuses to resume a workdir whose run was defined differently (its config.json at `path`).

  `model_defaults(model)` gives an architecture's settings with their defaults (models.default_args):
  a setting that the saved run predates had its default value then.
  """
  saved = read_saved(path)
  current = json.loads(config.to_json())
  default = json.loads(defaults().to_json())
  # A field that the saved run predates had its default value then.
  saved = {**{k: v for k, v in default.items() if k not in saved}, **saved}
  for run in (saved, current):
    run["model_args"] = {**model_defaults(run["model"]), **run["model_args"]}
  differences = [f"{k}: {saved.get(k)!r} in the workdir, {current.get(k)!r} now"
                 for k in sorted(set(saved) | set(current))
                 if k not in RESUMABLE_FIELDS and saved.get(k) != current.get(k)]
  if differences:
    raise UserError(f"the workdir {os.path.dirname(path)} holds a run with other settings "
                    f"({'; '.join(differences)}); pass the same settings to resume it, or choose a new "
                    "--workdir")
