"""The model's hand-chained backward, through alexnet_cuda's layer objects, against float64 central
differences of its own forward, with dropout active (its masks depend only on seed and step)."""

import numpy as np
from _train_support import TINY

from alexnet_cuda.model import Model
from kernels import reference
from kernels.testing import GRADCHECK_STEP, GRADCHECK_THRESHOLDS, relative_error


def _loss(model, x, labels):
    loss, _ = model.loss(model.forward(x, training=True), labels)
    return float(loss)


def test_model_backward_matches_central_differences():
    rng = np.random.default_rng(3)
    model = Model(TINY, 3, reference, seed=7, dtype=np.float64)
    for layer in model.layers:  # larger biases keep ReLU inputs away from the kink at 0
        if "b" in layer.params:
            layer.params["b"][:] = rng.uniform(-0.3, 0.3, layer.params["b"].shape)
    x = rng.standard_normal((4, 3, 12, 12))
    labels = np.array([0, 2, 1, 2], dtype=np.int32)
    model.set_step(5)
    _loss(model, x, labels)
    dx = model.backward()
    analytic = {"x": dx, **{f"{layer.name}.{k}": layer.grads[k] for layer in model.layers for k in layer.params}}
    assert set(analytic) == {"x"} | {key for key, _ in model.named_arrays("params")}
    threshold, reason = GRADCHECK_THRESHOLDS["float64"]
    for key, gradient in analytic.items():
        target = x if key == "x" else dict(model.named_arrays("params"))[key]
        entries = rng.choice(target.size, min(target.size, 20), replace=False)
        numeric = []
        for index in entries:
            flat = target.reshape(-1)
            original = flat[index]
            flat[index] = original + GRADCHECK_STEP
            plus = _loss(model, x, labels)
            flat[index] = original - GRADCHECK_STEP
            minus = _loss(model, x, labels)
            flat[index] = original
            numeric.append((plus - minus) / (2 * GRADCHECK_STEP))
        error = relative_error(gradient.reshape(-1)[entries], numeric)
        assert error <= threshold, f"{key}: relative error {error:.2e} > {threshold:g} ({reason})"


def test_dropout_masks_change_every_step_and_repeat_for_the_same_step():
    model = Model(TINY, 3, reference, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12)).astype(np.float32)
    outputs = {}
    for step in (0, 1, 0):
        model.set_step(step)
        outputs.setdefault(step, []).append(model.forward(x, training=True))
    assert np.array_equal(outputs[0][0], outputs[0][1])
    assert not np.array_equal(outputs[0][0], outputs[1][0])
    offsets = {d.offset for d in model.dropouts}
    assert len(offsets) == len(model.dropouts) == 2
    assert np.array_equal(model.forward(x, training=False), model.forward(x, training=False))
