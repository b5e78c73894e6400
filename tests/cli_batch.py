"""Runs one command-line module with many argument lists, each in a process of its own, as
`python -m <module> <args>` would, and prints their exit codes and stderr as JSON.

    python tests/cli_batch.py <module> <cases.json>   # cases.json: a list of argument lists

Used by conftest.run_cli_cases for the many bad-input cases, which each end within a second of their
start: a fresh `python -m` spends ~3.5 s of its ~4 s importing jax, flax, Orbax and tfds. Here this
process imports gan_jax's libraries once (without starting JAX's backend, so that forking is safe), then
forks a child per case, which runs the module as __main__ with its own sys.argv: its flags are defined
and parsed afresh, its stderr goes to its own file and its exit status is the process's.
"""
import json
import os
import runpy
import sys
import tempfile
import time

import gan_jax.trainer  # pylint: disable=unused-import  # the libraries every command imports
import experiments  # pylint: disable=unused-import


def run_case(module: str, args, stderr_path: str) -> int:
  """Forks a child that runs `module` as __main__ with `args`; returns its exit status."""
  pid = os.fork()
  if pid == 0:  # the child: never returns
    code = 1
    try:
      with open(stderr_path, "w") as err, open(os.devnull, "w") as out:
        os.dup2(err.fileno(), 2)
        os.dup2(out.fileno(), 1)
      sys.argv = [module, *args]
      try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
      except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
          code = e.code or 0
        else:  # sys.exit("message"), as Python itself would print it
          print(e.code, file=sys.stderr)
          code = 1
    except BaseException:  # pylint: disable=broad-except  # shown as Python would show it
      import traceback  # pylint: disable=g-import-not-at-top
      traceback.print_exc()
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code)  # pylint: disable=protected-access
  _, status = os.waitpid(pid, 0)
  return os.waitstatus_to_exitcode(status)


def main():
  module, cases_path = sys.argv[1:]
  with open(cases_path) as f:
    cases = json.load(f)
  results = []
  with tempfile.TemporaryDirectory() as scratch:
    for i, args in enumerate(cases):
      stderr_path = os.path.join(scratch, f"{i}.stderr")
      start = time.time()
      code = run_case(module, args, stderr_path)
      with open(stderr_path) as f:
        results.append({"returncode": code, "stderr": f.read(), "seconds": time.time() - start})
  json.dump(results, sys.stdout)


if __name__ == "__main__":
  main()
