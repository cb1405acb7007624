"""The Numba face: every op of the contract as hand-written @cuda.jit kernels with thin launchers.

On import this package decides how the kernels run (kernels.numba.mode):
- no CUDA GPU, or NUMBA_ENABLE_CUDASIM=1: Numba's CUDA simulator, NumPy float32 arrays in and out;
- a CUDA GPU: CuPy float32 arrays in and out, every kernel launched on CuPy's current stream
  without synchronizing the host (kernels.numba.runtime);
- ALEXNET_CUDA_NUMBA_COMPILE_ONLY=1 without a GPU: the real CUDA target, for compiling to PTX only.

Besides the contract functions the face exposes
- VERSIONS: {op: {version: launcher}}, every numbered version of every op, each with the contract's
  signature (kernel files list what each version adds);
- PROMOTED: {op: version}, the one place that says which version the contract function runs;
- compile_targets(): every kernel of every version with its launch signature (KernelTarget), from
  COMPILE_TARGETS of every module of this package; compile_ptx(target, cc) compiles one to PTX.
"""

from __future__ import annotations

import importlib
import pkgutil

from kernels import OPS, gather_versions
from kernels.numba.mode import MODE
from kernels.numba.runtime import to_device, to_host, xp
from kernels.numba.targets import KernelTarget, compile_ptx

NAME = "numba"

# The modules that implement contract ops; each defines VERSIONS = {op: {version: launcher}}.
_OP_MODULES: tuple[str, ...] = (
    "conv2d", "dropout", "linear", "lrn", "maxpool", "relu", "sgd", "softmax_xent",
)

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


VERSIONS = gather_versions(importlib.import_module(f"{__name__}.{name}") for name in _OP_MODULES)

for _op in OPS:
    if _op in PROMOTED:
        globals()[_op] = VERSIONS[_op][PROMOTED[_op]]


def compile_targets() -> list[KernelTarget]:
    """Every KernelTarget declared by any module of this package, in module order."""
    targets: list[KernelTarget] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        targets.extend(getattr(module, "COMPILE_TARGETS", ()))
    return targets


__all__ = [
    "MODE",
    "NAME",
    "PROMOTED",
    "VERSIONS",
    "KernelTarget",
    "compile_ptx",
    "compile_targets",
    "to_device",
    "to_host",
    "xp",
    *(op for op in OPS if op in PROMOTED),
]
