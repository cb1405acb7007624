"""Local response normalization across channels, the paper's form (alpha is not divided by size).

    v1  one thread per (n, h, w) column walks the C channels of its column, sliding the channel
        window: each step adds the square entering at c + size//2 + 1 and drops the one leaving at
        c − size//2, so a column costs O(C) instead of O(C·size). Threads of a warp hold neighbouring
        w, so every channel step reads a contiguous run of memory.

Forward:  scale[c] = k + alpha·Σ_{c' ∈ window(c)} x[c']², y[c] = x[c]·scale[c]^−beta, with
          window(c) = [c − size//2, c + size//2] ∩ [0, C).
Backward: dx[c] = dy[c]·scale[c]^−beta − 2·alpha·beta·x[c]·Σ_{c' ∈ window(c)} dy[c']·y[c']/scale[c']
(kernels/reference/lrn.py derives it). The running sum is float32, as the reference's shifted adds
are; its rounding error is far below k, which dominates scale.
"""

from __future__ import annotations

import math

import numpy as np

from kernels.contract import check_lrn_backward, check_lrn_forward
from kernels.geometry import grid_1d
from kernels.numba.compiler import cuda, float32
from kernels.numba.runtime import SPEC, declare, empty, launch

NCHW = "float32[:, :, :, ::1]"


@cuda.jit
def lrn_forward_kernel(x, y, scale, half, alpha, beta, k):
    """scale = k + alpha·(window sum of x²), y = x·scale^−beta.

    x (N, C, H, W); y, scale (N, C, H, W) out; half = size // 2. Thread t covers the column
    (n, h, w) = (t // (H·W), (t // W) % H, t % W) and writes all C channels of it.
    """
    t = cuda.grid(1)
    n_images, channels, height, width = x.shape
    if t >= n_images * height * width:
        return
    n = t // (height * width)
    h = (t // width) % height
    w = t % width
    window_sum = float32(0.0)
    for c in range(min(half, channels - 1) + 1):
        window_sum += x[n, c, h, w] * x[n, c, h, w]
    for c in range(channels):
        s = k + alpha * window_sum
        scale[n, c, h, w] = s
        y[n, c, h, w] = x[n, c, h, w] * math.pow(s, -beta)
        entering = c + half + 1
        if entering < channels:
            window_sum += x[n, entering, h, w] * x[n, entering, h, w]
        leaving = c - half
        if leaving >= 0:
            window_sum -= x[n, leaving, h, w] * x[n, leaving, h, w]


@cuda.jit
def lrn_backward_kernel(dy, x, y, scale, dx, half, two_alpha_beta, beta):
    """dx = dy·scale^−beta − 2·alpha·beta·x·(window sum of dy·y/scale).

    dy, x, y, scale (N, C, H, W); dx (N, C, H, W) out; half = size // 2. Thread t covers the column
    (n, h, w) as in lrn_forward_kernel.
    """
    t = cuda.grid(1)
    n_images, channels, height, width = x.shape
    if t >= n_images * height * width:
        return
    n = t // (height * width)
    h = (t // width) % height
    w = t % width
    window_sum = float32(0.0)
    for c in range(min(half, channels - 1) + 1):
        window_sum += dy[n, c, h, w] * y[n, c, h, w] / scale[n, c, h, w]
    for c in range(channels):
        s = scale[n, c, h, w]
        dx[n, c, h, w] = dy[n, c, h, w] * math.pow(s, -beta) - two_alpha_beta * x[n, c, h, w] * window_sum
        entering = c + half + 1
        if entering < channels:
            window_sum += dy[n, entering, h, w] * y[n, entering, h, w] / scale[n, entering, h, w]
        leaving = c - half
        if leaving >= 0:
            window_sum -= dy[n, leaving, h, w] * y[n, leaving, h, w] / scale[n, leaving, h, w]


def lrn_forward_v1(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    size, alpha, beta, k = check_lrn_forward(SPEC, x, size, alpha, beta, k)
    y = empty(x.shape)
    scale = empty(x.shape)
    n, _, h, w = x.shape
    grid, block = grid_1d(n * h * w)
    launch(lrn_forward_kernel, grid, block, x, y, scale, np.int32(size // 2), np.float32(alpha),
           np.float32(beta), np.float32(k))
    return y, scale


def lrn_backward_v1(dy, x, y, scale, size=5, alpha=1e-4, beta=0.75, k=2.0):
    size, alpha, beta, k = check_lrn_backward(SPEC, dy, x, y, scale, size, alpha, beta, k)
    dx = empty(x.shape)
    n, _, h, w = x.shape
    grid, block = grid_1d(n * h * w)
    launch(lrn_backward_kernel, grid, block, dy, x, y, scale, dx, np.int32(size // 2),
           np.float32(2.0 * alpha * beta), np.float32(beta))
    return dx


VERSIONS = {
    "lrn_forward": {1: lrn_forward_v1},
    "lrn_backward": {1: lrn_backward_v1},
}

declare("lrn_forward", 1, lrn_forward_kernel,
        f"void({NCHW}, {NCHW}, {NCHW}, int32, float32, float32, float32)")
declare("lrn_backward", 1, lrn_backward_kernel,
        f"void({NCHW}, {NCHW}, {NCHW}, {NCHW}, {NCHW}, int32, float32, float32)")
