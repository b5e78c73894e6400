"""Every preset in experiments/ trains end to end under tfds's mock CIFAR-10 (shrunk to tiny widths, 8x8
images and a few steps), or, where it is another preset with other settings, builds its train step; and
`python -m gan_jax.sample` works on a conditional run."""
import csv
import importlib
import math
import os
import re
import shutil

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

import experiments
from gan_jax import augment
from gan_jax import checks
from gan_jax import generation
from gan_jax import run_info
from gan_jax import sample
from gan_jax import trainer
from gan_jax.train import create_train_state, train_step
from gan_jax.errors import UserError
from conftest import REPO, TINY_IMAGE_SIZE as TINY_SIZE, run_cli

PRESETS = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "experiments"))
                 if f.endswith(".py") and not f.startswith("_"))


def tiny_preset(name, **overrides):
  config = importlib.import_module(f"experiments.{name}").get_config()
  config.update(dict(g_width=8, d_width=8, latent_dim=16, batch_size=8, num_epochs=0,
                     num_steps=4, steps_per_call=2, log_every=2, sample_every=4, checkpoint_every=4,
                     num_samples=20))
  tiny_settings = dict(embed_dim=8, mbstd_group=4)  # a group of 32 would not divide the tiny batch
  config.model_args.update({k: v for k, v in tiny_settings.items() if k in config.model_args})
  if config.g_batch_size:
    config.g_batch_size = 16
  # Two D updates where the preset has more: the trainer still feeds d_steps batches a step, and on CPU
  # the D updates are unrolled (train.convolutions_slow_in_control_flow), so 4 or 5 of them compile for
  # longer. Measured 2026-12-06 (AMD EPYC, 2 cores, AVX2, no AVX-512; cold cache, `-n 0`): biggan's
  # conditional run 41.3 s with its 4, sngan 29.4 and wgan_gp 13.2 s with their 5; with 2: 37.3, 20.1
  # and 11.1 s.
  config.d_steps = min(config.d_steps, 2)
  # 32x32 presets at 8x8, the smallest size of every architecture here (mock CIFAR-10's images resized);
  # the 64x64 ones keep theirs, whose path (the images padded) is what they add. Measured 2026-12-06 (AVX2
  # EPYC, cold cache, `-n 0`): this file 149.3 s at 32x32, 98.0 s at 8x8; biggan's conditional run
  # 37.3 -> 19.9 s.
  if config.image_size == 32:
    config.image_size = TINY_SIZE
  config.update(overrides)
  return config


def train_preset(name, workdir, **overrides):
  with tfds.testing.mock_data(num_examples=64):
    return trainer.train_and_evaluate(tiny_preset(name, **overrides), str(workdir))


def test_the_presets_are_the_documented_ones():
  assert PRESETS == ["biggan_cifar10", "cifar10_laptop", "dcgan", "dcgan64", "dcgan_cpu", "sngan", "sngan_cpu",
                     "stylegan2_64", "stylegan2_cifar10", "wgan_gp"]


def _recipe_rows():
  """README's Recipes table: [(preset, field, gan_jax value, published value, why it differs)]."""
  with open(os.path.join(REPO, "README.md")) as f:
    text = f.read()
  section = text.split("### Recipes:", 1)[1].split("\n### ", 1)[0]
  rows = []
  for line in section.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 6 and cells[0] in PRESETS:
      rows.append((cells[0], cells[1], cells[2], cells[3], cells[5]))
  return rows


def _value(text, like):
  """A table cell as the type of `like`: numbers may be written as arithmetic (0.99 ** 0.8)."""
  if isinstance(like, bool):
    return {"True": True, "False": False}[text]
  if isinstance(like, (int, float)):
    assert re.fullmatch(r"[0-9.e+\-*/() ]+", text), text
    return eval(text, {"__builtins__": {}})  # pylint: disable=eval-used
  return text


def _same(text, value) -> bool:
  try:
    parsed = _value(text, value)
  except (AssertionError, KeyError, SyntaxError):
    return False
  return math.isclose(parsed, value, rel_tol=1e-12) if isinstance(value, float) else parsed == value


# Where a preset is another preset resized, its rows cover what it changes; the bookkeeping of a run
# (how often it logs, samples and saves) is no recipe.
_PARENTS = {"cifar10_laptop": "dcgan_cpu", "dcgan64": "dcgan", "dcgan_cpu": "dcgan", "sngan_cpu": "sngan",
            "stylegan2_64": "stylegan2_cifar10"}
_BOOKKEEPING = {"num_epochs", "steps_per_call", "log_every", "sample_every", "checkpoint_every"}


def _flat(config):
  """{field: value} with the architecture's settings as model_args.<setting>, all of them (defaults
  where config.model_args leaves them out)."""
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  flat = {k: v for k, v in config.items() if k != "model_args"}
  flat.update({f"model_args.{k}": v for k, v in models.resolve_args(config).items()})
  return flat


def test_readme_recipes_table_matches_the_presets_and_explains_every_deviation():
  rows = _recipe_rows()
  assert {r[0] for r in rows} == set(PRESETS)
  configs = {name: _flat(importlib.import_module(f"experiments.{name}").get_config()) for name in PRESETS}
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  for preset, field, value, published, why in rows:
    actual = configs[preset][field]
    assert _same(value, actual), (preset, field, value, actual)
    if not _same(published, actual):
      assert why, f"{preset}.{field}: {value} differs from the published {published!r} without a reason"
  documented = {(r[0], r[1]) for r in rows}
  for name, config in configs.items():
    # A preset of its own is compared with the defaults and its architecture's defaults.
    base = (configs[_PARENTS[name]] if name in _PARENTS
            else _flat(experiments.with_model(config_lib.defaults(), config["model"])))
    changed = {k for k in config if config[k] != base.get(k)} - _BOOKKEEPING
    missing = sorted(k for k in changed if (name, k) not in documented)
    assert not missing, f"{name} sets {missing} without a row in README's Recipes table"


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("biggan")
  train_preset("biggan_cifar10", workdir)
  # tfds's mock CIFAR-10 names its classes "0".."9"; the real one's names, as its run would record them.
  run_info.save(str(workdir), (TINY_SIZE, TINY_SIZE, 3), CIFAR10_CLASSES)
  return workdir


# Presets that are a parent preset with other settings (_PARENTS) are traced, not run: their train step is
# built for their shapes and checked (jax.eval_shape, nothing compiled), while the machinery they share
# with their parent (data, training loop, samples, checkpoints, export) runs end to end in the parent's
# test. Measured 2026-12-03 (AMD EPYC, 2 cores, AVX2, no AVX-512; in the suite, cold cache): the four
# end-to-end runs took 12.0 (dcgan_cpu), 17.7 (cifar10_laptop), 19.2 (sngan_cpu) and 43.6 s
# (stylegan2_64), 93 s of the suite; traced, 1.5-4.6 s each (alone).
TRACED_PRESETS = ("cifar10_laptop", "dcgan_cpu", "sngan_cpu", "stylegan2_64")
END_TO_END_PRESETS = [p for p in PRESETS if p not in ("biggan_cifar10", *TRACED_PRESETS)]  # biggan: conditional_run


@pytest.mark.parametrize("name", TRACED_PRESETS)
def test_preset_builds_a_train_step_for_its_shapes(name):
  ancestor = _PARENTS[name]
  while ancestor in TRACED_PRESETS:
    ancestor = _PARENTS[ancestor]
  assert ancestor in END_TO_END_PRESETS
  config = tiny_preset(name)
  checks.check_run(config, num_devices=1)  # what the trainer checks first
  shape = (config.image_size, config.image_size, 3)
  state = create_train_state(config, jax.random.PRNGKey(0), shape, num_classes=10, abstract=True)
  rows = config.d_steps * config.batch_size
  batch = {"image": jax.ShapeDtypeStruct((rows, *shape), jnp.float32),
           "label": jax.ShapeDtypeStruct((rows,), jnp.int32)}
  new_state, metrics = jax.eval_shape(train_step, state, batch, jax.ShapeDtypeStruct((2,), jnp.uint32))
  describe = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)
  assert describe(new_state) == describe(state)  # the step keeps the state's structure, shapes and dtypes
  assert new_state.settings.d_steps == config.d_steps and new_state.settings.ema_decay == config.ema_decay
  assert {"d_loss", "g_loss", "healthy"} <= set(metrics) and metrics["d_loss"].shape == ()
  if config.augment:
    assert new_state.settings.augment == augment.parse_policy(config.augment)


@pytest.mark.parametrize("name", END_TO_END_PRESETS)
def test_preset_trains_end_to_end(name, tmp_path):
  # StyleGAN2's augment_p starts at 0.5 so that ADA's first adjustment (after step 2) shows whichever way
  # it goes.
  overrides = {"stylegan2_cifar10": {"augment_p": 0.5, "ada_interval": 2},
               "dcgan": {"compute_dtype": "bfloat16"}}.get(name, {})  # mixed precision, end to end
  summary = train_preset(name, tmp_path, **overrides)
  assert summary["step"] == 4
  with open(tmp_path / "losses.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["step"]) for r in rows] == [2, 4]
  assert all(math.isfinite(float(v)) for row in rows for v in row.values())
  assert os.listdir(tmp_path / "samples") == ["step_0000004.png"]
  # 64x64 presets pad mock CIFAR-10's 32x32 images (as MNIST's are padded): every image is 64x64.
  cell = tiny_preset(name).image_size + 2  # 20 samples: 4 rows of 5, 2-pixel padding, upscaled 2x
  assert Image.open(tmp_path / "samples" / "step_0000004.png").size == (2 * (5 * cell + 2), 2 * (4 * cell + 2))
  assert os.path.isdir(tmp_path / "export" / "generator")
  _, restored, _ = generation.load_run(str(tmp_path))  # the checkpoint round-trips the whole state
  assert int(restored.step) == 4 and restored.settings.d_steps == tiny_preset(name).d_steps
  if name == "stylegan2_cifar10":  # ADA's probability is logged and adapted
    assert float(rows[0]["augment_p"]) == 0.5 and float(rows[-1]["augment_p"]) != 0.5


def test_conditional_preset_draws_one_row_per_class(conditional_run):
  grid = np.asarray(Image.open(conditional_run / "samples" / "step_0000004.png"))
  # 20 samples over 10 classes: 10 rows of 2 columns of 8x8 images, 2-pixel padding, upscaled 2x.
  cell = TINY_SIZE + 2
  assert grid.shape[:2] == (2 * (10 * cell + 2), 2 * (2 * cell + 2))


def test_sample_cli_writes_grids_gifs_and_npz(conditional_run, tmp_path):
  grid = sample.write_samples(str(conditional_run), str(tmp_path / "cats.png"), num=9, class_value="cat")
  cell = TINY_SIZE + 2
  assert Image.open(grid).size == (2 * (3 * cell + 2),) * 2
  walk = sample.write_samples(str(conditional_run), str(tmp_path / "walk.gif"), num=4, keyframes=2, frames=3)
  assert len(imageio.mimread(walk)) == 6
  npz = np.load(sample.write_samples(str(conditional_run), str(tmp_path / "s.npz"), num=23))
  assert npz["images"].shape == (23, TINY_SIZE, TINY_SIZE, 3) and npz["images"].dtype == np.uint8
  np.testing.assert_array_equal(npz["labels"], np.arange(23) % 10)  # classes drawn equally often
  only_cats = np.load(sample.write_samples(str(conditional_run), str(tmp_path / "c.npz"), num=5,
                                           class_value="3"))
  np.testing.assert_array_equal(only_cats["labels"], [3] * 5)
  with pytest.raises(UserError, match="--class=zebra is not a class of this run"):
    sample.write_samples(str(conditional_run), str(tmp_path / "z.png"), class_value="zebra")


def test_a_run_without_its_dataset_record_is_refused_before_its_checkpoints_are_touched(conditional_run,
                                                                                       tmp_path):
  workdir = tmp_path / "old_run"
  shutil.copytree(conditional_run, workdir)
  os.remove(workdir / run_info.FILENAME)
  before = sorted(os.listdir(workdir / "checkpoints"))
  with pytest.raises(UserError, match="has no dataset.json"):
    generation.load_run(str(workdir))
  assert sorted(os.listdir(workdir / "checkpoints")) == before and not (workdir / "checkpoints_corrupt").exists()


def test_sample_cli_errors_are_one_line(conditional_run, tmp_path):
  result = run_cli("gan_jax.sample", f"--workdir={conditional_run}", f"--out={tmp_path / 'x.jpg'}")
  assert result.returncode != 0
  assert "must end in .png, .gif, .npz" in result.stderr.strip().splitlines()[-1]
  result = run_cli("gan_jax.sample", f"--workdir={conditional_run}", f"--out={tmp_path / 'x.png'}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert os.path.exists(tmp_path / "x.png")


def test_set_overrides_take_values_with_commas_and_name_a_missing_field():
  config = experiments.load_preset("cifar10_laptop", "augment=translation,cutout,batch_size=16".split(","))
  assert (config.augment, config.batch_size) == ("translation,cutout", 16)
  with pytest.raises(UserError, match="--set=bacth_size=16: the config has no field bacth_size"):
    experiments.load_preset("cifar10_laptop", ["bacth_size=16"])
  with pytest.raises(UserError, match="batch_size takes a int"):
    experiments.load_preset("cifar10_laptop", ["batch_size=x"])
