"""PyTorch's version of the same two networks, for the step benchmark's baseline: same layers, same
shapes, same hyperparameters, float32 with TF32 off, cuDNN picking its fastest algorithms.

Built from the trainer's own layers (benchmarks.shapes, from alexnet_cuda.archs), so the baseline
cannot drift from the shapes our kernels are timed at. PyTorch's local_response_norm divides alpha
by size; the paper's alpha is passed times size so that both compute the same function.
torch.optim.SGD's momentum rule (v ← m·v + g + wd·w; w ← w − lr·v) differs from the paper's only
in where lr multiplies: the same memory traffic.
"""

from __future__ import annotations

from benchmarks.shapes import ARCHS, CLASSES, shaped_layers


def build(torch, arch: str, classes: int = CLASSES):
    """A torch.nn.Sequential of `arch` on the current CUDA device, layer for layer the trainer's."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}")
    nn = torch.nn
    modules = []
    for shaped in shaped_layers(arch, 1):
        layer = shaped.layer
        if len(shaped.in_shape) == 2 and not any(isinstance(m, nn.Flatten) for m in modules):
            modules.append(nn.Flatten())  # where the trainer's flatten step stands
        if layer.kind == "conv":
            modules.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.pad,
                                     groups=layer.groups))
        elif layer.kind == "relu":
            modules.append(nn.ReLU(inplace=False))
        elif layer.kind == "lrn":
            lrn = layer.constants
            modules.append(nn.LocalResponseNorm(lrn["size"], lrn["alpha"] * lrn["size"], lrn["beta"], lrn["k"]))
        elif layer.kind == "maxpool":
            modules.append(nn.MaxPool2d(layer.kernel, layer.stride))
        elif layer.kind == "dropout":
            modules.append(nn.Dropout(layer.p))
        elif layer.kind == "linear":
            out = classes if layer.name == "fc8" else layer.out_features
            modules.append(nn.Linear(layer.in_features, out))
    return nn.Sequential(*modules).cuda()


def training_step(torch, model, optimizer):
    """One step of plain float32 training: forward, cross-entropy, backward, SGD; the loss is read
    back to the host every step, as pytorch/examples' ImageNet script does (loss.item())."""
    functional = torch.nn.functional

    def step(images, labels):
        optimizer.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    return step
