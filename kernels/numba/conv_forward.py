"""Convolution forward (cross-correlation with stride, zero padding and groups).

    y[n, f, oh, ow] = b[f] + Σ_{c < CG, i < KH, j < KW} w[f, c, i, j]·x[n, g·CG + c, oh·s − pad + i, ow·s − pad + j]
    with g = f // FG, CG = C/G, FG = F/G, and x = 0 in the padding.

    v1  direct: one thread per output element walks its CG·KH·KW window (grid_1d over N·F·OH·OW).
    v2  implicit GEMM (kernels/numba/conv_tiles.py): per group (grid z), y[g] = W[g]·cols[g] with
        M = FG filters, N = N·OH·OW positions, K = CG·KH·KW; 16 x 16 x 16 shared-memory tiles
        (CONV_TILES[2]), one output per thread. The weights are read once per block instead of
        once per output, and no im2col buffer is ever written to global memory.
    v3  + register blocking (CONV_TILES[3]): 64 x 64 block tiles, each thread a 4 x 4 tile of
        outputs in registers (kernels/numba/tiles.py), so each staged value feeds 4 products.
        Promoted.
"""

from __future__ import annotations

import numpy as np

from kernels.contract import check_conv2d_forward
from kernels.geometry import CONV_TILES, conv_forward_gemm, grid_1d
from kernels.numba.compiler import cuda, float32
from kernels.numba.conv_tiles import stage_im2col, stage_matrix_rows
from kernels.numba.runtime import SPEC, empty, launch
from kernels.numba.targets import kernel_target
from kernels.numba.tiles import accumulate_register_tile, clear, product_of_tiles

# Tile sizes as plain int globals: Numba freezes them as compile-time constants.
TILED_M, TILED_N, TILED_K = CONV_TILES[2].block_m, CONV_TILES[2].block_n, CONV_TILES[2].block_k
REGISTER_M, REGISTER_N, REGISTER_K = CONV_TILES[3].block_m, CONV_TILES[3].block_n, CONV_TILES[3].block_k
THREAD_M, THREAD_N = CONV_TILES[3].thread_m, CONV_TILES[3].thread_n
REGISTER_ROWS, REGISTER_COLS = REGISTER_M // THREAD_M, REGISTER_N // THREAD_N

NCHW = "float32[:, :, :, ::1]"
DIRECT_SIGNATURE = f"void({NCHW}, {NCHW}, float32[::1], {NCHW}, int32, int32, int32)"
GEMM_SIGNATURE = f"void({NCHW}, float32[:, ::1], float32[::1], {NCHW}, int32, int32, int32, int32, int32)"


@cuda.jit
def conv_forward_direct_kernel(x, w, b, y, stride, pad, groups):
    """x (N, C, H, W), w (F, CG, KH, KW), b (F,); y (N, F, OH, OW) out.

    Thread t covers output t in row-major order.
    """
    t = cuda.grid(1)
    n_images, filters, out_h, out_w = y.shape
    if t >= n_images * filters * out_h * out_w:
        return
    ow = t % out_w
    oh = (t // out_w) % out_h
    f = (t // (out_w * out_h)) % filters
    n = t // (out_w * out_h * filters)
    channels_per_group, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    c0 = (f // (filters // groups)) * channels_per_group
    total = float32(0.0)
    for c in range(channels_per_group):
        for i in range(kh):
            h = oh * stride - pad + i
            if h >= 0 and h < x.shape[2]:
                for j in range(kw):
                    col = ow * stride - pad + j
                    if col >= 0 and col < x.shape[3]:
                        total += w[f, c, i, j] * x[n, c0 + c, h, col]
    y[n, f, oh, ow] = total + b[f]


@cuda.jit
def conv_forward_tiled_kernel(x, w_rows, b, y, kh, kw, stride, pad, groups):
    """x (N, C, H, W), w_rows (F, CG·KH·KW) = w viewed as rows, b (F,); y (N, F, OH, OW) out.

    Block (bx, by, g) covers filters g·FG + by·16 .. and positions bx·16 .. of group g; thread t
    covers (filter, position) = (t // 16, t % 16) of that tile.
    """
    a_tile = cuda.shared.array((TILED_K, TILED_M), float32)
    b_tile = cuda.shared.array((TILED_K, TILED_N), float32)
    g = cuda.blockIdx.z
    filters, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    filters_per_group = filters // groups
    channels_per_group = x.shape[1] // groups
    depth_total = channels_per_group * kh * kw
    positions = x.shape[0] * out_h * out_w
    row0 = cuda.blockIdx.y * TILED_M
    p0 = cuda.blockIdx.x * TILED_N
    row = cuda.threadIdx.x // TILED_N
    col = cuda.threadIdx.x % TILED_N
    total = float32(0.0)
    for k0 in range(0, depth_total, TILED_K):
        stage_matrix_rows(w_rows, a_tile, g * filters_per_group, row0, k0, filters_per_group, depth_total)
        stage_im2col(x, b_tile, g * channels_per_group, k0, p0, depth_total, positions, kh, kw, out_h, out_w,
                     stride, pad)
        cuda.syncthreads()  # both tiles are complete before any thread multiplies them
        total += product_of_tiles(a_tile, b_tile, row, col)
        cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
    m = row0 + row
    p = p0 + col
    if m < filters_per_group and p < positions:
        f = g * filters_per_group + m
        y[p // (out_h * out_w), f, (p // out_w) % out_h, p % out_w] = total + b[f]


@cuda.jit
def conv_forward_register_kernel(x, w_rows, b, y, kh, kw, stride, pad, groups):
    """As conv_forward_tiled_kernel with 64 x 64 tiles and a 4 x 4 register tile per thread.

    Block (bx, by, g) covers filters g·FG + by·64 .. and positions bx·64 .. of group g; thread t,
    at (ty, tx) = (t // 16, t % 16), covers filters ty + 16i and positions tx + 16j of the tile.
    """
    a_tile = cuda.shared.array((REGISTER_K, REGISTER_M), float32)
    b_tile = cuda.shared.array((REGISTER_K, REGISTER_N), float32)
    acc = cuda.local.array((THREAD_M, THREAD_N), float32)
    a_values = cuda.local.array(THREAD_M, float32)
    b_values = cuda.local.array(THREAD_N, float32)
    g = cuda.blockIdx.z
    filters, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    filters_per_group = filters // groups
    channels_per_group = x.shape[1] // groups
    depth_total = channels_per_group * kh * kw
    positions = x.shape[0] * out_h * out_w
    row0 = cuda.blockIdx.y * REGISTER_M
    p0 = cuda.blockIdx.x * REGISTER_N
    ty = cuda.threadIdx.x // REGISTER_COLS
    tx = cuda.threadIdx.x % REGISTER_COLS
    active = row0 + ty < filters_per_group and p0 + tx < positions
    clear(acc)
    for k0 in range(0, depth_total, REGISTER_K):
        stage_matrix_rows(w_rows, a_tile, g * filters_per_group, row0, k0, filters_per_group, depth_total)
        stage_im2col(x, b_tile, g * channels_per_group, k0, p0, depth_total, positions, kh, kw, out_h, out_w,
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
                p = p0 + tx + j * REGISTER_COLS
                if p < positions:
                    y[p // (out_h * out_w), f, (p // out_w) % out_h, p % out_w] = acc[i, j] + b[f]


def conv2d_forward_v1(x, w, b, stride=1, pad=0, groups=1):
    stride, pad, groups, out_shape = check_conv2d_forward(SPEC, x, w, b, stride, pad, groups)
    y = empty(out_shape)
    grid, block = grid_1d(y.size)
    launch(conv_forward_direct_kernel, grid, block, x, w, b, y, np.int32(stride), np.int32(pad), np.int32(groups))
    return y


def _conv2d_forward_gemm(version, kernel, x, w, b, stride, pad, groups):
    stride, pad, groups, out_shape = check_conv2d_forward(SPEC, x, w, b, stride, pad, groups)
    n, f, oh, ow = out_shape
    kh, kw = w.shape[2:]
    y = empty(out_shape)
    m, positions, _ = conv_forward_gemm(n, x.shape[1], f, oh, ow, kh, kw, groups)
    grid, block = CONV_TILES[version].grid(m, positions, groups)
    launch(kernel, grid, block, x, w.reshape(f, -1), b, y, np.int32(kh), np.int32(kw), np.int32(stride),
           np.int32(pad), np.int32(groups))
    return y


def conv2d_forward_v2(x, w, b, stride=1, pad=0, groups=1):
    return _conv2d_forward_gemm(2, conv_forward_tiled_kernel, x, w, b, stride, pad, groups)


def conv2d_forward_v3(x, w, b, stride=1, pad=0, groups=1):
    return _conv2d_forward_gemm(3, conv_forward_register_kernel, x, w, b, stride, pad, groups)


VERSIONS = {"conv2d_forward": {1: conv2d_forward_v1, 2: conv2d_forward_v2, 3: conv2d_forward_v3}}

COMPILE_TARGETS = [
    kernel_target("conv2d_forward", 1, conv_forward_direct_kernel, DIRECT_SIGNATURE),
    kernel_target("conv2d_forward", 2, conv_forward_tiled_kernel, GEMM_SIGNATURE),
    kernel_target("conv2d_forward", 3, conv_forward_register_kernel, GEMM_SIGNATURE),
]
