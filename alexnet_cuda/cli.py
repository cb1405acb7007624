"""The `alexnet-cuda` command. Each subcommand lives in its own module under alexnet_cuda.commands
with `add_arguments(parser)` and `run(args) -> int`, imported only when it is used, so that
`alexnet-cuda --help` starts fast and never touches a GPU library."""

from __future__ import annotations

import argparse
import importlib
import sys

from alexnet_cuda.commands import UsageError

# name: (module, one-line help)
COMMANDS = {
    "gradcheck": ("alexnet_cuda.commands.gradcheck", "check every backward against finite differences"),
    "summary": ("alexnet_cuda.commands.summary", "per-layer shapes, parameters and multiply-adds of an architecture"),
    "train": ("alexnet_cuda.commands.train", "train an AlexNet with hand-written backprop and SGD (under "
              "`mpiexec -n R`: data parallel on R processes)"),
    "eval": ("alexnet_cuda.commands.eval", "top-1/top-5 of a checkpoint on a validation split"),
    "predict": ("alexnet_cuda.commands.predict", "the top classes of images, with probabilities, under a checkpoint"),
    "import-weights": ("alexnet_cuda.commands.import_weights",
                       "a checkpoint from a PyTorch state dict (torchvision's AlexNet layout for alexnet-owt)"),
    "export-weights": ("alexnet_cuda.commands.export_weights", "a checkpoint's weights as a PyTorch state dict "
                       "(.safetensors)"),
    "prepare": ("alexnet_cuda.commands.prepare", "decode an image folder once into a packed memory-mapped dataset"),
    "synth": ("alexnet_cuda.commands.synth", "write the built-in synthetic image folder (10 classes of drawn shapes)"),
    "bench": ("alexnet_cuda.commands.bench", "benchmark kernels, a training step or the data loader"),
    "tune": ("alexnet_cuda.commands.tune", "time every candidate kernel at each shape of a network and cache the "
             "fastest (--kernel-choice measured)"),
    "inspect": ("alexnet_cuda.commands.inspect", "registers, spills, shared memory and occupancy of every kernel"),
    "plot": ("alexnet_cuda.commands.plot", "pictures: learning curves, conv filters, the roofline, a step's time"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alexnet-cuda",
        description="AlexNet on hand-written kernels: NumPy reference, Numba CUDA and CUDA C through CuPy.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except UsageError as error:
        print(f"alexnet-cuda {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"alexnet-cuda {args.command}: interrupted", file=sys.stderr)
        return 130
