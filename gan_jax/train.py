"""The GAN training state and its one pure update step.

Research code can use it without flags or devices:

    from gan_jax.train import create_train_state, train_step
    state = create_train_state(config, jax.random.PRNGKey(0), image_shape=(32, 32, 3))
    state, metrics = jax.jit(train_step, donate_argnums=0)(state, batch, rng)

A step is `d_steps` discriminator updates, each on its own real batch, then one generator update, then
the generator's EMA and ADA's augmentation probability. Everything random is keyed by the example's index
in the global batch, so a step gives the same result on any number of devices.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

import flax
from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan_jax import augment
from gan_jax import config as config_lib
from gan_jax import losses
from gan_jax import models

# Per-example random streams: fold_in(example_key, stream).
_LATENT, _FAKE_LABEL, _AUGMENT_REAL, _AUGMENT_FAKE, _DROPOUT, _NOISE_REAL, _NOISE_FAKE, _GP_MIX = range(8)
# The step's key for the real batch's left-right flips (config.mirror), apart from the D updates' keys.
_MIRROR_STREAM = 2**16  # above any D update index
_DEFAULTS = config_lib.defaults()


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """What the train step does besides the architectures; fixed for a run (part of the compiled step).

  The fields mean what the config fields of the same names mean, with their defaults (gan_jax/config.py).
  """
  loss: str = _DEFAULTS.loss
  label_smoothing: float = _DEFAULTS.label_smoothing
  d_steps: int = _DEFAULTS.d_steps
  g_batch_size: int = _DEFAULTS.g_batch_size  # global; 0 = the D updates' batch
  r1_gamma: float = _DEFAULTS.r1_gamma
  r2_gamma: float = _DEFAULTS.r2_gamma
  gp_weight: float = _DEFAULTS.gp_weight
  reg_every: int = _DEFAULTS.reg_every
  instance_noise: float = _DEFAULTS.instance_noise
  instance_noise_steps: int = _DEFAULTS.instance_noise_steps
  feature_matching: float = _DEFAULTS.feature_matching
  augment: Tuple[str, ...] = augment.parse_policy(_DEFAULTS.augment)
  ada_target: float = _DEFAULTS.ada_target
  ada_interval: int = _DEFAULTS.ada_interval
  ada_kimg: float = _DEFAULTS.ada_kimg
  ema_decay: float = _DEFAULTS.ema_decay
  ema_warmup: bool = _DEFAULTS.ema_warmup
  ema_kimg: float = _DEFAULTS.ema_kimg
  ema_rampup: float = _DEFAULTS.ema_rampup
  ema_start: int = _DEFAULTS.ema_start
  mirror: bool = _DEFAULTS.mirror
  latent_dim: int = _DEFAULTS.latent_dim
  num_classes: int = 0  # > 0: class-conditional

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, num_classes: int = 0) -> "StepSettings":
    fields = {f.name: config[f.name] for f in dataclasses.fields(cls)
              if f.name in config and f.name not in ("augment", "num_classes")}
    return cls(**fields, augment=augment.parse_policy(config.augment), num_classes=num_classes)

  @property
  def regularized(self) -> bool:
    return bool(self.r1_gamma or self.r2_gamma or self.gp_weight)


@struct.dataclass
class GANState:
  """Everything that defines a training run at a step (and is checkpointed)."""
  step: jax.Array
  key: jax.Array  # base PRNG key; the key of step s is fold_in(key, s), so resuming is exact
  g_params: Any
  g_batch_stats: Any  # BatchNorm statistics and spectral-norm vectors of G
  g_ema_params: Any  # exponential moving average of g_params: what samples and evaluation use
  g_ema_batch_stats: Any  # the same average of g_batch_stats: the statistics of the averaged weights
  d_params: Any
  d_batch_stats: Any  # spectral-norm vectors of D
  g_opt_state: Any
  d_opt_state: Any
  augment_p: jax.Array  # probability of each augmentation (adapted by ADA)
  ada_sign_sum: jax.Array  # sum of E[sign D(x_real)] over the D updates since ADA's last adjustment
  ada_updates: jax.Array  # number of those D updates
  generator: flax.linen.Module = struct.field(pytree_node=False)
  discriminator: flax.linen.Module = struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  settings: StepSettings = struct.field(pytree_node=False, default=StepSettings())
  # Device axes that gradients, metrics and BatchNorm statistics are averaged over (None: one device).
  axis_name: Any = struct.field(pytree_node=False, default=None)

  @property
  def latent_dim(self) -> int:
    return self.settings.latent_dim

  @property
  def num_classes(self) -> int:
    return self.settings.num_classes

  def generate(self, z, labels=None, *, ema: bool = True):
    """Images from latents (and class labels for conditional models), BatchNorm in inference mode.

    `ema` picks the generator's moving-average weights with their own averaged BatchNorm statistics
    (the ones to show and evaluate); else the latest weights with their running statistics.
    """
    if self.num_classes and labels is None:
      raise ValueError("this generator is class-conditional: pass labels")
    return self.generator.apply(self.generator_variables(ema), z, labels, train=False)

  def generator_variables(self, ema: bool = True):
    """{"params", "batch_stats"} of the EMA generator (`ema`) or of the latest one: what `generate`
    applies, and what checkpointing.export_models saves."""
    if ema:
      return {"params": self.g_ema_params, "batch_stats": self.g_ema_batch_stats}
    return {"params": self.g_params, "batch_stats": self.g_batch_stats}


def create_train_state(config: ml_collections.ConfigDict, key, image_shape, num_classes: int = 0,
                       axis_name=None, abstract: bool = False) -> GANState:
  """Initialises G, D and their Adam optimizers for images of `image_shape` (H, W, C).

  `num_classes` > 0 makes the models class-conditional (with `config.conditional`). `abstract`: only the
  state's shapes and dtypes (jax.ShapeDtypeStruct leaves), nothing computed or compiled: the template
  a checkpoint is restored into.
  """
  num_classes = num_classes if config.conditional else 0
  settings = StepSettings.from_config(config, num_classes)
  generator, discriminator = models.build(config, image_shape, num_classes=num_classes,
                                          axis_name=axis_name)
  # lr_decay "linear": both learning rates fall linearly to 0 over the run's num_steps (sngan_projection's
  # LinearShift); D's optimiser counts its own updates, d_steps per step.
  decay_steps = config.num_steps if config.lr_decay == "linear" else 0
  g_tx = _adam(config.g_lr, config.g_b1, config.g_b2, decay_steps)
  d_tx = _adam(config.d_lr, config.d_b1, config.d_b2, decay_steps * config.d_steps)

  @jax.jit  # one compilation instead of hundreds of eager ops (seconds on CPU)
  def initial_state(key):
    init_key, g_key, d_key = jax.random.split(key, 3)
    labels = jnp.zeros((1,), jnp.int32)
    g_vars = generator.init(g_key, jnp.zeros((1, config.latent_dim)), labels, train=False)
    d_vars = discriminator.init(d_key, jnp.zeros((1,) + tuple(image_shape)), labels, train=False)
    return GANState(
        step=jnp.zeros((), jnp.int32), key=init_key,
        g_params=g_vars["params"], g_batch_stats=g_vars.get("batch_stats", {}),
        g_ema_params=g_vars["params"], g_ema_batch_stats=g_vars.get("batch_stats", {}),
        d_params=d_vars["params"], d_batch_stats=d_vars.get("batch_stats", {}),
        g_opt_state=g_tx.init(g_vars["params"]), d_opt_state=d_tx.init(d_vars["params"]),
        augment_p=jnp.asarray(config.augment_p, jnp.float32),
        ada_sign_sum=jnp.zeros((), jnp.float32), ada_updates=jnp.zeros((), jnp.float32),
        generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx, settings=settings,
        axis_name=axis_name)

  return jax.eval_shape(initial_state, key) if abstract else initial_state(key)


def _adam(learning_rate: float, b1: float, b2: float, decay_steps: int) -> optax.GradientTransformation:
  """Adam at a constant rate, or decaying linearly to 0 over `decay_steps` updates (> 0)."""
  if decay_steps:
    learning_rate = optax.linear_schedule(learning_rate, 0.0, decay_steps)
  return optax.adam(learning_rate, b1=b1, b2=b2)


def _device_mean(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _num_devices(axis_name):
  return 1 if axis_name is None else jax.lax.psum(1, axis_name)


def _example_keys(rng, batch_size, axis_name):
  """One key per example, derived from its index in the global batch (not from the device)."""
  offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * batch_size
  return jax.vmap(jax.random.fold_in, (None, 0))(rng, offset + jnp.arange(batch_size))


def _stream(keys, stream):
  return jax.vmap(jax.random.fold_in, (0, None))(keys, stream)


def _latents(keys, latent_dim):
  return jax.vmap(lambda k: jax.random.normal(k, (latent_dim,)))(_stream(keys, _LATENT))


def _fake_labels(keys, num_classes):
  """Uniformly drawn classes for generated images (zeros for unconditional models)."""
  if not num_classes:
    return jnp.zeros(keys.shape[0], jnp.int32)
  return jax.vmap(lambda k: jax.random.randint(k, (), 0, num_classes))(_stream(keys, _FAKE_LABEL))


def _generate_train(state: GANState, g_params, z, labels):
  """G in training mode: (images float32, new batch_stats)."""
  images, new_vars = state.generator.apply({"params": g_params, "batch_stats": state.g_batch_stats}, z,
                                           labels, train=True, mutable=["batch_stats"])
  return images.astype(jnp.float32), new_vars.get("batch_stats", {})


def _discriminate(state: GANState, d_params, x, labels, dropout_keys):
  """D in training mode: (logits, features, new batch_stats)."""
  (logits, features), new_vars = state.discriminator.apply(
      {"params": d_params, "batch_stats": state.d_batch_stats}, x, labels, train=True,
      example_keys=dropout_keys, mutable=["batch_stats"])
  return logits.astype(jnp.float32), features, new_vars.get("batch_stats", {})


def _discriminate_real_and_fake(state: GANState, d_params, real_in, fake_in, labels, fake_labels,
                                dropout_keys):
  """D on real and generated images in one batch (D has no batch statistics across the two halves, and
  minibatch-stddev groups never span them): (real logits, fake logits, real features, fake features,
  new batch_stats). Generated image i drops out with the key fold_in(dropout_keys[i], 1)."""
  n = real_in.shape[0]
  logits, features, batch_stats = _discriminate(
      state, d_params, jnp.concatenate([real_in, fake_in]), jnp.concatenate([labels, fake_labels]),
      jnp.concatenate([dropout_keys, _stream(dropout_keys, 1)]))
  return logits[:n], logits[n:], features[:n], features[n:], batch_stats


def _discriminator_input(state: GANState, images, keys, augment_stream, noise_stream):
  """What D sees of `images`: augmented (DiffAugment/ADA), plus annealed instance noise."""
  s = state.settings
  if s.augment:
    images = augment.augment(images, _stream(keys, augment_stream), s.augment, state.augment_p)
  if s.instance_noise:
    std = s.instance_noise
    if s.instance_noise_steps:
      std *= jnp.maximum(0.0, 1.0 - state.step / s.instance_noise_steps)
    noise = jax.vmap(lambda k: jax.random.normal(k, images.shape[1:]))(_stream(keys, noise_stream))
    images = images + std * noise
  return images


def _regularization(state: GANState, d_params, real_in, fake_in, labels, fake_labels, keys, dropout_keys):
  """R1 + R2 + gradient penalty, as added to D's loss."""
  s = state.settings
  logits_fn = lambda y: lambda x: _discriminate(state, d_params, x, y, dropout_keys)[0]
  total = jnp.zeros((), jnp.float32)
  if s.r1_gamma:
    total += s.r1_gamma / 2 * losses.squared_gradient_norm(logits_fn(labels), real_in).mean()
  if s.r2_gamma:
    total += s.r2_gamma / 2 * losses.squared_gradient_norm(logits_fn(fake_labels), fake_in).mean()
  if s.gp_weight:
    alpha = jax.vmap(jax.random.uniform)(_stream(keys, _GP_MIX))
    total += s.gp_weight * losses.gradient_penalty(logits_fn(labels), real_in, fake_in, alpha).mean()
  return total


def convolutions_slow_in_control_flow() -> bool:
  """Whether the default backend runs convolutions slowly inside loops and conditionals.

  XLA:CPU (jax 0.10) lowers a convolution inside a while loop or a conditional, and the convolutions
  of its gradient, without its fast (Eigen) kernels: the weight gradient of a 3x3 conv, batch 64,
  16x16x128, took 372 ms alone and 47 s inside lax.scan on 2 cores. So on CPU, D updates are
  unrolled, lazy penalties are decided on the host, and parallel.DataParallel calls one step at a time.
  """
  return jax.default_backend() == "cpu"


def d_update(state: GANState, batch: Dict[str, jax.Array], rng: jax.Array,
             regularize: Optional[bool] = None) -> Tuple[GANState, Dict[str, jax.Array]]:
  """One discriminator update on `batch` (this device's share) against fresh generated images.

  `regularize` says whether a lazy penalty (reg_every > 1) is due at this step; None decides it on the
  device from state.step (a conditional: slow on CPU, see convolutions_slow_in_control_flow).
  """
  s = state.settings
  real, labels = batch["image"], batch["label"]
  keys = _example_keys(rng, real.shape[0], state.axis_name)
  fake_labels = _fake_labels(keys, s.num_classes)
  fake, _ = _generate_train(state, state.g_params, _latents(keys, s.latent_dim), fake_labels)
  fake = jax.lax.stop_gradient(fake)
  real_in = _discriminator_input(state, real, keys, _AUGMENT_REAL, _NOISE_REAL)
  fake_in = _discriminator_input(state, fake, keys, _AUGMENT_FAKE, _NOISE_FAKE)
  dropout_keys = _stream(keys, _DROPOUT)

  def loss_fn(d_params):
    real_logits, fake_logits, _, _, batch_stats = _discriminate_real_and_fake(
        state, d_params, real_in, fake_in, labels, fake_labels, dropout_keys)
    loss = losses.OBJECTIVES[s.loss].d_loss(real_logits, fake_logits, s.label_smoothing)
    reg = jnp.zeros((), jnp.float32)
    if s.regularized:
      penalty = lambda: _regularization(state, d_params, real_in, fake_in, labels, fake_labels, keys,
                                        dropout_keys)
      if s.reg_every == 1:
        reg = penalty()
      elif regularize is not None:  # lazy regularisation decided by the caller
        reg = s.reg_every * penalty() if regularize else jnp.zeros((), jnp.float32)
      else:  # lazy regularisation (StyleGAN2): every reg_every steps, reg_every times as strong
        reg = jax.lax.cond(state.step % s.reg_every == 0, lambda: s.reg_every * penalty(),
                           lambda: jnp.zeros((), jnp.float32))
    return loss + reg, (loss, reg, real_logits, fake_logits, batch_stats)

  (_, (loss, reg, real_logits, fake_logits, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.d_params)
  grads = _device_mean(grads, state.axis_name)
  updates, opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  metrics = _device_mean({"d_loss": loss, "d_real": jax.nn.sigmoid(real_logits).mean(),
                          "d_fake": jax.nn.sigmoid(fake_logits).mean(),
                          "real_sign": jnp.sign(real_logits).mean()}, state.axis_name)
  if s.regularized:
    metrics["d_reg"] = _device_mean(reg, state.axis_name)
  state = state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt_state=opt_state,
                        d_batch_stats=batch_stats, ada_sign_sum=state.ada_sign_sum + metrics["real_sign"],
                        ada_updates=state.ada_updates + 1)
  return state, metrics


def g_update(state: GANState, batch: Dict[str, jax.Array],
             rng: jax.Array) -> Tuple[GANState, Dict[str, jax.Array]]:
  """One generator update against the current D, then the EMA of G's weights.

  `batch` (real images) is read only by the relativistic loss and feature matching; G's batch is
  g_batch_size generated images (global) where that is set, else as many as `batch` has.
  """
  s = state.settings
  needs_real = losses.OBJECTIVES[s.loss].g_needs_real or s.feature_matching > 0
  real, labels = batch["image"], batch["label"]
  num_fake = s.g_batch_size // _num_devices(state.axis_name) if s.g_batch_size else real.shape[0]
  keys = _example_keys(rng, num_fake, state.axis_name)
  z, fake_labels = _latents(keys, s.latent_dim), _fake_labels(keys, s.num_classes)
  dropout_keys = _stream(keys, _DROPOUT)
  real_in = _discriminator_input(state, real, keys, _AUGMENT_REAL, _NOISE_REAL) if needs_real else None

  def loss_fn(g_params):
    fake, batch_stats = _generate_train(state, g_params, z, fake_labels)
    fake_in = _discriminator_input(state, fake, keys, _AUGMENT_FAKE, _NOISE_FAKE)
    if needs_real:
      real_logits, fake_logits, real_features, fake_features, _ = _discriminate_real_and_fake(
          state, state.d_params, real_in, fake_in, labels, fake_labels, dropout_keys)
      real_logits = jax.lax.stop_gradient(real_logits)
    else:
      fake_logits, fake_features, _ = _discriminate(state, state.d_params, fake_in, fake_labels,
                                                    _stream(dropout_keys, 1))
      real_logits = real_features = None
    loss = losses.OBJECTIVES[s.loss].g_loss(fake_logits, real_logits)
    matching = (losses.feature_matching(real_features, fake_features, state.axis_name)
                if s.feature_matching else jnp.zeros((), jnp.float32))
    return loss + s.feature_matching * matching, (loss, matching, batch_stats)

  (_, (loss, matching, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  grads = _device_mean(grads, state.axis_name)
  updates, opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  metrics = {"g_loss": loss}
  if s.feature_matching:
    metrics["feature_matching"] = matching
  beta = ema_beta(s, state.step, real.shape[0] * _num_devices(state.axis_name))
  # BatchNorm's running statistics (and spectral norm's vectors) are averaged like the weights, as
  # BigGAN-PyTorch's utils.ema averages every buffer of its state_dict: the latest weights' statistics do
  # not belong to the averaged weights (issue 18 measured FID-2k 290.0 with them against 272.2 with
  # statistics recomputed for the averaged weights).
  state = state.replace(g_params=g_params, g_batch_stats=batch_stats, g_opt_state=opt_state,
                        g_ema_params=ema_update(state.g_ema_params, g_params, beta),
                        g_ema_batch_stats=ema_update(state.g_ema_batch_stats, batch_stats, beta))
  return state, _device_mean(metrics, state.axis_name)


def ema_beta(settings: StepSettings, step, batch_size: int) -> jax.Array:
  """The EMA's decay at the G update of `step` (0-based) with a global batch of `batch_size`.

  - ema_kimg > 0 (StyleGAN2-ADA, training/training_loop.py): a half-life of ema_kimg thousand images,
    limited to ema_rampup x the images seen so far when ema_rampup > 0:
    beta = 0.5 ** (batch / min(ema_kimg * 1000, step * batch * ema_rampup)).
  - else ema_decay, with ema_warmup limited to (1 + step) / (10 + step) (the num_updates rule of
    TensorFlow's ExponentialMovingAverage), which keeps the random initial weights from dominating.
  - Before step ema_start the EMA is a copy of the weights (beta 0; BigGAN-PyTorch's --ema_start).
  Beta 0 makes the EMA equal to the latest weights.
  """
  step = jnp.asarray(step, jnp.float32)
  if settings.ema_kimg:
    images = settings.ema_kimg * 1000.0
    if settings.ema_rampup:
      images = jnp.minimum(images, step * batch_size * settings.ema_rampup)
    beta = jnp.where(images > 0, 0.5 ** (batch_size / jnp.maximum(images, 1e-8)), 0.0)
  else:
    beta = jnp.asarray(settings.ema_decay, jnp.float32)
    if settings.ema_warmup:
      beta = jnp.minimum(beta, (1.0 + step) / (10.0 + step))
  return jnp.where(step < settings.ema_start, 0.0, beta)


def ema_update(ema_tree, tree, beta):
  """ema <- beta * ema + (1 - beta) * latest, leaf by leaf."""
  return jax.tree.map(lambda e, p: beta * e + (1 - beta) * p, ema_tree, tree)


def _adapt_augmentation(state: GANState, images_per_d_update: int) -> Tuple[GANState, jax.Array]:
  """ADA: every ada_interval steps, move augment_p by the sign of E[sign D(x_real)] - target."""
  s = state.settings
  due = (state.step + 1) % s.ada_interval == 0
  mean_sign = state.ada_sign_sum / jnp.maximum(state.ada_updates, 1.0)
  adapted = augment.adapt_probability(state.augment_p, mean_sign, s.ada_target,
                                      images_per_d_update * state.ada_updates, s.ada_kimg)
  return state.replace(augment_p=jnp.where(due, adapted, state.augment_p),
                       ada_sign_sum=jnp.where(due, 0.0, state.ada_sign_sum),
                       ada_updates=jnp.where(due, 0.0, state.ada_updates))


def lazy_penalty_due(settings: StepSettings, step: int) -> Optional[bool]:
  """Whether step `step` applies the lazy penalties; None when the run has none (nothing to decide)."""
  if not settings.regularized or settings.reg_every == 1:
    return None
  return step % settings.reg_every == 0


def random_mirror(images: jax.Array, rng: jax.Array, axis_name=None) -> jax.Array:
  """Each image (N, H, W, C) flipped left-right with probability 1/2, decided per example of the global
  batch (so the same on any number of devices)."""
  flip = jax.vmap(jax.random.bernoulli)(_example_keys(rng, images.shape[0], axis_name))
  return jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)


def train_step(state: GANState, batch: Dict[str, jax.Array], rng: jax.Array,
               regularize: Optional[bool] = None) -> Tuple[GANState, Dict[str, jax.Array]]:
  """`d_steps` discriminator updates, then one generator update.

  Args:
    state: the run state; under data parallelism each device holds a replica.
    batch: {"image": float (d_steps * B, H, W, C) in [-1, 1], "label": int (d_steps * B,)}: this
      device's share, D update i reading rows [i * B, (i + 1) * B).
    rng: the step's key, the same on every device.
    regularize: lazy_penalty_due(state.settings, state.step) when the caller knows the step (a static
      value; fast on CPU); None decides on the device.
  Returns:
    the new state and metrics averaged over the global batch (and over the D updates): d_loss,
    g_loss, d_real and d_fake (mean sigmoid of D's logits), real_sign (E[sign D(x_real)], ADA's
    statistic), and d_reg, feature_matching and augment_p when those are used; and `healthy` (see
    `healthy`), which the trainer checks instead of the state itself.
  """
  s = state.settings
  images = batch["image"]
  if s.mirror:
    images = random_mirror(images, jax.random.fold_in(rng, _MIRROR_STREAM), state.axis_name)
  images = images.reshape((s.d_steps, -1) + images.shape[1:])
  labels = batch["label"].reshape((s.d_steps, -1))
  if s.d_steps == 1:
    state, d_metrics = d_update(state, {"image": images[0], "label": labels[0]}, jax.random.fold_in(rng, 0),
                                regularize)
  else:
    def one_d_update(state, chunk):
      i, chunk_images, chunk_labels = chunk
      return d_update(state, {"image": chunk_images, "label": chunk_labels}, jax.random.fold_in(rng, i),
                      regularize)
    unroll = s.d_steps if convolutions_slow_in_control_flow() else 1
    state, d_metrics = jax.lax.scan(one_d_update, state, (jnp.arange(s.d_steps), images, labels),
                                    unroll=unroll)
    d_metrics = jax.tree.map(lambda m: m.mean(axis=0), d_metrics)
  state, g_metrics = g_update(state, {"image": images[-1], "label": labels[-1]},
                              jax.random.fold_in(rng, s.d_steps))
  metrics = {**d_metrics, **g_metrics}
  if s.augment:
    metrics["augment_p"] = state.augment_p
  if s.ada_target:
    state = _adapt_augmentation(state, images.shape[1] * _num_devices(state.axis_name))
  metrics["healthy"] = healthy(state, metrics)
  return state.replace(step=state.step + 1), metrics


# Losses beyond this are divergence, not training: no objective here reaches it on a learning run.
MAX_ABS_LOSS = 1e12


def healthy(state: GANState, metrics: Dict[str, jax.Array]) -> jax.Array:
  """1.0 when every metric is finite and below MAX_ABS_LOSS in magnitude and every parameter of G, its
  EMA and D is finite; else 0.0. One reduction over the parameters: cheap next to a step."""
  params = (state.g_params, state.g_ema_params, state.d_params)
  finite_params = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))
  sane_metrics = jnp.all(jnp.stack([jnp.all(jnp.abs(m) < MAX_ABS_LOSS) for m in metrics.values()]))
  return (finite_params & sane_metrics).astype(jnp.float32)
