"""ReLU: one thread per element, the simplest kernels of the face.

    v1  one thread per element of the flattened array (grid_1d), a bounds check for the last block.

Arrays of any rank reach the kernels flattened: a C-contiguous array and its 1-D view share memory.
"""

from __future__ import annotations

from kernels.contract import check_elementwise
from kernels.geometry import grid_1d
from kernels.numba.compiler import cuda, float32
from kernels.numba.runtime import SPEC, declare, empty, launch

FLAT = "float32[::1]"


@cuda.jit
def relu_forward_kernel(x, y):
    """y[i] = max(x[i], 0).

    x (count,), y (count,) out. Thread i = blockIdx.x·blockDim.x + threadIdx.x covers element i.
    """
    i = cuda.grid(1)
    if i < x.size:
        value = x[i]
        y[i] = value if value > float32(0.0) else float32(0.0)


@cuda.jit
def relu_backward_kernel(dy, y, dx):
    """dx[i] = dy[i] where y[i] > 0, else 0 (the subgradient at 0 is 0).

    dy, y (count,), dx (count,) out. Thread i covers element i.
    """
    i = cuda.grid(1)
    if i < dy.size:
        dx[i] = dy[i] if y[i] > float32(0.0) else float32(0.0)


def relu_forward_v1(x):
    check_elementwise(SPEC, [("x", x)])
    y = empty(x.shape)
    grid, block = grid_1d(x.size)
    launch(relu_forward_kernel, grid, block, x.reshape(-1), y.reshape(-1))
    return y


def relu_backward_v1(dy, y):
    check_elementwise(SPEC, [("dy", dy), ("y", y)])
    dx = empty(dy.shape)
    grid, block = grid_1d(dy.size)
    launch(relu_backward_kernel, grid, block, dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx


VERSIONS = {
    "relu_forward": {1: relu_forward_v1},
    "relu_backward": {1: relu_backward_v1},
}

declare("relu_forward", 1, relu_forward_kernel, f"void({FLAT}, {FLAT})")
declare("relu_backward", 1, relu_backward_kernel, f"void({FLAT}, {FLAT}, {FLAT})")
