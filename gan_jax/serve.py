"""A web gallery of a training run: fresh samples, latent walks, loss curves and FID, live.

    python -m gan_jax.serve --workdir=RUN [--port=8000] [--host=127.0.0.1]

    /                                              the gallery page
    /api/sample?n=16&class=cat&seed=3&scale=2      PNG grid (conditional runs: one row per class without
                                                   class); the seed used is in the X-Seed header
    /api/interpolate?steps=8&class=cat&seed=3      PNG strip from one latent to another
    /api/run                                       JSON: config, step, classes, losses, metrics

Images come from the EMA generator of the newest checkpoint; while a run trains in the same workdir, the
server looks for a newer checkpoint at most every --poll_seconds and serves it from then on. Bad
parameters are answered with 400 and unknown paths with 404, both as JSON {"error": "..."}.

The standard library's ThreadingHTTPServer is enough for a gallery that a few people look at (each
request is one generator call, milliseconds to a second): no web framework to install.
"""
import errno
import http.server
import io
import json
import os
import random
import socket
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple
import urllib.parse

from absl import app
from absl import flags
from absl import logging
import jax

from gan_jax import artifacts
from gan_jax import checkpointing
from gan_jax import compilation_cache
from gan_jax import generation
from gan_jax import run_info
from gan_jax import scoring
from gan_jax.errors import UserError

MAX_IMAGES = 256  # per grid: a few generator batches, about a second on a CPU
MAX_STEPS = 32  # per interpolation row
MAX_SCALE = 8
MAX_SEED = 2**31 - 1
MAX_LOSS_POINTS = 500  # rows of losses.csv sent to the page (evenly spaced, the last one included)
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gallery.html")


class Gallery:
  """The newest readable checkpoint of a run, ready to sample; only ever reads the workdir."""

  def __init__(self, workdir: str, poll_seconds: float = 5.0):
    self.workdir, self.poll_seconds = workdir, poll_seconds
    self.config, self._template, self.class_names = generation.run_template(workdir)
    self.image_shape, _ = run_info.load(workdir)
    self.num_classes = self._template.num_classes
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
      raise UserError(f"{workdir} has no checkpoint yet; serve it once training has saved one")
    self._checkpoints = checkpointing.Checkpoints(workdir, self.config.keep_checkpoints, read_only=True)
    self._sampler: Optional[generation.Sampler] = None
    self._unreadable = set()  # steps that failed to restore: not tried (and warned about) again
    self._refreshing = threading.Lock()
    self._checked_at = 0.0
    self._refresh()
    if self._sampler is None:
      raise UserError(f"{workdir} has no readable checkpoint yet; serve it once training has saved one")

  def sampler(self) -> generation.Sampler:
    """The sampler of the newest checkpoint. One request at a time looks for a newer one, at most every
    poll_seconds; the others go on with the current one meanwhile."""
    if time.monotonic() - self._checked_at >= self.poll_seconds and self._refreshing.acquire(blocking=False):
      try:
        self._refresh()
      finally:
        self._refreshing.release()
    return self._sampler

  def _refresh(self) -> None:
    self._checked_at = time.monotonic()
    current = self._sampler.step if self._sampler else -1
    for step in reversed(self._checkpoints.reread_steps()):
      if step <= current:
        return
      if step in self._unreadable:
        continue
      try:
        state = self._checkpoints.restore(step, self._template)
      except UserError:  # another version's models: no older checkpoint of the run is any different
        raise
      except Exception as e:  # pylint: disable=broad-except
        # Training may be deleting this checkpoint (keep_checkpoints) right now; Orbax raises many types.
        logging.warning("Checkpoint %d of %s was not readable (%s: %s); trying an older one.", step,
                        self.workdir, type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        self._unreadable.add(step)
        continue
      if state is not None:
        self._sampler = generation.Sampler(state)
        logging.info("Serving step %d of %s.", step, self.workdir)
        return

  def run_summary(self) -> Dict:
    """What /api/run answers: the run's settings, the served step, its losses and evaluations."""
    rows = artifacts.LossLog(os.path.join(self.workdir, "losses.csv")).rows()
    stride = max(1, -(-len(rows) // MAX_LOSS_POINTS))
    shown = rows[::stride] + ([rows[-1]] if rows and (len(rows) - 1) % stride else [])
    return {"workdir": os.path.abspath(self.workdir), "step": self.sampler().step,
            "model": self.config.model, "dataset": self.config.dataset,
            "class_names": self.class_names if self.num_classes else [],
            "image_shape": list(self.image_shape), "config": self.config.to_dict(),
            "losses": {column: [row[column] for row in shown] for column in (shown[0] if shown else {})},
            "metrics": scoring.metrics_history(self.workdir)}


class _ClientError(Exception):
  """A request the server answers with `status` and a JSON error message."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def _parameters(query: str, allowed: Tuple[str, ...]) -> Dict[str, str]:
  """The query's parameters (the last value of each); unknown ones are refused by name."""
  values = {name: found[-1] for name, found in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
  unknown = sorted(set(values) - set(allowed))
  if unknown:
    raise _ClientError(400, f"unknown parameter {', '.join(unknown)}; this endpoint takes "
                           f"{', '.join(allowed)}")
  return values


def _integer(values: Dict[str, str], name: str, default: Optional[int], low: int, high: int) -> int:
  text = values.get(name)
  if text is None:
    return default
  try:
    value = int(text)
  except ValueError:
    raise _ClientError(400, f"{name}={text} is not a whole number; give {low} to {high}") from None
  if not low <= value <= high:
    raise _ClientError(400, f"{name}={value} is out of range; give {low} to {high}")
  return value


class _Handler(http.server.BaseHTTPRequestHandler):
  """Answers GET requests from the gallery of `self.server.gallery`."""

  server_version = "gan_jax-gallery"

  def do_GET(self):  # pylint: disable=invalid-name
    url = urllib.parse.urlsplit(self.path)
    routes = {"/": self._page, "/api/sample": self._sample, "/api/interpolate": self._interpolate,
              "/api/run": self._run}
    try:
      if url.path not in routes:
        raise _ClientError(404, f"no page {url.path}; the gallery is at / and its API at /api/sample, "
                               "/api/interpolate and /api/run")
      status, content_type, body, headers = routes[url.path](url.query)
    except _ClientError as e:
      status, content_type, body, headers = e.status, *_json({"error": str(e)}), {}
    except UserError as e:  # a class that is not one of the run's
      status, content_type, body, headers = 400, *_json({"error": str(e)}), {}
    except Exception as e:  # pylint: disable=broad-except
      # The server outlives any one request; the traceback goes to its log.
      logging.exception("Request %s failed", self.path)
      status, content_type, body, headers = 500, *_json({"error": f"internal error: {e}"}), {}
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    self.send_header("Cache-Control", "no-store")
    for name, value in headers.items():
      self.send_header(name, value)
    self.end_headers()
    self.wfile.write(body)

  def log_request(self, code="-", size="-"):
    """Failed requests only: a gallery answers thousands of good ones."""
    if isinstance(code, int) and code >= 400:
      logging.info("%s %s -> %d", self.command, self.path, code)

  def log_error(self, format, *args):  # pylint: disable=redefined-builtin
    logging.info(format, *args)

  def _page(self, query: str):
    _parameters(query, ())
    with open(PAGE, "rb") as f:
      return 200, "text/html; charset=utf-8", f.read(), {}

  def _sample(self, query: str):
    values = _parameters(query, ("n", "class", "seed", "scale"))
    num = _integer(values, "n", 16, 1, MAX_IMAGES)
    return self._render(values, lambda sampler, seed, label: sampler.grid(num, seed, label))

  def _interpolate(self, query: str):
    values = _parameters(query, ("steps", "class", "seed", "scale"))
    steps = _integer(values, "steps", 8, 2, MAX_STEPS)
    return self._render(values, lambda sampler, seed, label: sampler.interpolation(steps, seed, label))

  def _render(self, values, draw):
    """The PNG answer of `draw(sampler, seed, label) -> (images, columns)` with the parameters that
    /api/sample and /api/interpolate share: seed, scale and class."""
    gallery = self.server.gallery
    seed = _integer(values, "seed", random.randint(0, MAX_SEED), 0, MAX_SEED)
    scale = _integer(values, "scale", 2, 1, MAX_SCALE)
    label = generation.class_index(values.get("class"), gallery.class_names, gallery.num_classes, "class")
    sampler = gallery.sampler()
    images, columns = draw(sampler, seed, label)
    return _png(images, columns, scale, sampler.step, seed)

  def _run(self, query: str):
    _parameters(query, ())
    return 200, *_json(self.server.gallery.run_summary()), {}


def _json(value) -> Tuple[str, bytes]:
  return "application/json", json.dumps(value).encode()


def _png(images, columns: int, scale: int, step: int, seed: int):
  buffer = io.BytesIO()
  artifacts.grid_picture(images, columns, scale).save(buffer, format="PNG")
  return 200, "image/png", buffer.getvalue(), {"X-Seed": str(seed), "X-Step": str(step)}


class GalleryServer(http.server.ThreadingHTTPServer):
  """The gallery of the run in `workdir` on host:port (port 0: any free one)."""

  def __init__(self, workdir: str, host: str = "127.0.0.1", port: int = 8000, poll_seconds: float = 5.0):
    self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Listening first: a port in use is reported before seconds go into restoring the generator.
    try:
      super().__init__((host, port), _Handler)
    except OSError as e:
      if e.errno == errno.EADDRINUSE:
        raise UserError(f"port {port} on {host} is in use; choose another --port") from None
      raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); check --host and "
                      "--port") from None
    try:
      self.gallery = Gallery(workdir, poll_seconds)
    except BaseException:
      self.server_close()
      raise

  @property
  def url(self) -> str:
    host, port = self.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _define_flags() -> None:
  """The command line's flags; defined only when run as a program, so importing this module is free."""
  flags.DEFINE_string("workdir", None, "Training run to show (it may still be training).", required=True)
  flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; 0.0.0.0 shows the gallery to the "
                      "network.")
  flags.DEFINE_integer("port", 8000, "Port to listen on (0: any free one).", lower_bound=0,
                       upper_bound=65535)
  flags.DEFINE_float("poll_seconds", 5.0, "Look for a newer checkpoint at most this often.",
                     lower_bound=0.0)


def _parse_flags(argv: List[str]):
  """absl's parser, with a bad flag reported in one line instead of a usage text."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"error: {e}; see --help")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}; see --help")
  args = flags.FLAGS
  # Compiled samplers are kept on disk: a restarted server answers its first requests without compiling.
  compilation_cache.enable(jax.config.jax_compilation_cache_dir or compilation_cache.default_dir())
  try:
    server = GalleryServer(args.workdir, args.host, args.port, args.poll_seconds)
  except UserError as e:
    sys.exit(f"error: {e}")
  print(f"Serving {args.workdir} (step {server.gallery.sampler().step}) at {server.url}  (Ctrl+C stops)",
        flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=_parse_flags)
