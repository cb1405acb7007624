"""Launchers of the fully connected layer: y = x·wᵀ + b and its gradients, through kernels.numba.gemm.

Versions (the GEMM kernel each uses; see kernels/numba/gemm.py for what each adds):
    v1 gemm_naive_kernel   v2 gemm_tiled_kernel   v3 gemm_register_kernel
The bias gradient is column_sums_kernel in every version.
"""

from __future__ import annotations

import functools

import numpy as np

from kernels.contract import check_linear_backward, check_linear_forward
from kernels.geometry import LINEAR_TILES, grid_1d, grid_2d
from kernels.numba.gemm import (
    GEMM_SIGNATURE,
    column_sums_kernel,
    gemm_naive_kernel,
    gemm_register_kernel,
    gemm_tiled_kernel,
)
from kernels.numba.runtime import SPEC, empty, launch, xp
from kernels.numba.targets import kernel_target

GEMM_KERNELS = {1: gemm_naive_kernel, 2: gemm_tiled_kernel, 3: gemm_register_kernel}


@functools.cache
def _no_bias():
    """The bias argument of a product without bias (never read): one float, made once."""
    return xp.zeros(1, dtype=np.float32)


def gemm(version, a, b, c, m, n, k, a_strides, b_strides, bias=None):
    """c (M, N) = A·B (+ bias), A(i, p) = a[i·a_strides[0] + p·a_strides[1]], B likewise."""
    kernel = GEMM_KERNELS[version]
    if version == 1:
        grid, block = grid_2d(m, n)
    else:
        grid, block = LINEAR_TILES[version].grid(m, n)
    launch(
        kernel, grid, block, a.reshape(-1), b.reshape(-1), _no_bias() if bias is None else bias, c,
        np.int32(m), np.int32(n), np.int32(k), np.int32(a_strides[0]), np.int32(a_strides[1]),
        np.int32(b_strides[0]), np.int32(b_strides[1]), np.int32(bias is not None),
    )


def column_sums(matrix):
    sums = empty((matrix.shape[1],))
    grid, block = grid_1d(matrix.shape[1])
    launch(column_sums_kernel, grid, block, matrix, sums)
    return sums


def _linear_forward(version, x, w, b):
    batch, outputs = check_linear_forward(SPEC, x, w, b)
    inputs = x.shape[1]
    y = empty((batch, outputs))
    gemm(version, x, w, y, batch, outputs, inputs, (inputs, 1), (1, inputs), bias=b)
    return y


def _linear_backward(version, dy, x, w):
    check_linear_backward(SPEC, dy, x, w)
    batch, inputs = x.shape
    outputs = w.shape[0]
    dx = empty((batch, inputs))
    dw = empty((outputs, inputs))
    gemm(version, dy, w, dx, batch, inputs, outputs, (outputs, 1), (inputs, 1))
    gemm(version, dy, x, dw, outputs, inputs, batch, (1, outputs), (inputs, 1))
    return dx, dw, column_sums(dy)


def _versions(function):
    def launcher(version):
        bound = functools.partial(function, version)
        bound.__name__ = f"{function.__name__.lstrip('_')}_v{version}"
        bound.__doc__ = f"{function.__name__.lstrip('_')} through GEMM v{version}."
        return bound

    return {version: launcher(version) for version in GEMM_KERNELS}


VERSIONS = {
    "linear_forward": _versions(_linear_forward),
    "linear_backward": _versions(_linear_backward),
}

COMPILE_TARGETS = [
    *(kernel_target(op, version, kernel, GEMM_SIGNATURE)
      for op in ("linear_forward", "linear_backward") for version, kernel in GEMM_KERNELS.items()),
    *(kernel_target("linear_backward", version, column_sums_kernel, "void(float32[:, ::1], float32[::1])")
      for version in GEMM_KERNELS),
]
