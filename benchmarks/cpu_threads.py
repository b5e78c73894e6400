"""One thread budget for XLA:CPU and PyTorch, so that CPU timings of the two compare like with like.

XLA:CPU (jax 0.10) has no flag for its intra-op thread count: the CPU client sizes its intra-op pool
(the threads named tf_XLAEigen, which YNNPACK's kernels use too) once, when jax starts its backend, from
the environment variable NPROC if set, else from the CPUs the process may run on (sched_getaffinity).
`--xla_cpu_multi_thread_eigen=false` only makes Eigen's kernels single-threaded and sets no count. So
`limit(n)` must run before jax is imported: it sets NPROC=n and pins the process to n CPUs (torch's
threads then share those same CPUs); torch gets torch.set_num_threads(n) from `limit_torch`.
"""
import os
import sys


def limit(threads: int = 0) -> int:
  """Restricts this process to `threads` CPUs (0: every CPU it may use now); returns the count.

  Call before importing jax; call `limit_torch` after importing torch.
  """
  if "jax" in sys.modules:
    raise RuntimeError("cpu_threads.limit() must run before jax is imported: XLA:CPU sizes its thread "
                       "pool once, when its backend starts")
  allowed = sorted(os.sched_getaffinity(0))
  threads = threads or len(allowed)
  if threads > len(allowed):
    raise ValueError(f"--threads={threads} but this process may only use {len(allowed)} CPUs")
  os.sched_setaffinity(0, allowed[:threads])
  os.environ["NPROC"] = str(threads)
  return threads


def limit_torch(torch, threads: int) -> None:
  """torch's intra-op threads to `threads` and one inter-op thread (TorchScript runs ops in order)."""
  torch.set_num_threads(threads)
  try:
    torch.set_num_interop_threads(1)
  except RuntimeError:  # only allowed before torch's first parallel work; a later call changes nothing
    pass


def xla_pool_threads() -> int:
  """Threads of XLA:CPU's intra-op pool in this process (after jax has started its CPU backend)."""
  names = []
  for task in os.listdir("/proc/self/task"):
    try:
      with open(f"/proc/self/task/{task}/comm") as f:
        names.append(f.read().strip())
    except OSError:  # the thread ended meanwhile
      pass
  return sum(name.endswith("XLAEigen") for name in names)
