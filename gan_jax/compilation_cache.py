"""JAX's persistent compilation cache, on by default for training runs: a resumed or repeated run loads
its compiled programs from disk instead of compiling them again (a minute or more on a CPU).

The cache is bounded (jax evicts the least recently used entries beyond `max_bytes`), which also makes
jax write and read entries under a file lock, so runs started at the same time may share the directory.
An entry that cannot be read is compiled again (jax warns).
"""
import os

from absl import logging
import jax

from gan_jax import user_cache

DEFAULT_MAX_BYTES = 4 * 2**30


def default_dir() -> str:
  """<$GAN_JAX_CACHE_DIR or ~/.cache/gan_jax>/xla."""
  return os.path.join(user_cache.root(), "xla")


def enable(cache_dir: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bool:
  """Caches every compilation that takes over a second in `cache_dir`; returns whether it is on.

  A directory that cannot be created is a warning, not an error: the run compiles as usual.
  """
  try:
    os.makedirs(cache_dir, exist_ok=True)
  except OSError as e:
    logging.warning("Compilation cache %s is not usable (%s); compiling without it.", cache_dir, e.strerror)
    return False
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_compilation_cache_max_size", max_bytes)
  return True
