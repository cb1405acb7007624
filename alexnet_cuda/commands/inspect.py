"""`alexnet-cuda inspect [OP] [--face cuda|numba] [--ptx]`: registers per thread, spilled bytes,
static shared memory and theoretical occupancy on sm_90 of every kernel version of both GPU faces,
compiled here without a GPU (kernels.toolchain.resources); --ptx prints each kernel's PTX after the
table."""

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
    print(resources.render(reports, notes))
    if args.json:
        write_json(Path(args.json), {"kind": "inspect", "arch": resources.ARCH, "notes": notes,
                                     "reports": [r.as_dict(with_ptx=args.ptx) for r in reports]})
    failed = any(r.error for r in reports) or any("failed" in note for note in notes)
    return 1 if failed else 0
