"""Inverted dropout with the contract's Philox mask (kernels/README.md, "Dropout masks")."""

from __future__ import annotations

import numpy as np

from kernels.contract import (
    NUMPY_SPEC,
    check_dropout_mask,
    check_dropout_params,
    check_elementwise,
    dropout_scale,
    dropout_threshold,
)
from kernels.reference.philox import dropout_words


def dropout_mask(shape, p, seed, offset):
    """uint8 mask of the given shape: 1 where Philox word r_i satisfies (r_i >> 8)·2^-24 >= p."""
    p, seed, offset = check_dropout_params(p, seed, offset)
    words = dropout_words(int(np.prod(shape, dtype=np.int64)), seed, offset)
    return ((words >> np.uint32(8)) >= dropout_threshold(p)).astype(np.uint8).reshape(shape)


def dropout_forward(x, p, seed, offset):
    """Inverted dropout: y = x·mask/(1 − p). Returns (y, mask)."""
    check_elementwise(NUMPY_SPEC, [("x", x)])
    mask = dropout_mask(x.shape, p, seed, offset)
    return _apply_mask(x, mask, p), mask


def dropout_backward(dy, mask, p):
    check_elementwise(NUMPY_SPEC, [("dy", dy)])
    check_dropout_mask(NUMPY_SPEC, mask, dy)
    p, _, _ = check_dropout_params(p, 0, 0)
    return _apply_mask(dy, mask, p)


def _apply_mask(a, mask, p):
    return a * (mask * a.dtype.type(dropout_scale(p)))
