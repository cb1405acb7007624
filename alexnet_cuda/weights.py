"""Parameters in and out of PyTorch's state-dict layout: import-weights, export-weights and train --init.

Shapes here are PyTorch's already (conv (out, in/groups, k, k), linear (out, in)), so moving weights
is a matter of names. alexnet-owt is torchvision's AlexNet: torchvision keeps the layers before
the flatten in the nn.Sequential `features` and the layers after it in `classifier`, so the step at
position i before the flatten is module features.i and the step at position j after it is
classifier.j: conv1..conv5 are features.0, .3, .6, .8, .10 and fc6, fc7, fc8 are classifier.1, .4,
.6. (torchvision's AdaptiveAvgPool2d((6, 6)) between the two is the identity on alexnet-owt's 6x6
maps.) Any network with alexnet-owt's sequence of layer kinds takes these names; the others
(alexnet2012, alexnet-mini) have no torchvision twin and use their layer names: conv1.weight,
conv1.bias, ..., fc8.bias, which a PyTorch module with attributes of those names loads as they are.

Files are read without unpickling anything here: .safetensors through the safetensors package, and
a PyTorch .pth/.pt only through torch.load(weights_only=True) where PyTorch is installed.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from alexnet_cuda.archs import ALEXNET_OWT, ARCHS, OUTPUT_LAYER, Arch, build_layers
from loaders.atomic import atomic_open

TORCHVISION_LAYOUT = "torchvision"
LAYER_NAME_LAYOUT = "layer-name"
SUFFIXES = {"w": "weight", "b": "bias"}  # our parameter names -> PyTorch's
# torchvision's ImageNet input normalization (on [0, 1] pixels), which its published weights expect.
TORCHVISION_NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
METADATA_KEY = "alexnet_cuda"  # safetensors metadata written by export: JSON of arch and classes


class WeightsError(Exception):
    """A weights file that cannot be used; the message names the file and what to do."""


def _kinds(arch: Arch) -> list[str]:
    return [kind for kind, _, _ in arch.steps]


def layout(arch: Arch) -> str:
    return TORCHVISION_LAYOUT if _kinds(arch) == _kinds(ALEXNET_OWT) else LAYER_NAME_LAYOUT


def state_dict_names(arch: Arch) -> dict[str, str]:
    """{"conv1.w": "features.0.weight", ...}: each parameter here and its name in a state dict."""
    torchvision = layout(arch) == TORCHVISION_LAYOUT
    flatten = _kinds(arch).index("flatten")
    names = {}
    for position, (kind, layer, _) in enumerate(arch.steps):
        if kind not in ("conv", "linear"):
            continue
        if torchvision:
            module = f"features.{position}" if position < flatten else f"classifier.{position - flatten - 1}"
        else:
            module = layer
        for ours, theirs in SUFFIXES.items():
            names[f"{layer}.{ours}"] = f"{module}.{theirs}"
    return names


def parameter_shapes(arch: Arch, classes: int) -> dict[str, tuple[int, ...]]:
    """{"conv1.w": (64, 3, 11, 11), ...} of `arch` with `classes` outputs."""
    return {f"{layer.name}.{key}": tuple(shape) for layer in build_layers(arch, None, classes)
            for key, shape in layer.parameter_shapes().items()}


# --- reading a state dict ------------------------------------------------------------------------


def read_state_dict(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors by name, safetensors metadata) of a .safetensors file or a PyTorch state dict."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file; pass a .safetensors or .pth file holding a state dict")
    with open(path, "rb") as file:
        head = file.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header.
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= path.stat().st_size - 8:
        return _read_safetensors(path)
    # torch.save writes a zip archive holding <name>/data.pkl (since PyTorch 1.6) or, before that, a bare
    # pickle (protocol 2 or later). A checkpoint of ours is a zip archive too, holding meta.npy.
    members = _zip_members(path) if head[:4] == b"PK\x03\x04" else []
    if "meta.npy" in members:
        raise WeightsError(f"{path}: an alexnet-cuda checkpoint already; use it as it is (eval, predict, train "
                           f"--init), or write it out as a state dict with export-weights")
    if any(member.endswith("/data.pkl") for member in members) or head[:1] == b"\x80":
        return _read_pytorch(path), {}
    raise WeightsError(f"{path}: neither a safetensors file nor a file written by torch.save; pass the "
                       f"weights as .safetensors (or .pth where PyTorch is installed)")


def _zip_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as file:
            return {name: file.get_tensor(name) for name in file.keys()}, dict(file.metadata() or {})
    except (SafetensorError, OSError, TypeError, ValueError) as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({_first_line(error)}); write it again "
                           f"with safetensors' save_file, in float32") from error


def _read_pytorch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"{path}: a PyTorch pickle file, which only PyTorch can read (alexnet-cuda never unpickles a file "
            f"itself); install PyTorch here, or convert it where PyTorch is installed: python -c \"import torch, "
            f"safetensors.torch as st; st.save_file(torch.load('{path}', weights_only=True), "
            f"'weights.safetensors')\" and import weights.safetensors"
        ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for bad or unsafe files; each gets one message
        raise WeightsError(f"{path}: PyTorch could not load it with weights_only=True ({_first_line(error)}); "
                           f"save the model's state_dict() alone, or convert it to .safetensors") from error
    if not isinstance(loaded, Mapping) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        what = f"a dict with keys {sorted(map(str, loaded))[:5]}" if isinstance(loaded, Mapping) else \
            f"a {type(loaded).__name__}"
        raise WeightsError(f"{path}: holds {what}, not a state dict of tensors; save model.state_dict() alone "
                           f"(torch.save(model.state_dict(), PATH))")
    # NumPy has no bfloat16: floating tensors come over as float32, which holds every float16 and bfloat16.
    return {str(name): (value.float() if value.is_floating_point() else value).detach().cpu().numpy()
            for name, value in loaded.items()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


# --- matching a state dict to an architecture ----------------------------------------------------


def _fits(tensors: Mapping[str, np.ndarray], arch: Arch) -> bool:
    names = state_dict_names(arch)
    output = tensors.get(names[f"{OUTPUT_LAYER}.w"])
    if output is None or output.ndim != 2 or set(tensors) != set(names.values()):
        return False
    shapes = parameter_shapes(arch, output.shape[0])
    return all(tuple(tensors[theirs].shape) == shapes[ours] for ours, theirs in names.items())


def _which_arch(tensors: Mapping[str, np.ndarray], excluding: Arch) -> str:
    for other in ARCHS.values():
        if other.name != excluding.name and _fits(tensors, other):
            return f"; its tensors fit {other.name}: pass --arch {other.name}"
    return ""


def _listing(names: list[str], limit: int = 4) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def params_from_state_dict(tensors: Mapping[str, np.ndarray], arch: Arch, source) -> dict[str, np.ndarray]:
    """Our float32 parameters ("conv1.w", ...) from a state dict in `arch`'s layout; every name and
    shape is checked, and the number of classes is taken from the output layer."""
    names = state_dict_names(arch)
    expected = list(names.values())
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise WeightsError(f"{source}: no tensor {_listing(missing)}: not {arch.name}'s parameters in the "
                           f"{layout(arch)} layout ({expected[0]} ... {expected[-1]}){_which_arch(tensors, arch)}")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise WeightsError(f"{source}: tensors {arch.name} does not have: {_listing(unexpected)}; it holds another "
                           f"network{_which_arch(tensors, arch)}")
    output_name = names[f"{OUTPUT_LAYER}.w"]
    if tensors[output_name].ndim != 2:
        raise WeightsError(f"{source}: {output_name} has shape {tuple(tensors[output_name].shape)}; the output "
                           f"layer's weight must be (classes, inputs)")
    shapes = parameter_shapes(arch, int(tensors[output_name].shape[0]))
    params = {}
    for ours, theirs in names.items():
        value = tensors[theirs]
        if tuple(value.shape) != shapes[ours]:
            raise WeightsError(f"{source}: {theirs} has shape {tuple(value.shape)} where {arch.name} has "
                               f"{shapes[ours]}{_which_arch(tensors, arch) or '; it is another network'}")
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightsError(f"{source}: {theirs} holds {value.dtype} values; weights must be floating point")
        if not np.isfinite(value).all():
            raise WeightsError(f"{source}: {theirs} holds NaN or infinite values; these weights cannot be used")
        params[ours] = np.ascontiguousarray(value, dtype=np.float32)
    return params


def state_dict_from_params(params: Mapping[str, np.ndarray], arch: Arch) -> dict[str, np.ndarray]:
    """The reverse of params_from_state_dict: state-dict names in `arch`'s layout, float32."""
    return {theirs: np.ascontiguousarray(params[ours], dtype=np.float32)
            for ours, theirs in state_dict_names(arch).items()}


# --- class names ---------------------------------------------------------------------------------


def classes_for(count: int, metadata: Mapping[str, str], classes_file: Path | None) -> tuple[list[str], list[str]]:
    """(classes, display names) of an imported network with `count` outputs: from --classes FILE, else
    from an export's metadata, else ImageNet's for 1000 outputs, else the output numbers."""
    from alexnet_cuda.imagenet import IMAGENET_CLASS_COUNT, imagenet_classes

    if classes_file is not None:
        try:
            lines = [line.strip() for line in Path(classes_file).read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as error:
            raise WeightsError(f"--classes {classes_file}: cannot read it ({_first_line(error)})") from error
        classes = [line for line in lines if line]
        if len(classes) != count or len(set(classes)) != count:
            raise WeightsError(f"--classes {classes_file}: {len(classes)} names ({len(set(classes))} distinct) for "
                               f"a network with {count} outputs; give one distinct name a line, in output order")
        return classes, classes
    if METADATA_KEY in metadata:
        try:
            recorded = json.loads(metadata[METADATA_KEY])
            classes, names = list(recorded["classes"]), list(recorded["class_names"])
        except (ValueError, KeyError, TypeError):
            classes = names = []
        if len(classes) == count and len(names) == count:
            return classes, names
    if count == IMAGENET_CLASS_COUNT:
        wnids, names = imagenet_classes()
        return list(wnids), list(names)
    numbers = [str(index) for index in range(count)]
    return numbers, numbers


def class_names(meta: Mapping) -> list[str]:
    """Display names of a checkpoint's classes: recorded ones, ImageNet's for its 1000 ids, else the
    class folder names (checkpoints written by training before names were recorded)."""
    from alexnet_cuda.imagenet import names_for

    classes = list(meta["classes"])
    recorded = meta.get("class_names")
    if isinstance(recorded, list) and len(recorded) == len(classes):
        return [str(name) for name in recorded]
    return names_for(classes) or classes


def normalization(meta: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) on [0, 1] pixels that the checkpoint's network expects. Checkpoints without the
    field were trained here, on the loaders' ImageNet statistics."""
    from loaders.augment import MEAN, STD

    recorded = meta.get("normalization")
    if recorded is None:
        return MEAN, STD
    return np.asarray(recorded["mean"], dtype=np.float64), np.asarray(recorded["std"], dtype=np.float64)


# --- checkpoints ---------------------------------------------------------------------------------


def imported_meta(arch: Arch, classes: list[str], names: list[str], source: Path) -> dict:
    """Checkpoint metadata for imported weights: what eval and predict need, and no training state
    (status "imported": `train --init` starts from it, `--resume` refuses it)."""
    from alexnet_cuda.config import resolve

    return {
        "arch": arch.name,
        "classes": classes,
        "class_names": names,
        "normalization": TORCHVISION_NORMALIZATION,
        "config": resolve({"arch": arch.name}).as_dict(),
        "progress": {"epoch": 0, "batch": 0, "step": 0},
        "imported_from": str(source),
        "status": "imported",
    }


def export_metadata(meta: Mapping) -> dict[str, str]:
    record = {"arch": meta["arch"], "classes": list(meta["classes"]), "class_names": class_names(meta)}
    return {"format": "pt", METADATA_KEY: json.dumps(record)}


def write_safetensors(path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> Path:
    """Write atomically (loaders.atomic): a temporary file beside `path`, fsynced, renamed over it."""
    from safetensors.numpy import save

    path = Path(path)
    data = save(dict(tensors), metadata=dict(metadata))
    with atomic_open(path, "wb") as file:
        file.write(data)
    return path


def start_from(model, saved, classes: list[str]) -> str:
    """Load a checkpoint's parameters into a fresh model for data with `classes` (train --init);
    returns what was done.

    Every layer must fit. The output layer is kept only where the data has the checkpoint's classes,
    in its order; otherwise (another number of classes, or other ones) fc8 keeps its fresh
    initialisation, since its rows would name the wrong classes.
    """
    from alexnet_cuda.checkpoint import CheckpointError

    if saved.meta["arch"] != model.arch.name:
        raise CheckpointError(f"{saved.path}: holds {saved.meta['arch']} weights, which do not fit "
                              f"{model.arch.name}")
    params = dict(saved.params)
    fresh = model.host_arrays("params")
    previous = list(saved.meta["classes"])
    new_output = previous != list(classes)
    if new_output:
        for key in (f"{OUTPUT_LAYER}.w", f"{OUTPUT_LAYER}.b"):
            params[key] = fresh[key]
    try:
        model.load_arrays("params", params)
    except ValueError as error:
        raise CheckpointError(f"{saved.path}: its parameters do not fit {model.arch.name} ({error})") from error
    done = f"initialised from {saved.path} ({saved.meta['arch']}, {len(previous)} classes)"
    if len(previous) != len(classes):
        done += f"; {OUTPUT_LAYER} initialised afresh for {len(classes)} classes (the checkpoint's has {len(previous)})"
    elif new_output:
        done += (f"; {OUTPUT_LAYER} initialised afresh: the data's classes ({_listing(list(classes), 3)}) are not "
                 f"the checkpoint's ({_listing(previous, 3)})")
    return done
