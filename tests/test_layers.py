"""Shared layers: spectral norm's power iteration, conditional BatchNorm, self-attention and the sub-pixel
transposed convolution."""
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


@pytest.mark.parametrize("kernel,stride,height,width,features_in,features_out,dtype,use_bias", [
    (5, 2, 4, 4, 8, 6, jnp.float32, True),  # DCGAN's layer
    (5, 2, 3, 5, 3, 2, jnp.float32, False),
    (4, 2, 5, 4, 3, 2, jnp.float32, True),  # even kernel: 'SAME' pads unevenly
    (3, 2, 6, 3, 4, 5, jnp.float32, True),
    (3, 3, 4, 4, 2, 3, jnp.float32, True),  # stride 3
    (1, 2, 3, 3, 2, 2, jnp.float32, True),  # kernel smaller than the stride: some phases are empty
    (5, 2, 4, 4, 8, 6, jnp.bfloat16, True),
])
def test_subpixel_conv_transpose_equals_conv_transpose(kernel, stride, height, width, features_in,
                                                       features_out, dtype, use_bias):
  """Same initial parameters, same outputs and same gradients (inputs and parameters) as
  nn.ConvTranspose(padding='SAME') for the same kernel."""
  reference = nn.ConvTranspose(features_out, (kernel, kernel), strides=(stride, stride), use_bias=use_bias,
                               dtype=dtype)
  subpixel = layers.SubpixelConvTranspose(features_out, (kernel, kernel), strides=(stride, stride),
                                          use_bias=use_bias, dtype=dtype)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, height, width, features_in))
  variables = reference.init(jax.random.PRNGKey(1), x)
  assert jax.tree.all(jax.tree.map(lambda a, b: a.shape == b.shape and bool(jnp.all(a == b)), variables,
                                   subpixel.init(jax.random.PRNGKey(1), x)))
  # A non-zero bias, so that its gradient is checked too.
  variables = jax.tree.map(lambda v: v + 0.1, variables)
  cotangent = jax.random.normal(jax.random.PRNGKey(2), (2, height * stride, width * stride, features_out))

  def value_and_grads(module):
    loss = lambda v, x: jnp.sum(module.apply(v, x).astype(jnp.float32) * cotangent)
    return module.apply(variables, x), jax.grad(loss, argnums=(0, 1))(variables, x)

  expected, expected_grads = value_and_grads(reference)
  actual, actual_grads = value_and_grads(subpixel)
  tolerance = dict(rtol=2e-2, atol=5e-2) if dtype == jnp.bfloat16 else dict(rtol=1e-5, atol=1e-5)
  assert actual.shape == expected.shape and actual.dtype == expected.dtype
  np.testing.assert_allclose(np.asarray(actual, np.float32), np.asarray(expected, np.float32), **tolerance)
  for a, e in zip(jax.tree.leaves(actual_grads), jax.tree.leaves(expected_grads)):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(e, np.float32), **tolerance)


@pytest.mark.parametrize("kernel,stride,height,width,dtype", [
    (5, 2, 8, 8, jnp.float32),  # DCGAN's D
    (5, 2, 7, 9, jnp.float32),  # odd sizes: 'SAME' pads unevenly, the gradient is cropped
    (4, 2, 8, 6, jnp.float32),
    (3, 3, 7, 8, jnp.float32),
    (1, 2, 4, 4, jnp.float32),
    (5, 2, 8, 8, jnp.bfloat16),
])
def test_strided_conv_equals_conv_with_its_first_and_second_derivatives(kernel, stride, height, width, dtype):
  """Same parameters and outputs as nn.Conv(padding='SAME'), the same gradients, and the same gradients
  of a gradient penalty (|d out / d x|^2), which differentiate the custom input gradient again."""
  reference = nn.Conv(3, (kernel, kernel), strides=(stride, stride), dtype=dtype)
  strided = layers.StridedConv(3, (kernel, kernel), strides=(stride, stride), dtype=dtype)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, height, width, 2))
  variables = reference.init(jax.random.PRNGKey(1), x)
  assert jax.tree.all(jax.tree.map(lambda a, b: a.shape == b.shape and bool(jnp.all(a == b)), variables,
                                   strided.init(jax.random.PRNGKey(1), x)))
  variables = jax.tree.map(lambda v: v + 0.1, variables)
  output = lambda module: lambda v, x: jnp.sum(jnp.sin(module.apply(v, x).astype(jnp.float32)))
  penalty = lambda module: lambda v, x: jnp.sum(jax.grad(output(module), argnums=1)(v, x) ** 2)

  def derivatives(module):
    return (module.apply(variables, x), jax.grad(output(module), argnums=(0, 1))(variables, x),
            jax.grad(penalty(module), argnums=(0, 1))(variables, x))

  tolerance = dict(rtol=3e-2, atol=1e-1) if dtype == jnp.bfloat16 else dict(rtol=1e-4, atol=1e-4)
  for a, e in zip(jax.tree.leaves(derivatives(strided)), jax.tree.leaves(derivatives(reference))):
    assert a.shape == e.shape and a.dtype == e.dtype
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(e, np.float32), **tolerance)
