"""SNGAN's ResNet and BigGAN: shapes, label routing, what training mutates, mixed precision, and the
configurations they reject."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from conftest import tiny_config

# BigGAN's blocks have 4 * width channels; its 32x32 latent splits into 4 chunks.
_TINY = {"resnet": dict(g_width=8, d_width=8, latent_dim=16),
         "biggan": dict(g_width=2, d_width=2, latent_dim=16, embed_dim=4)}


def _build(model, num_classes=0, image_shape=(32, 32, 3), **overrides):
  overrides = dict(_TINY[model], **overrides)
  if model == "biggan":  # spectral norm always on
    overrides.pop("d_spectral_norm", None)
    overrides.pop("g_spectral_norm", None)
  settings = models.default_args(model)
  model_args = {k: overrides.pop(k) for k in list(overrides) if k in settings}
  config = tiny_config(model=model, model_args=model_args, **overrides)
  generator, discriminator = models.build(config, image_shape, num_classes=num_classes)
  return config, generator, discriminator


def _init(module, *args):
  return module.init(jax.random.PRNGKey(0), *args, train=False)


@pytest.mark.parametrize("model,num_classes,channels,attention_resolution", [
    ("resnet", 0, 1, 0), ("resnet", 10, 3, 16), ("biggan", 0, 3, 0), ("biggan", 10, 3, 16)])
def test_shapes(model, num_classes, channels, attention_resolution):
  config, generator, discriminator = _build(model, num_classes, (32, 32, channels),
                                            attention_resolution=attention_resolution)
  z = jax.random.normal(jax.random.PRNGKey(1), (2, config.latent_dim))
  labels = jnp.array([3, 7])
  g_vars = _init(generator, z, labels)
  images = generator.apply(g_vars, z, labels, train=False)
  assert images.shape == (2, 32, 32, channels) and images.dtype == jnp.float32
  assert float(jnp.abs(images).max()) <= 1.0
  d_vars = _init(discriminator, images, labels)
  logits, features = discriminator.apply(d_vars, images, labels, train=False,
                                         example_keys=jax.random.split(jax.random.PRNGKey(2), 2))
  assert logits.shape == (2,) and features.shape == (2, 8)
  assert logits.dtype == features.dtype == jnp.float32
  assert ("SelfAttention_0" in g_vars["params"]) == bool(attention_resolution)
  assert ("SelfAttention_0" in d_vars["params"]) == bool(attention_resolution)
  if not num_classes:  # labels are ignored
    np.testing.assert_array_equal(generator.apply(g_vars, z, train=False), images)
    np.testing.assert_array_equal(discriminator.apply(d_vars, images, train=False)[0], logits)


def _perturbed(params, scale=0.1):
  """Random offsets on every parameter, away from init's symmetries (e.g. SNGAN's per-class gains and
  biases all start equal, so G could not tell labels apart yet)."""
  rng = np.random.RandomState(3)
  return jax.tree_util.tree_map(lambda p: p + scale * rng.normal(size=p.shape).astype(np.float32), params)


@pytest.mark.parametrize("model", ["resnet", "biggan"])
def test_generator_routes_each_label_to_its_own_example(model):
  config, generator, _ = _build(model, num_classes=10)
  z = jax.random.normal(jax.random.PRNGKey(1), (2, config.latent_dim))
  variables = _init(generator, z, jnp.array([0, 1]))
  variables = dict(variables, params=_perturbed(variables["params"]))
  images = generator.apply(variables, z, jnp.array([0, 1]), train=False)
  relabelled = generator.apply(variables, z, jnp.array([0, 2]), train=False)
  np.testing.assert_array_equal(relabelled[0], images[0])
  assert float(jnp.abs(relabelled[1] - images[1]).max()) > 1e-3


def _spectrally_normalised(matrix, u):
  """The matrix flax's SpectralNorm uses in evaluation: one power iteration from the stored u."""
  normalise = lambda x: x / np.linalg.norm(x)
  v = normalise(u @ matrix.T)
  u = normalise(v @ matrix)
  return matrix / (v @ matrix @ u.T)[0, 0]


@pytest.mark.parametrize("model", ["resnet", "biggan"])
def test_discriminator_logit_difference_between_labels_is_the_projection(model):
  _, _, discriminator = _build(model, num_classes=10, d_spectral_norm=True)
  images = jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 3), minval=-1, maxval=1)
  variables = _init(discriminator, images, jnp.array([0, 0]))
  # At init the embedding's sigma estimate is 1 (flax stores normalised kernels, BigGAN's are orthogonal),
  # which would hide a missing normalisation.
  variables = dict(variables, params=_perturbed(variables["params"]))
  logits_a, features = discriminator.apply(variables, images, jnp.array([1, 4]), train=False)
  logits_b, _ = discriminator.apply(variables, images, jnp.array([6, 4]), train=False)
  embedding = np.asarray(variables["params"]["Embed_0"]["embedding"], np.float64)
  [u] = [u for path, u in flax.traverse_util.flatten_dict(variables["batch_stats"], sep="/").items()
         if path.endswith("Embed_0/embedding/u")]
  normalised = _spectrally_normalised(embedding, np.asarray(u, np.float64))
  assert not np.allclose(normalised, embedding, rtol=1e-2)
  expected = (normalised[[1, 4]] - normalised[[6, 4]]) @ np.asarray(features, np.float64).T
  np.testing.assert_allclose(logits_a - logits_b, np.diag(expected), rtol=1e-5, atol=1e-5)
  assert abs(float(logits_a[0] - logits_b[0])) > 1e-3


@pytest.mark.parametrize("model", ["resnet", "biggan"])
def test_training_updates_batch_norm_and_spectral_norm_statistics_and_evaluation_does_not(model):
  config, generator, _ = _build(model, num_classes=10, g_spectral_norm=True)
  z = jax.random.normal(jax.random.PRNGKey(1), (2, config.latent_dim))
  labels = jnp.array([0, 1])
  variables = _init(generator, z, labels)
  _, trained = generator.apply(variables, z, labels, train=True, mutable=["batch_stats"])
  _, evaluated = generator.apply(variables, z, labels, train=False, mutable=["batch_stats"])
  flat = lambda tree: flax.traverse_util.flatten_dict(tree, sep="/")
  before, after_training, after_evaluation = (flat(variables["batch_stats"]), flat(trained["batch_stats"]),
                                              flat(evaluated["batch_stats"]))
  # Not the stored sigmas: flax keeps the kernels normalised at init, so the first estimate is 1 again.
  statistics = [path for path in before if path.endswith(("/mean", "/var", "/u"))]
  assert {path.rsplit("/", 1)[1] for path in statistics} == {"mean", "var", "u"}
  for path in statistics:
    assert bool(jnp.any(after_training[path] != before[path])), path
  for path, value in before.items():
    np.testing.assert_array_equal(after_evaluation[path], value, err_msg=path)


# Small images: in bfloat16 every layer compiles anew, and fewer blocks compile faster.
@pytest.mark.parametrize("model,image_size,attention_resolution", [("resnet", 8, 0), ("biggan", 16, 8)])
def test_bfloat16_compute_keeps_float32_parameters_and_outputs(model, image_size, attention_resolution):
  config, generator, discriminator = _build(model, 10, (image_size, image_size, 3), compute_dtype="bfloat16",
                                            latent_dim=15 if model == "biggan" else 16,  # 3 chunks
                                            attention_resolution=attention_resolution)
  z = jax.random.normal(jax.random.PRNGKey(1), (2, config.latent_dim))
  labels = jnp.array([0, 1])
  g_vars = _init(generator, z, labels)
  images, _ = generator.apply(g_vars, z, labels, train=True, mutable=["batch_stats"])
  d_vars = _init(discriminator, images, labels)
  outputs = discriminator.apply(d_vars, images, labels, train=False)
  for tree in (g_vars, d_vars):
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(tree)} == {jnp.dtype(jnp.float32)}
  for array in (images, *outputs):
    assert array.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(array)))


def test_biggan_rejects_a_latent_dim_that_does_not_split_into_equal_chunks():
  config, generator, _ = _build("biggan", latent_dim=15)
  with pytest.raises(ValueError, match="latent_dim=15 into 4 equal chunks"):
    _init(generator, jnp.zeros((1, config.latent_dim)))


@pytest.mark.parametrize("resolution", [4, 32])
def test_attention_resolution_must_occur_in_both_models(resolution):
  _, generator, discriminator = _build("resnet", attention_resolution=resolution)
  with pytest.raises(ValueError, match=rf"attention_resolution={resolution} .* \(8, 16\)"):
    _init(generator, jnp.zeros((1, 16)))
  with pytest.raises(ValueError, match=f"attention_resolution={resolution}"):
    _init(discriminator, jnp.zeros((1, 32, 32, 3)))
