"""Turn a folder of images into a prepared tfds dataset (array_record) that training reads by name.

    python -m gan_jax.import_images --src=DIR --name=my_faces [--data_dir=...] [--image_size=64] \
        [--channels=1] [--resize=nearest] [--class_names=a,b,...] [--test_labels=FILE] [--workers=8]
    python -m gan_jax.main --dataset=my_faces --data_dir=...

DIR holds one subfolder per class (DIR/<class>/*.png|jpg|...), or `train/` and `test/` subfolders that
each hold class subfolders. The classes are the sorted names of the (train) class folders, unless
--class_names renames them in that order (e.g. to names that cannot be folder names, like "T-shirt/top").
With --test_labels=FILE (MNIST's idx1-ubyte format, gzipped or not), `test/` holds its images directly,
unlabelled, and the i-th of them in file-name order (numeric order when every name is a number) gets the
i-th label of FILE: an index into the classes. Needs no TensorFlow.

Images keep their bytes when they already have the right size and mode; otherwise they are resized
(--resize): `bicubic` (the default) centre-crops a square and resizes it, as training does; `nearest`
undoes a nearest-neighbour upscale: the whole image, whatever its aspect ratio, is taken to be an upscale
of an --image_size square original, and pixel (r, c) of that original is read at the centre of its block,
row floor((r + 0.5) * H / h), column floor((c + 0.5) * W / w) of the H x W file (h = w = --image_size).
That recovers the originals exactly (a 640x480 upscale of a 28x28 MNIST digit -> the 28x28 digit); the
first image is checked to be such an upscale, so that a wrong --image_size stops the import.

Big folders (100k images) stream through: --workers processes decode the files in parallel, a few chunks
at a time, and their results are written in file order, so the dataset is the same whatever the number of
workers and memory does not grow with the folder. A file that is not a readable image (corrupt or
truncated, or not an image at all) is skipped; one warning at the end counts and names them.
"""
import collections
import concurrent.futures
import dataclasses
import gzip
import io
import multiprocessing
import os
import re
import shutil
import struct
import sys
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from absl import app
from absl import flags
from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds
import tqdm

from gan_jax.data import images as images_lib
from gan_jax.data import sources
from gan_jax.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
VERSION = "1.0.0"
RESIZE_METHODS = ("bicubic", "nearest")
# An idx1-ubyte file (MNIST's label files): big-endian magic 0x00000801 (unsigned bytes, one dimension),
# the count, then one byte per label.
IDX1_MAGIC = 0x00000801
# Files per task sent to a worker: enough to make the cost of a task small against decoding it, few
# enough that the results waiting to be written stay small (see _decode_all).
MAX_CHUNK = 32
# Skipped files named in the warning; the count covers all of them.
NAMED_SKIPPED = 10

# (path, class index) per split.
SplitFiles = Dict[str, List[Tuple[str, int]]]


class Unreadable(NamedTuple):
  """A file that is not a readable image, and why."""
  reason: str


# What a worker makes of one file: its path when its own bytes are stored as they are, the PNG bytes of
# the cropped and resized image, or why it cannot be read.
Decoded = Union[str, bytes, Unreadable]


@dataclasses.dataclass(frozen=True)
class Imported:
  """What import_images made: the dataset's directory, examples per split, the files skipped."""
  path: str
  examples: Dict[str, int]
  skipped: List[str]


def find_images(src: str, test_labels: Optional[str] = None) -> Tuple[SplitFiles, List[str]]:
  """Lists the images of each split and the class names (sorted subfolder names); with `test_labels`,
  the test split is the unlabelled images of `src/test/`, labelled by that file (read_idx1_labels)."""
  if not os.path.isdir(src):
    raise UserError(f"--src={src} is not a folder; give a folder of class subfolders of images")
  split_dirs = {s: os.path.join(src, s) for s in ("train", "test") if os.path.isdir(os.path.join(src, s))}
  if "train" not in split_dirs:
    split_dirs = {"train": src}
  if test_labels and "test" not in split_dirs:
    raise UserError(f"--test_labels is given but {src} has no train/ and test/ folders; put the class "
                    f"folders in {src}/train/ and the unlabelled test images in {src}/test/")
  class_names = sorted(d for d in os.listdir(split_dirs["train"])
                       if os.path.isdir(os.path.join(split_dirs["train"], d)))
  if not class_names:
    raise UserError(f"{split_dirs['train']} has no class subfolders; put images in "
                    f"{split_dirs['train']}/<class>/ (one folder is fine)")
  splits = {}
  for split, split_dir in split_dirs.items():
    if split == "test" and test_labels:
      splits[split] = _labelled_files(split_dir, test_labels, len(class_names))
      continue
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


def read_idx1_labels(path: str) -> np.ndarray:
  """The labels of an idx1-ubyte file (MNIST's and Fashion-MNIST's *-labels-idx1-ubyte[.gz])."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip's magic: the files are published gzipped
      raw = gzip.decompress(raw)
  except (OSError, EOFError) as e:
    raise UserError(f"--test_labels={path} cannot be read ({e}); give an idx1-ubyte labels file, e.g. "
                    "t10k-labels-idx1-ubyte.gz") from e
  magic, count = struct.unpack(">II", raw[:8]) if len(raw) >= 8 else (None, None)
  if magic != IDX1_MAGIC:
    raise UserError(f"--test_labels={path} is not an idx1-ubyte labels file (it does not start with "
                    f"0x{IDX1_MAGIC:08x}); give one such as t10k-labels-idx1-ubyte.gz")
  if len(raw) != 8 + count:
    raise UserError(f"--test_labels={path} says it holds {count} labels but has {len(raw) - 8} label bytes; "
                    "the file is truncated or damaged: fetch it again")
  return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def _file_order(names: List[str]) -> List[str]:
  """Sorted names; numerically when every name is a number (1.png, 2.png, ..., 10.png)."""
  stems = [os.path.splitext(n)[0] for n in names]
  if stems and all(stem.isdigit() for stem in stems):
    return [n for _, n in sorted(zip((int(stem) for stem in stems), names))]
  return sorted(names)


def _labelled_files(split_dir: str, labels_path: str, num_classes: int) -> List[Tuple[str, int]]:
  """The images directly in `split_dir`, in file order, with the labels of `labels_path` in that order."""
  labels = read_idx1_labels(labels_path)
  names = _file_order([f for f in os.listdir(split_dir) if f.lower().endswith(IMAGE_EXTENSIONS)
                       and os.path.isfile(os.path.join(split_dir, f))])
  if len(names) != len(labels):
    raise UserError(f"{split_dir} holds {len(names)} image files but --test_labels={labels_path} has "
                    f"{len(labels)} labels; the labels go to the images in file order, one each: give the "
                    "labels file of exactly these images")
  if len(labels) and labels.max() >= num_classes:
    raise UserError(f"--test_labels={labels_path} has label {labels.max()}, but there are only "
                    f"{num_classes} classes (the class folders of train/); labels are indices 0.."
                    f"{num_classes - 1} into the sorted class folders")
  return [(os.path.join(split_dir, n), int(label)) for n, label in zip(names, labels)]


def _renamed_classes(class_names: List[str], names: Sequence[str]) -> List[str]:
  if len(names) != len(class_names):
    raise UserError(f"--class_names has {len(names)} names but there are {len(class_names)} class folders "
                    f"({', '.join(class_names)}); give one name per folder, in that order")
  if len(set(names)) != len(names) or not all(names):
    raise UserError(f"--class_names={','.join(names)} must be distinct and non-empty")
  return list(names)


def _load(path: str) -> Union[Image.Image, Unreadable]:
  """The image with every pixel decoded (a truncated file fails here, not in training), or why not.

  Any error makes the file unreadable: PIL's decoders reject malformed files with many kinds of error
  (OSError, ValueError, SyntaxError, struct.error, DecompressionBombError, ...), and one bad file must
  not stop an import of 100k.
  """
  try:
    with Image.open(path) as image:
      image.load()
  except Exception as e:  # pylint: disable=broad-except
    return Unreadable(f"{type(e).__name__}: {e}")
  return image


def nearest_sample(image: Image.Image, size: int) -> Image.Image:
  """The `size` x `size` original of a nearest-neighbour upscale (an L or RGB image of any aspect ratio):
  pixel (r, c) read at the centre of its block, row floor((r + 0.5) * H / size), column
  floor((c + 0.5) * W / size)."""
  rows = np.floor((np.arange(size) + 0.5) * image.height / size).astype(int)
  cols = np.floor((np.arange(size) + 0.5) * image.width / size).astype(int)
  return Image.fromarray(np.asarray(image)[np.ix_(rows, cols)])


def _fit(image: Image.Image, image_size: int, mode: str, resize: str) -> Image.Image:
  image = image.convert(mode)
  return nearest_sample(image, image_size) if resize == "nearest" else images_lib.square_resize(image, image_size)


def _decode(path: str, image_size: int, mode: str, resize: str = "bicubic") -> Decoded:
  image = _load(path)
  if isinstance(image, Unreadable):
    return image
  if image.size == (image_size, image_size) and image.mode == mode:
    return path  # a file that already fits is stored as it is: no decode/encode round trip
  buffer = io.BytesIO()
  _fit(image, image_size, mode, resize).save(buffer, format="PNG")
  return buffer.getvalue()


def _decode_chunk(paths: List[str], image_size: int, mode: str, resize: str) -> List[Decoded]:
  return [_decode(path, image_size, mode, resize) for path in paths]


def _chunks(paths: List[str], workers: int) -> Iterator[List[str]]:
  # At least ~4 chunks per worker, so that a small folder still spreads over all of them.
  size = max(1, min(MAX_CHUNK, len(paths) // (4 * workers)))
  return (paths[i:i + size] for i in range(0, len(paths), size))


def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
  # Workers fork from a fresh single-threaded server rather than from this process, which may run
  # threads (JAX's, tqdm's) that a fork can leave holding locks. The server imports the slow imports
  # once, so the pool of each split starts in a fraction of a second: third-party modules only, as
  # Python 3.11's server imports them before it takes the caller's sys.path (it could find another
  # checkout of gan_jax; each worker imports this module itself, from the caller's sys.path). jax and
  # grain are what gan_jax.data imports (its in-memory splits and streaming): imported by each worker
  # they cost it ~2.3 s of its start (a missing one, grain on the GPU image, is skipped by the server).
  context = multiprocessing.get_context("forkserver")
  context.set_forkserver_preload(["tensorflow_datasets", "PIL.Image", "jax", "grain"])
  return concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)


def _decode_all(paths: List[str], image_size: int, mode: str, workers: int,
                resize: str = "bicubic") -> Iterator[Decoded]:
  """_decode of each path, in order; by `workers` processes, or in this one for workers <= 1."""
  if workers <= 1:
    yield from (_decode(path, image_size, mode, resize) for path in paths)
    return
  with _pool(workers) as pool:
    # At most two chunks per worker are submitted and not yet written: one being decoded, one waiting.
    # (Pool.imap would keep every finished result in memory while the writer lags behind.)
    pending = collections.deque()
    for chunk in _chunks(paths, workers):
      pending.append(pool.submit(_decode_chunk, chunk, image_size, mode, resize))
      if len(pending) >= 2 * workers:
        yield from pending.popleft().result()
    while pending:
      yield from pending.popleft().result()


def _none_readable(split: str, files: List[Tuple[str, int]], reason: str) -> UserError:
  return UserError(f"none of the {len(files)} image files of split '{split}' can be read as an image "
                   f"(e.g. {files[0][0]}: {reason}); check the folder holds the images you mean")


class ImageFolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A tfds builder over lists of image files (written as array_record); unreadable ones are skipped."""
  VERSION = tfds.core.Version(VERSION)

  def __init__(self, *, name: str, splits: SplitFiles, class_names: List[str], image_size: int,
               channels: int, workers: int, resize: str = "bicubic", **kwargs):
    self.name = name
    self._splits, self._class_names = splits, class_names
    self._image_size, self._channels, self._workers = image_size, channels, workers
    self._resize = resize
    self.skipped: List[str] = []  # paths of the unreadable files, in file order per split
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(self._image_size, self._image_size, self._channels)),
        "label": tfds.features.ClassLabel(names=self._class_names),
    }))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split, files) for split, files in self._splits.items()}

  def _generate_examples(self, split: str, files: List[Tuple[str, int]]) -> Iterable:
    mode = "L" if self._channels == 1 else "RGB"
    decoded = _decode_all([path for path, _ in files], self._image_size, mode, self._workers, self._resize)
    written, first_reason = 0, None
    with tqdm.tqdm(total=len(files), unit="img", desc=f"decoding {split}", file=sys.stderr) as progress:
      for (path, label), image in zip(files, decoded):
        progress.update()
        if isinstance(image, Unreadable):
          self.skipped.append(path)
          first_reason = first_reason or image.reason
          continue
        written += 1
        yield path, {"image": image, "label": label}
    if not written:
      raise _none_readable(split, files, first_reason)


def _square_size(files: List[Tuple[str, int]]) -> int:
  """The side of the first readable image, which must be square."""
  first_reason = None
  for path, _ in files:
    image = _load(path)
    if isinstance(image, Unreadable):
      first_reason = first_reason or image.reason
      continue
    if image.width != image.height:
      raise UserError(f"{path} is {image.width}x{image.height}; set --image_size to crop and resize the "
                      "images to a square")
    return image.width
  raise _none_readable("train", files, first_reason)


def _check_nearest(files: List[Tuple[str, int]], image_size: int, mode: str) -> None:
  """Stops the import unless the first readable image is a nearest-neighbour upscale of an `image_size`
  square: scaling its sample back up (PIL's nearest, which the sampling inverts) gives the file again."""
  for path, _ in files:
    image = _load(path)
    if isinstance(image, Unreadable):
      continue
    image = image.convert(mode)
    if (min(image.size) < image_size or
        nearest_sample(image, image_size).resize(image.size, Image.NEAREST).tobytes() != image.tobytes()):
      raise UserError(f"{path} ({image.width}x{image.height}) is not a nearest-neighbour upscale of a "
                      f"{image_size}x{image_size} image, so --resize=nearest would not recover it; set "
                      "--image_size to the side of the originals, or use --resize=bicubic")
    return


def _skipped_warning(skipped: List[str], total: int, src: str) -> str:
  names = [os.path.relpath(path, src) for path in skipped[:NAMED_SKIPPED]]
  more = ", ..." if len(skipped) > NAMED_SKIPPED else ""
  return (f"skipped {len(skipped)} of {total} files under {src} that are not readable images: "
          f"{', '.join(names)}{more}")


def import_images(src: str, name: str, data_dir: Optional[str] = None, image_size: int = 0,
                  channels: int = 3, workers: Optional[int] = None, *, resize: str = "bicubic",
                  class_names: Optional[Sequence[str]] = None,
                  test_labels: Optional[str] = None) -> Imported:
  """Builds dataset `name` from the images under `src`; returns its directory, examples and skipped files.

  `resize`, `class_names` and `test_labels` are the flags of the module's docstring.

  `workers` processes decode the images (default: one per CPU; 0 or 1: this process alone). They import
  the caller's main module, as multiprocessing's workers do: a script that calls this needs the usual
  `if __name__ == "__main__":` guard.
  """
  data_dir = data_dir or sources.default_data_dir()
  if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
    raise UserError(f"--name={name} must be lower_snake_case (letters, digits, _), e.g. my_faces")
  if name in tfds.list_builders(with_community_datasets=False):
    raise UserError(f"--name={name} is a tfds dataset name; pick another, e.g. {name}_images")
  target = os.path.join(data_dir, name)
  if os.path.exists(target):
    raise UserError(f"{target} already exists; pick another --name or delete that folder first")
  if channels not in (1, 3):
    raise UserError(f"--channels={channels} must be 1 (grayscale) or 3 (RGB)")
  if workers is not None and workers < 0:
    raise UserError(f"--workers={workers} must be >= 0 (0 or 1: decode in this process)")
  if resize not in RESIZE_METHODS:
    raise UserError(f"--resize={resize} is unknown; use one of {', '.join(RESIZE_METHODS)}")
  if resize == "nearest" and image_size <= 0:
    raise UserError("--resize=nearest needs --image_size: the side of the originals that were upscaled "
                    "(e.g. --image_size=28 for MNIST)")
  splits, folder_names = find_images(src, test_labels)
  class_names = _renamed_classes(folder_names, class_names) if class_names else folder_names
  if resize == "nearest":
    _check_nearest(splits["train"], image_size, "L" if channels == 1 else "RGB")
  image_size = image_size or _square_size(splits["train"])
  builder = ImageFolderBuilder(name=name, splits=splits, class_names=class_names,
                               image_size=image_size, channels=channels,
                               workers=os.cpu_count() if workers is None else workers,
                               resize=resize, data_dir=data_dir, file_format="array_record")
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except BaseException as e:
    shutil.rmtree(target, ignore_errors=True)  # a half-built dataset would block the retry
    if isinstance(e, concurrent.futures.BrokenExecutor):  # the pool of _decode_all lost a process
      raise UserError("a decoding worker process died (out of memory, or a decoder crashed on a file); "
                      "nothing was written: retry with fewer --workers, or --workers=1 to decode in this "
                      "process") from e
    raise
  examples = {split: info.num_examples for split, info in builder.info.splits.items()}
  logging.info("Imported %s as '%s' in %s (%d classes, %dx%dx%d)", examples, name, builder.data_dir,
               len(class_names), image_size, image_size, channels)
  if class_names != folder_names:
    logging.info("Classes: %s", ", ".join(f"{f} -> {c}" for f, c in zip(folder_names, class_names)))
  if builder.skipped:
    logging.warning(_skipped_warning(builder.skipped, sum(len(f) for f in splits.values()), src))
  return Imported(builder.data_dir, examples, builder.skipped)


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("src", None, "Folder of class subfolders of images (or train/ and test/).")
  flags.DEFINE_string("name", None, "Dataset name to train with: --dataset=<name>.")
  flags.DEFINE_string("data_dir", None, "tfds data directory (default $TFDS_DATA_DIR or "
                      "~/tensorflow_datasets).")
  flags.DEFINE_integer("image_size", 0, "Resize to this square size (as --resize says); 0 keeps the size "
                       "of square images.")
  flags.DEFINE_integer("channels", 3, "3 for RGB, 1 for grayscale.")
  flags.DEFINE_enum("resize", "bicubic", RESIZE_METHODS, "bicubic: centre square, resized; nearest: undo "
                    "a nearest-neighbour upscale of --image_size originals exactly (pixel centres).")
  flags.DEFINE_list("class_names", None, "Names of the sorted class folders, in that order, e.g. "
                    "'T-shirt/top,Trouser,...' (default: the folder names).")
  flags.DEFINE_string("test_labels", None, "idx1-ubyte labels file (.gz or not) of the unlabelled images "
                      "directly in SRC/test/, in file order.")
  flags.DEFINE_integer("workers", None, "Processes that decode the images (default: one per CPU); 0 or "
                       "1 decodes in this process.")


def main(argv):
  del argv
  args = flags.FLAGS
  if not args.src or not args.name:
    sys.exit("error: --src and --name are required, e.g. --src=photos/ --name=my_photos")
  try:
    imported = import_images(args.src, args.name, args.data_dir, args.image_size, args.channels,
                             args.workers, resize=args.resize, class_names=args.class_names,
                             test_labels=args.test_labels)
  except UserError as e:
    sys.exit(f"error: {e}")
  counts = ", ".join(f"{n} {split}" for split, n in imported.examples.items())
  skipped = (f"; unreadable files skipped: {len(imported.skipped)} (named in the warning)"
             if imported.skipped else "")
  print(f"Imported {counts} images{skipped}")
  print(f"Prepared {imported.path}; train with: python -m gan_jax.main --dataset={args.name}"
        + (f" --data_dir={args.data_dir}" if args.data_dir else ""))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
