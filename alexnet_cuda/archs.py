"""The four networks of `--arch`, written as plain lists of steps, and their initialisations.

alexnet2012   Krizhevsky, Sutskever and Hinton (2012) at 227x227: LRN after the ReLUs of conv1 and
              conv2, overlapping 3/2 pooling, conv2/4/5 split into two groups (the paper's two
              GPUs), dropout 0.5 after fc6 and fc7. 60,965,224 parameters with 1000 classes.
alexnet-owt   torchvision's "one weird trick" variant at 224x224: 64-192-384-256-256 filters, no
              LRN, no groups, dropout before fc6 and fc7. 61,100,840 parameters with 1000 classes.
alexnet-mini  every layer type of alexnet2012 (grouped convolutions, LRN, overlapping pooling,
              dropout, three linear layers) at 64x64, small enough to train on a CPU.
tiny          every layer type at 12x12 with a few channels (the network of `alexnet-cuda
              gradcheck`), small enough to train through the CUDA C emulator (`--device emu`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alexnet_cuda.layers import LRN, Conv2d, Dropout, Flatten, Layer, Linear, MaxPool, ReLU

OUTPUT_LAYER = "fc8"  # the classifier of every arch

# A step is (kind, name, options); the builder threads the channel counts through.


def _conv(name, filters, kernel, stride=1, pad=0, groups=1):
    return ("conv", name, dict(out_channels=filters, kernel=kernel, stride=stride, pad=pad, groups=groups))


def _after_conv(index, *, lrn=False, pool=False):
    steps = [("relu", f"relu{index}", {})]
    if lrn:
        steps.append(("lrn", f"lrn{index}", {}))
    if pool:
        steps.append(("maxpool", f"pool{index}", {}))
    return steps


@dataclass(frozen=True)
class Arch:
    name: str
    input_size: int  # the crop the network sees
    resize_size: int  # shorter side before cropping (train: random crop; eval: centre crop)
    default_classes: int
    steps: tuple  # (kind, name, options), with "classes" standing for the number of classes
    init: str  # "paper", "torchvision" or "he"; see initial_parameters
    unit_bias: tuple[str, ...] = ()  # layers whose biases start at 1 under the paper's init
    summary: str = ""


ALEXNET_2012 = Arch(
    name="alexnet2012",
    input_size=227,
    resize_size=256,
    default_classes=1000,
    steps=(
        _conv("conv1", 96, 11, stride=4), *_after_conv(1, lrn=True, pool=True),
        _conv("conv2", 256, 5, pad=2, groups=2), *_after_conv(2, lrn=True, pool=True),
        _conv("conv3", 384, 3, pad=1), *_after_conv(3),
        _conv("conv4", 384, 3, pad=1, groups=2), *_after_conv(4),
        _conv("conv5", 256, 3, pad=1, groups=2), *_after_conv(5, pool=True),
        ("flatten", "flatten", {}),
        ("linear", "fc6", dict(out_features=4096)), ("relu", "relu6", {}), ("dropout", "drop6", dict(p=0.5)),
        ("linear", "fc7", dict(out_features=4096)), ("relu", "relu7", {}), ("dropout", "drop7", dict(p=0.5)),
        ("linear", "fc8", dict(out_features="classes")),
    ),
    init="paper",
    unit_bias=("conv2", "conv4", "conv5", "fc6", "fc7"),
    summary="Krizhevsky et al. 2012 at 227x227, two-GPU groups, LRN, the paper's init",
)

ALEXNET_OWT = Arch(
    name="alexnet-owt",
    input_size=224,
    resize_size=256,
    default_classes=1000,
    steps=(
        _conv("conv1", 64, 11, stride=4, pad=2), *_after_conv(1, pool=True),
        _conv("conv2", 192, 5, pad=2), *_after_conv(2, pool=True),
        _conv("conv3", 384, 3, pad=1), *_after_conv(3),
        _conv("conv4", 256, 3, pad=1), *_after_conv(4),
        _conv("conv5", 256, 3, pad=1), *_after_conv(5, pool=True),
        ("flatten", "flatten", {}),
        ("dropout", "drop6", dict(p=0.5)), ("linear", "fc6", dict(out_features=4096)), ("relu", "relu6", {}),
        ("dropout", "drop7", dict(p=0.5)), ("linear", "fc7", dict(out_features=4096)), ("relu", "relu7", {}),
        ("linear", "fc8", dict(out_features="classes")),
    ),
    init="torchvision",
    summary="torchvision's variant (Krizhevsky 2014) at 224x224, no LRN, no groups, PyTorch's default init",
)

ALEXNET_MINI = Arch(
    name="alexnet-mini",
    input_size=64,
    resize_size=73,  # 64·256/227, the full network's crop-to-resize ratio
    default_classes=10,
    steps=(
        _conv("conv1", 48, 5, stride=2, pad=2), *_after_conv(1, lrn=True, pool=True),  # 32 -> 15
        _conv("conv2", 96, 5, pad=2, groups=2), *_after_conv(2, lrn=True, pool=True),  # 15 -> 7
        _conv("conv3", 128, 3, pad=1), *_after_conv(3),
        _conv("conv4", 128, 3, pad=1, groups=2), *_after_conv(4),
        _conv("conv5", 96, 3, pad=1, groups=2), *_after_conv(5, pool=True),  # 7 -> 3
        ("flatten", "flatten", {}),
        # Dropout 0.25, not the paper's 0.5: a run of a few hundred CPU steps cannot afford the slower
        # start. On an earlier version of the synthetic shapes (batch 32, lr 0.01) the training loss after 450 steps was
        # 1.23 with 0.25, 1.77 with 0.5 and 0.83 without dropout.
        ("linear", "fc6", dict(out_features=512)), ("relu", "relu6", {}), ("dropout", "drop6", dict(p=0.25)),
        ("linear", "fc7", dict(out_features=512)), ("relu", "relu7", {}), ("dropout", "drop7", dict(p=0.25)),
        ("linear", "fc8", dict(out_features="classes")),
    ),
    # The paper's N(0, 0.01) weights with unit biases train a deep net slowly: the signal shrinks
    # by about 0.01·sqrt(fan-in) per layer, and Caffe's notes report a flat loss from the unit
    # biases. A network meant to learn in a few CPU minutes starts instead from He et al. (2015):
    # weights N(0, 2/fan-in), which keeps the activations' scale through the ReLUs, biases 0;
    # the output layer keeps the paper's N(0, 0.01) so that the first predictions are near uniform
    # (loss ln K) instead of confidently wrong.
    init="he",
    summary="every layer type of alexnet2012 at 64x64: grouped conv, LRN, overlapping pool, dropout, 3 linear",
)

# A network small enough to difference every weight, with every layer type: `alexnet-cuda gradcheck`
# and the tests of the training loop use it, and as `--arch tiny` it trains on the synthetic shapes
# (scaled to 12x12) fast enough to watch the CUDA C kernels learn through the CPU emulator.
TINY = Arch(
    name="tiny",
    input_size=12,
    resize_size=12,
    default_classes=3,
    steps=(
        _conv("conv1", 4, 3, pad=1), ("relu", "relu1", {}),
        ("lrn", "lrn1", dict(size=3, alpha=0.05, beta=0.75, k=1.0)),  # large alpha: the cross-channel term matters
        ("maxpool", "pool1", {}),  # 12 -> 5
        _conv("conv2", 6, 3, pad=1, groups=2), *_after_conv(2, pool=True),  # 5 -> 2
        ("flatten", "flatten", {}),
        ("linear", "fc6", dict(out_features=10)), ("relu", "relu6", {}), ("dropout", "drop6", dict(p=0.25)),
        ("linear", "fc7", dict(out_features=10)), ("relu", "relu7", {}), ("dropout", "drop7", dict(p=0.25)),
        ("linear", "fc8", dict(out_features="classes")),
    ),
    init="he",
    summary="every layer type at 12x12 with a few channels, for gradient checks and tests",
)

ARCHS = {arch.name: arch for arch in (ALEXNET_2012, ALEXNET_OWT, ALEXNET_MINI, TINY)}
DEFAULT_ARCH = ALEXNET_MINI.name


class ArchError(ValueError):
    """An unknown architecture name."""


def get_arch(name: str) -> Arch:
    try:
        return ARCHS[name]
    except KeyError:
        raise ArchError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHS)}") from None


def build_layers(arch: Arch, face, classes: int) -> list[Layer]:
    """The layers of `arch` for `classes` outputs, without parameters (see initial_parameters)."""
    if classes < 1:
        raise ValueError(f"classes: expected at least 1, got {classes}")
    layers: list[Layer] = []
    shape: tuple[int, ...] = (1, 3, arch.input_size, arch.input_size)
    for kind, name, options in arch.steps:
        options = {key: (classes if value == "classes" else value) for key, value in options.items()}
        if kind == "conv":
            layer = Conv2d(name, face, in_channels=shape[1], **options)
        elif kind == "linear":
            layer = Linear(name, face, in_features=shape[1], **options)
        elif kind == "relu":
            layer = ReLU(name, face)
        elif kind == "lrn":
            layer = LRN(name, face, **options)
        elif kind == "maxpool":
            layer = MaxPool(name, face, **options)
        elif kind == "dropout":
            layer = Dropout(name, face, **options)
        elif kind == "flatten":
            layer = Flatten(name, face)
        else:
            raise ValueError(f"{arch.name}: unknown step kind {kind!r}")
        shape = layer.output_shape(shape)
        layers.append(layer)
    return layers


def initial_parameters(arch: Arch, layer: Layer, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Host arrays for the parameters of `layer` under the initialisation `arch` names."""
    shapes = layer.parameter_shapes()
    if not shapes:
        return {}
    w_shape, b_shape = shapes["w"], shapes["b"]
    fan_in = int(np.prod(w_shape[1:]))
    if arch.init == "paper":
        w = rng.normal(0.0, 0.01, w_shape)
        b = np.full(b_shape, 1.0 if layer.name in arch.unit_bias else 0.0)
    elif arch.init == "torchvision":
        # PyTorch's default for Conv2d and Linear: kaiming_uniform(a=√5) gives bound 1/√fan_in,
        # and the bias is uniform in the same bound.
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, w_shape)
        b = rng.uniform(-bound, bound, b_shape)
    elif arch.init == "he":
        std = 0.01 if layer.name == OUTPUT_LAYER else np.sqrt(2.0 / fan_in)
        w = rng.normal(0.0, std, w_shape)
        b = np.zeros(b_shape)
    else:
        raise ValueError(f"{arch.name}: unknown init {arch.init!r}")
    return {"w": w.astype(dtype), "b": b.astype(dtype)}
