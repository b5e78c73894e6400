"""The extension points, used as a contributor would: a new architecture and a new objective defined in
one file of their own (here a preset file the test writes), registered there, and trained and resumed
through the command line; nothing in gan_jax/ is edited for them."""
import csv
import textwrap

from conftest import TINY_FLAGS, run_cli

PLUGIN_PRESET = textwrap.dedent('''
    """A tiny MLP-conv G/D pair and a margin objective, registered when the preset is loaded."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import ml_collections

    import experiments
    from gan_jax import config as config_lib
    from gan_jax import losses
    from gan_jax import models


    class Generator(nn.Module):
      image_shape: tuple
      hidden: int

      @nn.compact
      def __call__(self, z, labels=None, *, train):
        del labels, train
        h, w, c = self.image_shape
        x = nn.relu(nn.Dense(self.hidden)(z))
        x = nn.Dense(h * w * 4)(x).reshape(z.shape[0], h, w, 4)
        return jnp.tanh(nn.Conv(c, (3, 3))(nn.relu(x)))


    class Discriminator(nn.Module):
      hidden: int

      @nn.compact
      def __call__(self, x, labels=None, *, train, example_keys=None):
        del labels, train, example_keys
        x = nn.relu(nn.Conv(4, (3, 3), strides=(2, 2))(x))
        features = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return nn.Dense(1)(features)[:, 0], features


    def default_args():
      return {"hidden": 32}


    def check(args, config, image_shape, per_device_batch):
      del config, image_shape, per_device_batch
      if args["hidden"] <= 0:
        raise ValueError(f"--config.model_args.hidden={args['hidden']} must be positive")


    def build(config, args, image_shape, *, num_classes, axis_name, dtype):
      del config, axis_name, dtype
      if num_classes:
        raise ValueError("mlp_conv is unconditional")
      return Generator(image_shape, args["hidden"]), Discriminator(args["hidden"])


    def margin_d_loss(real_logits, fake_logits, label_smoothing=0.0):
      del label_smoothing
      return jax.nn.softplus(1 - real_logits).mean() + jax.nn.softplus(1 + fake_logits).mean()


    def margin_g_loss(fake_logits, real_logits=None):
      del real_logits
      return jax.nn.softplus(1 - fake_logits).mean()


    models.register("mlp_conv", models.Architecture(build, default_args, check))
    losses.register("margin", losses.Objective(margin_d_loss, margin_g_loss))


    def get_config() -> ml_collections.ConfigDict:
      config = experiments.with_model(config_lib.defaults(), "mlp_conv")
      config.loss = "margin"
      return config
    ''')


def test_an_architecture_and_a_loss_from_a_file_of_their_own_train_and_resume(tmp_path, image_dataset):
  data_dir, name = image_dataset
  preset = tmp_path / "mlp_conv_preset.py"
  preset.write_text(PLUGIN_PRESET)
  common = [f"--config={preset}", f"--dataset={name}", f"--data_dir={data_dir}", "--batch_size=4",
            f"--workdir={tmp_path / 'run'}", *TINY_FLAGS, "--config.model_args.hidden=16"]
  first = run_cli("gan_jax.main", *common, "--num_steps=5")
  assert first.returncode == 0, first.stderr[-3000:]
  assert "Training mlp_conv" in first.stderr
  second = run_cli("gan_jax.main", *common, "--num_steps=10")
  assert second.returncode == 0, second.stderr[-3000:]
  assert "from step 5" in second.stderr
  with open(tmp_path / "run" / "losses.csv") as f:
    assert [int(row["step"]) for row in csv.DictReader(f)] == [5, 10]
  with open(tmp_path / "run" / "config.json") as f:
    recorded = f.read()
  assert '"hidden": 16' in recorded and '"loss": "margin"' in recorded
  # Its own check is a one-line error like any built-in one.
  bad = run_cli("gan_jax.main", *common, "--num_steps=10", "--config.model_args.hidden=0")
  assert bad.returncode != 0
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: --config.model_args.hidden=0 must be positive (--model=mlp_conv)")
