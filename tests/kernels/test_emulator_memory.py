"""What the CUDA C emulator does to shared memory and subnormals, on small kernels written here.

- `__shared__` arrays start as NaN in every block and sit between guard bands (emulator.hpp), so a
  kernel that reads a partial tile it never zero-filled gets NaN, as it can get garbage on a GPU;
  with the zero-filled static storage the emulator used before, that kernel passed.
- Subnormal floats are flushed to zero during a launch, inputs and results, as CuPy's -ftz=true
  makes the GPU do; the host's own floating-point mode is restored afterwards.
"""

import numpy as np
import pytest

from kernels.cuda import runtime as cuda_runtime
from kernels.toolchain import emulator

pytestmark = pytest.mark.skipif(
    not emulator.available(), reason="the CUDA C emulator needs g++ (every machine of this project has it)"
)

FLT_MIN = float(np.finfo(np.float32).tiny)


@pytest.fixture(scope="module")
def backend():
    chosen = emulator.EmulatorBackend()
    with cuda_runtime.use_backend(chosen), cuda_runtime.poisoned_outputs():
        yield chosen


KERNELS = r"""
// One tile of 64 per block over `count` values; the last tile may be partial.
#define TILE_SUM(NAME, ZERO_FILL)                                                    \
    extern "C" __global__ void NAME(const float* x, float* y, int count) {           \
        __shared__ float tile[64];                                                   \
        const int e = blockIdx.x * 64 + threadIdx.x;                                 \
        if (e < count) tile[threadIdx.x] = x[e];                                     \
        ZERO_FILL                                                                    \
        __syncthreads(); /* the tile is complete before thread 0 adds it up */       \
        if (threadIdx.x == 0) {                                                      \
            float total = 0.0f;                                                      \
            for (int i = 0; i < 64; ++i) total += tile[i];                           \
            y[blockIdx.x] = total;                                                   \
        }                                                                            \
    }
TILE_SUM(tile_sum_zero_filled, else tile[threadIdx.x] = 0.0f;)
TILE_SUM(tile_sum_not_zero_filled, )

extern "C" __global__ void stale(float* y) {
    __shared__ float half_written[32];
    if (blockIdx.x == 0 || threadIdx.x < 16) half_written[threadIdx.x] = 1.0f;
    __syncthreads();  // the tile is written before it is read back
    y[blockIdx.x * 32 + threadIdx.x] = half_written[31 - threadIdx.x];
}

extern "C" __global__ void shared_overrun(float* y) {
    __shared__ float staged[64];
    staged[threadIdx.x + 1] = 1.0f;  // off by one: thread 63 writes staged[64]
    __syncthreads();  // written before read
    y[threadIdx.x] = staged[threadIdx.x];
}

extern "C" __global__ void shared_overread(float* y) {
    __shared__ float filled[64];
    filled[threadIdx.x] = 2.0f;
    __syncthreads();  // written before read
    y[threadIdx.x] = filled[threadIdx.x + 1];  // thread 63 reads one past the end
}

extern "C" __global__ void too_big(float* y) {
    __shared__ __align__(16) float big[12289];  // 49,156 bytes: 4 over the 48 KiB limit
    big[threadIdx.x] = 1.0f;
    y[threadIdx.x] = big[threadIdx.x];
}

extern "C" __global__ void scale(const float* x, float* y, float factor, int count) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < count) y[e] = x[e] * factor;
}
"""
NAMES = ("tile_sum_zero_filled", "tile_sum_not_zero_filled", "stale", "shared_overrun", "shared_overread", "too_big",
         "scale")


@pytest.fixture(scope="module")
def kernel(backend, tmp_path_factory):
    """kernel(name) -> run(grid, block, args), all from one g++ build of KERNELS."""
    source = tmp_path_factory.mktemp("emulator-memory") / "memory.cu"
    source.write_text(KERNELS)
    backend._libraries[source] = (emulator.build(source, list(NAMES)), list(NAMES))
    return lambda name: backend.function(cuda_runtime.CudaTarget(name, 1, "main", source, name))


@pytest.mark.parametrize("zero_fill", [True, False], ids=["zero-filled", "not-zero-filled"])
def test_a_partial_tile_that_is_not_zero_filled_reads_nan(backend, kernel, zero_fill):
    """One block of 64 threads over 40 values: a partial tile. Written with the zero fill the sum is
    right; without it the block adds up 24 elements of shared memory nobody wrote, NaN here (the
    emulator's former zero-initialised static storage gave the right sum, hiding the bug)."""
    run = kernel("tile_sum_zero_filled" if zero_fill else "tile_sum_not_zero_filled")
    x = np.arange(1, 41, dtype=np.float32)
    y = backend.empty((1,))
    run((1, 1, 1), (64, 1, 1), (backend.guarded(x), y, np.int32(40)))
    if zero_fill:
        assert y[0] == x.sum()
    else:
        assert np.isnan(y[0]), f"the block summed unwritten shared memory to {y[0]} instead of NaN"


def test_every_block_starts_with_poisoned_shared_memory(backend, kernel):
    """Block 0 fills the whole tile, block 1 only half of it: block 1 must not see block 0's values
    (blocks run one after another here, so stale values would otherwise pass for written ones)."""
    y = backend.empty((64,))
    kernel("stale")((2, 1, 1), (32, 1, 1), (y,))
    np.testing.assert_array_equal(y[:32], 1.0)
    assert np.isnan(y[32:48]).all() and (y[48:] == 1.0).all()


def test_a_write_past_a_shared_array_is_caught(backend, kernel):
    with pytest.raises(emulator.EmulatorError, match=r"wrote outside __shared__ staged \(256 bytes\)"):
        kernel("shared_overrun")((1, 1, 1), (64, 1, 1), (backend.empty((64,)),))


def test_a_read_past_a_shared_array_reads_nan(backend, kernel):
    y = backend.empty((64,))
    kernel("shared_overread")((1, 1, 1), (64, 1, 1), (y,))
    assert (y[:63] == 2.0).all() and np.isnan(y[63])


def test_more_static_shared_memory_than_cuda_allows_is_refused(backend, kernel):
    with pytest.raises(emulator.EmulatorError, match="49156 bytes, over the 49152 CUDA allows"):
        kernel("too_big")((1, 1, 1), (32, 1, 1), (backend.empty((32,)),))


def test_shared_declarations_of_any_other_form_are_refused():
    text = "__global__ void k(float* y) {\n    extern __shared__ float dynamic[];\n    y[0] = dynamic[0];\n}\n"
    with pytest.raises(emulator.EmulatorError, match=r"line 2 .*extern __shared__ float dynamic"):
        emulator.place_shared_arrays(text, "k.cu")
    placed = emulator.place_shared_arrays("__shared__ __align__(16) unsigned int counts[2][THREADS + 4];", "k.cu")
    assert placed.startswith("static emu::SharedSlot counts_slot_; unsigned int (&counts)[2][THREADS + 4] =")
    assert 'sizeof(unsigned int [2][THREADS + 4]), 16, "counts"' in placed


def test_subnormals_are_flushed_during_a_launch_and_only_then(backend, kernel):
    run = kernel("scale")
    subnormal = np.float32(FLT_MIN / 4)
    x = backend.guarded(np.array([FLT_MIN, subnormal, 1.0], dtype=np.float32))
    y = backend.empty((3,))
    run((1, 1, 1), (32, 1, 1), (x, y, np.float32(0.5), np.int32(3)))
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.5])  # FLT_MIN / 2 flushed; a subnormal input reads as 0
    run((1, 1, 1), (32, 1, 1), (x, y, np.float32(2.0**30), np.int32(3)))
    assert y[1] == 0.0, "a subnormal input was used as its value: DAZ is off"
    assert y[0] == np.float32(FLT_MIN * 2.0**30)
    # The host keeps IEEE subnormals once the launch is over.
    assert np.float32(FLT_MIN) * np.float32(0.5) == np.float32(FLT_MIN / 2) != 0.0
