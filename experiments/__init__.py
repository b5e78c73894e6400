"""The presets: experiments/<name>.py, each with get_config(); and `load_preset` for scripts."""
import importlib
import os
from typing import Sequence

import ml_collections

from gan_jax.errors import UserError


def names() -> list:
  return sorted(f[:-3] for f in os.listdir(os.path.dirname(__file__))
                if f.endswith(".py") and not f.startswith("_"))


def load_preset(name: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """experiments/<name>.py's config with `field=value` overrides applied (scripts' --set; a model
  setting is `model_args.<setting>=value`). An item without "=" continues the one before it: --set is a
  comma-separated list flag, so `--set=augment=translation,cutout,batch_size=32` arrives as
  ["augment=translation", "cutout", "batch_size=32"]."""
  if name not in names():
    raise UserError(f"--preset={name} is unknown; choose one of {', '.join(names())}")
  config = importlib.import_module(f"experiments.{name}").get_config()
  items = []
  for item in overrides:
    if "=" not in item and items:
      items[-1] += "," + item
    else:
      items.append(item)
  for item in items:
    field, _, value = item.partition("=")
    *parents, leaf = field.split(".")
    node = config
    for parent in parents:
      node = node.get(parent) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
      raise UserError(f"--set={item}: the config has no field {field}; see gan_jax/config.py and the "
                      "architecture's default_args()")
    current = node[leaf]
    try:
      node[leaf] = (value.lower() in ("1", "true", "yes") if isinstance(current, bool)
                    else type(current)(value))
    except ValueError as e:
      raise UserError(f"--set={item}: {field} takes a {type(current).__name__}") from e
  return config


def with_model(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """Sets `config` to architecture `name` with all its settings at their defaults in config.model_args
  (where --config.model_args.<setting> overrides them); returns `config`."""
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  config.model = name
  config.model_args = ml_collections.ConfigDict(models.default_args(name))
  return config
