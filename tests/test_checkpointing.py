"""Checkpoints of other models (another version's layer names) are refused, never moved aside."""
import os

import jax
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
