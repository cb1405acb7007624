"""dropout_forward and dropout_backward of the `cuda` face: launchers for dropout.cu.

    dropout_forward    v1 one thread per Philox block of four elements
    dropout_backward   v1 one thread per element
"""

from __future__ import annotations

import numpy as np

from kernels import geometry
from kernels.contract import (
    check_dropout_mask,
    check_dropout_params,
    check_elementwise,
    dropout_scale,
    dropout_threshold,
    split_u64,
)
from kernels.cuda.runtime import declare, empty, f32, i32, launch, require_int32_indexable, spec, u32

DROPOUT_FORWARD = declare("dropout_forward", 1, "main", "dropout.cu", "dropout_forward_v1")
DROPOUT_BACKWARD = declare("dropout_backward", 1, "main", "dropout.cu", "dropout_backward_v1")


def dropout_forward_v1(x, p, seed, offset):
    """Inverted dropout with the contract's Philox mask. Returns (y, mask uint8)."""
    check_elementwise(spec(), [("x", x)])
    p, seed, offset = check_dropout_params(p, seed, offset)
    require_int32_indexable(x=x)
    y, mask = empty(x.shape), empty(x.shape, np.uint8)
    seed_low, seed_high = split_u64(seed)
    offset_low, offset_high = split_u64(offset)
    launch(DROPOUT_FORWARD, *geometry.dropout_grid(x.size), (
        x, y, mask, i32(x.size), u32(dropout_threshold(p)), f32(dropout_scale(p)),
        u32(seed_low), u32(seed_high), u32(offset_low), u32(offset_high),
    ))
    return y, mask


def dropout_backward_v1(dy, mask, p):
    check_elementwise(spec(), [("dy", dy)])
    check_dropout_mask(spec(), mask, dy)
    p, _, _ = check_dropout_params(p, 0, 0)
    require_int32_indexable(dy=dy)
    dx = empty(dy.shape)
    launch(DROPOUT_BACKWARD, *geometry.grid_1d(dy.size), (dy, mask, dx, i32(dy.size), f32(dropout_scale(p))))
    return dx


VERSIONS = {
    "dropout_forward": {1: dropout_forward_v1},
    "dropout_backward": {1: dropout_backward_v1},
}
