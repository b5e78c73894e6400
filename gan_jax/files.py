"""Writing a file so that its readers (a resumed run, the web gallery, another process) never see half of it."""
import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yields a temporary path beside `path` to write to: this process's own, with the same extension
  (writers read the format from it), hidden (a leading '.', so that readers' patterns such as
  `step_*.png` never match a file a killed run left half-written). When the block ends without error it
  replaces `path` in one step (os.replace); otherwise it is removed and `path` is left as it was."""
  folder, name = os.path.split(path)
  root, extension = os.path.splitext(name)
  temporary = os.path.join(folder, f".{root}.tmp{os.getpid()}{extension}")
  try:
    yield temporary
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def write_text(path: str, text: str) -> None:
  with atomic_path(path) as temporary, open(temporary, "w") as f:
    f.write(text)
