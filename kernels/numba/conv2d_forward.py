"""Convolution forward kernels (cross-correlation with stride, zero padding and groups).

    y[n, f, oh, ow] = b[f] + Σ_{c < CG, i < KH, j < KW} w[f, c, i, j]·x[n, g·CG + c, oh·s − pad + i, ow·s − pad + j]
    with g = f // FG, CG = C/G, FG = F/G, and x = 0 in the padding.

    v1  direct: one thread per output element walks its CG·KH·KW window (grid_1d over N·F·OH·OW).
    v2  implicit GEMM (kernels/numba/gemm.py with the operands of conv2d_operands.py): per group
        (grid z), y[g] = W[g]·cols[g] with M = FG filters, N = N·OH·OW positions, K = CG·KH·KW;
        16 x 16 x 16 shared-memory tiles (CONV_TILES[2]), one output per thread. The weights are
        read once per block instead of once per output, and no im2col buffer is ever written to
        global memory.
    v3  + register blocking (CONV_TILES[3]): 64 x 64 block tiles, each thread a 4 x 4 tile of
        outputs in registers, so each staged value feeds 4 products. Promoted.

The launchers are in kernels/numba/conv2d.py.
"""

from __future__ import annotations

from kernels.geometry import CONV_TILES, DOUBLE_BUFFERED_TILE, WARP_TILES
from kernels.numba.compiler import cuda, float32
from kernels.numba.conv2d_operands import filter_rows_at, forward_columns_at, store_forward
from kernels.numba.gemm import DOUBLE_BUFFERED, TILED, WARP_TILED, named_kernel, tile_shapes, tiled_product

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


def gemm_kernel(tile, name: str, schedule: str = TILED):
    """A v2-v5 kernel: the product of kernels/numba/gemm.py at `tile`, a geometry.Tile, with the
    version's schedule (v2 and v3 differ by their thread tile only)."""
    block_m, block_n = tile.block_m, tile.block_n
    a_shape, b_shape = tile_shapes(tile, schedule)
    product = tiled_product(tile, filter_rows_at, forward_columns_at, store_forward, schedule)

    def kernel(x, w_rows, b, y, kh, kw, stride, pad, groups):
        """x (N, C, H, W), w_rows (F, CG·KH·KW) = w viewed as rows, b (F,); y (N, F, OH, OW) out.

        Block (bx, by, g) covers filters g·FG + by·block_m .. and positions bx·block_n .. of group g.
        """
        a_tile = cuda.shared.array(a_shape, float32)
        b_tile = cuda.shared.array(b_shape, float32)
        g = cuda.blockIdx.z
        out_h, out_w = y.shape[2], y.shape[3]
        filters_per_group = y.shape[1] // groups
        channels_per_group = x.shape[1] // groups
        f0 = g * filters_per_group
        columns = (x, g * channels_per_group, kh, kw, out_h, out_w, stride, pad)
        product(a_tile, b_tile, (w_rows, f0), True, columns, False, (y, b, f0), filters_per_group,
                x.shape[0] * out_h * out_w, 0, channels_per_group * kh * kw, cuda.blockIdx.y * block_m,
                cuda.blockIdx.x * block_n)

    return named_kernel(kernel, name)


conv_forward_tiled_kernel = gemm_kernel(CONV_TILES[2], "conv_forward_tiled_kernel")
conv_forward_register_kernel = gemm_kernel(CONV_TILES[3], "conv_forward_register_kernel")
conv_forward_double_buffered_kernel = gemm_kernel(DOUBLE_BUFFERED_TILE, "conv_forward_double_buffered_kernel",
                                                  DOUBLE_BUFFERED)
conv_forward_warp_tiled_kernel = gemm_kernel(WARP_TILES[0], "conv_forward_warp_tiled_kernel", WARP_TILED)
