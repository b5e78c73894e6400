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


SIZE_ENV = "JAX_COMPILATION_CACHE_MAX_SIZE"


def enable(cache_dir: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bool:
  """Caches every compilation that takes over a second in `cache_dir`; returns whether it is on.

  The cache is bounded by `max_bytes` unless $JAX_COMPILATION_CACHE_MAX_SIZE sets jax's bound (-1:
  unbounded). All processes that share a directory need the same kind: a bounded cache keeps an
  access-time file beside each entry and reads those of all entries before each write, and where an
  entry has none (written unbounded) every write fails with a warning. Unbounded writes are also
  cheaper in a directory of many entries (the test suite's).
  A directory that cannot be created is a warning, not an error: the run compiles as usual.
  """
  try:
    os.makedirs(cache_dir, exist_ok=True)
  except OSError as e:
    logging.warning("Compilation cache %s is not usable (%s); compiling without it.", cache_dir, e.strerror)
    return False
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  if SIZE_ENV not in os.environ:
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
  return True
