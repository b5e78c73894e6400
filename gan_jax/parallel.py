"""Data parallelism over all devices (and hosts), with the dataset resident on the devices.

Each host loads its own shard of the dataset once; every device keeps its host's shard and draws its part
of the batch itself, so training does no per-step host work. On accelerators a call fuses many steps
into one compiled loop; on CPU it calls, per step, a program that draws the rows and the one-step program
of streamed input (see DataParallel.fuses_steps). Two strategies run the same per-device program, with
gradients and BatchNorm statistics averaged over all devices:
- "shard_map": jit over a (hosts, devices) mesh; state replicated, data sharded by host.
- "pmap": the classic per-device program; state and data copied along a leading device axis.
"""
import dataclasses
import functools
from typing import Callable, Optional

from absl import logging
import flax.jax_utils
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from gan_jax.data import in_memory
from gan_jax.train import GANState, lazy_penalty_due, train_step

STRATEGIES = ("shard_map", "pmap")
MESH_AXES = ("hosts", "devices")
_PMAP_AXIS = "devices"
_STEP_STREAM = 0  # (1: the data order, gan_jax.data.in_memory)


def axis_name(strategy: str):
  """The axis name(s) a state must be created with to be trained under `strategy`."""
  return MESH_AXES if strategy == "shard_map" else _PMAP_AXIS


def step_key(base_key, step):
  """The PRNG key of a train step: a function of the step alone, so resumed runs match."""
  return jax.random.fold_in(jax.random.fold_in(base_key, _STEP_STREAM), step)


def local_devices(num_devices: int = 0):
  """The first `num_devices` devices of this host (0: all of them)."""
  devices = jax.local_devices()
  return devices[:num_devices] if num_devices else devices


def steps_per_epoch(num_examples: int, host_batch: int, d_steps: int = 1) -> int:
  """Train steps in one pass over a host's shard: each step reads d_steps batches of host_batch."""
  return num_examples // (host_batch * d_steps)


def _epoch_steps(state: GANState, images, host_batch: int) -> int:
  return steps_per_epoch(images.shape[0], host_batch, state.settings.d_steps)


def _per_device_order(state: GANState, images, *, host_batch):
  """The order of the epoch that state.step is in (this host's shard)."""
  return in_memory.epoch_order(state.key, state.step // _epoch_steps(state, images, host_batch), images.shape[0])


def _device_rows(step, key, order, images, labels, *, axis_name, d_steps, local_batch, host_batch,
                 devices_per_host, constant_batch):
  """This device's rows of train step `step`: (the epoch order it is in, images, labels).

  images: this host's shard (N, ...), uint8 images or float data. order: the order in which the epoch
  of the step before visits the shard (_per_device_order); it is carried from step to step and
  recomputed only when an epoch starts (a permutation of 50,000 costs ~35 ms on a CPU). A step reads
  d_steps consecutive host batches of the order (one per D update); device i of the host takes rows
  [i * local_batch, (i + 1) * local_batch) of each, so every D update sees the same global batch on any
  number of devices.
  """
  num_examples = images.shape[0]
  epoch_steps = steps_per_epoch(num_examples, host_batch, d_steps)
  device_in_host = jax.lax.axis_index(axis_name) % devices_per_host
  within_step = (jnp.arange(d_steps)[:, None] * host_batch + device_in_host * local_batch
                 + jnp.arange(local_batch)[None, :]).reshape(-1)
  if constant_batch:  # benchmark mode: the same batch every step, to measure what input costs
    indices = within_step % num_examples
  else:
    order = jax.lax.cond(step % epoch_steps == 0,
                         lambda: in_memory.epoch_order(key, step // epoch_steps, num_examples),
                         lambda: order)
    indices = jnp.take(order, (step % epoch_steps) * host_batch * d_steps + within_step)
  return order, images[indices], labels[indices]


def _per_device_steps(state: GANState, order, images, labels, *, steps, **rows):
  """Runs `steps` train steps on this device's replica in one compiled loop, each reading its rows
  (_device_rows, which takes `rows`); returns the state, the epoch order it ends in and per-step
  metrics."""

  def one_step(carry, _):
    state, order = carry
    order, step_images, step_labels = _device_rows(state.step, state.key, order, images, labels,
                                                   axis_name=state.axis_name, d_steps=state.settings.d_steps,
                                                   **rows)
    batch = {"image": in_memory.to_model_range(step_images), "label": step_labels}
    state, metrics = train_step(state, batch, step_key(state.key, state.step))
    return (state, order), metrics

  if steps == 1:  # no loop (see DataParallel.fuses_steps)
    (state, order), metrics = one_step((state, order), None)
    return state, order, jax.tree.map(lambda m: m[None], metrics)
  (state, order), metrics = jax.lax.scan(one_step, (state, order), None, length=steps)
  return state, order, metrics


@dataclasses.dataclass
class DataParallel:
  """Places state and data on the devices and compiles the multi-step train function."""
  strategy: str
  devices: list  # this host's devices
  fuse_steps: Optional[bool] = None  # run a call's steps as one compiled loop; None: off on CPU only

  def __post_init__(self):
    self._compiled = {}  # (global batch, steps, constant batch), ('batch' | 'rows' | 'order', ...)
    self._last_order = None  # ((step, PRNG key, host batch), epoch order) at the end of the last call
    if self.strategy not in STRATEGIES:
      raise ValueError(f"unknown parallelism '{self.strategy}'; use one of {STRATEGIES}")
    self.num_local = len(self.devices)
    self.num_global = self.num_local * jax.process_count()
    if self.strategy == "shard_map":
      all_devices = [d for d in jax.devices() if d.process_index != jax.process_index()]
      all_devices = sorted(all_devices + list(self.devices), key=lambda d: (d.process_index, d.id))
      self.mesh = Mesh(np.array(all_devices).reshape(jax.process_count(), self.num_local), MESH_AXES)

  @property
  def axis_name(self):
    return axis_name(self.strategy)

  def put_state(self, state: GANState) -> GANState:
    if self.strategy == "shard_map":
      return jax.device_put(state, NamedSharding(self.mesh, P()))
    # The mesh axis named as the pmap axis: the sharding pmap returns, so the second call hits the
    # compilation cache instead of compiling again.
    return flax.jax_utils.replicate(state, self.devices, axis_name=_PMAP_AXIS)

  def get_state(self, state: GANState) -> GANState:
    """One copy of a placed state, usable outside the train function (sampling, checkpoints)."""
    if self.strategy == "shard_map":
      return state
    return jax.tree.map(lambda x: x[0], state)

  def put_data(self, images: np.ndarray, labels: np.ndarray):
    """This host's shard of the dataset onto its devices (every device keeps the whole shard)."""
    if self.strategy == "shard_map":
      sharding = NamedSharding(self.mesh, P("hosts"))
      return tuple(jax.make_array_from_process_local_data(sharding, x[None]) for x in (images, labels))
    return flax.jax_utils.replicate((images, labels), self.devices, axis_name=_PMAP_AXIS)

  @property
  def fuses_steps(self) -> bool:
    """Whether a call runs its steps as one compiled loop. Not on CPU, where convolutions inside loops
    run without XLA's fast kernels (train.convolutions_slow_in_control_flow): there each step is its own
    compiled program, called from a host loop (a dispatch costs microseconds, a step 100s of ms)."""
    if self.fuse_steps is not None:
      return self.fuse_steps
    return self.devices[0].platform != "cpu"

  def train_function(self, *, global_batch: int, steps: int, constant_batch: bool = False) -> Callable:
    """f(state, images, labels, should_stop=None) -> (state, metrics of shape (n,)); the state is donated.

    `global_batch` is the batch of one D update; a step reads state.settings.d_steps of them. The epoch's
    order stays on the devices from call to call (and is computed afresh for a state at another step).
    n is `steps`, or fewer where the call is a host loop (`fuses_steps` False) and `should_stop()` turned
    true after step n: a stop request then waits for one step, not a whole call. Only for one process
    (the hosts of a multi-host run would stop at different steps).
    """
    host_batch = global_batch // self.num_global * self.num_local

    def run_steps(state, images, labels, should_stop: Optional[Callable[[], bool]] = None):
      host_state = self.get_state(state)
      step = int(host_state.step)
      run = (np.asarray(host_state.key).tobytes(), host_batch)  # the base key never changes in a run
      order = self._carried_order(state, (step,) + run, images, host_batch)
      if self.fuses_steps:
        state, order, metrics = self._compile(global_batch, steps, constant_batch)(state, order, images, labels)
      else:
        # The rows of a step are drawn by a program of their own, and the step is the streamed input's
        # program: one train-step program per run whichever the input path.
        draw_rows = self._compile_rows(global_batch, constant_batch, state.settings.d_steps)
        def one_step(carry, regularize):
          state, order = carry
          order, step_images, step_labels = draw_rows(state.step, state.key, order, images, labels)
          state, metrics = self._compile_batch_step(global_batch, regularize)(state, step_images, step_labels)
          return (state, order), metrics
        (state, order), metrics = _host_loop((state, order), state.settings, step, steps, one_step,
                                             should_stop)
      self._last_order = ((step + len(metrics["healthy"]),) + run, order)
      return state, metrics

    return run_steps

  def batch_placer(self, global_batch: int) -> Callable[[dict], dict]:
    """f(host batch) -> the batch on the devices, for streamed input (gan_jax.data.streaming).

    A host batch holds the d_steps host batches of a step in turn; device i of the host gets rows
    [i * local_batch, (i + 1) * local_batch) of each, as _per_device_steps reads them on the in-memory
    path, so both paths give every D update the same global batch on any number of devices.
    """
    local_batch = global_batch // self.num_global
    if self.strategy == "shard_map":
      sharding = NamedSharding(self.mesh, P(MESH_AXES))
    else:
      sharding = NamedSharding(Mesh(np.array(self.devices), (_PMAP_AXIS,)), P(_PMAP_AXIS))

    def place(batch: dict) -> dict:
      placed = {}
      for name, rows in batch.items():
        rows = np.asarray(rows)
        per_device = rows.reshape((-1, self.num_local, local_batch) + rows.shape[1:]).swapaxes(0, 1)
        if self.strategy == "shard_map":
          placed[name] = jax.make_array_from_process_local_data(
              sharding, per_device.reshape((-1,) + rows.shape[1:]))
        else:
          placed[name] = jax.device_put(per_device.reshape((self.num_local, -1) + rows.shape[1:]), sharding)
      return placed

    return place

  def streaming_train_function(self, *, global_batch: int) -> Callable:
    """f(state, batches, steps, should_stop=None) -> (state, metrics of shape (n,)) for streamed input:
    each step takes the next batch of `batches` (placed by batch_placer). Each step is its own compiled
    call, whatever the backend: the input comes from the host, and calls are dispatched asynchronously
    except on CPU, where `should_stop` is checked after every step as in train_function."""

    def run_steps(state, batches, steps: int, should_stop: Optional[Callable[[], bool]] = None):
      step = int(self.get_state(state).step)

      def one_step(state, regularize):
        batch = next(batches)
        return self._compile_batch_step(global_batch, regularize)(state, batch["image"], batch["label"])

      return _host_loop(state, state.settings, step, steps, one_step,
                        None if self.fuses_steps else should_stop)

    return run_steps

  def _compile_batch_step(self, global_batch: int, regularize: Optional[bool]) -> Callable:
    """The compiled f(state, images, labels) -> (state, metrics of shape (1,)) of streamed input."""
    cache_key = ("batch", global_batch, regularize)
    if cache_key in self._compiled:
      return self._compiled[cache_key]

    def per_device(state, images, labels):
      batch = {"image": in_memory.to_model_range(images), "label": labels}
      state, metrics = train_step(state, batch, step_key(state.key, state.step), regularize)
      return state, jax.tree.map(lambda m: m[None], metrics)

    if self.strategy == "shard_map":
      function = jax.jit(jax.shard_map(per_device, mesh=self.mesh, in_specs=(P(), P(MESH_AXES), P(MESH_AXES)),
                                       out_specs=(P(), P()), check_vma=False), donate_argnums=(0,))
    else:
      pmapped = jax.pmap(per_device, axis_name=_PMAP_AXIS, devices=self.devices, donate_argnums=(0,))
      function = lambda *args: _first_metrics(pmapped(*args))
    self._compiled[cache_key] = function
    return function

  def _carried_order(self, state: GANState, position, images, host_batch: int):
    """The order the previous call ended in if it ended at `position` (step, key, host batch) of the
    same run; else computed afresh."""
    if self._last_order is not None and self._last_order[0] == position:
      return self._last_order[1]
    cache_key = ("order", host_batch)
    if cache_key not in self._compiled:
      per_device = functools.partial(_per_device_order, host_batch=host_batch)
      if self.strategy == "shard_map":
        self._compiled[cache_key] = jax.jit(jax.shard_map(
            lambda state, images: per_device(state, images[0])[None], mesh=self.mesh,
            in_specs=(P(), P("hosts")), out_specs=P("hosts"), check_vma=False))
      else:
        self._compiled[cache_key] = jax.pmap(per_device, axis_name=_PMAP_AXIS, devices=self.devices)
    return self._compiled[cache_key](state, images)

  def _rows_settings(self, global_batch: int, constant_batch: bool) -> dict:
    local_batch = global_batch // self.num_global
    return dict(local_batch=local_batch, host_batch=local_batch * self.num_local,
                devices_per_host=self.num_local, constant_batch=constant_batch)

  def _compile_rows(self, global_batch: int, constant_batch: bool, d_steps: int) -> Callable:
    """The compiled f(step, key, order, images, labels) -> (order, images, labels) of the host loop: the
    rows of a step on each device, in the layout of batch_placer's batches."""
    cache_key = ("rows", global_batch, constant_batch, d_steps)
    if cache_key in self._compiled:
      return self._compiled[cache_key]
    per_device = functools.partial(_device_rows, axis_name=self.axis_name, d_steps=d_steps,
                                   **self._rows_settings(global_batch, constant_batch))
    if self.strategy == "shard_map":
      def on_host_shard(step, key, order, images, labels):
        order, step_images, step_labels = per_device(step, key, order[0], images[0], labels[0])
        return order[None], step_images, step_labels
      # out_shardings as batch_placer's, spelt the same: jax simplifies the shard_map's to P("devices")
      # on one host, and the train step, compiled for other input shardings, would compile again.
      batch_sharding = NamedSharding(self.mesh, P(MESH_AXES))
      function = jax.jit(jax.shard_map(on_host_shard, mesh=self.mesh,
                                       in_specs=(P(), P(), P("hosts"), P("hosts"), P("hosts")),
                                       out_specs=(P("hosts"), P(MESH_AXES), P(MESH_AXES)), check_vma=False),
                         out_shardings=(NamedSharding(self.mesh, P("hosts")), batch_sharding, batch_sharding),
                         donate_argnums=(2,))
    else:
      function = jax.pmap(per_device, axis_name=_PMAP_AXIS, devices=self.devices, donate_argnums=(2,))
    self._compiled[cache_key] = function
    return function

  def _compile(self, global_batch: int, steps: int, constant_batch: bool) -> Callable:
    """The compiled f(state, order, images, labels) -> (state, order, metrics) of fused steps."""
    cache_key = (global_batch, steps, constant_batch)
    if cache_key in self._compiled:
      return self._compiled[cache_key]
    per_device = functools.partial(_per_device_steps, steps=steps,
                                   **self._rows_settings(global_batch, constant_batch))
    if self.strategy == "shard_map":
      def on_host_shard(state, order, images, labels):
        state, order, metrics = per_device(state, order[0], images[0], labels[0])
        return state, order[None], metrics
      # check_vma=False: replication of the outputs is guaranteed by the pmeans in train_step.
      sharded = jax.shard_map(on_host_shard, mesh=self.mesh,
                              in_specs=(P(), P("hosts"), P("hosts"), P("hosts")),
                              out_specs=(P(), P("hosts"), P()), check_vma=False)
      function = jax.jit(sharded, donate_argnums=(0, 1))
    else:
      pmapped = jax.pmap(per_device, axis_name=_PMAP_AXIS, devices=self.devices, donate_argnums=(0, 1))
      function = lambda *args: _first_metrics(pmapped(*args))
    self._compiled[cache_key] = function
    return function


class _InMemoryInput:
  """A split kept whole on the devices: the compiled steps draw their batches there."""
  kind = "in memory"

  def __init__(self, dp: DataParallel, dataset, global_batch: int):
    self._dp, self._global_batch = dp, global_batch
    self._images, self._labels = dp.put_data(dataset.images, dataset.labels)
    self._functions = {}  # number of fused steps -> compiled function

  def run(self, state, steps: int, should_stop: Callable[[], bool]):
    if steps not in self._functions:
      self._functions[steps] = self._dp.train_function(global_batch=self._global_batch, steps=steps)
    return self._functions[steps](state, self._images, self._labels, should_stop)

  def position(self) -> Optional[dict]:
    return None  # a function of the step

  def close(self) -> None:
    pass


class _StreamedInput:
  """Batches streamed from the split's files (gan_jax.data.streaming), placed from the host."""
  kind = "streamed"

  def __init__(self, dp: DataParallel, dataset, global_batch: int, host_rows: int, seed: int,
               position: Optional[dict]):
    self._batches = dataset.batches(host_rows, seed, dp.batch_placer(global_batch), position)
    self._function = dp.streaming_train_function(global_batch=global_batch)

  def run(self, state, steps: int, should_stop: Callable[[], bool]):
    return self._function(state, self._batches, steps, should_stop)

  def position(self) -> Optional[dict]:
    return self._batches.position

  def close(self) -> None:
    self._batches.close()  # stops its threads and worker processes


def training_input(dp: DataParallel, dataset, *, global_batch: int, d_steps: int, seed: int,
                   saved_position: Callable[[], Optional[dict]], start_step: int):
  """The trainer's one object for either input path: run(state, steps, should_stop) -> (state,
  metrics), position() (what a checkpoint saves of the data's state), close() and kind.

  `dataset.streams` says which path: a data.ImageDataset is kept on the devices, a
  data.streaming.StreamingDataset streamed from `saved_position()` where a resumed run has one.
  """
  if not dataset.streams:
    return _InMemoryInput(dp, dataset, global_batch)
  position = saved_position() if start_step else None
  if start_step and position is None:
    logging.warning("The checkpoint of step %d has no streaming data position (it was written while the "
                    "data was kept in memory): the stream starts a fresh order.", start_step)
  host_rows = global_batch // jax.process_count() * d_steps
  return _StreamedInput(dp, dataset, global_batch, host_rows, seed, position)


def _first_metrics(outputs):
  *rest, metrics = outputs
  return (*rest, jax.tree.map(lambda x: x[0], metrics))


def _host_loop(carry, settings, step: int, steps: int, one_step: Callable, should_stop):
  """Runs one_step(carry, regularize) -> (carry, metrics) `steps` times from `step`, the lazy penalty
  decided on the host (a static argument: fast on CPU); after each step, if `should_stop()` turned true,
  stops there (only for one process: the hosts of a multi-host run would stop at different steps).
  Returns the carry and the steps' metrics, concatenated."""
  per_step = []
  for i in range(steps):
    carry, metrics = one_step(carry, lazy_penalty_due(settings, step + i))
    per_step.append(metrics)
    if should_stop is not None and jax.process_count() == 1:
      jax.block_until_ready(metrics)  # the request is seen after this step, not after the call
      if should_stop():
        break
  return carry, jax.tree.map(lambda *m: jnp.concatenate(m), *per_step)
