"""The Numba face on a real GPU, beyond the conformance cases (test_conformance.py runs every
version of every op on a GPU at the tiny shapes and at every call of an alexnet2012 training step
at batch 128): CuPy's current stream without host synchronization, and the host time per launch.

Every test here is marked `gpu`; tests/conftest.py skips them, with the reason, where no GPU is.
"""

import time

import numpy as np
import pytest

from kernels.testing import assert_matches

pytestmark = pytest.mark.gpu

RNG = np.random.default_rng(2012)


def numba_face():
    import kernels.numba as face

    assert face.MODE == "gpu", f"kernels.numba runs in mode {face.MODE!r} on a machine with a GPU"
    return face


def random(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


SPIN_SOURCE = r"""
extern "C" __global__ void spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""
SPIN_CYCLES = 2_000_000_000  # about a second at the 1.5 - 2 GHz of a data-centre GPU


def test_launches_follow_cupys_stream_without_waiting_for_the_gpu():
    """Queue a kernel that keeps the GPU busy for about a second on a non-blocking CuPy stream, then
    the input of a small network and every op of its forward and part of its backward. If a launch
    synchronized the host, the stream would be idle by the time the launches return; if a kernel
    went to another stream, it would read its input before the input exists and its result would
    differ from the same computation on an idle stream."""
    import cupy

    face = numba_face()
    spin = cupy.RawKernel(SPIN_SOURCE, "spin")
    # Everything is on the device before the spin: a copy from pageable host memory may wait.
    x_host = random(2, 3, 11, 11)
    w, b = face.to_device(random(4, 3, 3, 3)), face.to_device(random(4))
    fc_w, fc_b = face.to_device(random(10, 4 * 2 * 2)), face.to_device(np.zeros(10, np.float32))
    labels = face.to_device(np.arange(2, dtype=np.int32))

    def network(source):
        x = source * 1.0  # queued behind the spin: its values exist only once the spin is over
        y = face.relu_forward(face.conv2d_forward(x, w, b, 2, 1, 1))
        y, _ = face.lrn_forward(y)
        pooled, _ = face.maxpool_forward(y, 3, 2)
        dropped, _ = face.dropout_forward(pooled, 0.5, 7, 11)
        flat = dropped.reshape(2, -1)
        loss, probs = face.softmax_xent_forward(face.linear_forward(flat, fc_w, fc_b), labels)
        _, dw, _ = face.linear_backward(face.softmax_xent_backward(probs, labels), flat, fc_w)
        return loss, dw

    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        source = cupy.asarray(x_host)
        network(source)  # compiles every kernel first, so that compiling is not mistaken for waiting
        stream.synchronize()
        spin((1,), (1,), (np.int64(SPIN_CYCLES),))
        started = time.perf_counter()
        loss, dw = network(source)
        issued = time.perf_counter() - started
        finished = stream.record()
        assert not finished.done, f"the stream was idle {issued:.3f} s after the launches began: something waited"
    stream.synchronize()

    with cupy.cuda.Stream.null:
        expected_loss, expected_dw = network(source)
    cupy.cuda.Stream.null.synchronize()
    assert_matches(loss, expected_loss, "exact", "loss on the busy stream vs on an idle one")
    assert_matches(dw, expected_dw, "exact", "fc dw on the busy stream vs on an idle one")


def test_launch_overhead_report():
    """Reports the host time per launch (python -m benchmarks.launch_overhead prints the same)."""
    from benchmarks.launch_overhead import measure

    rows = measure(repeats=50)
    for row in rows:
        print(f"{row.name:30} {row.launches_per_call:3d} kernels {row.microseconds_per_call:8.1f} us/call "
              f"{row.microseconds_per_launch:8.1f} us/launch")
    assert {row.name for row in rows} >= {"conv2d_forward", "sgd_update"}
    assert all(row.launches_per_call >= 1 for row in rows)
