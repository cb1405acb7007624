"""linear_forward and linear_backward of the `cuda` face: launchers for linear.cu.

    v1  naive, one thread per output, 2-D grid                       geometry.grid_2d
    v2  shared-memory tiles, one output per thread                   geometry.LINEAR_TILES[2]
    v3  2-D register tiles (promoted)                                geometry.LINEAR_TILES[3]
    v4  v3 + double-buffered tiles and float4 loads, launch bounds   geometry.DOUBLE_BUFFERED_TILE
db is one thread per column in every version.
"""

from __future__ import annotations

from kernels import geometry
from kernels.contract import check_linear_backward, check_linear_forward
from kernels.cuda.runtime import declare, empty, i32, launch, require_int32_indexable, spec

SOURCE = "linear.cu"
TILES = {**{v: geometry.LINEAR_TILES[v] for v in (2, 3)}, 4: geometry.DOUBLE_BUFFERED_TILE}
_GEMM_KERNEL = {2: "linear_tiled", 3: "linear_tiled", 4: "linear_double_buffered"}
FORWARD_PRODUCT, DATA_PRODUCT, FILTER_PRODUCT = 0, 1, 2  # the LinearProduct enum of linear.cu


def _gemm(op: str, version: int, role: str, product: int):
    tile = geometry.template_arguments(TILES[version])
    return declare(op, version, role, SOURCE, f"{_GEMM_KERNEL[version]}<{tile}, {product}>")


FORWARD = {1: declare("linear_forward", 1, "main", SOURCE, "linear_forward_v1")}
DX = {1: declare("linear_backward", 1, "dx", SOURCE, "linear_backward_dx_v1")}
DW = {1: declare("linear_backward", 1, "dw", SOURCE, "linear_backward_dw_v1")}
for _v in (2, 3, 4):
    FORWARD[_v] = _gemm("linear_forward", _v, "main", FORWARD_PRODUCT)
    DX[_v] = _gemm("linear_backward", _v, "dx", DATA_PRODUCT)
    DW[_v] = _gemm("linear_backward", _v, "dw", FILTER_PRODUCT)
DB = declare("linear_backward", 1, "db", SOURCE, "linear_backward_db")  # every version


def _forward(version: int):
    def linear_forward(x, w, b):
        rows, outputs = check_linear_forward(spec(), x, w, b)
        inputs = x.shape[1]
        y = empty((rows, outputs))
        require_int32_indexable(x=x, w=w, y=y)
        sizes = (i32(rows), i32(inputs), i32(outputs))
        if version == 1:
            launch(FORWARD[1], *geometry.grid_2d(rows, outputs), (x, w, b, y, *sizes))
        else:
            launch(FORWARD[version], *TILES[version].grid(rows, outputs), (x, w, b, y, *sizes))
        return y

    linear_forward.__name__ = linear_forward.__qualname__ = f"linear_forward_v{version}"
    return linear_forward


def _backward(version: int):
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
            tile = TILES[version]
            # The tiled kernels take a bias pointer that only the forward product reads; the data
            # and filter products get dy there, a read-only input, never the array they write.
            launch(DX[version], *tile.grid(rows, inputs), (dy, w, dy, dx, *sizes))
            launch(DW[version], *tile.grid(outputs, inputs), (dy, x, dy, dw, *sizes))
        launch(DB, *geometry.grid_1d(outputs), (dy, db, i32(rows), i32(outputs)))
        return dx, dw, db

    linear_backward.__name__ = linear_backward.__qualname__ = f"linear_backward_v{version}"
    return linear_backward


VERSIONS = {
    "linear_forward": {v: _forward(v) for v in (1, 2, 3, 4)},
    "linear_backward": {v: _backward(v) for v in (1, 2, 3, 4)},
}
