"""The NumPy face: the oracle every kernel is checked against, and the CPU training backend.

Takes and returns NumPy arrays, float32 or float64 (one dtype per call).
"""

import numpy as np

from kernels.reference.conv2d import conv2d_backward, conv2d_forward
from kernels.reference.dropout import dropout_backward, dropout_forward, dropout_mask
from kernels.reference.linear import linear_backward, linear_forward
from kernels.reference.lrn import lrn_backward, lrn_forward
from kernels.reference.maxpool import maxpool_backward, maxpool_forward
from kernels.reference.relu import relu_backward, relu_forward
from kernels.reference.sgd import sgd_update
from kernels.reference.softmax_xent import softmax_xent_backward, softmax_xent_forward

NAME = "reference"
xp = np  # the array module of this face, for allocating arrays of its kind


def to_device(array):
    """Arrays of this face are NumPy arrays already."""
    return np.asarray(array, order="C")


def to_host(array):
    return np.asarray(array)


__all__ = [
    "NAME",
    "conv2d_backward",
    "conv2d_forward",
    "dropout_backward",
    "dropout_forward",
    "dropout_mask",
    "linear_backward",
    "linear_forward",
    "lrn_backward",
    "lrn_forward",
    "maxpool_backward",
    "maxpool_forward",
    "relu_backward",
    "relu_forward",
    "sgd_update",
    "softmax_xent_backward",
    "softmax_xent_forward",
    "to_device",
    "to_host",
    "xp",
]
