"""Turn a folder of images into a prepared tfds dataset (array_record) that training reads by name.

    python -m gan_jax.import_images --src=DIR --name=my_faces [--data_dir=...] [--image_size=64]
    python -m gan_jax.main --dataset=my_faces --data_dir=...

DIR holds one subfolder per class (DIR/<class>/*.png|jpg|...), or `train/` and `test/` subfolders that
each hold class subfolders. Images keep their bytes when they already have the right size; otherwise they
are centre-cropped to a square and resized. Needs no TensorFlow.
"""
import os
import re
import shutil
import sys
from typing import Dict, List, Optional, Tuple

from absl import app
from absl import flags
from absl import logging
from PIL import Image
import tensorflow_datasets as tfds

from gan_jax import data
from gan_jax.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
VERSION = "1.0.0"

# (path, class index) per split.
SplitFiles = Dict[str, List[Tuple[str, int]]]


def find_images(src: str) -> Tuple[SplitFiles, List[str]]:
  """Lists the images of each split and the class names (sorted subfolder names)."""
  if not os.path.isdir(src):
    raise UserError(f"--src={src} is not a folder; give a folder of class subfolders of images")
  split_dirs = {s: os.path.join(src, s) for s in ("train", "test") if os.path.isdir(os.path.join(src, s))}
  if "train" not in split_dirs:
    split_dirs = {"train": src}
  class_names = sorted(d for d in os.listdir(split_dirs["train"])
                       if os.path.isdir(os.path.join(split_dirs["train"], d)))
  if not class_names:
    raise UserError(f"{split_dirs['train']} has no class subfolders; put images in "
                    f"{split_dirs['train']}/<class>/ (one folder is fine)")
  splits = {}
  for split, split_dir in split_dirs.items():
    files = []
    for label, name in enumerate(class_names):
      class_dir = os.path.join(split_dir, name)
      if os.path.isdir(class_dir):
        files += [(os.path.join(class_dir, f), label) for f in sorted(os.listdir(class_dir))
                  if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
      raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {split_dir}")
    splits[split] = files
  return splits, class_names


def _square_resize(image: Image.Image, size: int) -> Image.Image:
  side = min(image.size)
  left, top = (image.width - side) // 2, (image.height - side) // 2
  return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


class ImageFolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A tfds builder over an in-memory list of image files (written as array_record)."""
  VERSION = tfds.core.Version(VERSION)

  def __init__(self, *, name: str, splits: SplitFiles, class_names: List[str], image_size: int,
               channels: int, **kwargs):
    self.name = name
    self._splits, self._class_names = splits, class_names
    self._image_size, self._channels = image_size, channels
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(self._image_size, self._image_size, self._channels)),
        "label": tfds.features.ClassLabel(names=self._class_names),
    }))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(files) for split, files in self._splits.items()}

  def _generate_examples(self, files):
    mode = "L" if self._channels == 1 else "RGB"
    for path, label in files:
      try:
        with Image.open(path) as image:
          image.load()  # decodes every pixel: a truncated file fails here, not in training
          same = image.size == (self._image_size, self._image_size) and image.mode == mode
          if not same:
            image = _square_resize(image.convert(mode), self._image_size)
            if self._channels == 1:
              image = image.convert("L")
      except OSError as e:
        raise UserError(f"cannot read image {path} ({e}); remove or fix it") from e
      # A file that already fits is stored as it is: no decode/encode round trip.
      yield path, {"image": path if same else image, "label": label}


def import_images(src: str, name: str, data_dir: Optional[str] = None, image_size: int = 0,
                  channels: int = 3) -> str:
  """Builds dataset `name` from the images under `src`; returns its directory."""
  data_dir = data_dir or data.default_data_dir()
  if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
    raise UserError(f"--name={name} must be lower_snake_case (letters, digits, _), e.g. my_faces")
  if name in tfds.list_builders(with_community_datasets=False):
    raise UserError(f"--name={name} is a tfds dataset name; pick another, e.g. {name}_images")
  target = os.path.join(data_dir, name)
  if os.path.exists(target):
    raise UserError(f"{target} already exists; pick another --name or delete that folder first")
  if channels not in (1, 3):
    raise UserError(f"--channels={channels} must be 1 (grayscale) or 3 (RGB)")
  splits, class_names = find_images(src)
  if not image_size:
    with Image.open(splits["train"][0][0]) as first:
      if first.width != first.height:
        raise UserError(f"{splits['train'][0][0]} is {first.width}x{first.height}; set --image_size "
                        "to crop and resize the images to a square")
      image_size = first.width
  builder = ImageFolderBuilder(name=name, splits=splits, class_names=class_names,
                               image_size=image_size, channels=channels, data_dir=data_dir,
                               file_format="array_record")
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except BaseException:
    shutil.rmtree(target, ignore_errors=True)  # a half-built dataset would block the retry
    raise
  logging.info("Imported %s as '%s' in %s (%d classes, %dx%dx%d)",
               {s: len(f) for s, f in splits.items()}, name, builder.data_dir, len(class_names),
               image_size, image_size, channels)
  return builder.data_dir


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("src", None, "Folder of class subfolders of images (or train/ and test/).")
  flags.DEFINE_string("name", None, "Dataset name to train with: --dataset=<name>.")
  flags.DEFINE_string("data_dir", None, "tfds data directory (default $TFDS_DATA_DIR or "
                      "~/tensorflow_datasets).")
  flags.DEFINE_integer("image_size", 0, "Crop and resize to this square size; 0 keeps the size of "
                       "square images.")
  flags.DEFINE_integer("channels", 3, "3 for RGB, 1 for grayscale.")


def main(argv):
  del argv
  args = flags.FLAGS
  if not args.src or not args.name:
    sys.exit("error: --src and --name are required, e.g. --src=photos/ --name=my_photos")
  try:
    path = import_images(args.src, args.name, args.data_dir, args.image_size, args.channels)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(f"Prepared {path}; train with: python -m gan_jax.main --dataset={args.name}"
        + (f" --data_dir={args.data_dir}" if args.data_dir else ""))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
