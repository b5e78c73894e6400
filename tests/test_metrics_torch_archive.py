"""Reading torch files without torch, on small state_dicts that torch itself saved (tests/data)."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from gan_jax.metrics import inception as inception_lib
from gan_jax.metrics import torch_archive
import torch_files

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.fixture(scope="module")
def expected():
  with np.load(os.path.join(DATA, "torch_state_dict_expected.npz")) as f:
    return {k: f[k] for k in f.files}


@pytest.mark.parametrize("file_format", ["zip", "legacy"])
def test_state_dict_is_read_exactly(expected, file_format):
  state = torch_archive.load(os.path.join(DATA, f"torch_state_dict_{file_format}.pth"))
  assert list(state) == list(expected)  # An OrderedDict, in torch's order.
  for name, value in expected.items():
    assert state[name].dtype == value.dtype, name
    np.testing.assert_array_equal(state[name], value, err_msg=name)
  # fc.weight was saved as a transposed view: its strides must have been honoured.
  assert state["fc.weight"].shape == (5, 6)


def test_pytorch_fid_names_become_flax_variables(expected):
  state = torch_archive.named_arrays(torch_archive.load(os.path.join(DATA, "torch_state_dict_zip.pth")))
  flat = inception_lib._flax_from_torchvision(state)  # pylint: disable=protected-access
  prefix = "Conv2d_1a_3x3"
  np.testing.assert_array_equal(flat[f"params/{prefix}/conv/kernel"],
                                expected[f"{prefix}.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(flat[f"params/{prefix}/bn/scale"], expected[f"{prefix}.bn.weight"])
  np.testing.assert_array_equal(flat[f"params/{prefix}/bn/bias"], expected[f"{prefix}.bn.bias"])
  np.testing.assert_array_equal(flat[f"batch_stats/{prefix}/bn/mean"], expected[f"{prefix}.bn.running_mean"])
  np.testing.assert_array_equal(flat[f"batch_stats/{prefix}/bn/var"], expected[f"{prefix}.bn.running_var"])
  np.testing.assert_array_equal(flat["params/fc/kernel"], expected["fc.weight"].T.astype(np.float32))
  np.testing.assert_array_equal(flat["params/fc/bias"], expected["fc.bias"].astype(np.float32))
  assert len(flat) == 7  # bn.num_batches_tracked is dropped.


@pytest.mark.parametrize("rebuild", ["_rebuild_tensor_v2", "_rebuild_tensor"])
def test_files_written_without_torch_are_read_back(tmp_path, rebuild):
  """tests/torch_files.py, which the VGG-16 tests write their weights with, in torch's layout (the one
  of torch_state_dict_zip.pth above); _rebuild_tensor is how PyTorch < 0.4 saved tensors."""
  arrays = {"a.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "a.bias": np.ones(3),
            "steps": np.array(7, np.int64)}
  path = str(tmp_path / "written.pth")
  torch_files.save_state_dict(path, arrays, rebuild=rebuild)
  state = torch_archive.load(path)
  assert list(state) == list(arrays)
  for name, value in arrays.items():
    assert state[name].dtype == value.dtype and state[name].shape == value.shape
    np.testing.assert_array_equal(state[name], value)


def test_files_written_without_torch_are_what_torch_reads(tmp_path):
  torch = pytest.importorskip("torch")
  path = str(tmp_path / "written.pth")
  weight = np.random.RandomState(0).normal(size=(3, 2)).astype(np.float32)
  torch_files.save_state_dict(path, {"w": weight})
  np.testing.assert_array_equal(torch.load(path)["w"].numpy(), weight)


class _RunsCode:

  def __reduce__(self):
    return (os.getcwd, ())


def test_a_pickle_naming_other_code_is_refused():
  archive = io.BytesIO()
  with zipfile.ZipFile(archive, "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps(_RunsCode(), protocol=2))
  with pytest.raises(pickle.UnpicklingError, match="unsupported object posix.getcwd"):
    torch_archive.load(archive.getvalue())
