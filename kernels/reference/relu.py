"""ReLU: y = max(x, 0), and its gradient."""

from __future__ import annotations

import numpy as np

from kernels.contract import NUMPY_SPEC, check_elementwise


def relu_forward(x):
    check_elementwise(NUMPY_SPEC, [("x", x)])
    return np.maximum(x, 0)


def relu_backward(dy, y):
    """dx = dy where y > 0, else 0 (the subgradient at 0 is taken as 0)."""
    check_elementwise(NUMPY_SPEC, [("dy", dy), ("y", y)])
    return np.where(y > 0, dy, 0).astype(dy.dtype, copy=False)
