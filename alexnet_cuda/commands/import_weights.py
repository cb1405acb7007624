"""`alexnet-cuda import-weights FILE --arch alexnet-owt -o CK.npz`: a checkpoint from a PyTorch state dict.

FILE is a .safetensors file, or a .pth/.pt file written by torch.save where PyTorch is installed
(loaded with weights_only=True). Every tensor name and shape is checked against the architecture
(alexnet_cuda.weights describes the names). The checkpoint records torchvision's normalization and
the class names, and can be evaluated, used by `predict`, or fine-tuned with `train --init`.
"""

from __future__ import annotations

from pathlib import Path

from alexnet_cuda.archs import ARCHS


def add_arguments(parser):
    parser.add_argument("file", metavar="FILE", help="state dict: .safetensors, or .pth/.pt where PyTorch is installed")
    parser.add_argument("--arch", choices=list(ARCHS), default="alexnet-owt",
                        help="the network the weights belong to (default: alexnet-owt, torchvision's AlexNet)")
    parser.add_argument("-o", "--output", required=True, metavar="CK.npz", help="checkpoint to write")
    parser.add_argument("--classes", metavar="FILE", type=Path,
                        help="class names, one a line in output order (default: ImageNet's for 1000 outputs, the "
                             "names an export recorded, or the output numbers)")


def run(args) -> int:
    from alexnet_cuda import checkpoint, weights
    from alexnet_cuda.archs import get_arch
    from alexnet_cuda.commands import UsageError

    arch = get_arch(args.arch)
    output = Path(args.output)
    if output.suffix != ".npz":
        raise UsageError(f"-o {output}: checkpoints are .npz files; name it {output.with_suffix('.npz').name}")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: the folder {output.parent} does not exist; create it first")
    try:
        tensors, metadata = weights.read_state_dict(Path(args.file))
        params = weights.params_from_state_dict(tensors, arch, args.file)
        count = params[f"{weights.OUTPUT_LAYER}.w"].shape[0]
        classes, names = weights.classes_for(count, metadata, args.classes)
    except weights.WeightsError as error:
        raise UsageError(str(error)) from error
    meta = weights.imported_meta(arch, classes, names, Path(args.file))
    checkpoint.save(output, meta, params, {})
    print(f"{output}: {arch.name} with {count} classes ({names[0]!r} ... {names[-1]!r}) from {args.file}, "
          f"{sum(value.size for value in params.values()):,} parameters")
    return 0
