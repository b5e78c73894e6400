"""gan_jax: GAN training and evaluation in JAX/Flax."""
import setuptools

setuptools.setup(
    name="gan_jax",
    version="0.1.0",
    description="JAX/Flax research codebase for training and evaluating GANs.",
    packages=setuptools.find_packages(include=["gan_jax", "gan_jax.*", "experiments"]),
    package_data={"gan_jax": ["gallery.html"]},  # the page of gan_jax.serve
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.10",
        "flax>=0.10",
        "optax>=0.2",
        "orbax-checkpoint>=0.11",
        "tensorflow-datasets>=4.9.7",
        "array_record",
        "grain",  # streams splits that do not fit in memory (gan_jax.data.streaming)
        "importlib_resources",
        "ml_collections",
        "absl-py",
        "filelock",  # jax's compilation cache locks its entries with it (gan_jax.compilation_cache)
        "matplotlib",
        "imageio",
        "pillow",
        "numpy",
        "scipy",
        "tensorboardX",  # TensorBoard summaries without TensorFlow (gan_jax.monitoring)
        "tqdm",  # the progress bar
    ],
    extras_require={
        # tensorboard: its event reader checks the summaries (it is also what shows them).
        "test": ["pytest", "pytest-xdist", "tensorboard"],
        # Only needed to prepare tfds's own datasets (cifar10, mnist, ...) from the internet.
        "tf": ["tensorflow-cpu"],
        "cuda": ["jax[cuda12]>=0.10"],
    },
)
