"""Where the `cuda` face's kernels come from and how they are launched.

Every kernel of every version is declared once, as a `CudaTarget` (op, version, role, .cu file,
name expression). A .cu file becomes one `cupy.RawModule` holding all the targets declared for it,
compiled on first use (never at import) and cached by CuPy per device; its source text is
`nvrtc.load_source` (headers inlined) and its options `nvrtc.FACE_OPTIONS`, the very text and
options the CI compile check builds.

Launchers call `launch(target, grid, block, args)`. It checks the launch shape, and turns any CUDA
error into a `CudaKernelError` naming the kernel. Launches are asynchronous, so a fault inside a
kernel would normally surface at the next synchronization, far from its cause; with
`checked_launches()` (or ALEXNET_CUDA_CHECK_LAUNCHES=1) every launch is followed by a
synchronization so the failing kernel is named. The tests run that way.

A backend supplies the array module, the argument spec, output allocation and the kernels: CuPy on
a GPU, or `kernels.toolchain.emulator`, which compiles the same .cu files with g++ and runs them on the
CPU for the tests in CI. Launchers ask `backend()` at call time, so they serve both unchanged.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernels.contract import FLOAT32, ArraySpec
from kernels.geometry import grid_1d
from kernels.testing import new_output, poisoned_outputs  # noqa: F401 (poisoned_outputs: part of this module's API)
from kernels.toolchain import nvrtc

INT32_LIMIT = 2**31 - 1
GRID_LIMITS = (2**31 - 1, 65535, 65535)
MAX_THREADS_PER_BLOCK = 1024


class CudaKernelError(RuntimeError):
    """A kernel of the `cuda` face failed to compile, launch or run; the message names it."""


@dataclass(frozen=True)
class CudaTarget:
    """One kernel of one version of an op: what compile_targets() lists and launchers launch."""

    op: str  # the contract function it serves
    version: int
    kernel: str  # its role within the version: "main", "dx", "dw", "db", "reduce", ...
    source: Path  # the .cu file
    name_expression: str  # an extern "C" name or a template instantiation, as CuPy's get_function takes
    threads: int | None = None  # threads per block where the tile fixes them (the occupancy report reads it)
    alternative: bool = False  # a tile geometry only the measured kernel choice launches (kernels/choice.py)

    def __str__(self) -> str:
        return f"{self.name_expression} ({self.op} v{self.version} {self.kernel}, {self.source.name})"


_TARGETS: list[CudaTarget] = []


def source_path(name: str) -> Path:
    return nvrtc.SOURCE_DIR / name


def declare(op: str, version: int, kernel: str, source: str, name_expression: str, threads: int | None = None,
            alternative: bool = False) -> CudaTarget:
    """Register a kernel; called at import by each launcher module, so the registry is complete
    before any module is compiled."""
    target = CudaTarget(op, version, kernel, source_path(source), name_expression, threads, alternative)
    if any(t.name_expression == target.name_expression and t.source == target.source for t in _TARGETS):
        raise ValueError(f"{target} is declared twice")
    _TARGETS.append(target)
    return target


def targets() -> list[CudaTarget]:
    return list(_TARGETS)


def targets_of(source: Path) -> list[CudaTarget]:
    source = Path(source).resolve()
    return [t for t in _TARGETS if t.source.resolve() == source]


class CupyBackend:
    """Kernels from cupy.RawModule on the current device; arrays are CuPy arrays."""

    name = "cupy"

    def __init__(self):
        import cupy

        self.xp = cupy
        self.spec = ArraySpec(cupy.ndarray, FLOAT32, "CuPy")
        self._modules: dict[Path, object] = {}
        self._functions: dict[tuple[int, CudaTarget], object] = {}

    def empty(self, shape, dtype=np.float32):
        return new_output(self.xp, shape, np.dtype(dtype))

    @staticmethod
    def pointer(array) -> int:
        return array.data.ptr

    def function(self, target: CudaTarget):
        key = (self.xp.cuda.runtime.getDevice(), target)  # a loaded kernel belongs to one device
        run = self._functions.get(key)
        if run is None:
            kernel = self._module(target.source).get_function(target.name_expression)  # compiles on first use

            def run(grid, block, args):
                kernel(grid, block, args)

            self._functions[key] = run
        return run

    def _module(self, source: Path):
        module = self._modules.get(source)
        if module is None:
            import cupy

            module = cupy.RawModule(
                code=nvrtc.load_source(source),
                options=nvrtc.FACE_OPTIONS,
                name_expressions=[t.name_expression for t in targets_of(source)],
            )
            self._modules[source] = module
        return module

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()


def empty(shape, dtype=np.float32):
    """A new array of the current backend's kind for a kernel to fill (poisoned in tests)."""
    return backend().empty(shape, dtype)


def spec() -> ArraySpec:
    return backend().spec


_backend = None
_checked = os.environ.get("ALEXNET_CUDA_CHECK_LAUNCHES") == "1"


def backend():
    """The backend launchers use now: CuPy unless a test chose another with `use_backend`."""
    global _backend
    if _backend is None:
        _backend = CupyBackend()
    return _backend


@contextlib.contextmanager
def use_backend(chosen):
    global _backend
    previous = _backend
    _backend = chosen
    try:
        yield chosen
    finally:
        _backend = previous


@contextlib.contextmanager
def checked_launches(enabled: bool = True):
    """Synchronize after every launch, so that a fault is reported against the kernel that made it."""
    global _checked
    previous = _checked
    _checked = enabled
    try:
        yield
    finally:
        _checked = previous


def launch(target: CudaTarget, grid, block, args) -> None:
    grid = _dims(grid)
    block = _dims(block)
    for axis, (size, limit) in enumerate(zip(grid, GRID_LIMITS, strict=True)):
        if not 1 <= size <= limit:
            raise CudaKernelError(f"{target}: grid {grid} has {size} blocks along axis {axis}; the limit is {limit}")
    if not 1 <= block[0] * block[1] * block[2] <= MAX_THREADS_PER_BLOCK:
        raise CudaKernelError(f"{target}: block {block} must hold 1 to {MAX_THREADS_PER_BLOCK} threads")
    chosen = backend()
    try:
        chosen.function(target)(grid, block, tuple(args))
        if _checked:
            chosen.synchronize()
    except CudaKernelError:
        raise
    except Exception as error:  # CuPy's CompileException, CUDADriverError, CUDARuntimeError, the emulator's
        raise CudaKernelError(
            f"{target} failed with grid {grid}, block {block}: {type(error).__name__}: {error}"
        ) from error


def _dims(dims) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in dims)
    return (*dims, *(1,) * (3 - len(dims)))


VECTOR_BYTES = 16  # a float4


def launch_elementwise(version: int, targets, count: int, arrays, scalars=()) -> None:
    """Launch an elementwise op's kernel over `count` elements: v1 a thread per element; v2 a thread
    per four elements (float4 loads and stores) when every array is 16-byte aligned, else v1, which
    gives the same result. targets: {version: CudaTarget}; the kernels take (*arrays, *scalars, count)."""
    pointer = backend().pointer
    if version == 2 and all(pointer(a) % VECTOR_BYTES == 0 for a in arrays):
        launch(targets[2], *grid_1d(max(count // 4, 1)), (*arrays, *scalars, i32(count)))
    else:
        launch(targets[1], *grid_1d(count), (*arrays, *scalars, i32(count)))


def require_int32_indexable(**arrays) -> None:
    """Kernels index with 32-bit ints; refuse tensors they could not address, naming the argument."""
    for name, array in arrays.items():
        if array.size > INT32_LIMIT:
            raise ValueError(
                f"{name}: {array.size} elements exceed the {INT32_LIMIT} a kernel of the cuda face can index; "
                "split the batch"
            )


def i32(value) -> np.int32:
    return np.int32(value)


def f32(value) -> np.float32:
    return np.float32(value)


def u32(value) -> np.uint32:
    return np.uint32(value)
