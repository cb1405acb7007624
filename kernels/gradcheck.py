"""Gradient checks: every backward of a face against central differences of the reference forward.

A case is a scalar loss of some float64 inputs and the face's analytic gradient of that loss. For a
single op the loss is Σ output·R with a fixed random R, so that every output element carries a
distinct weight; for the tiny network it is the softmax cross-entropy itself, with the backward
chained by hand through every layer type. Differences are taken in float64 with the reference
face, so a float32 face is held against an exact-as-possible oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kernels import reference
from kernels.testing import GRADCHECK_STEP, GRADCHECK_THRESHOLDS, relative_error, to_numpy

LRN_STRONG = dict(size=3, alpha=0.1, beta=0.75, k=1.5)  # large alpha so the cross-channel term matters
DROPOUT = dict(p=0.4, seed=20120101, offset=7)


@dataclass
class Case:
    name: str
    inputs: dict[str, np.ndarray]  # float64; the gradient is checked with respect to each of these
    loss: Callable  # (face, arrays) -> float, arrays in the face's own kind and dtype
    gradients: Callable  # (face, arrays) -> {input name: gradient array}


@dataclass
class Result:
    case: str
    input: str
    entries: int
    error: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.error <= self.threshold


def _projected_case(name, inputs, forward, backward, rng, constants=None):
    """A case for one op: loss = Σ forward(...)·R; backward(face, arrays, dout) returns the gradients."""
    constants = constants or {}
    reference_arrays = {**inputs, **constants}
    projection = rng.standard_normal(np.shape(forward(reference, reference_arrays)))

    def loss(face, arrays):
        return float((to_numpy(forward(face, arrays)).astype(np.float64) * projection).sum())

    def gradients(face, arrays):
        dtype = next(iter(arrays.values())).dtype
        return backward(face, arrays, face.to_device(np.asarray(projection, dtype=dtype)))

    return Case(name, inputs, loss, gradients), constants


def _away_from_zero(rng, shape, margin=0.1):
    values = rng.standard_normal(shape)
    return np.sign(values) * (margin + np.abs(values))


def _distinct(rng, shape, spacing=0.01):
    """Values at least `spacing` apart, so no max-pool window holds a tie within a difference step."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * spacing


def op_cases(seed: int = 0) -> list[tuple[Case, dict]]:
    """Every op of the contract with a gradient, at tiny shapes; returns (case, constants) pairs.

    Constants (labels) are inputs that are not differentiated; they travel beside the case.
    """
    rng = np.random.default_rng(seed)
    cases = []

    def conv(name, x_shape, w_shape, stride, pad, groups):
        inputs = {
            "x": rng.standard_normal(x_shape),
            "w": rng.standard_normal(w_shape) * 0.3,
            "b": rng.standard_normal(w_shape[0]),
        }
        cases.append(_projected_case(
            name, inputs,
            lambda f, a: f.conv2d_forward(a["x"], a["w"], a["b"], stride, pad, groups),
            lambda f, a, dy: dict(zip("xwb", f.conv2d_backward(dy, a["x"], a["w"], stride, pad, groups), strict=True)),
            rng,
        ))

    conv("conv2d", (2, 3, 6, 6), (4, 3, 3, 3), 1, 0, 1)
    conv("conv2d stride 2 pad 1 groups 2", (2, 4, 7, 7), (6, 2, 3, 3), 2, 1, 2)
    conv("conv2d stride 4 pad 2 groups 3", (1, 3, 11, 11), (6, 1, 5, 5), 4, 2, 3)

    cases.append(_projected_case(
        "linear",
        {"x": rng.standard_normal((3, 5)), "w": rng.standard_normal((4, 5)), "b": rng.standard_normal(4)},
        lambda f, a: f.linear_forward(a["x"], a["w"], a["b"]),
        lambda f, a, dy: dict(zip("xwb", f.linear_backward(dy, a["x"], a["w"]), strict=True)),
        rng,
    ))
    cases.append(_projected_case(
        "relu",
        {"x": _away_from_zero(rng, (2, 3, 4, 4))},
        lambda f, a: f.relu_forward(a["x"]),
        lambda f, a, dy: {"x": f.relu_backward(dy, f.relu_forward(a["x"]))},
        rng,
    ))
    for label, params in (("lrn size 3 alpha 0.1", LRN_STRONG), ("lrn paper constants", {})):
        def lrn_grads(f, a, dy, params=params):
            y, scale = f.lrn_forward(a["x"], **params)
            return {"x": f.lrn_backward(dy, a["x"], y, scale, **params)}

        cases.append(_projected_case(
            label,
            {"x": rng.standard_normal((2, 7, 3, 3)) * (1.0 if params else 30.0)},
            lambda f, a, params=params: f.lrn_forward(a["x"], **params)[0],
            lrn_grads,
            rng,
        ))

    def pool_grads(f, a, dy):
        _, argmax = f.maxpool_forward(a["x"], 3, 2)
        return {"x": f.maxpool_backward(dy, argmax, a["x"].shape, 3, 2)}

    cases.append(_projected_case(
        "maxpool 3/2", {"x": _distinct(rng, (2, 2, 7, 7))},
        lambda f, a: f.maxpool_forward(a["x"], 3, 2)[0], pool_grads, rng,
    ))

    def dropout_grads(f, a, dy):
        _, mask = f.dropout_forward(a["x"], **DROPOUT)
        return {"x": f.dropout_backward(dy, mask, DROPOUT["p"])}

    cases.append(_projected_case(
        "dropout p=0.4", {"x": rng.standard_normal((2, 3, 5, 5))},
        lambda f, a: f.dropout_forward(a["x"], **DROPOUT)[0], dropout_grads, rng,
    ))

    labels = np.array([0, 3, 6, 2, 3], dtype=np.int32)

    def xent_grads(f, a, dloss):
        _, probs = f.softmax_xent_forward(a["logits"], a["labels"])
        return {"logits": f.softmax_xent_backward(probs, a["labels"]) * float(to_numpy(dloss))}

    cases.append(_projected_case(
        "softmax cross-entropy", {"logits": rng.standard_normal((5, 7)) * 3},
        lambda f, a: f.softmax_xent_forward(a["logits"], a["labels"])[0], xent_grads, rng,
        constants={"labels": labels},
    ))
    return cases


def tiny_network_case(seed: int = 0) -> tuple[Case, dict]:
    """Grouped conv, ReLU, LRN, max pool, linear, dropout and softmax cross-entropy, chained by hand."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    inputs = {
        "x": rng.standard_normal((2, 3, 13, 13)),
        "conv1.w": he((6, 3, 3, 3), 27), "conv1.b": rng.standard_normal(6) * 0.1,
        "conv2.w": he((8, 3, 3, 3), 27), "conv2.b": rng.standard_normal(8) * 0.1,
        "fc1.w": he((16, 32), 32), "fc1.b": rng.standard_normal(16) * 0.1,
        "fc2.w": he((5, 16), 16), "fc2.b": rng.standard_normal(5) * 0.1,
    }
    constants = {"labels": np.array([1, 3], dtype=np.int32)}
    lrn = dict(size=3, alpha=0.05, beta=0.75, k=1.0)

    def run(face, a, want_gradients):
        x, labels = a["x"], a["labels"]
        h1 = face.conv2d_forward(x, a["conv1.w"], a["conv1.b"], 1, 1, 1)
        r1 = face.relu_forward(h1)
        n1, scale1 = face.lrn_forward(r1, **lrn)
        p1, argmax1 = face.maxpool_forward(n1, 3, 2)
        h2 = face.conv2d_forward(p1, a["conv2.w"], a["conv2.b"], 1, 1, 2)
        r2 = face.relu_forward(h2)
        p2, argmax2 = face.maxpool_forward(r2, 3, 2)
        flat = p2.reshape(p2.shape[0], -1)
        h3 = face.linear_forward(flat, a["fc1.w"], a["fc1.b"])
        r3 = face.relu_forward(h3)
        d3, mask = face.dropout_forward(r3, **DROPOUT)
        logits = face.linear_forward(d3, a["fc2.w"], a["fc2.b"])
        loss, probs = face.softmax_xent_forward(logits, labels)
        if not want_gradients:
            return float(to_numpy(loss))
        g = {}
        dlogits = face.softmax_xent_backward(probs, labels)
        dd3, g["fc2.w"], g["fc2.b"] = face.linear_backward(dlogits, d3, a["fc2.w"])
        dh3 = face.relu_backward(face.dropout_backward(dd3, mask, DROPOUT["p"]), r3)
        dflat, g["fc1.w"], g["fc1.b"] = face.linear_backward(dh3, flat, a["fc1.w"])
        dh2 = face.relu_backward(face.maxpool_backward(dflat.reshape(p2.shape), argmax2, r2.shape, 3, 2), r2)
        dp1, g["conv2.w"], g["conv2.b"] = face.conv2d_backward(dh2, p1, a["conv2.w"], 1, 1, 2)
        dr1 = face.lrn_backward(face.maxpool_backward(dp1, argmax1, n1.shape, 3, 2), r1, n1, scale1, **lrn)
        g["x"], g["conv1.w"], g["conv1.b"] = face.conv2d_backward(face.relu_backward(dr1, r1), x, a["conv1.w"], 1, 1, 1)
        return g

    case = Case(
        "tiny network", inputs,
        lambda face, a: run(face, a, False),
        lambda face, a: run(face, a, True),
    )
    return case, constants


def check(case: Case, constants: dict, face, dtype=np.float64, max_entries: int | None = None, seed: int = 0):
    """Check every input of `case` on `face` in `dtype`; returns one Result per input.

    With max_entries, only that many randomly chosen entries per input are differenced.
    """
    rng = np.random.default_rng(seed)
    threshold = GRADCHECK_THRESHOLDS["float64" if np.dtype(dtype) == np.float64 else "float32"][0]
    on_face = {name: face.to_device(np.asarray(v, dtype=dtype)) for name, v in case.inputs.items()}
    on_face.update({name: face.to_device(v) for name, v in constants.items()})
    analytic = {name: to_numpy(g).astype(np.float64) for name, g in case.gradients(face, on_face).items()}
    results = []
    for name, value in case.inputs.items():
        entries = np.arange(value.size)
        if max_entries is not None and value.size > max_entries:
            entries = rng.choice(value.size, max_entries, replace=False)
        numeric = np.array([_central_difference(case, constants, name, int(i)) for i in entries])
        error = relative_error(analytic[name].reshape(-1)[entries], numeric)
        results.append(Result(case.name, name, len(entries), error, threshold))
    return results


def _central_difference(case, constants, name, index, step=GRADCHECK_STEP):
    arrays = {k: v.copy() for k, v in case.inputs.items()}
    arrays.update(constants)
    flat = arrays[name].reshape(-1)
    original = flat[index]
    flat[index] = original + step
    plus = case.loss(reference, arrays)
    flat[index] = original - step
    minus = case.loss(reference, arrays)
    return (plus - minus) / (2 * step)


def all_cases(seed: int = 0) -> list[tuple[Case, dict]]:
    return [*op_cases(seed), tiny_network_case(seed)]
