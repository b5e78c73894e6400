"""VGG-16 fc2 features in Flax, for precision/recall as published, with weights from torchvision's file.

Improved precision and recall (Kynkäänniemi et al. 2019) are computed on VGG-16 features, not on the
Inception's: StyleGAN2-ADA's metrics/precision_recall.py embeds images with NVIDIA's vgg16.pt
(`return_features=True`), and torch-fidelity (torch_fidelity/feature_extractor_vgg16.py, its 'prc'
metric's default layer 'fc2_relu') with torchvision's vgg16 ImageNet weights; torch-fidelity's
tests/torch_pure/fe_vgg16/test_vgg16_fe.py checks that the two give the same features within 1e-4.
The protocol here is torch-fidelity's:

  * uint8 images (N, H, W, C), grayscale repeated to RGB (StyleGAN2-ADA's metrics/metric_utils.py),
  * resized to 224x224 with TF1's legacy bilinear resize, corners not aligned (torch-fidelity's
    interpolate_bilinear_2d_like_tensorflow1x(..., align_corners=False); the Inception's resize here),
  * normalised in pixel units: (v - 255 * mean) / (255 * std) with ImageNet's mean (0.485, 0.456,
    0.406) and std (0.229, 0.224, 0.225) (torchvision.transforms.functional.normalize there),
  * torchvision's vgg16: 13 3x3 convolutions with ReLU and five 2x2 max-pools, then (after
    AdaptiveAvgPool2d(7), the identity at 224x224) classifier.0 (25088 -> 4096), ReLU, dropout (the
    identity at inference), classifier.3 (4096 -> 4096) = fc2, and its ReLU: 'fc2_relu', 4096 features.
    classifier.6 (the 1000 ImageNet classes) plays no part; torch-fidelity deletes it.

Float32 at Precision.HIGHEST, as the Inception network (no TF32 on GPUs).

Weights: torchvision's `vgg16-397923af.pth` (https://download.pytorch.org/models/vgg16-397923af.pth, the
IMAGENET1K_V1 weights torch-fidelity loads), or any state_dict of torchvision's `vgg16` saved with
torch.save; read without torch (gan_jax.metrics.torch_archive). The network's widths are parameters so
that tests can run a narrow VGG-16 of the same layers; a real file must have torchvision's shapes.
"""
import functools
import hashlib
import os
from typing import Dict, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError
from gan_jax.metrics import inception as inception_lib
from gan_jax.metrics import torch_archive

IMAGE_SIZE = 224
WIDTHS = (64, 128, 256, 512, 512)  # channels of the five blocks of torchvision's vgg16
CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
HIDDEN = 4096  # classifier.0 and classifier.3 (fc1, fc2)
NUM_CLASSES = 1000  # classifier.6, read past
POOLED_SIZE = 7  # 224 / 2^5: AdaptiveAvgPool2d((7, 7)) leaves it as it is
NUM_FEATURES = HIDDEN
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
DEFAULT_BATCH_SIZE = 100
_HIGHEST = jax.lax.Precision.HIGHEST


def conv_indices() -> Sequence[int]:
  """Indices of the convolutions in torchvision's vgg16 `features` (ReLUs and pools between them)."""
  indices, index = [], 0
  for convs in CONVS_PER_BLOCK:
    for _ in range(convs):
      indices.append(index)
      index += 2  # the conv, its ReLU
    index += 1  # the block's max-pool
  return indices


def torchvision_shapes(widths: Sequence[int] = WIDTHS, hidden: int = HIDDEN,
                       num_classes: int = NUM_CLASSES) -> Dict[str, Tuple[int, ...]]:
  """The state_dict of torchvision's vgg16 (with other widths: its narrow variant), name -> shape."""
  shapes, channels = {}, 3
  conv_widths = [w for w, convs in zip(widths, CONVS_PER_BLOCK) for _ in range(convs)]
  for index, width in zip(conv_indices(), conv_widths):
    shapes[f"features.{index}.weight"] = (width, channels, 3, 3)
    shapes[f"features.{index}.bias"] = (width,)
    channels = width
  for index, (inputs, outputs) in zip((0, 3, 6), ((channels * POOLED_SIZE**2, hidden), (hidden, hidden),
                                                  (hidden, num_classes))):
    shapes[f"classifier.{index}.weight"] = (outputs, inputs)
    shapes[f"classifier.{index}.bias"] = (outputs,)
  return shapes


class VGG16(nn.Module):
  """Preprocessed (N, 224, 224, 3) images -> fc2 after its ReLU (N, hidden). Submodule names are
  torchvision's state_dict names with '_' for '.' (features_0, ..., classifier_3)."""
  widths: Tuple[int, ...] = WIDTHS
  hidden: int = HIDDEN

  @nn.compact
  def __call__(self, x):
    indices = iter(conv_indices())
    for width, convs in zip(self.widths, CONVS_PER_BLOCK):
      for _ in range(convs):
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), precision=_HIGHEST,
                    name=f"features_{next(indices)}")(x)
        x = nn.relu(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    # Flattened in (H, W, C) order; the conversion orders classifier.0's inputs likewise (torch: C, H, W).
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(self.hidden, precision=_HIGHEST, name="classifier_0")(x))
    return nn.relu(nn.Dense(self.hidden, precision=_HIGHEST, name="classifier_3")(x))


def preprocess(images: jnp.ndarray) -> jnp.ndarray:
  """uint8 (N, H, W, 1 or 3) -> float32 (N, 224, 224, 3), resized and ImageNet-normalised in pixels."""
  x = images.astype(jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  if x.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
    x = inception_lib.resize_bilinear(x, IMAGE_SIZE, IMAGE_SIZE)
  return (x - 255 * np.array(IMAGENET_MEAN, np.float32)) / (255 * np.array(IMAGENET_STD, np.float32))


def variables_from_state_dict(state_dict: Dict[str, np.ndarray], widths: Sequence[int] = WIDTHS,
                              hidden: int = HIDDEN, source: str = "the state_dict"):
  """Flax variables of VGG16(widths, hidden) from a torchvision vgg16 state_dict (numpy arrays)."""
  expected = torchvision_shapes(widths, hidden)
  got = {name: tuple(np.shape(value)) for name, value in state_dict.items()}
  # classifier.6's width is the number of classes the file was trained for; nothing here reads it.
  mismatched = [name for name in expected if not name.startswith("classifier.6")
                and got.get(name) != expected[name]]
  if mismatched:
    shown = [f"{name}: {got.get(name, 'missing')} for {expected[name]}" for name in mismatched[:3]]
    raise UserError(f"{source} is not a state_dict of torchvision's vgg16 ({'; '.join(shown)}); give "
                    f"{os.path.basename(TORCHVISION_URL)} from {TORCHVISION_URL}")
  params = {}
  for index in conv_indices():
    weight = np.asarray(state_dict[f"features.{index}.weight"], np.float32)
    params[f"features_{index}"] = {"kernel": weight.transpose(2, 3, 1, 0),  # OIHW -> HWIO
                                   "bias": np.asarray(state_dict[f"features.{index}.bias"], np.float32)}
  fc1 = np.asarray(state_dict["classifier.0.weight"], np.float32)
  channels = widths[-1]
  # torch flattens (C, 7, 7); the Flax model flattens (7, 7, C).
  fc1 = fc1.reshape(hidden, channels, POOLED_SIZE, POOLED_SIZE).transpose(2, 3, 1, 0).reshape(-1, hidden)
  params["classifier_0"] = {"kernel": fc1,
                            "bias": np.asarray(state_dict["classifier.0.bias"], np.float32)}
  params["classifier_3"] = {"kernel": np.asarray(state_dict["classifier.3.weight"], np.float32).T,
                            "bias": np.asarray(state_dict["classifier.3.bias"], np.float32)}
  return {"params": params}


@functools.partial(jax.jit, static_argnames=("widths", "hidden"))
def _embed(variables, images, widths, hidden):
  return {"fc2_relu": VGG16(widths, hidden).apply(variables, preprocess(images))}


class VGGFeatures(inception_lib.BatchedNetwork):
  """VGG-16 with its weights: uint8 images -> fc2 features after the ReLU (N, 4096) float32.

  `fingerprint` (the first 8 hex digits of the weights file's SHA-256) names the weights in cache file
  names, so that features of other weights are never mixed up with these.
  """
  name = "VGG-16"

  def __init__(self, variables, widths: Sequence[int] = WIDTHS, hidden: int = HIDDEN,
               description: str = "", fingerprint: str = ""):
    super().__init__(variables, description)
    self.widths, self.hidden, self.fingerprint = tuple(widths), hidden, fingerprint

  @property
  def protocol(self) -> str:
    """Names the network, its weights and its input in cache file names."""
    narrow = "" if (self.widths, self.hidden) == (WIDTHS, HIDDEN) else (
        f"-w{'x'.join(map(str, self.widths))}-h{self.hidden}")
    return f"vgg16{narrow}-{self.fingerprint or 'unnamed'}-fc2relu_tf-bilinear-224"

  def features(self, images, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """fc2 features after the ReLU (N, hidden) float32 of uint8 images: an array or an iterable."""
    embed = functools.partial(_embed, widths=self.widths, hidden=self.hidden)
    return self._outputs(embed, images, batch_size, {"fc2_relu": self.hidden}, np.float32)["fc2_relu"]


def load_vgg16(path: str, widths: Sequence[int] = WIDTHS, hidden: int = HIDDEN) -> VGGFeatures:
  """VGG-16 with the weights of a torchvision vgg16 state_dict file (read without torch)."""
  if not os.path.isfile(path):
    raise UserError(f"VGG-16 weights {path} do not exist; download torchvision's {TORCHVISION_URL} and "
                    "pass its path")
  with open(path, "rb") as f:
    data = f.read()
  try:
    state_dict = torch_archive.named_arrays(torch_archive.load(data))
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"cannot read VGG-16 weights from {path}: {type(e).__name__}: {e}; give torchvision's "
                    f"{os.path.basename(TORCHVISION_URL)}") from e
  variables = variables_from_state_dict(state_dict, widths, hidden, source=path)
  return VGGFeatures(variables, widths, hidden, description=path,
                     fingerprint=hashlib.sha256(data).hexdigest()[:8])
