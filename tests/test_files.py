"""files.atomic_path: a file is replaced whole or not at all."""
import fnmatch
import os

import pytest

from gan_jax import files


def test_a_finished_write_replaces_the_file_and_keeps_its_extension(tmp_path):
  path = str(tmp_path / "grid.png")
  files.write_text(path, "old")
  with files.atomic_path(path) as temporary:
    # Writers read the format from the extension; readers' patterns must not match a half-written file.
    assert temporary.endswith(".png") and not fnmatch.fnmatch(os.path.basename(temporary), "grid*.png")
    with open(temporary, "w") as f:
      f.write("new")
    with open(path) as f:
      assert f.read() == "old"  # readers see the old file until the write is finished
  with open(path) as f:
    assert f.read() == "new"
  assert os.listdir(tmp_path) == ["grid.png"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
  path = str(tmp_path / "losses.csv")
  files.write_text(path, "step\n1\n")
  with pytest.raises(RuntimeError):
    with files.atomic_path(path) as temporary:
      with open(temporary, "w") as f:
        f.write("step\n")
      raise RuntimeError("killed while writing")
  with open(path) as f:
    assert f.read() == "step\n1\n"
  assert os.listdir(tmp_path) == ["losses.csv"]
