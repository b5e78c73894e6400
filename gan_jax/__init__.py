"""gan_jax: train and evaluate GANs with JAX, Flax, optax, tfds and Orbax."""
