"""The persistent compilation cache: bounded by default, jax's own bound kept where the user set one."""
import jax
import pytest

from gan_jax import compilation_cache


@pytest.fixture
def restored_jax_config():
  saved = (jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_max_size)
  yield
  jax.config.update("jax_compilation_cache_dir", saved[0])
  jax.config.update("jax_compilation_cache_max_size", saved[1])


def test_bounded_unless_the_environment_sets_the_bound(tmp_path, monkeypatch, restored_jax_config):
  del restored_jax_config
  monkeypatch.delenv(compilation_cache.SIZE_ENV, raising=False)
  assert compilation_cache.enable(str(tmp_path / "a"), max_bytes=12345)
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / "a")
  assert jax.config.jax_compilation_cache_max_size == 12345
  # The test suite runs unbounded (conftest.py): $JAX_COMPILATION_CACHE_MAX_SIZE is left to jax.
  monkeypatch.setenv(compilation_cache.SIZE_ENV, "-1")
  jax.config.update("jax_compilation_cache_max_size", -1)
  assert compilation_cache.enable(str(tmp_path / "b"), max_bytes=12345)
  assert jax.config.jax_compilation_cache_max_size == -1


def test_an_unusable_directory_is_a_warning(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  assert not compilation_cache.enable(str(blocker / "cache"))
