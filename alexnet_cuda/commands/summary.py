"""`alexnet-cuda summary`: each layer's output shape, parameters and multiply-adds, and the totals."""

from __future__ import annotations

from alexnet_cuda.archs import ARCHS, DEFAULT_ARCH


def add_arguments(parser):
    parser.add_argument("--arch", choices=list(ARCHS), default=DEFAULT_ARCH, help="network (default: alexnet-mini)")
    parser.add_argument("--classes", type=int, default=None,
                        help="outputs of the last layer (default: 1000 for the full models, 10 for alexnet-mini)")


def run(args) -> int:
    from alexnet_cuda.archs import build_layers, get_arch
    from alexnet_cuda.commands import UsageError
    from alexnet_cuda.model import summarize, total_macs, total_parameters

    arch = get_arch(args.arch)
    classes = arch.default_classes if args.classes is None else args.classes
    if classes < 1:
        raise UsageError(f"--classes {classes}: must be at least 1")
    rows = summarize(build_layers(arch, None, classes), arch.input_size)
    print(f"{arch.name}: {arch.summary}")
    print(f"input 3x{arch.input_size}x{arch.input_size} (resized to {arch.resize_size} first), {classes} classes\n")
    print(f"{'layer':8} {'operation':38} {'output':>14} {'parameters':>12} {'multiply-adds':>15}")
    for row in rows:
        shape = "x".join(str(d) for d in row.output_shape)
        print(f"{row.name:8} {row.description:38} {shape:>14} {row.parameters:>12,} {row.macs:>15,}")
    params, macs = total_parameters(rows), total_macs(rows)
    print(f"\ntotal parameters: {params:,}")
    print(f"forward multiply-adds per image: {macs:,} ({macs / 1e9:.3f} GMAC; a training step is about 3x that)")
    return 0
