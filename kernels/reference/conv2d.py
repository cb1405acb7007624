"""Convolution (cross-correlation) with stride, zero padding and groups, through im2col and GEMM.

For group g the input windows are laid out as a matrix cols[g] of shape (C/G·KH·KW, N·OH·OW),
one column per output position, so that the whole group is one matrix product:
    y[g] = w[g] (F/G, C/G·KH·KW) @ cols[g].
Backward reuses the same matrices: dw[g] = dy[g] @ cols[g]ᵀ and dcols[g] = w[g]ᵀ @ dy[g], which
col2im scatters back (adding where windows overlap).
"""

from __future__ import annotations

import numpy as np

from kernels.contract import NUMPY_SPEC, check_conv2d_backward, check_conv2d_forward, strided


def _im2col(x, kh, kw, stride, pad, groups, oh, ow):
    n, c = x.shape[:2]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    channels_first = padded.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp), a view
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = channels_first[:, :, strided(i, oh, stride), strided(j, ow, stride)]
    return cols.reshape(groups, (c // groups) * kh * kw, n * oh * ow)


def _col2im(dcols, x_shape, kh, kw, stride, pad, oh, ow):
    n, c, h, w = x_shape
    dcols = dcols.reshape(c, kh, kw, n, oh, ow)
    dpadded = np.zeros((c, n, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dpadded[:, :, strided(i, oh, stride), strided(j, ow, stride)] += dcols[:, i, j]
    return np.ascontiguousarray(dpadded[:, :, pad : pad + h, pad : pad + w].transpose(1, 0, 2, 3))


def conv2d_forward(x, w, b, stride=1, pad=0, groups=1):
    """y[n,f,oh,ow] = b[f] + Σ_{c,i,j} w[f,c,i,j]·xpad[n, g·C/G + c, oh·stride + i, ow·stride + j], g = f // (F/G)."""
    stride, pad, groups, (n, f, oh, ow) = check_conv2d_forward(NUMPY_SPEC, x, w, b, stride, pad, groups)
    kh, kw = w.shape[2:]
    cols = _im2col(x, kh, kw, stride, pad, groups, oh, ow)
    y = np.matmul(w.reshape(groups, f // groups, -1), cols)  # (G, F/G, N·OH·OW)
    y = y.reshape(f, n, oh, ow).transpose(1, 0, 2, 3) + b.reshape(1, f, 1, 1)
    return np.ascontiguousarray(y)


def conv2d_backward(dy, x, w, stride=1, pad=0, groups=1):
    """Returns (dx, dw, db) for dy = ∂L/∂y of conv2d_forward(x, w, b, stride, pad, groups)."""
    stride, pad, groups, (n, f, oh, ow) = check_conv2d_backward(NUMPY_SPEC, dy, x, w, stride, pad, groups)
    kh, kw = w.shape[2:]
    cols = _im2col(x, kh, kw, stride, pad, groups, oh, ow)
    dy_matrix = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(groups, f // groups, n * oh * ow)
    w_matrix = w.reshape(groups, f // groups, -1)
    dw = np.matmul(dy_matrix, cols.transpose(0, 2, 1)).reshape(w.shape)
    db = dy.sum(axis=(0, 2, 3))
    dcols = np.matmul(w_matrix.transpose(0, 2, 1), dy_matrix)
    dx = _col2im(dcols, x.shape, kh, kw, stride, pad, oh, ow)
    return dx, np.ascontiguousarray(dw), db
