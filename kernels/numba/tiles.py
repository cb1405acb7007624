"""Device functions shared by the tiled GEMM kernels of the linear layers and the convolutions.

A tiled kernel stages, for each step of K, a block_k x block_m slice of A and a block_k x block_n
slice of B in shared memory, stored k-major (tile[kk, i]) so that the inner product reads one row
of each tile per kk. The kernels differ only in how an element of A or B is found in global memory
(a strided matrix, a weight tensor, an implicit im2col column); the arithmetic on the staged tiles
is the same and lives here.

Register tiles (v3): thread (ty, tx) of a block computes rows ty + i·(block_m/thread_m) and columns
tx + j·(block_n/thread_n) of the block tile, i < thread_m, j < thread_n. Spreading a thread's rows
and columns by the number of thread rows and columns, instead of giving it a contiguous 4 x 4
patch, makes the 32 threads of a warp read 32 consecutive floats of the B tile (no shared-memory
bank conflicts) and write consecutive columns of C (coalesced stores).
"""

from __future__ import annotations

from kernels.numba.compiler import cuda, float32


@cuda.jit(device=True)
def product_of_tiles(a_tile, b_tile, row, col):
    """Σ_kk a_tile[kk, row]·b_tile[kk, col]: one output's share of one K step (v2)."""
    total = float32(0.0)
    for kk in range(a_tile.shape[0]):
        total += a_tile[kk, row] * b_tile[kk, col]
    return total


@cuda.jit(device=True)
def accumulate_register_tile(a_tile, b_tile, acc, a_values, b_values, ty, tx):
    """acc[i, j] += Σ_kk a_tile[kk, ty + i·RY]·b_tile[kk, tx + j·RX] for the thread's register tile (v3),
    RY = block_m / thread_m thread rows, RX = block_n / thread_n thread columns.

    Each staged value is read into a register once per kk and used thread_n (or thread_m) times:
    that reuse is what register blocking buys over v2, where every product reads shared memory twice.
    """
    thread_m, thread_n = acc.shape
    row_step = a_tile.shape[1] // thread_m
    col_step = b_tile.shape[1] // thread_n
    for kk in range(a_tile.shape[0]):
        for i in range(thread_m):
            a_values[i] = a_tile[kk, ty + i * row_step]
        for j in range(thread_n):
            b_values[j] = b_tile[kk, tx + j * col_step]
        for i in range(thread_m):
            for j in range(thread_n):
                acc[i, j] += a_values[i] * b_values[j]


@cuda.jit(device=True)
def clear(acc):
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            acc[i, j] = float32(0.0)
