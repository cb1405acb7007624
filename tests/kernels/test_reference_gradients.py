"""Every reference backward against float64 central differences, and a hand-chained tiny network."""

import numpy as np
import pytest

from kernels import gradcheck, reference

CASES = gradcheck.all_cases()


@pytest.mark.parametrize(("case", "constants"), CASES, ids=[case.name for case, _ in CASES])
def test_reference_gradient_matches_central_differences(case, constants):
    results = gradcheck.check(case, constants, reference, dtype=np.float64)
    assert {r.input for r in results} == set(case.inputs), "every input must be checked"
    failures = [f"{r.input}: relative error {r.error:.2e} > {r.threshold:.0e}" for r in results if not r.passed]
    assert not failures, f"{case.name}: " + "; ".join(failures)


class _WrongFilterGradient:
    """The reference face with a filter gradient that is off by 1%: the check must notice."""

    def __getattr__(self, name):
        return getattr(reference, name)

    @staticmethod
    def conv2d_backward(dy, x, w, stride=1, pad=0, groups=1):
        dx, dw, db = reference.conv2d_backward(dy, x, w, stride, pad, groups)
        return dx, dw * 1.01, db


def test_gradient_check_catches_a_wrong_gradient():
    case, constants = CASES[0]
    results = {r.input: r for r in gradcheck.check(case, constants, _WrongFilterGradient())}
    assert results["x"].passed and results["b"].passed
    assert not results["w"].passed
    assert results["w"].error > 5e-3


def test_float32_gradients_within_float32_threshold():
    for case, constants in CASES:
        for result in gradcheck.check(case, constants, reference, dtype=np.float32, max_entries=16):
            assert result.passed, f"{case.name} / {result.input}: {result.error:.2e}"
