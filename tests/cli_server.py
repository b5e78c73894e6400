"""Runs command-line modules on request, each in a process of its own forked from this one, which has
imported gan_jax's libraries once: conftest.run_cli's `python -m <module> <args>` without the ~3.5 s of
imports (jax, flax, Orbax, tfds) that each fresh interpreter pays.

    python tests/cli_server.py    # reads one JSON request a line on stdin, answers one JSON line on stdout

Requests and their answers:
- {"start": command} forks a child for the command and answers {"pid"} at once. A command is
  {"module", "args", "env", "cwd", "stdout", "stderr"} (the last two: file paths). The child takes `env`
  as its whole environment, `cwd` as its directory and the two files as its stdout and stderr, runs the
  module as __main__ with its own sys.argv (its absl flags are defined and parsed afresh) and ends as
  `python -m` does, up to freeing its memory: the exit status and message of its SystemExit (or the
  traceback of another exception, status 1), non-daemon threads joined, atexit handlers run, stdio
  flushed; then os._exit, which skips the teardown of the preloaded modules (that alone took ~0.65 s
  a command; the command of a bad-input case itself ~0.04 s; AMD EPYC, AVX2, 2026-12-06). JAX's backend
  is not started here (forking is safe) and reads XLA_FLAGS in the child; jax's own settings ($JAX_*)
  are read at import, here, so a command that changes one is refused.
- {"wait": pid, "timeout": seconds} waits for that child: {"returncode"} (-N: killed by signal N), or
  {"timeout": true} after it was killed at the timeout. Other children run on meanwhile (the processes
  of a multi-process run, a run that a test kills while it runs another).
- {"poll": pid}: {"returncode"} when it has ended, else {"running": true}.
"""
import atexit
import json
import os
import runpy
import signal
import sys
import threading
import time
import traceback

import gan_jax.trainer  # pylint: disable=unused-import  # the libraries every command imports
import experiments  # pylint: disable=unused-import

_JAX_SETTINGS = {k: v for k, v in os.environ.items() if k.startswith("JAX_")}


def _child(request):
  """Runs in the forked child, which never returns from here (the docstring above says how it ends)."""
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
    sys.stderr.flush()
    os._exit(2)
  os.environ.clear()
  os.environ.update(request["env"])
  sys.path[0] = request["cwd"]  # as `python -m` has it (here it was this script's folder)
  sys.argv = [request["module"], *request["args"]]
  # What `python -m` calls: the module runs in the namespace of sys.modules["__main__"] itself (this
  # script's, which the child no longer needs), so that pickles of its classes name a module that
  # resolves (multiprocessing's workers send them back; run_module's temporary __main__ did not).
  status = 0
  try:
    runpy._run_module_as_main(request["module"])  # pylint: disable=protected-access
  except SystemExit as e:  # what the interpreter makes of it: None 0, an int itself, else printed and 1
    if e.code is not None and not isinstance(e.code, int):
      print(e.code, file=sys.stderr)
    status = e.code if isinstance(e.code, int) else int(e.code is not None)
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    status = 1
  threading._shutdown()  # pylint: disable=protected-access  # joins non-daemon threads, as at exit
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)


def _ended(pid: int):
  """{"returncode"} of the child `pid` once it has ended, else None (never blocks)."""
  done, status = os.waitpid(pid, os.WNOHANG)
  return {"returncode": os.waitstatus_to_exitcode(status)} if done else None


def _wait(pid: int, timeout: float):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    answer = _ended(pid)
    if answer:
      return answer
    time.sleep(0.02)
  os.kill(pid, signal.SIGKILL)
  os.waitpid(pid, 0)
  return {"timeout": True}


def _start(command) -> dict:
  sys.stdout.flush()  # nothing buffered that the child would write out again at its exit
  pid = os.fork()
  if pid == 0:
    _child(command)  # ends the child: it never comes back into the server's loop
  return {"pid": pid}


def main():
  for line in sys.stdin:
    request = json.loads(line)
    if "start" in request:
      answer = _start(request["start"])
    elif "wait" in request:
      answer = _wait(request["wait"], request["timeout"])
    else:
      answer = _ended(request["poll"]) or {"running": True}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
  main()
