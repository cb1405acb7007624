"""`alexnet-cuda inspect [OP] [--face cuda|numba] [--ptx]`: registers per thread, spilled bytes,
static shared memory and theoretical occupancy on sm_90 of every kernel version of both GPU faces,
compiled here without a GPU (kernels.toolchain.resources measures, this command renders the table);
--ptx prints each kernel's PTX after the table."""

from __future__ import annotations

from pathlib import Path

from alexnet_cuda.commands import UsageError, check_json_path, write_json
from kernels import GPU_FACES


def add_arguments(parser):
    parser.add_argument("op", nargs="?", default=None, metavar="OP",
                        help="only the kernels of this contract op (e.g. conv2d_forward; default: every op)")
    parser.add_argument("--face", action="append", choices=GPU_FACES, default=None,
                        help="only this GPU face (repeatable; default: both)")
    parser.add_argument("--ptx", action="store_true", help="print each kernel's PTX after the table")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the reports as JSON here")


def run(args) -> int:
    from kernels import OPS
    from kernels.toolchain import resources

    extra_ops = ("augment",)  # kernels outside the contract that the faces also compile
    if args.op is not None and args.op not in OPS and args.op not in extra_ops:
        raise UsageError(f"unknown op {args.op!r}; expected one of: {', '.join(OPS + extra_ops)}")
    faces = tuple(dict.fromkeys(args.face)) if args.face else GPU_FACES
    if args.json:
        check_json_path(Path(args.json))
    reports, notes = resources.inspect(args.op, faces, with_ptx=args.ptx)
    print(render(reports, notes, resources.ARCH))
    if args.json:
        write_json(Path(args.json), {"kind": "inspect", "arch": resources.ARCH, "notes": notes,
                                     "reports": [r.as_dict(with_ptx=args.ptx) for r in reports]})
    failed = any(r.error for r in reports) or any("failed" in note for note in notes)
    return 1 if failed else 0


def render(reports, notes: list[str], arch: str) -> str:
    """One aligned table, grouped by op (a blank line between ops), promoted versions marked with *;
    then each kernel's PTX where it was asked for."""
    from benchmarks.report import format_table

    headers = ["op", "face", "ver", "kernel", "regs", "spill st/ld", "smem", "stack", "threads", "blocks/SM",
               "occupancy", "limited by"]
    cells, group_starts, previous_op, assumed = [], set(), None, False
    for r in reports:
        if r.op != previous_op:
            group_starts.add(len(cells))
        first, previous_op = r.op != previous_op, r.op
        version = f"{r.version}{'*' if r.promoted else ''}"
        row = [r.op if first else "", r.face, version, r.kernel]
        if r.error:
            cells.append([*row, "", "", "", "", "", "", "", f"FAILED: {r.error.splitlines()[0]}"])
            continue
        assumed |= r.threads_from == "geometry"
        cells.append([
            *row, str(r.registers), f"{r.spill_store_bytes}/{r.spill_load_bytes}", f"{r.shared_bytes:,}",
            str(r.stack_bytes), f"{r.threads}{'†' if r.threads_from == 'geometry' else ''}", str(r.blocks_per_sm),
            f"{r.occupancy:.0%}", r.limiter or "",
        ])
    table = format_table(headers, cells, {4, 5, 6, 7, 8, 9, 10}).split("\n")
    body = table[:2]
    for index, line in enumerate(table[2:]):
        if index in group_starts and index:
            body.append("")
        body.append(line)
    lines = [f"Kernel resources for {arch}, compiled here without a GPU (CUDA C: NVRTC + ptxas; Numba: NVVM + "
             "nvJitLink).", "Occupancy: resident warps of the 64 an SM holds, limited by the named resource "
             "(kernels/toolchain/occupancy.py).", "", *body, "",
             "* promoted: the version the contract function runs · smem: static shared memory, bytes · spill and "
             "stack: bytes"]
    if assumed:
        lines.append("† threads per block taken from kernels.geometry (the compile target does not carry it)")
    if not reports:
        lines.append("no kernels found")
    lines += [f"note: {note}" for note in notes]
    for r in reports:
        if r.ptx:
            lines += ["", f"// ---- {r.face} {r.op} v{r.version} {r.kernel} ({arch}) ----", r.ptx.rstrip()]
    return "\n".join(lines)
