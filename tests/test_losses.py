"""Every objective and regulariser against values computed by hand."""
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

REAL = jnp.array([2.0, 0.5])
FAKE = jnp.array([-2.0, 0.3])


def _softplus(x):
  return np.log1p(np.exp(x))


def test_nonsaturating_at_chance_and_when_confident():
  zeros = jnp.zeros(8)
  np.testing.assert_allclose(losses.nonsaturating_d_loss(zeros, zeros), 2 * np.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.nonsaturating_g_loss(zeros), np.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.nonsaturating_d_loss(jnp.full(4, 10.0), jnp.full(4, -10.0)),
                             2 * np.log1p(np.exp(-10.0)), rtol=1e-4)
  np.testing.assert_allclose(losses.nonsaturating_g_loss(jnp.full(4, -10.0)), 10.0, rtol=1e-4)


def test_nonsaturating_values_and_label_smoothing():
  # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f).
  expected = np.mean(_softplus(-np.array([2.0, 0.5]))) + np.mean(_softplus(np.array([-2.0, 0.3])))
  np.testing.assert_allclose(losses.nonsaturating_d_loss(REAL, FAKE), expected, rtol=1e-6)
  # Target 0.9 for real: 0.9 softplus(-r) + 0.1 softplus(r).
  smoothed = (np.mean(0.9 * _softplus(-np.array([2.0, 0.5])) + 0.1 * _softplus(np.array([2.0, 0.5])))
              + np.mean(_softplus(np.array([-2.0, 0.3]))))
  np.testing.assert_allclose(losses.nonsaturating_d_loss(REAL, FAKE, 0.1), smoothed, rtol=1e-6)
  np.testing.assert_allclose(losses.nonsaturating_g_loss(FAKE), np.mean(_softplus(-np.array([-2.0, 0.3]))),
                             rtol=1e-6)


def test_hinge():
  # D: mean(relu(1 - [2, 0.5])) + mean(relu(1 + [-2, 0.3])) = mean(0, 0.5) + mean(0, 1.3) = 0.9.
  np.testing.assert_allclose(losses.hinge_d_loss(REAL, FAKE), 0.9, rtol=1e-6)
  np.testing.assert_allclose(losses.critic_g_loss(FAKE), 0.85, rtol=1e-6)  # -mean(-2, 0.3)


def test_wasserstein():
  # mean(fake) - mean(real) = -0.85 - 1.25.
  np.testing.assert_allclose(losses.wasserstein_d_loss(REAL, FAKE), -2.1, rtol=1e-6)


def test_least_squares():
  # 0.5 * (mean((2-1)^2, (0.5-1)^2) + mean(4, 0.09)) = 0.5 * (0.625 + 2.045) = 1.335.
  np.testing.assert_allclose(losses.least_squares_d_loss(REAL, FAKE), 1.335, rtol=1e-6)
  # b = 0.9: 0.5 * (mean(1.1^2, 0.4^2) + 2.045) = 0.5 * (0.685 + 2.045) = 1.365.
  np.testing.assert_allclose(losses.least_squares_d_loss(REAL, FAKE, 0.1), 1.365, rtol=1e-6)
  # 0.5 * mean(9, 0.49) = 2.3725.
  np.testing.assert_allclose(losses.least_squares_g_loss(FAKE), 2.3725, rtol=1e-6)


def test_relativistic_pairs_each_real_with_its_fake():
  # softplus(f_i - r_i): softplus(-4), softplus(-0.2).
  np.testing.assert_allclose(losses.relativistic_d_loss(REAL, FAKE), np.mean(_softplus(np.array([-4.0, -0.2]))),
                             rtol=1e-6)
  np.testing.assert_allclose(losses.relativistic_g_loss(FAKE, REAL), np.mean(_softplus(np.array([4.0, 0.2]))),
                             rtol=1e-6)


def test_squared_gradient_norm_of_a_quadratic_critic():
  # D(x) = sum(x^2) -> grad 2x -> |grad|^2 = 4 sum(x^2), per example.
  x = jnp.arange(2 * 2 * 2 * 1, dtype=jnp.float32).reshape(2, 2, 2, 1) / 4
  norms = losses.squared_gradient_norm(lambda x: jnp.sum(x**2, axis=(1, 2, 3)), x)
  np.testing.assert_allclose(norms, 4 * np.sum(np.asarray(x)**2, axis=(1, 2, 3)), rtol=1e-6)


def test_gradient_penalty_of_a_linear_critic():
  # D(x) = <w, x> with |w| = 3: the gradient is w everywhere, so the penalty is (3 - 1)^2 = 4.
  w = jnp.zeros((4, 4, 1)).at[0, 0, 0].set(3.0)
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  real, fake = jnp.ones((3, 4, 4, 1)), -jnp.ones((3, 4, 4, 1))
  penalty = losses.gradient_penalty(critic, real, fake, jnp.array([0.0, 0.3, 1.0]))
  np.testing.assert_allclose(penalty, [4.0, 4.0, 4.0], rtol=1e-5)


def test_gradient_penalty_is_taken_at_the_interpolate():
  # D(x) = sum(x^2): |grad| at x_hat = 2 |x_hat|; x_hat = alpha * 1 + (1 - alpha) * 0 on 4 pixels.
  critic = lambda x: jnp.sum(x**2, axis=(1, 2, 3))
  real, fake = jnp.ones((2, 2, 2, 1)), jnp.zeros((2, 2, 2, 1))
  alpha = jnp.array([0.25, 1.0])
  penalty = losses.gradient_penalty(critic, real, fake, alpha)
  norms = 2 * np.asarray(alpha) * 2  # |x_hat| = alpha * sqrt(4)
  np.testing.assert_allclose(penalty, (norms - 1) ** 2, rtol=1e-5)


def test_feature_matching():
  real = jnp.array([[0.0, 1.0], [2.0, 3.0]])  # mean (1, 2)
  fake = jnp.array([[0.0, 4.0], [0.0, 4.0]])  # mean (0, 4)
  np.testing.assert_allclose(losses.feature_matching(real, fake), (1 + 4) / 2, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(losses.OBJECTIVES))
def test_generator_loss_falls_as_fakes_look_more_real(name):
  objective = losses.OBJECTIVES[name]
  real = jnp.zeros(4)
  worse, better = objective.g_loss(jnp.full(4, -1.0), real), objective.g_loss(jnp.full(4, 1.0), real)
  assert float(better) < float(worse)
