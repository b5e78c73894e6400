"""The DCGAN's shapes, its spectral-norm variant and the device-split-invariant dropout. The other
architectures have their own test files; conditional DCGANs are tested through the train step."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import dcgan
from conftest import tiny_config


@pytest.mark.parametrize("image_shape", [(32, 32, 3), (32, 32, 1), (64, 64, 3), (8, 8, 1)])
def test_generator_and_discriminator_shapes(image_shape):
  config = tiny_config()
  generator, discriminator = models.build(config, image_shape)
  key = jax.random.PRNGKey(0)
  z = jnp.zeros((2, config.latent_dim))
  g_vars = generator.init(key, z, train=False)
  images = generator.apply(g_vars, z, train=False)
  assert images.shape == (2,) + image_shape
  assert float(jnp.abs(images).max()) <= 1.0
  d_vars = discriminator.init(key, images, train=False)
  keys = jax.random.split(key, 2)
  logits, features = discriminator.apply(d_vars, images, train=True, example_keys=keys)
  assert logits.shape == (2,) and features.shape[0] == 2 and features.dtype == jnp.float32


def test_generator_rejects_size_that_is_not_a_power_of_two():
  generator = dcgan.Generator(image_size=28, channels=1, width=8)
  with pytest.raises(ValueError, match="power-of-two"):
    generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)), train=False)


def test_discriminator_needs_keys_for_dropout_in_training():
  discriminator = dcgan.Discriminator(width=4, dropout_rate=0.5)
  x = jnp.zeros((2, 8, 8, 1))
  variables = discriminator.init(jax.random.PRNGKey(0), x, train=False)
  with pytest.raises(ValueError, match="example_keys"):
    discriminator.apply(variables, x, train=True)


def test_spectral_norm_discriminator_keeps_its_power_iteration_state():
  discriminator = dcgan.Discriminator(width=4, dropout_rate=0.0, spectral_norm=True)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 1))
  variables = discriminator.init(jax.random.PRNGKey(0), x, train=False)
  assert jax.tree.leaves(variables["batch_stats"])
  _, updated = discriminator.apply(variables, x, train=True, mutable=["batch_stats"])
  changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(variables["batch_stats"]),
                                                        jax.tree.leaves(updated["batch_stats"]))]
  assert any(changed)


def test_example_dropout_depends_only_on_each_examples_key():
  keys = jax.random.split(jax.random.PRNGKey(1), 4)
  x = jnp.ones((4, 16, 16, 8))
  whole = dcgan.example_dropout(x, 0.3, keys)
  halves = jnp.concatenate([dcgan.example_dropout(x[:2], 0.3, keys[:2]),
                            dcgan.example_dropout(x[2:], 0.3, keys[2:])])
  np.testing.assert_array_equal(whole, halves)
  kept = np.asarray(whole != 0).mean()
  assert 0.6 < kept < 0.8  # keep probability 0.7
  np.testing.assert_allclose(np.asarray(whole)[np.asarray(whole) != 0], 1 / 0.7, rtol=1e-6)
  assert not np.array_equal(whole[0], whole[1])
