"""Shared test setup: `gpu` tests run only where a CUDA device is present."""

import os

import pytest

from kernels.gpu_probe import has_gpu

# Numba chooses between its CUDA simulator and the driver once per process, when numba.cuda is first
# imported. Without a GPU every test wants the simulator, whichever test module imports numba first.
if not has_gpu():
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


def pytest_collection_modifyitems(config, items):
    if has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none found (benchmarks/gpu_check.sh runs these on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
