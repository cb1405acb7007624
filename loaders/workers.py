"""Prefetching: worker processes decode batches into slots of shared memory ahead of the consumer.

The consumer (the training loop's process) hands each worker a (batch number, slot, sample indices)
task; the worker decodes those samples into the slot as uint8 (R, R, 3) squares and answers with
which samples it decoded and which it skipped and why. Slots are recycled as soon as the consumer
has turned a batch into its output arrays, so `depth` batches are in flight at once. Random
choices are not made here (they depend on (seed, epoch, index) alone and are drawn by the
consumer), so which worker decodes a batch never changes the result.

Workers start from a fork server (a clean process that has imported NumPy and Pillow), not by
forking the consumer, which may hold CUDA state and threads that a fork would copy half-way.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from loaders.decode import DecodeFailure

_PRELOAD = ["loaders.workers", "loaders.dataset", "numpy", "PIL.Image"]


def process_context():
    """The multiprocessing context every process pool of the loaders uses."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


@dataclass
class RawBatch:
    """Decoded uint8 images of one batch, still in their slot until release() is called."""

    number: int
    images: np.ndarray  # uint8 (m, R, R, 3), a view of the slot
    indices: np.ndarray  # int64 (m,), dataset indices of the decoded samples, in batch order
    skipped: list  # [(path, reason)] of the samples that failed
    release: callable = field(repr=False, default=lambda: None)


def decode_into(split, indices, size: int, out: np.ndarray) -> tuple[np.ndarray, list]:
    """Decode samples `indices` of `split` into consecutive rows of `out`; (decoded indices, skips)."""
    decoded, skipped = [], []
    for index in indices:
        index = int(index)
        try:
            out[len(decoded)] = split.decode(index, size)
            decoded.append(index)
        except DecodeFailure as failure:
            skipped.append((split.describe(index), str(failure)))
    return np.asarray(decoded, dtype=np.int64), skipped


class InlineSource:
    """workers=0: decode each batch in the consumer's process when it is asked for."""

    def __init__(self, split, batches: list[np.ndarray], size: int, slot_images: int):
        self.split, self.batches, self.size = split, batches, size
        self.buffer = np.empty((slot_images, size, size, 3), dtype=np.uint8)

    def get(self, number: int) -> RawBatch:
        decoded, skipped = decode_into(self.split, self.batches[number], self.size, self.buffer)
        return RawBatch(number, self.buffer[:len(decoded)], decoded, skipped)

    def close(self) -> None:
        pass


def _worker_main(split, size: int, shared, slots: int, slot_images: int, tasks, results, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the consumer, which stops us
    buffer = np.frombuffer(shared, dtype=np.uint8).reshape(slots, slot_images, size, size, 3)
    while True:
        task = tasks.get()
        if task is None or stop.is_set():
            return
        number, slot, indices = task
        try:
            decoded, skipped = decode_into(split, indices, size, buffer[slot])
            results.put((number, slot, decoded, skipped, None))
        except Exception:  # a bug, not a bad file: hand it to the consumer to raise
            results.put((number, slot, None, None, traceback.format_exc()))


class WorkerSource:
    """`workers` processes filling `depth` slots of shared memory, batches handed out in order."""

    POLL_SECONDS = 1.0

    def __init__(self, split, batches: list[np.ndarray], size: int, slot_images: int, workers: int, depth: int):
        context = process_context()
        self.batches, self.size = batches, size
        self.depth = max(1, min(depth, len(batches)))
        slot_bytes = slot_images * size * size * 3
        self.shared = context.RawArray("B", self.depth * slot_bytes)
        self.buffer = np.frombuffer(self.shared, dtype=np.uint8).reshape(self.depth, slot_images, size, size, 3)
        self.tasks, self.results, self.stop = context.Queue(), context.Queue(), context.Event()
        self.processes = [
            context.Process(target=_worker_main, daemon=True, name=f"alexnet-cuda-loader-{i}",
                            args=(split, size, self.shared, self.depth, slot_images, self.tasks, self.results,
                                  self.stop))
            for i in range(workers)
        ]
        for process in self.processes:
            process.start()
        self.ready: dict[int, tuple] = {}
        self.next_task = 0
        for slot in range(self.depth):
            self._submit(slot)

    def _submit(self, slot: int) -> None:
        if self.next_task < len(self.batches):
            self.tasks.put((self.next_task, slot, self.batches[self.next_task]))
            self.next_task += 1

    def get(self, number: int) -> RawBatch:
        while number not in self.ready:
            try:
                result = self.results.get(timeout=self.POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode is not None]
                if dead:
                    raise RuntimeError(f"a data loader worker ({dead[0].name}) died with exit code "
                                       f"{dead[0].exitcode}; out of memory, or killed?") from None
                continue
            if result[4] is not None:
                raise RuntimeError(f"a data loader worker failed on batch {result[0]}:\n{result[4]}")
            self.ready[result[0]] = result
        _, slot, decoded, skipped, _ = self.ready.pop(number)
        return RawBatch(number, self.buffer[slot, :len(decoded)], decoded, skipped,
                        release=lambda: self._submit(slot))

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
        self.processes = []
