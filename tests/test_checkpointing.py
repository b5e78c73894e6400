"""Checkpoints that must not be restored: of other models (refused, left in place), non-finite (skipped)."""
import os

import jax
import jax.numpy as jnp
import pytest

from conftest import tiny_config
from gan_jax import checkpointing
from gan_jax.errors import UserError
from gan_jax.train import create_train_state


def test_checkpoint_of_other_models_is_refused_and_left_in_place(tmp_path):
  saved = create_train_state(tiny_config(), jax.random.PRNGKey(0), (32, 32, 3))
  checkpoints = checkpointing.Checkpoints(str(tmp_path), keep=2)
  checkpoints.save(saved)
  checkpoints.wait()
  # A conditional G and D have class embeddings: a tree the unconditional checkpoint does not hold.
  other = create_train_state(tiny_config(conditional=True), jax.random.PRNGKey(0), (32, 32, 3),
                             num_classes=10)
  with pytest.raises(UserError, match="holds other parameters than these models"):
    checkpointing.Checkpoints(str(tmp_path), keep=2).restore_latest(other)
  assert os.listdir(tmp_path / "checkpoints") == ["0"]
  assert not os.path.exists(tmp_path / "checkpoints_corrupt")


def test_a_checkpoint_with_non_finite_parameters_is_never_restored(tmp_path):
  state = create_train_state(tiny_config(), jax.random.PRNGKey(0), (32, 32, 3))
  checkpoints = checkpointing.Checkpoints(str(tmp_path), keep=3)
  checkpoints.save(state)
  poisoned = state.replace(step=state.step + 1, d_params=jax.tree.map(lambda p: p * jnp.nan, state.d_params))
  checkpoints.save(poisoned)
  checkpoints.wait()
  restored = checkpointing.Checkpoints(str(tmp_path), keep=3).restore_latest(state)
  assert int(restored.step) == 0
  assert os.listdir(tmp_path / "checkpoints_corrupt") == ["1"]  # kept for inspection
