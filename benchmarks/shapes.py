"""AlexNet's layers, the tensor shapes they see at a batch size, and the op cases they give.

The two full networks the benchmarks time:
- alexnet2012: the paper's network at 227x227 (conv1 96x11x11/4; LRN after the ReLUs of conv1 and
  conv2; overlapping 3/2 max pools after both LRNs and after conv5; groups 2 in conv2, conv4 and
  conv5; dropout 0.5 after fc6 and fc7). 60,965,224 parameters, 0.724 GMAC an image.
- alexnet-owt: torchvision's "one weird trick" variant at 224x224 (64-192-384-256-256, no LRN, no
  groups, dropout before fc6 and fc7). 61,100,840 parameters, 0.714 GMAC an image.
tests/test_bench_shapes.py holds these numbers against this table, and against the trainer's model
where it is importable, so the benchmarks time the shapes that training runs.

An op case is one contract call at one shape: (op, dims, layers). Layers of either network that
make the same call (fc7 and fc8 appear in both) share one case, so each shape is timed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernels.contract import conv_output_size, pool_output_size

LRN_PARAMS = (("size", 5), ("alpha", 1e-4), ("beta", 0.75), ("k", 2.0))
DROPOUT_P = 0.5
POOL_KERNEL, POOL_STRIDE = 3, 2
SGD_PARAMS = (("lr", 0.01), ("momentum", 0.9), ("weight_decay", 5e-4))
DEFAULT_BATCH = 128


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # conv, relu, lrn, pool, dropout, linear
    out: int = 0  # filters of a conv, features of a linear layer
    kernel: int = 0
    stride: int = 1
    pad: int = 0
    groups: int = 1


def _conv(name, out, kernel, stride=1, pad=0, groups=1):
    return Layer(name, "conv", out, kernel, stride, pad, groups)


def _block(number, *layers):
    return tuple(Layer(f"{kind}{number}", kind) if isinstance(kind, str) else kind for kind in layers)


@dataclass(frozen=True)
class Arch:
    name: str
    input_size: int
    classes: int
    layers: tuple[Layer, ...]


ARCHS = {
    "alexnet2012": Arch("alexnet2012", 227, 1000, (
        _conv("conv1", 96, 11, stride=4), *_block(1, "relu", "lrn", "pool"),
        _conv("conv2", 256, 5, pad=2, groups=2), *_block(2, "relu", "lrn", "pool"),
        _conv("conv3", 384, 3, pad=1), *_block(3, "relu"),
        _conv("conv4", 384, 3, pad=1, groups=2), *_block(4, "relu"),
        _conv("conv5", 256, 3, pad=1, groups=2), *_block(5, "relu", "pool"),
        Layer("fc6", "linear", 4096), Layer("relu6", "relu"), Layer("drop6", "dropout"),
        Layer("fc7", "linear", 4096), Layer("relu7", "relu"), Layer("drop7", "dropout"),
        Layer("fc8", "linear", 1000),
    )),
    "alexnet-owt": Arch("alexnet-owt", 224, 1000, (
        _conv("conv1", 64, 11, stride=4, pad=2), *_block(1, "relu", "pool"),
        _conv("conv2", 192, 5, pad=2), *_block(2, "relu", "pool"),
        _conv("conv3", 384, 3, pad=1), *_block(3, "relu"),
        _conv("conv4", 256, 3, pad=1), *_block(4, "relu"),
        _conv("conv5", 256, 3, pad=1), *_block(5, "relu", "pool"),
        Layer("drop6", "dropout"), Layer("fc6", "linear", 4096), Layer("relu6", "relu"),
        Layer("drop7", "dropout"), Layer("fc7", "linear", 4096), Layer("relu7", "relu"),
        Layer("fc8", "linear", 1000),
    )),
}


@dataclass(frozen=True)
class Shaped:
    """A layer with the shapes it maps between at some batch size."""

    layer: Layer
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        if self.layer.kind == "conv":
            c = self.in_shape[1]
            return (self.layer.out, c // self.layer.groups, self.layer.kernel, self.layer.kernel)
        if self.layer.kind == "linear":
            return (self.layer.out, self.in_shape[1])
        return None

    @property
    def parameters(self) -> int:
        shape = self.weight_shape
        if shape is None:
            return 0
        weights = 1
        for d in shape:
            weights *= d
        return weights + self.layer.out

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward pass (for the whole batch)."""
        shape = self.weight_shape
        if shape is None:
            return 0
        per_output = 1
        for d in shape[1:]:
            per_output *= d
        outputs = 1
        for d in self.out_shape:
            outputs *= d
        return outputs * per_output


def shaped_layers(arch: str, batch: int = DEFAULT_BATCH) -> list[Shaped]:
    """Every layer of `arch` with its input and output shapes at `batch` images."""
    spec = ARCHS[arch]
    shape: tuple[int, ...] = (batch, 3, spec.input_size, spec.input_size)
    shaped = []
    for layer in spec.layers:
        if layer.kind == "conv":
            n, _, h, w = shape
            out = (n, layer.out, conv_output_size(h, layer.kernel, layer.stride, layer.pad),
                   conv_output_size(w, layer.kernel, layer.stride, layer.pad))
        elif layer.kind == "pool":
            n, c, h, w = shape
            out = (n, c, pool_output_size(h, POOL_KERNEL, POOL_STRIDE), pool_output_size(w, POOL_KERNEL, POOL_STRIDE))
        elif layer.kind == "linear":
            if len(shape) == 4:  # the first linear layer sees the flattened feature maps
                shape = (shape[0], shape[1] * shape[2] * shape[3])
            out = (shape[0], layer.out)
        else:
            if layer.kind == "dropout" and len(shape) == 4:
                shape = (shape[0], shape[1] * shape[2] * shape[3])
            out = shape
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
        dims = (("x", x), *LRN_PARAMS)
        ops = ("lrn_forward", "lrn_backward")
    elif layer.kind == "pool":
        dims = (("x", x), ("kernel", POOL_KERNEL), ("stride", POOL_STRIDE))
        ops = ("maxpool_forward", "maxpool_backward")
    elif layer.kind == "dropout":
        dims = (("x", x), ("p", DROPOUT_P))
        ops = ("dropout_forward", "dropout_backward")
    else:
        dims = (("x", x),)
        ops = (f"{layer.kind}_forward", f"{layer.kind}_backward")
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
    logits = (("x", (batch, ARCHS[arch].classes)),)
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
