"""A network of layers with backprop written out: forward in order, backward in reverse, then SGD.

Parameters, their gradients and the momentum buffers live on the device as arrays of the face's
kind; only the loss and the count of correct predictions come back to the host each step.

    model = Model(get_arch("alexnet-mini"), classes=10, face=reference, seed=0)
    model.set_step(step)                          # picks this step's dropout masks
    logits = model.forward(images, training=True)
    loss, probs = model.loss(logits, labels)
    model.backward()
    model.sgd_step(lr, momentum, weight_decay)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alexnet_cuda.archs import Arch, build_layers, initial_parameters
from alexnet_cuda.layers import Dropout, Layer, SoftmaxCrossEntropy, parameter_count, zeros_like_params

# Independent random streams drawn from the run's seed (numpy.random.SeedSequence spawn keys).
INIT_STREAM = 0
DROPOUT_STREAM = 1
# A data-parallel rank's dropout counters start at rank << RANK_SHIFT (the top 16 bits of the 64-bit
# Philox counter word pair), so ranks draw different masks and rank 0 draws exactly the masks of a
# single process. Step · dropout layers stays below 2^48 for any run that ends this century.
RANK_SHIFT = 48
MAX_RANKS = 1 << 16


def dropout_seed(seed: int) -> int:
    """The 64-bit Philox key of every dropout layer of a run with this seed."""
    return int(np.random.SeedSequence([seed, DROPOUT_STREAM]).generate_state(1, dtype=np.uint64)[0])


@dataclass(frozen=True)
class SummaryRow:
    name: str
    description: str
    output_shape: tuple[int, ...]  # for one image, without the batch axis
    parameters: int
    macs: int  # multiply-adds of one forward for one image


class Model:
    def __init__(self, arch: Arch, classes: int, face, seed: int = 0, dtype=np.float32, rank: int = 0):
        """rank: this process's rank in a data-parallel run (alexnet_cuda.distributed); it joins the
        dropout counters, so the masks are a function of (seed, step, rank)."""
        if not 0 <= rank < MAX_RANKS:
            raise ValueError(f"rank {rank}: dropout counters hold ranks 0 to {MAX_RANKS - 1}")
        self.arch, self.classes, self.face, self.seed, self.rank = arch, classes, face, seed, rank
        self.dtype = np.dtype(dtype)
        self.layers: list[Layer] = build_layers(arch, face, classes)
        self.loss_layer = SoftmaxCrossEntropy(face)
        rng = np.random.default_rng(np.random.SeedSequence([seed, INIT_STREAM]))
        for layer in self.layers:
            layer.params = {k: face.to_device(v) for k, v in initial_parameters(arch, layer, rng, dtype).items()}
        self.velocities = {layer.name: zeros_like_params(layer) for layer in self.layers}
        self.dropouts = [layer for layer in self.layers if isinstance(layer, Dropout)]
        for dropout in self.dropouts:
            dropout.seed = dropout_seed(seed)

    # --- one training step -------------------------------------------------------------------

    def set_step(self, step: int) -> None:
        """Give every dropout layer a counter offset no other (step, layer, rank) uses."""
        for index, dropout in enumerate(self.dropouts):
            dropout.offset = (self.rank << RANK_SHIFT) + step * len(self.dropouts) + index

    def forward(self, x, training: bool):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def loss(self, logits, labels):
        """Returns (loss as a 0-d face array, probs)."""
        return self.loss_layer.forward(logits, labels)

    def backward(self):
        """Gradients of the last loss with respect to every parameter, layer by layer in reverse."""
        grad = self.loss_layer.backward()
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
            layer.forget()
        self.loss_layer.forget()
        return grad

    def sgd_step(self, lr: float, momentum: float, weight_decay: float) -> None:
        for layer in self.layers:
            for name, weight in layer.params.items():
                self.face.sgd_update(weight, layer.grads[name], self.velocities[layer.name][name],
                                     lr, momentum, weight_decay)

    # --- state -----------------------------------------------------------------------------------

    def named_arrays(self, which: str):
        """(\"layer.param\", face array) for which = "params" or "velocities", in layer order."""
        for layer in self.layers:
            source = layer.params if which == "params" else self.velocities[layer.name]
            for name, value in source.items():
                yield f"{layer.name}.{name}", value

    def host_arrays(self, which: str) -> dict[str, np.ndarray]:
        return {key: np.asarray(self.face.to_host(value)) for key, value in self.named_arrays(which)}

    def load_arrays(self, which: str, arrays: dict[str, np.ndarray]) -> None:
        """Replace parameters or momentum buffers from host arrays; shapes must match exactly."""
        expected = {key: tuple(value.shape) for key, value in self.named_arrays(which)}
        missing = sorted(set(expected) - set(arrays))
        unexpected = sorted(set(arrays) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{which}: missing {missing or 'none'}, unexpected {unexpected or 'none'}")
        for key, shape in expected.items():
            if tuple(arrays[key].shape) != shape:
                raise ValueError(f"{which} {key}: expected shape {shape}, got {tuple(arrays[key].shape)}")
        for layer in self.layers:
            target = layer.params if which == "params" else self.velocities[layer.name]
            for name in target:
                host = np.ascontiguousarray(arrays[f"{layer.name}.{name}"], dtype=self.dtype)
                target[name] = self.face.to_device(host)

    def parameter_count(self) -> int:
        return sum(parameter_count(layer) for layer in self.layers)

    def summary(self) -> list[SummaryRow]:
        return summarize(self.layers, self.arch.input_size)


def summarize(layers: list[Layer], input_size: int) -> list[SummaryRow]:
    rows = []
    shape: tuple[int, ...] = (1, 3, input_size, input_size)
    for layer in layers:
        macs = layer.macs(shape)
        shape = layer.output_shape(shape)
        rows.append(SummaryRow(layer.name, layer.describe(), shape[1:], parameter_count(layer), macs))
    return rows


def total_parameters(rows: list[SummaryRow]) -> int:
    return sum(row.parameters for row in rows)


def total_macs(rows: list[SummaryRow]) -> int:
    return sum(row.macs for row in rows)

