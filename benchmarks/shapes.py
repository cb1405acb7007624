"""The op cases the kernel benchmark times: every contract call one training step of AlexNet makes,
at a batch size, derived from the trainer's own architectures (alexnet_cuda.archs), so that the
benchmarks time exactly the shapes training runs and the layer list is written once.

The two full networks (alexnet_cuda.archs says what each is):
- alexnet2012: the paper's network at 227x227; 60,965,224 parameters, 0.724 GMAC an image.
- alexnet-owt: torchvision's "one weird trick" variant at 224x224; 61,100,840 parameters, 0.714
  GMAC an image.

An op case is one contract call at one shape: (op, dims, layers). Layers of either network that
make the same call (fc7 and fc8 appear in both) share one case, so each shape is timed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alexnet_cuda.archs import build_layers, get_arch
from alexnet_cuda.layers import Layer, parameter_count

ARCHS = {name: get_arch(name) for name in ("alexnet2012", "alexnet-owt")}  # the networks the benchmarks time
CLASSES = 1000  # ImageNet's, as in the paper
SGD_PARAMS = (("lr", 0.01), ("momentum", 0.9), ("weight_decay", 5e-4))
DEFAULT_BATCH = 128


@dataclass(frozen=True)
class Shaped:
    """A layer of the trainer's model with the shapes it maps between at some batch size."""

    layer: Layer
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        shape = self.layer.parameter_shapes().get("w")
        return tuple(shape) if shape else None

    @property
    def parameters(self) -> int:
        return parameter_count(self.layer)

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward pass (for the whole batch)."""
        return self.layer.macs(self.in_shape)


def shaped_layers(arch: str, batch: int = DEFAULT_BATCH) -> list[Shaped]:
    """Every layer of `arch` (the trainer's, without parameters or a face) with its input and output
    shapes at `batch` images; flatten, which makes no call, left out."""
    spec = ARCHS[arch]
    shape: tuple[int, ...] = (batch, 3, spec.input_size, spec.input_size)
    shaped = []
    for layer in build_layers(spec, face=None, classes=CLASSES):
        out = tuple(layer.output_shape(shape))
        if layer.kind != "flatten":
            shaped.append(Shaped(layer, shape, out))
        shape = out
    return shaped


@dataclass(frozen=True)
class OpCase:
    """One contract call at one shape. dims holds what the call needs, as (name, value) pairs."""

    op: str
    dims: tuple[tuple[str, object], ...]
    layers: tuple[str, ...] = field(default=(), compare=False)

    def __getitem__(self, name: str):
        for key, value in self.dims:
            if key == name:
                return value
        raise KeyError(f"{self.op} case has no {name!r}; it has {', '.join(k for k, _ in self.dims)}")

    @property
    def key(self) -> tuple:
        return (self.op, self.dims)

    @property
    def label(self) -> str:
        """Where the shape comes from: 'alexnet2012/conv1', or several joined with commas."""
        return ", ".join(self.layers)

    @property
    def shape_text(self) -> str:
        """The shape in a few characters, for tables."""
        def dims_text(shape):
            return "x".join(str(d) for d in shape)

        if self.op.startswith("conv2d"):
            text = f"{dims_text(self['x'])} * {dims_text(self['w'])}"
            text += f" /{self['stride']}" if self["stride"] != 1 else ""
            text += f" p{self['pad']}" if self["pad"] else ""
            text += f" g{self['groups']}" if self["groups"] != 1 else ""
            return text
        if self.op.startswith("linear"):
            return f"{dims_text(self['x'])} · {dims_text(self['w'])}ᵀ"
        return dims_text(self["x"])


def _cases_of(arch: str, shaped: Shaped) -> list[OpCase]:
    layer, x = shaped.layer, shaped.in_shape
    label = (f"{arch}/{layer.name}",)
    if layer.kind == "conv":
        dims = (("x", x), ("w", shaped.weight_shape), ("stride", layer.stride), ("pad", layer.pad),
                ("groups", layer.groups))
        ops = ("conv2d_forward", "conv2d_backward")
    elif layer.kind == "linear":
        dims = (("x", x), ("w", shaped.weight_shape))
        ops = ("linear_forward", "linear_backward")
    elif layer.kind == "lrn":
        dims = (("x", x), *((name, layer.constants[name]) for name in ("size", "alpha", "beta", "k")))
        ops = ("lrn_forward", "lrn_backward")
    elif layer.kind == "maxpool":
        dims = (("x", x), ("kernel", layer.kernel), ("stride", layer.stride))
        ops = ("maxpool_forward", "maxpool_backward")
    elif layer.kind == "dropout":
        dims = (("x", x), ("p", layer.p))
        ops = ("dropout_forward", "dropout_backward")
    elif layer.kind == "relu":
        dims = (("x", x),)
        ops = ("relu_forward", "relu_backward")
    else:
        raise ValueError(f"{arch}/{layer.name}: no op cases for a layer of kind {layer.kind!r}")
    cases = [OpCase(op, dims, label) for op in ops]
    if shaped.weight_shape is not None:
        cases.append(OpCase("sgd_update", (("x", shaped.weight_shape), *SGD_PARAMS), label))
    return cases


def arch_cases(arch: str, batch: int = DEFAULT_BATCH) -> list[OpCase]:
    """Every op case of one training step of `arch`, in network order (forward op, backward op,
    and the SGD update of the layer's weight), then the loss."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    cases = []
    for shaped in shaped_layers(arch, batch):
        cases.extend(_cases_of(arch, shaped))
    logits = (("x", (batch, CLASSES)),)
    label = (f"{arch}/loss",)
    cases += [OpCase("softmax_xent_forward", logits, label), OpCase("softmax_xent_backward", logits, label)]
    return cases


def benchmark_cases(archs=tuple(ARCHS), batch: int = DEFAULT_BATCH, ops=None) -> list[OpCase]:
    """The cases of every arch in `archs`, one per distinct call (their layer labels merged), in
    contract op order, optionally only the ops named in `ops`."""
    from kernels import OPS

    if ops is not None:
        unknown = sorted(set(ops) - set(OPS))
        if unknown:
            raise ValueError(f"unknown op(s) {', '.join(unknown)}; expected names from: {', '.join(OPS)}")
    merged: dict[tuple, OpCase] = {}
    for arch in archs:
        for case in arch_cases(arch, batch):
            if ops is not None and case.op not in ops:
                continue
            seen = merged.get(case.key)
            layers = case.layers if seen is None else seen.layers + case.layers
            merged[case.key] = OpCase(case.op, case.dims, layers)
    order = {op: i for i, op in enumerate(OPS)}
    return sorted(merged.values(), key=lambda c: order[c.op])
