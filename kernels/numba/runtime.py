"""Kernels, arrays and launches of the Numba face in this process's mode (see kernels.numba.mode).

Every kernel of every version is declared once, at import, by its module: `declare(op, version,
kernel, signature)` with the launch signature its launcher uses, as kernels.cuda.runtime.declare
does for the CUDA C face; `targets()` lists them for the compile checks and `alexnet-cuda inspect`.
Launchers allocate outputs with `empty`, check arguments against `SPEC` and launch with `launch`;
kernels never see which mode they run in.

On a GPU, a CuPy array reaches a kernel through `numba.cuda.as_cuda_array(array, sync=False)`: the
default import (and handing CuPy arrays to a kernel directly) synchronizes the host with the array's
stream when numba's CUDA_ARRAY_INTERFACE_SYNC is on, once per array per launch. Work here is
ordered by the stream instead: every kernel launches on CuPy's current stream, the stream on which
CuPy also produced the inputs, so a launch returns at once and nothing waits for the GPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from kernels import FaceUnavailable
from kernels.contract import FLOAT32, ArraySpec
from kernels.numba.mode import COMPILE_ONLY_ENV, MODE
from kernels.testing import new_output, poisoned_outputs  # noqa: F401 (poisoned_outputs: part of this module's API)


@dataclass(frozen=True)
class KernelTarget:
    op: str  # contract op name, or e.g. "augment" for kernels outside the contract
    version: int
    kernel: str  # the Python name of the @cuda.jit function
    dispatcher: object  # the @cuda.jit dispatcher
    signature: str  # e.g. "void(float32[:, :, :, ::1], float32[:, :, :, ::1], int32)"


def python_function(dispatcher):
    """The Python function behind a @cuda.jit dispatcher (real target or simulator)."""
    function = getattr(dispatcher, "py_func", None)
    return function if function is not None else dispatcher.fn


def kernel_target(op: str, version: int, dispatcher, signature: str) -> KernelTarget:
    """A KernelTarget named after the dispatcher's Python function."""
    return KernelTarget(op, version, python_function(dispatcher).__name__, dispatcher, signature)


_launches = 0
_threads = 0
_skipping = False
_recorders: list[list] = []
_TARGETS: list[KernelTarget] = []


def declare(op: str, version: int, kernel, signature: str) -> KernelTarget:
    """Register `kernel` (a @cuda.jit dispatcher) as one of `op`'s version `version` with the signature
    its launcher passes, e.g. "void(float32[::1], float32[::1])"."""
    target = kernel_target(op, version, kernel, signature)
    _TARGETS.append(target)
    return target


def targets() -> list[KernelTarget]:
    """Every declared kernel of every version, in declaration order."""
    return list(_TARGETS)


def launch_count() -> int:
    """Kernel launches issued through `launch` in this process so far (for overhead reports and tests)."""
    return _launches


def threads_launched() -> int:
    """CUDA threads (grid size times block size) of every launch so far: the simulator's unit of work."""
    return _threads


@contextlib.contextmanager
def skipped_launches():
    """In the simulator, launches within the block are counted (launch_count, threads_launched) but
    not run, so the work of a whole training step can be measured in well under a second; the
    outputs hold whatever their allocation held. A GPU or the compile-only mode runs them as usual."""
    global _skipping
    previous, _skipping = _skipping, True
    try:
        yield
    finally:
        _skipping = previous


@contextlib.contextmanager
def recorded_launches():
    """Within the block every launch also appends (kernel, arguments) to the list this yields, so a
    test can check that launchers pass exactly the types their compile targets declare."""
    record: list = []
    _recorders.append(record)
    try:
        yield record
    finally:
        _recorders.remove(record)


def _size(dims) -> int:
    size = 1
    for dim in dims if isinstance(dims, tuple | list) else (dims,):
        size *= int(dim)
    return size


def _count(kernel, grid, block, args) -> None:
    global _launches, _threads
    _launches += 1
    _threads += _size(grid) * _size(block)
    for record in _recorders:
        record.append((kernel, args))


if MODE == "gpu":
    import cupy

    from kernels.numba.compiler import cuda

    xp = cupy
    SPEC = ArraySpec(cupy.ndarray, FLOAT32, "CuPy")
    _streams: dict[int, object] = {}

    def to_device(array):
        return cupy.asarray(np.ascontiguousarray(array))

    def to_host(array):
        return cupy.asnumpy(array)

    def current_stream():
        """Numba's handle on CuPy's current stream (the legacy default stream when that is CuPy's null
        stream), made once per stream pointer."""
        pointer = cupy.cuda.get_current_stream().ptr
        stream = _streams.get(pointer)
        if stream is None:
            stream = cuda.external_stream(pointer) if pointer else cuda.legacy_default_stream()
            _streams[pointer] = stream
        return stream

    def _kernel_argument(value):
        return cuda.as_cuda_array(value, sync=False) if isinstance(value, cupy.ndarray) else value

    def launch(kernel, grid, block, *args):
        _count(kernel, grid, block, args)
        kernel[grid, block, current_stream()](*(_kernel_argument(a) for a in args))

    def empty(shape, dtype=np.float32):
        return new_output(cupy, shape, dtype)

    def check_labels(labels, classes):
        """Label values are not checked on a GPU: reading them back would synchronize the host."""

elif MODE == "simulator":
    from kernels.contract import check_label_range

    xp = np
    SPEC = ArraySpec(np.ndarray, FLOAT32, "NumPy")

    def to_device(array):
        """A C-contiguous copy, as a transfer to a GPU would make: writing to it in place (sgd_update)
        leaves the caller's array alone."""
        return np.array(array, order="C", copy=True)

    def to_host(array):
        return np.asarray(array)

    def launch(kernel, grid, block, *args):
        _count(kernel, grid, block, args)
        if not _skipping:
            kernel[grid, block](*args)

    def empty(shape, dtype=np.float32):
        return new_output(np, shape, dtype)

    def check_labels(labels, classes):
        """On the host the labels cost nothing to check, so the simulator checks them as the reference
        does (a kernel would otherwise read out of bounds)."""
        if labels.size:
            check_label_range(int(labels.min()), int(labels.max()), classes)

else:  # "compile": the real CUDA target without a GPU; kernels compile but cannot run
    xp = np
    SPEC = ArraySpec(np.ndarray, FLOAT32, "NumPy")
    _WHY = (
        f"the 'numba' face was imported with {COMPILE_ONLY_ENV}=1 on a machine without a CUDA GPU: its "
        "kernels can be compiled (kernels.toolchain.numba_compile) but not run. Unset it to run the kernels "
        "in Numba's CUDA simulator."
    )

    def _unavailable(*args, **kwargs):
        raise FaceUnavailable(_WHY)

    to_device = to_host = launch = empty = check_labels = _unavailable

