"""Runs command-line modules on request, each in a process of its own forked from this one, which has
imported gan_jax's libraries once: conftest.run_cli's `python -m <module> <args>` without the ~3.5 s of
imports (jax, flax, Orbax, tfds) that each fresh interpreter pays.

    python tests/cli_server.py    # reads one JSON request a line on stdin, answers one JSON line on stdout

A request: {"module", "args", "env", "cwd", "stdout", "stderr", "timeout"} (the last three: file paths and
seconds). The child takes `env` as its whole environment, `cwd` as its directory and the two files as its
stdout and stderr, runs the module as __main__ with its own sys.argv (its absl flags are defined and
parsed afresh) and leaves the interpreter the normal way: atexit handlers run and non-daemon threads are
joined, as at the end of `python -m`. JAX's backend is not started here (forking is safe) and reads
XLA_FLAGS in the child; jax's own settings ($JAX_*) are read at import, here, so a request that changes
one is refused. The answer: {"returncode"} (-N: killed by signal N), or {"timeout": true} after the
child was killed at its timeout. A request {"together": [request, ...]} forks one child for each, all
running at once (the processes of a multi-process run), and answers {"together": [answer, ...]} when all
have ended.
"""
import json
import os
import runpy
import signal
import sys
import time

import gan_jax.trainer  # pylint: disable=unused-import  # the libraries every command imports
import experiments  # pylint: disable=unused-import

_JAX_SETTINGS = {k: v for k, v in os.environ.items() if k.startswith("JAX_")}


def _child(request):
  """Runs in the forked child; only ever leaves by SystemExit, to the interpreter's normal exit."""
  os.chdir(request["cwd"])
  with open(request["stdout"], "w") as out, open(request["stderr"], "w") as err:
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
  with open(os.devnull) as nothing:
    os.dup2(nothing.fileno(), 0)
  changed = sorted(k for k in set(_JAX_SETTINGS) | {k for k in request["env"] if k.startswith("JAX_")}
                   if request["env"].get(k) != _JAX_SETTINGS.get(k))
  if changed:
    print(f"cli_server: {changed} differ from the server's, which jax read at import; run this command "
          "with subprocess instead", file=sys.stderr)
    raise SystemExit(2)
  os.environ.clear()
  os.environ.update(request["env"])
  sys.path[0] = request["cwd"]  # as `python -m` has it (here it was this script's folder)
  sys.argv = [request["module"], *request["args"]]
  # What `python -m` calls: the module runs in the namespace of sys.modules["__main__"] itself (this
  # script's, which the child no longer needs), so that pickles of its classes name a module that
  # resolves (multiprocessing's workers send them back; run_module's temporary __main__ did not).
  runpy._run_module_as_main(request["module"])  # pylint: disable=protected-access
  raise SystemExit(0)


def _wait(pids, timeouts):
  """The answers of the children `pids`, each killed at its own timeout (seconds from now)."""
  start, answers = time.monotonic(), [None] * len(pids)
  while None in answers:
    for i, pid in enumerate(pids):
      if answers[i] is not None:
        continue
      done, status = os.waitpid(pid, os.WNOHANG)
      if done:
        answers[i] = {"returncode": os.waitstatus_to_exitcode(status)}
      elif time.monotonic() - start > timeouts[i]:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        answers[i] = {"timeout": True}
    time.sleep(0.02)
  return answers


def _fork(request) -> int:
  pid = os.fork()
  if pid == 0:
    _child(request)  # raises SystemExit: the child never comes back into the server's loop
  return pid


def main():
  for line in sys.stdin:
    request = json.loads(line)
    requests = request.get("together", [request])
    sys.stdout.flush()  # nothing buffered that a child would write out again at its exit
    answers = _wait([_fork(r) for r in requests], [r["timeout"] for r in requests])
    print(json.dumps({"together": answers} if "together" in request else answers[0]), flush=True)


if __name__ == "__main__":
  main()
