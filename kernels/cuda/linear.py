"""linear_forward and linear_backward of the `cuda` face: launchers for linear.cu.

    v1  naive, one thread per output, 2-D grid                       geometry.grid_2d
    v2  shared-memory tiles, one output per thread                   geometry.LINEAR_TILES[2]
    v3  2-D register tiles (promoted)                                geometry.LINEAR_TILES[3]
    v4  v3 + double-buffered tiles and float4 loads, launch bounds   geometry.DOUBLE_BUFFERED_TILE
    v5  v4 split into warp tiles, float4 shared-memory fragments     geometry.WARP_TILES[0]
db is one thread per column in every version. CANDIDATES: v2-v5 at every tile geometry of
geometry.candidate_tiles, each tile its own template instantiation, and the split-K candidates
(geometry.LINEAR_SPLITS: the same kernels on a grid `splits` deep, then DB adding the partial
products in split order), for the measured choice.
"""

from __future__ import annotations

from kernels import geometry
from kernels.contract import check_linear_backward, check_linear_forward
from kernels.cuda.runtime import declare, empty, i32, launch, require_int32_indexable, spec

SOURCE = "linear.cu"
TILES = {**{v: geometry.LINEAR_TILES[v] for v in (2, 3)}, 4: geometry.DOUBLE_BUFFERED_TILE,
         5: geometry.WARP_TILES[0]}
_GEMM_KERNEL = {2: "linear_tiled", 3: "linear_tiled", 4: "linear_double_buffered", 5: "linear_warp_tiled"}
FORWARD_PRODUCT, DATA_PRODUCT, FILTER_PRODUCT = 0, 1, 2  # the LinearProduct enum of linear.cu


def _gemm(op: str, version: int, role: str, product: int, tile: geometry.Tile):
    name = f"{_GEMM_KERNEL[version]}<{geometry.template_arguments(tile)}, {product}>"
    return declare(op, version, role, SOURCE, name, threads=tile.threads,
                   alternative=tile != TILES[version])


FORWARD = {1: declare("linear_forward", 1, "main", SOURCE, "linear_forward_v1")}
DX = {1: declare("linear_backward", 1, "dx", SOURCE, "linear_backward_dx_v1")}
DW = {1: declare("linear_backward", 1, "dw", SOURCE, "linear_backward_dw_v1")}
# (version, tile) -> target, for every candidate; the default tile of each version is among them.
for _v, _tiles in geometry.candidate_tiles("linear_forward").items():
    for _tile in _tiles:
        FORWARD[_v, _tile] = _gemm("linear_forward", _v, "main", FORWARD_PRODUCT, _tile)
        DX[_v, _tile] = _gemm("linear_backward", _v, "dx", DATA_PRODUCT, _tile)
        DW[_v, _tile] = _gemm("linear_backward", _v, "dw", FILTER_PRODUCT, _tile)
DB = declare("linear_backward", 1, "db", SOURCE, "linear_backward_db")  # every version


def _product(target, tile: geometry.Tile, splits: int, m: int, n: int, k: int, inputs: tuple, c, sizes: tuple):
    """C (m x n, into c) of one tiled kernel over a K-long reduction: in one pass, or in `splits`
    partial products that the db kernel then adds in split order (its rows: the splits)."""
    count, chunk = geometry.split_chunks(k, tile.block_k, splits)
    partial = c if count == 1 else empty((count, m, n))
    require_int32_indexable(partial_products=partial)
    launch(target, *tile.grid(m, n, count), (*inputs, partial, *sizes, i32(chunk)))
    if count > 1:
        launch(DB, *geometry.grid_1d(c.size), (partial, c, i32(count), i32(c.size)))


def _forward(version: int, tile: geometry.Tile | None = None, splits: int = 1):
    tile = tile or TILES.get(version)

    def linear_forward(x, w, b):
        rows, outputs = check_linear_forward(spec(), x, w, b)
        inputs = x.shape[1]
        y = empty((rows, outputs))
        require_int32_indexable(x=x, w=w, y=y)
        sizes = (i32(rows), i32(inputs), i32(outputs))
        if version == 1:
            launch(FORWARD[1], *geometry.grid_2d(rows, outputs), (x, w, b, y, *sizes))
        else:
            _product(FORWARD[version, tile], tile, splits, rows, outputs, inputs, (x, w, b), y, sizes)
        return y

    linear_forward.__name__ = linear_forward.__qualname__ = f"linear_forward_v{version}"
    return linear_forward


def _backward(version: int, tile: geometry.Tile | None = None, splits: int = 1):
    tile = tile or TILES.get(version)

    def linear_backward(dy, x, w):
        check_linear_backward(spec(), dy, x, w)
        rows, inputs = x.shape
        outputs = w.shape[0]
        dx, dw, db = empty(x.shape), empty(w.shape), empty((outputs,))
        require_int32_indexable(dy=dy, x=x, w=w)
        sizes = (i32(rows), i32(inputs), i32(outputs))
        if version == 1:
            launch(DX[1], *geometry.grid_2d(rows, inputs), (dy, w, dx, *sizes))
            launch(DW[1], *geometry.grid_2d(outputs, inputs), (dy, x, dw, *sizes))
        else:
            # The tiled kernels take a bias pointer that only the forward product reads; the data
            # and filter products get dy there, a read-only input, never the array they write.
            _product(DX[version, tile], tile, splits, rows, inputs, outputs, (dy, w, dy), dx, sizes)
            _product(DW[version, tile], tile, splits, outputs, inputs, rows, (dy, x, dy), dw, sizes)
        launch(DB, *geometry.grid_1d(outputs), (dy, db, i32(rows), i32(outputs)))
        return dx, dw, db

    linear_backward.__name__ = linear_backward.__qualname__ = f"linear_backward_v{version}"
    return linear_backward


VERSIONS = {
    "linear_forward": {v: _forward(v) for v in (1, 2, 3, 4, 5)},
    "linear_backward": {v: _backward(v) for v in (1, 2, 3, 4, 5)},
}
CANDIDATES = {op: {c: make(c.version, c.tile, c.splits) for c in geometry.candidates(op, VERSIONS[op])}
              for op, make in (("linear_forward", _forward), ("linear_backward", _backward))}
