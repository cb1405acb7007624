"""What to compile: every @cuda.jit kernel of the Numba face with the signature its launcher uses.

Every kernel module in kernels/numba/ lists its kernels as COMPILE_TARGETS = [KernelTarget(...)];
kernels.numba.compile_targets() gathers them from every module of the package, so a kernel file
added later is covered without editing anything else.

compile_ptx(target, cc) turns one target into PTX through NVVM. It needs Numba's real CUDA target,
not the simulator, so call it in a process where kernels.numba runs in mode "gpu" or "compile":

    ALEXNET_CUDA_NUMBA_COMPILE_ONLY=1 python -c "import kernels.numba as nb; \\
        print(nb.compile_ptx(nb.compile_targets()[0]))"

or run `python -m kernels.numba.compile_check`, which starts such a process itself. Feed the PTX
to `ptxas -arch=sm_90 -v` (or nvJitLink) for registers, spills and shared memory per kernel.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class _StandInDevice:
    """Answers the one question the compilers ask of the current device while compiling."""

    def __init__(self, compute_capability):
        self.compute_capability = tuple(compute_capability)


_stand_in = _StandInDevice((9, 0))


def _use_stand_in_device(cc) -> None:
    """Without a GPU, both compilers ask the (absent) current device for its compute capability even
    when a target is given, and fail with "CUDA driver library cannot be found": numba-cuda's
    dispatcher when a kernel calls a @cuda.jit(device=True) helper, numba-cuda-mlir for every kernel
    (its host architecture, `tools.get_gpu_compute_capability`, and its dispatcher's). In mode
    "compile" only, those module-level look-ups are replaced by ones that answer `cc`; nothing else
    in either compiler is touched."""
    from kernels.numba.compiler import COMPILER

    _stand_in.compute_capability = tuple(cc)
    if COMPILER == "mlir":
        import numba_cuda_mlir.descriptor
        import numba_cuda_mlir.numba_cuda.dispatcher
        import numba_cuda_mlir.tools

        def capability(as_type=str):
            major, minor = _stand_in.compute_capability
            return (major, minor) if as_type is tuple else f"sm_{major}{minor}"

        numba_cuda_mlir.tools.get_gpu_compute_capability = capability
        numba_cuda_mlir.numba_cuda.dispatcher.get_current_device = lambda: _stand_in
        numba_cuda_mlir.descriptor.get_current_device = lambda: _stand_in
    else:
        import numba.cuda.dispatcher

        numba.cuda.dispatcher.get_current_device = lambda: _stand_in


def compile_ptx(target: KernelTarget, cc: tuple[int, int] = (9, 0)) -> str:
    """PTX for `target` at compute capability `cc`, through the chosen compiler's compile_ptx
    (kernels.numba.compiler: NVVM for numba-cuda, MLIR for numba-cuda-mlir), with the dispatcher's own
    fastmath and lineinfo options. Raises on any typing or compile error."""
    from kernels.numba.mode import COMPILE_ONLY_ENV, MODE

    if MODE == "simulator":
        raise RuntimeError(
            "compile_ptx needs Numba's real CUDA target, but this process runs the CUDA simulator; "
            f"compile in a process started with {COMPILE_ONLY_ENV}=1 (python -m kernels.numba.compile_check)"
        )
    from kernels.numba.compiler import cuda

    if MODE == "compile":
        _use_stand_in_device(cc)
    options = getattr(target.dispatcher, "targetoptions", {})
    ptx, _ = cuda.compile_ptx(
        python_function(target.dispatcher),
        target.signature,
        cc=tuple(cc),
        fastmath=bool(options.get("fastmath", False)),
        lineinfo=bool(options.get("lineinfo", False)),
    )
    return ptx
