"""Fully connected layer: y = x·wᵀ + b with x (N, I), w (O, I), b (O,)."""

from __future__ import annotations

import numpy as np

from kernels.contract import NUMPY_SPEC, check_linear_backward, check_linear_forward


def linear_forward(x, w, b):
    check_linear_forward(NUMPY_SPEC, x, w, b)
    return np.ascontiguousarray(x @ w.T + b)


def linear_backward(dy, x, w):
    """Returns (dx, dw, db): dx = dy·w, dw = dyᵀ·x, db = Σ_n dy."""
    check_linear_backward(NUMPY_SPEC, dy, x, w)
    return dy @ w, np.ascontiguousarray(dy.T @ x), dy.sum(axis=0)
