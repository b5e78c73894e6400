"""The user's cache directory: what gan_jax computes once and then reads (compiled programs, Inception
weights converted to Flax, reference statistics, decoded datasets). $GAN_JAX_CACHE_DIR, else
~/.cache/gan_jax. Everything in it can be deleted; it is computed again when needed."""
import os

ENV = "GAN_JAX_CACHE_DIR"


def root() -> str:
  return os.environ.get(ENV) or os.path.expanduser("~/.cache/gan_jax")
