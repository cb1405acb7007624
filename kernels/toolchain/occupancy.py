"""Theoretical occupancy of a kernel on sm_90 (H100, H200) from its registers per thread, static
shared memory and threads per block, without a GPU.

The limits of compute capability 9.0 come from two places:
- NVIDIA's CUDA C++ Programming Guide, table "Technical Specifications per Compute Capability"
  (column 9.0): 64K 32-bit registers per SM and at most 64K per block, 255 registers per thread,
  1,024 threads per block, 2,048 threads (64 warps) and 32 resident blocks per SM, 228 KB of shared
  memory per SM of which one block may use at most 227 KB;
- the allocation rules of cuda_occupancy.h in the CUDA toolkit (13.0 here), which the runtime's
  cudaOccupancyMaxActiveBlocksPerMultiprocessor follows: registers are allocated per warp in units
  of 256 (cudaOccRegAllocationGranularity), within 4 sub-partitions of an SM, each holding a quarter
  of the register file (cudaOccSubPartitionsPerMultiprocessor, cudaOccMaxBlocksPerSMRegsLimit);
  shared memory per block is rounded up to 128 bytes (cudaOccSMemAllocationGranularity) after the
  1 KB the driver reserves for each block (reservedSharedMemPerBlock, since sm_80); each SM has
  2 barriers per resident block slot (cudaOccMaxBlocksPerSMBlockBarrierLimit).

The shared-memory carveout is taken at its maximum (228 KB): the driver raises it to what the
resident blocks need, so this is the occupancy the hardware allows, not a launch configuration.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SmLimits:
    name: str = "sm_90"
    warp_size: int = 32
    max_threads_per_block: int = 1024
    max_warps_per_sm: int = 64  # 2,048 threads
    max_blocks_per_sm: int = 32
    registers_per_sm: int = 65536
    registers_per_block: int = 65536
    max_registers_per_thread: int = 255
    register_unit: int = 256  # registers are allocated per warp in multiples of this
    sub_partitions: int = 4
    shared_per_sm: int = 228 * 1024
    shared_per_block: int = 227 * 1024
    reserved_shared_per_block: int = 1024
    shared_unit: int = 128
    barriers_per_block_slot: int = 2


SM90 = SmLimits()


@dataclass(frozen=True)
class Occupancy:
    blocks_per_sm: int
    warps_per_sm: int
    fraction: float  # resident warps / the SM's maximum
    limiter: str  # what caps the blocks: "warps", "registers", "shared memory", "blocks", "barriers"

    def text(self) -> str:
        return f"{self.fraction:.0%}"


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def occupancy(registers: int, shared_bytes: int, threads: int, barriers: int = 1,
              limits: SmLimits = SM90) -> Occupancy:
    """Resident blocks and warps per SM for a block of `threads` threads whose threads use
    `registers` registers each and which uses `shared_bytes` of shared memory (static, as ptxas
    reports it, plus any dynamic shared memory the launch asks for)."""
    if not 1 <= threads <= limits.max_threads_per_block:
        raise ValueError(f"threads: expected 1..{limits.max_threads_per_block} per block, got {threads}")
    warps = -(-threads // limits.warp_size)
    candidates = {
        "warps": limits.max_warps_per_sm // warps,
        "blocks": limits.max_blocks_per_sm,
    }

    registers_per_warp = _round_up(registers * limits.warp_size, limits.register_unit)
    # The hardware check assumes a block's warps spread over all sub-partitions (cuda_occupancy.h).
    assumed_per_block = registers_per_warp * _round_up(warps, limits.sub_partitions)
    if (registers > limits.max_registers_per_thread or assumed_per_block > limits.registers_per_block
            or registers_per_warp * warps > limits.registers_per_block):
        candidates["registers"] = 0
    elif registers_per_warp:
        warps_per_partition = (limits.registers_per_sm // limits.sub_partitions) // registers_per_warp
        candidates["registers"] = warps_per_partition * limits.sub_partitions // warps

    shared = _round_up(shared_bytes + limits.reserved_shared_per_block, limits.shared_unit)
    if shared > limits.shared_per_block + limits.reserved_shared_per_block:
        candidates["shared memory"] = 0
    else:
        candidates["shared memory"] = limits.shared_per_sm // shared

    if barriers > 0:
        candidates["barriers"] = limits.barriers_per_block_slot * limits.max_blocks_per_sm // barriers

    # The first limiter in this order wins a tie, so "warps" is named when nothing else binds.
    limiter = min(candidates, key=lambda name: (candidates[name], list(candidates).index(name)))
    blocks = candidates[limiter]
    return Occupancy(blocks, blocks * warps, blocks * warps / limits.max_warps_per_sm, limiter)
