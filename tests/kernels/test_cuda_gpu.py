"""The `cuda` face on a real GPU (marked `gpu`: skipped with the reason where there is none).

- every version of every op against the reference, at tiny shapes and at AlexNet's real shapes at
  batch 128 (conv1..conv5, fc6..fc8, LRN, pools, dropout, softmax over 1000 classes, SGD on fc6's
  37.7M weights), outputs poisoned before every launch and every launch synchronized, so a fault
  is reported against its kernel;
- the promoted CUDA C kernels against the promoted Numba kernels on the same inputs;
- runs repeat bit for bit (no atomics anywhere), and CUDA errors name the kernel.

benchmarks/gpu_check.sh runs these on a lent GPU. The same comparisons run in CI on the CPU
emulator (tests/kernels/test_cuda_emulator.py) at the tiny shapes.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels.testing import to_numpy
from tests.kernels.cases import REAL, TINY

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def face():
    import kernels

    cuda_face = kernels.load("cuda")
    with cuda_face.poisoned_outputs(), cuda_face.checked_launches():
        yield cuda_face


def _to_device(array):
    import cupy

    return cupy.asarray(np.ascontiguousarray(array))


_inputs_made: dict[str, tuple] = {}
_references: dict[str, tuple] = {}


def _inputs(case):
    """Host inputs, made once per case: the real shapes take seconds to draw. Faces get device
    copies and the reference works on copies, so one set serves every version."""
    if case.id not in _inputs_made:
        _inputs_made[case.id] = case.inputs()
    return _inputs_made[case.id]


def _reference(case):
    if case.id not in _references:
        _references[case.id] = case.reference_outputs(*_inputs(case))
    return _references[case.id]


def _versions(cases):
    import kernels.cuda  # importing compiles nothing and touches no device, so this is safe anywhere

    return [(case, version) for case in cases for version in sorted(kernels.cuda.VERSIONS[case.op])]


TINY_VERSIONS = _versions(TINY)
REAL_VERSIONS = _versions(REAL)


@pytest.mark.parametrize(("case", "version"), TINY_VERSIONS, ids=[f"{c.id}-v{v}" for c, v in TINY_VERSIONS])
def test_tiny_shapes_match_reference(face, case, version):
    args, kwargs = _inputs(case)
    actual = case.face_outputs(face.VERSIONS[case.op][version], _to_device, args, kwargs)
    case.compare(actual, _reference(case), f"{case.id} v{version}")


@pytest.mark.parametrize(("case", "version"), REAL_VERSIONS, ids=[f"{c.id}-v{v}" for c, v in REAL_VERSIONS])
def test_alexnet_shapes_match_reference(face, case, version):
    args, kwargs = _inputs(case)
    actual = case.face_outputs(face.VERSIONS[case.op][version], _to_device, args, kwargs)
    case.compare(actual, _reference(case), f"{case.id} v{version}")


CROSS = [case for case in TINY + REAL if case.op != "maxpool_backward" or not case.face_kwargs]


@pytest.mark.parametrize("case", CROSS, ids=[c.id for c in CROSS])
def test_cuda_c_and_numba_faces_agree(face, case):
    import kernels

    numba_face = kernels.load("numba")
    assert hasattr(numba_face, case.op), f"the numba face has no {case.op}"
    args, kwargs = _inputs(case)
    from_cuda = case.face_outputs(getattr(face, case.op), _to_device, args, kwargs)
    from_numba = case.face_outputs(getattr(numba_face, case.op), _to_device, args, kwargs)
    case.compare(from_cuda, [to_numpy(a) for a in from_numba], f"{case.id} cuda vs numba")


def test_reruns_are_bit_identical(face):
    """No atomics and fixed reduction orders: the same inputs give the same bits, split-K included."""
    conv = next(c for c in REAL if c.id == "conv2d_backward-conv2")
    loss = next(c for c in REAL if c.id == "softmax_xent_forward-1000-classes")
    for case in (conv, loss):
        args, kwargs = _inputs(case)
        first = case.face_outputs(getattr(face, case.op), _to_device, args, kwargs)
        second = case.face_outputs(getattr(face, case.op), _to_device, args, kwargs)
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=case.id)


def test_loss_stays_on_the_device(face):
    import cupy

    logits = cupy.zeros((4, 10), dtype=cupy.float32)
    loss, _ = face.softmax_xent_forward(logits, cupy.arange(4))
    assert isinstance(loss, cupy.ndarray) and loss.shape == ()
    assert abs(float(loss) - np.log(10.0)) < 1e-6


def test_launch_failures_name_the_kernel(face):
    import cupy

    from kernels.cuda import linear, relu, runtime

    x = cupy.ones((4, 4), dtype=cupy.float32)
    # Refused before the launch: more threads than a block can hold.
    with pytest.raises(face.CudaKernelError, match="relu_forward_v1"):
        runtime.launch(relu.RELU_FORWARD[1], (1,), (2048,), (x, x, np.int32(16)))
    # Refused by the driver: the double-buffered GEMM is built for at most 256 threads a block.
    v4 = linear.FORWARD[4]
    with pytest.raises(face.CudaKernelError, match=r"linear_double_buffered<.*linear_forward v4"):
        runtime.launch(v4, (1, 1), (512,), (x, x, x[0], x, np.int32(4), np.int32(4), np.int32(4)))
    # The context is still usable afterwards.
    np.testing.assert_array_equal(cupy.asnumpy(face.relu_forward(x)), np.ones((4, 4), np.float32))
