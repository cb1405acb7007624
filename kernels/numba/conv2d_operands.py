"""The operands of the convolution's implicit GEMMs: the "implicit" in implicit GEMM.

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
is never stored: each operand below computes the element the tiled product asks for from x, dy or
w directly.

Each operand is a device function at(args, mn, k) for kernels.numba.gemm.tiled_product (A indexed
(m, k), B indexed (n, k)), and each epilogue store(args, m, n, value) writes one result; `args` is
the tuple the kernel packs for it. Indices arrive in range: the product stages 0 outside the matrix.
"""

from __future__ import annotations

from kernels.numba.compiler import cuda, float32


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
def filter_rows_at(args, f, k):
    """Forward A (mn = filter f of the group, k = tap): (w_rows, f0), w viewed as (F, CG·KH·KW)."""
    w_rows, f0 = args
    return w_rows[f0 + f, k]


@cuda.jit(device=True)
def forward_columns_at(args, p, k):
    """Forward B (mn = output position p, k = tap): cols(k, p); args (x, c0, KH, KW, OH, OW, stride, pad)."""
    x, c0, kh, kw, out_h, out_w, stride, pad = args
    return im2col_value(x, c0, k, p, kh, kw, out_h, out_w, stride, pad)


@cuda.jit(device=True)
def store_forward(args, f, p, value):
    """y[n, f0 + f, oh, ow] = value + b[f0 + f] for position p; args (y, b, f0)."""
    y, b, f0 = args
    out_h, out_w = y.shape[2], y.shape[3]
    y[p // (out_h * out_w), f0 + f, (p // out_w) % out_h, p % out_w] = value + b[f0 + f]


@cuda.jit(device=True)
def output_gradient_rows_at(args, f, p):
    """Filter-gradient A (mn = filter f of the group, k = position p): dy[n, f0 + f, oh, ow];
    args (dy_planes, f0), dy viewed as (N, F, OH·OW)."""
    dy_planes, f0 = args
    plane = dy_planes.shape[2]
    return dy_planes[p // plane, f0 + f, p % plane]


@cuda.jit(device=True)
def filter_columns_at(args, col, p):
    """Filter-gradient B (mn = weight column col, k = position p): cols(col, p); args as forward_columns_at."""
    x, c0, kh, kw, out_h, out_w, stride, pad = args
    return im2col_value(x, c0, col, p, kh, kw, out_h, out_w, stride, pad)


@cuda.jit(device=True)
def store_filter_partial(args, f, col, value):
    """partial[split, f0 + f, col] = value: this split's share of dw; args (partial, split, f0)."""
    partial, split, f0 = args
    partial[split, f0 + f, col] = value


@cuda.jit(device=True)
def weight_taps_at(args, c, k):
    """Data-gradient A (mn = channel c of the group, k = (f·KH + i)·KW + j): w[f0 + f, c, i, j];
    args (w_taps, f0), w viewed as (F, CG, KH·KW)."""
    w_taps, f0 = args
    taps = w_taps.shape[2]
    return w_taps[f0 + k // taps, c, k % taps]


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
def output_gradient_taps_at(args, q, k):
    """Data-gradient B (mn = input position q = (n·H + h)·W + w, k = (f·KH + i)·KW + j): dy at the
    output that tap (i, j) of filter f0 + f puts on input q, 0 where none does (padding, or off the
    stride grid); args (dy, f0, KH, KW, H, W, stride, pad)."""
    dy, f0, kh, kw, height, width, stride, pad = args
    j = k % kw
    i = (k // kw) % kh
    f = k // (kw * kh)
    w = q % width
    h = (q // width) % height
    n = q // (width * height)
    return output_gradient_at_tap(dy, f0 + f, n, h, w, i, j, stride, pad)


@cuda.jit(device=True)
def store_data(args, c, q, value):
    """dx[n, c0 + c, h, w] = value for input position q; args (dx, c0)."""
    dx, c0 = args
    height, width = dx.shape[2], dx.shape[3]
    dx[q // (width * height), c0 + c, (q // width) % height, q % width] = value
