"""pytest-benchmark suites: `python -m pytest benchmarks/` (they are not part of the test suite).

On a machine without a GPU they time the NumPy reference (and the data loader) and skip the GPU
suites with the reason; on a GPU they also time both GPU faces. The batch size defaults to the
real one, 128; ALEXNET_BENCH_BATCH=16 gives a quicker, smaller look. Timings come from
pytest-benchmark's host clock (a GPU call is followed by a device synchronization); the CUDA-event
times, roofline shares and vendor ratios of benchmarks go into each benchmark's extra_info
(`--benchmark-json PATH` keeps them). `alexnet-cuda bench` prints the same measurements as
roofline tables.
"""

import os

import pytest

from kernels.gpu_probe import has_gpu

BATCH = int(os.environ.get("ALEXNET_BENCH_BATCH", "128"))
ROUNDS = int(os.environ.get("ALEXNET_BENCH_ROUNDS", "3"))


def pytest_report_header(config):
    where = "a CUDA GPU is present" if has_gpu() else (
        "no CUDA GPU: GPU numbers need a GPU (benchmarks/gpu_check.sh on one); the GPU suites skip")
    return [f"alexnet-cuda benchmarks: batch {BATCH} (ALEXNET_BENCH_BATCH), {ROUNDS} rounds (ALEXNET_BENCH_ROUNDS); "
            f"{where}"]


def pytest_collection_modifyitems(config, items):
    if has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none found: GPU numbers need a GPU "
                                   "(benchmarks/gpu_check.sh runs these on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cpu_ceilings():
    from benchmarks.ceilings import measure_cpu

    return measure_cpu()


@pytest.fixture(scope="session")
def gpu_ceilings():
    from benchmarks.ceilings import measure_gpu

    return measure_gpu()
