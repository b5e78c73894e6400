"""Placeholder while the architecture is written."""


def build(config, image_shape, *, num_classes, axis_name, dtype):
  raise NotImplementedError("stylegan2")
