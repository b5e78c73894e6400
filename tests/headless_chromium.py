"""Headless Chromium driven through the Chrome DevTools Protocol over --remote-debugging-pipe: a real
browser for the tests without a websocket or browser-automation package (`apt-get install -y chromium`)."""
import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import List, Optional

import numpy as np
from PIL import Image

_BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _high_descriptor(fd: int) -> int:
  """`fd` moved to a descriptor number of at least 10."""
  moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
  os.close(fd)
  return moved


def find_chromium() -> Optional[str]:
  return next((shutil.which(name) for name in _BINARIES if shutil.which(name)), None)


class Browser:
  """One headless Chromium with one page; `page_call` sends a CDP command to that page."""

  def __init__(self, binary: str, width: int = 1000, height: int = 1600, timeout: float = 30.0):
    self.timeout = timeout
    self._profile = tempfile.mkdtemp(prefix="gan_jax_chromium_")
    commands_read, self._commands = os.pipe()
    self._replies, replies_write = os.pipe()
    # Chromium's ends, numbered above 4 so that moving them to 3 and 4 never overwrites one of them.
    commands_read, replies_write = (_high_descriptor(fd) for fd in (commands_read, replies_write))
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}", f"--window-size={width},{height}",
            "about:blank"]
    # --no-sandbox: Chromium refuses to run as root (CI, containers) with its sandbox. It reads commands
    # from descriptor 3 and writes replies to descriptor 4.
    self._process = subprocess.Popen(
        ["bash", "-c", f'exec "$@" 3<&{commands_read} 4>&{replies_write} {commands_read}<&- '
         f'{replies_write}>&-', "bash", *args],
        pass_fds=(commands_read, replies_write), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(commands_read)
    os.close(replies_write)
    self._buffer, self._last_id, self.events = b"", 0, []
    target = self.call("Target.createTarget", url="about:blank")["targetId"]
    self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
      self.page_call(f"{domain}.enable")

  def __enter__(self) -> "Browser":
    return self

  def __exit__(self, *exc_info) -> None:
    try:
      self.call("Browser.close")
    except (OSError, RuntimeError, TimeoutError):
      pass
    try:
      self._process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self._process.kill()
      self._process.wait()
    os.close(self._commands)
    os.close(self._replies)
    shutil.rmtree(self._profile, ignore_errors=True)

  def call(self, method: str, session: Optional[str] = None, **params):
    self._last_id += 1
    message = {"id": self._last_id, "method": method, "params": params}
    if session:
      message["sessionId"] = session
    data = json.dumps(message).encode() + b"\0"
    while data:
      data = data[os.write(self._commands, data):]
    deadline = time.monotonic() + self.timeout
    while True:
      reply = self._receive(deadline)
      if reply.get("id") == self._last_id:
        if "error" in reply:
          raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]
      self.events.append(reply)  # events arrive between replies

  def page_call(self, method: str, **params):
    return self.call(method, session=self._session, **params)

  def evaluate(self, expression: str):
    """The value of a JavaScript expression in the page (promises awaited)."""
    result = self.page_call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in result:
      raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
    return result["result"].get("value")

  def wait_for(self, expression: str) -> None:
    """Until the expression is true in the page (errors count as not yet)."""
    deadline = time.monotonic() + self.timeout
    while time.monotonic() < deadline:
      try:
        if self.evaluate(expression):
          return
      except RuntimeError:
        pass
      time.sleep(0.1)
    raise TimeoutError(f"not true within {self.timeout} s: {expression}")

  def screenshot(self, element_id: Optional[str] = None) -> np.ndarray:
    """RGB pixels of the page, or of one element."""
    params = {"format": "png"}
    if element_id:
      box = self.evaluate(f"JSON.parse(JSON.stringify(document.getElementById('{element_id}')"
                          ".getBoundingClientRect()))")
      params["clip"] = {"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"],
                        "scale": 1}
    png = base64.b64decode(self.page_call("Page.captureScreenshot", **params)["data"])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

  def console_errors(self) -> List[str]:
    """Uncaught exceptions, console.error calls and failed loads the page has reported so far."""
    errors = []
    for event in self.events:
      method, params = event.get("method"), event.get("params", {})
      if method == "Runtime.exceptionThrown":
        errors.append(params["exceptionDetails"].get("text", "exception"))
      elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
        errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
      elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
        errors.append(params["entry"].get("text", ""))
    return errors

  def _receive(self, deadline: float) -> dict:
    while b"\0" not in self._buffer:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        raise TimeoutError("Chromium did not answer in time")
      if select.select([self._replies], [], [], remaining)[0]:
        chunk = os.read(self._replies, 1 << 20)
        if not chunk:
          raise RuntimeError("Chromium exited")
        self._buffer += chunk
    message, self._buffer = self._buffer.split(b"\0", 1)
    return json.loads(message)
