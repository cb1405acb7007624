"""The one table of op cases every face is held to (tests/kernels/test_conformance.py).

TINY: small, awkward shapes that every version of every face runs here, on the CPU: the NumPy
reference, the Numba face in Numba's CUDA simulator (about a millisecond per simulated thread, so
the shapes are small) and the CUDA C face in the g++ emulator; on a GPU the same cases run on both
GPU faces. Shapes are multiples of no tile size (16 for v2, 64 for v3 and v4) nor of 4 (the float4
paths) unless a case says otherwise, and take in stride 4, padding, groups 2 and 3, batch 1, one
channel, ties in max pooling, dropout seeds and offsets above 2^32, and labels of two dtypes.

REAL: every contract call of one training step of alexnet2012 at batch 128, derived from the
trainer's own architecture through the benchmark's case list (benchmarks.shapes), with the
benchmark's inputs (benchmarks.cases); for the `gpu` tests only.

A case makes host inputs, calls an op of a face (arrays moved there by a `to_face` function) and of
the reference, and compares each output with the named row of kernels.testing.TOLERANCES. The
reference runs in float64 on the same float32 inputs, so the comparison measures the kernel's own
rounding, except for the "exact" ops, whose reference runs in float32 with the same single rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks import cases as benchmark_inputs
from benchmarks.cases import summation_terms
from benchmarks.kernel_bench import case_seed
from benchmarks.shapes import benchmark_cases
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
    simulated: bool = True  # False: too many simulated threads for Numba's simulator (see TINY)

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"

    def inputs(self, seed: int = 0):
        return self.make(np.random.default_rng(seed))

    def run(self, function, args, kwargs):
        result = function(*args, **kwargs)
        if self.in_place:
            assert result is None, f"{self.id}: an in-place op returns None"
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
            if np.asarray(e).dtype.kind in "iub":  # masks uint8, argmax int32: the contract's dtypes
                assert a.dtype == np.asarray(e).dtype, f"{what} {name}: dtype {a.dtype} != {np.asarray(e).dtype}"
            assert_matches(a, np.asarray(e), tolerance, f"{what} {name}", terms=k)


def _normal(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def conv_case(name, n, c, h, w, f, k, stride=1, pad=0, groups=1, ops=("forward", "backward"), simulated=True):
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
    made = {"forward": Case("conv2d_forward", name, make_forward, (REDUCTION,), ("y",), terms=(terms["y"],),
                            simulated=simulated),
            "backward": Case("conv2d_backward", name, make_backward, (REDUCTION,) * 3, ("dx", "dw", "db"),
                             terms=(terms["dx"], terms["dw"], terms["db"]), simulated=simulated)}
    return [made[direction] for direction in ops]


def linear_case(name, n, i, o):
    def make_forward(rng):
        return [_normal(rng, (n, i)), _normal(rng, (o, i), 1.0 / math.sqrt(i)), _normal(rng, (o,))], {}

    def make_backward(rng):
        return [_normal(rng, (n, o)), _normal(rng, (n, i)), _normal(rng, (o, i), 1.0 / math.sqrt(i))], {}

    terms = linear_terms(n, i, o)
    return [
        Case("linear_forward", name, make_forward, (REDUCTION,), ("y",), terms=(terms["y"],)),
        Case("linear_backward", name, make_backward, (REDUCTION,) * 3, ("dx", "dw", "db"),
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
    """Masks bit for bit: every face decides each element by the same integer comparison."""

    def make_forward(rng):
        return [_normal(rng, shape), p, seed, offset], {}

    def make_backward(rng):
        return [_normal(rng, shape), reference.dropout_mask(shape, p, seed, offset), p], {}

    return [
        Case("dropout_forward", name, make_forward, (EXACT, EXACT), ("y", "mask")),
        Case("dropout_backward", name, make_backward, (EXACT,), ("dx",)),
    ]


def softmax_case(name, n, k, scale=3.0, label_dtype=np.int64):
    def make_forward(rng):
        return [_normal(rng, (n, k), scale), rng.integers(0, k, n).astype(label_dtype)], {}

    def make_backward(rng):
        logits, labels = make_forward(rng)[0]
        _, probs = reference.softmax_xent_forward(logits, labels)
        return [probs, labels], {}

    return [
        Case("softmax_xent_forward", name, make_forward, (ELEMENTWISE, ELEMENTWISE), ("loss", "probs")),
        Case("softmax_xent_backward", name, make_backward, (ELEMENTWISE,), ("dlogits",)),
    ]


def sgd_case(name, shape):
    """In place: w and velocity are the outputs, and grad must come back unchanged."""

    def make(rng):
        return [_normal(rng, shape), _normal(rng, shape), _normal(rng, shape, 0.01), 0.01], dict(
            momentum=0.9, weight_decay=5e-4)

    return [Case("sgd_update", name, make, (ELEMENTWISE, ELEMENTWISE, EXACT), ("w", "velocity", "grad"),
                 in_place=(0, 2, 1))]


TINY = [
    # Convolution. Per-group products with remainders along every axis; stride 4 with groups 3 and
    # batch 1; split-K in the filter gradient (K = N·OH·OW = 72 positions, more than one 64-long
    # split) with groups 2 and C/G·KH·KW = 36 (a multiple of 4: the CUDA C v4 kernel's float4 weight
    # loads); a 5x5 window at stride 2 with padding 2 over one channel per group; more than 64
    # filters (two v3 tiles) forward, more than 64 channels backward. Every simulated thread costs
    # time, so each case is as small as what it exercises allows: 66 filters in a backward case
    # would cost 66 bias-reduction blocks, ~25 s in the simulator, for nothing the others miss.
    *conv_case("pad1-nonsquare", 1, 3, 6, 5, 4, 3, pad=1),
    *conv_case("stride4-groups3-batch1", 1, 6, 5, 5, 3, 3, stride=4, pad=1, groups=3),
    *conv_case("groups2-splitk-float4", 2, 8, 6, 6, 4, 3, pad=1, groups=2),
    *conv_case("5x5-stride2-pad2-one-channel-groups2", 1, 2, 5, 5, 2, 5, stride=2, pad=2, groups=2),
    *conv_case("66-filters-1x1", 1, 2, 3, 3, 66, 1, ops=("forward",)),
    *conv_case("66-channels-1x1", 1, 66, 2, 2, 2, 1, ops=("backward",)),
    # 132 positions: three split-K chunks of the filter gradient, so a lost middle chunk shows.
    *conv_case("three-splits", 1, 1, 12, 11, 1, 1, ops=("backward",)),
    # More than 64 filters and channels per group: every GEMM of the convolution (forward rows F/G,
    # data-gradient rows C/G, filter-gradient rows F/G) has a second 64-row block, so a row offset
    # of the second block (m0 in conv2d_backward.cu, say) is exercised, with groups 1 and 2. Minutes
    # of simulated threads, so the Numba face runs them on a GPU only (the 1x1 cases above give its
    # forward and data-gradient GEMMs a second block in the simulator).
    *conv_case("66-per-group", 1, 66, 3, 3, 66, 3, pad=1, simulated=False),
    *conv_case("66-per-group-groups2", 1, 132, 3, 3, 132, 3, pad=1, groups=2, simulated=False),
    # Linear: two 16-wide tiles along I and O; batch 1 and one output; I = 12 and O = 68, multiples
    # of 4 (the CUDA C v4 kernel's float4 loads), and two 64-wide tiles along O.
    *linear_case("3x20->17", 3, 20, 17),
    *linear_case("batch1-one-output", 1, 5, 1),
    *linear_case("float4-2x12->68", 2, 12, 68),
    # Elementwise: a remainder after float4 groups (105), whole float4 groups (16), two blocks (300).
    *relu_case("3x5x7", (3, 5, 7)),
    *relu_case("2x8", (2, 8)),
    *relu_case("300-two-blocks", (300,)),
    *sgd_case("37", (37,)),
    *sgd_case("4x9", (4, 9)),
    *sgd_case("300-two-blocks", (300,)),
    *lrn_case("paper", (2, 7, 3, 4)),
    *lrn_case("strong-size3", (2, 6, 2, 3), size=3, alpha=0.1, beta=0.75, k=1.5),
    *lrn_case("even-size", (1, 9, 2, 2), size=4, alpha=0.05, beta=0.6, k=1.0),
    *lrn_case("one-channel", (2, 1, 3, 3), size=5, alpha=0.2),
    *maxpool_case("3-over-2", (2, 3, 7, 9)),
    *maxpool_case("3-over-2-ties", (2, 3, 9, 8), ties=True),
    *maxpool_case("2-over-2-ties", (1, 2, 8, 6), kernel=2, stride=2, ties=True),
    *maxpool_case("3-over-1-one-channel-ties", (1, 1, 6, 7), kernel=3, stride=1, ties=True),
    *dropout_case("p0.5-seed0", (3, 5, 7), 0.5, seed=0, offset=0),
    *dropout_case("seed-offset-over-2^32", (3, 5, 7), 0.3, seed=(7 << 32) + 9, offset=(3 << 32) + 11),
    *dropout_case("seed-2^40", (5, 7), 0.5, seed=2**40 + 12345, offset=2**33 + 7),
    *dropout_case("1100-offset-2^64-1", (2, 550), 0.5, seed=20120101, offset=2**64 - 1),
    *dropout_case("p0.999", (4, 9), 0.999, seed=2**64 - 1, offset=5),
    *dropout_case("p0.1", (3, 33), 0.1, seed=7, offset=0),
    *dropout_case("p0", (1, 6), 0.0, seed=42, offset=1),
    *softmax_case("3x13-int64", 3, 13, scale=1.0),
    *softmax_case("2x300-large-logits-int32", 2, 300, scale=30.0, label_dtype=np.int32),
    *softmax_case("one-class", 1, 1, scale=1.0),
]


def from_benchmark(op_case) -> Case:
    """The Case of one of the benchmark's op cases, with the benchmark's inputs for it."""
    outputs = benchmark_inputs.OUTPUTS[op_case.op]

    def make(rng):  # the benchmark's own draw, seeded per case, so a failure reproduces there too
        return benchmark_inputs.call_arguments(op_case, benchmark_inputs.make_inputs(op_case, case_seed(op_case)))

    in_place = (0, 2) if op_case.op == "sgd_update" else ()
    name = op_case.label.replace("alexnet2012/", "").replace(", ", "+")
    terms = summation_terms(op_case)
    return Case(op_case.op, name, make, tuple(o.tolerance for o in outputs), tuple(o.name for o in outputs),
                in_place=in_place, terms=tuple(terms[o.name] for o in outputs) if terms else ())


# Every call of a training step of the 2012 network at batch 128.
REAL = [from_benchmark(op_case) for op_case in benchmark_cases(("alexnet2012",), 128)]
