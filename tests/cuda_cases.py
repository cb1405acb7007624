"""Op cases for the `cuda` face's tests: tiny shapes for the CPU emulator in CI, tiny and real
AlexNet shapes (batch 128) for the `gpu` tests, shared so both run the same comparisons.

A case makes host inputs, calls an op of a face (arrays moved there by a `to_face` function) and
of the reference, and compares each output with the named row of kernels.testing.TOLERANCES. The
reference runs in float64 on the same float32 inputs, so the comparison measures the kernel's own
rounding, except for the "exact" ops, whose reference runs in float32 with the same single rounding.
Tiny shapes are deliberately not multiples of any tile (16, 64) or of 4 (float4 paths).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kernels import reference
from kernels.testing import assert_matches, conv_terms, linear_terms, to_numpy

REDUCTION = "float32_reduction"
LARGE_REDUCTION = "float32_large_reduction"
ELEMENTWISE = "float32_elementwise"
EXACT = "exact"


@dataclass
class Case:
    op: str
    name: str
    make: Callable[[np.random.Generator], tuple[list, dict]]  # host (args, kwargs), float32 arrays
    tolerances: tuple[str, ...]  # one per output
    outputs: tuple[str, ...]
    face_kwargs: dict = field(default_factory=dict)  # keywords only the GPU faces take
    in_place: tuple[int, ...] = ()  # for in-place ops: the argument positions that are the outputs
    terms: tuple[int, ...] = ()  # per output, the length of its longest sum (for float32_large_reduction)

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"

    def inputs(self, seed: int = 0):
        return self.make(np.random.default_rng(seed))

    def run(self, function, args, kwargs):
        result = function(*args, **kwargs)
        if self.in_place:
            return tuple(args[i] for i in self.in_place)
        return result if isinstance(result, tuple) else (result,)

    def reference_outputs(self, args, kwargs):
        exact = all(t == EXACT for t in self.tolerances)
        cast = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 and not exact else
                (a.copy() if isinstance(a, np.ndarray) else a) for a in args]
        return self.run(getattr(reference, self.op), cast, kwargs)

    def face_outputs(self, function, to_face, args, kwargs):
        moved = [to_face(a) if isinstance(a, np.ndarray) else a for a in args]
        return self.run(function, moved, {**kwargs, **self.face_kwargs})

    def compare(self, actual, expected, what: str) -> None:
        assert len(actual) == len(expected) == len(self.outputs), what
        terms = self.terms or (None,) * len(self.outputs)
        for name, tolerance, a, e, k in zip(self.outputs, self.tolerances, actual, expected, terms, strict=True):
            a = to_numpy(a)
            if tolerance == EXACT:
                assert a.dtype == np.asarray(e).dtype, f"{what} {name}: dtype {a.dtype} != {np.asarray(e).dtype}"
            assert_matches(a, np.asarray(e), tolerance, f"{what} {name}", terms=k)


def _normal(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def conv_case(name, n, c, h, w, f, k, stride=1, pad=0, groups=1, tolerance=REDUCTION):
    def make_forward(rng):
        x = _normal(rng, (n, c, h, w))
        weights = _normal(rng, (f, c // groups, k, k), 1.0 / math.sqrt(c // groups * k * k))
        return [x, weights, _normal(rng, (f,))], dict(stride=stride, pad=pad, groups=groups)

    def make_backward(rng):
        (x, weights, _), kwargs = make_forward(rng)
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        return [_normal(rng, (n, f, oh, ow)), x, weights], kwargs

    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    terms = conv_terms(n, c, f, k, k, oh, ow, stride, groups)
    return [
        Case("conv2d_forward", name, make_forward, (tolerance,), ("y",), terms=(terms["y"],)),
        Case("conv2d_backward", name, make_backward, (tolerance,) * 3, ("dx", "dw", "db"),
             terms=(terms["dx"], terms["dw"], terms["db"])),
    ]


def linear_case(name, n, i, o, tolerance=REDUCTION):
    def make_forward(rng):
        return [_normal(rng, (n, i)), _normal(rng, (o, i), 1.0 / math.sqrt(i)), _normal(rng, (o,))], {}

    def make_backward(rng):
        return [_normal(rng, (n, o)), _normal(rng, (n, i)), _normal(rng, (o, i), 1.0 / math.sqrt(i))], {}

    terms = linear_terms(n, i, o)
    return [
        Case("linear_forward", name, make_forward, (tolerance,), ("y",), terms=(terms["y"],)),
        Case("linear_backward", name, make_backward, (tolerance,) * 3, ("dx", "dw", "db"),
             terms=(terms["dx"], terms["dw"], terms["db"])),
    ]


def relu_case(name, shape):
    def make_forward(rng):
        x = _normal(rng, shape)
        x.flat[::7] = 0.0  # the boundary: relu(0) = 0, and no gradient where y = 0
        return [x], {}

    def make_backward(rng):
        (x,), _ = make_forward(rng)
        return [_normal(rng, shape), np.maximum(x, 0)], {}

    return [
        Case("relu_forward", name, make_forward, (EXACT,), ("y",)),
        Case("relu_backward", name, make_backward, (EXACT,), ("dx",)),
    ]


def lrn_case(name, shape, **params):
    def make_forward(rng):
        return [_normal(rng, shape, 2.0)], dict(params)

    def make_backward(rng):
        (x,), kwargs = make_forward(rng)
        y, scale = reference.lrn_forward(x, **params)
        return [_normal(rng, shape), x, y, scale], kwargs

    return [
        Case("lrn_forward", name, make_forward, (ELEMENTWISE, ELEMENTWISE), ("y", "scale")),
        Case("lrn_backward", name, make_backward, (ELEMENTWISE,), ("dx",)),
    ]


def maxpool_case(name, shape, kernel=3, stride=2, ties=False):
    def make_forward(rng):
        # Small integers make many ties, which the contract breaks by row-major window order.
        x = rng.integers(-3, 4, shape).astype(np.float32) if ties else _normal(rng, shape)
        return [x], dict(kernel=kernel, stride=stride)

    def make_backward(rng):
        (x,), _ = make_forward(rng)
        y, argmax = reference.maxpool_forward(x, kernel, stride)
        return [_normal(rng, y.shape), argmax, shape], {}

    return [
        Case("maxpool_forward", name, make_forward, (EXACT, EXACT), ("y", "argmax")),
        # Without kernel and stride the face must use its safe gather window.
        Case("maxpool_backward", name, make_backward, (ELEMENTWISE,), ("dx",)),
        Case("maxpool_backward", name + "-told", make_backward, (ELEMENTWISE,), ("dx",),
             face_kwargs=dict(kernel=kernel, stride=stride)),
    ]


def dropout_case(name, shape, p, seed, offset):
    def make_forward(rng):
        return [_normal(rng, shape)], {}

    def make_backward(rng):
        return [_normal(rng, shape), reference.dropout_mask(shape, p, seed, offset), p], {}

    def forward(rng):
        (x,), _ = make_forward(rng)
        return [x, p, seed, offset], {}

    return [
        Case("dropout_forward", name, forward, (EXACT, EXACT), ("y", "mask")),
        Case("dropout_backward", name, make_backward, (EXACT,), ("dx",)),
    ]


def softmax_case(name, n, k, scale=3.0):
    def make_forward(rng):
        return [_normal(rng, (n, k), scale), rng.integers(0, k, n)], {}

    def make_backward(rng):
        logits, labels = make_forward(rng)[0]
        _, probs = reference.softmax_xent_forward(logits, labels)
        return [probs, labels], {}

    return [
        Case("softmax_xent_forward", name, make_forward, (ELEMENTWISE, ELEMENTWISE), ("loss", "probs")),
        Case("softmax_xent_backward", name, make_backward, (EXACT,), ("dlogits",)),
    ]


def sgd_case(name, shape):
    def make(rng):
        return [_normal(rng, shape), _normal(rng, shape), _normal(rng, shape, 0.01), 0.01], dict(
            momentum=0.9, weight_decay=5e-4)

    return [Case("sgd_update", name, make, (ELEMENTWISE, ELEMENTWISE), ("w", "velocity"), in_place=(0, 2))]


# Tiny shapes: tile remainders everywhere, groups, strides 1, 2 and 4, padding, several tiles per
# axis of the 64 x 64 kernels, split-K in the filter gradient (K = N·OH·OW over 64).
TINY = [
    *conv_case("3x3-pad1", 2, 3, 9, 8, 5, 3, stride=1, pad=1),
    *conv_case("5x5-stride2-groups2", 2, 4, 11, 10, 6, 5, stride=2, pad=2, groups=2),
    *conv_case("11x11-stride4", 2, 3, 19, 19, 4, 11, stride=4),
    *conv_case("70-filters-groups2", 1, 6, 6, 5, 70, 3, pad=1, groups=2),
    *conv_case("wide-positions", 3, 2, 13, 9, 3, 3),
    *conv_case("float4-weights", 2, 4, 7, 6, 9, 3, pad=1),  # C/G·KH·KW = 36: v4 loads w as float4
    *linear_case("5x7x3", 5, 7, 3),
    *linear_case("70x33x66", 70, 33, 66),
    *linear_case("float4-8x36x68", 8, 36, 68),
    *relu_case("3x5x7", (3, 5, 7)),
    *relu_case("2x8", (2, 8)),
    *lrn_case("paper", (2, 7, 3, 4)),
    *lrn_case("strong-3", (2, 6, 2, 3), size=3, alpha=0.1, beta=0.75, k=1.5),
    *lrn_case("even-size", (1, 9, 2, 2), size=4, alpha=0.05, beta=0.6, k=1.0),
    *maxpool_case("3-over-2", (2, 3, 7, 9)),
    *maxpool_case("ties", (2, 2, 9, 7), ties=True),
    *maxpool_case("2-over-2", (1, 2, 8, 6), kernel=2, stride=2),
    *dropout_case("p0.5", (5, 7), 0.5, seed=2**40 + 12345, offset=2**33 + 7),
    *dropout_case("p0.1", (3, 33), 0.1, seed=7, offset=0),
    *softmax_case("5x11", 5, 11),
    *softmax_case("3x300", 3, 300, scale=20.0),
    *sgd_case("37", (37,)),
    *sgd_case("4x9", (4, 9)),
    # More than 64 filters and channels per group: every GEMM of the convolution (forward rows F/G,
    # data-gradient rows C/G, filter-gradient rows F/G) has a second 64-row block, so a row offset
    # of the second block (m0 in conv2d_backward.cu, say) is exercised, with groups 1 and 2.
    *conv_case("66-per-group", 1, 66, 3, 3, 66, 3, pad=1),
    *conv_case("66-per-group-groups2", 1, 132, 3, 3, 132, 3, pad=1, groups=2),
]

# AlexNet at batch 128 (the 2012 model: LRN, groups), for the gpu tests.
REAL = [
    *conv_case("conv1", 128, 3, 227, 227, 96, 11, stride=4, tolerance=LARGE_REDUCTION),
    *conv_case("conv2", 128, 96, 27, 27, 256, 5, pad=2, groups=2, tolerance=LARGE_REDUCTION),
    *conv_case("conv3", 128, 256, 13, 13, 384, 3, pad=1, tolerance=LARGE_REDUCTION),
    *conv_case("conv4", 128, 384, 13, 13, 384, 3, pad=1, groups=2, tolerance=LARGE_REDUCTION),
    *conv_case("conv5", 128, 384, 13, 13, 256, 3, pad=1, groups=2, tolerance=LARGE_REDUCTION),
    *linear_case("fc6", 128, 9216, 4096, tolerance=LARGE_REDUCTION),
    *linear_case("fc7", 128, 4096, 4096, tolerance=LARGE_REDUCTION),
    *linear_case("fc8", 128, 4096, 1000, tolerance=LARGE_REDUCTION),
    *relu_case("conv1", (128, 96, 55, 55)),
    *lrn_case("conv1", (128, 96, 55, 55)),
    *lrn_case("conv2", (128, 256, 27, 27)),
    *maxpool_case("pool1", (128, 96, 55, 55)),
    *maxpool_case("pool2", (128, 256, 27, 27)),
    *maxpool_case("pool5", (128, 256, 13, 13)),
    *dropout_case("fc6", (128, 4096), 0.5, seed=2012, offset=90),
    *softmax_case("1000-classes", 128, 1000),
    *sgd_case("fc6-weights", (4096, 9216)),
]


def by_op(cases, op):
    return [case for case in cases if case.op == op]
