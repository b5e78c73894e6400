"""The GAN training state and its one pure update step.

Research code can use it without flags or devices:

    from gan_jax.train import create_train_state, train_step
    state = create_train_state(config, jax.random.PRNGKey(0), image_shape=(32, 32, 3))
    state, metrics = jax.jit(train_step, donate_argnums=0)(state, batch, rng)
"""
from typing import Any, Dict, Tuple

import flax
from flax import struct
import jax
import jax.numpy as jnp
import optax

from gan_jax import losses
from gan_jax import models


@struct.dataclass
class GANState:
  """Everything that defines a training run at a step (and is checkpointed)."""
  step: jax.Array
  key: jax.Array  # base PRNG key; the key of step s is fold_in(key, s), so resuming is exact
  g_params: Any
  g_batch_stats: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  generator: flax.linen.Module = struct.field(pytree_node=False)
  discriminator: flax.linen.Module = struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  latent_dim: int = struct.field(pytree_node=False, default=100)
  # Device axes that gradients, metrics and BatchNorm statistics are averaged over (None: one device).
  axis_name: Any = struct.field(pytree_node=False, default=None)

  def generate(self, z, labels=None):
    """Images in [-1, 1] from latents, BatchNorm in inference mode (running statistics)."""
    del labels  # unconditional models ignore labels
    return self.generator.apply({"params": self.g_params, "batch_stats": self.g_batch_stats}, z,
                                train=False)


def create_train_state(config, key, image_shape, axis_name=None) -> GANState:
  """Initialises G, D and their Adam optimizers for images of `image_shape` (H, W, C)."""
  generator, discriminator = models.build(config, image_shape, axis_name=axis_name)
  g_tx = optax.adam(config.g_lr, b1=config.g_b1, b2=config.g_b2)
  d_tx = optax.adam(config.d_lr, b1=config.d_b1, b2=config.d_b2)

  @jax.jit  # one compilation instead of hundreds of eager ops (seconds on CPU)
  def initial_state(key):
    init_key, g_key, d_key = jax.random.split(key, 3)
    g_vars = generator.init(g_key, jnp.zeros((1, config.latent_dim)), train=False)
    d_vars = discriminator.init(d_key, jnp.zeros((1,) + tuple(image_shape)), train=False)
    return GANState(
        step=jnp.zeros((), jnp.int32), key=init_key,
        g_params=g_vars["params"], g_batch_stats=g_vars["batch_stats"], d_params=d_vars["params"],
        g_opt_state=g_tx.init(g_vars["params"]), d_opt_state=d_tx.init(d_vars["params"]),
        generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx,
        latent_dim=config.latent_dim, axis_name=axis_name)

  return initial_state(key)


def _device_mean(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _example_keys(rng, batch_size, axis_name):
  """One key per example, derived from its index in the global batch (not from the device)."""
  offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * batch_size
  return jax.vmap(jax.random.fold_in, (None, 0))(rng, offset + jnp.arange(batch_size))


def train_step(state: GANState, batch: Dict[str, jax.Array],
               rng: jax.Array) -> Tuple[GANState, Dict[str, jax.Array]]:
  """One discriminator update, then one generator update, with the non-saturating BCE loss.

  Args:
    state: the run state; under data parallelism each device holds a replica.
    batch: {"image": float (B, H, W, C) in [-1, 1], "label": int (B,)}: this device's share.
    rng: the step's key, the same on every device.
  Returns:
    the new state and {"d_loss", "g_loss", "d_real", "d_fake"} averaged over the global batch.
  """
  real = batch["image"]
  batch_size = real.shape[0]
  keys = _example_keys(rng, batch_size, state.axis_name)
  def latents(stream):
    return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, stream), (state.latent_dim,)))(keys)

  def dropout_keys(stream, num_copies=1):
    stream_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, stream)
    return jnp.concatenate([jax.vmap(jax.random.fold_in, (0, None))(stream_keys, c)
                            for c in range(num_copies)])

  def generate(g_params, z):
    return state.generator.apply({"params": g_params, "batch_stats": state.g_batch_stats}, z,
                                 train=True, mutable=["batch_stats"])

  # Discriminator: real and fake images in one batch (D has no batch statistics, so this is exact).
  fake, _ = generate(state.g_params, latents(0))
  fake = jax.lax.stop_gradient(fake)

  def d_loss_fn(d_params):
    logits = state.discriminator.apply({"params": d_params}, jnp.concatenate([real, fake]),
                                       train=True, example_keys=dropout_keys(1, num_copies=2))
    real_logits, fake_logits = logits[:batch_size], logits[batch_size:]
    return losses.nonsaturating_d_loss(real_logits, fake_logits), (real_logits, fake_logits)

  (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
      state.d_params)
  d_grads = _device_mean(d_grads, state.axis_name)
  d_updates, d_opt_state = state.d_tx.update(d_grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  # Generator: against the updated discriminator, with fresh latents.
  def g_loss_fn(g_params):
    fake, new_vars = generate(g_params, latents(2))
    logits = state.discriminator.apply({"params": d_params}, fake, train=True,
                                       example_keys=dropout_keys(3))
    return losses.nonsaturating_g_loss(logits), new_vars["batch_stats"]

  (g_loss, g_batch_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
  g_grads = _device_mean(g_grads, state.axis_name)
  g_updates, g_opt_state = state.g_tx.update(g_grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)

  metrics = {"d_loss": d_loss, "g_loss": g_loss,
             "d_real": jax.nn.sigmoid(real_logits).mean(),
             "d_fake": jax.nn.sigmoid(fake_logits).mean()}
  new_state = state.replace(step=state.step + 1, g_params=g_params, g_batch_stats=g_batch_stats,
                            d_params=d_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state)
  return new_state, _device_mean(metrics, state.axis_name)
