"""DCGAN as in the Keras notebooks: non-saturating BCE, Adam(2e-4, b1=0.5), batch 128.

Run:  python -m gan_jax.main --config=experiments/dcgan.py --dataset=cifar10
      (any field can be overridden: --batch_size=256, --config.g_width=128, ...)
Result: not yet measured on a GPU (see README.md for the results table).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # Data.
  config.dataset = "cifar10"
  config.data_dir = ""  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
  config.split = "train"
  config.image_size = 32  # MNIST's 28x28 images are padded to 32x32
  # Models.
  config.model = "dcgan"
  config.latent_dim = 100
  config.g_width = 64
  config.d_width = 64
  config.g_activation = "leaky_relu"
  config.d_dropout = 0.3
  # Optimisation.
  config.batch_size = 128  # global, over all devices and hosts
  config.num_epochs = 50
  config.num_steps = 0  # > 0 overrides num_epochs
  config.g_lr = 2e-4
  config.d_lr = 2e-4
  config.g_b1 = 0.5
  config.g_b2 = 0.999
  config.d_b1 = 0.5
  config.d_b2 = 0.999
  config.seed = 0
  # Devices: 0 = all local devices; parallelism 'shard_map' (jit over a device mesh) or 'pmap'.
  config.num_devices = 0
  config.parallelism = "shard_map"
  config.steps_per_call = 10  # train steps fused into one compiled call (fewer dispatches)
  # Bookkeeping, in steps (multiples of steps_per_call).
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 5000
  config.keep_checkpoints = 3
  config.num_samples = 64  # images in each sample grid (fixed noise)
  config.train_minutes = 0.0  # wall-clock budget; 0 = none
  # FID during training (needs the Inception weights, see README.md): every eval_every steps (0 = never)
  # on eval_samples generated images; the best checkpoint by FID is kept in <workdir>/best/.
  config.eval_every = 0
  config.eval_samples = 10000
  return config
