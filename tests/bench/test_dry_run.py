"""The GPU code paths of the kernel and step benchmarks, run without a GPU: CuPy is replaced by a
NumPy-backed stand-in (host-clock events, no-op spin kernel, fixed device properties) and the NumPy
reference is dressed as the `cuda` face, with two numbered versions of each op. What runs is the
real control flow of a GPU run (ceilings aside): device input sets and their rotation, validation
before timing, version selection, event timing, the cuBLAS baseline, rates, verdicts and text. It
catches mistakes a CPU run never reaches; the numbers mean nothing."""

import math
import sys
import time
import types

import numpy as np
import pytest

import kernels
from benchmarks import ceilings, kernel_bench, step_bench
from kernels import OPS, reference


def _cupy_stand_in():
    class Event:
        def record(self):
            self.at = time.perf_counter()

        def synchronize(self):
            pass

    class RawKernel:
        def __init__(self, source, name, options=()):
            self.name = name

        def __call__(self, grid, block, args):
            pass

    properties = {"name": b"Stand-in GPU", "multiProcessorCount": 1, "l2CacheSize": 1 << 20,
                  "totalGlobalMem": 1 << 30, "major": 9, "minor": 0}
    runtime = types.SimpleNamespace(getDeviceProperties=lambda device: properties, driverGetVersion=lambda: 13000,
                                    runtimeGetVersion=lambda: 13000)
    cuda = types.SimpleNamespace(Event=Event, get_elapsed_time=lambda start, end: (end.at - start.at) * 1e3,
                                 Device=lambda: types.SimpleNamespace(id=0, synchronize=lambda: None),
                                 runtime=runtime)
    module = types.ModuleType("cupy")
    module.__version__ = "stand-in"
    module.cuda, module.RawKernel, module.matmul = cuda, RawKernel, np.matmul
    module.get_default_memory_pool = lambda: types.SimpleNamespace(free_all_blocks=lambda: None)
    return module


def _reference_as_cuda():
    face = types.SimpleNamespace(NAME="cuda", xp=np, to_device=lambda a: np.array(a, copy=True), to_host=np.asarray)
    face.VERSIONS = {op: {1: getattr(reference, op), 2: getattr(reference, op)} for op in OPS}
    face.PROMOTED = {op: 2 for op in OPS}
    for op in OPS:
        setattr(face, op, getattr(reference, op))
    return face


@pytest.fixture
def stand_in_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _cupy_stand_in())
    monkeypatch.setitem(sys.modules, "torch", None)  # PyTorch "not importable": the notes must say so
    monkeypatch.setattr("kernels.gpu_probe.has_gpu", lambda: True)
    face = _reference_as_cuda()
    monkeypatch.setattr(kernels, "load", lambda name: face)
    monkeypatch.setattr(ceilings, "measure_gpu", lambda: ceilings.Ceilings("gpu", 4e12, 50e12, "stand-in", "stand-in"))
    from benchmarks import vendor

    vendor.torch_status.cache_clear()
    every_case = kernel_bench.benchmark_cases
    monkeypatch.setattr(kernel_bench, "benchmark_cases", lambda *args: [  # NumPy is slow at fc6 and fc7
        case for case in every_case(*args) if math.prod(dict(case.dims).get("w", case["x"])) <= 5_000_000])
    yield face
    vendor.torch_status.cache_clear()


def test_kernel_benchmark_gpu_path(stand_in_gpu):
    result = kernel_bench.run(faces=("cuda",), archs=("alexnet-owt",), batch=1, versions="all",
                              ops=["linear_forward", "relu_backward", "sgd_update"], log=lambda message: None)
    rows = result["rows"]
    assert result["environment"]["gpu"] == "Stand-in GPU"
    assert any("PyTorch is not importable" in note for note in result["notes"])
    assert {row["version"] for row in rows} == {"1", "2"}
    assert all(row["validation"] == "ok" and row["ms"] > 0 and row["host_ms"] >= 0 for row in rows)
    assert all(row["sets"] >= 2 for row in rows)
    linear = [row for row in rows if row["op"] == "linear_forward"]
    assert linear and all(row["vendor"] == "cuBLAS" and row["vendor_ratio"] > 0 for row in linear)
    sgd = [row for row in rows if row["op"] == "sgd_update"]
    assert len(sgd) >= 8 and all(row["verdict"].startswith(("met", "MISSES")) for row in sgd)
    relu = [row for row in rows if row["op"] == "relu_backward"]
    assert all(row["target"] == ">= 0.70 of copy bandwidth" for row in relu)
    text = kernel_bench.render(result)
    assert "Stand-in GPU" in text and "x vendor" in text and "2*" in text


def test_a_wrong_kernel_is_reported_and_not_timed(stand_in_gpu):
    def wrong(dy, y):
        return reference.relu_backward(dy, y) * 2

    stand_in_gpu.VERSIONS["relu_backward"][1] = wrong
    result = kernel_bench.run(faces=("cuda",), archs=("alexnet-owt",), batch=1, versions="all",
                              ops=["relu_backward"], log=lambda message: None)
    first = [row for row in result["rows"] if row["version"] == "1"]
    assert first and all(row["validation"].startswith("FAILED: dx:") and row["ms"] is None for row in first)
    assert "FAILED validation and were not timed" in kernel_bench.render(result)


def test_step_benchmark_gpu_path(stand_in_gpu):
    result = step_bench.run(faces=("cuda",), archs=("alexnet-owt",), batch=1, steps=1, warmup=0,
                            log=lambda message: None)
    (run,) = result["results"]
    assert run["face"] == "cuda" and run["images_per_s"] > 0 and run["parts_ms"] > 0, run.get("note")
    assert run["torch_images_per_s"] is None
    assert "GPU ms between CUDA events" in step_bench.render(result)
