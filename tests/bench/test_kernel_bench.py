"""The kernel benchmark's logic on the CPU: validation before timing, version selection, the host
timer, the CPU run and its text, and the GPU parts under the `gpu` mark."""

import types

import numpy as np
import pytest

from benchmarks import cases, kernel_bench
from benchmarks.shapes import benchmark_cases
from benchmarks.timer import rotation_count, time_host
from kernels import reference


def _fake_face(**functions):
    face = types.SimpleNamespace(NAME="fake", xp=np, to_device=np.asarray, to_host=np.asarray)
    for name, function in functions.items():
        setattr(face, name, function)
    return face


def _reference_outputs(case, args):
    return cases.invoke(getattr(reference, case.op), case, cases.copy_args(args, np))


def _tiny(op):
    return benchmark_cases(["alexnet-owt"], batch=1, ops=[op])[0]


def test_validation_passes_a_correct_kernel_and_names_what_a_wrong_one_gets_wrong():
    case = _tiny("relu_backward")
    args = cases.make_inputs(case, 3)
    expected = _reference_outputs(case, args)
    assert kernel_bench.validate(_fake_face(), reference.relu_backward, case, args, expected) == "ok"

    def off_by_one_element(dy, y):
        dx = reference.relu_backward(dy, y)
        dx.reshape(-1)[7] += 1.0
        return dx

    verdict = kernel_bench.validate(_fake_face(), off_by_one_element, case, args, expected)
    assert verdict.startswith("FAILED: dx: 1 of")


def test_validation_of_sums_follows_their_length_and_catches_a_lost_chunk():
    """conv1's filter gradient at batch 1 sums 3,025 products per weight: a correct float32 kernel
    passes the length-derived tolerance, one that lost the middle third of its positions fails."""
    case = _tiny("conv2d_backward")
    args = cases.make_inputs(case, 3)
    expected = _reference_outputs(case, args)
    assert cases.summation_terms(case) == {"y": 3 * 121, "dx": 64 * 9, "dw": 3025, "db": 3025}
    assert kernel_bench.validate(_fake_face(), reference.conv2d_backward, case, args, expected) == "ok"

    def lost_middle_chunk(dy, x, w, stride, pad, groups):
        dx, dw, db = reference.conv2d_backward(dy, x, w, stride, pad, groups)
        flat = dy.copy().reshape(dy.shape[1], -1)  # batch 1: positions along the last axis
        flat[:, flat.shape[1] // 3:2 * flat.shape[1] // 3] = 0.0
        return dx, reference.conv2d_backward(flat.reshape(dy.shape), x, w, stride, pad, groups)[1], db

    verdict = kernel_bench.validate(_fake_face(), lost_middle_chunk, case, args, expected)
    assert verdict.startswith("FAILED: dw:"), verdict


def test_validation_reports_a_crashing_kernel_instead_of_raising():
    case = _tiny("linear_forward")
    args = cases.make_inputs(case, 3)

    def broken(x, w, b):
        raise RuntimeError("launch failed")

    verdict = kernel_bench.validate(_fake_face(), broken, case, args, _reference_outputs(case, args))
    assert verdict == "FAILED: RuntimeError: launch failed"


def test_in_place_ops_are_validated_on_copies():
    case = _tiny("sgd_update")
    args = cases.make_inputs(case, 3)
    before = args["w"].copy()
    verdict = kernel_bench.validate(_fake_face(), reference.sgd_update, case, args, _reference_outputs(case, args))
    assert verdict == "ok"
    np.testing.assert_array_equal(args["w"], before)


def test_versions_promoted_or_all():
    face = _fake_face(relu_forward=reference.relu_forward)
    assert kernel_bench.face_versions(face, "relu_forward", "all") == [("contract", reference.relu_forward, True)]
    face.VERSIONS = {"relu_forward": {1: "v1", 2: "v2"}}
    face.PROMOTED = {"relu_forward": 2}
    assert kernel_bench.face_versions(face, "relu_forward", "promoted") == [("2", "v2", True)]
    assert kernel_bench.face_versions(face, "relu_forward", "all") == [("1", "v1", False), ("2", "v2", True)]


def test_rotation_covers_twice_the_cache_with_at_least_two_sets():
    assert rotation_count(1 << 20, 60 << 20) == 120
    assert rotation_count(200 << 20, 60 << 20) == 2
    assert rotation_count(1 << 10, 60 << 20) == 256  # capped
    assert rotation_count(3 << 30, 60 << 20, memory_budget=4 << 30) == 2


def test_host_timer_takes_the_median_of_enough_calls():
    calls = []
    timing = time_host(lambda inputs: calls.append(inputs), ["a", "b"], min_seconds=0.0, min_repeats=5, warmup=1)
    assert timing.calls == 5 and len(calls) == 6
    assert calls[1:] == ["a", "b", "a", "b", "a"]
    assert timing.seconds >= 0 and timing.sets == 2


def test_cpu_run_times_the_reference_and_says_gpu_numbers_need_a_gpu(monkeypatch):
    monkeypatch.setattr("kernels.gpu_probe.has_gpu", lambda: False)
    from benchmarks import ceilings

    monkeypatch.setattr(ceilings, "measure_cpu", lambda: ceilings.Ceilings("cpu", 10e9, 50e9, "test", "test"))
    result = kernel_bench.run(faces=("reference", "cuda"), archs=("alexnet-owt",), batch=1,
                              ops=["relu_forward", "linear_backward"], log=lambda message: None)
    assert result["notes"][0] == kernel_bench.NO_GPU_NOTE
    assert any("face cuda: not timed" in note for note in result["notes"])
    rows = result["rows"]
    assert {row["op"] for row in rows} == {"relu_forward", "linear_backward"}
    assert all(row["face"] == "reference" and row["validation"] == "oracle" and row["ms"] > 0 for row in rows)
    # Copy 10 GB/s, SGEMM 50 GFLOP/s: fc6's backward at batch 1 (151 MFLOP, 302 MB: 3 ms of
    # arithmetic, 30 ms of traffic) is memory-bound, so its rate is in GB/s, bytes over its time.
    fc6 = next(row for row in rows if row["op"] == "linear_backward" and "alexnet-owt/fc6" in row["layers"])
    assert (fc6["bound"], fc6["unit"]) == ("memory", "GB/s")
    assert fc6["achieved"] == pytest.approx(fc6["bytes"] / (fc6["ms"] * 1e-3) / 1e9)
    assert fc6["roofline_share"] == pytest.approx(fc6["bytes"] / 10e9 / (fc6["ms"] * 1e-3))
    text = kernel_bench.render(result)
    assert "GPU numbers need a GPU" in text
    assert "linear_backward" in text and "relu_forward" in text


def test_rates_follow_the_bound_of_each_row():
    """conv2's forward at batch 1 (448 MFLOP, 2 MB) is compute-bound on any machine whose SGEMM
    rate is below 200 times its copy bandwidth: GFLOP/s; ReLU (0.2 MFLOP, 1.5 MB) memory-bound: GB/s."""
    from benchmarks.report import KernelRow, fill_rates

    conv = KernelRow("cuda", "3", True, "conv2d_forward", (), "", "ok", ms=10.0, flops=448_000_000, bytes=2_000_000)
    relu = KernelRow("cuda", "2", True, "relu_forward", (), "", "ok", ms=0.5, flops=193_600, bytes=1_548_800)
    for row in (conv, relu):
        fill_rates(row, flops_per_s=50e9, bytes_per_s=10e9)
    assert (conv.bound, conv.unit, conv.achieved) == ("compute", "GFLOP/s", pytest.approx(44.8))
    assert conv.roofline_share == pytest.approx(448e6 / 50e9 / 10e-3)
    assert (relu.bound, relu.unit, relu.achieved) == ("memory", "GB/s", pytest.approx(3.0976))
    assert relu.bandwidth_share == relu.roofline_share == pytest.approx(1_548_800 / 10e9 / 0.5e-3)


def test_a_ceiling_that_fails_is_reported_and_the_run_goes_on(monkeypatch):
    """On a machine missing a library (cuBLAS for SGEMM, say) the ceiling says FAILED with the error
    and every kernel row is still validated and timed, only without the rates that ceiling gives."""
    from benchmarks import ceilings

    def no_cublas():
        raise OSError("libcublas.so.13: cannot open shared object file")

    monkeypatch.setattr(ceilings, "_gpu_sgemm", lambda size: no_cublas())
    monkeypatch.setattr(ceilings, "_gpu_copy", lambda size: (4.3e12, "sample copy"))
    measured = ceilings.measure_gpu()
    assert measured.copy_bytes_per_s == 4.3e12 and measured.sgemm_flops_per_s is None
    assert measured.sgemm_method == "FAILED: OSError: libcublas.so.13: cannot open shared object file"

    monkeypatch.setattr("kernels.gpu_probe.has_gpu", lambda: False)
    monkeypatch.setattr(ceilings, "measure_cpu", lambda: ceilings.Ceilings("cpu", 10e9, None, "test", "FAILED: x"))
    result = kernel_bench.run(archs=("alexnet-owt",), batch=1, ops=["relu_forward"], log=lambda message: None)
    assert result["rows"] and all(row["ms"] > 0 and row["achieved"] is None for row in result["rows"])
    assert "copy 10 GB/s (test); SGEMM FAILED: x" in kernel_bench.render(result)


def test_results_so_far_are_handed_out_after_every_case(monkeypatch):
    monkeypatch.setattr("kernels.gpu_probe.has_gpu", lambda: False)
    from benchmarks import ceilings

    monkeypatch.setattr(ceilings, "measure_cpu", lambda: ceilings.Ceilings("cpu", 10e9, 50e9, "test", "test"))
    seen = []
    result = kernel_bench.run(archs=("alexnet-owt",), batch=1, ops=["dropout_forward"], log=lambda message: None,
                              on_case=lambda so_far: seen.append((so_far["complete"], len(so_far["rows"]))))
    assert seen == [(False, 1), (True, 2)]
    assert result["complete"] and result["cases_done"] == result["cases"] == 2
    result["complete"], result["cases_done"] = False, 1
    assert "INCOMPLETE: stopped after 1 of 2 cases" in kernel_bench.render(result)


@pytest.mark.gpu
def test_gpu_timer_measures_a_known_copy():
    import cupy

    from benchmarks.timer import time_gpu

    source = cupy.random.RandomState(0).standard_normal(64 << 20, dtype=cupy.float32)  # 256 MiB
    target = cupy.empty_like(source)
    timing = time_gpu(lambda pair: pair[1].__setitem__(Ellipsis, pair[0]), [(source, target)] * 2)
    bandwidth = 2 * source.nbytes / timing.seconds
    assert 1e11 < bandwidth < 2e13  # between 100 GB/s and 20 TB/s: a copy, not a cache hit or a stall


@pytest.mark.gpu
def test_gpu_run_validates_and_times_both_faces_against_the_vendor():
    result = kernel_bench.run(archs=("alexnet-owt",), ops=["relu_forward", "linear_forward"],
                              log=lambda message: None)
    rows = result["rows"]
    assert {row["face"] for row in rows} >= {"cuda", "numba"}
    assert all(row["validation"] == "ok" and row["ms"] > 0 for row in rows), [r["validation"] for r in rows]
    linear = [row for row in rows if row["op"] == "linear_forward"]
    assert all(row["vendor"] == "cuBLAS" and row["vendor_ratio"] > 0 for row in linear)


def test_spin_kernel_compiles_for_sm_90():
    from benchmarks.timer import SPIN_SOURCE
    from kernels.toolchain.nvrtc import compile_text

    compiled = compile_text(SPIN_SOURCE, "spin.cu", "sm_90")
    assert "spin" in compiled.resources and not compiled.resources["spin"].spills


def test_gpu_timer_arithmetic_on_a_host_clock_stand_in(monkeypatch):
    """time_gpu's control flow with CuPy's events replaced by host-clock stand-ins: sets are used in
    rotation, batches are sized from the pilot, and the result is seconds per call."""
    import sys
    import time
    import types

    from benchmarks import timer

    class Event:
        def record(self):
            self.at = time.perf_counter()

        def synchronize(self):
            pass

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Event=Event, get_elapsed_time=lambda start, end: (end.at - start.at) * 1e3,
        Device=lambda: types.SimpleNamespace(synchronize=lambda: None)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(timer, "_spin", lambda seconds: None)
    used = []

    def run(inputs):
        used.append(inputs)
        time.sleep(0.002)
        return object()

    timing = timer.time_gpu(run, ["a", "b", "c"], batch_seconds=0.01, batches=3, warmup=1)
    assert timing.seconds == pytest.approx(0.002, rel=0.5)
    assert timing.batches == 3 and timing.calls >= 3 and timing.sets == 3
    assert timing.host_seconds >= 0.002
    assert used[:3] == ["a", "b", "c"] and set(used) == {"a", "b", "c"}


def test_cublas_baselines_compute_the_linear_layers(monkeypatch):
    """The cuBLAS baselines are plain matrix products; with NumPy standing in for CuPy they must give
    the reference's outputs (the bias aside, which the forward baseline leaves out)."""
    import sys

    from benchmarks import vendor

    monkeypatch.setitem(sys.modules, "cupy", np)
    for op in ("linear_forward", "linear_backward"):
        case = _tiny(op)
        args = cases.make_inputs(case, 2)
        baseline = vendor.baseline(case)
        assert baseline.name == "cuBLAS"
        run, sets = baseline.prepare([args])
        got = run(sets[0])
        expected = _reference_outputs(case, args)
        if op == "linear_forward":
            np.testing.assert_allclose(got + args["b"], expected[0], rtol=1e-5, atol=1e-5)
        else:
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
