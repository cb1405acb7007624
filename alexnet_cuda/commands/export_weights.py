"""`alexnet-cuda export-weights CK -o FILE.safetensors`: a checkpoint's parameters as a state dict.

alexnet-owt exports under torchvision's names, so that torchvision's AlexNet loads the file with
`model.load_state_dict(safetensors.torch.load_file(FILE))`; alexnet2012 and alexnet-mini export
under their layer names (conv1.weight ... fc8.bias; see alexnet_cuda.weights). The file's metadata
records the architecture and the class names, which import-weights reads back.
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser):
    parser.add_argument("checkpoint", metavar="CK", help="a checkpoint (.npz, or a folder holding last.npz)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.safetensors", help="file to write")


def run(args) -> int:
    from alexnet_cuda import checkpoint, weights
    from alexnet_cuda.archs import ArchError, get_arch
    from alexnet_cuda.commands import UsageError

    output = Path(args.output)
    if output.suffix != ".safetensors":
        raise UsageError(f"-o {output}: the weights are written as safetensors; name it "
                         f"{output.with_suffix('.safetensors').name}")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: the folder {output.parent} does not exist; create it first")
    try:
        saved = checkpoint.load(Path(args.checkpoint))
        arch = get_arch(saved.meta["arch"])
        tensors = weights.state_dict_from_params(saved.params, arch)
    except (checkpoint.CheckpointError, ArchError) as error:
        raise UsageError(str(error)) from error
    except KeyError as error:
        raise UsageError(f"{args.checkpoint}: no parameter {error} for {saved.meta['arch']}; the file is "
                         f"damaged") from error
    weights.write_safetensors(output, tensors, weights.export_metadata(saved.meta))
    names = "torchvision's AlexNet names" if weights.layout(arch) == weights.TORCHVISION_LAYOUT else "layer names"
    print(f"{output}: {len(tensors)} tensors of {arch.name} under {names} ({next(iter(tensors))} ... "
          f"{list(tensors)[-1]})")
    return 0
