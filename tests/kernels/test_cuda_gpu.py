"""The `cuda` face on a real GPU (marked `gpu`: skipped with the reason where there is none),
beyond the conformance cases (test_conformance.py runs every version of every op on a GPU, at the
tiny shapes and at every call of an alexnet2012 training step at batch 128, and against the Numba
face): runs repeat bit for bit (no atomics anywhere), the loss stays on the device, and CUDA errors
name the kernel.

benchmarks/gpu_check.sh runs these on a lent GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels.testing import to_numpy
from tests.kernels.cases import REAL

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


def _inputs(case):
    if case.id not in _inputs_made:
        _inputs_made[case.id] = case.inputs()
    return _inputs_made[case.id]


def _to_device(array):
    import cupy

    return cupy.asarray(np.ascontiguousarray(array))


def test_reruns_are_bit_identical(face):
    """No atomics and fixed reduction orders: the same inputs give the same bits, split-K included."""
    conv = next(c for c in REAL if c.id == "conv2d_backward-conv2")
    loss = next(c for c in REAL if c.op == "softmax_xent_forward")
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
