"""Staging of convolution operands into shared-memory tiles: the "implicit" in implicit GEMM.

For group g, with CG = C/G input channels and FG = F/G filters per group, the three products are
(kernels/geometry.py: conv_forward_gemm, conv_data_gemm, conv_filter_gemm):
    forward  y[g]  (FG, P)          = W[g] (FG, CG·KH·KW) · cols[g] (CG·KH·KW, P)
    filter   dw[g] (FG, CG·KH·KW)   = dY[g] (FG, P) · cols[g]ᵀ
    data     dx[g] (CG, N·H·W)      = taps_w[g] (CG, FG·KH·KW) · taps_dy[g] (FG·KH·KW, N·H·W)
where P = N·OH·OW output positions and
    cols(k, p) = x[n, g·CG + c, oh·stride − pad + i, ow·stride − pad + j]  (0 in the padding)
    with k = (c·KH + i)·KW + j and p = (n·OH + oh)·OW + ow;
    taps_w(c, k) = w[g·FG + f, c, i, j] and taps_dy(k, q) = dy[n, g·FG + f, oh, ow] for the output
    (oh, ow) whose window puts tap (i, j) on input q = (n·H + h)·W + w (0 if none does), k = (f·KH + i)·KW + j.
cols has CG·KH·KW·P elements (for AlexNet's conv1 at batch 128, 363 x 387,200 floats = 562 MB) and
is never stored: each stager below computes the elements of its tile from x, dy or w directly.

Every stager is called by every thread of the block (each thread fills elements t, t + blockDim.x,
... of the tile) and writes 0 outside the operand, so the tile product needs no bounds checks.
Neighbouring threads take neighbouring positions (ow or w), so their global reads are neighbours
in memory (stride apart in x for a strided convolution).
"""

from __future__ import annotations

from kernels.numba.compiler import cuda, float32


@cuda.jit(device=True)
def stage_matrix_rows(matrix, tile, row_offset, row0, k0, rows, depth_total):
    """tile[kk, ii] = matrix[row_offset + row0 + ii, k0 + kk] for row0 + ii < rows and k0 + kk < depth_total.

    matrix is row-major with K contiguous (the weights viewed as (F, CG·KH·KW)); neighbouring threads
    take neighbouring kk.
    """
    depth, width = tile.shape
    for e in range(cuda.threadIdx.x, depth * width, cuda.blockDim.x):
        ii = e // depth
        kk = e % depth
        row = row0 + ii
        k = k0 + kk
        tile[kk, ii] = matrix[row_offset + row, k] if row < rows and k < depth_total else float32(0.0)


@cuda.jit(device=True)
def im2col_value(x, c0, k, p, kh, kw, out_h, out_w, stride, pad):
    """cols(k, p) of the group whose channels start at c0; 0 where the window reaches into the padding."""
    j = k % kw
    i = (k // kw) % kh
    c = k // (kw * kh)
    ow = p % out_w
    oh = (p // out_w) % out_h
    n = p // (out_w * out_h)
    h = oh * stride - pad + i
    w = ow * stride - pad + j
    if h >= 0 and h < x.shape[2] and w >= 0 and w < x.shape[3]:
        return x[n, c0 + c, h, w]
    return float32(0.0)


@cuda.jit(device=True)
def stage_im2col(x, tile, c0, k0, p0, depth_total, positions, kh, kw, out_h, out_w, stride, pad):
    """tile[kk, jj] = cols(k0 + kk, p0 + jj): the B operand of the forward product (K x P)."""
    depth, width = tile.shape
    for e in range(cuda.threadIdx.x, depth * width, cuda.blockDim.x):
        kk = e // width
        jj = e % width
        k = k0 + kk
        p = p0 + jj
        value = float32(0.0)
        if k < depth_total and p < positions:
            value = im2col_value(x, c0, k, p, kh, kw, out_h, out_w, stride, pad)
        tile[kk, jj] = value


@cuda.jit(device=True)
def stage_im2col_transposed(x, tile, c0, p0, col0, positions, columns, kh, kw, out_h, out_w, stride, pad):
    """tile[kk, jj] = cols(col0 + jj, p0 + kk): the B operand of the filter product (P x CG·KH·KW)."""
    depth, width = tile.shape
    for e in range(cuda.threadIdx.x, depth * width, cuda.blockDim.x):
        jj = e // depth
        kk = e % depth
        p = p0 + kk
        col = col0 + jj
        value = float32(0.0)
        if p < positions and col < columns:
            value = im2col_value(x, c0, col, p, kh, kw, out_h, out_w, stride, pad)
        tile[kk, jj] = value


@cuda.jit(device=True)
def stage_output_gradient_rows(dy, tile, f0, row0, p0, rows, p_end):
    """tile[kk, ii] = dY[g](row0 + ii, p0 + kk) = dy[n, f0 + row0 + ii, oh, ow] for p = p0 + kk < p_end:
    the A operand of the filter product (FG x P), dy viewed as (N, F, OH·OW)."""
    depth, width = tile.shape
    plane = dy.shape[2]
    for e in range(cuda.threadIdx.x, depth * width, cuda.blockDim.x):
        ii = e // depth
        kk = e % depth
        row = row0 + ii
        p = p0 + kk
        value = float32(0.0)
        if row < rows and p < p_end:
            value = dy[p // plane, f0 + row, p % plane]
        tile[kk, ii] = value


@cuda.jit(device=True)
def stage_weight_taps(w, tile, f0, row0, k0, rows, depth_total):
    """tile[kk, ii] = w[f0 + f, row0 + ii, r] with k0 + kk = f·KH·KW + r: the A operand of the data
    product (CG x FG·KH·KW), w viewed as (F, CG, KH·KW)."""
    depth, width = tile.shape
    taps = w.shape[2]
    for e in range(cuda.threadIdx.x, depth * width, cuda.blockDim.x):
        ii = e // depth
        kk = e % depth
        row = row0 + ii
        k = k0 + kk
        value = float32(0.0)
        if row < rows and k < depth_total:
            value = w[f0 + k // taps, row, k % taps]
        tile[kk, ii] = value


@cuda.jit(device=True)
def output_gradient_at_tap(dy, f, n, h, w, i, j, stride, pad):
    """dy[n, f, oh, ow] for the output whose window puts tap (i, j) on input (h, w), or 0 if none does:
    oh·stride − pad + i = h needs h + pad − i >= 0, divisible by stride, and oh < OH; likewise ow."""
    th = h + pad - i
    tw = w + pad - j
    if th < 0 or tw < 0 or th % stride != 0 or tw % stride != 0:
        return float32(0.0)
    oh = th // stride
    ow = tw // stride
    if oh >= dy.shape[2] or ow >= dy.shape[3]:
        return float32(0.0)
    return dy[n, f, oh, ow]


@cuda.jit(device=True)
def stage_output_gradient_taps(dy, tile, f0, k0, q0, depth_total, inputs, kh, kw, height, width, stride, pad):
    """tile[kk, jj] = dy at the output that tap (i, j) of filter f0 + f puts on input q0 + jj, with
    k0 + kk = (f·KH + i)·KW + j and input q = (n·H + h)·W + w: the B operand of the data product,
    0 where no output's window puts that tap on that input (padding, or off the stride grid)."""
    depth, tile_width = tile.shape
    for e in range(cuda.threadIdx.x, depth * tile_width, cuda.blockDim.x):
        kk = e // tile_width
        jj = e % tile_width
        k = k0 + kk
        q = q0 + jj
        value = float32(0.0)
        if k < depth_total and q < inputs:
            j = k % kw
            i = (k // kw) % kh
            f = k // (kw * kh)
            w = q % width
            h = (q // width) % height
            n = q // (width * height)
            value = output_gradient_at_tap(dy, f0 + f, n, h, w, i, j, stride, pad)
        tile[kk, jj] = value
