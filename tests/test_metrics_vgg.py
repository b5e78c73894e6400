"""VGG-16 fc2 features (precision/recall's network) against a numpy forward pass of the same weights,
read from a torchvision-layout state_dict file that the test writes (tests/torch_files.py).

The real vgg16 file is 528 MB, so the forward pass is checked on a narrow VGG-16: torchvision's layers
and names with fewer channels. That the reader expects torchvision's own shapes of real files is
checked against torchvision's published parameter count.
"""
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import metrics
from gan_jax.errors import UserError
from gan_jax.metrics import vgg
import torch_files

NARROW = dict(widths=(4, 4, 8, 8, 8), hidden=16)


def _state_dict(seed=0, widths=NARROW["widths"], hidden=NARROW["hidden"]):
  """Random weights in torchvision's vgg16 names, scaled so that activations stay of order one."""
  rng = np.random.RandomState(seed)
  state = {}
  for name, shape in vgg.torchvision_shapes(widths, hidden, num_classes=10).items():
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    scale = np.sqrt(2.0 / fan_in) if name.endswith("weight") else 0.1
    state[name] = (rng.normal(size=shape) * scale).astype(np.float32)
  return state


def _resize_tf1(x, size):
  """TF1's legacy bilinear resize, one axis at a time: output j samples input position j * in / out."""
  for axis in (1, 2):
    n = x.shape[axis]
    position = np.arange(size) * n / size
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = (position - low).reshape([-1 if a == axis else 1 for a in range(4)])
    x = np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac
  return x


def _numpy_vgg16(images, state, widths, hidden):
  """torchvision's vgg16 forward in NCHW numpy (float64), up to fc2 and its ReLU."""
  x = images.astype(np.float64)
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, axis=-1)
  x = _resize_tf1(x, 224)
  x = (x - 255 * np.array([0.485, 0.456, 0.406])) / (255 * np.array([0.229, 0.224, 0.225]))
  x = x.transpose(0, 3, 1, 2)
  index = 0
  for convs in (2, 2, 3, 3, 3):
    for _ in range(convs):
      weight, bias = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
      padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
      height, width = x.shape[2:]
      out = np.zeros((x.shape[0], weight.shape[0], height, width))
      for i in range(3):
        for j in range(3):
          out += np.einsum("nchw,oc->nohw", padded[:, :, i:i + height, j:j + width], weight[:, :, i, j])
      x = np.maximum(out + bias[None, :, None, None], 0)
      index += 2
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    index += 1
  x = x.reshape(len(x), -1)  # torch.flatten of (N, C, 7, 7)
  x = np.maximum(x @ state["classifier.0.weight"].T + state["classifier.0.bias"], 0)
  return np.maximum(x @ state["classifier.3.weight"].T + state["classifier.3.bias"], 0)


def _images(seed=1):
  rng = np.random.RandomState(seed)
  return rng.randint(0, 256, (3, 32, 32, 3), dtype=np.uint8)


def test_the_reader_expects_torchvisions_vgg16():
  shapes = vgg.torchvision_shapes()
  # torchvision's documented size of vgg16 (VGG16_Weights.IMAGENET1K_V1: 138,357,544 parameters).
  assert sum(int(np.prod(s)) for s in shapes.values()) == 138_357_544
  assert shapes["features.0.weight"] == (64, 3, 3, 3) and shapes["features.28.weight"] == (512, 512, 3, 3)
  assert shapes["classifier.0.weight"] == (4096, 25088) and shapes["classifier.3.weight"] == (4096, 4096)
  assert [int(name.split(".")[1]) for name in shapes if name.startswith("features.")][::2] == [
      0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def test_features_match_a_numpy_forward_pass(tmp_path):
  state = _state_dict()
  path = str(tmp_path / "vgg16_narrow.pth")
  torch_files.save_state_dict(path, state)
  network = vgg.load_vgg16(path, **NARROW)
  images = _images()
  features = network.features(images, batch_size=2)  # two batches, the second one short
  expected = _numpy_vgg16(images, state, **NARROW)
  assert features.shape == (3, 16) and features.dtype == np.float32
  assert (expected > 0).mean() > 0.2  # not a pass on all-zero ReLU outputs
  np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
  # Grayscale is repeated to RGB; a 224x224 image is not resized.
  gray = images[:, :, :, :1]
  np.testing.assert_allclose(network.features(gray, batch_size=4),
                             network.features(np.repeat(gray, 3, axis=-1), batch_size=4), rtol=1e-6)
  full = np.random.RandomState(2).randint(0, 256, (1, 224, 224, 3), dtype=np.uint8)
  np.testing.assert_allclose(network.features(full), _numpy_vgg16(full, state, **NARROW), rtol=1e-4,
                             atol=1e-4)
  # The weights are named in cache file names by their file's hash.
  other = str(tmp_path / "other.pth")
  torch_files.save_state_dict(other, _state_dict(seed=5))
  assert network.protocol != vgg.load_vgg16(other, **NARROW).protocol
  assert "vgg16-w4x4x8x8x8-h16-" in network.protocol


def test_features_match_torchvision_where_installed(tmp_path):
  torch = pytest.importorskip("torch")
  torchvision = pytest.importorskip("torchvision")
  state = _state_dict()
  path = str(tmp_path / "vgg16_narrow.pth")
  torch_files.save_state_dict(path, state)
  # torchvision's own vgg16, narrowed to the same widths, on the file as torch reads it.
  layers, channels = [], 3
  for width, convs in zip(NARROW["widths"], (2, 2, 3, 3, 3)):
    for _ in range(convs):
      layers += [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.ReLU(inplace=True)]
      channels = width
    layers.append(torch.nn.MaxPool2d(2, 2))
  model = torchvision.models.VGG(torch.nn.Sequential(*layers), num_classes=10)
  model.classifier[0] = torch.nn.Linear(channels * 49, NARROW["hidden"])
  model.classifier[3] = torch.nn.Linear(NARROW["hidden"], NARROW["hidden"])
  model.classifier[6] = torch.nn.Linear(NARROW["hidden"], 10)
  model.load_state_dict(torch.load(path))
  model.eval()
  del model.classifier[4:]
  images = _images()
  # torch's own bilinear resize has half-pixel centres, unlike TF1's: the numpy resize feeds torch.
  x = torch.from_numpy(_resize_tf1(images.astype(np.float64), 224)).permute(0, 3, 1, 2).float()
  x = torchvision.transforms.functional.normalize(x, [255 * m for m in vgg.IMAGENET_MEAN],
                                                  [255 * s for s in vgg.IMAGENET_STD])
  with torch.no_grad():
    expected = torch.relu(model(x)).numpy()
  features = vgg.load_vgg16(path, **NARROW).features(images)
  np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_a_file_of_another_network_is_one_clear_error(tmp_path):
  state = _state_dict()
  state["features.0.weight"] = state["features.0.weight"][:, :, :2]
  del state["classifier.3.bias"]
  path = str(tmp_path / "not_vgg.pth")
  torch_files.save_state_dict(path, state)
  with pytest.raises(UserError) as error:
    vgg.load_vgg16(path, **NARROW)
  message = str(error.value)
  assert "\n" not in message and "is not a state_dict of torchvision's vgg16" in message
  assert "classifier.3.bias: missing" in message and "features.0.weight: (4, 3, 2, 3)" in message
  # A narrow file is refused where a real one is expected.
  torch_files.save_state_dict(path, _state_dict())
  with pytest.raises(UserError, match=r"features.0.weight: \(4, 3, 3, 3\) for \(64, 3, 3, 3\)"):
    vgg.load_vgg16(path)
  with pytest.raises(UserError, match="do not exist; download torchvision's"):
    vgg.load_vgg16(str(tmp_path / "nowhere.pth"))
  (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
  with pytest.raises(UserError, match="cannot read VGG-16 weights"):
    vgg.load_vgg16(str(tmp_path / "garbage.pth"))


def test_reference_features_are_computed_once_per_weights_as_float16(tmp_path, monkeypatch):
  path = str(tmp_path / "vgg16_narrow.pth")
  torch_files.save_state_dict(path, _state_dict())
  network = vgg.load_vgg16(path, **NARROW)
  embedded = []
  original = vgg.VGGFeatures.features

  def counting(self, images, batch_size=vgg.DEFAULT_BATCH_SIZE):
    features = original(self, images, batch_size)
    embedded.append(len(features))
    return features

  monkeypatch.setattr(vgg.VGGFeatures, "features", counting)
  cache = str(tmp_path / "cache")
  with tfds.testing.mock_data(num_examples=6):
    first = metrics.reference_vgg_features("cifar10", "train", network, cache_dir=cache, batch_size=4)
    again = metrics.reference_vgg_features("cifar10", "train", network, cache_dir=cache, batch_size=4)
    source = tfds.data_source("cifar10", split="train")
    images = np.stack([np.asarray(source[i]["image"]) for i in range(6)])
  assert embedded == [6] and first.dtype == np.float16 and first.shape == (6, 16)
  np.testing.assert_array_equal(again, first)
  np.testing.assert_allclose(first, original(network, images), rtol=1e-3, atol=1e-3)
  assert os.listdir(os.path.join(cache, "reference_stats")) == [f"cifar10_train_all_{network.protocol}.npz"]
