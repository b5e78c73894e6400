"""The dcgan and sngan presets' train step in gan_jax against the same step written in PyTorch, on CPU.

    python benchmarks/torch_reference.py                               # both presets, all CPUs
    python benchmarks/torch_reference.py --presets=dcgan --threads=1 --steps=5 --repeats=3
    python benchmarks/torch_reference.py --presets=sngan --batch_size=16 --set=d_steps=2
    python benchmarks/torch_reference.py --presets=dcgan_cpu,cifar10_laptop --threads=2

The PyTorch side (`pip install torch`, CPU build; not a dependency of gan_jax: without it only the JAX
side runs) is the preset's models layer for layer, with the same parameter counts (printed and checked),
the same initialisers (flax's defaults: lecun_normal kernels and zero biases; SNGAN: xavier_uniform, as
gan_jax/models/resnet.py), the same BatchNorm momentum and epsilon, spectral norm with one power
iteration per call in D (SNGAN), the same objective and Adam(lr, b1, b2, eps=1e-8), and the same step:
d_steps D updates, each on its own real batch and freshly generated images (D sees real and generated
images as one batch, as gan_jax does), then one G update against D (no gradients for D's weights),
then the EMA of G's weights; with DiffAugment translation (cifar10_laptop) every image D sees is shifted
as gan_jax.augment.translation shifts it. It runs eagerly in NCHW with torch's default kernels, as PyTorch code does.
DCGAN's transposed convs are ConvTranspose2d(k=5, s=2, padding=2, output_padding=1), whose output
has the shape of flax's 'SAME' transposed conv.

Both sides get the same CPUs and thread count (--threads, default all; benchmarks/cpu_threads.py says
how XLA:CPU's thread count is set) and are timed interleaved, each the best of --repeats runs of
--steps steps after a warm-up. Columns:
  params       G + D parameters (the same on both sides, or the script stops)
  batch        images per D update (--batch_size, default the preset's); d_steps D updates per step
  jit ms       jax.jit(train_step, donate_argnums=0) on a constant batch, per train step
  trainer ms   gan_jax's training path: parallel.DataParallel('shard_map', one device).train_function
               (the dataset on the device, each batch drawn inside the compiled call), per train step
  torch ms     the PyTorch step on a constant batch
  jit/torch, trainer/torch   time ratios (< 1: JAX is faster)
  compile s    XLA compilation of the jit step (lower + compile) and of the trainer's function (its
               first call's time minus a later call's)
"""
import math
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cpu_threads  # pylint: disable=g-import-not-at-top

_PRESETS = flags.DEFINE_list("presets", ["dcgan", "sngan"], "Presets (experiments/<name>.py): dcgan, "
                             "dcgan_cpu, cifar10_laptop, sngan.")
_SET = flags.DEFINE_list("set", [], "field=value overrides applied to every preset.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 0, "Images per D update (0: the preset's).")
_THREADS = flags.DEFINE_integer("threads", 0, "CPUs and threads for both sides (0: all CPUs).")
_STEPS = flags.DEFINE_integer("steps", 3, "Train steps per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs of each side, interleaved; the best counts.")
_SUPPORTED = {"dcgan": ("dcgan", "nonsaturating"), "dcgan_cpu": ("dcgan", "nonsaturating"),
              "cifar10_laptop": ("dcgan", "nonsaturating"), "sngan": ("resnet", "hinge")}
# DiffAugment policies the PyTorch side implements (applied with probability 1, as augment_p=1 does).
_AUGMENTS = ("", "translation")
# Fields whose other values the PyTorch side does not implement, with the value it assumes.
_FIXED = {"conditional": False, "compute_dtype": "float32", "r1_gamma": 0.0,
          "r2_gamma": 0.0, "gp_weight": 0.0, "instance_noise": 0.0, "feature_matching": 0.0,
          "label_smoothing": 0.0, "model_args.g_spectral_norm": False, "model_args.attention_resolution": 0}


def load_preset(name: str, overrides):
  # gan_jax imports jax: only after cpu_threads.limit has set XLA's thread count.
  import experiments  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  try:
    config = experiments.load_preset(name, overrides)
  except UserError as e:
    raise SystemExit(f"error: {e}") from e
  if _BATCH_SIZE.value:
    config.batch_size = _BATCH_SIZE.value
  if _SUPPORTED.get(name) != (config.model, config.loss):
    raise SystemExit(f"the PyTorch side has the presets {', '.join(_SUPPORTED)} with their model and "
                     f"loss only; got {name} with model={config.model}, loss={config.loss}")
  value_of = lambda field: (config.model_args.get(field.split(".", 1)[1]) if field.startswith("model_args.")
                            else config[field])
  changed = {field: value_of(field) for field, value in _FIXED.items()
             if value_of(field) not in (value, None)}
  if config.augment not in _AUGMENTS or (config.augment and config.augment_p != 1.0):
    changed["augment"] = (config.augment, config.augment_p)
  if changed:
    raise SystemExit(f"the PyTorch side does not implement {changed}; it has {_FIXED} and the "
                     f"augment policies {_AUGMENTS} at augment_p=1")
  return config


# ---------------------------------------------------------------------------------------------------
# The PyTorch side.


def _initialise(torch, module, kernel_init: str):
  """Flax's initialisation of `module`'s conv and linear layers: kernels by `kernel_init` ('lecun':
  flax's default lecun_normal; 'glorot': xavier_uniform), zero biases."""
  tnn = torch.nn
  for layer in module.modules():
    if not isinstance(layer, (tnn.Conv2d, tnn.ConvTranspose2d, tnn.Linear)):
      continue
    if kernel_init == "glorot":
      tnn.init.xavier_uniform_(layer.weight)
    else:
      # lecun_normal: a normal truncated at 2 standard deviations, scaled to variance 1 / fan_in; the
      # input features are dim 1 of Conv2d and Linear weights, dim 0 of ConvTranspose2d's.
      in_dim = 0 if isinstance(layer, tnn.ConvTranspose2d) else 1
      fan_in = layer.weight.shape[in_dim] * layer.weight[0, 0].numel()
      std = math.sqrt(1.0 / fan_in) / .87962566103423978
      tnn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    if layer.bias is not None:
      tnn.init.zeros_(layer.bias)
  return module


def _dcgan_models(torch, config):
  """gan_jax/models/dcgan.py's G and D (unconditional)."""
  tnn, F = torch.nn, torch.nn.functional
  steps = int(round(math.log2(config.image_size / 4)))
  act = (lambda: tnn.LeakyReLU(0.2)) if config.model_args.g_activation == "leaky_relu" else tnn.ReLU
  top = config.g_width * 2**(steps - 1)
  # flax's BatchNorm: momentum 0.99 of the running average = torch's momentum 0.01; eps 1e-5 in both.
  g_layers = [tnn.Linear(config.latent_dim, 16 * top, bias=False), tnn.BatchNorm1d(16 * top, momentum=0.01),
              act(), tnn.Unflatten(1, (top, 4, 4))]
  channels = top
  for i in reversed(range(1, steps)):
    out = config.g_width * 2**(i - 1)
    g_layers += [tnn.ConvTranspose2d(channels, out, 5, 2, padding=2, output_padding=1, bias=False),
                 tnn.BatchNorm2d(out, momentum=0.01), act()]
    channels = out
  g_layers += [tnn.ConvTranspose2d(channels, 3, 5, 2, padding=2, output_padding=1), tnn.Tanh()]

  class Discriminator(tnn.Module):

    def __init__(self):
      super().__init__()
      widths = [3] + [config.d_width * 2**i for i in range(steps)]
      self.convs = tnn.ModuleList(tnn.Conv2d(a, b, 5, 2, padding=2) for a, b in zip(widths, widths[1:]))
      self.dense = tnn.Linear(widths[-1] * 16, 1)

    def forward(self, x):
      for conv in self.convs:
        x = F.dropout(F.leaky_relu(conv(x), 0.2), config.model_args.d_dropout, self.training)
      return self.dense(x.flatten(1))[:, 0]

  return (_initialise(torch, tnn.Sequential(*g_layers), "lecun"),
          _initialise(torch, Discriminator(), "lecun"))


def _resnet_models(torch, config):
  """gan_jax/models/resnet.py's SNGAN G and D (unconditional, no self-attention)."""
  tnn, F = torch.nn, torch.nn.functional
  blocks = int(round(math.log2(config.image_size / 4)))
  downsampling = [True] * max(blocks - 1, 1) + [False, False]
  upsample = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
  # ConditionalBatchNorm's momentum 0.9 = torch's 0.1.
  batch_norm = lambda channels: tnn.BatchNorm2d(channels, momentum=0.1)

  class GBlock(tnn.Module):

    def __init__(self, channels):
      super().__init__()
      self.bn1, self.bn2 = batch_norm(channels), batch_norm(channels)
      self.conv1 = tnn.Conv2d(channels, channels, 3, padding=1)
      self.conv2 = tnn.Conv2d(channels, channels, 3, padding=1)
      self.shortcut = tnn.Conv2d(channels, channels, 1)

    def forward(self, x):
      h = self.conv1(upsample(F.relu(self.bn1(x))))
      h = self.conv2(F.relu(self.bn2(h)))
      return h + self.shortcut(upsample(x))

  class Generator(tnn.Module):

    def __init__(self):
      super().__init__()
      self.dense = tnn.Linear(config.latent_dim, 16 * config.g_width)
      self.blocks = tnn.Sequential(*[GBlock(config.g_width) for _ in range(blocks)])
      self.bn = batch_norm(config.g_width)
      self.conv = tnn.Conv2d(config.g_width, 3, 3, padding=1)

    def forward(self, z):
      x = self.blocks(self.dense(z).view(z.shape[0], -1, 4, 4))
      return torch.tanh(self.conv(F.relu(self.bn(x))))

  class DBlock(tnn.Module):

    def __init__(self, channels_in, channels, downsample, first):
      super().__init__()
      self.downsample, self.first = downsample, first
      self.conv1 = tnn.Conv2d(channels_in, channels, 3, padding=1)
      self.conv2 = tnn.Conv2d(channels, channels, 3, padding=1)
      needs_shortcut = first or downsample or channels_in != channels
      self.shortcut = tnn.Conv2d(channels_in, channels, 1) if needs_shortcut else None

    def forward(self, x):
      pool = (lambda t: F.avg_pool2d(t, 2)) if self.downsample else (lambda t: t)
      h = self.conv1(x if self.first else F.relu(x))
      h = pool(self.conv2(F.relu(h)))
      if self.first:
        return h + self.shortcut(pool(x))
      return h + (pool(self.shortcut(x)) if self.shortcut is not None else x)

  class Discriminator(tnn.Module):

    def __init__(self):
      super().__init__()
      width = config.d_width
      self.blocks = tnn.Sequential(*[DBlock(3 if i == 0 else width, width, down, i == 0)
                                     for i, down in enumerate(downsampling)])
      self.dense = tnn.Linear(width, 1)

    def forward(self, x):
      return self.dense(F.relu(self.blocks(x)).sum(dim=(2, 3)))[:, 0]

  return _initialise(torch, Generator(), "glorot"), _initialise(torch, Discriminator(), "glorot")


def torch_models(torch, config):
  """(G, D) of the preset as torch modules, initialised as the Flax modules are."""
  generator, discriminator = (_dcgan_models if config.model == "dcgan" else _resnet_models)(torch, config)
  if config.model_args.d_spectral_norm:
    # After initialisation: the parametrization keeps the initialised weight as its `original`.
    for layer in list(discriminator.modules()):
      if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
        torch.nn.utils.parametrizations.spectral_norm(layer)
  return generator, discriminator


def _translation(torch, images):
  """gan_jax.augment.translation of each NCHW image: its own random shift of up to 1/8 of the size in y
  and x, zero-filled (DiffAugment's rand_translation)."""
  from gan_jax import augment  # pylint: disable=g-import-not-at-top  (imports jax: after cpu_threads.limit)
  n, _, h, w = images.shape
  max_y, max_x = augment.max_translation(h, w)
  dy = torch.randint(-max_y, max_y + 1, (n, 1, 1))
  dx = torch.randint(-max_x, max_x + 1, (n, 1, 1))
  rows = torch.arange(h).view(1, h, 1) + dy + max_y
  cols = torch.arange(w).view(1, 1, w) + dx + max_x
  padded = torch.nn.functional.pad(images, [max_x, max_x, max_y, max_y])
  # Index arrays on dims 0, 2, 3 around a slice: the result is (n, h, w, channels).
  return padded[torch.arange(n).view(n, 1, 1), :, rows, cols].permute(0, 3, 1, 2)


def torch_step_function(torch, config, steps: int = 1):
  """(run, parameter count, steps taken so far): run() does `steps` train steps of the preset on a
  constant batch (NCHW, in [-1, 1]), as a run of jax_step_functions does."""
  F = torch.nn.functional
  generator, discriminator = torch_models(torch, config)
  g_opt = torch.optim.Adam(generator.parameters(), lr=config.g_lr, betas=(config.g_b1, config.g_b2), eps=1e-8)
  d_opt = torch.optim.Adam(discriminator.parameters(), lr=config.d_lr, betas=(config.d_b1, config.d_b2),
                           eps=1e-8)
  g_params = list(generator.parameters())
  ema = [p.detach().clone() for p in g_params]
  batch, d_steps = config.batch_size, config.d_steps
  real = torch.rand(d_steps, batch, 3, config.image_size, config.image_size) * 2 - 1
  if config.loss == "hinge":
    d_loss = lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean()
    g_loss = lambda f: -f.mean()
  else:
    d_loss = lambda r, f: (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                           + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
    g_loss = lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
  augment = (lambda x: _translation(torch, x)) if config.augment == "translation" else (lambda x: x)
  generator.train()
  discriminator.train()
  state = {"step": 0}

  def step():
    for i in range(d_steps):
      with torch.no_grad():
        fake = generator(torch.randn(batch, config.latent_dim))
      logits = discriminator(augment(torch.cat([real[i], fake])))
      loss = d_loss(logits[:batch], logits[batch:])
      d_opt.zero_grad(set_to_none=True)
      loss.backward()
      d_opt.step()
    discriminator.requires_grad_(False)
    loss = g_loss(discriminator(augment(generator(torch.randn(batch, config.latent_dim)))))
    g_opt.zero_grad(set_to_none=True)
    loss.backward()
    g_opt.step()
    discriminator.requires_grad_(True)
    # gan_jax's EMA: decay min(ema_decay, (1 + step) / (10 + step)).
    decay = min(config.ema_decay, (1 + state["step"]) / (10 + state["step"]))
    with torch.no_grad():
      for average, param in zip(ema, g_params):
        average.lerp_(param, 1 - decay)
    state["step"] += 1

  def run():
    for _ in range(steps):
      step()

  step()  # warm-up: allocations, oneDNN kernel selection
  params = sum(p.numel() for p in g_params) + sum(p.numel() for p in discriminator.parameters())
  return run, params, lambda: state["step"]


# ---------------------------------------------------------------------------------------------------
# The JAX side.


def jax_step_functions(config, steps):
  """{'jit': (run, compile s), 'trainer': (run, compile s)}, each run doing `steps` steps; and params."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gan_jax import parallel  # pylint: disable=g-import-not-at-top
  from gan_jax import train  # pylint: disable=g-import-not-at-top

  image_shape = (config.image_size, config.image_size, 3)
  rng = np.random.RandomState(0)
  total = config.batch_size * config.d_steps
  state = train.create_train_state(config, jax.random.PRNGKey(0), image_shape)
  params = sum(x.size for x in jax.tree.leaves((state.g_params, state.d_params)))
  batch = {"image": jnp.asarray(rng.uniform(-1, 1, (total,) + image_shape), jnp.float32),
           "label": jnp.zeros((total,), jnp.int32)}
  keys = list(jax.random.split(jax.random.PRNGKey(1), steps))
  start = time.perf_counter()
  step = jax.jit(train.train_step, donate_argnums=0).lower(state, batch, keys[0]).compile()
  jit_compile = time.perf_counter() - start
  holder = {"jit": state}

  def run_jit():
    state, metrics = holder["jit"], None
    for key in keys:
      state, metrics = step(state, batch, key)
    holder["jit"] = jax.block_until_ready((state, metrics))[0]

  run_jit()  # warm-up: XLA:CPU sets up some kernels on their first run
  dp = parallel.DataParallel("shard_map", jax.local_devices()[:1])
  # A dataset of several steps' batches, so that drawing batches is not reduced to one.
  num_examples = 4 * total
  images = rng.randint(0, 256, (num_examples,) + image_shape).astype(np.uint8)
  data = dp.put_data(images, np.zeros(num_examples, np.int32))
  holder["trainer"] = dp.put_state(train.create_train_state(config, jax.random.PRNGKey(0), image_shape,
                                                            axis_name=dp.axis_name))
  function = dp.train_function(global_batch=config.batch_size, steps=steps)

  def run_trainer():
    holder["trainer"] = jax.block_until_ready(function(holder["trainer"], *data))[0]

  # train_function compiles on its first call (on CPU it may compile a one-step program, on
  # accelerators a `steps`-step loop): its compile time is the first call's minus a later call's.
  start = time.perf_counter()
  run_trainer()
  first_call = time.perf_counter() - start
  start = time.perf_counter()
  run_trainer()  # also the warm-up
  trainer_compile = first_call - (time.perf_counter() - start)
  return {"jit": (run_jit, jit_compile), "trainer": (run_trainer, trainer_compile)}, params


def _best_of(functions, repeats):
  """Best wall time of each (warmed-up) function, the functions run in turn `repeats` times."""
  best = {name: float("inf") for name in functions}
  for _ in range(repeats):
    for name, function in functions.items():
      start = time.perf_counter()
      function()
      best[name] = min(best[name], time.perf_counter() - start)
  return best


def main(argv):
  del argv
  threads = cpu_threads.limit(_THREADS.value)
  # jax only now: XLA:CPU sizes its thread pool when it starts.
  import jax  # pylint: disable=g-import-not-at-top
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    torch = None
  jax.devices()
  print(f"JAX {jax.__version__}, {jax.devices()[0].device_kind}: {threads} CPUs "
        f"({cpu_threads.xla_pool_threads()} XLA intra-op threads), XLA_FLAGS="
        f"'{os.environ.get('XLA_FLAGS', '')}'")
  if torch is None:
    print("torch is not installed: pip install torch (CPU build) to time the PyTorch reference; "
          "skipping the PyTorch side")
  else:
    cpu_threads.limit_torch(torch, threads)
    print(f"torch {torch.__version__}: {torch.get_num_threads()} intra-op threads")
  steps = _STEPS.value
  print(f"{'preset':7} {'params':>10} {'batch':>5} {'d_steps':>7} {'jit ms':>9} {'trainer ms':>10} "
        f"{'torch ms':>9} {'jit/torch':>9} {'trainer/torch':>13} {'compile s (jit, trainer)':>25}")
  for name in _PRESETS.value:
    config = load_preset(name, _SET.value)
    functions, params = jax_step_functions(config, steps)
    runs = {side: run for side, (run, _) in functions.items()}
    if torch is not None:
      runs["torch"], torch_params, _ = torch_step_function(torch, config, steps)
      if torch_params != params:
        raise SystemExit(f"{name}: the PyTorch models have {torch_params} parameters, gan_jax's {params}")
    ms = {side: 1e3 * seconds / steps for side, seconds in _best_of(runs, _REPEATS.value).items()}
    torch_columns = (f"{ms['torch']:9.1f} {ms['jit'] / ms['torch']:9.2f} {ms['trainer'] / ms['torch']:13.2f}"
                     if torch is not None else f"{'-':>9} {'-':>9} {'-':>13}")
    print(f"{name:7} {params:10d} {config.batch_size:5d} {config.d_steps:7d} {ms['jit']:9.1f} "
          f"{ms['trainer']:10.1f} {torch_columns} {functions['jit'][1]:12.1f} {functions['trainer'][1]:12.1f}",
          flush=True)


if __name__ == "__main__":
  app.run(main)
