"""Reads the tensors of PyTorch files into numpy without importing torch.

Two layouts are understood:
  * zip archives: `torch.save` since PyTorch 1.6 and TorchScript's `torch.jit.save`. `<root>/data.pkl`
    pickles the object tree; each tensor's storage is the raw little-endian file `<root>/data/<key>`.
  * the legacy `torch.save` stream (PyTorch < 1.6): a magic number, a protocol version and system info
    pickled one after the other, then the object tree, then the list of storage keys, then each storage
    as an int64 element count followed by its raw bytes.

Only plain data is rebuilt: tensors become numpy arrays, TorchScript modules become `ScriptObject`s
holding their attribute dicts, and any other class in the pickle is refused, so a file can never make
this code run something it names.
"""
import collections
import io
import pickle
import struct
import zipfile
from typing import Callable, Dict, Union

import numpy as np

_LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


# TorchScript pickles typed lists (e.g. a conv's padding) through these functions of torch.jit._pickle.
_SCRIPT_LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")


def _drop_type_tag(value, unused_type_name):
  return value


class ScriptObject:
  """A TorchScript module from the pickle: `attributes` maps attribute names to values."""

  def __init__(self, *unused_args):
    self.attributes = {}

  def __setstate__(self, state):
    self.attributes = state


def _script_class(module: str, name: str):
  return type(name, (ScriptObject,), {"__module__": module})


class _LazyStorage:
  """A storage named by the pickle, read only once the whole pickle has been parsed."""

  def __init__(self, key: str, dtype):
    self.key = key
    self.dtype = dtype


class _LazyTensor:

  def __init__(self, storage: _LazyStorage, offset: int, shape, strides):
    self.storage, self.offset, self.shape, self.strides = storage, offset, tuple(shape), tuple(strides)

  def materialize(self, read_storage: Callable[[_LazyStorage], np.ndarray]) -> np.ndarray:
    flat = read_storage(self.storage)
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.shape,
                                           [s * itemsize for s in self.strides])
    return np.array(view)


def _rebuild_tensor(storage, offset, shape, strides, *unused_grad_hooks_and_metadata):
  return _LazyTensor(storage, offset, shape, strides)


def _rebuild_parameter(data, *unused_requires_grad_and_hooks):
  return data


class _Unpickler(pickle.Unpickler):
  """Resolves torch's globals to the numpy-building stand-ins above and refuses all others."""

  def find_class(self, module, name):
    # _rebuild_tensor: files saved by PyTorch < 0.4, as older model-zoo files (torchvision's VGG-16 among
    # them) may be; its arguments are v2's first four.
    if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch" and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch.jit._pickle" and name in _SCRIPT_LIST_BUILDERS:
      return list
    if module == "torch.jit._pickle" and name == "restore_type_tag":
      return _drop_type_tag
    if module.startswith("__torch__"):
      return _script_class(module, name)
    raise pickle.UnpicklingError(f"unsupported object {module}.{name} in a torch file")

  def __init__(self, stream):
    super().__init__(stream)
    self.storage_dtypes = {}

  def persistent_load(self, pid):
    # ('storage', storage type, key, location, element count[, view metadata])
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"unsupported persistent id {pid!r} in a torch file")
    key, dtype = str(pid[2]), pid[1]
    self.storage_dtypes[key] = dtype
    return _LazyStorage(key, dtype)


def _materialize(tree, read_storage):
  if isinstance(tree, _LazyTensor):
    return tree.materialize(read_storage)
  if isinstance(tree, ScriptObject):
    tree.attributes = _materialize(tree.attributes, read_storage)
    return tree
  if isinstance(tree, dict):
    return type(tree)((k, _materialize(v, read_storage)) for k, v in tree.items())
  if isinstance(tree, (list, tuple)):
    return type(tree)(_materialize(v, read_storage) for v in tree)
  return tree


def _load_zip(archive: zipfile.ZipFile):
  pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
  if len(pickles) != 1:
    raise ValueError(f"expected one <root>/data.pkl in the archive, found {pickles}")
  root = pickles[0][:-len("data.pkl")]
  tree = _Unpickler(io.BytesIO(archive.read(pickles[0]))).load()
  cache = {}

  def read_storage(storage: _LazyStorage) -> np.ndarray:
    if storage.key not in cache:
      raw = archive.read(f"{root}data/{storage.key}")
      cache[storage.key] = np.frombuffer(raw, np.dtype(storage.dtype).newbyteorder("<"))
    return cache[storage.key]

  return _materialize(tree, read_storage)


def _load_legacy(stream: io.BufferedIOBase):
  magic = pickle.load(stream)
  if magic != _LEGACY_MAGIC_NUMBER:
    raise ValueError("neither a zip archive nor a legacy torch.save file")
  pickle.load(stream)  # Protocol version.
  pickle.load(stream)  # System info (byte order, type sizes).
  unpickler = _Unpickler(stream)
  tree = unpickler.load()
  storages = {}
  for key in pickle.load(stream):
    dtype = np.dtype(unpickler.storage_dtypes[str(key)]).newbyteorder("<")
    (count,) = struct.unpack("<q", stream.read(8))
    storages[str(key)] = np.frombuffer(stream.read(count * dtype.itemsize), dtype)
  return _materialize(tree, lambda storage: storages[storage.key])


def load(source: Union[str, bytes]):
  """The object saved in a torch file (a path, or its bytes), with tensors as numpy arrays."""
  data = source if isinstance(source, bytes) else open(source, "rb").read()
  if zipfile.is_zipfile(io.BytesIO(data)):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
      return _load_zip(archive)
  return _load_legacy(io.BytesIO(data))


def named_arrays(tree, prefix: str = "") -> Dict[str, np.ndarray]:
  """Flattens a loaded tree to {'dotted.name': array}, as in a state_dict."""
  if isinstance(tree, ScriptObject):
    tree = tree.attributes
  if isinstance(tree, np.ndarray):
    return {prefix: tree}
  arrays = {}
  if isinstance(tree, dict):
    for key, value in tree.items():
      arrays.update(named_arrays(value, f"{prefix}.{key}" if prefix else str(key)))
  return arrays
