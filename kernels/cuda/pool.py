"""maxpool_forward and maxpool_backward of the `cuda` face: launchers for maxpool.cu (v1 only).

The backward kernel gathers, per input element, from the outputs whose window covers it, so it
must know a window that holds every output's true one. The contract's maxpool_backward(dy,
argmax, input_shape) is not told kernel and stride, and shapes alone cannot tell (55 -> 27 rows
fits 3/2, 2/2 and 29/1), so the window comes, in this order, from
1. kernel and stride passed as keywords (a layer knows them);
2. the geometry maxpool_forward recorded for this very argmax array (a weak reference, so an entry
   can never describe another array);
3. the shapes alone: windows of H − OH + 1 rows at stride 1. For any kernel k and stride s with
   (H − k)//s + 1 = OH, the outputs covering row h lie in [h − (H − OH), h], so this is correct for
   every pooling that gives these shapes, only slower.
The Numba face resolves it the same way (kernels/numba/pool.py).
"""

from __future__ import annotations

import weakref

import numpy as np

from kernels import geometry
from kernels.contract import check_int, check_maxpool_backward, check_maxpool_forward, pool_output_size
from kernels.cuda._runtime import declare, empty, i32, launch, require_int32_indexable, spec

FORWARD = declare("maxpool_forward", 1, "main", "maxpool.cu", "maxpool_forward_v1")
BACKWARD = declare("maxpool_backward", 1, "main", "maxpool.cu", "maxpool_backward_v1")

_recorded_geometry: dict[int, tuple[weakref.ref, int, int]] = {}


def _record_geometry(argmax, kernel: int, stride: int) -> None:
    key = id(argmax)
    try:
        reference = weakref.ref(argmax, lambda _, key=key: _recorded_geometry.pop(key, None))
    except TypeError:  # an array type without weak references: the other two ways remain
        return
    _recorded_geometry[key] = (reference, kernel, stride)


def gather_window(argmax, input_shape, kernel=None, stride=None) -> tuple[int, int, int, int]:
    """(window_h, window_w, stride_h, stride_w) for maxpool_backward_v1 (see the module docstring)."""
    height, width = input_shape[2:]
    out_h, out_w = argmax.shape[2:]
    if kernel is not None or stride is not None:
        if kernel is None or stride is None:
            raise ValueError("kernel, stride: give both or neither")
        kernel = check_int("kernel", kernel, 1)
        stride = check_int("stride", stride, 1)
        pooled = (pool_output_size(height, kernel, stride), pool_output_size(width, kernel, stride))
        if pooled != (out_h, out_w):
            raise ValueError(
                f"kernel, stride: {kernel}/{stride} pools {height}x{width} to {pooled[0]}x{pooled[1]}, "
                f"but argmax is {out_h}x{out_w}"
            )
        return kernel, kernel, stride, stride
    recorded = _recorded_geometry.get(id(argmax))
    if recorded is not None and recorded[0]() is argmax:
        _, kernel, stride = recorded
        if (pool_output_size(height, kernel, stride), pool_output_size(width, kernel, stride)) == (out_h, out_w):
            return kernel, kernel, stride, stride
    return height - out_h + 1, width - out_w + 1, 1, 1


def maxpool_forward_v1(x, kernel=3, stride=2):
    """Returns (y, argmax int32)."""
    kernel, stride, out_shape = check_maxpool_forward(spec(), x, kernel, stride)
    require_int32_indexable(x=x)
    y, argmax = empty(out_shape), empty(out_shape, np.int32)
    n, c, h, w = x.shape
    launch(FORWARD, *geometry.grid_1d(y.size), (
        x, y, argmax, i32(n * c), i32(h), i32(w), i32(out_shape[2]), i32(out_shape[3]), i32(kernel), i32(stride),
    ))
    _record_geometry(argmax, kernel, stride)
    return y, argmax


def maxpool_backward_v1(dy, argmax, input_shape, kernel=None, stride=None):
    """The contract's maxpool_backward; kernel and stride, optional here, make the gather tight."""
    input_shape = check_maxpool_backward(spec(), dy, argmax, input_shape)
    window_h, window_w, stride_h, stride_w = gather_window(argmax, input_shape, kernel, stride)
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
