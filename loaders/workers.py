"""Prefetching: worker processes assemble batches in shared memory ahead of the consumer.

The consumer (the training loop's process) hands each worker a (batch number, slot, sample indices)
task. The worker decodes those samples into uint8 (R, R, 3) squares and then, by the batch's
Recipe, either
- leaves the squares in the slot (the gpu device: the consumer ships them to the device, where a
  kernel crops, mirrors, lights and normalizes them), or
- runs those same steps in NumPy and leaves float32 outputs in the slot (the cpu and sim devices:
  the work is spread over the workers instead of falling on the consumer),
and answers with which samples it decoded and which it skipped and why. A slot is recycled once the
consumer has copied its batch out, so `depth` batches are in flight at once. Random choices depend
on (seed, epoch, sample index) alone, so which worker makes a batch never changes it.

Workers start from a fork server (a clean process that has imported NumPy and Pillow), not by
forking the consumer, which may hold CUDA state and threads that a fork would copy half-way. As
with any multiprocessing start method but fork, a script that makes a loader with workers must
guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from loaders import augment
from loaders.decode import DecodeFailure

_PRELOAD = ["loaders.workers", "loaders.dataset", "numpy", "PIL.Image"]


def process_context():
    """The multiprocessing context every process pool of the loaders uses."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


@dataclass(frozen=True)
class Recipe:
    """How every batch of one loader is made from its sample indices (picklable, sent to workers)."""

    split: object
    resize_size: int
    input_size: int
    train: bool
    seed: int
    epoch: int
    ten_crop: bool
    floats: bool  # True: float32 outputs (cpu/sim); False: uint8 squares for the device
    batch_size: int

    @property
    def outputs_per_batch(self) -> int:
        return self.batch_size * (10 if self.ten_crop else 1)

    def plan(self, decoded: np.ndarray) -> augment.CropPlan:
        if self.train:
            return augment.train_plan(decoded, self.seed, self.epoch, self.resize_size, self.input_size)
        return augment.eval_plan(len(decoded), self.resize_size, self.input_size, self.ten_crop)

    def slot_shape(self) -> tuple[tuple[int, ...], type]:
        if self.floats:
            return (self.outputs_per_batch, 3, self.input_size, self.input_size), np.float32
        return (self.batch_size, self.resize_size, self.resize_size, 3), np.uint8

    def squares(self) -> np.ndarray:
        return np.empty((self.batch_size, self.resize_size, self.resize_size, 3), dtype=np.uint8)

    def make(self, indices, slot: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, list, int]:
        """Decode samples `indices` into `squares` and, for float outputs, augment them into `slot`;
        returns (decoded indices, [(path, reason)] skipped, rows of `slot` filled)."""
        decoded, skipped = [], []
        for index in indices:
            index = int(index)
            try:
                squares[len(decoded)] = self.split.decode(index, self.resize_size)
                decoded.append(index)
            except DecodeFailure as failure:
                skipped.append((self.split.describe(index), str(failure)))
        decoded = np.asarray(decoded, dtype=np.int64)
        if not self.floats or not len(decoded):
            return decoded, skipped, len(decoded)
        plan = self.plan(decoded)
        augment.apply_plan(squares[:len(decoded)], plan, slot[:len(plan)])
        return decoded, skipped, len(plan)


@dataclass
class RawBatch:
    """One batch as a source made it, in a slot of the source's memory.

    The consumer either copies what it needs out of `data` and calls release(), or calls take(),
    which hands over the float outputs themselves: the slot then stays with the batch until every
    array viewing it has been dropped (or take() copies, when the source is short of slots)."""

    number: int
    data: np.ndarray  # float32 (n, 3, S, S) outputs, or uint8 (m, R, R, 3) squares: a view of the slot
    indices: np.ndarray  # int64 (m,), dataset indices of the decoded samples, in batch order
    skipped: list  # [(path, reason)] of the samples that failed
    release: callable = field(repr=False, default=lambda: None)
    take: callable = field(repr=False, default=None)


class InlineSource:
    """workers=0: make each batch in the consumer's process when it is asked for."""

    def __init__(self, recipe: Recipe, batches: list[np.ndarray]):
        self.recipe, self.batches = recipe, batches
        self.squares = recipe.squares()
        self.cpu_seconds: dict[int, float] = {}

    def get(self, number: int) -> RawBatch:
        shape, dtype = self.recipe.slot_shape()
        # float outputs go straight into an array of their own, which the batch keeps (no copy)
        slot = np.empty(shape, dtype=dtype) if self.recipe.floats else self.squares
        decoded, skipped, rows = self.recipe.make(self.batches[number], slot, self.squares)
        data = slot[:rows]
        return RawBatch(number, data, decoded, skipped, take=lambda: data)

    def close(self) -> None:
        pass


def _worker_main(recipe: Recipe, worker: int, shared, slots: int, tasks, results, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the consumer, which stops us
    shape, dtype = recipe.slot_shape()
    buffer = np.frombuffer(shared, dtype=np.uint8).view(dtype).reshape(slots, *shape)
    squares = recipe.squares() if recipe.floats else None
    while True:
        task = tasks.get()
        if task is None or stop.is_set():
            return
        number, slot, indices = task
        try:
            decoded, skipped, rows = recipe.make(indices, buffer[slot], buffer[slot] if squares is None else squares)
            results.put((number, slot, decoded, skipped, rows, None, worker, time.process_time()))
        except Exception:  # a bug, not a bad file: hand it to the consumer to raise
            results.put((number, slot, None, None, 0, traceback.format_exc(), worker, time.process_time()))


class WorkerSource:
    """`workers` processes filling `depth` slots of shared memory; batches handed out in order.

    Each slot is its own NumPy array over its part of the shared memory, and every array a consumer
    derives from it (views, slices) references it, so sys.getrefcount tells when nothing outside
    this object still uses a slot that take() lent out: then the slot goes back to the workers.
    take() lends at most depth − 1 slots, so that the workers always have one to fill; past that it
    copies (a consumer that keeps every batch of an epoch costs copies, never a deadlock)."""

    POLL_SECONDS = 1.0

    def __init__(self, recipe: Recipe, batches: list[np.ndarray], workers: int, depth: int):
        context = process_context()
        self.batches = batches
        self.depth = max(1, min(depth, len(batches)))
        shape, dtype = recipe.slot_shape()
        slot_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.shared = context.RawArray("B", self.depth * slot_bytes)
        memory = memoryview(self.shared).cast("B")
        self.owners = [np.frombuffer(memory[i * slot_bytes:(i + 1) * slot_bytes], dtype=dtype)
                       for i in range(self.depth)]
        self.slots = [owner.reshape(shape) for owner in self.owners]
        # references to an owner that this object holds: the list, the slot's .base, getrefcount's argument
        self._own_references = sys.getrefcount(self.owners[0])
        self.tasks, self.results, self.stop = context.Queue(), context.Queue(), context.Event()
        self.processes = [
            context.Process(target=_worker_main, daemon=True, name=f"alexnet-cuda-loader-{i}",
                            args=(recipe, i, self.shared, self.depth, self.tasks, self.results, self.stop))
            for i in range(workers)
        ]
        for process in self.processes:
            process.start()
        self.ready: dict[int, tuple] = {}
        self.cpu_seconds: dict[int, float] = {}  # each worker's CPU time, as of its latest batch
        self.lent: set[int] = set()
        self.next_task = 0
        for slot in range(self.depth):
            self._submit(slot)

    def _submit(self, slot: int) -> None:
        if self.next_task < len(self.batches):
            self.tasks.put((self.next_task, slot, self.batches[self.next_task]))
            self.next_task += 1

    def _reclaim(self) -> None:
        """Give the workers back every lent slot that no array outside this object views any more."""
        for slot in sorted(self.lent):
            if sys.getrefcount(self.owners[slot]) <= self._own_references:
                self.lent.discard(slot)
                self._submit(slot)

    def get(self, number: int) -> RawBatch:
        self._reclaim()
        while number not in self.ready:
            try:
                result = self.results.get(timeout=self.POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode is not None]
                if dead:
                    raise RuntimeError(f"a data loader worker ({dead[0].name}) died with exit code "
                                       f"{dead[0].exitcode}; out of memory, or killed?") from None
                continue
            if result[5] is not None:
                raise RuntimeError(f"a data loader worker failed on batch {result[0]}:\n{result[5]}")
            self.ready[result[0]] = result
            self.cpu_seconds[result[6]] = result[7]
        _, slot, decoded, skipped, rows, *_ = self.ready.pop(number)
        data = self.slots[slot][:rows]

        def take():
            if len(self.lent) < self.depth - 1:
                self.lent.add(slot)
                return data
            copy = data.copy()
            self._submit(slot)
            return copy

        return RawBatch(number, data, decoded, skipped, release=lambda: self._submit(slot), take=take)

    def close(self) -> None:
        if not self.processes:
            return
        self.stop.set()  # workers drop the tasks still queued instead of decoding them
        for _ in self.processes:
            self.tasks.put(None)
        deadline = time.monotonic() + 5.0
        for process in self.processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join()
        for channel in (self.tasks, self.results):
            channel.close()
            channel.join_thread()
        # Drop the queues and the event now: their semaphores are released when they are collected.
        self.processes, self.tasks, self.results, self.stop = [], None, None, None
