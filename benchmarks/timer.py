"""Timing: CUDA events on a GPU, the host clock for NumPy.

On a GPU (`time_gpu`):
- warm-up first, so compilation, module loading and handle creation stay out of the numbers;
- the calls cycle through several input sets in their own memory (`sets`), together larger than
  twice the L2 cache, so a kernel cannot be served from L2 by the previous call's inputs; the last
  outputs are kept alive as long as their inputs, so the memory pool cannot hand a kernel the same
  output buffer (hot in L2) call after call;
- each batch of calls sits between two CUDA events on the current stream, and before the first
  event a spin kernel keeps the GPU busy while the host queues the batch: the events then measure
  the kernels back to back, not the Python launch overhead between them. That overhead is
  reported separately as host time per call; where it exceeds the GPU time, a training step that
  launches one kernel after another is launch-bound, not kernel-bound;
- the median over batches is the result, with the spread (max − min)/median as a noise figure: a
  difference between two versions smaller than their spread is noise.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

SPIN_SOURCE = r"""
extern "C" __global__ void spin(unsigned long long nanoseconds) {
    // One thread sleeps on the GPU's global timer, so that launches queued behind it start back
    // to back once it ends.
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        __nanosleep(1000);
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < nanoseconds);
}
"""

MAX_SPIN_SECONDS = 0.05


@dataclass(frozen=True)
class Timing:
    seconds: float  # median time of one call
    spread: float  # (max − min) / median over the batches
    calls: int  # timed calls in all
    batches: int
    host_seconds: float  # host time to issue one call (GPU) or the same as seconds (host timing)
    sets: int  # input sets rotated through
    best_seconds: float = 0.0  # the fastest batch's (or call's) time per call: what a ceiling reports

    def as_dict(self) -> dict:
        return {"ms": self.seconds * 1e3, "best_ms": self.best_seconds * 1e3, "spread": self.spread,
                "calls": self.calls, "batches": self.batches, "host_ms": self.host_seconds * 1e3, "sets": self.sets}


_spin_kernel = None


def _spin(seconds: float) -> None:
    global _spin_kernel
    import cupy
    import numpy as np

    if _spin_kernel is None:
        _spin_kernel = cupy.RawKernel(SPIN_SOURCE, "spin", options=("--std=c++17",))
    _spin_kernel((1,), (1,), (np.uint64(int(min(seconds, MAX_SPIN_SECONDS) * 1e9)),))


def time_gpu(run, sets, *, batch_seconds: float = 2e-3, batches: int = 7, warmup: int = 3,
             max_calls_per_batch: int = 1000) -> Timing:
    """Time `run(inputs)` over `sets` (a list of input sets) with CUDA events; see the module doc."""
    import cupy

    ring = [None] * len(sets)  # keeps each set's last outputs alive (see the module doc)

    def issue(calls: int, start: int) -> float:
        began = time.perf_counter()
        for i in range(start, start + calls):
            slot = i % len(sets)
            ring[slot] = None
            ring[slot] = run(sets[slot])
        return time.perf_counter() - began

    for _ in range(max(warmup, 1)):
        issue(len(sets) if len(sets) <= 8 else 8, 0)
    cupy.cuda.Device().synchronize()

    start_event, end_event = cupy.cuda.Event(), cupy.cuda.Event()
    # A pilot batch to size the real ones: one call's GPU and host time.
    start_event.record()
    pilot_host = issue(2, 0) / 2
    end_event.record()
    end_event.synchronize()
    pilot_gpu = max(cupy.cuda.get_elapsed_time(start_event, end_event) * 1e-3 / 2, 1e-7)
    calls = int(min(max(batch_seconds // pilot_gpu, 1), max_calls_per_batch))

    per_call, host_per_call, position = [], [], 0
    for _ in range(batches):
        _spin(1.5 * calls * max([pilot_host, *host_per_call]) + 2e-4)
        start_event.record()
        host = issue(calls, position)
        end_event.record()
        end_event.synchronize()
        position += calls
        per_call.append(cupy.cuda.get_elapsed_time(start_event, end_event) * 1e-3 / calls)
        host_per_call.append(host / calls)
    return _summarize(per_call, calls * batches, batches, statistics.median(host_per_call), len(sets))


def time_host(run, sets, *, min_seconds: float = 1.0, min_repeats: int = 3, max_repeats: int = 50,
              warmup: int = 1) -> Timing:
    """Time `run(inputs)` on the host clock: each call separately, at least `min_repeats` calls and
    `min_seconds` in all (at most `max_repeats` calls); the median call is the result."""
    for i in range(warmup):
        run(sets[i % len(sets)])
    times: list[float] = []
    while len(times) < max_repeats and (len(times) < min_repeats or sum(times) < min_seconds):
        inputs = sets[len(times) % len(sets)]
        began = time.perf_counter()
        run(inputs)
        times.append(time.perf_counter() - began)
    median = statistics.median(times)
    return _summarize(times, len(times), len(times), median, len(sets))


def _summarize(per_call, calls, batches, host, sets) -> Timing:
    median = statistics.median(per_call)
    spread = (max(per_call) - min(per_call)) / median if median > 0 else 0.0
    return Timing(median, spread, calls, batches, host, sets, min(per_call))


def rotation_count(set_bytes: int, cache_bytes: int, *, memory_budget: int = 4 << 30, most: int = 256) -> int:
    """How many input sets to rotate through: together at least twice `cache_bytes`, at least 2 (so
    that consecutive calls never share inputs), at most `most` and within `memory_budget` where that
    still allows 2."""
    if set_bytes <= 0:
        return 2
    wanted = -(-2 * cache_bytes // set_bytes)
    affordable = max(memory_budget // set_bytes, 2)
    return int(max(2, min(wanted, most, affordable)))
