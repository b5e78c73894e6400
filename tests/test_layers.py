"""Shared layers: spectral norm's power iteration, conditional BatchNorm and self-attention."""
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models import layers


class _SpectrallyNormalised(nn.Module):
  """A conv on `x` and a bias-free dense layer on `e`, both spectrally normalised: with e = I the dense
  output is the normalised kernel the layer actually uses."""

  @nn.compact
  def __call__(self, x, e, *, train):
    sn = layers.SpectralNormWrapper(enabled=True, train=train)
    return sn(nn.Conv(4, (3, 3), name="conv"), x), sn(nn.Dense(5, use_bias=False, name="dense"), e)


def _top_singular_value(matrix):
  return np.linalg.svd(np.asarray(matrix, np.float64).reshape(-1, matrix.shape[-1]), compute_uv=False)[0]


def test_spectral_norm_power_iteration_converges_to_the_largest_singular_value():
  module = _SpectrallyNormalised()
  x, e = jnp.ones((1, 5, 5, 2)), jnp.eye(6)
  variables = module.init(jax.random.PRNGKey(0), x, e, train=False)
  stats = variables["batch_stats"]
  for _ in range(30):
    _, updates = module.apply({"params": variables["params"], "batch_stats": stats}, x, e, train=True,
                              mutable=["batch_stats"])
    stats = updates["batch_stats"]
  flat_stats = traverse_util.flatten_dict(stats, sep="/")
  for name in ("conv", "dense"):
    kernel = variables["params"][name]["kernel"]
    [sigma] = [value for key, value in flat_stats.items() if key.endswith(f"{name}/kernel/sigma")]
    np.testing.assert_allclose(sigma, _top_singular_value(kernel), rtol=1e-3)
    np.testing.assert_allclose(_top_singular_value(kernel / sigma), 1.0, rtol=1e-3)
  _, normalised_dense = module.apply({"params": variables["params"], "batch_stats": stats}, x, e, train=False)
  np.testing.assert_allclose(_top_singular_value(normalised_dense), 1.0, rtol=1e-3)


def _normalised(x):
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  return (x - mean) / np.sqrt(var + 1e-5)


def test_conditional_batch_norm_takes_gain_and_bias_per_class_or_from_a_vector():
  x = np.random.RandomState(0).normal(size=(3, 2, 2, 4)).astype(np.float32)
  labels = jnp.array([0, 2, 1])
  by_class = layers.ConditionalBatchNorm(num_classes=3)
  params = by_class.init(jax.random.PRNGKey(0), x, labels, train=False)["params"]
  np.testing.assert_array_equal(params["gain"]["embedding"], 1.0)
  np.testing.assert_array_equal(params["bias"]["embedding"], 0.0)
  gain, bias = np.random.RandomState(1).normal(size=(2, 3, 4)).astype(np.float32)
  params = {"gain": {"embedding": gain}, "bias": {"embedding": bias}}
  out, _ = by_class.apply({"params": params, "batch_stats": {}}, x, labels, train=True,
                          mutable=["batch_stats"])
  expected = _normalised(x) * gain[labels][:, None, None] + bias[labels][:, None, None]
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)

  vectors = np.random.RandomState(2).normal(size=(3, 6)).astype(np.float32)
  by_vector = layers.ConditionalBatchNorm()
  params = by_vector.init(jax.random.PRNGKey(0), x, vectors, train=False)["params"]
  out, _ = by_vector.apply({"params": params}, x, vectors, train=True, mutable=["batch_stats"])
  gain = 1 + vectors @ params["gain"]["kernel"]
  bias = vectors @ params["bias"]["kernel"]
  np.testing.assert_allclose(out, _normalised(x) * gain[:, None, None] + bias[:, None, None],
                             rtol=1e-4, atol=1e-5)


def test_self_attention_starts_as_identity_and_attends_over_pooled_keys():
  x = np.random.RandomState(0).normal(size=(2, 4, 4, 16)).astype(np.float32)
  attention = layers.SelfAttention()
  params = attention.init(jax.random.PRNGKey(0), x, train=False)["params"]
  np.testing.assert_array_equal(attention.apply({"params": params}, x, train=False), x)

  params = dict(params, gamma=jnp.float32(0.5))
  kernel = {name: np.asarray(params[name]["kernel"])[0, 0] for name in ("theta", "phi", "g", "o")}
  pool = lambda t: t.reshape(2, 2, 2, 2, 2, -1).max(axis=(2, 4)).reshape(2, 4, -1)
  theta = (x @ kernel["theta"]).reshape(2, 16, 2)
  phi, g = pool(x @ kernel["phi"]), pool(x @ kernel["g"])
  logits = np.einsum("bqc,bkc->bqk", theta, phi)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  expected = x + 0.5 * (np.einsum("bqk,bkc->bqc", weights, g) @ kernel["o"]).reshape(x.shape)
  np.testing.assert_allclose(attention.apply({"params": params}, x, train=False), expected,
                             rtol=1e-4, atol=1e-5)
