"""Convolution backward, data gradient: dx from dy and w.

    dx[n, c, h, w] = Σ_{f in c's group, i, j} w[f, c − g·CG, i, j]·dy[n, f, oh, ow]
    over the taps (i, j) with oh·s − pad + i = h and ow·s − pad + j = w, 0 <= oh < OH, 0 <= ow < OW.

    v1  direct gather: one thread per input element visits every (f, i, j) of its group and keeps the
        taps whose output lands on the stride grid and inside dy. Each dx element is written once,
        by one thread: no atomics, no race, a fixed order of additions.
    v2  implicit GEMM per group (grid z): dx[g] (CG, N·H·W) = Σ over K = FG·KH·KW taps of
        w-taps (CG x K) times the dy gathered per tap (K x N·H·W, kernels/numba/conv_tiles.py), a 0
        where no output lands; 16 x 16 x 16 shared-memory tiles, one output per thread. With stride
        s only about 1/s² of the gathered dy is nonzero (conv1: 1/16), which the tiles still
        multiply: the price of a gather that needs no scatter and no atomics.
    v3  + 4 x 4 register tiles in 64 x 64 block tiles. Promoted.
"""

from __future__ import annotations

from kernels.geometry import CONV_TILES
from kernels.numba.compiler import cuda, float32
from kernels.numba.conv_tiles import stage_output_gradient_taps, stage_weight_taps
from kernels.numba.tiles import accumulate_register_tile, clear, product_of_tiles

TILED_M, TILED_N, TILED_K = CONV_TILES[2].block_m, CONV_TILES[2].block_n, CONV_TILES[2].block_k
REGISTER_M, REGISTER_N, REGISTER_K = CONV_TILES[3].block_m, CONV_TILES[3].block_n, CONV_TILES[3].block_k
THREAD_M, THREAD_N = CONV_TILES[3].thread_m, CONV_TILES[3].thread_n
REGISTER_ROWS, REGISTER_COLS = REGISTER_M // THREAD_M, REGISTER_N // THREAD_N

NCHW = "float32[:, :, :, ::1]"
DIRECT_SIGNATURE = f"void({NCHW}, {NCHW}, {NCHW}, int32, int32, int32)"
GEMM_SIGNATURE = f"void({NCHW}, float32[:, :, ::1], {NCHW}, int32, int32, int32, int32, int32)"


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
def conv_data_tiled_kernel(dy, w_taps, dx, kh, kw, stride, pad, groups):
    """dy (N, F, OH, OW), w_taps (F, CG, KH·KW) = w viewed by taps; dx (N, C, H, W) out.

    Block (bx, by, g) covers channels g·CG + by·16 .. and input positions bx·16 .. of group g
    (position q = (n·H + h)·W + w); thread t covers (channel, position) = (t // 16, t % 16) of it.
    """
    a_tile = cuda.shared.array((TILED_K, TILED_M), float32)
    b_tile = cuda.shared.array((TILED_K, TILED_N), float32)
    g = cuda.blockIdx.z
    n_images, channels, height, width = dx.shape
    filters_per_group = dy.shape[1] // groups
    channels_per_group = channels // groups
    depth_total = filters_per_group * kh * kw
    inputs = n_images * height * width
    row0 = cuda.blockIdx.y * TILED_M
    q0 = cuda.blockIdx.x * TILED_N
    row = cuda.threadIdx.x // TILED_N
    col = cuda.threadIdx.x % TILED_N
    total = float32(0.0)
    for k0 in range(0, depth_total, TILED_K):
        stage_weight_taps(w_taps, a_tile, g * filters_per_group, row0, k0, channels_per_group, depth_total)
        stage_output_gradient_taps(dy, b_tile, g * filters_per_group, k0, q0, depth_total, inputs, kh, kw,
                                   height, width, stride, pad)
        cuda.syncthreads()  # both tiles are complete before any thread multiplies them
        total += product_of_tiles(a_tile, b_tile, row, col)
        cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
    m = row0 + row
    q = q0 + col
    if m < channels_per_group and q < inputs:
        dx[q // (width * height), g * channels_per_group + m, (q // width) % height, q % width] = total


@cuda.jit
def conv_data_register_kernel(dy, w_taps, dx, kh, kw, stride, pad, groups):
    """As conv_data_tiled_kernel with 64 x 64 tiles and a 4 x 4 register tile per thread.

    Block (bx, by, g) covers channels g·CG + by·64 .. and positions bx·64 ..; thread t, at
    (ty, tx) = (t // 16, t % 16), covers channels ty + 16i and positions tx + 16j of the tile.
    """
    a_tile = cuda.shared.array((REGISTER_K, REGISTER_M), float32)
    b_tile = cuda.shared.array((REGISTER_K, REGISTER_N), float32)
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_values = cuda.local.array(THREAD_M, float32)
    b_values = cuda.local.array(THREAD_N, float32)
    g = cuda.blockIdx.z
    n_images, channels, height, width = dx.shape
    filters_per_group = dy.shape[1] // groups
    channels_per_group = channels // groups
    depth_total = filters_per_group * kh * kw
    inputs = n_images * height * width
    row0 = cuda.blockIdx.y * REGISTER_M
    q0 = cuda.blockIdx.x * REGISTER_N
    ty = cuda.threadIdx.x // REGISTER_COLS
    tx = cuda.threadIdx.x % REGISTER_COLS
    active = row0 + ty < channels_per_group and q0 + tx < inputs
    clear(acc)
    for k0 in range(0, depth_total, REGISTER_K):
        stage_weight_taps(w_taps, a_tile, g * filters_per_group, row0, k0, channels_per_group, depth_total)
        stage_output_gradient_taps(dy, b_tile, g * filters_per_group, k0, q0, depth_total, inputs, kh, kw,
                                   height, width, stride, pad)
        cuda.syncthreads()  # both tiles are complete before any thread multiplies them
        if active:
            accumulate_register_tile(a_tile, b_tile, acc, a_values, b_values, ty, tx)
        cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
    for i in range(THREAD_M):
        m = row0 + ty + i * REGISTER_ROWS
        if m < channels_per_group:
            c = g * channels_per_group + m
            for j in range(THREAD_N):
                q = q0 + tx + j * REGISTER_COLS
                if q < inputs:
                    dx[q // (width * height), c, (q // width) % height, q % width] = acc[i, j]
