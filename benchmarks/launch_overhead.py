"""Host time per kernel launch of the Numba face on a GPU: python -m benchmarks.launch_overhead

Every op runs at a tiny shape, so the GPU finishes each kernel long before the next is issued and
the host's own cost is what is measured: argument checks, output allocation, importing CuPy arrays
(as_cuda_array, sync=False), Numba's dispatch and the launch. Calls are issued back to back with no
synchronization in between (one at the end), timed with time.perf_counter, after a warm-up call that
compiles each kernel. A CuPy elementwise kernel launched the same way is the baseline of the same
run. Prints one line per op: kernels per call, µs per call, µs per kernel launch.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Overhead:
    name: str
    launches_per_call: int
    microseconds_per_call: float

    @property
    def microseconds_per_launch(self) -> float:
        return self.microseconds_per_call / max(self.launches_per_call, 1)


def tiny_calls(face) -> dict[str, Callable[[], object]]:
    """One closure per op, its inputs already on the device."""
    rng = np.random.default_rng(0)

    def device(*shape, dtype=np.float32):
        return face.to_device(rng.standard_normal(shape).astype(dtype))

    x, w, b = device(1, 2, 9, 9), device(2, 2, 3, 3), device(2)  # 81 positions: dw splits its sum
    y = face.conv2d_forward(x, w, b, 1, 1, 1)
    fc_x, fc_w, fc_b, fc_dy = device(2, 16), device(4, 16), device(4), device(2, 4)
    pooled, argmax = face.maxpool_forward(x, 3, 2)
    lrn_y, lrn_scale = face.lrn_forward(x)
    dropped, mask = face.dropout_forward(x, 0.5, 1, 2)
    logits = device(2, 10)
    labels = face.to_device(np.arange(2, dtype=np.int32))
    _, probs = face.softmax_xent_forward(logits, labels)
    velocity = face.to_device(np.zeros((2, 2, 3, 3), np.float32))
    grad = device(2, 2, 3, 3)
    return {
        "conv2d_forward": lambda: face.conv2d_forward(x, w, b, 1, 1, 1),
        "conv2d_backward": lambda: face.conv2d_backward(y, x, w, 1, 1, 1),
        "linear_forward": lambda: face.linear_forward(fc_x, fc_w, fc_b),
        "linear_backward": lambda: face.linear_backward(fc_dy, fc_x, fc_w),
        "relu_forward": lambda: face.relu_forward(x),
        "relu_backward": lambda: face.relu_backward(x, x),
        "lrn_forward": lambda: face.lrn_forward(x),
        "lrn_backward": lambda: face.lrn_backward(x, x, lrn_y, lrn_scale),
        "maxpool_forward": lambda: face.maxpool_forward(x, 3, 2),
        "maxpool_backward": lambda: face.maxpool_backward(pooled, argmax, x.shape, 3, 2),
        "dropout_forward": lambda: face.dropout_forward(x, 0.5, 1, 2),
        "dropout_backward": lambda: face.dropout_backward(dropped, mask, 0.5),
        "softmax_xent_forward": lambda: face.softmax_xent_forward(logits, labels),
        "softmax_xent_backward": lambda: face.softmax_xent_backward(probs, labels),
        "sgd_update": lambda: face.sgd_update(w, grad, velocity, 0.01),
    }


def measure(repeats: int = 200) -> list[Overhead]:
    import cupy

    import kernels.numba as face
    from kernels.numba import runtime

    if face.MODE != "gpu":
        raise RuntimeError(f"launch overhead is measured on a GPU; kernels.numba runs in mode {face.MODE!r}")
    results = []
    stream = cupy.cuda.get_current_stream()
    baseline_input = cupy.zeros(8, cupy.float32)
    cupy.negative(baseline_input)  # compiles CuPy's kernel
    stream.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        cupy.negative(baseline_input)
    stream.synchronize()
    results.append(Overhead("cupy elementwise (baseline)", 1, (time.perf_counter() - start) / repeats * 1e6))

    for name, call in tiny_calls(face).items():
        call()  # compiles every kernel the op uses
        stream.synchronize()
        before = runtime.launch_count()
        call()
        launches = runtime.launch_count() - before
        stream.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        stream.synchronize()
        results.append(Overhead(name, launches, (time.perf_counter() - start) / repeats * 1e6))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.launch_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"{'op':30} {'kernels':>7} {'us/call':>9} {'us/launch':>10}")
    for row in measure(args.repeats):
        print(f"{row.name:30} {row.launches_per_call:7d} {row.microseconds_per_call:9.1f} "
              f"{row.microseconds_per_launch:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
