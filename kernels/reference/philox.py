"""Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11), vectorized over NumPy arrays.

Words are held in uint64 so that the 32x32 -> 64-bit products of the round function are exact;
every result is masked back to 32 bits.
"""

from __future__ import annotations

import numpy as np

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9  # golden ratio, the key schedule's Weyl increment
PHILOX_W1 = 0xBB67AE85  # sqrt(3) - 1
ROUNDS = 10
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Encrypt counters (c0, c1, c2, c3) under key (k0, k1); arrays broadcast; returns 4 uint32 arrays."""
    c0, c1, c2, c3, k0, k1 = (np.asarray(v, dtype=np.uint64) for v in (c0, c1, c2, c3, k0, k1))
    for round_index in range(ROUNDS):
        if round_index:
            k0 = (k0 + np.uint64(PHILOX_W0)) & _LOW32
            k1 = (k1 + np.uint64(PHILOX_W1)) & _LOW32
        product0 = np.uint64(PHILOX_M0) * c0
        product1 = np.uint64(PHILOX_M1) * c2
        c0, c1, c2, c3 = (
            (product1 >> _SHIFT32) ^ c1 ^ k0,
            product1 & _LOW32,
            (product0 >> _SHIFT32) ^ c3 ^ k1,
            product0 & _LOW32,
        )
    return tuple(word.astype(np.uint32) for word in (c0, c1, c2, c3))


def dropout_words(count: int, seed: int, offset: int) -> np.ndarray:
    """The Philox word r_i that decides element i of a tensor of `count` elements
    (kernels/README.md, "Dropout masks").

    Element i uses counter (j mod 2^32, j >> 32, offset mod 2^32, offset >> 32) with j = i // 4
    and key (seed mod 2^32, seed >> 32), and takes output word i mod 4.
    """
    blocks = np.arange((count + 3) // 4, dtype=np.uint64)
    words = philox4x32_10(
        blocks & _LOW32, blocks >> _SHIFT32, offset & 0xFFFFFFFF, offset >> 32, seed & 0xFFFFFFFF, seed >> 32
    )
    return np.stack(words, axis=1).reshape(-1)[:count]
