"""The Numba face: every op of the contract as hand-written @cuda.jit kernels with thin launchers.

On import this package decides how the kernels run (kernels.numba.mode):
- no CUDA GPU, or NUMBA_ENABLE_CUDASIM=1: Numba's CUDA simulator, NumPy float32 arrays in and out;
- a CUDA GPU: CuPy float32 arrays in and out, every kernel launched on CuPy's current stream
  without synchronizing the host (kernels.numba.runtime);
- ALEXNET_CUDA_NUMBA_COMPILE_ONLY=1 without a GPU: the real CUDA target, for compiling to PTX only.

Registered as the CUDA C face is (kernels/cuda/__init__.py): each op module (one per op, named as
the op) defines VERSIONS = {op: {version: launcher}} and declares its kernels with
runtime.declare. Besides the contract functions the face exposes
- VERSIONS: every numbered version of every op, each with the contract's signature (kernel files
  list what each version adds);
- PROMOTED: {op: version}, the one place that says which version the contract function runs;
- CANDIDATES: {op: {geometry.Candidate: launcher}} of the GEMM-shaped ops, every tiled version at
  every tile geometry, among which kernels/choice.py picks by measurement;
- compile_targets(): every kernel of every version with its launch signature (KernelTarget), which
  kernels.toolchain.numba_compile compiles to PTX without a GPU;
- augment_crop: the data loader's kernel, outside the contract (kernels/reference/augment.py).
"""

from __future__ import annotations

from kernels import OPS, gather_candidates, gather_versions, promoted_functions
from kernels.numba import conv2d, dropout, linear, lrn, maxpool, relu, runtime, sgd, softmax_xent
from kernels.numba.augment import augment_crop
from kernels.numba.mode import MODE
from kernels.numba.runtime import KernelTarget, to_device, to_host, xp

NAME = "numba"

PROMOTED: dict[str, int] = {
    "conv2d_forward": 3,
    "conv2d_backward": 3,
    "linear_forward": 3,
    "linear_backward": 3,
    "relu_forward": 1,
    "relu_backward": 1,
    "lrn_forward": 1,
    "lrn_backward": 1,
    "maxpool_forward": 1,
    "maxpool_backward": 1,
    "dropout_forward": 1,
    "dropout_backward": 1,
    "softmax_xent_forward": 1,
    "softmax_xent_backward": 1,
    "sgd_update": 1,
}

VERSIONS = gather_versions((conv2d, dropout, linear, lrn, maxpool, relu, sgd, softmax_xent))
globals().update(promoted_functions(VERSIONS, PROMOTED))  # conv2d_forward = VERSIONS["conv2d_forward"][3], ...
CANDIDATES = gather_candidates((conv2d, linear))  # {op: {geometry.Candidate: launcher}}: kernels/choice.py


def compile_targets() -> list[KernelTarget]:
    """Every kernel of every version, in declaration order."""
    return runtime.targets()


__all__ = [
    "MODE",
    "NAME",
    "CANDIDATES",
    "PROMOTED",
    "VERSIONS",
    "KernelTarget",
    "augment_crop",
    "compile_targets",
    "to_device",
    "to_host",
    "xp",
    *OPS,
]
