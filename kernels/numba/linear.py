"""The fully connected layer of the Numba face: y = x·wᵀ + b and its gradients, as products
C (M, N) = A (M, K)·B (K, N) [+ bias along N].

    v1  naive: one thread per output walks K, reading A and B from global memory (grid_2d).
    v2  the tiled product of kernels/numba/gemm.py at LINEAR_TILES[2] (16 x 16 x 16, one output
        per thread): each global value is read once per block instead of once per thread.
    v3  the same at LINEAR_TILES[3] (64 x 64 x 8, a 4 x 4 register tile per thread): each staged
        value is reused 4 times. Promoted.
    v4  v3 with two shared stages, the next tile fetched into registers while this one is
        multiplied (gemm.py, staged_product), at DOUBLE_BUFFERED_TILE.
    v5  v4 split into warp tiles, at WARP_TILES[0].

A and B are flat arrays read through strides, so one kernel serves all three products of a linear
layer without transposing anything in memory:
    y  = x·wᵀ + b   A = x  (a_row = I, a_col = 1), B(i, o) = w[o, i] (b_row = 1, b_col = I)   "NT"
    dx = dy·w       A = dy (a_row = O, a_col = 1), B = w  (b_row = I, b_col = 1)              "NN"
    dw = dyᵀ·x      A(o, n) = dy[n, o] (a_row = 1, a_col = O), B = x (b_row = I, b_col = 1)   "TN"
When a tile is staged, consecutive threads take consecutive addresses of whichever index of the
operand is contiguous (a_col == 1 or b_col == 1, the same for the whole block), so global loads
coalesce for every layout. The bias gradient db = Σ_n dy[n, :] is column_sums_kernel in every version.
CANDIDATES: v2-v5 at every tile geometry of geometry.candidate_tiles, and the split-K candidates
(geometry.LINEAR_SPLITS: the same kernels on a grid `splits` deep, each block reducing one chunk of K
into its own partial product, then column_sums_kernel adding them in split order: the partials are the
rows of a (splits, M·N) matrix), for the measured choice.
"""

from __future__ import annotations

import functools

import numpy as np

from kernels.contract import check_linear_backward, check_linear_forward
from kernels.geometry import (
    DOUBLE_BUFFERED_TILE,
    LINEAR_TILES,
    WARP_TILES,
    candidate_tiles,
    candidates,
    grid_1d,
    grid_2d,
    split_chunks,
)
from kernels.numba.compiler import cuda, float32
from kernels.numba.gemm import (
    DOUBLE_BUFFERED,
    TILED,
    WARP_TILED,
    candidate_kernels,
    named_kernel,
    tile_shapes,
    tiled_product,
)
from kernels.numba.runtime import SPEC, declare, empty, launch, xp

FLAT = "float32[::1]"
GEMM_SIGNATURE = f"void({FLAT}, {FLAT}, {FLAT}, float32[:, ::1], {', '.join(['int32'] * 8)})"
TILED_SIGNATURE = f"void({FLAT}, {FLAT}, {FLAT}, float32[:, ::1], {', '.join(['int32'] * 9)})"  # + chunk


@cuda.jit
def gemm_naive_kernel(a, b, bias, c, m, n, k, a_row, a_col, b_row, b_col, has_bias):
    """c[i, j] = Σ_p a[i·a_row + p·a_col]·b[p·b_row + j·b_col] (+ bias[j] when has_bias).

    a, b flat; bias (N,) (unused without has_bias); c (M, N) out. Thread (x, y) of the 2-D grid
    covers output (i, j) = (y, x): x along the contiguous columns of c.
    """
    j, i = cuda.grid(2)
    if i >= m or j >= n:
        return
    total = float32(0.0)
    for p in range(k):
        total += a[i * a_row + p * a_col] * b[p * b_row + j * b_col]
    if has_bias:
        total += bias[j]
    c[i, j] = total


@cuda.jit(device=True)
def strided_at(args, mn, k):
    """Element (mn, k) of a strided matrix: array[mn·mn_stride + k·k_stride]; args (array, mn_stride, k_stride)."""
    array, mn_stride, k_stride = args
    return array[mn * mn_stride + k * k_stride]


@cuda.jit(device=True)
def store_with_bias(args, i, j, value):
    """c[first_row + i, j] = value (+ bias[j] when has_bias); args (c, bias, has_bias, first_row)."""
    c, bias, has_bias, first_row = args
    c[first_row + i, j] = value + bias[j] if has_bias else value


def gemm_kernel(tile, name: str, schedule: str = TILED):
    """A v2-v5 kernel: the product of kernels/numba/gemm.py at `tile`, a geometry.Tile, with `schedule`."""
    block_m, block_n = tile.block_m, tile.block_n
    a_shape, b_shape = tile_shapes(tile, schedule)
    product = tiled_product(tile, strided_at, strided_at, store_with_bias, schedule)

    def kernel(a, b, bias, c, m, n, k, a_row, a_col, b_row, b_col, has_bias, chunk):
        """As gemm_naive_kernel, over k in [bz·chunk, (bz + 1)·chunk): block (bx, by, bz) covers the
        tile at rows by·block_m.., columns bx·block_n.. of partial product bz, rows bz·M.. of c
        (c is (splits·M, N); chunk a multiple of block_k, or K without a split). The bias goes into
        partial product 0 only. B is handed to the product indexed (n, k), as every B operand is."""
        a_tile = cuda.shared.array(a_shape, float32)
        b_tile = cuda.shared.array(b_shape, float32)
        split = cuda.blockIdx.z
        k_begin = split * chunk
        product(a_tile, b_tile, (a, a_row, a_col), a_col == 1, (b, b_col, b_row), b_col != 1,
                (c, bias, has_bias != 0 and split == 0, split * m), m, n, k_begin, min(k_begin + chunk, k),
                cuda.blockIdx.y * block_m, cuda.blockIdx.x * block_n)

    return named_kernel(kernel, name)


gemm_tiled_kernel = gemm_kernel(LINEAR_TILES[2], "gemm_tiled_kernel")
gemm_register_kernel = gemm_kernel(LINEAR_TILES[3], "gemm_register_kernel")
gemm_double_buffered_kernel = gemm_kernel(DOUBLE_BUFFERED_TILE, "gemm_double_buffered_kernel", DOUBLE_BUFFERED)
gemm_warp_tiled_kernel = gemm_kernel(WARP_TILES[0], "gemm_warp_tiled_kernel", WARP_TILED)
GEMM_KERNELS = {1: gemm_naive_kernel, 2: gemm_tiled_kernel, 3: gemm_register_kernel, 4: gemm_double_buffered_kernel,
                5: gemm_warp_tiled_kernel}
# (version, tile) -> kernel, for every candidate; the default tile of each version is among them.
TILED_KERNELS = candidate_kernels("linear_forward", {v: GEMM_KERNELS[v] for v in (2, 3, 4, 5)}, gemm_kernel)


@cuda.jit
def column_sums_kernel(matrix, sums):
    """sums[j] = Σ_i matrix[i, j], rows added in order.

    matrix (R, N); sums (N,) out. Thread j covers column j; neighbouring threads read neighbouring
    columns of a row, so every row is read in coalesced runs.
    """
    j = cuda.grid(1)
    if j >= matrix.shape[1]:
        return
    total = float32(0.0)
    for i in range(matrix.shape[0]):
        total += matrix[i, j]
    sums[j] = total


@functools.cache
def _no_bias():
    """The bias argument of a product without bias (never read): one float, made once."""
    return xp.zeros(1, dtype=np.float32)


def gemm(version, a, b, c, m, n, k, a_strides, b_strides, bias=None, tile=None, splits=1):
    """c (M, N) = A·B (+ bias), A(i, p) = a[i·a_strides[0] + p·a_strides[1]], B likewise; the tiled
    versions at `tile` (default: the version's own, the first of geometry.candidate_tiles), with K
    split in `splits` partial products (geometry.split_chunks) that column_sums_kernel adds."""
    operands = (a.reshape(-1), b.reshape(-1), _no_bias() if bias is None else bias)
    sizes = (np.int32(m), np.int32(n), np.int32(k), np.int32(a_strides[0]), np.int32(a_strides[1]),
             np.int32(b_strides[0]), np.int32(b_strides[1]), np.int32(bias is not None))
    if version == 1:
        launch(GEMM_KERNELS[1], *grid_2d(m, n), *operands, c, *sizes)
        return
    tile = tile or candidate_tiles("linear_forward")[version][0]
    count, chunk = split_chunks(k, tile.block_k, splits)
    partial = c if count == 1 else empty((count * m, n))
    launch(TILED_KERNELS[version, tile], *tile.grid(m, n, count), *operands, partial, *sizes, np.int32(chunk))
    if count > 1:
        launch(column_sums_kernel, *grid_1d(m * n), partial.reshape(count, m * n), c.reshape(-1))


def column_sums(matrix):
    sums = empty((matrix.shape[1],))
    grid, block = grid_1d(matrix.shape[1])
    launch(column_sums_kernel, grid, block, matrix, sums)
    return sums


def _linear_forward(version, x, w, b, tile=None, splits=1):
    batch, outputs = check_linear_forward(SPEC, x, w, b)
    inputs = x.shape[1]
    y = empty((batch, outputs))
    gemm(version, x, w, y, batch, outputs, inputs, (inputs, 1), (1, inputs), bias=b, tile=tile, splits=splits)
    return y


def _linear_backward(version, dy, x, w, tile=None, splits=1):
    check_linear_backward(SPEC, dy, x, w)
    batch, inputs = x.shape
    outputs = w.shape[0]
    dx = empty((batch, inputs))
    dw = empty((outputs, inputs))
    gemm(version, dy, w, dx, batch, inputs, outputs, (outputs, 1), (inputs, 1), tile=tile, splits=splits)
    gemm(version, dy, x, dw, outputs, inputs, batch, (1, outputs), (inputs, 1), tile=tile, splits=splits)
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


def _at_tile(function, candidate):
    bound = functools.partial(function, candidate.version, tile=candidate.tile, splits=candidate.splits)
    bound.__name__ = f"{function.__name__.lstrip('_')} {candidate}"
    return bound


CANDIDATES = {op: {c: _at_tile(function, c) for c in candidates(op, (2, 3, 4, 5))}
              for op, function in (("linear_forward", _linear_forward), ("linear_backward", _linear_backward))}

for _version, _kernel, _signature in [(1, gemm_naive_kernel, GEMM_SIGNATURE),
                                      *((v, k, TILED_SIGNATURE) for (v, _), k in TILED_KERNELS.items())]:
    declare("linear_forward", _version, _kernel, _signature)
    declare("linear_backward", _version, _kernel, _signature)
    declare("linear_backward", _version, column_sums_kernel, "void(float32[:, ::1], float32[::1])")
