"""Registers, spills, shared memory, stack and theoretical occupancy of every kernel version of both
GPU faces, compiled for sm_90 without a GPU; the logic behind `alexnet-cuda inspect`.

- CUDA C: each .cu file named by kernels.cuda.compile_targets() is compiled once through NVRTC with
  the face's own options and ptxas -v (kernels.toolchain.nvrtc.compile_file), instantiating every
  target's name expression; each target's numbers come from ptxas's report of its symbol.
- Numba: each target of kernels.numba.compile_targets() is compiled to PTX through NVVM
  (kernels.toolchain.numba_compile.compile_ptx) and assembled by nvJitLink with -v (ptxas_log there).
  That needs Numba's real CUDA target, not the simulator, so it runs in a child process started
  with ALEXNET_CUDA_NUMBA_COMPILE_ONLY=1 (`python -m kernels.toolchain.resources numba`), which prints
  its reports as JSON.

Occupancy needs the threads per block of each kernel's launch. A target that carries `threads`
gives it; otherwise it is taken from kernels.geometry, whose constants both faces launch with (the
block tiles' thread counts for the tiled GEMM and convolution versions, GRID_2D_BLOCK for v1 of
the linear layers, THREADS_PER_BLOCK or REDUCE_THREADS elsewhere), and the table marks it as
taken from the geometry.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass

from kernels import GPU_FACES
from kernels.toolchain.occupancy import occupancy

ARCH = "sm_90"


@dataclass
class KernelReport:
    face: str
    op: str
    version: int
    kernel: str
    promoted: bool = False
    registers: int | None = None
    spill_store_bytes: int | None = None
    spill_load_bytes: int | None = None
    shared_bytes: int | None = None
    stack_bytes: int | None = None
    barriers: int | None = None
    threads: int | None = None
    threads_from: str = ""  # "target" or "geometry"
    blocks_per_sm: int | None = None
    occupancy: float | None = None
    limiter: str | None = None
    ptx: str | None = None
    error: str | None = None

    def as_dict(self, with_ptx: bool = False) -> dict:
        data = asdict(self)
        if not with_ptx:
            data.pop("ptx")
        return data


def threads_per_block(target) -> tuple[int, str]:
    """(threads per block, where that number comes from) for a compile target of either face."""
    for attribute in ("threads", "block_threads"):
        value = getattr(target, attribute, None)
        if value:
            return int(value), "target"
    from kernels import geometry

    op, version = target.op, target.version
    double_buffered = {4: geometry.DOUBLE_BUFFERED_TILE} if hasattr(geometry, "DOUBLE_BUFFERED_TILE") else {}
    tiles = {"conv2d": {**getattr(geometry, "CONV_TILES", {}), **double_buffered},
             "linear": {**getattr(geometry, "LINEAR_TILES", {}), **double_buffered}}
    family = op.split("_")[0]
    if family in tiles and version in tiles[family] and "reduce" not in target.kernel and "db" not in target.kernel:
        return tiles[family][version].threads, "geometry"
    if family == "linear" and version == 1 and hasattr(geometry, "GRID_2D_BLOCK"):
        bx, by = geometry.GRID_2D_BLOCK
        return bx * by, "geometry"
    if op == "softmax_xent_forward" or "db" in target.kernel or "reduce" in target.kernel:
        return getattr(geometry, "REDUCE_THREADS", geometry.THREADS_PER_BLOCK), "geometry"
    return geometry.THREADS_PER_BLOCK, "geometry"


def fill_occupancy(report: KernelReport, target) -> None:
    report.threads, report.threads_from = threads_per_block(target)
    if report.registers is None:
        return
    result = occupancy(report.registers, report.shared_bytes or 0, report.threads, report.barriers or 0)
    report.blocks_per_sm, report.occupancy, report.limiter = result.blocks_per_sm, result.fraction, result.limiter


def _from_resources(report: KernelReport, resources) -> None:
    report.registers = resources.registers
    report.spill_store_bytes = resources.spill_store_bytes
    report.spill_load_bytes = resources.spill_load_bytes
    report.shared_bytes = resources.shared_memory_bytes
    report.stack_bytes = resources.stack_frame_bytes
    report.barriers = resources.barriers


def entry_ptx(ptx: str, symbol: str) -> str:
    """The `.entry` function `symbol` of a PTX module (its whole text when it cannot be found)."""
    match = re.search(rf"^\.(?:visible|weak) \.entry {re.escape(symbol)}\(", ptx, flags=re.MULTILINE)
    if match is None:
        return ptx
    end = re.search(r"^}[ \t]*$", ptx[match.start():], flags=re.MULTILINE)
    return ptx[match.start(): match.start() + end.end()] if end else ptx[match.start():]


# ------------------------------------------------------------------------------------------------
# CUDA C
# ------------------------------------------------------------------------------------------------

def cuda_reports(op: str | None = None, with_ptx: bool = False, arch: str = ARCH) -> tuple[list[KernelReport], list]:
    """Reports for every CUDA C compile target (of `op` only, if given), and notes."""
    import importlib

    try:
        face = importlib.import_module("kernels.cuda")
    except Exception as error:  # an import failure of the face is a note in the table, not a crash
        return [], [f"cuda: kernels.cuda cannot be imported: {type(error).__name__}: {error}"]
    if not hasattr(face, "compile_targets"):
        return [], ["cuda: the face declares no compile targets yet (kernels.cuda.compile_targets)"]
    from kernels.toolchain.nvrtc import NvrtcError, compile_file

    targets = [t for t in face.compile_targets() if op is None or t.op == op]
    promoted = _promoted_cuda_kernels(face)
    by_source: dict[str, list] = {}
    for target in targets:
        by_source.setdefault(str(target.source), []).append(target)
    reports = []
    for source, group in by_source.items():
        try:
            compiled = compile_file(source, arch, name_expressions=[t.name_expression for t in group])
            failure = None
        except (NvrtcError, RuntimeError) as error:
            compiled, failure = None, str(error)
        for target in group:
            report = KernelReport("cuda", target.op, target.version, re.sub(r",\s+", ",", target.name_expression),
                                  promoted=(target.op, target.version, target.kernel) in promoted)
            if compiled is None:
                report.error = failure
            else:
                try:
                    _from_resources(report, compiled.resources_of(target.name_expression))
                    if with_ptx:
                        report.ptx = entry_ptx(compiled.ptx, compiled.symbol_of(target.name_expression))
                except KeyError as error:
                    report.error = str(error)
            fill_occupancy(report, target)
            reports.append(report)
    return reports, []


def _promoted_cuda_kernels(face) -> set[tuple[str, int, str]]:
    """(op, version, kernel) of the kernels the contract functions launch: the promoted versions'
    own, and the helpers of earlier versions they reuse (a bias-gradient reduction, a split-K sum)."""
    if hasattr(face, "promoted_targets"):
        return {(t.op, t.version, t.kernel) for t in face.promoted_targets()}
    promoted = getattr(face, "PROMOTED", {})
    return {(t.op, t.version, t.kernel) for t in face.compile_targets() if promoted.get(t.op) == t.version}


_PTX_SHARED = re.compile(
    r"^\s*(?:\.(?:visible|weak|global)\s+)?\.shared\s+(?:\.align\s+\d+\s+)?\.([a-z]+)(\d+)\s+[\w$]+\[(\d+)\]",
    re.MULTILINE)


def ptx_static_shared_bytes(ptx: str) -> int:
    """Bytes of the static `.shared` arrays a PTX module declares (`.extern` dynamic arrays have no
    size and do not count). For a Numba kernel, whose module holds that one kernel, this is the
    kernel's static shared memory: what ptxas -v reports for a CUDA C kernel. nvJitLink's own
    linked report adds the 1 KB the driver reserves per block on sm_90, which the occupancy
    calculation adds itself."""
    return sum(int(bits) // 8 * int(count) for _, bits, count in _PTX_SHARED.findall(ptx))


# ------------------------------------------------------------------------------------------------
# Numba
# ------------------------------------------------------------------------------------------------

def numba_reports(op: str | None = None, with_ptx: bool = False, arch: str = ARCH,
                  timeout: float = 900) -> tuple[list[KernelReport], list]:
    """Reports for every Numba compile target, from a child process on Numba's real CUDA target."""
    command = [sys.executable, "-m", "kernels.toolchain.resources", "numba", "--arch", arch]
    if op:
        command += ["--op", op]
    if with_ptx:
        command.append("--ptx")
    environment = dict(os.environ, ALEXNET_CUDA_NUMBA_COMPILE_ONLY="1", NUMBA_ENABLE_CUDASIM="0")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_repository_root(), os.environ.get("PYTHONPATH")]))
    try:
        child = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], [f"numba: compiling the kernels took longer than {timeout:.0f} s; stopped"]
    if child.returncode != 0:
        tail = (child.stderr or child.stdout).strip().splitlines()[-12:]
        return [], ["numba: the compile process failed:\n    " + "\n    ".join(tail)]
    data = json.loads(child.stdout)
    return [KernelReport(**row) for row in data["reports"]], data["notes"]


def _repository_root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2])


def _numba_child(op: str | None, with_ptx: bool, arch: str) -> dict:
    """In a process with Numba's real CUDA target: compile, assemble and report every target."""
    from kernels.numba import PROMOTED, compile_targets
    from kernels.toolchain.numba_compile import compile_ptx, ptxas_log
    from kernels.toolchain.nvrtc import parse_ptxas_report

    cc = (int(arch[3:-1]), int(arch[-1]))
    reports, done = [], {}
    for target in compile_targets():
        if op is not None and target.op != op:
            continue
        report = KernelReport("numba", target.op, target.version, target.kernel,
                              promoted=PROMOTED.get(target.op) == target.version)
        key = (id(target.dispatcher), target.signature)
        try:
            if key not in done:
                ptx = compile_ptx(target, cc)
                done[key] = (ptx, parse_ptxas_report(ptxas_log(ptx, arch)))
            ptx, found = done[key]
            if len(found) != 1:
                raise RuntimeError(f"expected one kernel in the PTX of {target.kernel}, ptxas reported {len(found)}")
            _from_resources(report, next(iter(found.values())))
            report.shared_bytes = report.shared_bytes or ptx_static_shared_bytes(ptx)
            if with_ptx:
                report.ptx = ptx
        except Exception as error:  # each failing target is reported in its row
            report.error = f"{type(error).__name__}: {error}"
        fill_occupancy(report, target)
        reports.append(report)
    return {"reports": [r.as_dict(with_ptx=True) for r in reports], "notes": []}


# ------------------------------------------------------------------------------------------------
# Both, as a table
# ------------------------------------------------------------------------------------------------

def inspect(op: str | None = None, faces=GPU_FACES, with_ptx: bool = False) -> tuple[list[KernelReport], list]:
    reports, notes = [], []
    for face in faces:
        found, face_notes = (cuda_reports if face == "cuda" else numba_reports)(op, with_ptx)
        reports += found
        notes += face_notes
    from kernels import OPS

    order = {name: i for i, name in enumerate(OPS)}
    reports.sort(key=lambda r: (order.get(r.op, len(order)), r.op, faces.index(r.face), r.version, r.kernel))
    return reports, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.toolchain.resources")
    parser.add_argument("face", choices=("numba",), help="the face to compile in this process")
    parser.add_argument("--op", default=None)
    parser.add_argument("--ptx", action="store_true")
    parser.add_argument("--arch", default=ARCH)
    args = parser.parse_args(argv)
    json.dump(_numba_child(args.op, args.ptx, args.arch), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
