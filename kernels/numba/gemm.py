"""GEMM kernels for the fully connected layers: C (M, N) = A (M, K)·B (K, N) [+ bias along N].

    v1  naive: one thread per output walks K, reading A and B from global memory (grid_2d).
    v2  shared-memory tiles (LINEAR_TILES[2], 16 x 16 x 16): a block stages a 16 x 16 slice of A and
        of B per K step, so each global value is read once per block instead of once per thread;
        each thread still computes one output.
    v3  register blocking (LINEAR_TILES[3], 64 x 64 x 8, 4 x 4 per thread): each thread keeps a
        4 x 4 tile of outputs in registers and reuses every staged value 4 times (kernels.numba.tiles).

A and B are flat arrays read through strides, so one kernel serves all three products of a linear
layer without transposing anything in memory:
    y  = x·wᵀ + b   A = x  (a_row = I, a_col = 1), B(i, o) = w[o, i] (b_row = 1, b_col = I)   "NT"
    dx = dy·w       A = dy (a_row = O, a_col = 1), B = w  (b_row = I, b_col = 1)              "NN"
    dw = dyᵀ·x      A(o, n) = dy[n, o] (a_row = 1, a_col = O), B = x (b_row = I, b_col = 1)   "TN"
When a tile is staged, consecutive threads take consecutive addresses of whichever index of the
operand is contiguous (the branch on a_col == 1 or b_col == 1 is the same for the whole block), so
global loads coalesce for every layout. The bias gradient db = Σ_n dy[n, :] is column_sums_kernel.
"""

from __future__ import annotations

from kernels.geometry import LINEAR_TILES
from kernels.numba.compiler import cuda, float32
from kernels.numba.tiles import accumulate_register_tile, clear, product_of_tiles

# Kernels see tile sizes as plain int globals, which Numba freezes as compile-time constants (a Tile
# object is not a type Numba knows).
TILED_M, TILED_N, TILED_K = LINEAR_TILES[2].block_m, LINEAR_TILES[2].block_n, LINEAR_TILES[2].block_k
REGISTER_M, REGISTER_N, REGISTER_K = LINEAR_TILES[3].block_m, LINEAR_TILES[3].block_n, LINEAR_TILES[3].block_k
THREAD_M, THREAD_N = LINEAR_TILES[3].thread_m, LINEAR_TILES[3].thread_n
REGISTER_ROWS = REGISTER_M // THREAD_M  # thread rows of a v3 block
REGISTER_COLS = REGISTER_N // THREAD_N  # thread columns of a v3 block

FLAT = "float32[::1]"
GEMM_SIGNATURE = f"void({FLAT}, {FLAT}, {FLAT}, float32[:, ::1], {', '.join(['int32'] * 8)})"


@cuda.jit
def gemm_naive_kernel(a, b, bias, c, m, n, k, a_row, a_col, b_row, b_col, has_bias):
    """c[i, j] = Σ_p a[i·a_row + p·a_col]·b[p·b_row + j·b_col] (+ bias[j] when has_bias).

    a, b flat; bias (N,) (unused without has_bias); c (M, N) out. Thread (x, y) of the 2-D grid
    covers output (i, j) = (y, x): x along the contiguous columns of c.
    """
    j, i = cuda.grid(2)
    if i >= m or j >= n:
        return
    total = float32(0.0)
    for p in range(k):
        total += a[i * a_row + p * a_col] * b[p * b_row + j * b_col]
    if has_bias:
        total += bias[j]
    c[i, j] = total


@cuda.jit(device=True)
def stage_a(a, a_tile, row0, k0, m, k, a_row, a_col):
    """a_tile[kk, ii] = A(row0 + ii, k0 + kk), 0 outside A; block-wide, every thread calls it."""
    depth, rows = a_tile.shape
    for e in range(cuda.threadIdx.x, depth * rows, cuda.blockDim.x):
        if a_col == 1:  # K contiguous: neighbouring threads take neighbouring kk
            ii = e // depth
            kk = e % depth
        else:  # M contiguous: neighbouring threads take neighbouring ii
            kk = e // rows
            ii = e % rows
        i = row0 + ii
        p = k0 + kk
        a_tile[kk, ii] = a[i * a_row + p * a_col] if i < m and p < k else float32(0.0)


@cuda.jit(device=True)
def stage_b(b, b_tile, k0, col0, k, n, b_row, b_col):
    """b_tile[kk, jj] = B(k0 + kk, col0 + jj), 0 outside B; block-wide, every thread calls it."""
    depth, cols = b_tile.shape
    for e in range(cuda.threadIdx.x, depth * cols, cuda.blockDim.x):
        if b_col == 1:  # N contiguous
            kk = e // cols
            jj = e % cols
        else:  # K contiguous
            jj = e // depth
            kk = e % depth
        p = k0 + kk
        j = col0 + jj
        b_tile[kk, jj] = b[p * b_row + j * b_col] if p < k and j < n else float32(0.0)


@cuda.jit
def gemm_tiled_kernel(a, b, bias, c, m, n, k, a_row, a_col, b_row, b_col, has_bias):
    """As gemm_naive_kernel, through 16 x 16 shared-memory tiles.

    Block (bx, by) covers the tile of c at rows by·16.., columns bx·16..; its 256 threads each cover
    one output, thread t at (row, col) = (t // 16, t % 16) of the tile.
    """
    a_tile = cuda.shared.array((TILED_K, TILED_M), float32)
    b_tile = cuda.shared.array((TILED_K, TILED_N), float32)
    row0 = cuda.blockIdx.y * TILED_M
    col0 = cuda.blockIdx.x * TILED_N
    row = cuda.threadIdx.x // TILED_N
    col = cuda.threadIdx.x % TILED_N
    total = float32(0.0)
    for k0 in range(0, k, TILED_K):
        stage_a(a, a_tile, row0, k0, m, k, a_row, a_col)
        stage_b(b, b_tile, k0, col0, k, n, b_row, b_col)
        cuda.syncthreads()  # both tiles are complete before any thread multiplies them
        total += product_of_tiles(a_tile, b_tile, row, col)
        cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
    i = row0 + row
    j = col0 + col
    if i < m and j < n:
        if has_bias:
            total += bias[j]
        c[i, j] = total


@cuda.jit
def gemm_register_kernel(a, b, bias, c, m, n, k, a_row, a_col, b_row, b_col, has_bias):
    """As gemm_naive_kernel, through 64 x 8 and 8 x 64 shared-memory tiles and 4 x 4 register tiles.

    Block (bx, by) covers the 64 x 64 tile of c at rows by·64.., columns bx·64..; thread t, at
    (ty, tx) = (t // 16, t % 16), covers rows ty + 16i and columns tx + 16j of it, i, j < 4.
    Threads whose rows or columns all fall outside c skip the arithmetic but still stage tiles and
    reach every barrier.
    """
    a_tile = cuda.shared.array((REGISTER_K, REGISTER_M), float32)
    b_tile = cuda.shared.array((REGISTER_K, REGISTER_N), float32)
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_values = cuda.local.array(THREAD_M, float32)
    b_values = cuda.local.array(THREAD_N, float32)
    row0 = cuda.blockIdx.y * REGISTER_M
    col0 = cuda.blockIdx.x * REGISTER_N
    ty = cuda.threadIdx.x // REGISTER_COLS
    tx = cuda.threadIdx.x % REGISTER_COLS
    active = row0 + ty < m and col0 + tx < n
    clear(acc)
    for k0 in range(0, k, REGISTER_K):
        stage_a(a, a_tile, row0, k0, m, k, a_row, a_col)
        stage_b(b, b_tile, k0, col0, k, n, b_row, b_col)
        cuda.syncthreads()  # both tiles are complete before any thread multiplies them
        if active:
            accumulate_register_tile(a_tile, b_tile, acc, a_values, b_values, ty, tx)
        cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
    for i in range(THREAD_M):
        row = row0 + ty + i * REGISTER_ROWS
        for j in range(THREAD_N):
            col = col0 + tx + j * REGISTER_COLS
            if row < m and col < n:
                c[row, col] = acc[i, j] + bias[col] if has_bias else acc[i, j]


@cuda.jit
def column_sums_kernel(matrix, sums):
    """sums[j] = Σ_i matrix[i, j], rows added in order.

    matrix (R, N); sums (N,) out. Thread j covers column j; neighbouring threads read neighbouring
    columns of a row, so every row is read in coalesced runs.
    """
    j = cuda.grid(1)
    if j >= matrix.shape[1]:
        return
    total = float32(0.0)
    for i in range(matrix.shape[0]):
        total += matrix[i, j]
    sums[j] = total
