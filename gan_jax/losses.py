"""GAN objectives on discriminator logits, and the regularisers that act on D's inputs or features.

Each objective is a pair (d_loss(real_logits, fake_logits, label_smoothing), g_loss(fake_logits,
real_logits)) with what it needs declared beside it; losses are means over the batch. A new objective is
one `register` call (README, "Extending gan_jax").
"""
from typing import Callable, Dict, NamedTuple

import jax
import jax.numpy as jnp
import optax


class Objective(NamedTuple):
  d_loss: Callable
  g_loss: Callable
  # G's loss reads D's logits of a real batch (the train step then pairs G's batch with the last real
  # batch, so G's batch has the real batch's size).
  g_needs_real: bool = False
  label_smoothing: bool = False  # d_loss reads label_smoothing (else it must be 0)


def nonsaturating_d_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
  """Binary cross-entropy with real -> 1 - label_smoothing and fake -> 0 (Goodfellow et al. 2014)."""
  return (optax.sigmoid_binary_cross_entropy(real_logits, jnp.full_like(real_logits, 1 - label_smoothing)).mean()
          + optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)).mean())


def nonsaturating_g_loss(fake_logits, real_logits=None):
  """-log D(G(z)): the generator's non-saturating loss."""
  del real_logits
  return optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)).mean()


def hinge_d_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
  """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim & Ye 2017; SNGAN, BigGAN)."""
  del label_smoothing
  return jax.nn.relu(1 - real_logits).mean() + jax.nn.relu(1 + fake_logits).mean()


def critic_g_loss(fake_logits, real_logits=None):
  """-D(G(z)): the generator's loss for hinge and Wasserstein critics."""
  del real_logits
  return -fake_logits.mean()


def wasserstein_d_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
  """D(G(z)) - D(x) (Arjovsky et al. 2017); pair it with the gradient penalty (--gp_weight)."""
  del label_smoothing
  return fake_logits.mean() - real_logits.mean()


def least_squares_d_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
  """(D(x) - b)^2 / 2 + D(G(z))^2 / 2 with b = 1 - label_smoothing (Mao et al. 2017, a=0, b=c=1)."""
  return 0.5 * (jnp.square(real_logits - (1 - label_smoothing)).mean() + jnp.square(fake_logits).mean())


def least_squares_g_loss(fake_logits, real_logits=None):
  del real_logits
  return 0.5 * jnp.square(fake_logits - 1).mean()


def relativistic_d_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
  """softplus(D(G(z_i)) - D(x_i)): relativistic pairing (Jolicoeur-Martineau 2019; R3GAN's RpGAN)."""
  del label_smoothing
  return jax.nn.softplus(fake_logits - real_logits).mean()


def relativistic_g_loss(fake_logits, real_logits):
  return jax.nn.softplus(real_logits - fake_logits).mean()


OBJECTIVES: Dict[str, Objective] = {
    "nonsaturating": Objective(nonsaturating_d_loss, nonsaturating_g_loss, label_smoothing=True),
    "hinge": Objective(hinge_d_loss, critic_g_loss),
    "wgan": Objective(wasserstein_d_loss, critic_g_loss),
    "lsgan": Objective(least_squares_d_loss, least_squares_g_loss, label_smoothing=True),
    "rpgan": Objective(relativistic_d_loss, relativistic_g_loss, g_needs_real=True),
}


def register(name: str, objective: Objective) -> None:
  """Makes `config.loss=name` train with `objective`."""
  OBJECTIVES[name] = objective


def input_gradients(logits_fn, x):
  """d(sum of logits)/dx, as StyleGAN2 computes R1: example i's gradient of its own logit, plus, with
  minibatch-stddev, the terms of its group's logits."""
  return jax.grad(lambda x: logits_fn(x).sum())(x)


def squared_gradient_norm(logits_fn, x):
  """|grad_x D(x)|^2 per example: R1 on real x, R2 on generated x (Mescheder et al. 2018).

  The penalty is gamma / 2 times its batch mean.
  """
  grads = input_gradients(logits_fn, x)
  return jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=tuple(range(1, grads.ndim)))


def gradient_penalty(logits_fn, real, fake, alpha):
  """(|grad D(x_hat)| - 1)^2 per example at x_hat = alpha x + (1 - alpha) G(z) (Gulrajani et al. 2017).

  alpha: (B,) in [0, 1], one mixing weight per example.
  """
  alpha = alpha.reshape((-1,) + (1,) * (real.ndim - 1))
  interpolates = alpha * real + (1 - alpha) * fake
  norms = jnp.sqrt(squared_gradient_norm(logits_fn, interpolates) + 1e-12)
  return jnp.square(norms - 1)


def feature_matching(real_features, fake_features, axis_name=None):
  """Mean over feature dimensions of (E f(x) - E f(G(z)))^2 (Salimans et al. 2016).

  The expectations are over the global batch: averaged over the devices of `axis_name`.
  """
  real_mean = jax.lax.stop_gradient(real_features.mean(axis=0))
  fake_mean = fake_features.mean(axis=0)
  if axis_name is not None:
    real_mean, fake_mean = jax.lax.pmean((real_mean, fake_mean), axis_name)
  return jnp.mean(jnp.square(real_mean - fake_mean))
