"""Convolution backward kernels: dx from dy and w, dw from dy and x, db from dy.

    dx[n, c, h, w] = Σ_{f in c's group, i, j} w[f, c − g·CG, i, j]·dy[n, f, oh, ow]
                     over the taps (i, j) with oh·s − pad + i = h and ow·s − pad + j = w, 0 <= oh < OH, 0 <= ow < OW
    dw[f, c, i, j] = Σ_{n, oh, ow} dy[n, f, oh, ow]·x[n, g·CG + c, oh·s − pad + i, ow·s − pad + j]
    db[f]          = Σ_{n, oh, ow} dy[n, f, oh, ow]

    v1  direct: dx gathered per input element (each thread visits every (f, i, j) of its group and
        keeps the taps whose output lands on the stride grid and inside dy: each dx element is
        written once, by one thread, so no atomics and a fixed order of additions); dw one thread
        per weight summing over all N·OH·OW positions.
    v2  dx and dw as implicit GEMMs per group (kernels/numba/gemm.py with the operands of
        conv2d_operands.py), 16 x 16 x 16 shared-memory tiles:
        dx[g] (CG, N·H·W) = Σ over K = FG·KH·KW taps of w-taps (CG x K) times the dy gathered per tap
        (K x N·H·W), a 0 where no output lands. With stride s only about 1/s² of the gathered dy is
        nonzero (conv1: 1/16), which the tiles still multiply: the price of a gather that needs no
        scatter and no atomics.
        dw[g] (FG, CG·KH·KW) = dY[g] (FG, P)·cols[g]ᵀ (P, CG·KH·KW), P = N·OH·OW. The reduction over P
        is long (conv1 at batch 128: 387,200) while the output is small (96 x 363), too few tiles to
        fill the GPU, so P is split across blocks (split-K, geometry.split_k): block z = g·splits + s
        reduces its chunk of P and writes its partial tile to partial[s]; sum_partials_kernel then
        adds the splits in order s = 0, 1, ... for each weight. No atomics: the sum is the same bit
        for bit in every run. With a single split the GEMM writes dw directly and the second kernel
        is skipped.
    v3  + 4 x 4 register tiles in 64 x 64 block tiles. Promoted.
    db  every version: one block per filter, threads striding over N·OH·OW, then a shared-memory tree
        (kernels/numba/reduce.py).

The launchers are in kernels/numba/conv2d.py.
"""

from __future__ import annotations

from kernels.geometry import CONV_TILES, DOUBLE_BUFFERED_TILE, REDUCE_THREADS, WARP_TILES
from kernels.numba.compiler import cuda, float32
from kernels.numba.conv2d_operands import (
    filter_columns_at,
    output_gradient_rows_at,
    output_gradient_taps_at,
    store_data,
    store_filter_partial,
    weight_taps_at,
)
from kernels.numba.gemm import DOUBLE_BUFFERED, TILED, WARP_TILED, named_kernel, tile_shapes, tiled_product
from kernels.numba.reduce import block_reduce

NCHW = "float32[:, :, :, ::1]"
PLANES = "float32[:, :, ::1]"
DIRECT_SIGNATURE = f"void({NCHW}, {NCHW}, {NCHW}, int32, int32, int32)"
DATA_GEMM_SIGNATURE = f"void({NCHW}, float32[:, :, ::1], {NCHW}, int32, int32, int32, int32, int32)"
FILTER_GEMM_SIGNATURE = f"void({NCHW}, {PLANES}, {PLANES}, int32, int32, int32, int32, int32, int32, int32, int32)"
SUM_PARTIALS_SIGNATURE = f"void({PLANES}, float32[:, ::1])"
BIAS_SIGNATURE = f"void({PLANES}, float32[::1])"


@cuda.jit
def conv_data_direct_kernel(dy, w, dx, stride, pad, groups):
    """dy (N, F, OH, OW), w (F, CG, KH, KW); dx (N, C, H, W) out. Thread t covers dx element t."""
    t = cuda.grid(1)
    n_images, channels, height, width = dx.shape
    if t >= n_images * channels * height * width:
        return
    col = t % width
    h = (t // width) % height
    c = (t // (width * height)) % channels
    n = t // (width * height * channels)
    filters, channels_per_group, kh, kw = w.shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    filters_per_group = filters // groups
    g = c // channels_per_group
    c_in_group = c - g * channels_per_group
    total = float32(0.0)
    for f in range(g * filters_per_group, (g + 1) * filters_per_group):
        for i in range(kh):
            th = h + pad - i
            if th >= 0 and th % stride == 0 and th // stride < out_h:
                oh = th // stride
                for j in range(kw):
                    tw = col + pad - j
                    if tw >= 0 and tw % stride == 0 and tw // stride < out_w:
                        total += w[f, c_in_group, i, j] * dy[n, f, oh, tw // stride]
    dx[n, c, h, col] = total


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


def data_kernel(tile, name: str, schedule: str = TILED):
    """A v2-v5 dx kernel: the tiled product of kernels/numba/gemm.py at `tile`, a geometry.Tile."""
    block_m, block_n = tile.block_m, tile.block_n
    a_shape, b_shape = tile_shapes(tile, schedule)
    product = tiled_product(tile, weight_taps_at, output_gradient_taps_at, store_data, schedule)

    def kernel(dy, w_taps, dx, kh, kw, stride, pad, groups):
        """dy (N, F, OH, OW), w_taps (F, CG, KH·KW) = w viewed by taps; dx (N, C, H, W) out.

        Block (bx, by, g) covers channels g·CG + by·block_m .. and input positions bx·block_n .. of
        group g (position q = (n·H + h)·W + w).
        """
        a_tile = cuda.shared.array(a_shape, float32)
        b_tile = cuda.shared.array(b_shape, float32)
        g = cuda.blockIdx.z
        n_images, channels, height, width = dx.shape
        filters_per_group = dy.shape[1] // groups
        channels_per_group = channels // groups
        f0 = g * filters_per_group
        taps = (dy, f0, kh, kw, height, width, stride, pad)
        product(a_tile, b_tile, (w_taps, f0), True, taps, False, (dx, g * channels_per_group), channels_per_group,
                n_images * height * width, 0, filters_per_group * kh * kw, cuda.blockIdx.y * block_m,
                cuda.blockIdx.x * block_n)

    return named_kernel(kernel, name)


def filter_kernel(tile, name: str, schedule: str = TILED):
    """A v2-v5 split-K dw kernel: the tiled product of kernels/numba/gemm.py at `tile`."""
    block_m, block_n = tile.block_m, tile.block_n
    a_shape, b_shape = tile_shapes(tile, schedule)
    product = tiled_product(tile, output_gradient_rows_at, filter_columns_at, store_filter_partial, schedule)

    def kernel(x, dy_planes, partial, kh, kw, out_w, stride, pad, groups, splits, chunk):
        """x (N, C, H, W), dy_planes (N, F, OH·OW) = dy viewed by planes; partial (splits, F, CG·KH·KW) out.

        Block (bx, by, z), z = g·splits + s, covers filters g·FG + by·block_m .., weight columns
        bx·block_n .. and positions [s·chunk, min((s + 1)·chunk, P)).
        """
        a_tile = cuda.shared.array(a_shape, float32)
        b_tile = cuda.shared.array(b_shape, float32)
        g = cuda.blockIdx.z // splits
        split = cuda.blockIdx.z % splits
        filters_per_group = dy_planes.shape[1] // groups
        channels_per_group = x.shape[1] // groups
        f0 = g * filters_per_group
        p_begin = split * chunk
        p_end = min(p_begin + chunk, dy_planes.shape[0] * dy_planes.shape[2])
        columns = (x, g * channels_per_group, kh, kw, dy_planes.shape[2] // out_w, out_w, stride, pad)
        product(a_tile, b_tile, (dy_planes, f0), True, columns, True, (partial, split, f0), filters_per_group,
                channels_per_group * kh * kw, p_begin, p_end, cuda.blockIdx.y * block_m, cuda.blockIdx.x * block_n)

    return named_kernel(kernel, name)


conv_data_tiled_kernel = data_kernel(CONV_TILES[2], "conv_data_tiled_kernel")
conv_data_register_kernel = data_kernel(CONV_TILES[3], "conv_data_register_kernel")
conv_filter_tiled_kernel = filter_kernel(CONV_TILES[2], "conv_filter_tiled_kernel")
conv_filter_register_kernel = filter_kernel(CONV_TILES[3], "conv_filter_register_kernel")
conv_data_double_buffered_kernel = data_kernel(DOUBLE_BUFFERED_TILE, "conv_data_double_buffered_kernel",
                                               DOUBLE_BUFFERED)
conv_filter_double_buffered_kernel = filter_kernel(DOUBLE_BUFFERED_TILE, "conv_filter_double_buffered_kernel",
                                                   DOUBLE_BUFFERED)
conv_data_warp_tiled_kernel = data_kernel(WARP_TILES[0], "conv_data_warp_tiled_kernel", WARP_TILED)
conv_filter_warp_tiled_kernel = filter_kernel(WARP_TILES[0], "conv_filter_warp_tiled_kernel", WARP_TILED)


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
