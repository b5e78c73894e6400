"""Generator and discriminator architectures, chosen by `config.model`, with their own settings.

An architecture is one module with `build(config, args, image_shape, *, num_classes, axis_name, dtype)`
-> (G, D), `default_args()` -> {setting: default} and `check(args, config, image_shape, per_device_batch)`
(raises ValueError with a one-line message), registered here or by `register` (a new architecture in
one file: see README, "Extending gan_jax"). Its settings live in `config.model_args`
(`--config.model_args.<setting>=...`); the common ones (latent_dim, g_width, d_width, compute_dtype) in
the config itself.

Every architecture follows one contract, which the train step relies on:

  Generator:      G(z, labels=None, *, train) -> images (B, H, W, C), float32, in [-1, 1] (tanh),
                  except StyleGAN2's unsquashed output (saved images are clipped) and the toy
                  MLP's points (B, *shape) (gan_jax.synthetic)
  Discriminator:  D(x, labels=None, *, train, example_keys=None) -> (logits (B,), features (B, F)),
                  both float32; `features` are the activations the logits are read from (used by
                  feature matching and by the projection of conditional models).

- Conditional models (num_classes > 0) need `labels` (B,) int32; unconditional ones ignore them.
- The only mutable collection is "batch_stats": BatchNorm running statistics and spectral norm's
  power-iteration vectors, both updated when `train` is True.
- G is deterministic given (z, labels); D's only randomness is per-example dropout keyed by
  `example_keys` (B, 2), so results do not depend on how a batch is split over devices.
- `dtype` is the compute dtype (bfloat16 for mixed precision); parameters stay float32.
- `axis_name` names the device axes that BatchNorm statistics are averaged over during training.
"""
import dataclasses
from types import ModuleType
from typing import Callable, Dict, Optional

import jax.numpy as jnp

from gan_jax import config as config_lib
from gan_jax.errors import UserError
from gan_jax.models import biggan
from gan_jax.models import dcgan
from gan_jax.models import resnet
from gan_jax.models import stylegan2
from gan_jax.models import toy

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Architecture:
  build: Callable  # (config, args, image_shape, *, num_classes, axis_name, dtype) -> (G, D)
  default_args: Callable[[], Dict] = dict
  check: Optional[Callable] = None  # (args, config, image_shape, per_device_batch); raises ValueError


ARCHITECTURES: Dict[str, Architecture] = {}


def register(name: str, architecture) -> None:
  """Makes `config.model=name` build `architecture`: an Architecture, or a module with build,
  default_args and (optionally) check."""
  if isinstance(architecture, ModuleType):
    architecture = Architecture(architecture.build, getattr(architecture, "default_args", dict),
                                getattr(architecture, "check", None))
  ARCHITECTURES[name] = architecture


for _name, _module in (("dcgan", dcgan), ("resnet", resnet), ("biggan", biggan), ("stylegan2", stylegan2),
                       ("toy", toy)):
  register(_name, _module)


def architecture(name: str) -> Architecture:
  config_lib.require_choice("model", name, tuple(ARCHITECTURES))
  return ARCHITECTURES[name]


def default_args(name: str) -> Dict:
  """The settings of architecture `name` with their defaults."""
  return dict(architecture(name).default_args())


def resolve_args(config) -> Dict:
  """config.model_args over the architecture's defaults; a setting it does not have is an error."""
  args = default_args(config.model)
  given = dict(config.get("model_args") or {})
  unknown = sorted(set(given) - set(args))
  if unknown:
    raise UserError(f"--config.model_args.{unknown[0]} is not a setting of --model={config.model} (its "
                    f"settings: {', '.join(sorted(args)) or 'none'}); drop it, or pick the model it belongs to")
  args.update(given)
  return args


def switch_args(model_args, name: str) -> Dict:
  """The settings for switching to architecture `name`: its defaults, with the values of the settings it
  shares with `model_args` kept."""
  args = default_args(name)
  args.update({k: v for k, v in dict(model_args or {}).items() if k in args})
  return args


def check(config, image_shape, per_device_batch: int) -> None:
  """The architecture's and the compute dtype's checks, as one-line UserErrors."""
  config_lib.require_choice("compute_dtype", config.compute_dtype, tuple(COMPUTE_DTYPES))
  arch = architecture(config.model)
  args = resolve_args(config)
  if arch.check:
    try:
      arch.check(args, config, tuple(image_shape), per_device_batch)
    except ValueError as e:
      raise UserError(f"{e} (--model={config.model})") from e


def build(config, image_shape, num_classes: int = 0, axis_name=None):
  """Returns (generator, discriminator) modules for images of `image_shape` (H, W, C).

  `num_classes` > 0 makes both class-conditional.
  """
  return architecture(config.model).build(config, resolve_args(config), tuple(image_shape),
                                          num_classes=num_classes, axis_name=axis_name,
                                          dtype=COMPUTE_DTYPES[config.compute_dtype])
