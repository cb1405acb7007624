"""maxpool_forward and maxpool_backward of the `cuda` face: launchers for maxpool.cu (v1 only).

The backward kernel gathers, per input element, from the outputs whose window covers it; with the
forward's kernel and stride the window is exact, else kernels.geometry.pool_gather_window takes a
safe wider one. The Numba face does the same (kernels/numba/maxpool.py).
"""

from __future__ import annotations

import numpy as np

from kernels import geometry
from kernels.contract import check_maxpool_backward, check_maxpool_forward
from kernels.cuda.runtime import declare, empty, i32, launch, require_int32_indexable, spec

FORWARD = declare("maxpool_forward", 1, "main", "maxpool.cu", "maxpool_forward_v1")
BACKWARD = declare("maxpool_backward", 1, "main", "maxpool.cu", "maxpool_backward_v1")


def maxpool_forward_v1(x, kernel=3, stride=2):
    """Returns (y, argmax int32)."""
    kernel, stride, out_shape = check_maxpool_forward(spec(), x, kernel, stride)
    require_int32_indexable(x=x)
    y, argmax = empty(out_shape), empty(out_shape, np.int32)
    n, c, h, w = x.shape
    launch(FORWARD, *geometry.grid_1d(y.size), (
        x, y, argmax, i32(n * c), i32(h), i32(w), i32(out_shape[2]), i32(out_shape[3]), i32(kernel), i32(stride),
    ))
    return y, argmax


def maxpool_backward_v1(dy, argmax, input_shape, kernel=None, stride=None):
    """The contract's maxpool_backward; with the forward's kernel and stride the gather is tight."""
    input_shape, kernel, stride = check_maxpool_backward(spec(), dy, argmax, input_shape, kernel, stride)
    window_h, window_w, stride_h, stride_w = geometry.pool_gather_window(input_shape[2:], dy.shape[2:], kernel, stride)
    dx = empty(input_shape)
    require_int32_indexable(dx=dx)
    n, c, h, w = input_shape
    launch(BACKWARD, *geometry.grid_1d(dx.size), (
        dy, argmax, dx, i32(n * c), i32(h), i32(w), i32(dy.shape[2]), i32(dy.shape[3]),
        i32(window_h), i32(window_w), i32(stride_h), i32(stride_w),
    ))
    return dx


VERSIONS = {
    "maxpool_forward": {1: maxpool_forward_v1},
    "maxpool_backward": {1: maxpool_backward_v1},
}
