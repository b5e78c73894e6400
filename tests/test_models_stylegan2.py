"""Tests of the StyleGAN2-lite architecture: shapes, equalised learning rate, demodulation, minibatch
stddev grouping, conditioning, mixed precision, noise inputs and the D without skips."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from gan_jax import models
from gan_jax.models import stylegan2

BATCH = 4
NUM_CLASSES = 10


def _config(**overrides):
  settings = {k: overrides.pop(k) for k in ("noise_inputs", "d_architecture") if k in overrides}
  return tiny_config(model="stylegan2", g_width=8, d_width=8, latent_dim=16,
                     model_args=dict(mapping_layers=2, mbstd_group=2, **settings), **overrides)


def _models(num_classes=0, channels=3, **overrides):
  """(G, D, G params, D params) for 32x32 images."""
  generator, discriminator = models.build(_config(**overrides), (32, 32, channels), num_classes)
  labels = jnp.zeros((BATCH,), jnp.int32) if num_classes else None
  g_vars = generator.init(jax.random.PRNGKey(0), jnp.zeros((BATCH, 16)), labels, train=False)
  d_vars = discriminator.init(jax.random.PRNGKey(1), jnp.zeros((BATCH, 32, 32, channels)), labels,
                              train=False)
  assert set(g_vars) == {"params"} and set(d_vars) == {"params"}
  return generator, discriminator, g_vars["params"], d_vars["params"]


def _inputs(channels=3, seed=0):
  z_key, x_key = jax.random.split(jax.random.PRNGKey(seed))
  return (jax.random.normal(z_key, (BATCH, 16)),
          jax.random.normal(x_key, (BATCH, 32, 32, channels)))


@pytest.fixture(scope="module")
def unconditional():
  return _models()


@pytest.fixture(scope="module")
def conditional():
  return _models(num_classes=NUM_CLASSES)


@pytest.mark.parametrize("channels", [3, 1])
def test_output_shapes_unconditional(channels):
  generator, discriminator, g_params, d_params = _models(channels=channels)
  z, x = _inputs(channels)
  images = generator.apply({"params": g_params}, z, train=True)
  assert images.shape == (BATCH, 32, 32, channels) and images.dtype == jnp.float32
  logits, features = discriminator.apply({"params": d_params}, x, train=True,
                                         example_keys=jax.random.split(jax.random.PRNGKey(0), BATCH))
  assert logits.shape == (BATCH,) and logits.dtype == jnp.float32
  assert features.shape == (BATCH, 8) and features.dtype == jnp.float32


def test_output_shapes_conditional(conditional):
  generator, discriminator, g_params, d_params = conditional
  z, x = _inputs()
  labels = jnp.arange(BATCH, dtype=jnp.int32)
  images = generator.apply({"params": g_params}, z, labels, train=False)
  assert images.shape == (BATCH, 32, 32, 3) and images.dtype == jnp.float32
  logits, features = discriminator.apply({"params": d_params}, x, labels, train=False)
  assert logits.shape == (BATCH,) and logits.dtype == jnp.float32
  assert features.shape == (BATCH, 8) and features.dtype == jnp.float32


def test_generator_output_is_not_squashed(unconditional):
  """The RGB sum is G's output as it is: no tanh keeps it inside [-1, 1]."""
  generator, _, g_params, _ = unconditional
  z, _ = _inputs()
  images = generator.apply({"params": g_params}, 10.0 * z, train=False)
  assert jnp.max(jnp.abs(images)) > 1.0


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equalised_dense_effective_weight_is_he_scaled(lr_mul):
  fan_in, features = 1024, 256
  layer = stylegan2.EqualDense(features, lr_mul=lr_mul)
  params = layer.init(jax.random.PRNGKey(0), jnp.zeros((1, fan_in)))
  assert np.std(params["params"]["kernel"]) == pytest.approx(1.0 / lr_mul, rel=0.02)
  # Applied to the identity, the layer returns its effective weight (plus the bias, zero here).
  effective = np.asarray(layer.apply(params, jnp.eye(fan_in)))
  assert np.std(effective) == pytest.approx(1.0 / np.sqrt(fan_in), rel=0.02)


def test_equalised_conv_keeps_unit_variance():
  """With the run-time scale 1/sqrt(fan_in), unit-variance inputs give unit-variance outputs."""
  layer = stylegan2.EqualConv(64, 3)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 16, 16, 64))
  params = layer.init(jax.random.PRNGKey(1), x)
  assert np.std(params["params"]["kernel"]) == pytest.approx(1.0, rel=0.02)
  y = np.asarray(layer.apply(params, x))[:, 1:-1, 1:-1]  # interior: no zero padding in the window
  assert np.var(y) == pytest.approx(1.0, rel=0.1)


def _direct_conv(x, kernel):
  """Same-padded conv of one example (H, W, I) with (k, k, I, O), in float64."""
  k = kernel.shape[0]
  height, width = x.shape[:2]
  padded = np.pad(x.astype(np.float64), ((k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  out = np.zeros((height, width, kernel.shape[-1]))
  for i in range(k):
    for j in range(k):
      out += padded[i:i + height, j:j + width] @ kernel[i, j].astype(np.float64)
  return out


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_per_example_weights(demodulate):
  rng = np.random.RandomState(0)
  x = rng.randn(2, 8, 8, 4).astype(np.float32)
  kernel = rng.randn(3, 3, 4, 5).astype(np.float32)
  styles = rng.randn(2, 4).astype(np.float32)
  y = np.asarray(stylegan2.modulated_conv(x, kernel, styles, demodulate=demodulate))
  for b in range(2):
    weight = kernel.astype(np.float64) * styles[b, None, None, :, None]
    if demodulate:
      weight /= np.sqrt(np.sum(weight**2, axis=(0, 1, 2), keepdims=True) + 1e-8)
    np.testing.assert_allclose(y[b], _direct_conv(x[b], weight), atol=1e-5)


def test_demodulated_conv_has_unit_variance_per_output_channel():
  """A ModulatedConv (random styles from w) maps unit-variance inputs to unit-variance outputs."""
  layer = stylegan2.ModulatedConv(16, 3)
  x_key, w_key, init_key = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(x_key, (8, 16, 16, 64))
  w = 5.0 * jax.random.normal(w_key, (8, 32))  # styles far from 1, varying per example
  params = layer.init(init_key, x, w)
  y = np.asarray(layer.apply(params, x, w))[:, 1:-1, 1:-1]  # the bias is zero at init
  np.testing.assert_allclose(np.var(y, axis=(0, 1, 2)), 1.0, rtol=0.15)


def test_minibatch_stddev_groups_are_contiguous(unconditional):
  _, discriminator, _, d_params = unconditional
  _, x = _inputs()
  logits = lambda x: discriminator.apply({"params": d_params}, x, train=False)[0]
  base = logits(x)
  second_half_changed = logits(x.at[2:].set(-x[2:]))
  np.testing.assert_array_equal(second_half_changed[:2], base[:2])
  assert not np.allclose(second_half_changed[2:], base[2:])
  # Within a group examples do interact (through the stddev channel).
  assert logits(x.at[1].set(-x[1]))[0] != base[0]


def test_minibatch_stddev_matches_numpy():
  x = np.random.RandomState(0).randn(6, 4, 4, 5).astype(np.float32)
  out = np.asarray(stylegan2.minibatch_stddev(jnp.asarray(x), 3))
  np.testing.assert_array_equal(out[..., :5], x)
  for g in range(2):
    group = x[3 * g:3 * g + 3].astype(np.float64)
    expected = np.mean(np.sqrt(np.var(group, axis=0) + 1e-8))
    np.testing.assert_allclose(out[3 * g:3 * g + 3, ..., 5], expected, rtol=1e-5)


def test_minibatch_stddev_group_must_divide_batch(unconditional):
  _, discriminator, _, d_params = unconditional
  with pytest.raises(ValueError, match="does not divide the batch of 3"):
    discriminator.apply({"params": d_params}, jnp.zeros((3, 32, 32, 3)), train=False)


def test_conditional_models_use_labels(conditional):
  generator, discriminator, g_params, d_params = conditional
  z, x = _inputs()
  labels_a = jnp.array([0, 1, 2, 3], jnp.int32)
  labels_b = jnp.array([4, 5, 6, 7], jnp.int32)
  images_a = generator.apply({"params": g_params}, z, labels_a, train=False)
  images_b = generator.apply({"params": g_params}, z, labels_b, train=False)
  assert np.all(np.max(np.abs(images_a - images_b), axis=(1, 2, 3)) > 1e-4)
  logits_a, _ = discriminator.apply({"params": d_params}, x, labels_a, train=False)
  logits_b, _ = discriminator.apply({"params": d_params}, x, labels_b, train=False)
  assert np.all(np.abs(logits_a - logits_b) > 1e-6)


def test_conditional_models_need_labels(conditional):
  generator, discriminator, g_params, d_params = conditional
  z, x = _inputs()
  with pytest.raises(ValueError, match="needs labels"):
    generator.apply({"params": g_params}, z, train=False)
  with pytest.raises(ValueError, match="needs labels"):
    discriminator.apply({"params": d_params}, x, train=False)


def test_unconditional_models_ignore_labels(unconditional):
  generator, discriminator, g_params, d_params = unconditional
  z, x = _inputs()
  labels_a = jnp.array([0, 1, 2, 3], jnp.int32)
  labels_b = jnp.array([4, 5, 6, 7], jnp.int32)
  np.testing.assert_array_equal(generator.apply({"params": g_params}, z, labels_a, train=False),
                                generator.apply({"params": g_params}, z, labels_b, train=False))
  np.testing.assert_array_equal(discriminator.apply({"params": d_params}, x, labels_a, train=False)[0],
                                discriminator.apply({"params": d_params}, x, labels_b, train=False)[0])


def test_bfloat16_keeps_float32_params_and_outputs(conditional):
  generator, discriminator, g_params, d_params = _models(num_classes=NUM_CLASSES,
                                                         compute_dtype="bfloat16")
  assert generator.dtype == jnp.bfloat16 and discriminator.dtype == jnp.bfloat16
  for leaf in jax.tree_util.tree_leaves((g_params, d_params)):
    assert leaf.dtype == jnp.float32
  z, x = _inputs()
  labels = jnp.arange(BATCH, dtype=jnp.int32)
  images = generator.apply({"params": g_params}, z, labels, train=False)
  logits, features = discriminator.apply({"params": d_params}, x, labels, train=False)
  for out in (images, logits, features):
    assert out.dtype == jnp.float32 and np.all(np.isfinite(out))
  # The same parameters in float32 give nearly the same images: bfloat16 only rounds.
  float32_generator, *_ = conditional
  reference = float32_generator.apply({"params": g_params}, z, labels, train=False)
  assert np.corrcoef(np.ravel(images), np.ravel(reference))[0, 1] > 0.99


@pytest.mark.parametrize("size", [4, 12, 28])
def test_rejects_image_sizes_that_are_not_powers_of_two(size):
  with pytest.raises(ValueError, match="power-of-two image size >= 8"):
    models.build(_config(), (size, size, 3), 0)


def test_noise_inputs_start_off_are_seeded_by_the_latent_and_differ_per_example():
  generator, _, g_params, _ = _models(noise_inputs=True)
  strengths = {k: v for k, v in jax.tree_util.tree_flatten_with_path(g_params)[0]
               if "noise_strength" in jax.tree_util.keystr(k)}
  assert len(strengths) == 2 * 3 + 1  # b4_conv1, then conv0 and conv1 of 8x8, 16x16, 32x32
  assert all(float(v) == 0 for v in strengths.values())  # StyleGAN2-ADA initialises them to 0
  without_noise, _, plain_params, _ = _models()
  z, _ = _inputs()
  # At strength 0 the noise changes nothing: the same image as without noise inputs, same weights.
  np.testing.assert_array_equal(generator.apply({"params": g_params}, z, train=False),
                                without_noise.apply({"params": plain_params}, z, train=False))
  loud = jax.tree.map(lambda v: jnp.ones_like(v) if v.ndim == 0 else v, g_params)
  images = generator.apply({"params": loud}, z, train=False)
  assert np.abs(images - without_noise.apply({"params": plain_params}, z, train=False)).max() > 1e-2
  # The same latent gives the same image, wherever it sits in the batch; other latents other noise.
  np.testing.assert_allclose(generator.apply({"params": loud}, z[::-1], train=False), images[::-1],
                             rtol=1e-5, atol=1e-5)
  seeds = stylegan2.latent_hash(z)
  assert len(set(np.asarray(seeds).tolist())) == BATCH
  noise = stylegan2.noise_input(seeds, 0, (8, 8), jnp.float32)
  assert noise.shape == (BATCH, 8, 8, 1)
  assert abs(float(noise.mean())) < 0.3 and 0.7 < float(noise.std()) < 1.3  # 256 standard normals
  assert not np.allclose(noise[0], noise[1])
  assert not np.allclose(noise, stylegan2.noise_input(seeds, 1, (8, 8), jnp.float32))  # per layer


def test_orig_discriminator_has_no_skip_connections():
  _, discriminator, _, d_params = _models(d_architecture="orig")
  _, _, _, resnet_params = _models()
  assert not [name for name in d_params if name.endswith("_skip")]
  assert {name for name in resnet_params if not name.endswith("_skip")} == set(d_params)
  _, x = _inputs()
  logits, _ = discriminator.apply({"params": d_params}, x, train=False)
  assert logits.shape == (BATCH,) and np.isfinite(np.asarray(logits)).all()
