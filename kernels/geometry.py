"""Launch geometry shared by the Numba and CUDA C faces: the same version of a kernel is launched
the same way in both toolchains, so that their timings compare kernel for kernel.

Launchers call these; kernels only do the math for the (block, thread) they are given.
"""

from __future__ import annotations

from dataclasses import dataclass

THREADS_PER_BLOCK = 256  # elementwise kernels: 8 warps, enough to hide latency at full occupancy


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def grid_1d(total: int, threads: int = THREADS_PER_BLOCK) -> tuple[tuple[int], tuple[int]]:
    """One thread per element, `threads` to a block: ((blocks,), (threads,))."""
    return (max(ceil_div(total, threads), 1),), (threads,)


@dataclass(frozen=True)
class Tile:
    """A block computes a block_m x block_n tile of C = A·B, walking K in steps of block_k; each thread
    computes thread_m x thread_n outputs (1 x 1 without register blocking)."""

    block_m: int
    block_n: int
    block_k: int
    thread_m: int = 1
    thread_n: int = 1

    @property
    def threads(self) -> int:
        return (self.block_m // self.thread_m) * (self.block_n // self.thread_n)

    def grid(self, m: int, n: int, batches: int = 1) -> tuple[tuple[int, int, int], tuple[int]]:
        """Blocks over (n tiles, m tiles, batches) and a 1-D block of `threads` threads.

        n tiles run along x because x has the largest grid limit and consecutive blocks then share
        the same rows of A, which stay in L2.
        """
        return (ceil_div(n, self.block_n), ceil_div(m, self.block_m), batches), (self.threads,)
