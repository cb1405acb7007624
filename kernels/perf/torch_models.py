"""PyTorch's version of the same two networks, for the step benchmark's baseline: same layers, same
shapes, same hyperparameters, float32 with TF32 off, cuDNN picking its fastest algorithms.

Built from kernels.perf.shapes.ARCHS, so the baseline cannot drift from the shapes our kernels are
timed at. PyTorch's local_response_norm divides alpha by size; the paper's alpha is passed times
size so that both compute the same function. torch.optim.SGD's momentum rule (v ← m·v + g + wd·w;
w ← w − lr·v) differs from the paper's only in where lr multiplies: the same memory traffic.
"""

from __future__ import annotations

from kernels.perf.shapes import ARCHS, LRN_PARAMS, POOL_KERNEL, POOL_STRIDE, shaped_layers


def build(torch, arch: str, classes: int = 1000):
    """A torch.nn.Sequential of `arch` on the current CUDA device."""
    nn = torch.nn
    lrn = dict(LRN_PARAMS)
    modules = []
    for shaped in shaped_layers(arch, 1):
        layer = shaped.layer
        if layer.kind == "conv":
            modules.append(nn.Conv2d(shaped.in_shape[1], layer.out, layer.kernel, layer.stride, layer.pad,
                                     groups=layer.groups))
        elif layer.kind == "relu":
            modules.append(nn.ReLU(inplace=False))
        elif layer.kind == "lrn":
            modules.append(nn.LocalResponseNorm(lrn["size"], lrn["alpha"] * lrn["size"], lrn["beta"], lrn["k"]))
        elif layer.kind == "pool":
            modules.append(nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE))
        elif layer.kind == "dropout":
            modules.append(nn.Dropout(0.5))
        elif layer.kind == "linear":
            if not any(isinstance(m, nn.Flatten) for m in modules):
                modules.append(nn.Flatten())
            out = classes if layer.name == "fc8" else layer.out
            modules.append(nn.Linear(shaped.in_shape[1], out))
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}")
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
