"""The CUDA C face: every op of the contract as hand-written kernels in kernels/cuda/*.cu, compiled
at run time through cupy.RawModule and launched on CuPy's current stream.

Arrays in and out are C-contiguous float32 CuPy arrays (labels any integer dtype, masks uint8,
argmax int32). Importing this package compiles nothing and touches no device: a .cu file is
compiled the first time one of its kernels is launched, once per process and device (CuPy also
keeps the binaries in its on-disk kernel cache).

Registered as the Numba face is (kernels/numba/__init__.py): each op module (one per op, named as
the op, beside its .cu file) defines VERSIONS = {op: {version: launcher}} and declares its kernels
with runtime.declare. Besides the contract functions the face exposes
- VERSIONS: every numbered version of every op with the contract's signature; the header of each
  .cu file says what each version adds;
- PROMOTED: {op: version}, the one place that says which version a contract function runs;
- CANDIDATES: {op: {geometry.Candidate: launcher}} of the GEMM-shaped ops, every tiled version at
  every tile geometry, among which kernels/choice.py picks by measurement;
- compile_targets(): every kernel of every version as a CudaTarget(op, version, kernel, source,
  name_expression); kernels.toolchain.nvrtc compiles them without a GPU and pairs each with
  ptxas's registers, spills, shared memory and stack (nvrtc.resource_report);
- augment_crop: the data loader's kernel, outside the contract (kernels/reference/augment.py);
- checked_launches(), poisoned_outputs(): for tests (synchronize after each launch so a fault names
  its kernel; fill new outputs with NaN so an unwritten element shows);
- CudaKernelError: what any CUDA failure in a kernel of this face raises, naming the kernel.

Compile options are kernels.toolchain.nvrtc.FACE_OPTIONS (stated and justified there).
"""

from __future__ import annotations

import cupy
import numpy as np

from kernels import OPS, gather_candidates, gather_versions, promoted_functions
from kernels.cuda import conv2d, dropout, linear, lrn, maxpool, relu, runtime, sgd, softmax_xent
from kernels.cuda.augment import augment_crop
from kernels.cuda.runtime import (
    CudaKernelError,
    CudaTarget,
    checked_launches,
    poisoned_outputs,
)

NAME = "cuda"
xp = cupy

PROMOTED: dict[str, int] = {
    "conv2d_forward": 3,
    "conv2d_backward": 3,
    "linear_forward": 3,
    "linear_backward": 3,
    "relu_forward": 2,
    "relu_backward": 2,
    "lrn_forward": 1,
    "lrn_backward": 1,
    "maxpool_forward": 1,
    "maxpool_backward": 1,
    "dropout_forward": 1,
    "dropout_backward": 1,
    "softmax_xent_forward": 2,
    "softmax_xent_backward": 1,
    "sgd_update": 2,
}


VERSIONS = gather_versions((conv2d, dropout, linear, lrn, maxpool, relu, sgd, softmax_xent))
globals().update(promoted_functions(VERSIONS, PROMOTED))  # conv2d_forward = VERSIONS["conv2d_forward"][3], ...
CANDIDATES = gather_candidates((conv2d, linear))  # {op: {geometry.Candidate: launcher}}: kernels/choice.py


def to_device(array):
    """A C-contiguous CuPy copy of a host array, dtype kept."""
    return cupy.asarray(np.ascontiguousarray(array))


def to_host(array):
    return cupy.asnumpy(array)


def compile_targets() -> list[CudaTarget]:
    """Every kernel of every version, in declaration order."""
    return runtime.targets()


def promoted_targets() -> list[CudaTarget]:
    """The kernels the contract functions launch: the promoted version's, plus the shared helpers
    (db reductions, split-K sums, the loss mean) those launchers also use."""
    promoted = []
    for target in runtime.targets():
        if target.op not in PROMOTED or target.alternative:
            continue  # kernels outside the contract (the loader's augment) have tests of their own
        version = PROMOTED[target.op]
        shared_helper = target.version < version and target.kernel not in ("main", "dx", "dw", "rows")
        if target.version == version or shared_helper:
            promoted.append(target)
    return promoted


__all__ = [
    "NAME",
    "augment_crop",
    "CANDIDATES",
    "PROMOTED",
    "VERSIONS",
    "CudaKernelError",
    "CudaTarget",
    "checked_launches",
    "compile_targets",
    "poisoned_outputs",
    "promoted_targets",
    "resource_report",
    "to_device",
    "to_host",
    "xp",
    *OPS,
]
