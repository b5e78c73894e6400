"""The web gallery (gan_jax.serve) over HTTP, on a tiny conditional run: page, API, bad requests, a
checkpoint saved while it serves, the command line, and the page in headless Chromium when installed."""
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import jax
import numpy as np
from PIL import Image
import pytest

from gan_jax import checkpointing
from gan_jax import generation
from gan_jax import serve
from conftest import (ORBAX_CLOSED_LOOP, CliProcess, damage_checkpoint, TINY_FLAGS, TINY_IMAGE_SIZE, run_cli,
                      run_cli_cases)
import headless_chromium

CELL = TINY_IMAGE_SIZE + 2  # an image of the tiny run (TINY_FLAGS) and the grid's padding


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, image_dataset):
  """A 10-step class-conditional run (classes cat and dog) with checkpoints at steps 5 and 10."""
  data_dir, name = image_dataset
  workdir = tmp_path_factory.mktemp("gallery") / "run"
  result = run_cli("gan_jax.main", f"--dataset={name}", f"--data_dir={data_dir}", f"--workdir={workdir}",
                   "--batch_size=4", "--num_steps=10", "--conditional", *TINY_FLAGS)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def _start(workdir, poll_seconds=60.0):
  server = serve.GalleryServer(str(workdir), port=0, poll_seconds=poll_seconds)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return server


@pytest.fixture(scope="module")
def server(workdir):
  server = _start(workdir)
  yield server
  server.shutdown()
  server.server_close()


def _get(server, path):
  """(status, headers, body) of a GET request."""
  try:
    with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=60) as response:
      return response.status, response.headers, response.read()
  except urllib.error.HTTPError as e:
    return e.code, e.headers, e.read()


def _png(server, path):
  status, headers, body = _get(server, path)
  assert status == 200 and headers["Content-Type"] == "image/png", body[:300]
  return np.asarray(Image.open(io.BytesIO(body)).convert("RGB")), headers


def test_page_and_run_summary(server):
  status, headers, body = _get(server, "/")
  assert status == 200 and headers["Content-Type"].startswith("text/html")
  assert b"<title>gan_jax gallery</title>" in body
  assert not re.search(rb"(src|href)=\"?(https?:)?//", body)  # nothing from elsewhere: works offline
  status, _, body = _get(server, "/api/run")
  run = json.loads(body)
  assert status == 200 and run["step"] == 10 and run["class_names"] == ["cat", "dog"]
  assert run["losses"]["step"] == [5, 10] and len(run["losses"]["d_loss"]) == 2
  assert run["config"]["latent_dim"] == 16 and run["metrics"] == []
  assert run["image_shape"] == [TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3]


def test_sample_grids(server):
  cats, headers = _png(server, "/api/sample?n=9&class=cat&seed=3&scale=1")
  assert cats.shape == (3 * CELL + 2, 3 * CELL + 2, 3)
  assert headers["X-Seed"] == "3" and headers["X-Step"] == "10"
  again, _ = _png(server, "/api/sample?n=9&class=cat&seed=3&scale=1")
  np.testing.assert_array_equal(cats, again)  # a seed is a shareable grid
  assert not np.array_equal(cats, _png(server, "/api/sample?n=9&class=cat&seed=4&scale=1")[0])
  assert not np.array_equal(cats, _png(server, "/api/sample?n=9&class=dog&seed=3&scale=1")[0])
  # Without a class: one row per class, n // 2 columns; scale 2 by default.
  both, _ = _png(server, "/api/sample?n=6&seed=3")
  assert both.shape == (2 * (2 * CELL + 2), 2 * (3 * CELL + 2), 3)
  # Padded to another batch size, the same latents give the same images: 4 of 16 are the grid of 4.
  four, _ = _png(server, "/api/sample?n=4&class=cat&seed=5&scale=1")
  sixteen, _ = _png(server, "/api/sample?n=16&class=cat&seed=5&scale=1")
  for i in range(4):
    row, column = divmod(i, 2)
    cell = four[2 + row * CELL:row * CELL + CELL, 2 + column * CELL:column * CELL + CELL]
    np.testing.assert_allclose(cell, sixteen[2:CELL, 2 + i * CELL:i * CELL + CELL], atol=2)
  status, headers, _ = _get(server, "/api/sample")
  assert status == 200 and headers["X-Seed"].isdigit()  # a random seed, said in the answer


def test_the_sampler_compiles_once_per_batch_size(server):
  compiled = generation._render._cache_size  # pylint: disable=protected-access
  for n in generation.SAMPLER_BATCH_SIZES:
    _png(server, f"/api/sample?n={n}&class=dog")
  warm = compiled()
  for n in (1, 2, 3, 5, 7, 11, 16, 17, 33, 64, 65, 100, 256):
    _png(server, f"/api/sample?n={n}&class=dog&seed={n}")
    _png(server, f"/api/sample?n={n}")
  assert compiled() == warm


def test_interpolation_strips(server):
  strip, _ = _png(server, "/api/interpolate?steps=5&class=dog&seed=1&scale=1")
  assert strip.shape == (CELL + 2, 5 * CELL + 2, 3)
  first, last = strip[2:CELL, 2:CELL], strip[2:CELL, 4 * CELL + 2:5 * CELL]
  assert not np.array_equal(first, last)
  both, _ = _png(server, "/api/interpolate?steps=5&seed=1&scale=1")  # one row per class
  assert both.shape == (2 * CELL + 2, 5 * CELL + 2, 3)
  np.testing.assert_array_equal(both[CELL:], strip)  # row 2 is class dog


@pytest.mark.parametrize("path, status, message", [
    ("/api/sample?n=abc", 400, "n=abc is not a whole number; give 1 to 256"),
    ("/api/sample?n=100000", 400, "n=100000 is out of range; give 1 to 256"),
    ("/api/sample?n=0", 400, "n=0 is out of range"),
    ("/api/sample?class=zebra", 400, "class=zebra is not a class of this run; use a name (cat, dog)"),
    ("/api/sample?class=7", 400, "class=7 is not a class of this run"),
    ("/api/sample?seed=-1", 400, "seed=-1 is out of range"),
    ("/api/sample?scale=100", 400, "scale=100 is out of range"),
    ("/api/sample?m=4", 400, "unknown parameter m; this endpoint takes n, class, seed, scale"),
    ("/api/interpolate?steps=1", 400, "steps=1 is out of range; give 2 to 32"),
    ("/api/run?x=1", 400, "unknown parameter x"),
    ("/favicon.ico", 404, "no page /favicon.ico"),
    ("/api/nothing", 404, "no page /api/nothing"),
])
def test_bad_requests_get_a_clear_json_error_and_the_server_goes_on(server, path, status, message):
  got, headers, body = _get(server, path)
  assert got == status and headers["Content-Type"] == "application/json"
  assert message in json.loads(body)["error"]
  assert _get(server, "/api/run")[0] == 200


def test_a_checkpoint_saved_while_serving_is_picked_up(workdir, tmp_path):
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  server = _start(run, poll_seconds=0.2)
  try:
    before, headers = _png(server, "/api/sample?n=4&seed=7&class=cat")
    assert headers["X-Step"] == "10"
    # What a training run in the same workdir does: save a later state (here: other EMA weights).
    config, state, _ = generation.load_run(str(run))
    later = state.replace(step=state.step + 5,
                          g_ema_params=jax.tree.map(lambda p: p * 1.5 + 0.01, state.g_ema_params))
    checkpoints = checkpointing.Checkpoints(str(run), config.keep_checkpoints)
    checkpoints.save(later)
    checkpoints.wait()
    deadline = time.monotonic() + 30
    while json.loads(_get(server, "/api/run")[2])["step"] != 15:
      assert time.monotonic() < deadline, "the server did not pick up the checkpoint of step 15"
      time.sleep(0.2)
    after, headers = _png(server, "/api/sample?n=4&seed=7&class=cat")
    assert headers["X-Step"] == "15" and not np.array_equal(before, after)
  finally:
    server.shutdown()
    server.server_close()


@ORBAX_CLOSED_LOOP
def test_an_unreadable_newest_checkpoint_is_skipped_and_left_where_it_is(workdir, tmp_path):
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  damage_checkpoint(run / "checkpoints" / "10")
  gallery = serve.Gallery(str(run))
  assert gallery.sampler().step == 5
  # A reader beside a training run never moves its files: the trainer decides what is corrupt.
  assert (run / "checkpoints" / "10").is_dir() and not (run / "checkpoints_corrupt").exists()


def test_command_line_serves_and_reports_bad_starts_in_one_line(workdir, tmp_path):
  process = CliProcess("gan_jax.serve", f"--workdir={workdir}", "--port=0")
  try:
    banner = next(process.lines("stdout"), "")
    match = re.search(r"step 10\) at (http://127\.0\.0\.1:(\d+)/)", banner)
    assert match, banner
    with urllib.request.urlopen(match.group(1) + "api/run", timeout=60) as response:
      assert json.loads(response.read())["step"] == 10
    in_use = run_cli("gan_jax.serve", f"--workdir={workdir}", f"--port={match.group(2)}")
    assert in_use.returncode != 0
    assert in_use.stderr.strip() == (f"error: port {match.group(2)} on 127.0.0.1 is in use; choose another "
                                     "--port")
  finally:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)

  untrained = tmp_path / "untrained"
  untrained.mkdir()
  for name in ("config.json", "dataset.json"):
    shutil.copy(workdir / name, untrained / name)
  bad_starts = ((["--workdir=" + str(untrained)], "has no checkpoint yet"),
                (["--workdir=" + str(tmp_path / "nothing")], "has no config.json"),
                ([f"--workdir={workdir}", "--port=99999"], "error: flag --port=99999"))
  results = run_cli_cases("gan_jax.serve", [flags for flags, _ in bad_starts])
  for (_, message), result in zip(bad_starts, results):
    assert result.returncode != 0 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert sorted(os.listdir(untrained)) == ["config.json", "dataset.json"]  # a server writes nothing


CHROMIUM = headless_chromium.find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (`apt-get install -y chromium` "
                    "enables this test)")
def test_the_page_in_headless_chromium(server):
  with headless_chromium.Browser(CHROMIUM) as browser:
    browser.page_call("Page.navigate", url=server.url)
    loaded = ("['grid', 'walk'].every(id => document.getElementById(id).complete && "
              "document.getElementById(id).naturalWidth > 0) && "
              "document.getElementById('class').options.length")
    browser.wait_for(loaded)
    first_source = browser.evaluate("document.getElementById('grid').src")
    first = browser.screenshot("grid")
    browser.evaluate("document.getElementById('new-samples').click()")
    browser.wait_for(f"document.getElementById('grid').src !== {json.dumps(first_source)} && {loaded}")
    assert not np.array_equal(first, browser.screenshot("grid"))  # new latents, new images
    assert browser.evaluate("document.getElementById('class').options.length") == 3  # all, cat, dog
    all_classes_source = browser.evaluate("document.getElementById('grid').src")
    browser.evaluate("const s = document.getElementById('class'); s.value = 'dog'; "
                     "s.dispatchEvent(new Event('change'))")
    browser.wait_for(f"document.getElementById('grid').src !== {json.dumps(all_classes_source)} && {loaded}")
    # 16 dogs in a 4x4 grid instead of 2 rows (cat, dog) of 8, at the page's zoom of the API's 2x.
    assert browser.evaluate("document.getElementById('grid').naturalHeight") == 2 * (4 * CELL + 2)
    drawn = ("document.getElementById('{}').getContext('2d').getImageData(0, 0, 760, 200).data"
             ".some((v, i) => i % 4 == 3 && v > 0)")
    assert browser.evaluate(drawn.format("losses")) and browser.evaluate(drawn.format("outputs"))
    assert browser.console_errors() == []
    screenshot_to = os.environ.get("GAN_JAX_GALLERY_SCREENSHOT")  # e.g. docs/gallery.png for the README
    if screenshot_to:
      Image.fromarray(browser.screenshot()).save(screenshot_to)


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_fid_panel_lists_the_last_evaluation_by_what_each_score_is():
  """The page's showScores in node, on a stand-in DOM: the scores in order, named by what they are
  (precision/recall on Inception features say so), none for a missing value."""
  with open(serve.PAGE) as f:
    script = re.search(r"<script>(.*)</script>", f.read(), re.S).group(1)
  script = script[:script.index('$("new-samples").addEventListener')]  # the functions, not the start
  dom = """
    const cell = () => ({textContent: ""});
    const row = () => { const r = {cells: [], insertCell() { const c = cell(); r.cells.push(c); return c; }}; return r; };
    const body = {rows: [], replaceChildren() { this.rows = []; }, insertRow() { const r = row(); this.rows.push(r); return r; }};
    const elements = {scores: {hidden: true, tBodies: [body]}, "scores-caption": cell()};
    const document = {getElementById: (id) => elements[id]};
  """
  check = """
    showScores({step: 20, num_samples: 100, fid: 12.3456, recall_inception: 0.25, precision_inception: 0.5,
                probe_accuracy: 0.9, probe_accuracy_real_test: 0.95, intra_fid: null});
    console.log(JSON.stringify({hidden: elements.scores.hidden, caption: elements["scores-caption"].textContent,
                                rows: body.rows.map((r) => r.cells.map((c) => c.textContent))}));
    showScores(null);
    console.log(JSON.stringify({hidden: elements.scores.hidden}));
  """
  result = subprocess.run([NODE, "-e", dom + script + check], capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  shown, empty = [json.loads(line) for line in result.stdout.splitlines()]
  assert shown == {"hidden": False, "caption": "step 20, 100 generated images:", "rows": [
      ["FID", "12.35"],
      ["precision on Inception features (not the published metric)", "0.5000"],
      ["recall on Inception features (not the published metric)", "0.2500"],
      ["Inception linear-probe accuracy of the generated classes", "0.9000"],
      ["the probe's accuracy on real test images (its ceiling)", "0.9500"]]}
  assert empty == {"hidden": True}
