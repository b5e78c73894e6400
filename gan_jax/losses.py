"""GAN objectives on discriminator logits."""
import jax.numpy as jnp
import optax


def nonsaturating_d_loss(real_logits, fake_logits):
  """Binary cross-entropy with real -> 1 and fake -> 0 (Goodfellow et al. 2014)."""
  return (optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits)).mean() +
          optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)).mean())


def nonsaturating_g_loss(fake_logits):
  """-log D(G(z)): the generator's non-saturating loss."""
  return optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)).mean()
