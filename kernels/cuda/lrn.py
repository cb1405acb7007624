"""lrn_forward and lrn_backward of the `cuda` face: launchers for lrn.cu (v1 only: one thread per
(img, iy, ix) column sliding the channel window)."""

from __future__ import annotations

from kernels import geometry
from kernels.contract import check_lrn_backward, check_lrn_forward
from kernels.cuda.runtime import declare, empty, f32, i32, launch, require_int32_indexable, spec

FORWARD = declare("lrn_forward", 1, "main", "lrn.cu", "lrn_forward_v1")
BACKWARD = declare("lrn_backward", 1, "main", "lrn.cu", "lrn_backward_v1")


def lrn_forward_v1(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Returns (y, scale)."""
    size, alpha, beta, k = check_lrn_forward(spec(), x, size, alpha, beta, k)
    require_int32_indexable(x=x)
    n, c, h, w = x.shape
    y, scale = empty(x.shape), empty(x.shape)
    launch(FORWARD, *geometry.grid_1d(n * h * w), (
        x, y, scale, i32(n), i32(c), i32(h * w), i32(size), f32(alpha), f32(beta), f32(k),
    ))
    return y, scale


def lrn_backward_v1(dy, x, y, scale, size=5, alpha=1e-4, beta=0.75, k=2.0):
    size, alpha, beta, k = check_lrn_backward(spec(), dy, x, y, scale, size, alpha, beta, k)
    require_int32_indexable(x=x)
    n, c, h, w = x.shape
    dx = empty(x.shape)
    # 2·alpha·beta in double, rounded once, as the reference forms it.
    launch(BACKWARD, *geometry.grid_1d(n * h * w), (
        dy, x, y, scale, dx, i32(n), i32(c), i32(h * w), i32(size), f32(beta), f32(2.0 * alpha * beta),
    ))
    return dx


VERSIONS = {
    "lrn_forward": {1: lrn_forward_v1},
    "lrn_backward": {1: lrn_backward_v1},
}
