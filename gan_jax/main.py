"""Train a GAN: `python -m gan_jax.main --dataset=cifar10 [--config=experiments/dcgan.py] [--flags]`.

Every field of the config can be set with `--config.<field>=value`; the common ones also have their own
flag below. Running again with the same --workdir resumes the run.
"""
import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags

import experiments
from gan_jax import compilation_cache
from gan_jax import config as config_lib
from gan_jax import losses
from gan_jax import models
from gan_jax import trainer
from gan_jax.errors import UserError



def _unknown_field_message(error: Exception) -> str:
  """ml_collections' KeyError ("'g_widht'\nDid you mean ...") as one plain line."""
  while error.args and isinstance(error.args[0], Exception):  # an AttributeError(KeyError(...))
    error = error.args[0]
  text = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
  text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
  field = text.split("'")[1] if text.count("'") >= 2 else ""
  if field and any(arg.startswith(f"--config.model_args.{field}=") for arg in sys.argv):
    return (f"--config.model_args.{field} is not a setting of the preset's architecture; give a preset "
            "of the architecture it belongs to (e.g. --config=experiments/sngan.py for resnet), or see "
            "its default_args() in gan_jax/models/")
  return f"the config has no field {text}; see the preset file (experiments/*.py) for the fields"


try:
  # ml_collections applies --config.<field> overrides while defining the flag, from sys.argv.
  _CONFIG = config_flags.DEFINE_config_file(
      "config", os.path.join(os.path.dirname(experiments.__file__), "dcgan.py"),
      "Preset file: experiments/<name>.py.", lock_config=False)
except (AttributeError, KeyError) as e:
  sys.exit(f"error: {_unknown_field_message(e)}")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory. Default: checkpoints/<dataset>_<model>_<timestamp>. An existing "
    "run directory is resumed.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", None, "Directory of JAX's persistent compilation cache, which lets a resumed or "
    "repeated run skip compiling (default: $JAX_COMPILATION_CACHE_DIR, else $GAN_JAX_CACHE_DIR/xla or "
    "~/.cache/gan_jax/xla); '' turns it off.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host runs; each host reads "
    "its own shard of the data). On SLURM or Open MPI the three flags below are detected; elsewhere give "
    "them (or $JAX_COORDINATOR_ADDRESS).")
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    "coordinator_address", None, "With --distributed: host:port of process 0, the same for every process.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "With --distributed: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "With --distributed: this process's index, "
                                   "0 .. num_processes - 1.")

# Shortcuts for config fields, (field, help): given on the command line, they override the preset. The
# flag's type is the field's (gan_jax/config.py); any field can also be set with --config.<field>.
_SHORTCUTS = (
    ("dataset", "tfds dataset (cifar10, cifar100, mnist, fashion_mnist, svhn_cropped) or one made by "
     "`python -m gan_jax.import_images`."),
    ("data_dir", "tfds data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets)."),
    ("image_size", "Image size the models work at (smaller images are padded)."),
    ("model", f"Architecture (gan_jax/models/): {', '.join(models.ARCHITECTURES)}. Switching it sets the "
     "architecture's own settings (--config.model_args.*) to its defaults, keeping shared ones."),
    ("conditional", "Class-conditional G and D (labels from the dataset)."),
    ("mirror", "Flip real images left-right at random (doubles small datasets)."),
    ("input_pipeline", "auto (default): keep the split on the devices when it fits a quarter of the "
     "memory, else stream it from its files; memory; stream."),
    ("data_workers", "Streaming input: decoding processes (0: threads)."),
    ("loss", f"Objective (gan_jax/losses.py): {', '.join(losses.OBJECTIVES)}."),
    ("d_steps", "Discriminator updates per generator update."),
    ("augment", "DiffAugment operations for D's inputs: a comma-separated subset of "
     "color,translation,cutout."),
    ("ada_target", "Adapt the augmentation probability towards this E[sign D(x_real)] (ADA; 0 = fixed "
     "--config.augment_p)."),
    ("r1_gamma", "R1 penalty weight on real images."),
    ("gp_weight", "WGAN-GP gradient penalty weight."),
    ("ema_decay", "Decay of the generator's weight EMA per step (0 = none)."),
    ("ema_kimg", "Half-life of the generator's EMA in thousands of images (StyleGAN2-ADA's; > 0 replaces "
     "--ema_decay)."),
    ("compute_dtype", "float32, or bfloat16 for mixed precision."),
    ("batch_size", "Global batch size, over all devices and hosts."),
    ("num_epochs", "Epochs to train (ignored when --num_steps > 0)."),
    ("num_steps", "Steps to train; > 0 overrides --num_epochs."),
    ("train_minutes", "Wall-clock budget in minutes; 0 = none. A checkpoint is saved when it runs out."),
    ("g_lr", "Generator Adam learning rate."),
    ("d_lr", "Discriminator Adam learning rate."),
    ("g_b1", "Generator Adam beta1."),
    ("g_b2", "Generator Adam beta2."),
    ("d_b1", "Discriminator Adam beta1."),
    ("d_b2", "Discriminator Adam beta2."),
    ("latent_dim", "Size of the generator's input noise."),
    ("seed", "Seed of initialisation, noise and data order."),
    ("sample_every", "Steps between sample grids."),
    ("checkpoint_every", "Steps between checkpoints."),
    ("log_every", "Steps between losses.csv rows / log lines."),
    ("keep_checkpoints", "Checkpoints to keep."),
    ("eval_every", "Steps between FID evaluations (0 = none); the best checkpoint by FID is kept in "
     "<workdir>/best."),
    ("eval_samples", "Generated images per FID evaluation."),
    ("steps_per_call", "Train steps fused into one compiled call."),
    ("num_devices", "Local devices to use; 0 = all."),
    ("parallelism", "shard_map (jit over a device mesh) or pmap."),
)
_DEFINE_BY_TYPE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
                   str: flags.DEFINE_string}
_FIELD_DEFAULTS = config_lib.defaults()
_FIELD_FLAGS = [_DEFINE_BY_TYPE[type(_FIELD_DEFAULTS[name])](name, None, text) for name, text in _SHORTCUTS]


def _config():
  try:
    config = _CONFIG.value
    for flag in _FIELD_FLAGS:
      if flag.value is not None:
        if flag.name == "model" and flag.value != config.model and flag.value in models.ARCHITECTURES:
          # Another architecture: its own settings, keeping the values of those both have.
          config.model_args = ml_collections.ConfigDict(models.switch_args(config.model_args, flag.value))
        config[flag.name] = flag.value
  except OSError as e:  # ml_collections failed to load the file; its message ends with the reason
    reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    raise UserError(f"cannot load the --config file ({reason}); give a preset such as "
                    "experiments/dcgan.py") from e
  return config


def parse_flags(argv):
  """absl's parser, with bad flags reported in one line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"error: {e}; see --help")
  except (AttributeError, KeyError) as e:  # an unknown --config.<field> of a --config file
    sys.exit(f"error: {_unknown_field_message(e)}")
  except (ValueError, TypeError) as e:  # a --config.<field> value of the wrong type
    sys.exit(f"error: bad --config override ({e})")


class _QuietLibraries(std_logging.Filter):
  """Keeps Orbax's and tfds's routine INFO lines out of the training log."""

  def filter(self, record):
    return record.levelno >= std_logging.WARNING or not any(
        f"{os.sep}{lib}{os.sep}" in record.pathname for lib in ("orbax", "tensorflow_datasets"))


def _log_unraisable(unraisable) -> None:
  """Exceptions that libraries' background threads and coroutines could not raise (Orbax's, after it
  failed to read a damaged checkpoint, which the run already reported in one line) go to the debug log,
  not the user's terminal."""
  logging.debug("Exception ignored in %r: %s", unraisable.object, unraisable.exc_value,
                exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  sys.unraisablehook = _log_unraisable
  cache_dir = _COMPILATION_CACHE.value
  if cache_dir is None:  # $JAX_COMPILATION_CACHE_DIR when set, else ours
    cache_dir = jax.config.jax_compilation_cache_dir or compilation_cache.default_dir()
  if cache_dir:
    compilation_cache.enable(cache_dir)
  if _DISTRIBUTED.value:
    try:
      jax.distributed.initialize(_COORDINATOR_ADDRESS.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except (ValueError, RuntimeError) as e:
      sys.exit(f"error: --distributed could not start ({str(e).strip().splitlines()[0]}); give "
               "--coordinator_address, --num_processes and --process_id, or run under SLURM or Open MPI")
  try:
    config = _config()
    workdir = _WORKDIR.value or trainer.default_workdir(config)
    logging.info("JAX %s, devices: %s, workdir: %s", jax.__version__, jax.devices(), workdir)
    summary = trainer.train_and_evaluate(config, workdir)
  except UserError as e:
    sys.exit(f"error: {e}")
  logging.info("Done: %s", summary)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
