"""DiffAugment operations and ADA's probability rule."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment

POLICY = ("color", "translation", "cutout")


def _images(n=6, size=32, channels=3, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n, size, size, channels), minval=-1, maxval=1)


def _keys(n, seed=1):
  return jax.random.split(jax.random.PRNGKey(seed), n)


def test_probability_zero_is_the_identity():
  images = _images()
  out = jax.jit(lambda x, k: augment.augment(x, k, POLICY, 0.0))(images, _keys(6))
  np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("shape", [(5, 32, 32, 3), (4, 16, 16, 1), (3, 64, 64, 3)])
def test_shapes_and_dtype_are_kept(shape):
  images = _images(*shape[:1], shape[1], shape[3])
  out = augment.augment(images, _keys(shape[0]), POLICY, 1.0)
  assert out.shape == images.shape and out.dtype == images.dtype
  assert np.all(np.isfinite(out))


def test_translation_shifts_with_zero_fill_within_the_ratio():
  image = np.asarray(_images(1)[0]) + 2.0  # no zeros in the image itself
  for seed in range(5):
    out = np.asarray(augment.translation(jnp.asarray(image), jax.random.PRNGKey(seed)))
    matches = []
    for dy in range(-4, 5):
      for dx in range(-4, 5):
        shifted = np.zeros_like(image)
        src = image[max(dy, 0):32 + min(dy, 0), max(dx, 0):32 + min(dx, 0)]
        shifted[max(-dy, 0):max(-dy, 0) + src.shape[0], max(-dx, 0):max(-dx, 0) + src.shape[1]] = src
        matches.append(np.array_equal(out, shifted))
    assert sum(matches) == 1, seed  # exactly one shift of at most 4 = 0.125 * 32 pixels


def test_cutout_zeroes_one_square_and_keeps_the_rest():
  image = np.asarray(_images(1)[0]) + 2.0
  for seed in range(5):
    out = np.asarray(augment.cutout(jnp.asarray(image), jax.random.PRNGKey(seed)))
    erased = np.all(out == 0, axis=-1)
    rows, cols = np.nonzero(erased)
    assert 0 < erased.sum() <= 16 * 16
    # The erased pixels form one axis-aligned rectangle (a square clipped by the border) ...
    assert erased[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    assert rows.max() - rows.min() < 16 and cols.max() - cols.min() < 16
    # ... and every other pixel is untouched.
    np.testing.assert_array_equal(out[~erased], image[~erased])


def test_color_matches_its_formula():
  image = _images(1)[0]
  key = jax.random.PRNGKey(7)
  brightness, saturation, contrast = np.asarray(jax.random.uniform(key, (3,)))
  x = np.asarray(image, np.float64) + brightness - 0.5
  x = (x - x.mean(axis=-1, keepdims=True)) * (2 * saturation) + x.mean(axis=-1, keepdims=True)
  x = (x - x.mean()) * (contrast + 0.5) + x.mean()
  np.testing.assert_allclose(augment.color(image, key), x, rtol=1e-5, atol=1e-5)


def test_translation_and_cutout_keep_the_value_range():
  images = _images(8)
  out = augment.augment(images, _keys(8), ("translation", "cutout"), 1.0)
  assert float(out.min()) >= min(float(images.min()), 0.0)
  assert float(out.max()) <= max(float(images.max()), 0.0)


def test_each_example_is_augmented_with_probability_p():
  images = _images(1)[0][None].repeat(2000, axis=0)
  out = augment.augment(images, _keys(2000), ("color",), 0.3)
  changed = np.any(np.asarray(out) != np.asarray(images), axis=(1, 2, 3))
  assert 0.26 < changed.mean() < 0.34


def test_gradients_flow_through_every_operation():
  grads = jax.grad(lambda x: augment.augment(x, _keys(4), POLICY, 1.0).sum())(_images(4))
  assert np.all(np.isfinite(grads)) and float(jnp.abs(grads).sum()) > 0


def test_same_keys_same_result_whatever_the_batch_split():
  images, keys = _images(6), _keys(6)
  whole = augment.augment(images, keys, POLICY, 0.5)
  halves = jnp.concatenate([augment.augment(images[:3], keys[:3], POLICY, 0.5),
                            augment.augment(images[3:], keys[3:], POLICY, 0.5)])
  np.testing.assert_allclose(whole, halves, rtol=1e-6, atol=1e-6)


def test_ada_moves_the_probability_by_the_images_seen():
  # 6400 images at 100 kimg per unit: 0.064 up when D is overconfident, down otherwise.
  np.testing.assert_allclose(augment.adapt_probability(0.5, 0.8, 0.6, 6400, 100.0), 0.564, rtol=1e-6)
  np.testing.assert_allclose(augment.adapt_probability(0.5, 0.2, 0.6, 6400, 100.0), 0.436, rtol=1e-6)
  assert float(augment.adapt_probability(0.01, -1.0, 0.6, 6400, 100.0)) == 0.0
  assert float(augment.adapt_probability(0.99, 1.0, 0.6, 6400, 100.0)) == 1.0


def test_parse_policy():
  assert augment.parse_policy(" color, cutout ,") == ("color", "cutout")
  assert augment.parse_policy("") == ()
