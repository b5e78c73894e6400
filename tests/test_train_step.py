"""The pure train step, as research code uses it: no flags, no devices set up."""
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.train import create_train_state, train_step
from conftest import tiny_config


def test_train_step_in_research_code():
  config = tiny_config()
  state = create_train_state(config, jax.random.PRNGKey(0), (32, 32, 3))
  g_before = jax.tree.map(np.array, state.g_params)
  d_before = jax.tree.map(np.array, state.d_params)
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (8, 32, 32, 3), minval=-1, maxval=1),
           "label": jnp.zeros(8, jnp.int32)}
  step = jax.jit(train_step, donate_argnums=0)
  state, metrics = step(state, batch, jax.random.PRNGKey(2))
  state, metrics = step(state, batch, jax.random.PRNGKey(3))
  assert int(state.step) == 2
  assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake", "real_sign", "healthy"}
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1
  changed = lambda before, after: any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(before), jax.tree.leaves(after)))
  assert changed(g_before, state.g_params) and changed(d_before, state.d_params)
  samples = state.generate(jnp.zeros((3, config.latent_dim)))
  assert samples.shape == (3, 32, 32, 3)
