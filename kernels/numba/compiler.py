"""Which compiler turns the Numba face's kernel sources into GPU code, chosen once per process.

Every kernel module takes `cuda` and the scalar types from here (`from kernels.numba.compiler import
cuda, float32`), never from `numba` directly, so one kernel source compiles with either compiler:

- "numba-cuda" (the default): NVIDIA's numba-cuda, built on Numba and NVVM. It is also the only one
  with a CUDA simulator, so the simulator tests and the GPU run the same front end's typing.
- "mlir": numba-cuda-mlir, numba-cuda's successor (numba-cuda is in maintenance mode since 0.30:
  security and critical fixes only). It compiles Numba-CUDA kernels unchanged through MLIR. Opt in
  with ALEXNET_CUDA_NUMBA_COMPILER=mlir; it needs `pip install -e ".[mlir]"` (Python 3.11 or newer).

In simulator mode (kernels.numba.mode) the setting does not matter: kernels run in numba-cuda's
simulator, the one that exists. README.md ("The Numba face's compilers") says why numba-cuda stays
the default on a GPU and what remains before switching.
"""

from __future__ import annotations

from kernels import FaceUnavailable
from kernels.numba.mode import COMPILER_ENV, MODE, requested_compiler


def _import_numba_cuda():
    from kernels.numba import compat

    compat.before_first_compile()
    from numba import cuda

    return cuda


def _import_mlir():
    try:
        from numba_cuda_mlir import cuda
    except ImportError as error:
        raise FaceUnavailable(
            f"{COMPILER_ENV}=mlir asks for numba-cuda-mlir, which could not be imported ({error}). Install it "
            'with `python -m pip install -e ".[mlir]"` (Python 3.11 or newer), or unset the variable to use '
            "numba-cuda."
        ) from error
    return cuda


if MODE == "simulator":
    from numba import cuda

    COMPILER = "numba-cuda simulator"
elif requested_compiler() == "mlir":
    cuda = _import_mlir()
    COMPILER = "mlir"
else:
    cuda = _import_numba_cuda()
    COMPILER = "numba-cuda"

# The scalar types the kernels construct and declare shared arrays with. They must be the chosen
# compiler's own objects: numba-cuda-mlir cannot type Numba's (`Untyped global name 'float32'`).
float32 = cuda.float32
int64 = cuda.int64
uint8 = cuda.uint8
uint32 = cuda.uint32
uint64 = cuda.uint64


def inlined_device(function):
    """`function` as a device function inlined into every caller at the Numba IR level
    (inline="always"). numba-cuda-mlir otherwise leaves a large device function, such as a GEMM's
    whole product loop, as a call, and the call's ABI makes ptxas spill registers around it
    (forceinline=True did not change that). The simulator runs the function as it is."""
    if MODE == "simulator":
        return cuda.jit(device=True)(function)
    return cuda.jit(device=True, inline="always")(function)
