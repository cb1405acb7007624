"""A gradient check of the model itself: alexnet_cuda's layer objects and Model.backward, on the
tiny network, against central differences of the same Model's forward with the NumPy reference.

It complements kernels.gradcheck's hand-chained network: that one checks the ops, this one checks
the chain the trainer really runs (layer order, saved activations, flatten, dropout offsets).
"""

from __future__ import annotations

import numpy as np

from alexnet_cuda.archs import TINY
from alexnet_cuda.model import Model
from kernels import reference
from kernels.gradcheck import Case
from kernels.testing import to_numpy

STEP = 5  # any step: it fixes the dropout masks for the loss and every difference of it
CLASSES = 3


def _model(face, arrays, seed):
    model = Model(TINY, CLASSES, face, seed=seed, dtype=arrays["x"].dtype)
    model.load_arrays("params", {key: to_numpy(value) for key, value in arrays.items() if "." in key})
    model.set_step(STEP)
    return model


def model_case(seed: int = 0) -> tuple[Case, dict]:
    rng = np.random.default_rng(seed)
    template = Model(TINY, CLASSES, reference, seed=seed, dtype=np.float64)
    inputs = {"x": rng.standard_normal((2, 3, TINY.input_size, TINY.input_size))}
    for key, value in template.named_arrays("params"):
        # Biases away from 0 keep the ReLU inputs off the kink, where differences are meaningless.
        inputs[key] = value.copy() if key.endswith(".w") else rng.uniform(-0.3, 0.3, value.shape)
    constants = {"labels": np.array([0, 2], dtype=np.int32)}

    def loss(face, arrays):
        model = _model(face, arrays, seed)
        value, _ = model.loss(model.forward(arrays["x"], training=True), arrays["labels"])
        return float(to_numpy(value))

    def gradients(face, arrays):
        model = _model(face, arrays, seed)
        model.loss(model.forward(arrays["x"], training=True), arrays["labels"])
        dx = model.backward()
        return {"x": dx, **{f"{layer.name}.{name}": layer.grads[name] for layer in model.layers
                            for name in layer.params}}

    return Case("model: tiny arch, layer objects", inputs, loss, gradients), constants
