"""Differentiable augmentation of everything D sees: DiffAugment's operations (Zhao et al. 2020), each
applied to an example with probability p, and ADA's rule for adapting p (Karras et al. 2020).

Augmenting real and generated images alike, inside the compiled step and differentiably (G's gradient
flows through the augmentation), keeps D from overfitting small datasets without leaking augmentations
into G's samples: with p < ~0.8, a generator that produced augmented images would be penalised.
Randomness comes from one key per example, so results do not depend on how a batch is split over devices.
"""
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp

TRANSLATION_RATIO = 0.125  # largest shift, as a fraction of the image size (DiffAugment's value)
CUTOUT_RATIO = 0.5  # side of the erased square, as a fraction of the image size


def color(image, key):
  """Random brightness (+U[-0.5, 0.5)), saturation (x U[0, 2)) and contrast (x U[0.5, 1.5))."""
  brightness, saturation, contrast = jax.random.uniform(key, (3,))
  image = image + (brightness - 0.5)
  channel_mean = image.mean(axis=-1, keepdims=True)
  image = (image - channel_mean) * (saturation * 2) + channel_mean
  pixel_mean = image.mean()
  return (image - pixel_mean) * (contrast + 0.5) + pixel_mean


def max_translation(height: int, width: int) -> tuple:
  """The largest shift (rows, columns) of `translation`: TRANSLATION_RATIO of the size, rounded."""
  return int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)


def translation(image, key):
  """Shifts by up to max_translation in x and y, filling with zeros."""
  height, width, _ = image.shape
  max_shift = max_translation(height, width)
  shift = jax.random.randint(key, (2,), -jnp.array(max_shift), jnp.array(max_shift) + 1)
  padded = jnp.pad(image, ((max_shift[0], max_shift[0]), (max_shift[1], max_shift[1]), (0, 0)))
  # Output pixel (i, j) is input pixel (i + dy, j + dx), or zero outside the image.
  return jax.lax.dynamic_slice(padded, (max_shift[0] + shift[0], max_shift[1] + shift[1], 0), image.shape)


def cutout(image, key):
  """Sets a square of side CUTOUT_RATIO * size at a random centre (possibly partly outside) to zero."""
  height, width, _ = image.shape
  size = (int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5))
  centre = jax.random.randint(key, (2,), 0, jnp.array([height + (1 - size[0] % 2), width + (1 - size[1] % 2)]))
  top, left = centre[0] - size[0] // 2, centre[1] - size[1] // 2
  rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
  inside = (rows >= top) & (rows < top + size[0]) & (cols >= left) & (cols < left + size[1])
  return jnp.where(inside[..., None], 0.0, image).astype(image.dtype)


OPERATIONS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(text: str) -> Tuple[str, ...]:
  """'color, translation' -> ('color', 'translation'); the caller checks the names."""
  return tuple(name.strip() for name in text.split(",") if name.strip())


def augment(images, example_keys, policy: Sequence[str], probability):
  """Applies each operation of `policy`, in order, to each example with probability `probability`.

  Args:
    images: (B, H, W, C) float.
    example_keys: (B, 2) one PRNG key per example.
    policy: names from OPERATIONS.
    probability: scalar in [0, 1] (may be traced: ADA adapts it during training).
  """
  def one_example(image, key):
    for i, name in enumerate(policy):
      apply_key, op_key = jax.random.split(jax.random.fold_in(key, i))
      applied = OPERATIONS[name](image, op_key)
      image = jnp.where(jax.random.uniform(apply_key) < probability, applied, image)
    return image
  return jax.vmap(one_example)(images, example_keys)


def adapt_probability(probability, mean_sign, target: float, images: int, speed_kimg: float):
  """ADA's update: p moves by images / (speed_kimg * 1000) towards more augmentation when D is
  overconfident on real images (E[sign D(x)] > target) and towards less otherwise; p stays in [0, 1]."""
  step = jnp.sign(mean_sign - target) * images / (speed_kimg * 1000)
  return jnp.clip(probability + step, 0.0, 1.0)
