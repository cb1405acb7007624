"""The vendor baselines compute the same functions as the op contract, so that "x vendor" compares
like with like: each baseline on the GPU, through the benchmark's own code path, against the NumPy
reference at batch 2 (PyTorch's maxpool index is h·W + w in the plane, as ours; its LRN takes
alpha·size). Needs a GPU, and PyTorch for all but the cuBLAS rows."""

import numpy as np
import pytest

from benchmarks import cases, vendor
from benchmarks.shapes import benchmark_cases
from kernels import reference
from kernels.testing import to_numpy

COMPARED = ["linear_forward", "linear_backward", "conv2d_forward", "conv2d_backward", "relu_forward",
            "relu_backward", "maxpool_forward", "lrn_forward", "lrn_backward"]


def _host(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else to_numpy(value)


@pytest.mark.gpu
@pytest.mark.parametrize("op", COMPARED)
def test_vendor_baseline_matches_the_reference(op):
    import cupy

    for case in benchmark_cases(batch=2, ops=[op]):
        baseline = vendor.baseline(case)
        if baseline is None:
            pytest.skip(vendor.torch_status()[1])
        args = cases.make_inputs(case, 4)
        expected = cases.invoke(getattr(reference, op), case, cases.copy_args(args, np))
        device = {name: cupy.asarray(value) if hasattr(value, "dtype") else value for name, value in args.items()}
        run, sets = baseline.prepare([device])
        got = run(sets[0])
        got = got if isinstance(got, tuple) else (got,)
        if op == "linear_forward":
            got = (_host(got[0]) + args["b"],)  # the cuBLAS forward leaves the bias out
        for actual, wanted in zip(got, expected, strict=False):
            actual = _host(actual).astype(np.float64)
            scale = np.abs(wanted).max() + 1e-12
            assert actual.shape == wanted.shape, case.label
            assert np.abs(actual - wanted).max() / scale < 1e-4, case.label


@pytest.mark.gpu
def test_pytorch_models_have_the_papers_parameter_counts():
    from benchmarks import torch_models

    torch, status = vendor.torch_status()
    if torch is None:
        pytest.skip(status)
    for arch, count in (("alexnet2012", 60_965_224), ("alexnet-owt", 61_100_840)):
        model = torch_models.build(torch, arch)
        assert sum(p.numel() for p in model.parameters()) == count
