"""What the train step does with each training option: EMA, several D steps, conditional labels,
regularisers, instance noise and ADA. Tiny DCGANs on one device."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses
from gan_jax import train
from gan_jax.train import create_train_state, d_update, train_step
from conftest import TINY_IMAGE_SIZE, tiny_config

BATCH = 8


# tiny_config's image size (8x8): this file took 62.5 s at 16x16 and 48.1 s at 8x8 (AMD EPYC, AVX2, cold
# cache, `-n 0`, 2026-12-06).
def _state(num_classes=0, **overrides):
  return create_train_state(tiny_config(**overrides), jax.random.PRNGKey(0),
                            (TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3), num_classes=num_classes)


def _batch(n=BATCH, label=0, seed=1):
  shape = (n, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)
  return {"image": jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1, maxval=1),
          "label": jnp.full(n, label, jnp.int32)}


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_ema_update_formula():
  ema, params = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 6.0])}
  np.testing.assert_allclose(train.ema_update(ema, params, 0.99)["w"], [1.02, 2.04], rtol=1e-6)
  np.testing.assert_allclose(train.ema_update(ema, params, 0.0)["w"], [3.0, 6.0])  # the latest weights


def _beta(step, batch=64, **settings):
  return float(train.ema_beta(train.StepSettings(**settings), step, batch))


def test_ema_decay_per_step_with_tensorflows_warm_up():
  assert _beta(10_000, ema_decay=0.99) == pytest.approx(0.99)  # late: the decay as given
  assert _beta(0, ema_decay=0.99) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
  assert _beta(90, ema_decay=0.99) == pytest.approx(91 / 100)
  assert _beta(0, ema_decay=0.99, ema_warmup=False) == pytest.approx(0.99)
  assert _beta(5, ema_decay=0.0) == 0.0


def test_ema_half_life_in_images_with_ramp_up_as_stylegan2_ada():
  # ema_kimg 500, ramp-up 0.05, batch 64: the half-life is min(500k, 0.05 * images seen) images.
  kimg = dict(ema_kimg=500.0, ema_rampup=0.05)
  assert _beta(0, **kimg) == 0.0  # nothing seen yet: a copy
  assert _beta(1000, **kimg) == pytest.approx(0.5 ** (64 / (1000 * 64 * 0.05)))
  assert _beta(1_000_000, **kimg) == pytest.approx(0.5 ** (64 / 500_000))
  assert _beta(1_000_000, **kimg) == pytest.approx(0.999911, abs=1e-6)  # the issue's ~0.99991
  assert _beta(10, ema_kimg=500.0) == pytest.approx(0.5 ** (64 / 500_000))  # no ramp-up
  # Half-lives: after the images of one half-life, a weight's share has halved (beta is float32: its
  # rounding, ~6e-8, compounds over 3,906 updates to ~2e-4).
  assert _beta(1_000_000, batch=128, **kimg) ** (500_000 / 128) == pytest.approx(0.5, rel=1e-3)


def test_ema_is_a_copy_before_ema_start_as_biggan():
  start = dict(ema_decay=0.9999, ema_warmup=False, ema_start=1000)
  assert _beta(999, **start) == 0.0
  assert _beta(1000, **start) == pytest.approx(0.9999)


def test_the_ema_generator_has_batchnorm_statistics_of_its_own():
  step = jax.jit(train_step)
  state = _state(ema_decay=0.5, ema_warmup=False)
  for i in range(3):
    state, _ = step(state, _batch(seed=i), jax.random.PRNGKey(i))
  raw, ema = _leaves(state.g_batch_stats), _leaves(state.g_ema_batch_stats)
  assert raw and not any(np.allclose(r, e) for r, e in zip(raw, ema))
  # generate(ema=True) applies exactly the EMA weights with the EMA statistics.
  z = jax.random.normal(jax.random.PRNGKey(9), (4, state.latent_dim))
  expected = state.generator.apply({"params": state.g_ema_params, "batch_stats": state.g_ema_batch_stats},
                                   z, None, train=False)
  np.testing.assert_array_equal(state.generate(z), expected)
  with_raw_statistics = state.generator.apply({"params": state.g_ema_params,
                                               "batch_stats": state.g_batch_stats}, z, None, train=False)
  assert not np.allclose(state.generate(z), with_raw_statistics)


# One compiled step for several checks: 3 D updates per G update, an EMA, and ADA adjusting after every
# step (1 image per thousand per unit of augment_p).
COMBINED = dict(d_steps=3, ema_decay=0.999, augment="color,translation,cutout", augment_p=0.5, ada_target=0.6,
                ada_interval=1, ada_kimg=1.0)


@pytest.fixture(scope="module")
def combined_step():
  return jax.jit(train_step)


def test_train_step_keeps_the_ema_of_the_generator(combined_step):
  state = _state(**COMBINED)
  initial = _leaves(state.g_params)
  state, _ = combined_step(state, _batch(3 * BATCH), jax.random.PRNGKey(2))
  for before, after, ema in zip(initial, _leaves(state.g_params), _leaves(state.g_ema_params)):
    # Step 0: the warm-up's decay (1 + 0) / (10 + 0) = 0.1.
    np.testing.assert_allclose(ema, 0.1 * before + 0.9 * after, rtol=1e-5, atol=1e-7)
  assert not all(np.array_equal(a, b) for a, b in zip(_leaves(state.g_params), _leaves(state.g_ema_params)))
  z = jnp.ones((2, state.latent_dim))
  assert not np.array_equal(state.generate(z), state.generate(z, ema=False))


def test_several_d_updates_per_generator_update(combined_step):
  state, metrics = combined_step(_state(**COMBINED), _batch(3 * BATCH), jax.random.PRNGKey(2))
  assert int(state.d_opt_state[0].count) == 3 and int(state.g_opt_state[0].count) == 1
  assert int(state.step) == 1 and np.isfinite(float(metrics["d_loss"]))


def test_d_updates_read_consecutive_rows_then_g_reads_the_last(combined_step):
  """A step is d_update on rows [0, B), [B, 2B), [2B, 3B) with keys fold_in(rng, i), then g_update."""
  state, batch, rng = _state(**COMBINED), _batch(3 * BATCH), jax.random.PRNGKey(2)
  stepped, _ = combined_step(state, batch, rng)
  manual, update = state, jax.jit(d_update)
  for i in range(3):
    chunk = {k: v[i * BATCH:(i + 1) * BATCH] for k, v in batch.items()}
    manual, _ = update(manual, chunk, jax.random.fold_in(rng, i))
  manual, _ = jax.jit(train.g_update)(manual, chunk, jax.random.fold_in(rng, 3))
  # One step, the same arithmetic in one program or four: differences are XLA's fusion rounding (~1e-7),
  # passed on by Adam unamplified since no gradient here is rounding noise (this D has no BatchNorm, G no
  # bias before one); reading other rows or keys moves weights by Adam's whole first step, lr = 2e-4.
  for a, b in zip(_leaves((stepped.d_params, stepped.g_params)), _leaves((manual.d_params, manual.g_params))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_ada_moves_the_probability_by_the_images_of_a_step(combined_step):
  state, metrics = combined_step(_state(**COMBINED), _batch(3 * BATCH), jax.random.PRNGKey(2))
  step_size = 3 * BATCH / 1000.0  # 3 D updates of BATCH images each
  expected = 0.5 + np.sign(float(metrics["real_sign"]) - 0.6) * step_size
  np.testing.assert_allclose(float(state.augment_p), expected, rtol=1e-6)
  assert float(state.ada_updates) == 0.0  # the statistic starts again after an adjustment
  assert float(metrics["augment_p"]) == 0.5  # the probability this step used


def test_conditional_labels_reach_d_and_g():
  """D's projection embedding learns from the real images' class and the sampled fake classes only;
  G's class embedding only from the sampled classes."""
  state = _state(num_classes=10, conditional=True, model_args=dict(d_dropout=0.0))
  rng = jax.random.PRNGKey(3)
  fake_labels = set(np.asarray(train._fake_labels(train._example_keys(rng, BATCH, None), 10)).tolist())
  assert 2 not in fake_labels  # the test needs a real class that no fake has
  new_state, _ = jax.jit(d_update)(state, _batch(label=2), rng)
  before, after = state.d_params, new_state.d_params
  changed = lambda a, b: set(np.nonzero(np.any(np.asarray(a) != np.asarray(b), axis=1))[0].tolist())
  embedding = [k for k in before if "Embed" in k][0]
  assert changed(before[embedding]["embedding"], after[embedding]["embedding"]) == fake_labels | {2}
  g_rng = jax.random.PRNGKey(4)
  g_labels = set(np.asarray(train._fake_labels(train._example_keys(g_rng, BATCH, None), 10)).tolist())
  new_state, _ = jax.jit(train.g_update)(state, _batch(label=2), g_rng)
  before, after = state.g_params["Embed_0"]["embedding"], new_state.g_params["Embed_0"]["embedding"]
  assert changed(before, after) == g_labels
  # Unconditional states refuse nothing but need no labels; conditional generate() needs them.
  with pytest.raises(ValueError, match="pass labels"):
    state.generate(jnp.zeros((1, state.latent_dim)))


def test_r1_penalty_in_the_d_update():
  gamma = 10.0
  state = _state(r1_gamma=gamma, model_args=dict(d_dropout=0.0))
  batch = _batch()
  _, metrics = jax.jit(d_update)(state, batch, jax.random.PRNGKey(2))
  logits = lambda x: state.discriminator.apply({"params": state.d_params, "batch_stats": state.d_batch_stats},
                                               x, batch["label"], train=False)[0]
  expected = gamma / 2 * losses.squared_gradient_norm(logits, batch["image"]).mean()
  np.testing.assert_allclose(metrics["d_reg"], expected, rtol=1e-4)


def test_lazy_regularisation_runs_every_few_steps_scaled_up():
  state = _state(r1_gamma=1.0, reg_every=4, model_args=dict(d_dropout=0.0))
  update = jax.jit(d_update)
  _, on_step = update(state, _batch(), jax.random.PRNGKey(2))
  _, off_step = update(state.replace(step=jnp.int32(1)), _batch(), jax.random.PRNGKey(2))
  eager_state = _state(r1_gamma=1.0, model_args=dict(d_dropout=0.0))
  _, eager = jax.jit(d_update)(eager_state, _batch(), jax.random.PRNGKey(2))
  np.testing.assert_allclose(on_step["d_reg"], 4 * eager["d_reg"], rtol=1e-5)
  assert float(off_step["d_reg"]) == 0.0
  # The host's decision (CPU runs, train.lazy_penalty_due) is the device's (lax.cond on state.step).
  assert [train.lazy_penalty_due(state.settings, s) for s in range(5)] == [True, False, False, False, True]
  _, decided = jax.jit(d_update, static_argnums=3)(state, _batch(), jax.random.PRNGKey(2), True)
  np.testing.assert_allclose(decided["d_reg"], on_step["d_reg"], rtol=1e-5)


@pytest.mark.parametrize("step, expected_std", [(0, 0.5), (50, 0.25), (100, 0.0), (500, 0.0)])
def test_instance_noise_is_annealed(step, expected_std):
  state = _state(instance_noise=0.5, instance_noise_steps=100).replace(step=jnp.int32(step))
  images = jnp.zeros((64, 16, 16, 3))
  keys = train._example_keys(jax.random.PRNGKey(0), 64, None)
  noisy = train._discriminator_input(state, images, keys, train._AUGMENT_REAL, train._NOISE_REAL)
  np.testing.assert_allclose(float(jnp.std(noisy)), expected_std, rtol=0.02, atol=1e-7)


@pytest.mark.parametrize("loss, regulariser", [("rpgan", dict(r2_gamma=1.0)), ("wgan", dict(gp_weight=10.0))])
def test_losses_with_feature_matching_train(loss, regulariser):
  """The paths that read real images in G's update (rpgan, feature matching) and the penalties on
  generated images (R2, gradient penalty); the other objectives differ only in their formula."""
  state = _state(loss=loss, feature_matching=1.0, **regulariser)
  state, metrics = jax.jit(train_step)(state, _batch(), jax.random.PRNGKey(2))
  assert all(np.isfinite(float(v)) for v in metrics.values()), (loss, metrics)
  assert float(metrics["feature_matching"]) > 0 and float(metrics["d_reg"]) > 0


def test_generator_batch_of_its_own_size():
  """g_batch_size=16 with real batches of 8: G's update is the one it would make with 16 real rows (the
  non-saturating G loss reads no real image), so its latents are those of a 16-row batch."""
  rng = jax.random.PRNGKey(3)
  own, _ = jax.jit(train.g_update)(_state(g_batch_size=16), _batch(8), rng)
  shared, _ = jax.jit(train.g_update)(_state(), _batch(16), rng)
  for a, b in zip(_leaves(own.g_params), _leaves(shared.g_params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  eight, _ = jax.jit(train.g_update)(_state(), _batch(8), rng)
  assert not all(np.allclose(a, b) for a, b in zip(_leaves(own.g_params), _leaves(eight.g_params)))


def test_linear_learning_rate_decay_to_zero_over_the_run():
  state = _state(lr_decay="linear", num_steps=10, d_steps=2, g_lr=1e-3, d_lr=2e-3)
  params = {"w": jnp.zeros(3)}
  gradient = {"w": jnp.ones(3)}
  for tx, lr, updates in ((state.g_tx, 1e-3, 10), (state.d_tx, 2e-3, 20)):  # D: d_steps per step
    opt_state = tx.init(params)
    sizes = []
    for _ in range(updates + 1):
      update, opt_state = tx.update(gradient, opt_state, params)
      sizes.append(-float(update["w"][0]))  # Adam's normalised step of a constant gradient is 1
    np.testing.assert_allclose(sizes, lr * (1 - np.minimum(np.arange(updates + 1) / updates, 1)), rtol=1e-4,
                               atol=1e-9)
  constant = _state().g_tx  # lr_decay "constant": Adam as before
  assert float(constant.update(gradient, constant.init(params), params)[0]["w"][0]) == pytest.approx(-2e-4, rel=1e-4)
