"""The op contract of alexnet-cuda, in three faces: `reference` (NumPy), `numba` and `cuda`.

Every face exposes the functions named in `OPS` with the same signatures (see kernels/README.md and
`kernels.reference` for the semantics). `load(name)` returns a face module by name.

The names of faces and devices are written here once, for everything above to import:
- FACES: the three faces; GPU_FACES: the two that run on a GPU (the first is the default);
- DEVICES: where the kernels run: "cpu" (the reference face), "sim" (the numba face in Numba's CUDA
  simulator), "emu" (the cuda face's CUDA C in the g++ emulator, kernels.cuda.emulated) or "gpu" (a
  GPU face on a CUDA GPU); only "gpu" takes device arrays.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FACES = ("reference", "numba", "cuda")
GPU_FACES = ("cuda", "numba")
DEVICES = ("cpu", "sim", "emu", "gpu")

OPS = (
    "conv2d_forward",
    "conv2d_backward",
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "lrn_forward",
    "lrn_backward",
    "maxpool_forward",
    "maxpool_backward",
    "dropout_forward",
    "dropout_backward",
    "softmax_xent_forward",
    "softmax_xent_backward",
    "sgd_update",
)


def gather_versions(modules) -> dict[str, dict[int, object]]:
    """A GPU face's VERSIONS, {op: {version: launcher}} sorted by version, from the VERSIONS dicts of
    its kernel modules (an op's versions may come from more than one module)."""
    versions: dict[str, dict[int, object]] = {}
    for module in modules:
        for op, launchers in module.VERSIONS.items():
            versions.setdefault(op, {}).update(launchers)
    return {op: dict(sorted(launchers.items())) for op, launchers in sorted(versions.items())}


def gather_candidates(modules) -> dict[str, dict[object, object]]:
    """A GPU face's CANDIDATES, {op: {geometry.Candidate: launcher}}, from its GEMM modules'."""
    return {op: dict(launchers) for module in modules for op, launchers in module.CANDIDATES.items()}


def promoted_functions(versions: dict[str, dict[int, object]], promoted: dict[str, int]) -> dict[str, object]:
    """What a GPU face exports under each op's name: the launcher of the version `promoted` names."""
    missing = [op for op in OPS if op not in promoted or promoted[op] not in versions.get(op, {})]
    if missing:
        raise ValueError(f"no promoted version among the declared ones for: {', '.join(missing)}")
    return {op: versions[op][promoted[op]] for op in OPS}


class FaceUnavailable(RuntimeError):
    """A face that this machine cannot run was asked for (say, `cuda` without a GPU)."""


def load(name: str) -> ModuleType:
    """Return the face called `name` ('reference', 'numba' or 'cuda').

    Raises ValueError for an unknown name and FaceUnavailable, with what to do instead, when the
    face cannot run here.
    """
    if name not in FACES:
        raise ValueError(f"unknown kernel face {name!r}; expected one of {', '.join(FACES)}")
    if name == "cuda":
        from kernels.gpu_probe import has_gpu

        if not has_gpu():
            raise FaceUnavailable(
                "the 'cuda' face runs CUDA C kernels through CuPy and needs a CUDA GPU, but no CUDA "
                "device was found on this machine (libcuda.so.1 missing or reporting no device). "
                "Use the 'reference' face (NumPy) or the 'numba' face (Numba's CUDA simulator) instead."
            )
    try:
        return importlib.import_module(f"kernels.{name}")
    except FaceUnavailable:
        raise
    except ImportError as error:
        raise FaceUnavailable(f"the {name!r} face could not be imported: {error}") from error
