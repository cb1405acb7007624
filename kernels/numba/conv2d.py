"""conv2d_forward and conv2d_backward of the Numba face: launchers for the kernels of
conv2d_forward.py and conv2d_backward.py (each file's header says what every version adds).

    v1  direct kernels: one thread per output, per input element (dx), per weight (dw)
    v2  implicit GEMM through kernels/numba/gemm.py, shared-memory tiles      geometry.CONV_TILES[2]
    v3  v2 + register blocking (promoted)                                    geometry.CONV_TILES[3]
    v4  v3 + double-buffered shared tiles staged through registers         geometry.DOUBLE_BUFFERED_TILE
    v5  v4 split into warp tiles (kernels/numba/gemm.py, staged_product)    geometry.WARP_TILES[0]
db is the same one-block-per-filter reduction in every version; dw of v2-v5 is split-K.
CANDIDATES: v2-v5 at every tile geometry of geometry.candidate_tiles, for the measured choice.
"""

from __future__ import annotations

import numpy as np

from kernels.contract import check_conv2d_backward, check_conv2d_forward
from kernels.geometry import (
    candidate_tiles,
    candidates,
    conv_data_gemm,
    conv_filter_gemm,
    conv_forward_gemm,
    grid_1d,
    grid_rows,
    split_k,
)
from kernels.numba import conv2d_backward as backward
from kernels.numba import conv2d_forward as forward
from kernels.numba.gemm import candidate_kernels
from kernels.numba.runtime import SPEC, declare, empty, launch

# (version, tile) -> kernel, for every candidate; the default tile of each version is among them.
FORWARD_GEMM = candidate_kernels(
    "conv2d_forward", {2: forward.conv_forward_tiled_kernel, 3: forward.conv_forward_register_kernel,
                       4: forward.conv_forward_double_buffered_kernel, 5: forward.conv_forward_warp_tiled_kernel},
    forward.gemm_kernel)
DATA_GEMM = candidate_kernels(
    "conv2d_backward", {2: backward.conv_data_tiled_kernel, 3: backward.conv_data_register_kernel,
                        4: backward.conv_data_double_buffered_kernel, 5: backward.conv_data_warp_tiled_kernel},
    backward.data_kernel)
FILTER_GEMM = candidate_kernels(
    "conv2d_backward", {2: backward.conv_filter_tiled_kernel, 3: backward.conv_filter_register_kernel,
                        4: backward.conv_filter_double_buffered_kernel, 5: backward.conv_filter_warp_tiled_kernel},
    backward.filter_kernel)
GEMM_VERSIONS = (2, 3, 4, 5)


def conv2d_forward_v1(x, w, b, stride=1, pad=0, groups=1):
    stride, pad, groups, out_shape = check_conv2d_forward(SPEC, x, w, b, stride, pad, groups)
    y = empty(out_shape)
    launch(forward.conv_forward_direct_kernel, *grid_1d(y.size), x, w, b, y, np.int32(stride), np.int32(pad),
           np.int32(groups))
    return y


def _conv2d_forward_gemm(version, x, w, b, stride=1, pad=0, groups=1, tile=None):
    stride, pad, groups, out_shape = check_conv2d_forward(SPEC, x, w, b, stride, pad, groups)
    n, f, oh, ow = out_shape
    kh, kw = w.shape[2:]
    y = empty(out_shape)
    m, positions, _ = conv_forward_gemm(n, x.shape[1], f, oh, ow, kh, kw, groups)
    tile = tile or candidate_tiles("conv2d_forward")[version][0]
    launch(FORWARD_GEMM[version, tile], *tile.grid(m, positions, groups), x, w.reshape(f, -1), b, y,
           np.int32(kh), np.int32(kw), np.int32(stride), np.int32(pad), np.int32(groups))
    return y


def conv2d_forward_v2(x, w, b, stride=1, pad=0, groups=1):
    return _conv2d_forward_gemm(2, x, w, b, stride, pad, groups)


def conv2d_forward_v3(x, w, b, stride=1, pad=0, groups=1):
    return _conv2d_forward_gemm(3, x, w, b, stride, pad, groups)


def conv2d_forward_v4(x, w, b, stride=1, pad=0, groups=1):
    return _conv2d_forward_gemm(4, x, w, b, stride, pad, groups)


def conv2d_forward_v5(x, w, b, stride=1, pad=0, groups=1):
    return _conv2d_forward_gemm(5, x, w, b, stride, pad, groups)


def _bias_gradient(dy):
    n, f, oh, ow = dy.shape
    db = empty((f,))
    launch(backward.conv_bias_kernel, *grid_rows(f), dy.reshape(n, f, oh * ow), db)
    return db


def conv2d_backward_v1(dy, x, w, stride=1, pad=0, groups=1):
    stride, pad, groups, _ = check_conv2d_backward(SPEC, dy, x, w, stride, pad, groups)
    scalars = (np.int32(stride), np.int32(pad), np.int32(groups))
    dx = empty(x.shape)
    launch(backward.conv_data_direct_kernel, *grid_1d(dx.size), dy, w, dx, *scalars)
    dw = empty(w.shape)
    launch(backward.conv_filter_direct_kernel, *grid_1d(dw.size), dy, x, dw, *scalars)
    return dx, dw, _bias_gradient(dy)


def _conv2d_backward_gemm(version, dy, x, w, stride=1, pad=0, groups=1, tile=None):
    stride, pad, groups, (n, f, oh, ow) = check_conv2d_backward(SPEC, dy, x, w, stride, pad, groups)
    tile = tile or candidate_tiles("conv2d_forward")[version][0]
    c, h, width = x.shape[1:]
    channels_per_group, kh, kw = w.shape[1:]

    dx = empty(x.shape)
    m, inputs, _ = conv_data_gemm(n, c, h, width, f, kh, kw, groups)
    launch(DATA_GEMM[version, tile], *tile.grid(m, inputs, groups), dy, w.reshape(f, channels_per_group, kh * kw), dx,
           np.int32(kh), np.int32(kw), np.int32(stride), np.int32(pad), np.int32(groups))

    dw = empty(w.shape)
    m, columns, positions = conv_filter_gemm(n, c, f, oh, ow, kh, kw, groups)
    splits, chunk = split_k(positions, tile.block_k, tile.blocks(m, columns) * groups)
    partial = dw.reshape(1, f, columns) if splits == 1 else empty((splits, f, columns))
    launch(FILTER_GEMM[version, tile], *tile.grid(m, columns, groups * splits), x, dy.reshape(n, f, oh * ow), partial,
           np.int32(kh), np.int32(kw), np.int32(ow), np.int32(stride), np.int32(pad), np.int32(groups),
           np.int32(splits), np.int32(chunk))
    if splits > 1:
        launch(backward.sum_partials_kernel, *grid_1d(f * columns), partial, dw.reshape(f, columns))
    return dx, dw, _bias_gradient(dy)


def conv2d_backward_v2(dy, x, w, stride=1, pad=0, groups=1):
    return _conv2d_backward_gemm(2, dy, x, w, stride, pad, groups)


def conv2d_backward_v3(dy, x, w, stride=1, pad=0, groups=1):
    return _conv2d_backward_gemm(3, dy, x, w, stride, pad, groups)


def conv2d_backward_v4(dy, x, w, stride=1, pad=0, groups=1):
    return _conv2d_backward_gemm(4, dy, x, w, stride, pad, groups)


def conv2d_backward_v5(dy, x, w, stride=1, pad=0, groups=1):
    return _conv2d_backward_gemm(5, dy, x, w, stride, pad, groups)


VERSIONS = {
    "conv2d_forward": {1: conv2d_forward_v1, 2: conv2d_forward_v2, 3: conv2d_forward_v3, 4: conv2d_forward_v4,
                       5: conv2d_forward_v5},
    "conv2d_backward": {1: conv2d_backward_v1, 2: conv2d_backward_v2, 3: conv2d_backward_v3, 4: conv2d_backward_v4,
                        5: conv2d_backward_v5},
}


def _at_tile(function, candidate):
    def launcher(*args, **kwargs):
        return function(candidate.version, *args, tile=candidate.tile, **kwargs)

    launcher.__name__ = launcher.__qualname__ = f"{function.__name__.lstrip('_')} {candidate}"
    return launcher


CANDIDATES = {
    op: {c: _at_tile(function, c) for c in candidates(op, GEMM_VERSIONS)}
    for op, function in (("conv2d_forward", _conv2d_forward_gemm), ("conv2d_backward", _conv2d_backward_gemm))
}

declare("conv2d_forward", 1, forward.conv_forward_direct_kernel, forward.DIRECT_SIGNATURE)
for (_version, _), _kernel in FORWARD_GEMM.items():
    declare("conv2d_forward", _version, _kernel, forward.GEMM_SIGNATURE)
declare("conv2d_backward", 1, backward.conv_data_direct_kernel, backward.DIRECT_SIGNATURE)
declare("conv2d_backward", 1, backward.conv_filter_direct_kernel, backward.DIRECT_SIGNATURE)
for (_version, _tile), _kernel in DATA_GEMM.items():
    declare("conv2d_backward", _version, _kernel, backward.DATA_GEMM_SIGNATURE)
    declare("conv2d_backward", _version, FILTER_GEMM[_version, _tile], backward.FILTER_GEMM_SIGNATURE)
for _version in GEMM_VERSIONS:
    declare("conv2d_backward", _version, backward.sum_partials_kernel, backward.SUM_PARTIALS_SIGNATURE)
for _version in (1, *GEMM_VERSIONS):  # the bias gradient: one kernel that every version launches
    declare("conv2d_backward", _version, backward.conv_bias_kernel, backward.BIAS_SIGNATURE)
