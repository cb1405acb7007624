"""Theoretical occupancy on sm_90 against values worked out by hand from cuda_occupancy.h's rules."""

import pytest

from kernels.toolchain.occupancy import SM90, occupancy


@pytest.mark.parametrize(("registers", "shared", "threads", "blocks", "warps", "limiter"), [
    (12, 0, 256, 8, 64, "warps"),  # light elementwise kernel: 2,048 threads fill the SM
    (32, 0, 256, 8, 64, "warps"),  # 32 registers x 2,048 threads = the whole 64K register file
    (40, 0, 256, 6, 48, "registers"),  # 40·32 = 1,280 per warp: 12 warps per sub-partition, 48 per SM
    (64, 0, 128, 8, 32, "registers"),  # 2,048 per warp: 8 warps per sub-partition
    (128, 8192, 256, 2, 16, "registers"),  # a register-blocked GEMM tile
    (16, 48 * 1024, 256, 4, 32, "shared memory"),  # 48 KB + 1 KB reserved: 4 blocks in 228 KB
    (16, 0, 32, 32, 32, "blocks"),  # one-warp blocks run into the 32-block limit
    (255, 0, 1024, 0, 0, "registers"),  # 1,024 threads at 255 registers cannot launch
])
def test_occupancy_by_hand(registers, shared, threads, blocks, warps, limiter):
    result = occupancy(registers, shared, threads, barriers=0)
    assert (result.blocks_per_sm, result.warps_per_sm, result.limiter) == (blocks, warps, limiter)
    assert result.fraction == warps / SM90.max_warps_per_sm


def test_register_rounding_is_per_warp_in_units_of_256():
    # 33 registers round up to 40 per thread (1,280 per warp), the same as 40.
    assert occupancy(33, 0, 256, 0) == occupancy(40, 0, 256, 0)
    assert occupancy(33, 0, 256, 0).warps_per_sm < occupancy(32, 0, 256, 0).warps_per_sm


def test_block_size_is_checked():
    with pytest.raises(ValueError, match="1025"):
        occupancy(16, 0, 1025)
