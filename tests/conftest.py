"""Shared test setup: `gpu` tests run only where a CUDA device is present, except those also marked
`runs_without_gpu`, which run everywhere (in Numba's CUDA simulator where there is no GPU); and,
for benchmarks/gpu_check.sh, the order in which a GPU run takes the `gpu` tests."""

import os

import pytest

from kernels.gpu_probe import has_gpu

# Numba chooses between its CUDA simulator and the driver once per process, when numba.cuda is first
# imported. Without a GPU every test wants the simulator, whichever test module imports numba first.
if not has_gpu():
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

# benchmarks/gpu_check.sh sets this: promoted kernels first, then the trainer, then the other versions.
ORDER_ENV = "ALEXNET_CUDA_GPU_TEST_ORDER"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "runs_without_gpu: a `gpu` test that also runs where there is no GPU (in Numba's CUDA simulator), so "
        "that `-m gpu` selects it on a GPU machine and every other run runs it too",
    )


def pytest_collection_modifyitems(config, items):
    if os.environ.get(ORDER_ENV) == "promoted-first":
        items[:] = sorted(items, key=gpu_run_rank)  # sorted() is stable: within a rank, collection order
    if has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none found (benchmarks/gpu_check.sh runs these on one)")
    for item in items:
        if "gpu" in item.keywords and "runs_without_gpu" not in item.keywords:
            item.add_marker(skip)


def gpu_run_rank(item) -> int:
    """0: a test of a promoted kernel version (or of no particular version: the contract functions,
    the cross-face checks); 1: the trainer; 2: the benchmarks' own machinery; 3: a kernel version
    that is not the promoted one. A GPU run that is cut off then loses what no training step uses."""
    module = item.module.__name__ if getattr(item, "module", None) else ""
    if ".training." in module or "train" in module.rsplit(".", 1)[-1]:
        return 1
    if ".bench." in module:
        return 2
    params = getattr(getattr(item, "callspec", None), "params", {})
    version = params.get("version")
    if not isinstance(version, int):
        return 0
    face = params.get("name") or ("numba" if "numba" in module else "cuda")  # the conformance suite names it
    promoted = _promoted(face)
    case = params.get("case")
    ops = [case.op] if hasattr(case, "op") else _ops_named_in(item.originalname, promoted)
    if not ops:
        return 0  # a version of an op the name does not tell: run it early rather than lose it
    return 0 if all(promoted[op] == version for op in ops) else 3


def _promoted(face: str) -> dict[str, int]:
    if face == "numba":
        from kernels.numba import PROMOTED
    else:
        from kernels.cuda import PROMOTED
    return PROMOTED


def _ops_named_in(test_name: str, promoted: dict[str, int]) -> list[str]:
    """The contract ops a test's name names: whole names first (test_conv2d_backward_at_...), else
    a family (test_linear_at_... names linear_forward and linear_backward)."""
    whole = [op for op in promoted if op in test_name]
    if whole:
        return [max(whole, key=len)]
    words = set(test_name.split("_"))
    return [op for op in promoted if op.split("_")[0] in words]
