"""Overlapping max pooling without padding, and its gradient without races.

    v1  forward: one thread per output scans its kernel x kernel window in row-major order and
        keeps the first maximum (a strictly greater value replaces the best), the contract's tie
        rule; it records the winner as h·W + w in its input plane.
        backward: one thread per input element gathers dy from every output whose window covers
        the element and whose argmax chose it. Scattering from outputs instead would race where
        windows overlap (stride < kernel) and need float atomics, whose order, and so whose
        rounding, changes from run to run; the gather writes each dx element once, in a fixed order.
        The gather must know a window that holds every output's true window: the exact one when the
        caller passes the forward's kernel and stride, else a safe wider one
        (kernels.geometry.pool_gather_window).
"""

from __future__ import annotations

import numpy as np

from kernels.contract import check_maxpool_backward, check_maxpool_forward
from kernels.geometry import grid_1d, pool_gather_window
from kernels.numba.compiler import cuda, float32
from kernels.numba.runtime import SPEC, declare, empty, launch

NCHW = "float32[:, :, :, ::1]"
NCHW_INT = "int32[:, :, :, ::1]"


@cuda.jit
def maxpool_forward_kernel(x, y, argmax, kernel, stride):
    """y[n,c,oh,ow] = max over i, j < kernel of x[n, c, oh·stride + i, ow·stride + j], argmax its h·W + w.

    x (N, C, H, W); y (N, C, OH, OW) out, argmax (N, C, OH, OW) int32 out. Thread t covers output
    t in row-major order. Precondition: every window lies inside the input (no padding).
    """
    t = cuda.grid(1)
    n_images, channels, out_h, out_w = y.shape
    width = x.shape[3]
    if t >= n_images * channels * out_h * out_w:
        return
    ow = t % out_w
    oh = (t // out_w) % out_h
    c = (t // (out_w * out_h)) % channels
    n = t // (out_w * out_h * channels)
    h0 = oh * stride
    w0 = ow * stride
    best = x[n, c, h0, w0]
    best_position = h0 * width + w0
    for i in range(kernel):
        for j in range(kernel):
            value = x[n, c, h0 + i, w0 + j]
            if value > best:
                best = value
                best_position = (h0 + i) * width + (w0 + j)
    y[n, c, oh, ow] = best
    argmax[n, c, oh, ow] = best_position


@cuda.jit
def maxpool_backward_kernel(dy, argmax, dx, window_h, window_w, stride_h, stride_w):
    """dx[n,c,h,w] = Σ dy[n,c,oh,ow] over the outputs whose window covers (h, w) and whose argmax is h·W + w.

    dy, argmax (N, C, OH, OW); dx (N, C, H, W) out. Thread t covers input element t in row-major
    order. With windows of window_h rows placed every stride_h rows, output oh covers row h when
    oh·stride_h <= h < oh·stride_h + window_h: oh in [ceil((h − window_h + 1)/stride_h), floor(h/stride_h)]
    ∩ [0, OH); likewise for columns. Precondition: every output's true window lies inside the
    window given here (a larger one costs time, not correctness: the argmax test picks the outputs).
    """
    t = cuda.grid(1)
    n_images, channels, height, width = dx.shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    if t >= n_images * channels * height * width:
        return
    w = t % width
    h = (t // width) % height
    c = (t // (width * height)) % channels
    n = t // (width * height * channels)
    position = h * width + w
    first_oh = max(h - window_h + stride_h, 0) // stride_h  # ceil((h − window_h + 1)/stride_h), at least 0
    last_oh = min(h // stride_h, out_h - 1)
    first_ow = max(w - window_w + stride_w, 0) // stride_w
    last_ow = min(w // stride_w, out_w - 1)
    total = float32(0.0)
    for oh in range(first_oh, last_oh + 1):
        for ow in range(first_ow, last_ow + 1):
            if argmax[n, c, oh, ow] == position:
                total += dy[n, c, oh, ow]
    dx[n, c, h, w] = total


def maxpool_forward_v1(x, kernel=3, stride=2):
    kernel, stride, out_shape = check_maxpool_forward(SPEC, x, kernel, stride)
    y = empty(out_shape)
    argmax = empty(out_shape, np.int32)
    grid, block = grid_1d(y.size)
    launch(maxpool_forward_kernel, grid, block, x, y, argmax, np.int32(kernel), np.int32(stride))
    return y, argmax


def maxpool_backward_v1(dy, argmax, input_shape, kernel=None, stride=None):
    """The contract's maxpool_backward; with the forward's kernel and stride the gather is tight."""
    input_shape, kernel, stride = check_maxpool_backward(SPEC, dy, argmax, input_shape, kernel, stride)
    window_h, window_w, stride_h, stride_w = pool_gather_window(input_shape[2:], dy.shape[2:], kernel, stride)
    dx = empty(input_shape)
    grid, block = grid_1d(dx.size)
    launch(maxpool_backward_kernel, grid, block, dy, argmax, dx,
           np.int32(window_h), np.int32(window_w), np.int32(stride_h), np.int32(stride_w))
    return dx


VERSIONS = {
    "maxpool_forward": {1: maxpool_forward_v1},
    "maxpool_backward": {1: maxpool_backward_v1},
}

declare("maxpool_forward", 1, maxpool_forward_kernel, f"void({NCHW}, {NCHW}, {NCHW_INT}, int32, int32)")
declare("maxpool_backward", 1, maxpool_backward_kernel,
        f"void({NCHW}, {NCHW_INT}, {NCHW}, int32, int32, int32, int32)")
