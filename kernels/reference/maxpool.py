"""Overlapping max pooling without padding, with the winner's position kept for backward.

argmax[n,c,oh,ow] = h·W + w of the winning input in its (n, c) plane; among equal values the
first in row-major window order wins (the scan below replaces the best only on a strict >).
"""

from __future__ import annotations

import numpy as np

from kernels.contract import NUMPY_SPEC, check_maxpool_backward, check_maxpool_forward, strided


def maxpool_forward(x, kernel=3, stride=2):
    """Returns (y, argmax) with argmax int32."""
    kernel, stride, (n, c, oh, ow) = check_maxpool_forward(NUMPY_SPEC, x, kernel, stride)
    width = x.shape[3]
    rows = np.arange(oh) * stride
    cols = np.arange(ow) * stride
    best = argmax = None
    for i in range(kernel):
        for j in range(kernel):
            candidate = x[:, :, strided(i, oh, stride), strided(j, ow, stride)]
            position = ((rows[:, None] + i) * width + (cols[None, :] + j)).astype(np.int32)
            if best is None:
                best = candidate.copy()
                argmax = np.broadcast_to(position, best.shape).copy()
            else:
                better = candidate > best
                best = np.where(better, candidate, best)
                argmax = np.where(better, position, argmax)
    return best, argmax


def maxpool_backward(dy, argmax, input_shape, kernel=None, stride=None):
    """dx gets dy of every output at the position that output chose; overlapping windows add up.

    kernel and stride (both or neither) are only checked against the shapes here: argmax says
    where each gradient goes.
    """
    (n, c, h, w), _, _ = check_maxpool_backward(NUMPY_SPEC, dy, argmax, input_shape, kernel, stride)
    plane_start = (np.arange(n * c, dtype=np.int64) * (h * w)).reshape(n, c, 1, 1)
    flat = np.bincount((plane_start + argmax).ravel(), weights=dy.ravel(), minlength=n * c * h * w)
    return flat.astype(dy.dtype).reshape(n, c, h, w)
