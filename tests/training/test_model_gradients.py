"""The model's hand-chained backward, through alexnet_cuda's layer objects, against float64 central
differences of its own forward, with dropout active (its masks depend only on seed and step)."""

import numpy as np

from alexnet_cuda.archs import TINY
from alexnet_cuda.cli import main
from alexnet_cuda.gradcheck_model import model_case
from alexnet_cuda.model import Model
from kernels import gradcheck, reference


def test_model_backward_matches_central_differences():
    case, constants = model_case(seed=0)
    results = gradcheck.check(case, constants, reference, dtype=np.float64, max_entries=40)
    assert {r.input for r in results} == set(case.inputs)
    assert len(results) == 1 + 2 * 5, "x and the weight and bias of conv1, conv2, fc6, fc7, fc8"
    failures = [f"{r.input}: {r.error:.2e} > {r.threshold:g}" for r in results if not r.passed]
    assert not failures, failures


class _WrongFc7Gradient:
    """The reference face with the weight gradient of fc7 (the only 10x10 linear layer) 2% too large."""

    def __getattr__(self, name):
        return getattr(reference, name)

    @staticmethod
    def linear_backward(dy, x, w):
        dx, dw, db = reference.linear_backward(dy, x, w)
        return dx, dw * (1.02 if w.shape == (10, 10) else 1.0), db


def test_model_check_catches_a_wrong_layer_gradient():
    case, constants = model_case(seed=0)
    results = {r.input: r for r in gradcheck.check(case, constants, _WrongFc7Gradient(), dtype=np.float64, max_entries=12)}
    assert not results["fc7.w"].passed
    assert results["fc6.w"].passed and results["x"].passed


def test_gradcheck_command_includes_the_model(capsys):
    assert main(["gradcheck", "--device", "cpu", "--max-entries", "24"]) == 0
    out = capsys.readouterr().out
    assert "model: tiny arch, layer objects" in out and "all gradients match" in out


def test_dropout_masks_change_every_step_and_repeat_for_the_same_step():
    model = Model(TINY, 3, reference, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12)).astype(np.float32)
    outputs = {}
    for step in (0, 1, 0):
        model.set_step(step)
        outputs.setdefault(step, []).append(model.forward(x, training=True))
    assert np.array_equal(outputs[0][0], outputs[0][1])
    assert not np.array_equal(outputs[0][0], outputs[1][0])
    assert len({d.offset for d in model.dropouts}) == len(model.dropouts) == 2
    assert np.array_equal(model.forward(x, training=False), model.forward(x, training=False))
