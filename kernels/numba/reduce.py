"""Block-wide reductions shared by the kernels that reduce a row (softmax) or a filter's plane (bias gradient)."""

from __future__ import annotations

from kernels.geometry import REDUCE_THREADS
from kernels.numba.compiler import cuda


@cuda.jit(device=True)
def block_reduce(shared, value, use_max):
    """Tree reduction over a block of REDUCE_THREADS threads (a power of two): every thread passes its
    value and gets back the block's maximum (use_max) or sum. Every thread of the block must call it;
    shared is a float32 shared array of REDUCE_THREADS elements. The tree's shape depends only on the
    block size, so the result is the same bit for bit in every run."""
    tid = cuda.threadIdx.x
    shared[tid] = value
    cuda.syncthreads()  # all values are in shared memory before the first level reads them
    half = REDUCE_THREADS // 2
    while half > 0:
        if tid < half:
            other = shared[tid + half]
            shared[tid] = max(shared[tid], other) if use_max else shared[tid] + other
        cuda.syncthreads()  # this level's results are written before the next level reads them
        half //= 2
    result = shared[0]
    cuda.syncthreads()  # everyone has read the result before the caller reuses `shared`
    return result
