"""Launchers of conv2d_backward: (dx, dw, db) from the kernels of conv_data.py and conv_filter.py.

    v1  direct kernels: dx gathered per input element, dw one thread per weight.
    v2  dx and dw as implicit GEMMs with 16 x 16 x 16 shared-memory tiles; dw split-K.
    v3  + 4 x 4 register tiles (promoted).
db is the one-block-per-filter reduction in every version.
"""

from __future__ import annotations

import numpy as np

from kernels.contract import check_conv2d_backward
from kernels.geometry import CONV_TILES, conv_data_gemm, conv_filter_gemm, grid_1d, grid_rows, split_k
from kernels.numba import conv2d_backward as conv_filter
from kernels.numba import conv2d_data as conv_data
from kernels.numba.runtime import SPEC, empty, launch
from kernels.numba.targets import kernel_target

GEMM_KERNELS = {2: (conv_data.conv_data_tiled_kernel, conv_filter.conv_filter_tiled_kernel),
                3: (conv_data.conv_data_register_kernel, conv_filter.conv_filter_register_kernel)}


def _bias_gradient(dy):
    n, f, oh, ow = dy.shape
    db = empty((f,))
    grid, block = grid_rows(f)
    launch(conv_filter.conv_bias_kernel, grid, block, dy.reshape(n, f, oh * ow), db)
    return db


def conv2d_backward_v1(dy, x, w, stride=1, pad=0, groups=1):
    stride, pad, groups, _ = check_conv2d_backward(SPEC, dy, x, w, stride, pad, groups)
    scalars = (np.int32(stride), np.int32(pad), np.int32(groups))
    dx = empty(x.shape)
    launch(conv_data.conv_data_direct_kernel, *grid_1d(dx.size), dy, w, dx, *scalars)
    dw = empty(w.shape)
    launch(conv_filter.conv_filter_direct_kernel, *grid_1d(dw.size), dy, x, dw, *scalars)
    return dx, dw, _bias_gradient(dy)


def _conv2d_backward_gemm(version, dy, x, w, stride, pad, groups):
    stride, pad, groups, (n, f, oh, ow) = check_conv2d_backward(SPEC, dy, x, w, stride, pad, groups)
    data_kernel, filter_kernel = GEMM_KERNELS[version]
    tile = CONV_TILES[version]
    c, h, width = x.shape[1:]
    channels_per_group, kh, kw = w.shape[1:]

    dx = empty(x.shape)
    m, inputs, _ = conv_data_gemm(n, c, h, width, f, kh, kw, groups)
    grid, block = tile.grid(m, inputs, groups)
    launch(data_kernel, grid, block, dy, w.reshape(f, channels_per_group, kh * kw), dx,
           np.int32(kh), np.int32(kw), np.int32(stride), np.int32(pad), np.int32(groups))

    dw = empty(w.shape)
    m, columns, positions = conv_filter_gemm(n, c, f, oh, ow, kh, kw, groups)
    splits, chunk = split_k(positions, tile.block_k, tile.blocks(m, columns) * groups)
    partial = dw.reshape(1, f, columns) if splits == 1 else empty((splits, f, columns))
    grid, block = tile.grid(m, columns, groups * splits)
    launch(filter_kernel, grid, block, x, dy.reshape(n, f, oh * ow), partial, np.int32(kh), np.int32(kw),
           np.int32(ow), np.int32(stride), np.int32(pad), np.int32(groups), np.int32(splits), np.int32(chunk))
    if splits > 1:
        launch(conv_filter.sum_partials_kernel, *grid_1d(f * columns), partial, dw.reshape(f, columns))
    return dx, dw, _bias_gradient(dy)


def conv2d_backward_v2(dy, x, w, stride=1, pad=0, groups=1):
    return _conv2d_backward_gemm(2, dy, x, w, stride, pad, groups)


def conv2d_backward_v3(dy, x, w, stride=1, pad=0, groups=1):
    return _conv2d_backward_gemm(3, dy, x, w, stride, pad, groups)


VERSIONS = {"conv2d_backward": {1: conv2d_backward_v1, 2: conv2d_backward_v2, 3: conv2d_backward_v3}}

COMPILE_TARGETS = [
    kernel_target("conv2d_backward", 1, conv_data.conv_data_direct_kernel, conv_data.DIRECT_SIGNATURE),
    kernel_target("conv2d_backward", 1, conv_filter.conv_filter_direct_kernel, conv_filter.DIRECT_SIGNATURE),
    *(target
      for version, (data_kernel, filter_kernel) in GEMM_KERNELS.items()
      for target in (
          kernel_target("conv2d_backward", version, data_kernel, conv_data.GEMM_SIGNATURE),
          kernel_target("conv2d_backward", version, filter_kernel, conv_filter.GEMM_SIGNATURE),
          kernel_target("conv2d_backward", version, conv_filter.sum_partials_kernel,
                        conv_filter.SUM_PARTIALS_SIGNATURE),
      )),
    *(kernel_target("conv2d_backward", version, conv_filter.conv_bias_kernel, conv_filter.BIAS_SIGNATURE)
      for version in (1, 2, 3)),
]
