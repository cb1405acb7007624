"""Inverted dropout with Philox4x32-10 computed in the kernel, masks bit-identical to the reference.

    v1  one thread per Philox block: thread j encrypts counter (j, offset) under key seed once and
        decides the four elements 4j .. 4j+3 with its four output words (dropout_grid).

The mask rule (kernels/README.md, "Dropout masks"; kernels.contract.dropout_threshold): element i keeps when
(r_i >> 8) >= ceil(p·2^24), an integer comparison, so no float rounding of p differs between faces.
Every integer operation below casts its operands explicitly to uint32 or uint64: the simulator
computes with NumPy's promotion rules and the compiled kernel with Numba's, and only explicit
casts make the two agree (and keep NumPy from warning about a uint32 overflow that is intended).
"""

from __future__ import annotations

import numpy as np

from kernels.contract import (
    check_dropout_mask,
    check_dropout_params,
    check_elementwise,
    dropout_scale,
    dropout_threshold,
    split_u64,
)
from kernels.geometry import PHILOX_WORDS, dropout_grid, grid_1d
from kernels.numba.compiler import cuda, float32, uint8, uint32, uint64
from kernels.numba.runtime import SPEC, declare, empty, launch
from kernels.reference.philox import PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, ROUNDS

LOW32 = 0xFFFFFFFF


@cuda.jit(device=True)
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Salmon et al., SC'11): the four words of counter (c0..c3) under key (k0, k1).

    Each round multiplies c0 and c2 by the Philox constants into 64-bit products and mixes their
    high and low halves with the other words and the key; the key advances by the Weyl increments.
    Self-contained (no helper calls), so that tests can also compile it for the CPU with numba.njit
    and check Numba's integer typing, which the simulator does not use, against the reference.
    """
    for round_index in range(ROUNDS):
        if round_index > 0:
            k0 = uint32((uint64(k0) + uint64(PHILOX_W0)) & uint64(LOW32))
            k1 = uint32((uint64(k1) + uint64(PHILOX_W1)) & uint64(LOW32))
        product0 = uint64(PHILOX_M0) * uint64(c0)
        product1 = uint64(PHILOX_M1) * uint64(c2)
        c0, c1, c2, c3 = (
            uint32(product1 >> uint64(32)) ^ uint32(c1) ^ k0,
            uint32(product1 & uint64(LOW32)),
            uint32(product0 >> uint64(32)) ^ uint32(c3) ^ k1,
            uint32(product0 & uint64(LOW32)),
        )
    return c0, c1, c2, c3


@cuda.jit(device=True)
def keep_element(x, y, mask, i, word, threshold, scale):
    """Decide element i from its Philox word and write its mask bit and scaled value.

    y = x·(scale or 0), the reference's x·(mask·scale): the same single rounding, so y is exact.
    """
    keep = (word >> uint32(8)) >= threshold
    mask[i] = uint8(1) if keep else uint8(0)
    y[i] = x[i] * (scale if keep else float32(0.0))


@cuda.jit
def dropout_forward_kernel(x, y, mask, seed_low, seed_high, offset_low, offset_high, threshold, scale):
    """y[i] = x[i]·scale·keep_i, mask[i] = keep_i, keep_i = (r_i >> 8) >= threshold.

    x (count,), y (count,) out, mask (count,) uint8 out; r_i is word i mod 4 of Philox4x32-10 with
    counter (j mod 2^32, j >> 32, offset mod 2^32, offset >> 32), j = i // 4, and key
    (seed mod 2^32, seed >> 32). Thread j = blockIdx.x·blockDim.x + threadIdx.x covers elements
    4j .. 4j+3, the last thread only those below count. threshold = ceil(p·2^24), scale = 1/(1 − p).
    """
    j = cuda.grid(1)
    count = x.size
    first = j * PHILOX_WORDS
    if first >= count:
        return
    block = uint64(j)
    r0, r1, r2, r3 = philox4x32_10(
        uint32(block & uint64(LOW32)), uint32(block >> uint64(32)), offset_low, offset_high, seed_low, seed_high
    )
    keep_element(x, y, mask, first, r0, threshold, scale)
    if first + 1 < count:
        keep_element(x, y, mask, first + 1, r1, threshold, scale)
    if first + 2 < count:
        keep_element(x, y, mask, first + 2, r2, threshold, scale)
    if first + 3 < count:
        keep_element(x, y, mask, first + 3, r3, threshold, scale)


@cuda.jit
def dropout_backward_kernel(dy, mask, dx, scale):
    """dx[i] = dy[i]·(mask[i]·scale), as the reference rounds it.

    dy (count,), mask (count,) uint8, dx (count,) out. Thread i covers element i.
    """
    i = cuda.grid(1)
    if i < dy.size:
        dx[i] = dy[i] * (scale if mask[i] != uint8(0) else float32(0.0))


def dropout_forward_v1(x, p, seed, offset):
    check_elementwise(SPEC, [("x", x)])
    p, seed, offset = check_dropout_params(p, seed, offset)
    y = empty(x.shape)
    mask = empty(x.shape, np.uint8)
    seed_low, seed_high = split_u64(seed)
    offset_low, offset_high = split_u64(offset)
    grid, block = dropout_grid(x.size)
    launch(
        dropout_forward_kernel, grid, block, x.reshape(-1), y.reshape(-1), mask.reshape(-1),
        np.uint32(seed_low), np.uint32(seed_high), np.uint32(offset_low), np.uint32(offset_high),
        np.uint32(dropout_threshold(p)), np.float32(dropout_scale(p)),
    )
    return y, mask


def dropout_backward_v1(dy, mask, p):
    check_elementwise(SPEC, [("dy", dy)])
    check_dropout_mask(SPEC, mask, dy)
    p, _, _ = check_dropout_params(p, 0, 0)
    dx = empty(dy.shape)
    grid, block = grid_1d(dy.size)
    launch(dropout_backward_kernel, grid, block, dy.reshape(-1), mask.reshape(-1), dx.reshape(-1),
           np.float32(dropout_scale(p)))
    return dx


VERSIONS = {
    "dropout_forward": {1: dropout_forward_v1},
    "dropout_backward": {1: dropout_backward_v1},
}

declare("dropout_forward", 1, dropout_forward_kernel,
        "void(float32[::1], float32[::1], uint8[::1], uint32, uint32, uint32, uint32, uint32, float32)")
declare("dropout_backward", 1, dropout_backward_kernel,
        "void(float32[::1], uint8[::1], float32[::1], float32)")
