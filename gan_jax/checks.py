"""Every check of a run's settings before anything is loaded or written: the config's own ranges
(gan_jax.config.validate) and the names and combinations that the registries decide (architectures,
objectives, augmentations, parallel strategies, input pipelines), each as one UserError line."""
import ml_collections

from gan_jax import augment
from gan_jax import config as config_lib
from gan_jax.config import require, require_choice
from gan_jax import data
from gan_jax import losses
from gan_jax import models
from gan_jax import parallel


def check_run(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises UserError naming the first bad setting and what to do about it."""
  models.architecture(config.model)  # an unknown model first: its settings mean nothing then
  require_choice("parallelism", config.parallelism, parallel.STRATEGIES)
  require_choice("loss", config.loss, tuple(losses.OBJECTIVES))
  require_choice("input_pipeline", config.input_pipeline, data.INPUT_PIPELINES)
  config_lib.validate(config, num_devices)
  policy = augment.parse_policy(config.augment)
  unknown = set(policy) - set(augment.OPERATIONS)
  require(not unknown, f"--augment={config.augment} names unknown augmentations {sorted(unknown)}; use a "
          f"comma-separated subset of {','.join(augment.OPERATIONS)}")
  require(not config.ada_target or policy,
          "--ada_target adapts the augmentation probability but --augment is empty; name the "
          f"augmentations, e.g. --augment={','.join(augment.OPERATIONS)}")
  objective = losses.OBJECTIVES[config.loss]
  labelled = [name for name, o in losses.OBJECTIVES.items() if o.label_smoothing]
  require(not config.label_smoothing or objective.label_smoothing,
          f"--label_smoothing works with --loss={' or '.join(labelled)}, not {config.loss}")
  require(config.g_batch_size in (0, config.batch_size) or not (
      objective.g_needs_real or config.feature_matching),
          f"--loss={config.loss} and --feature_matching compare G's batch with a real batch: leave "
          "--g_batch_size at 0 (the real batch's size)")
  models.check(config, (config.image_size, config.image_size, 3), config.batch_size // num_devices)
