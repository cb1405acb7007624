"""conv2d_forward and conv2d_backward of the `cuda` face: launchers for conv2d_forward.cu and
conv2d_backward.cu (each file's header says what every version adds).

    v1  direct kernels (one thread per output, per input element, per weight)
    v2  implicit GEMM, shared-memory tiles, one output per thread      geometry.CONV_TILES[2]
    v3  v2 + register blocking (promoted)                              geometry.CONV_TILES[3]
    v4  v3 + double-buffered tiles, float4 weight loads, launch bounds geometry.DOUBLE_BUFFERED_TILE
    v5  v4 split into warp tiles, float4 shared-memory fragments      geometry.WARP_TILES[0]
db is the same one-block-per-filter reduction in every version. CANDIDATES: v2-v4 at every tile
geometry of geometry.candidate_tiles, each tile its own template instantiation, for the measured choice.
"""

from __future__ import annotations

from kernels import geometry
from kernels.contract import check_conv2d_backward, check_conv2d_forward
from kernels.cuda.runtime import declare, empty, i32, launch, require_int32_indexable, spec

FORWARD_SOURCE = "conv2d_forward.cu"
BACKWARD_SOURCE = "conv2d_backward.cu"
TILES = {**{v: geometry.CONV_TILES[v] for v in (2, 3)}, 4: geometry.DOUBLE_BUFFERED_TILE,
         5: geometry.WARP_TILES[0]}
_GEMM_KERNEL = {2: "tiled", 3: "tiled", 4: "double_buffered", 5: "warp_tiled"}


def _declare_gemm(op: str, version: int, role: str, source: str, prefix: str, tile: geometry.Tile):
    name = f"{prefix}_{_GEMM_KERNEL[version]}<{geometry.template_arguments(tile)}>"
    return declare(op, version, role, source, name, threads=tile.threads,
                   alternative=tile != TILES[version])


FORWARD = {1: declare("conv2d_forward", 1, "main", FORWARD_SOURCE, "conv2d_forward_v1")}
DX = {1: declare("conv2d_backward", 1, "dx", BACKWARD_SOURCE, "conv2d_backward_dx_v1")}
DW = {1: declare("conv2d_backward", 1, "dw", BACKWARD_SOURCE, "conv2d_backward_dw_v1")}
# (version, tile) -> target, for every candidate; the default tile of each version is among them.
for _v, _tiles in geometry.candidate_tiles("conv2d_forward").items():
    for _tile in _tiles:
        FORWARD[_v, _tile] = _declare_gemm("conv2d_forward", _v, "main", FORWARD_SOURCE, "conv2d_forward", _tile)
        DX[_v, _tile] = _declare_gemm("conv2d_backward", _v, "dx", BACKWARD_SOURCE, "conv2d_backward_dx", _tile)
        DW[_v, _tile] = _declare_gemm("conv2d_backward", _v, "dw", BACKWARD_SOURCE, "conv2d_backward_dw", _tile)
# Shared by every version; declared under v1, where it first appears.
DB = declare("conv2d_backward", 1, "db", BACKWARD_SOURCE, f"conv2d_backward_db<{geometry.REDUCE_THREADS}>")
DW_REDUCE = declare("conv2d_backward", 2, "dw_reduce", BACKWARD_SOURCE, "conv2d_backward_dw_reduce")


def _shape_arguments(x_shape, w_shape, out_shape, stride, pad, groups):
    """The twelve ints of CONV_SHAPE_PARAMS (conv2d.cuh), in order."""
    n, c, h, w = x_shape
    f, _, kh, kw = w_shape
    oh, ow = out_shape[2:]
    return tuple(i32(v) for v in (n, c, h, w, f, kh, kw, oh, ow, stride, pad, groups))


def _forward(version: int, tile: geometry.Tile | None = None):
    tile = tile or TILES.get(version)

    def conv2d_forward(x, w, b, stride=1, pad=0, groups=1):
        stride, pad, groups, out_shape = check_conv2d_forward(spec(), x, w, b, stride, pad, groups)
        y = empty(out_shape)
        require_int32_indexable(x=x, w=w, y=y)
        shape = _shape_arguments(x.shape, w.shape, out_shape, stride, pad, groups)
        if version == 1:
            launch(FORWARD[1], *geometry.grid_1d(y.size), (x, w, b, y, *shape))
        else:
            n, c = x.shape[:2]
            f, _, kh, kw = w.shape
            m, columns, _ = geometry.conv_forward_gemm(n, c, f, *out_shape[2:], kh, kw, groups)
            launch(FORWARD[version, tile], *tile.grid(m, columns, groups), (x, w, b, y, *shape))
        return y

    conv2d_forward.__name__ = conv2d_forward.__qualname__ = f"conv2d_forward_v{version}"
    return conv2d_forward


def _backward(version: int, tile: geometry.Tile | None = None):
    tile = tile or TILES.get(version)

    def conv2d_backward(dy, x, w, stride=1, pad=0, groups=1):
        stride, pad, groups, out_shape = check_conv2d_backward(spec(), dy, x, w, stride, pad, groups)
        n, c, h, wd = x.shape
        f, _, kh, kw = w.shape
        oh, ow = out_shape[2:]
        dx, dw, db = empty(x.shape), empty(w.shape), empty((f,))
        require_int32_indexable(dy=dy, x=x, w=w)
        shape = _shape_arguments(x.shape, w.shape, out_shape, stride, pad, groups)
        if version == 1:
            launch(DX[1], *geometry.grid_1d(dx.size), (dy, w, dx, *shape))
            launch(DW[1], *geometry.grid_1d(dw.size), (dy, x, dw, *shape))
        else:
            m, positions, _ = geometry.conv_data_gemm(n, c, h, wd, f, kh, kw, groups)
            launch(DX[version, tile], *tile.grid(m, positions, groups), (dy, w, dx, *shape))
            m, taps, k = geometry.conv_filter_gemm(n, c, f, oh, ow, kh, kw, groups)
            splits, chunk = geometry.split_k(k, tile.block_k, tile.blocks(m, taps) * groups)
            target = dw if splits == 1 else empty((splits, dw.size))
            require_int32_indexable(split_k_partial_sums=target)
            launch(DW[version, tile], *tile.grid(m, taps, groups * splits),
                   (dy, x, target, i32(splits), i32(chunk), *shape))
            if splits > 1:
                launch(DW_REDUCE, *geometry.grid_1d(dw.size), (target, dw, i32(splits), i32(dw.size)))
        launch(DB, *geometry.grid_rows(f), (dy, db, i32(n), i32(f), i32(oh * ow)))
        return dx, dw, db

    conv2d_backward.__name__ = conv2d_backward.__qualname__ = f"conv2d_backward_v{version}"
    return conv2d_backward


VERSIONS = {
    "conv2d_forward": {v: _forward(v) for v in (1, 2, 3, 4, 5)},
    "conv2d_backward": {v: _backward(v) for v in (1, 2, 3, 4, 5)},
}
CANDIDATES = {op: {c: make(c.version, c.tile) for c in geometry.candidates(op, VERSIONS[op])}
              for op, make in (("conv2d_forward", _forward), ("conv2d_backward", _backward))}
