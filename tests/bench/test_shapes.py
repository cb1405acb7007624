"""The benchmark's op cases, derived from the trainer's architectures: the parameter counts and
multiply-adds the design names, and inputs that every face's contract accepts."""

import numpy as np
import pytest

from benchmarks import cases
from benchmarks.shapes import arch_cases, benchmark_cases, shaped_layers
from kernels import OPS, reference


@pytest.mark.parametrize(("arch", "parameters", "gmacs"), [("alexnet2012", 60_965_224, 0.724),
                                                           ("alexnet-owt", 61_100_840, 0.714)])
def test_parameter_counts_and_multiply_adds_match_the_design(arch, parameters, gmacs):
    layers = shaped_layers(arch, batch=1)
    assert sum(layer.parameters for layer in layers) == parameters
    assert sum(layer.macs for layer in layers) / 1e9 == pytest.approx(gmacs, abs=5e-4)


def test_shared_shapes_are_timed_once_with_every_layer_named():
    merged = benchmark_cases()
    assert len({case.key for case in merged}) == len(merged)
    fc7 = [case for case in merged if case.op == "linear_forward" and case["w"] == (4096, 4096)]
    assert len(fc7) == 1
    assert set(fc7[0].layers) == {"alexnet2012/fc7", "alexnet-owt/fc7"}
    assert {case.op for case in merged} == set(OPS)
    assert len(benchmark_cases(ops=["relu_forward"])) == 7


def test_unknown_ops_and_archs_are_named():
    with pytest.raises(ValueError, match="relu_sideways"):
        benchmark_cases(ops=["relu_sideways"])
    with pytest.raises(ValueError, match="alexnet1999"):
        arch_cases("alexnet1999")


@pytest.mark.parametrize("op", OPS)
def test_inputs_of_every_op_are_valid_random_and_reproducible(op):
    """At batch 1, every op's inputs go through the reference's argument checks, no float input is
    all zeros, and the same seed draws the same inputs."""
    case = next(case for case in benchmark_cases(batch=1, ops=[op]) if case.op == op)
    args = cases.make_inputs(case, seed=5)
    for name, value in args.items():
        if hasattr(value, "dtype") and value.dtype.kind == "f":
            assert np.count_nonzero(value) > value.size // 4, name
    outputs = cases.invoke(getattr(reference, op), case, cases.copy_args(args, np))
    assert len(outputs) == len(cases.OUTPUTS[op])
    again = cases.make_inputs(case, seed=5)
    for name, value in args.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(again[name]))


def test_rotated_sets_hold_other_values_in_other_memory():
    case = benchmark_cases(batch=1, ops=["maxpool_backward"])[0]
    args = cases.make_inputs(case, seed=1)
    rotated = cases.rotation_set(args, 2, np)
    assert not np.shares_memory(rotated["dy"], args["dy"])
    assert not np.shares_memory(rotated["argmax"], args["argmax"])
    np.testing.assert_array_equal(rotated["argmax"], args["argmax"])
    assert not np.array_equal(rotated["dy"], args["dy"])
