"""Every op case of alexnet2012 and alexnet-owt: the NumPy reference on the host, and (on a GPU)
the promoted version of each GPU face, validated against the reference before it is timed."""

import numpy as np
import pytest

import kernels
from benchmarks import cases
from benchmarks.counts import counts
from benchmarks.kernel_bench import case_seed, validate
from benchmarks.shapes import benchmark_cases

from .conftest import BATCH, ROUNDS

CASES = benchmark_cases(batch=BATCH)
IDS = [f"{case.op}-{case.label.replace(', ', '+')}" for case in CASES]


def _rates(benchmark, case, seconds, ceilings):
    amount = counts(case)
    floor = amount.floor_seconds(ceilings.sgemm_flops_per_s, ceilings.copy_bytes_per_s)
    benchmark.extra_info.update(
        shape=case.shape_text, layers=list(case.layers), flops=amount.flops, bytes=amount.bytes,
        bound=amount.bound(ceilings.sgemm_flops_per_s, ceilings.copy_bytes_per_s),
        gflops_per_s=amount.flops / seconds / 1e9, gbytes_per_s=amount.bytes / seconds / 1e9,
        roofline_share=floor / seconds, ceilings=ceilings.as_dict())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reference(benchmark, case, cpu_ceilings):
    from kernels import reference

    host = cases.make_inputs(case, case_seed(case))
    function = getattr(reference, case.op)
    benchmark.group = f"reference {case.op}"
    benchmark.pedantic(lambda: cases.invoke(function, case, host), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _rates(benchmark, case, benchmark.stats.stats.median, cpu_ceilings)


@pytest.mark.gpu
@pytest.mark.parametrize("face_name", ["cuda", "numba"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gpu_face(benchmark, face_name, case, gpu_ceilings):
    import cupy

    from benchmarks.environment import l2_bytes
    from benchmarks.timer import rotation_count, time_gpu
    from kernels import reference

    face = kernels.load(face_name)
    host = cases.make_inputs(case, case_seed(case))
    expected = cases.invoke(getattr(reference, case.op), case, cases.copy_args(host, np))
    first = {name: face.to_device(v) if hasattr(v, "dtype") else v for name, v in host.items()}
    function = getattr(face, case.op)
    verdict = validate(face, function, case, first, expected)
    assert verdict == "ok", verdict
    sets = [first] + [cases.rotation_set(first, i, face.xp) for i in range(1, rotation_count(cases.nbytes(host),
                                                                                          l2_bytes()))]
    events = time_gpu(lambda s: cases.invoke(function, case, s), sets)
    position = iter(range(10**9))

    def call_and_wait():
        cases.invoke(function, case, sets[next(position) % len(sets)])
        cupy.cuda.Device().synchronize()

    benchmark.group = f"{face_name} {case.op}"
    benchmark.pedantic(call_and_wait, rounds=max(ROUNDS, 10), iterations=1, warmup_rounds=2)
    benchmark.extra_info["cuda_event_ms"] = events.seconds * 1e3
    _rates(benchmark, case, events.seconds, gpu_ceilings)
