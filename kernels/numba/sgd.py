"""The SGD update with momentum and weight decay, in place: one thread per parameter.

    v1  one thread per element of the flattened arrays (grid_1d), a bounds check for the last block.
"""

from __future__ import annotations

import numpy as np

from kernels.contract import check_sgd_update
from kernels.geometry import grid_1d
from kernels.numba.compiler import cuda
from kernels.numba.runtime import SPEC, declare, launch

FLAT = "float32[::1]"


@cuda.jit
def sgd_update_kernel(w, grad, velocity, lr, momentum, decay_lr):
    """In place, in the reference's order of roundings:
        v ← momentum·v;  v ← v − (weight_decay·lr)·w;  v ← v − lr·grad;  w ← w + v.

    w (count,) in/out, grad (count,), velocity (count,) in/out; decay_lr = weight_decay·lr, rounded
    to float32 once on the host as the reference rounds it. Thread i covers element i.
    """
    i = cuda.grid(1)
    if i < w.size:
        v = velocity[i] * momentum
        v = v - decay_lr * w[i]
        v = v - lr * grad[i]
        velocity[i] = v
        w[i] = w[i] + v


def sgd_update_v1(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
    lr, momentum, weight_decay = check_sgd_update(SPEC, w, grad, velocity, lr, momentum, weight_decay)
    grid, block = grid_1d(w.size)
    launch(
        sgd_update_kernel, grid, block, w.reshape(-1), grad.reshape(-1), velocity.reshape(-1),
        np.float32(lr), np.float32(momentum), np.float32(weight_decay * lr),
    )


VERSIONS = {"sgd_update": {1: sgd_update_v1}}

declare("sgd_update", 1, sgd_update_kernel, f"void({FLAT}, {FLAT}, {FLAT}, float32, float32, float32)")
