"""relu_forward and relu_backward of the `cuda` face: launchers for relu.cu.

    v1  one thread per element
    v2  float4: one thread per four elements (promoted)

The float4 version needs 16-byte aligned arrays. CuPy's allocations are 256-byte aligned, but a
view into a larger buffer need not be: then the launcher runs the v1 kernel instead, which gives
the same result (runtime.launch_elementwise).
"""

from __future__ import annotations

from kernels.contract import check_elementwise
from kernels.cuda.runtime import declare, empty, launch_elementwise, require_int32_indexable, spec

RELU_FORWARD = {v: declare("relu_forward", v, "main", "relu.cu", f"relu_forward_v{v}") for v in (1, 2)}
RELU_BACKWARD = {v: declare("relu_backward", v, "main", "relu.cu", f"relu_backward_v{v}") for v in (1, 2)}


def _relu_forward(version: int):
    def relu_forward(x):
        check_elementwise(spec(), [("x", x)])
        require_int32_indexable(x=x)
        y = empty(x.shape)
        launch_elementwise(version, RELU_FORWARD, x.size, (x, y))
        return y

    relu_forward.__name__ = relu_forward.__qualname__ = f"relu_forward_v{version}"
    return relu_forward


def _relu_backward(version: int):
    def relu_backward(dy, y):
        check_elementwise(spec(), [("dy", dy), ("y", y)])
        require_int32_indexable(dy=dy)
        dx = empty(dy.shape)
        launch_elementwise(version, RELU_BACKWARD, dy.size, (dy, y, dx))
        return dx

    relu_backward.__name__ = relu_backward.__qualname__ = f"relu_backward_v{version}"
    return relu_backward


VERSIONS = {
    "relu_forward": {v: _relu_forward(v) for v in (1, 2)},
    "relu_backward": {v: _relu_backward(v) for v in (1, 2)},
}
