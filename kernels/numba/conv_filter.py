"""Convolution backward, filter and bias gradients: dw from dy and x, db from dy.

    dw[f, c, i, j] = Σ_{n, oh, ow} dy[n, f, oh, ow]·x[n, g·CG + c, oh·s − pad + i, ow·s − pad + j]
    db[f]          = Σ_{n, oh, ow} dy[n, f, oh, ow]

    v1  dw direct: one thread per weight sums over all N·OH·OW positions.
    v2  dw as implicit GEMM per group: dw[g] (FG, CG·KH·KW) = dY[g] (FG, P)·cols[g]ᵀ (P, CG·KH·KW),
        P = N·OH·OW, 16 x 16 x 16 shared-memory tiles. The reduction over P is long (conv1 at batch 128:
        387,200) while the output is small (96 x 363), too few tiles to fill the GPU, so P is split
        across blocks (split-K, geometry.split_k): block z = g·splits + s reduces its chunk of P and
        writes its partial tile to partial[s]; sum_partials_kernel then adds the splits in order
        s = 0, 1, ... for each weight. No atomics: the sum is the same bit for bit in every run.
        With a single split the GEMM writes dw directly and the second kernel is skipped.
    v3  + 4 x 4 register tiles in 64 x 64 block tiles. Promoted.
    db  every version: one block per filter, threads striding over N·OH·OW, then a shared-memory tree
        (kernels/numba/reduce.py).
"""

from __future__ import annotations

from kernels.geometry import CONV_TILES, REDUCE_THREADS
from kernels.numba.compiler import cuda, float32
from kernels.numba.conv_tiles import stage_im2col_transposed, stage_output_gradient_rows
from kernels.numba.reduce import block_reduce
from kernels.numba.tiles import accumulate_register_tile, clear, product_of_tiles

TILED_M, TILED_N, TILED_K = CONV_TILES[2].block_m, CONV_TILES[2].block_n, CONV_TILES[2].block_k
REGISTER_M, REGISTER_N, REGISTER_K = CONV_TILES[3].block_m, CONV_TILES[3].block_n, CONV_TILES[3].block_k
THREAD_M, THREAD_N = CONV_TILES[3].thread_m, CONV_TILES[3].thread_n
REGISTER_ROWS, REGISTER_COLS = REGISTER_M // THREAD_M, REGISTER_N // THREAD_N

NCHW = "float32[:, :, :, ::1]"
PLANES = "float32[:, :, ::1]"
DIRECT_SIGNATURE = f"void({NCHW}, {NCHW}, {NCHW}, int32, int32, int32)"
GEMM_SIGNATURE = f"void({NCHW}, {PLANES}, {PLANES}, int32, int32, int32, int32, int32, int32, int32, int32)"
SUM_PARTIALS_SIGNATURE = f"void({PLANES}, float32[:, ::1])"
BIAS_SIGNATURE = f"void({PLANES}, float32[::1])"


@cuda.jit
def conv_filter_direct_kernel(dy, x, dw, stride, pad, groups):
    """dy (N, F, OH, OW), x (N, C, H, W); dw (F, CG, KH, KW) out. Thread t covers weight t."""
    t = cuda.grid(1)
    filters, channels_per_group, kh, kw = dw.shape
    if t >= filters * channels_per_group * kh * kw:
        return
    j = t % kw
    i = (t // kw) % kh
    c = (t // (kw * kh)) % channels_per_group
    f = t // (kw * kh * channels_per_group)
    c_in_x = (f // (filters // groups)) * channels_per_group + c
    n_images, _, out_h, out_w = dy.shape
    total = float32(0.0)
    for n in range(n_images):
        for oh in range(out_h):
            h = oh * stride - pad + i
            if h >= 0 and h < x.shape[2]:
                for ow in range(out_w):
                    col = ow * stride - pad + j
                    if col >= 0 and col < x.shape[3]:
                        total += dy[n, f, oh, ow] * x[n, c_in_x, h, col]
    dw[f, c, i, j] = total


@cuda.jit
def conv_filter_tiled_kernel(x, dy_planes, partial, kh, kw, out_w, stride, pad, groups, splits, chunk):
    """x (N, C, H, W), dy_planes (N, F, OH·OW) = dy viewed by planes; partial (splits, F, CG·KH·KW) out.

    Block (bx, by, z), z = g·splits + s, covers filters g·FG + by·16 .., weight columns bx·16 .. and
    positions [s·chunk, min((s + 1)·chunk, P)); thread t covers (filter, column) = (t // 16, t % 16).
    """
    a_tile = cuda.shared.array((TILED_K, TILED_M), float32)
    b_tile = cuda.shared.array((TILED_K, TILED_N), float32)
    g = cuda.blockIdx.z // splits
    split = cuda.blockIdx.z % splits
    filters_per_group = dy_planes.shape[1] // groups
    channels_per_group = x.shape[1] // groups
    columns = channels_per_group * kh * kw
    out_h = dy_planes.shape[2] // out_w
    p_begin = split * chunk
    p_end = min(p_begin + chunk, dy_planes.shape[0] * dy_planes.shape[2])
    row0 = cuda.blockIdx.y * TILED_M
    col0 = cuda.blockIdx.x * TILED_N
    row = cuda.threadIdx.x // TILED_N
    col = cuda.threadIdx.x % TILED_N
    total = float32(0.0)
    for p0 in range(p_begin, p_end, TILED_K):
        stage_output_gradient_rows(dy_planes, a_tile, g * filters_per_group, row0, p0, filters_per_group, p_end)
        stage_im2col_transposed(x, b_tile, g * channels_per_group, p0, col0, p_end, columns, kh, kw, out_h, out_w,
                                stride, pad)
        cuda.syncthreads()  # both tiles are complete before any thread multiplies them
        total += product_of_tiles(a_tile, b_tile, row, col)
        cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
    m = row0 + row
    column = col0 + col
    if m < filters_per_group and column < columns:
        partial[split, g * filters_per_group + m, column] = total


@cuda.jit
def conv_filter_register_kernel(x, dy_planes, partial, kh, kw, out_w, stride, pad, groups, splits, chunk):
    """As conv_filter_tiled_kernel with 64 x 64 tiles and a 4 x 4 register tile per thread.

    Thread t, at (ty, tx) = (t // 16, t % 16), covers filters ty + 16i and columns tx + 16j of the tile.
    """
    a_tile = cuda.shared.array((REGISTER_K, REGISTER_M), float32)
    b_tile = cuda.shared.array((REGISTER_K, REGISTER_N), float32)
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_values = cuda.local.array(THREAD_M, float32)
    b_values = cuda.local.array(THREAD_N, float32)
    g = cuda.blockIdx.z // splits
    split = cuda.blockIdx.z % splits
    filters_per_group = dy_planes.shape[1] // groups
    channels_per_group = x.shape[1] // groups
    columns = channels_per_group * kh * kw
    out_h = dy_planes.shape[2] // out_w
    p_begin = split * chunk
    p_end = min(p_begin + chunk, dy_planes.shape[0] * dy_planes.shape[2])
    row0 = cuda.blockIdx.y * REGISTER_M
    col0 = cuda.blockIdx.x * REGISTER_N
    ty = cuda.threadIdx.x // REGISTER_COLS
    tx = cuda.threadIdx.x % REGISTER_COLS
    active = row0 + ty < filters_per_group and col0 + tx < columns
    clear(acc)
    for p0 in range(p_begin, p_end, REGISTER_K):
        stage_output_gradient_rows(dy_planes, a_tile, g * filters_per_group, row0, p0, filters_per_group, p_end)
        stage_im2col_transposed(x, b_tile, g * channels_per_group, p0, col0, p_end, columns, kh, kw, out_h, out_w,
                                stride, pad)
        cuda.syncthreads()  # both tiles are complete before any thread multiplies them
        if active:
            accumulate_register_tile(a_tile, b_tile, acc, a_values, b_values, ty, tx)
        cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
    for i in range(THREAD_M):
        m = row0 + ty + i * REGISTER_ROWS
        if m < filters_per_group:
            f = g * filters_per_group + m
            for j in range(THREAD_N):
                column = col0 + tx + j * REGISTER_COLS
                if column < columns:
                    partial[split, f, column] = acc[i, j]


@cuda.jit
def sum_partials_kernel(partial, dw_rows):
    """dw_rows[f, k] = Σ_s partial[s, f, k], splits added in order s = 0, 1, ....

    partial (splits, F, CG·KH·KW); dw_rows (F, CG·KH·KW) out (dw viewed as rows). Thread t covers
    weight t; neighbouring threads read neighbouring weights of each split.
    """
    t = cuda.grid(1)
    filters, columns = dw_rows.shape
    if t >= filters * columns:
        return
    f = t // columns
    k = t % columns
    total = float32(0.0)
    for split in range(partial.shape[0]):
        total += partial[split, f, k]
    dw_rows[f, k] = total


@cuda.jit
def conv_bias_kernel(dy_planes, db):
    """db[f] = Σ_{n, q} dy_planes[n, f, q].

    dy_planes (N, F, OH·OW); db (F,) out. Block f covers filter f; thread t adds positions t,
    t + REDUCE_THREADS, ... (neighbouring threads read neighbouring positions), then the block's tree.
    """
    shared = cuda.shared.array(REDUCE_THREADS, float32)
    f = cuda.blockIdx.x
    plane = dy_planes.shape[2]
    total = float32(0.0)
    for e in range(cuda.threadIdx.x, dy_planes.shape[0] * plane, REDUCE_THREADS):
        total += dy_planes[e // plane, f, e % plane]
    total = block_reduce(shared, total, False)
    if cuda.threadIdx.x == 0:
        db[f] = total
