"""What a run records about its data (`<workdir>/dataset.json`): the image shape and the class names.

Sampling and evaluation rebuild the models from it: a copied workdir can be sampled without the dataset.
"""
import json
import os
from typing import Optional, Sequence, Tuple

from gan_jax import files

FILENAME = "dataset.json"


def save(workdir: str, image_shape: Sequence[int], class_names: Sequence[str]) -> None:
  path = os.path.join(workdir, FILENAME)
  files.write_text(path, json.dumps({"image_shape": [int(d) for d in image_shape],
                                     "class_names": list(class_names)}, indent=2))


def load(workdir: str) -> Optional[Tuple[Tuple[int, int, int], list]]:
  """(image_shape, class_names), or None for a workdir without the record."""
  path = os.path.join(workdir, FILENAME)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    info = json.load(f)
  return tuple(info["image_shape"]), info["class_names"]
