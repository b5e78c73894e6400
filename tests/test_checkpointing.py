"""Checkpoints that must not be restored: of other models (refused, left in place), non-finite (skipped);
and an abstract template (shapes only, as the commands that sample use) restores a checkpoint exactly."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ORBAX_CLOSED_LOOP, damage_checkpoint, tiny_config
from gan_jax import checkpointing
from gan_jax.errors import UserError
from gan_jax.train import create_train_state


# A template of arrays (the trainer's) and an abstract one (what gan_jax.sample, evaluate and serve use).
TEMPLATE_KINDS = pytest.mark.parametrize("abstract", [False, True], ids=["arrays", "abstract"])


@TEMPLATE_KINDS
def test_checkpoint_of_other_models_is_refused_and_left_in_place(tmp_path, abstract):
  saved = create_train_state(tiny_config(), jax.random.PRNGKey(0), (32, 32, 3))
  checkpoints = checkpointing.Checkpoints(str(tmp_path), keep=2)
  checkpoints.save(saved)
  checkpoints.wait()
  # A conditional G and D have class embeddings: a tree the unconditional checkpoint does not hold.
  other = create_train_state(tiny_config(conditional=True), jax.random.PRNGKey(0), (32, 32, 3),
                             num_classes=10, abstract=abstract)
  with pytest.raises(UserError, match="holds other parameters than these models"):
    checkpointing.Checkpoints(str(tmp_path), keep=2).restore_latest(other)
  assert os.listdir(tmp_path / "checkpoints") == ["0"]
  assert not os.path.exists(tmp_path / "checkpoints_corrupt")


def test_an_abstract_template_restores_the_saved_state_exactly(tmp_path):
  config = tiny_config(conditional=True)
  saved = create_train_state(config, jax.random.PRNGKey(0), (32, 32, 3), num_classes=10)
  saved = saved.replace(step=saved.step + 3, g_ema_params=jax.tree.map(lambda p: p + 0.5, saved.g_ema_params))
  checkpoints = checkpointing.Checkpoints(str(tmp_path), keep=2)
  checkpoints.save(saved)
  checkpoints.wait()
  template = create_train_state(config, jax.random.PRNGKey(1), (32, 32, 3), num_classes=10, abstract=True)
  assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(template))
  restored = checkpointing.Checkpoints(str(tmp_path), keep=2).restore_latest(template)
  paths = lambda state: [path for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
  assert paths(restored) == paths(saved)
  for want, got in zip(jax.tree.leaves(saved), jax.tree.leaves(restored)):
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  assert restored.num_classes == 10 and restored.generate(jnp.zeros((2, 16)), jnp.arange(2)).shape == (2, 32, 32, 3)


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


@TEMPLATE_KINDS
def test_a_checkpoint_from_before_the_ema_statistics_restores_with_the_raw_statistics(tmp_path, abstract):
  """Checkpoints written before GANState had g_ema_batch_stats: the EMA generator then sampled with the
  raw generator's statistics, and restores with them."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from flax import serialization  # pylint: disable=g-import-not-at-top
  state = create_train_state(tiny_config(), jax.random.PRNGKey(0), (32, 32, 3))
  state = state.replace(g_batch_stats=jax.tree.map(lambda x: x + 1.0, state.g_batch_stats))
  old = serialization.to_state_dict(state)
  del old["g_ema_batch_stats"]
  checkpoints = checkpointing.Checkpoints(str(tmp_path), keep=2)
  checkpoints.manager.save(0, args=ocp.args.Composite(default=ocp.args.StandardSave(old)))
  checkpoints.wait()
  template = create_train_state(tiny_config(), jax.random.PRNGKey(1), (32, 32, 3), abstract=abstract)
  restored = checkpointing.Checkpoints(str(tmp_path), keep=2).restore_latest(template)
  for raw, ema in zip(jax.tree.leaves(state.g_batch_stats), jax.tree.leaves(restored.g_ema_batch_stats)):
    np.testing.assert_array_equal(raw, ema)
  # A checkpoint missing anything else is still another model's.
  del old["d_params"]
  checkpoints.manager.save(1, args=ocp.args.Composite(default=ocp.args.StandardSave(old)))
  checkpoints.wait()
  with pytest.raises(UserError, match="holds other parameters than these models"):
    checkpointing.Checkpoints(str(tmp_path), keep=2).restore(1, template)


@ORBAX_CLOSED_LOOP
def test_unawaited_read_errors_of_a_quarantined_checkpoint_are_not_logged_again(tmp_path, caplog):
  """Orbax reads arrays in concurrent asyncio tasks; when the files are damaged, the errors of tasks
  nobody awaited reach asyncio's "never retrieved" log (CI, 2026-12-02). Those of a checkpoint that
  restore_latest reported are dropped; any other task's error is still logged."""
  import asyncio  # pylint: disable=g-import-not-at-top
  import gc  # pylint: disable=g-import-not-at-top
  state = create_train_state(tiny_config(), jax.random.PRNGKey(0), (32, 32, 3))
  checkpoints = checkpointing.Checkpoints(str(tmp_path), keep=3)
  checkpoints.save(state)
  checkpoints.save(state.replace(step=state.step + 1))
  checkpoints.wait()
  damage_checkpoint(tmp_path / "checkpoints" / "1")
  assert int(checkpointing.Checkpoints(str(tmp_path), keep=3).restore_latest(state).step) == 0

  def leave_failed_task(message):
    async def fail():
      raise ValueError(message)
    loop = asyncio.new_event_loop()
    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0.01))  # the task fails; nobody awaits it
    loop.close()
    del task
    gc.collect()

  with caplog.at_level("ERROR", logger="asyncio"):
    leave_failed_task(f'DATA_LOSS: Error reading in OCDBT database at "{tmp_path}/checkpoints/1/default/"')
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    leave_failed_task("an error of something else")
    assert [r for r in caplog.records if "never retrieved" in r.getMessage()]
