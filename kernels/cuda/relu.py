"""ReLU, dropout and the SGD update of the `cuda` face: launchers for relu.cu, dropout.cu, sgd.cu.

    relu_forward, relu_backward   v1 one thread per element; v2 float4 (promoted)
    dropout_forward               v1 one thread per Philox block of four elements
    dropout_backward              v1 one thread per element
    sgd_update                    v1 one thread per parameter; v2 float4 (promoted)

The float4 versions need 16-byte aligned arrays. CuPy's allocations are 256-byte aligned, but a
view into a larger buffer need not be: then the launcher runs the v1 kernel instead, which gives
the same result.
"""

from __future__ import annotations

import numpy as np

from kernels import geometry
from kernels.contract import (
    check_dropout_mask,
    check_dropout_params,
    check_elementwise,
    check_sgd_update,
    dropout_scale,
    dropout_threshold,
    split_u64,
)
from kernels.cuda.runtime import backend, declare, empty, f32, i32, launch, require_int32_indexable, spec, u32

VECTOR_BYTES = 16

RELU_FORWARD = {v: declare("relu_forward", v, "main", "relu.cu", f"relu_forward_v{v}") for v in (1, 2)}
RELU_BACKWARD = {v: declare("relu_backward", v, "main", "relu.cu", f"relu_backward_v{v}") for v in (1, 2)}
SGD = {v: declare("sgd_update", v, "main", "sgd.cu", f"sgd_update_v{v}") for v in (1, 2)}
DROPOUT_FORWARD = declare("dropout_forward", 1, "main", "dropout.cu", "dropout_forward_v1")
DROPOUT_BACKWARD = declare("dropout_backward", 1, "main", "dropout.cu", "dropout_backward_v1")


def _aligned(*arrays) -> bool:
    pointer = backend().pointer
    return all(pointer(a) % VECTOR_BYTES == 0 for a in arrays)


def _launch_elementwise(version: int, targets, count: int, arrays, scalars=()):
    """v1: a thread per element. v2: a thread per four elements, when every array is aligned."""
    if version == 2 and _aligned(*arrays):
        launch(targets[2], *geometry.grid_1d(max(count // 4, 1)), (*arrays, *scalars, i32(count)))
    else:
        launch(targets[1], *geometry.grid_1d(count), (*arrays, *scalars, i32(count)))


def _relu_forward(version: int):
    def relu_forward(x):
        check_elementwise(spec(), [("x", x)])
        require_int32_indexable(x=x)
        y = empty(x.shape)
        _launch_elementwise(version, RELU_FORWARD, x.size, (x, y))
        return y

    relu_forward.__name__ = relu_forward.__qualname__ = f"relu_forward_v{version}"
    return relu_forward


def _relu_backward(version: int):
    def relu_backward(dy, y):
        check_elementwise(spec(), [("dy", dy), ("y", y)])
        require_int32_indexable(dy=dy)
        dx = empty(dy.shape)
        _launch_elementwise(version, RELU_BACKWARD, dy.size, (dy, y, dx))
        return dx

    relu_backward.__name__ = relu_backward.__qualname__ = f"relu_backward_v{version}"
    return relu_backward


def _sgd_update(version: int):
    def sgd_update(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
        """In place: v ← momentum·v − weight_decay·lr·w − lr·grad; w ← w + v. Returns None."""
        lr, momentum, weight_decay = check_sgd_update(spec(), w, grad, velocity, lr, momentum, weight_decay)
        require_int32_indexable(w=w)
        # weight_decay·lr in double, rounded once, as the reference forms it.
        _launch_elementwise(version, SGD, w.size, (w, grad, velocity), (f32(lr), f32(momentum), f32(weight_decay * lr)))

    sgd_update.__name__ = sgd_update.__qualname__ = f"sgd_update_v{version}"
    return sgd_update


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
    "relu_forward": {v: _relu_forward(v) for v in (1, 2)},
    "relu_backward": {v: _relu_backward(v) for v in (1, 2)},
    "dropout_forward": {1: dropout_forward_v1},
    "dropout_backward": {1: dropout_backward_v1},
    "sgd_update": {v: _sgd_update(v) for v in (1, 2)},
}
