"""Inputs for an op case, how to call a face's function on them, and how each output is validated.

Inputs are drawn at random on the host (never zeros: zeros hide unwritten outputs and can run
faster than real data), scaled so that every output is O(1) and the tolerance table applies: a
weight with K inputs per output is drawn N(0, 1/K). Inputs a backward op takes from its forward
(the ReLU output, LRN's scale, max-pool's argmax, dropout's mask, softmax's probabilities) come
from the NumPy reference forward on the same draw, so they are what training would pass.

`invoke(function, case, args)` calls either a face's contract function or one of its numbered
version launchers (the same signature) and returns the outputs as a tuple; sgd_update, which
works in place, returns (w, velocity) after the update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.shapes import OpCase
from kernels.contract import conv_output_size


@dataclass(frozen=True)
class Output:
    name: str
    tolerance: str  # a row of kernels.testing.TOLERANCES


OUTPUTS = {
    "conv2d_forward": (Output("y", "float32_large_reduction"),),
    "conv2d_backward": (Output("dx", "float32_large_reduction"), Output("dw", "float32_large_reduction"),
                        Output("db", "float32_large_reduction")),
    "linear_forward": (Output("y", "float32_large_reduction"),),
    "linear_backward": (Output("dx", "float32_large_reduction"), Output("dw", "float32_large_reduction"),
                        Output("db", "float32_large_reduction")),
    "relu_forward": (Output("y", "exact"),),
    "relu_backward": (Output("dx", "exact"),),
    "lrn_forward": (Output("y", "float32_elementwise"), Output("scale", "float32_elementwise")),
    "lrn_backward": (Output("dx", "float32_elementwise"),),
    "maxpool_forward": (Output("y", "exact"), Output("argmax", "exact")),
    "maxpool_backward": (Output("dx", "float32_elementwise"),),
    "dropout_forward": (Output("y", "exact"), Output("mask", "exact")),
    "dropout_backward": (Output("dx", "exact"),),
    "softmax_xent_forward": (Output("loss", "float32_elementwise"), Output("probs", "float32_elementwise")),
    "softmax_xent_backward": (Output("dlogits", "float32_elementwise"),),
    "sgd_update": (Output("w", "float32_elementwise"), Output("velocity", "float32_elementwise")),
}

# Which arguments of each op are arrays, in call order; the rest of the call comes from the case.
ARRAY_ARGS = {
    "conv2d_forward": ("x", "w", "b"),
    "conv2d_backward": ("dy", "x", "w"),
    "linear_forward": ("x", "w", "b"),
    "linear_backward": ("dy", "x", "w"),
    "relu_forward": ("x",),
    "relu_backward": ("dy", "y"),
    "lrn_forward": ("x",),
    "lrn_backward": ("dy", "x", "y", "scale"),
    "maxpool_forward": ("x",),
    "maxpool_backward": ("dy", "argmax"),
    "dropout_forward": ("x",),
    "dropout_backward": ("dy", "mask"),
    "softmax_xent_forward": ("logits", "labels"),
    "softmax_xent_backward": ("probs", "labels"),
    "sgd_update": ("w", "grad", "velocity"),
}

IN_PLACE = {"sgd_update": ("w", "velocity")}


def _normal(rng, shape, std=1.0):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)


def _fan_in(w_shape) -> int:
    fan_in = 1
    for d in w_shape[1:]:
        fan_in *= d
    return fan_in


def make_inputs(case: OpCase, seed: int) -> dict[str, np.ndarray]:
    """Host (NumPy, float32) arrays for every array argument of `case`, drawn from `seed`."""
    from kernels import reference

    rng = np.random.default_rng(seed)
    op = case.op
    x_shape = case["x"]
    if op in ("conv2d_forward", "linear_forward"):
        w_shape = case["w"]
        return {"x": _normal(rng, x_shape), "w": _normal(rng, w_shape, _fan_in(w_shape) ** -0.5),
                "b": _normal(rng, (w_shape[0],))}
    if op in ("conv2d_backward", "linear_backward"):
        w_shape = case["w"]
        x = _normal(rng, x_shape)
        w = _normal(rng, w_shape, _fan_in(w_shape) ** -0.5)
        return {"dy": _normal(rng, output_shape(case)), "x": x, "w": w}
    if op in ("relu_forward", "lrn_forward", "maxpool_forward"):
        return {"x": _normal(rng, x_shape)}
    if op == "dropout_forward":
        dropout_seed, offset = dropout_seeds(seed)
        return {"x": _normal(rng, x_shape), "seed": dropout_seed, "offset": offset}
    if op == "relu_backward":
        return {"dy": _normal(rng, x_shape), "y": reference.relu_forward(_normal(rng, x_shape))}
    if op == "lrn_backward":
        x = _normal(rng, x_shape)
        y, scale = reference.lrn_forward(x, *lrn_params(case))
        return {"dy": _normal(rng, x_shape), "x": x, "y": y, "scale": scale}
    if op == "maxpool_backward":
        _, argmax = reference.maxpool_forward(_normal(rng, x_shape), case["kernel"], case["stride"])
        return {"dy": _normal(rng, argmax.shape), "argmax": argmax}
    if op == "dropout_backward":
        return {"dy": _normal(rng, x_shape), "mask": reference.dropout_mask(x_shape, case["p"], *dropout_seeds(seed))}
    if op in ("softmax_xent_forward", "softmax_xent_backward"):
        n, classes = x_shape
        logits = _normal(rng, x_shape, 3.0)
        labels = rng.integers(0, classes, size=n, dtype=np.int32)
        if op == "softmax_xent_forward":
            return {"logits": logits, "labels": labels}
        return {"probs": reference.softmax_xent_forward(logits, labels)[1], "labels": labels}
    if op == "sgd_update":
        return {"w": _normal(rng, x_shape, 0.01), "grad": _normal(rng, x_shape, 0.01),
                "velocity": _normal(rng, x_shape, 0.001)}
    raise ValueError(f"no inputs defined for op {op!r}")


def output_shape(case: OpCase) -> tuple[int, ...]:
    """The shape of the forward output of a conv2d or linear case (the shape of dy)."""
    n = case["x"][0]
    w_shape = case["w"]
    if case.op.startswith("linear"):
        return (n, w_shape[0])
    _, _, h, w = case["x"]
    return (n, w_shape[0], conv_output_size(h, w_shape[2], case["stride"], case["pad"]),
            conv_output_size(w, w_shape[3], case["stride"], case["pad"]))


def summation_terms(case: OpCase) -> dict[str, int]:
    """For conv2d and linear cases, the length of the longest sum behind each output (by output
    name), which the float32_large_reduction tolerance grows with; {} for other ops."""
    from kernels.testing import conv_terms, linear_terms

    if case.op.startswith("conv2d"):
        n, c = case["x"][:2]
        f, _, kh, kw = case["w"]
        _, _, oh, ow = output_shape(case)
        return conv_terms(n, c, f, kh, kw, oh, ow, case["stride"], case["groups"])
    if case.op.startswith("linear"):
        return linear_terms(case["x"][0], case["x"][1], case["w"][0])
    return {}


def lrn_params(case: OpCase) -> tuple:
    return case["size"], case["alpha"], case["beta"], case["k"]


def dropout_seeds(seed: int) -> tuple[int, int]:
    """A (seed, offset) pair for dropout from the case's seed, both above 2^32 so the high words of
    Philox's key and counter are exercised too."""
    mask = (1 << 64) - 1
    return (((seed + 1) << 33) | 0x5EED) & mask, (((seed + 1) << 34) | 7) & mask


def call_arguments(case: OpCase, args: dict) -> tuple[list, dict]:
    """(positional, keyword) arguments of `case`'s contract call on `args` (arrays of any face)."""
    op = case.op
    arrays = [args[name] for name in ARRAY_ARGS[op]]
    if op.startswith("conv2d"):
        return arrays, dict(stride=case["stride"], pad=case["pad"], groups=case["groups"])
    if op in ("lrn_forward", "lrn_backward"):
        return [*arrays, *lrn_params(case)], {}
    if op == "maxpool_forward":
        return [*arrays, case["kernel"], case["stride"]], {}
    if op == "maxpool_backward":
        return [*arrays, tuple(case["x"]), case["kernel"], case["stride"]], {}
    if op == "dropout_forward":
        return [*arrays, case["p"], args["seed"], args["offset"]], {}
    if op == "dropout_backward":
        return [*arrays, case["p"]], {}
    if op == "sgd_update":
        return [*arrays, case["lr"], case["momentum"], case["weight_decay"]], {}
    return arrays, {}


def invoke(function, case: OpCase, args: dict):
    """Call `function` (a contract function or a version launcher of any face) with `args` (arrays
    of that face); returns the outputs as a tuple, named as in OUTPUTS[case.op]."""
    positional, keywords = call_arguments(case, args)
    result = function(*positional, **keywords)
    if case.op in IN_PLACE:
        return tuple(args[name] for name in IN_PLACE[case.op])
    return result if isinstance(result, tuple) else (result,)


def copy_args(args: dict, xp) -> dict:
    """A copy of every array (for calls that work in place); scalars as they are."""
    return {name: xp.array(value, copy=True) if hasattr(value, "shape") else value for name, value in args.items()}


def rotation_set(args: dict, index: int, xp) -> dict:
    """Another input set for timing, in its own memory: float arrays scaled by (1 + index/64), so
    they hold different, still O(1), values; integer arrays (labels, argmax, masks) copied. Each
    set in its own buffers means a kernel timed over enough sets cannot be served from L2."""
    factor = np.float32(1.0 + index / 64.0)
    rotated = {}
    for name, value in args.items():
        if not hasattr(value, "dtype"):
            rotated[name] = value
        elif value.dtype.kind == "f":
            rotated[name] = value * factor
        else:
            rotated[name] = xp.array(value, copy=True)
    return rotated


def nbytes(args: dict) -> int:
    return sum(int(value.nbytes) for value in args.values() if hasattr(value, "nbytes"))
