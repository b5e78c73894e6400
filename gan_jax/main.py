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
from ml_collections import config_flags

import experiments
from gan_jax import compilation_cache
from gan_jax import trainer
from gan_jax.errors import UserError



def _unknown_field_message(error: Exception) -> str:
  """ml_collections' KeyError ("'g_widht'\nDid you mean ...") as one plain line."""
  while error.args and isinstance(error.args[0], Exception):  # an AttributeError(KeyError(...))
    error = error.args[0]
  text = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
  text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
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

# Shortcuts for config fields: given on the command line, they override the preset.
_FIELD_FLAGS = [
    flags.DEFINE_string("dataset", None, "tfds dataset (cifar10, cifar100, mnist, fashion_mnist, "
                        "svhn_cropped) or one made by `python -m gan_jax.import_images`."),
    flags.DEFINE_string("data_dir", None, "tfds data directory (default $TFDS_DATA_DIR or "
                        "~/tensorflow_datasets)."),
    flags.DEFINE_integer("image_size", None, "Image size the models work at (smaller images are padded)."),
    flags.DEFINE_string("model", None, "Architecture: dcgan, resnet (SNGAN), biggan, stylegan2, or toy "
                        "(MLPs for 2-D points)."),
    flags.DEFINE_bool("conditional", None, "Class-conditional G and D (labels from the dataset)."),
    flags.DEFINE_bool("mirror", None, "Flip real images left-right at random (doubles small datasets)."),
    flags.DEFINE_string("input_pipeline", None, "auto (default): keep the split on the devices when it "
                        "fits a quarter of the memory, else stream it from its files; memory; stream."),
    flags.DEFINE_integer("data_workers", None, "Streaming input: decoding processes (0: threads)."),
    flags.DEFINE_string("loss", None, "Objective: nonsaturating, hinge, wgan, lsgan or rpgan."),
    flags.DEFINE_integer("d_steps", None, "Discriminator updates per generator update."),
    flags.DEFINE_string("augment", None, "DiffAugment operations for D's inputs: a comma-separated "
                        "subset of color,translation,cutout."),
    flags.DEFINE_float("ada_target", None, "Adapt the augmentation probability towards this "
                       "E[sign D(x_real)] (ADA; 0 = fixed --config.augment_p)."),
    flags.DEFINE_float("r1_gamma", None, "R1 penalty weight on real images."),
    flags.DEFINE_float("gp_weight", None, "WGAN-GP gradient penalty weight."),
    flags.DEFINE_float("ema_decay", None, "Decay of the generator's weight EMA per step (0 = none)."),
    flags.DEFINE_float("ema_kimg", None, "Half-life of the generator's EMA in thousands of images "
                       "(StyleGAN2-ADA's; > 0 replaces --ema_decay)."),
    flags.DEFINE_string("compute_dtype", None, "float32, or bfloat16 for mixed precision."),
    flags.DEFINE_integer("batch_size", None, "Global batch size, over all devices and hosts."),
    flags.DEFINE_integer("num_epochs", None, "Epochs to train (ignored when --num_steps > 0)."),
    flags.DEFINE_integer("num_steps", None, "Steps to train; > 0 overrides --num_epochs."),
    flags.DEFINE_float("train_minutes", None, "Wall-clock budget in minutes; 0 = none. A checkpoint is "
                       "saved when it runs out."),
    flags.DEFINE_float("g_lr", None, "Generator Adam learning rate."),
    flags.DEFINE_float("d_lr", None, "Discriminator Adam learning rate."),
    flags.DEFINE_float("g_b1", None, "Generator Adam beta1."),
    flags.DEFINE_float("g_b2", None, "Generator Adam beta2."),
    flags.DEFINE_float("d_b1", None, "Discriminator Adam beta1."),
    flags.DEFINE_float("d_b2", None, "Discriminator Adam beta2."),
    flags.DEFINE_integer("latent_dim", None, "Size of the generator's input noise."),
    flags.DEFINE_integer("seed", None, "Seed of initialisation, noise and data order."),
    flags.DEFINE_integer("sample_every", None, "Steps between sample grids."),
    flags.DEFINE_integer("checkpoint_every", None, "Steps between checkpoints."),
    flags.DEFINE_integer("log_every", None, "Steps between losses.csv rows / log lines."),
    flags.DEFINE_integer("keep_checkpoints", None, "Checkpoints to keep."),
    flags.DEFINE_integer("eval_every", None, "Steps between FID evaluations (0 = none); the best "
                         "checkpoint by FID is kept in <workdir>/best."),
    flags.DEFINE_integer("eval_samples", None, "Generated images per FID evaluation."),
    flags.DEFINE_integer("steps_per_call", None, "Train steps fused into one compiled call."),
    flags.DEFINE_integer("num_devices", None, "Local devices to use; 0 = all."),
    flags.DEFINE_string("parallelism", None, "shard_map (jit over a device mesh) or pmap."),
]


def _config():
  try:
    config = _CONFIG.value
    for flag in _FIELD_FLAGS:
      if flag.value is not None:
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
