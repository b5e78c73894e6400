"""Images as the models take them: fitted to the model's square size, and a record's image as uint8."""
import numpy as np
from PIL import Image


def fit_to_size(images: np.ndarray, image_size: int) -> np.ndarray:
  """Images (N, H, W, C) as the model takes them, `image_size` square: smaller ones centred on a black
  canvas (MNIST's 28x28 -> 32x32), others centre-cropped to a square and resized (bicubic)."""
  _, h, w, _ = images.shape
  if (h, w) == (image_size, image_size):
    return images
  if h <= image_size and w <= image_size and not (image_size - h) % 2 and not (image_size - w) % 2:
    ph, pw = (image_size - h) // 2, (image_size - w) // 2
    return np.pad(images, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  channels = images.shape[-1]
  pictures = (Image.fromarray(image[..., 0] if channels == 1 else image) for image in images)
  return np.stack([np.asarray(square_resize(p, image_size)).reshape(image_size, image_size, channels)
                   for p in pictures])


def square_resize(image: Image.Image, size: int) -> Image.Image:
  """The image's centre square, resized to `size` (bicubic): training and import_images alike."""
  side = min(image.size)
  left, top = (image.width - side) // 2, (image.height - side) // 2
  return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def record_image(image) -> np.ndarray:
  """A source record's decoded image as uint8 (H, W, C): grayscale images come as (H, W)."""
  image = np.asarray(image, np.uint8)
  return image[..., None] if image.ndim == 2 else image
