"""Writes torch.save's zip format without torch, so that tests can make state_dict files of any shape.

The pickle is written opcode by opcode (protocol 2), as torch.save writes it: an OrderedDict of
torch._utils._rebuild_tensor_v2(storage, offset, shape, strides, requires_grad, hooks) calls whose
storages are persistent ids ('storage', torch.FloatStorage, key, 'cpu', size) and live, little-endian,
in archive/data/<key>. The standard pickler cannot write them: it refuses globals it cannot import.
"""
import pickle
import struct
import zipfile

import numpy as np

_STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
             np.dtype(np.int64): "LongStorage"}


def _text(value: str) -> bytes:
  encoded = value.encode("utf-8")
  return pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded


def _int(value: int) -> bytes:
  return pickle.BININT + struct.pack("<i", value)


def _global(module: str, name: str) -> bytes:
  return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _int_tuple(values) -> bytes:
  return pickle.MARK + b"".join(_int(int(v)) for v in values) + pickle.TUPLE


def _ordered_dict() -> bytes:
  return _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE


def save_state_dict(path: str, arrays: dict, rebuild: str = "_rebuild_tensor_v2") -> None:
  """torch.save(OrderedDict of contiguous tensors) of numpy arrays, in the zip format. `rebuild`:
  "_rebuild_tensor" writes tensors as PyTorch < 0.4 did (without requires_grad and hooks)."""
  body = [pickle.PROTO + b"\x02", _ordered_dict(), pickle.MARK]
  storages = {}
  for key, (name, value) in enumerate(arrays.items()):
    value = np.array(value, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    strides = [s // value.itemsize for s in value.strides]
    storage = (pickle.MARK + _text("storage") + _global("torch", _STORAGES[value.dtype]) + _text(str(key))
               + _text("cpu") + _int(value.size) + pickle.TUPLE + pickle.BINPERSID)
    extra = [pickle.NEWFALSE, _ordered_dict()] if rebuild == "_rebuild_tensor_v2" else []
    body += [_text(name), _global("torch._utils", rebuild), pickle.MARK, storage, _int(0),
             _int_tuple(value.shape), _int_tuple(strides), *extra, pickle.TUPLE, pickle.REDUCE]
    storages[str(key)] = value.astype(value.dtype.newbyteorder("<")).tobytes()
  body += [pickle.SETITEMS, pickle.STOP]
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
    archive.writestr("archive/data.pkl", b"".join(body))
    for key, raw in storages.items():
      archive.writestr(f"archive/data/{key}", raw)
    archive.writestr("archive/version", "3\n")
    archive.writestr("archive/byteorder", "little")
