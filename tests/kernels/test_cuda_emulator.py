"""The `cuda` face on the CPU emulator (kernels/toolchain/emulator.py), its real .cu sources
compiled by g++, beyond the conformance cases (test_conformance.py runs every version of every op
there against the reference): the gradient check of the promoted backwards, float4 kernels on
misaligned views, labels out of range, and the emulator's own guards, which make the conformance
cases worth trusting.

This is how the CUDA C kernels' index math, bounds, tiling, split-K and barriers are tested in CI,
where there is no GPU. Outputs are poisoned before every launch, every array sits between guard
bands (a write past an end fails the launch, a read past an end reads NaN), threads run in a
shuffled order between barriers, and each launch's arguments are checked against the kernel's
parameter types. What the emulator cannot show (timing, the GPU's own expf/powf rounding) is left
to the `gpu` tests in tests/kernels/test_cuda_gpu.py.
"""

from types import SimpleNamespace

import numpy as np
import pytest

import kernels.cuda as face
from kernels import OPS, gradcheck, reference
from kernels.cuda import runtime
from kernels.toolchain import emulator

pytestmark = pytest.mark.skipif(
    not emulator.available(), reason="the CUDA C emulator needs g++ (every machine of this project has it)"
)


@pytest.fixture(scope="module")
def backend():
    chosen = emulator.EmulatorBackend()
    with runtime.use_backend(chosen), runtime.poisoned_outputs(), runtime.checked_launches():
        yield chosen


GRADIENT_CASES = gradcheck.all_cases()


@pytest.mark.parametrize(("case", "constants"), GRADIENT_CASES, ids=[c.name for c, _ in GRADIENT_CASES])
def test_promoted_backwards_pass_the_gradient_check(backend, case, constants):
    """The contract functions (promoted versions), chained by hand through the tiny network too,
    against central differences of the float64 reference."""
    emulated = SimpleNamespace(NAME="cuda (emulated)", xp=np, to_device=backend.guarded, to_host=np.asarray,
                               **{op: getattr(face, op) for op in OPS})
    for result in gradcheck.check(case, constants, emulated, dtype=np.float32, max_entries=16):
        assert result.passed, result


def test_misaligned_views_take_the_scalar_paths(backend):
    """float4 kernels need 16-byte alignment; views that start 4 bytes in must still be right."""
    rng = np.random.default_rng(1)

    def misaligned(array):
        holder = backend.guarded(np.zeros(array.size + 1, dtype=array.dtype))
        view = holder[1:].reshape(array.shape)
        view[...] = array
        assert view.ctypes.data % 16 != 0 and view.flags.c_contiguous
        return view

    x = rng.standard_normal((4, 9)).astype(np.float32)
    w = rng.standard_normal((12, 9)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    for version in face.VERSIONS["linear_forward"]:
        y = face.VERSIONS["linear_forward"][version](misaligned(x), misaligned(w), misaligned(b))
        np.testing.assert_allclose(y, x.astype(np.float64) @ w.T + b, rtol=1e-5, atol=1e-5)
    relu = face.VERSIONS["relu_forward"][2](misaligned(x))
    np.testing.assert_array_equal(relu, reference.relu_forward(x))
    weights, grad, velocity = misaligned(x), misaligned(x * 0.5), misaligned(x * 0.1)
    expected_w, expected_v = x.copy(), x * 0.1
    reference.sgd_update(expected_w, x * 0.5, expected_v, 0.01)
    face.VERSIONS["sgd_update"][2](weights, grad, velocity, 0.01)
    np.testing.assert_allclose(weights, expected_w, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(velocity, expected_v, rtol=2e-5, atol=1e-6)


def test_maxpool_backward_refuses_a_kernel_and_stride_that_do_not_fit(backend):
    rng = np.random.default_rng(2)
    x = backend.guarded(rng.standard_normal((2, 2, 9, 9)).astype(np.float32))
    _, argmax = face.maxpool_forward(x, 3, 2)
    dy = backend.guarded(rng.standard_normal(argmax.shape).astype(np.float32))
    with pytest.raises(ValueError, match="kernel, stride"):
        face.maxpool_backward(dy, argmax, x.shape, kernel=3, stride=1)


def test_out_of_range_labels_give_nan_rows_not_stray_reads(backend):
    logits = backend.guarded(np.zeros((3, 5), dtype=np.float32))
    labels = backend.guarded(np.array([1, 5, -1], dtype=np.int64))
    for version in face.VERSIONS["softmax_xent_forward"]:
        loss, probs = face.VERSIONS["softmax_xent_forward"][version](logits, labels)
        assert np.isnan(loss) and np.allclose(probs, 0.2)
    dlogits = face.softmax_xent_backward(probs, labels)
    assert np.isfinite(dlogits[0]).all() and np.isnan(dlogits[1:]).all()


def test_a_write_past_the_end_is_caught(backend, tmp_path):
    """The guard bands are live: a kernel that writes one element too many fails its launch."""
    source = tmp_path / "overrun.cu"
    source.write_text('extern "C" __global__ void overrun(float* y, int count) {\n'
                      "    const int e = blockIdx.x * blockDim.x + threadIdx.x;\n"
                      "    if (e <= count) y[e] = 1.0f;  // off by one\n}\n")
    target = runtime.CudaTarget("overrun", 1, "main", source, "overrun")
    run = _function(backend, target, source)
    y = backend.empty((10,))
    with pytest.raises(emulator.EmulatorError, match="wrote outside an array"):
        run((1, 1, 1), (32, 1, 1), (y, np.int32(10)))


def test_a_missing_barrier_is_caught(backend, tmp_path):
    """Threads run in shuffled order, so reading a neighbour's shared value without a barrier
    reads stale data: the reversal below comes out wrong without __syncthreads."""
    source = tmp_path / "reverse.cu"
    body = ('extern "C" __global__ void reverse(const float* x, float* y) {\n'
            "    __shared__ float staged[64];\n"
            "    staged[threadIdx.x] = x[threadIdx.x];\n"
            "    BARRIER\n"
            "    y[threadIdx.x] = staged[63 - threadIdx.x];\n}\n")
    x = np.arange(64, dtype=np.float32)
    results = {}
    for barrier in ("__syncthreads();", ""):
        source.write_text(body.replace("BARRIER", barrier))
        run = _function(backend, runtime.CudaTarget("reverse", 1, "main", source, "reverse"), source)
        y = backend.empty((64,))
        run((1, 1, 1), (64, 1, 1), (backend.guarded(x), y))
        results[barrier] = y.copy()
    np.testing.assert_array_equal(results["__syncthreads();"], x[::-1])
    assert not np.array_equal(results[""], x[::-1])


def test_a_barrier_some_threads_skip_is_an_error(backend, tmp_path):
    source = tmp_path / "divergent.cu"
    source.write_text('extern "C" __global__ void divergent(float* y) {\n'
                      "    if (threadIdx.x < 16) return;\n"
                      "    __syncthreads();\n"
                      "    y[threadIdx.x] = 1.0f;\n}\n")
    run = _function(backend, runtime.CudaTarget("divergent", 1, "main", source, "divergent"), source)
    with pytest.raises(emulator.EmulatorError, match="barrier never completes"):
        run((1, 1, 1), (32, 1, 1), (backend.empty((32,)),))


def test_argument_kinds_are_checked(backend):
    """A Python int would reach CuPy as a 64-bit long long; the emulator refuses it, and refuses a
    scalar of the wrong kind."""
    x = backend.guarded(np.ones(8, dtype=np.float32))
    y = backend.empty((8,))
    run = backend.function(face.relu.RELU_FORWARD[1])
    with pytest.raises(emulator.EmulatorError, match="NumPy scalars"):
        run((1, 1, 1), (32, 1, 1), (x, y, 8))
    with pytest.raises(emulator.EmulatorError, match="do not match"):
        run((1, 1, 1), (32, 1, 1), (x, y, np.float32(8)))


def test_launch_errors_name_the_kernel(backend):
    x = backend.guarded(np.ones(8, dtype=np.float32))
    with pytest.raises(face.CudaKernelError, match=r"relu_forward_v1 \(relu_forward v1 main, relu\.cu\)"):
        runtime.launch(face.relu.RELU_FORWARD[1], (1,), (2048,), (x, x, np.int32(8)))


def _function(backend, target, source):
    library = emulator.build(source, [target.name_expression])
    backend._libraries[source] = (library, [target.name_expression])
    return backend.function(target)
