"""Launch geometry shared by the Numba and CUDA C faces: the same version of a kernel is launched
the same way in both toolchains, so that their timings compare kernel for kernel.

Launchers call these; kernels only do the math for the (block, thread) they are given. Tile sizes
are plain Python constants: the Numba kernels read them as compile-time globals (shared-memory
arrays need constant shapes) and the CUDA C face passes them to its sources as -D defines or
template arguments, so one constant drives both faces.

Versions (the same numbers in both faces; see each kernel file's header for what each adds):

    op                       v1                          v2                         v3
    conv2d_forward           grid_1d over outputs        CONV_TILES[2] + conv_*     CONV_TILES[3]
    conv2d_backward dx, dw   grid_1d over dx / dw        CONV_TILES[2], split_k     CONV_TILES[3]
    conv2d_backward db       grid_rows(F)                (same kernel)              (same kernel)
    linear_forward/backward  grid_2d over outputs        LINEAR_TILES[2]            LINEAR_TILES[3]
    relu, sgd, xent backward grid_1d
    lrn                      grid_1d over (n, h, w) columns
    maxpool                  grid_1d over outputs (forward) / inputs (backward)
    dropout                  dropout_grid: one thread per Philox block of 4 elements
    softmax_xent_forward     grid_rows(N), then grid_rows(1) for the mean
"""

from __future__ import annotations

from dataclasses import dataclass

THREADS_PER_BLOCK = 256  # elementwise kernels: 8 warps, enough to hide latency at full occupancy
REDUCE_THREADS = 256  # block-per-row reductions; a power of two, so a tree reduction halves it evenly
GRID_2D_BLOCK = (16, 16)  # naive GEMM (v1): a 16 x 16 block of outputs, x along the contiguous column
PHILOX_WORDS = 4  # one Philox4x32-10 call yields four 32-bit words: one thread per four elements


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def grid_1d(total: int, threads: int = THREADS_PER_BLOCK) -> tuple[tuple[int], tuple[int]]:
    """One thread per element, `threads` to a block: ((blocks,), (threads,))."""
    return (max(ceil_div(total, threads), 1),), (threads,)


def grid_2d(rows: int, cols: int, block: tuple[int, int] = GRID_2D_BLOCK) -> tuple[tuple[int, int], tuple[int, int]]:
    """One thread per (row, col) output, x along cols: ((col blocks, row blocks), (bx, by))."""
    bx, by = block
    return (max(ceil_div(cols, bx), 1), max(ceil_div(rows, by), 1)), (bx, by)


def grid_rows(rows: int, threads: int = REDUCE_THREADS) -> tuple[tuple[int], tuple[int]]:
    """One block of `threads` threads per row (a softmax row, a filter's bias gradient)."""
    return (max(rows, 1),), (threads,)


def dropout_grid(count: int, threads: int = THREADS_PER_BLOCK) -> tuple[tuple[int], tuple[int]]:
    """One thread per Philox block: thread j produces elements 4j .. 4j+3."""
    return grid_1d(ceil_div(count, PHILOX_WORDS), threads)


def augment_grid(n: int, size: int) -> tuple[tuple[int, int], tuple[int]]:
    """augment_crop (kernels/reference/augment.py): blocks over (pixels of one output, outputs),
    THREADS_PER_BLOCK threads each: one thread per output pixel, all three channels."""
    return (ceil_div(size * size, THREADS_PER_BLOCK), n), (THREADS_PER_BLOCK,)


@dataclass(frozen=True)
class Tile:
    """A block computes a block_m x block_n tile of C = A·B, walking K in steps of block_k; each thread
    computes thread_m x thread_n outputs (1 x 1 without register blocking)."""

    block_m: int
    block_n: int
    block_k: int
    thread_m: int = 1
    thread_n: int = 1

    def __post_init__(self):
        if self.block_m % self.thread_m or self.block_n % self.thread_n:
            raise ValueError(f"{self}: a thread tile must divide the block tile")

    @property
    def threads(self) -> int:
        return (self.block_m // self.thread_m) * (self.block_n // self.thread_n)

    def grid(self, m: int, n: int, batches: int = 1) -> tuple[tuple[int, int, int], tuple[int]]:
        """Blocks over (n tiles, m tiles, batches) and a 1-D block of `threads` threads.

        n tiles run along x because x has the largest grid limit and consecutive blocks then share
        the same rows of A, which stay in L2.
        """
        return (max(ceil_div(n, self.block_n), 1), max(ceil_div(m, self.block_m), 1), batches), (self.threads,)

    def blocks(self, m: int, n: int) -> int:
        """Output tiles of an m x n product (the blocks of one batch)."""
        return ceil_div(m, self.block_m) * ceil_div(n, self.block_n)


# v2: shared-memory tiles, one output per thread (256 threads, each loading one A and one B element
# per K step). v3: register blocking, each of 256 threads computes a 4 x 4 tile of a 64 x 64 block
# tile, so a shared-memory value loaded into a register is used 4 times instead of once.
LINEAR_TILES = {2: Tile(16, 16, 16), 3: Tile(64, 64, 8, 4, 4)}
CONV_TILES = {2: Tile(16, 16, 16), 3: Tile(64, 64, 8, 4, 4)}


# ---------------------------------------------------------------------------------------------
# Convolution as implicit GEMM. Per group g (grid z), with G groups:
#   forward   y[g]  (F/G, N·OH·OW)   = w[g] (F/G, C/G·KH·KW) · cols[g] (C/G·KH·KW, N·OH·OW)
#   data      dx[g] (C/G, N·H·W)     = Σ over (f, i, j) of w[f, c, i, j] · dy at the output whose
#             window puts tap (i, j) on input (h, w): K = F/G·KH·KW, a zero where none does
#   filter    dw[g] (F/G, C/G·KH·KW) = dy[g] (F/G, N·OH·OW) · cols[g]ᵀ, K = N·OH·OW split across blocks
# cols is never stored: a kernel computes each element of it from x when it loads a tile.
# Each function returns (M, N, K) of one group's product.
# ---------------------------------------------------------------------------------------------


def conv_forward_gemm(n, c, f, oh, ow, kh, kw, groups) -> tuple[int, int, int]:
    return f // groups, n * oh * ow, (c // groups) * kh * kw


def conv_data_gemm(n, c, h, w, f, kh, kw, groups) -> tuple[int, int, int]:
    return c // groups, n * h * w, (f // groups) * kh * kw


def conv_filter_gemm(n, c, f, oh, ow, kh, kw, groups) -> tuple[int, int, int]:
    return f // groups, (c // groups) * kh * kw, n * oh * ow


SPLIT_K_TARGET_BLOCKS = 528  # 4 blocks on each of an H100/H200's 132 SMs: enough to fill the GPU
SPLIT_K_MIN_CHUNK = 64  # a split walks at least this much of K, so its partial sum is worth a write


def split_k(k_total: int, block_k: int, output_blocks: int,
            target_blocks: int = SPLIT_K_TARGET_BLOCKS, min_chunk: int = SPLIT_K_MIN_CHUNK) -> tuple[int, int]:
    """Split a K-long reduction across blocks when the output alone has too few tiles to fill the GPU.

    Returns (splits, chunk): split s reduces k in [s·chunk, min((s + 1)·chunk, K)); chunk is a multiple
    of block_k so every split starts on a tile boundary, and every split is non-empty. The partial
    sums go to a (splits, ...) buffer that a second kernel adds in split order, so the result does not
    depend on which block finishes first.
    """
    wanted = max(1, target_blocks // max(output_blocks, 1))
    most = max(1, ceil_div(k_total, max(min_chunk, block_k)))
    return split_chunks(k_total, block_k, min(wanted, most))


def split_chunks(k_total: int, block_k: int, splits: int) -> tuple[int, int]:
    """(splits, chunk) of a K-long reduction asked to run in `splits` splits: chunk is a multiple of
    block_k, and the count comes out smaller than asked when that many would leave a split empty."""
    chunk = ceil_div(ceil_div(max(k_total, 1), max(splits, 1)), block_k) * block_k
    return ceil_div(max(k_total, 1), chunk), chunk


# v4, both faces (kernels/cuda/gemm.cuh, gemm_double_buffered; kernels/numba/gemm.py, staged_product):
# v3's 64 x 64 block and 4 x 4 thread tiles with K steps of 16, so that each 64 x 16 tile of A or B
# is exactly one float4 per thread of the 256 (CUDA C; Numba loads the same elements one float at a
# time), and each of the two shared-memory stages costs one barrier per 16 k.
DOUBLE_BUFFERED_TILE = Tile(64, 64, 16, 4, 4)


# ---------------------------------------------------------------------------------------------
# Candidates of the measured kernel choice (kernels/choice.py): every tiled GEMM version at a few
# tile geometries, declared here once for both GPU faces, each compiled as a kernel of its own. The
# first geometry of each version is the one its VERSIONS entry launches; the others are tried only
# when the choice is measured. 128 x 128 blocks with 8 x 8 per thread halve the shared-memory reads
# per multiply-add again, for the large products (conv2, fc6, fc7), at the price of fewer blocks
# (a 13 x 13 conv3-5 at batch 128 is 168 x 384: only 6 tiles of 128 rows in M). The double-buffered
# v4 takes the same tile with K steps of 8 (one float4 per thread per operand and stage): at K steps of
# 16 its data gradient needs 8 more bytes than the 128 registers that v4's two blocks per SM leave a
# thread, and spilled on sm_90 (NVRTC, CUDA 13).
# ---------------------------------------------------------------------------------------------

WIDE_TILE = Tile(128, 128, 8, 8, 8)
# v5, both faces (gemm.cuh, WarpTiledThreads; staged_product): a warp's lanes form a 4 x 8 grid over a warp tile of
# (4·thread_m) x (8·thread_n), so 128 x 128 blocks with 16 x 4 per thread are 8 warps of 64 x 32 (256
# threads) and 64 x 64 blocks with 8 x 4 are 4 warps of 32 x 32 (128 threads). K steps of 8: one
# float4 per thread per operand and stage in both (CUDA C; Numba has no 16-byte loads).
WARP_TILES = (Tile(128, 128, 8, 16, 4), Tile(64, 64, 8, 8, 4))
GEMM_OPS = ("conv2d_forward", "conv2d_backward", "linear_forward", "linear_backward")
# Split-K candidates of the linear layers, at the default tile of the register-tiled and warp-tiled
# versions. fc6 at batch 128 is a 128 x 4096 output: 128 tiles of 64 x 64 (64 of 128 x 128) for an
# H200's 132 SMs, each tile a 9216-long reduction. Split in 2 or 4 along K it keeps 256 or 512
# blocks busy; a second kernel adds the partial products in split order, so the result is the same
# in every run. (conv2d's filter gradient splits K by itself: split_k above.)
LINEAR_SPLITS = (2, 4)
LINEAR_SPLIT_VERSIONS = (3, 5)


@dataclass(frozen=True)
class Candidate:
    """One way to run a GEMM-shaped op: a numbered version launched at a tile geometry, its K split
    across `splits` blocks per output tile (linear only; 1: not split)."""

    version: int
    tile: Tile
    splits: int = 1

    def __str__(self) -> str:
        t = self.tile
        split = f" split{self.splits}" if self.splits > 1 else ""
        return f"v{self.version} {t.block_m}x{t.block_n}x{t.block_k}/{t.thread_m}x{t.thread_n}{split}"


def candidate_tiles(op: str) -> dict[int, tuple[Tile, ...]]:
    """{version: tiles} of a GEMM-shaped op, the default tile of each version first."""
    if op not in GEMM_OPS:
        raise ValueError(f"{op!r} has no tile candidates; the GEMM-shaped ops are {', '.join(GEMM_OPS)}")
    tiles = CONV_TILES if op.startswith("conv2d") else LINEAR_TILES
    return {2: (tiles[2],), 3: (tiles[3], WIDE_TILE), 4: (DOUBLE_BUFFERED_TILE, WIDE_TILE), 5: WARP_TILES}


def candidates(op: str, versions) -> list[Candidate]:
    """Every candidate of `op` among `versions` (the ones a face has), in version order, then the
    split-K ones of the linear layers."""
    tiles = candidate_tiles(op)
    found = [Candidate(v, tile) for v, version_tiles in tiles.items() if v in versions for tile in version_tiles]
    if op.startswith("linear"):
        found += [Candidate(v, tiles[v][0], splits) for v in LINEAR_SPLIT_VERSIONS if v in versions
                  for splits in LINEAR_SPLITS]
    return found


def template_arguments(tile: Tile) -> str:
    """The tile as the CUDA C kernels' template arguments: "BM, BN, BK, TM, TN"."""
    return f"{tile.block_m}, {tile.block_n}, {tile.block_k}, {tile.thread_m}, {tile.thread_n}"


def pool_gather_window(input_hw: tuple[int, int], output_hw: tuple[int, int], kernel=None, stride=None):
    """(window_h, window_w, stride_h, stride_w) for the max-pool backward gather.

    The backward kernels run one thread per input and gather from every output whose window covers
    it. With the forward's kernel and stride that is the exact window. Without them, shapes alone
    cannot tell (55 -> 27 fits 3/2, 2/2 and 29/1), so the gather takes windows of H − OH + 1 rows at
    stride 1: for any kernel k and stride s with (H − k)//s + 1 = OH, the outputs covering row h lie
    in [h − (H − OH), h], so it is correct for every pooling that gives these shapes, only slower
    (O((H − OH)²) reads per input instead of O((k/s)²)).
    """
    if kernel is not None:
        return kernel, kernel, stride, stride
    (height, width), (out_h, out_w) = input_hw, output_hw
    return height - out_h + 1, width - out_w + 1, 1, 1
