"""The tiled matrix product C = A·B shared by the linear layers and the implicit-GEMM convolutions,
as kernels/cuda/gemm.cuh is for the CUDA C face: one loop, written once, that every v2 and v3
kernel of conv2d_forward, conv2d_backward (data and filter gradients) and linear runs.

The product never sees a matrix in memory. An operand is a device function `at(args, mn, k)` that
returns element (mn, k) (A is indexed (m, k), B is indexed (n, k)) from whatever `args` tuple the
kernel packs for it, so the same loop multiplies a strided matrix, its transpose, or a
convolution's im2col matrix gathered from the image and never stored. An epilogue
`store(args, m, n, value)` writes each result. `tiled_product(tile, a_at, b_at, store)` returns the
block-wide device function

    product(a_tile, b_tile, a, a_along_k, b, b_along_k, out, m, n, k_begin, k_end, m0, n0)

which computes C[m0 .. m0 + block_m, n0 .. n0 + block_n] over k in [k_begin, k_end): all of K, or
one split of a split-K product. The kernel declares the two shared tiles, float32 arrays of
`tile_shapes(tile)`, and hands them in (numba-cuda-mlir allocates shared memory in kernels only).
`a_along_k` says whether neighbouring k of A are neighbouring addresses (then neighbouring threads
stage neighbouring k, else neighbouring m), so that global loads coalesce for every layout;
likewise `b_along_k`. Everything outside [0, m) x [0, n) x [k_begin, k_end) is staged as 0, so
operands check no bounds.

Versions (the same numbers as the CUDA C face; kernels/geometry.py holds every tile size):
    v2  a 1 x 1 thread tile (geometry.Tile with thread_m = thread_n = 1): one output per thread;
        block_k x block_m and block_k x block_n slices of A and B staged in shared memory per K
        step, so each global value is read once per block instead of once per output.
    v3  a thread_m x thread_n thread tile (register blocking): each value read from shared memory
        into a register is used thread_n (or thread_m) times.

Thread t of the block owns rows m0 + ty + i·(block_m/thread_m) and columns n0 + tx +
j·(block_n/thread_n), (ty, tx) = (t // (block_n/thread_n), t % (block_n/thread_n)): spread by the
number of thread rows and columns rather than a contiguous patch, so that a warp reads consecutive
floats of the B tile (no shared-memory bank conflicts) and writes consecutive columns of C.
Kernels see tile sizes as closure constants, which Numba freezes at compile time (shared arrays
need constant shapes).
"""

from __future__ import annotations

import functools

from kernels.numba.compiler import cuda, float32, inlined_device


@functools.cache
def tile_stager(at):
    """stage(args, along_k, tile, mn0, mn_limit, k0, k_limit): tile[kk, mn] = at(args, mn0 + mn, k0 + kk),
    0 outside [0, mn_limit) x [0, k_limit). Block-wide: every thread calls it and fills elements t,
    t + blockDim.x, ... of the tile. One per operand (cached), so the kernels that stage the same
    operand share its compiled code."""

    @inlined_device
    def stage(args, along_k, tile, mn0, mn_limit, k0, k_limit):
        depth, width = tile.shape
        for e in range(cuda.threadIdx.x, depth * width, cuda.blockDim.x):
            if along_k:  # neighbouring threads take neighbouring k
                mn = e // depth
                kk = e % depth
            else:  # neighbouring threads take neighbouring mn
                kk = e // width
                mn = e % width
            row = mn0 + mn
            k = k0 + kk
            tile[kk, mn] = at(args, row, k) if row < mn_limit and k < k_limit else float32(0.0)

    return stage


@inlined_device
def accumulate_register_tile(a_tile, b_tile, acc, a_values, b_values, ty, tx):
    """acc[i, j] += Σ_kk a_tile[kk, ty + i·RY]·b_tile[kk, tx + j·RX] for the thread's register tile,
    RY = block_m / thread_m thread rows, RX = block_n / thread_n thread columns.

    Each staged value is read into a register once per kk and used thread_n (or thread_m) times:
    that reuse is what register blocking buys over v2, where every product reads shared memory twice.
    """
    thread_m, thread_n = acc.shape
    row_step = a_tile.shape[1] // thread_m
    col_step = b_tile.shape[1] // thread_n
    for kk in range(a_tile.shape[0]):
        for i in range(thread_m):
            a_values[i] = a_tile[kk, ty + i * row_step]
        for j in range(thread_n):
            b_values[j] = b_tile[kk, tx + j * col_step]
        for i in range(thread_m):
            for j in range(thread_n):
                acc[i, j] += a_values[i] * b_values[j]


# The schedule of each tiled version: how the product stages its tiles (kernels/cuda/gemm.cuh has the same).
TILED, DOUBLE_BUFFERED, WARP_TILED = "tiled", "double_buffered", "warp_tiled"
SCHEDULES = {2: TILED, 3: TILED, 4: DOUBLE_BUFFERED, 5: WARP_TILED}
WARP_LANE_ROWS, WARP_LANE_COLS = 4, 8  # v5: a warp's 32 lanes as a 4 x 8 grid over its warp tile


def tile_shapes(tile, schedule: str = TILED) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of the shared A and B tiles of the product at `tile`: k-major, (block_k, block_m)
    and (block_k, block_n), so that the inner product reads one row of each per k; two stages of
    each, (2, block_k, ...), for the double-buffered schedules."""
    a_shape, b_shape = (tile.block_k, tile.block_m), (tile.block_k, tile.block_n)
    if schedule == TILED:
        return a_shape, b_shape
    return (2, *a_shape), (2, *b_shape)


@functools.cache
def register_stager(at):
    """(fetch, put) for the double-buffered schedules: fetch(args, along_k, values, depth, width, mn0,
    mn_limit, k0, k_limit) reads thread t's elements t, t + blockDim.x, ... of the depth x width tile
    at (mn0, k0) into the local array `values` (0 outside the bounds), walking the operand's
    contiguous axis as tile_stager does; put(along_k, values, tile) writes them to a shared stage."""

    @inlined_device
    def fetch(args, along_k, values, depth, width, mn0, mn_limit, k0, k_limit):
        for slot in range(values.shape[0]):
            e = cuda.threadIdx.x + slot * cuda.blockDim.x
            if along_k:
                mn = e // depth
                kk = e % depth
            else:
                kk = e // width
                mn = e % width
            row = mn0 + mn
            k = k0 + kk
            values[slot] = at(args, row, k) if row < mn_limit and k < k_limit else float32(0.0)

    @inlined_device
    def put(along_k, values, tile):
        depth, width = tile.shape
        for slot in range(values.shape[0]):
            e = cuda.threadIdx.x + slot * cuda.blockDim.x
            if along_k:
                tile[e % depth, e // depth] = values[slot]
            else:
                tile[e // width, e % width] = values[slot]

    return fetch, put


def staged_product(tile, a_at, b_at, store, schedule: str):
    """v4 (DOUBLE_BUFFERED) and v5 (WARP_TILED): tiled_product's contract and result with two shared
    stages. Iteration t multiplies stage t % 2 while tile t + 1 is fetched into registers, then
    writes them to the other stage: one barrier per tile, since the stage written in iteration t was
    last read in iteration t - 1, before that iteration's barrier. v4 keeps tiled_product's thread
    layout; v5 gives each warp a (4·thread_m) x (8·thread_n) warp tile, its lanes a 4 x 8 grid over
    it, each lane owning runs of four consecutive rows (16 apart) and columns (32 apart), so a warp
    reads 16 consecutive A values and 32 consecutive B values of a staged row. (Numba has no 16-byte
    shared-memory loads; the CUDA C v5 reads each run as one float4.)"""
    block_k, block_m, block_n = tile.block_k, tile.block_m, tile.block_n
    thread_m, thread_n, threads = tile.thread_m, tile.thread_n, tile.threads
    a_loads, b_loads = block_k * block_m // threads, block_k * block_n // threads
    if a_loads * threads != block_k * block_m or b_loads * threads != block_k * block_n:
        raise ValueError(f"{tile}: each staged tile must split evenly over the {threads} threads")
    warp = schedule == WARP_TILED
    warp_m, warp_n = WARP_LANE_ROWS * thread_m, WARP_LANE_COLS * thread_n
    if warp and (thread_m % 4 or thread_n % 4 or block_m % warp_m or block_n % warp_n):
        raise ValueError(f"{tile}: warp tiles of 4 x 8 lanes with runs of four must divide the block tile")
    warps_n = block_n // warp_n
    thread_rows, thread_cols = block_m // thread_m, block_n // thread_n
    fetch_a, put_a = register_stager(a_at)
    fetch_b, put_b = register_stager(b_at)

    @inlined_device
    def origin():
        """(first row, first column, row step, column step) of this thread's outputs in the block tile."""
        if warp:
            lane = cuda.threadIdx.x % 32
            w = cuda.threadIdx.x // 32
            return ((w // warps_n) * warp_m + (lane // WARP_LANE_COLS) * 4,
                    (w % warps_n) * warp_n + (lane % WARP_LANE_COLS) * 4, 0, 0)
        return cuda.threadIdx.x // thread_cols, cuda.threadIdx.x % thread_cols, thread_rows, thread_cols

    @inlined_device
    def offset(i, step, run_stride):
        """Where output i of a thread lies from its first: i·step (v4), or in runs of four (v5)."""
        return (i // 4) * run_stride + i % 4 if warp else i * step

    @inlined_device
    def product(a_tiles, b_tiles, a, a_along_k, b, b_along_k, out, m, n, k_begin, k_end, m0, n0):
        acc = cuda.local.array((thread_m, thread_n), float32)
        a_values = cuda.local.array(thread_m, float32)
        b_values = cuda.local.array(thread_n, float32)
        a_staged = cuda.local.array(a_loads, float32)
        b_staged = cuda.local.array(b_loads, float32)
        row0, col0, row_step, col_step = origin()
        for i in range(thread_m):
            for j in range(thread_n):
                acc[i, j] = float32(0.0)
        tiles = (k_end - k_begin + block_k - 1) // block_k
        fetch_a(a, a_along_k, a_staged, block_k, block_m, m0, m, k_begin, k_end)
        fetch_b(b, b_along_k, b_staged, block_k, block_n, n0, n, k_begin, k_end)
        put_a(a_along_k, a_staged, a_tiles[0])
        put_b(b_along_k, b_staged, b_tiles[0])
        cuda.syncthreads()  # stage 0 is complete before anyone multiplies it
        for t in range(tiles):
            current = t % 2
            more = t + 1 < tiles  # the same in every thread: the barrier below is uniform
            if more:
                k0 = k_begin + (t + 1) * block_k
                fetch_a(a, a_along_k, a_staged, block_k, block_m, m0, m, k0, k_end)
                fetch_b(b, b_along_k, b_staged, block_k, block_n, n0, n, k0, k_end)
            for kk in range(block_k):
                for i in range(thread_m):
                    a_values[i] = a_tiles[current, kk, row0 + offset(i, row_step, WARP_LANE_ROWS * 4)]
                for j in range(thread_n):
                    b_values[j] = b_tiles[current, kk, col0 + offset(j, col_step, WARP_LANE_COLS * 4)]
                for i in range(thread_m):
                    for j in range(thread_n):
                        acc[i, j] += a_values[i] * b_values[j]
            if more:
                put_a(a_along_k, a_staged, a_tiles[1 - current])
                put_b(b_along_k, b_staged, b_tiles[1 - current])
            cuda.syncthreads()  # the next stage is complete, and this one no longer read, before t + 1
        for i in range(thread_m):
            row = m0 + row0 + offset(i, row_step, WARP_LANE_ROWS * 4)
            for j in range(thread_n):
                col = n0 + col0 + offset(j, col_step, WARP_LANE_COLS * 4)
                if row < m and col < n:
                    store(out, row, col, acc[i, j])

    return product


def tiled_product(tile, a_at, b_at, store, schedule: str = TILED):
    """The block-wide product device function of the module docstring for `tile` (a geometry.Tile),
    operands `a_at`, `b_at` and epilogue `store`. The block must have tile.threads threads. The
    double-buffered schedules (v4, v5) are staged_product's."""
    if schedule != TILED:
        return staged_product(tile, a_at, b_at, store, schedule)
    block_k = tile.block_k
    thread_m, thread_n = tile.thread_m, tile.thread_n
    thread_cols = tile.block_n // thread_n
    thread_rows = tile.block_m // thread_m
    stage_a, stage_b = tile_stager(a_at), tile_stager(b_at)

    @inlined_device
    def product(a_tile, b_tile, a, a_along_k, b, b_along_k, out, m, n, k_begin, k_end, m0, n0):
        acc = cuda.local.array((thread_m, thread_n), float32)
        a_values = cuda.local.array(thread_m, float32)
        b_values = cuda.local.array(thread_n, float32)
        ty = cuda.threadIdx.x // thread_cols
        tx = cuda.threadIdx.x % thread_cols
        # Threads whose rows or columns all fall outside C skip the arithmetic but still stage tiles
        # and reach every barrier.
        active = m0 + ty < m and n0 + tx < n
        for i in range(thread_m):
            for j in range(thread_n):
                acc[i, j] = float32(0.0)
        for k0 in range(k_begin, k_end, block_k):
            stage_a(a, a_along_k, a_tile, m0, m, k0, k_end)
            stage_b(b, b_along_k, b_tile, n0, n, k0, k_end)
            cuda.syncthreads()  # both tiles are complete before any thread multiplies them
            if active:
                accumulate_register_tile(a_tile, b_tile, acc, a_values, b_values, ty, tx)
            cuda.syncthreads()  # every thread is done reading the tiles before the next step overwrites them
        for i in range(thread_m):
            row = m0 + ty + i * thread_rows
            for j in range(thread_n):
                col = n0 + tx + j * thread_cols
                if row < m and col < n:
                    store(out, row, col, acc[i, j])

    return product


def candidate_kernels(op: str, defaults: dict, factory) -> dict:
    """{(version, tile): kernel} for every candidate tile (geometry.candidate_tiles) of the versions in
    `defaults` ({version: the kernel at its default tile}). The other tiles are made by
    `factory(tile, name, schedule)` under the default kernel's name plus the tile, so every kernel
    keeps a name of its own in compile_targets(), the PTX file names and `alexnet-cuda inspect`."""
    from kernels.geometry import candidate_tiles
    from kernels.numba.runtime import python_function

    kernels = {}
    for version, tiles in candidate_tiles(op).items():
        if version not in defaults:
            continue
        kernels[version, tiles[0]] = defaults[version]
        base = python_function(defaults[version]).__name__
        for tile in tiles[1:]:
            suffix = f"{tile.block_m}x{tile.block_n}x{tile.block_k}_{tile.thread_m}x{tile.thread_n}"
            kernels[version, tile] = factory(tile, f"{base}_{suffix}", SCHEDULES[version])
    return kernels


def named_kernel(function, name: str):
    """@cuda.jit of `function` under `name`: kernels made by a factory get the name their version
    has in compile_targets(), the PTX file names and `alexnet-cuda inspect`."""
    function.__name__ = function.__qualname__ = name
    return cuda.jit(function)
