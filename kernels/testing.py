"""One way to compare a kernel with the reference, and one table of tolerances, each with its reason.

Used by the tests, the benchmarks (which validate before they time) and `alexnet-cuda gradcheck`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

UNIT_ROUNDOFF = 2.0**-24  # float32: round to nearest errs by at most this fraction of the result


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    reason: str
    # For sums: atol grows by per_term·UNIT_ROUNDOFF·sqrt(K)·rms(reference), K the summation length
    # (assert_matches's `terms`), so the allowance follows the length and the tensor's own scale.
    per_term: float = 0.0


# Every float comparison first reads values of magnitude below FLT_MIN (the smallest normal
# float32, 1.18e-38) as zero, in the result and in the reference alike: CuPy compiles the cuda face
# with -ftz=true, so on a GPU its kernels flush subnormal inputs and results to zero (and the CPU
# emulator does the same), while NumPy and the Numba face keep them. A softmax over logits of scale
# 20 gives probabilities near 1e-40; without this rule an "exact" comparison of its gradient would
# fail on values no training step can tell from zero.
FLT_MIN = float(np.finfo(np.float32).tiny)

TOLERANCES = {
    "exact": Tolerance(
        0.0, 0.0,
        "selections and integer results: ReLU, max-pool values and argmax, dropout masks and the "
        "masked values, which every face computes with the same single rounding (values below "
        "FLT_MIN compare as zero, as above)",
    ),
    "float32_elementwise": Tolerance(
        1e-6, 2e-5,
        "a handful of float32 roundings per element (LRN, SGD, softmax, overlapping max-pool "
        "gradients); faces may contract a·b + c into one fused multiply-add or order a short sum "
        "differently",
    ),
    "float32_reduction": Tolerance(
        1e-4, 1e-4,
        "dot products over up to ~10^4 terms of O(1) inputs (convolution, linear, bias and filter "
        "gradients), summed in another order by a tiled kernel: the error grows like "
        "sqrt(K)·2^-24·max|term|",
    ),
    "float32_large_reduction": Tolerance(
        0.0, 4 * UNIT_ROUNDOFF,
        "sums of K products at AlexNet's real shapes (K up to 9216 in a convolution or linear layer, "
        "387,200 in conv1's filter gradient at batch 128) against a float64 reference: "
        "|error| <= 16·2^-24·sqrt(K)·rms(reference), plus 4·2^-24·|reference| for the last roundings. "
        "A float32 sum whose partial sums stay on the scale of its result (random inputs, as every "
        "test and benchmark case draws them, with or without a mean) accumulates rounding errors of "
        "rms 0.30·2^-24·sqrt(K)·rms(result) when added in order, the worst order a kernel uses (v1, "
        "and each split of split-K); over 2,000,000 simulated sums the largest was 4.2 of that unit, "
        "so 16 leaves room for two float32 faces compared with each other (sqrt(2) more) and for "
        "tensors of 37.7M elements. A term left out moves a result by rms(result)/sqrt(K), at least "
        "1/(16·2^-24·K) = 2.7 times the allowance up to conv1's K, so a dropped tile or split-K "
        "chunk fails (tests/kernels/test_tolerance_model.py holds both claims). A fixed atol cannot serve every "
        "length: conv1's dw (rms 622 at unit inputs) errs by 0.007 rms in float32 when correct",
        per_term=16.0,
    ),
}

# Gradient checks compare an analytic gradient a with a central difference n over the same entries:
#     relative error = max|a − n| / max(max|a|, max|n|, 1e-12)
GRADCHECK_STEP = 1e-6
GRADCHECK_THRESHOLDS = {
    "float64": (
        1e-6,
        "float64 central differences with h = 1e-6: truncation O(h²) and rounding O(2^-52/h) keep "
        "a correct gradient near 1e-9; a wrong index or a missing term gives O(1)",
    ),
    "float32": (
        2e-3,
        "a float32 face's analytic gradient against float64 differences: float32 rounding "
        "(2^-24 per step) through a few layers",
    ),
}


def to_numpy(array) -> np.ndarray:
    """A host copy of a NumPy or CuPy array (CuPy arrays have .get())."""
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.asarray(array)


def flush_subnormals(values: np.ndarray) -> np.ndarray:
    """float64 copy of `values` with every magnitude below FLT_MIN read as zero (see FLT_MIN)."""
    values = np.array(values, dtype=np.float64)  # always a copy, changed in place below
    values[np.abs(values) < FLT_MIN] = 0.0
    return values


def assert_close(actual, reference, atol: float, rtol: float, what: str = "result") -> float:
    """Assert |actual − reference| <= atol + rtol·|reference| everywhere, NaN where and only where
    the reference has NaN, values below FLT_MIN read as zero; the message names the worst element.
    Returns the largest absolute difference (0.0 for integer arrays, which must be equal)."""
    actual, reference = to_numpy(actual), to_numpy(reference)
    if actual.shape != reference.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != reference shape {reference.shape}")
    if actual.dtype.kind in "iub" or reference.dtype.kind in "iub":
        mismatched = actual != reference
        if mismatched.any():
            first = tuple(int(i) for i in np.argwhere(mismatched)[0])
            raise AssertionError(
                f"{what}: {int(mismatched.sum())} of {actual.size} integer elements differ; first at "
                f"{first}: {actual[first]} != {reference[first]}"
            )
        return 0.0
    a = flush_subnormals(actual)
    r = flush_subnormals(reference)
    a_nan, r_nan = np.isnan(a), np.isnan(r)
    nan_mismatch = a_nan != r_nan
    error = np.subtract(a, r, out=a)  # a is a copy of its own; |a − r| replaces it
    np.abs(error, out=error)
    error[a_nan | r_nan] = 0.0
    np.abs(r, out=r)
    bad = nan_mismatch | (error > atol + rtol * r)
    if bad.any():
        a, r = flush_subnormals(actual), flush_subnormals(reference)  # the values, for the message
        worst = np.unravel_index(np.argmax(np.where(nan_mismatch, np.inf, error)), a.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {a.size} elements outside atol={atol:g}, rtol={rtol:g}; "
            f"worst at {tuple(int(i) for i in worst)}: {a[worst]!r} vs reference {r[worst]!r} "
            f"(max abs error {np.nanmax(error):.3g})"
        )
    return float(error.max(initial=0.0))


def assert_matches(actual, reference, tolerance: str, what: str = "result", terms: int | None = None) -> float:
    """assert_close with a named row of TOLERANCES; `terms`, the length of the longest sum behind an
    element, is required by rows that grow with it (per_term). Returns the largest absolute error."""
    row = TOLERANCES[tolerance]
    atol = row.atol
    if row.per_term:
        if terms is None:
            raise TypeError(f"tolerance {tolerance!r} grows with the summation length: pass terms=K")
        atol += row.per_term * UNIT_ROUNDOFF * math.sqrt(terms) * root_mean_square(reference)
    return assert_close(actual, reference, atol, row.rtol, what)


def root_mean_square(values) -> float:
    """sqrt(mean(v²)) over the finite elements (0.0 for none), values below FLT_MIN read as zero."""
    values = flush_subnormals(to_numpy(values))
    finite = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(finite * finite))) if finite.size else 0.0


def conv_terms(n, c, f, kh, kw, oh, ow, stride=1, groups=1) -> dict[str, int]:
    """The length of the longest sum behind each output of conv2d_forward and conv2d_backward:
    y over a filter's C/G·KH·KW taps; dx over the F/G filters times the taps whose window covers
    an input (at most ceil(KH/stride)·ceil(KW/stride)); dw and db over all N·OH·OW positions."""
    positions = n * oh * ow
    return {"y": c // groups * kh * kw, "dx": f // groups * math.ceil(kh / stride) * math.ceil(kw / stride),
            "dw": positions, "db": positions}


def linear_terms(n, inputs, outputs) -> dict[str, int]:
    """As conv_terms, for linear_forward and linear_backward with x (n, inputs), w (outputs, inputs)."""
    return {"y": inputs, "dx": outputs, "dw": n, "db": n}


def relative_error(analytic, numeric) -> float:
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-12)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


_poisoning = False


@contextlib.contextmanager
def poisoned_outputs():
    """Within the block every array a GPU face's launcher allocates (outputs and scratch) starts as
    NaN for floats or the dtype's largest value for integers, so that an element a kernel forgets
    to write cannot pass a comparison. One switch for both GPU faces."""
    global _poisoning
    previous, _poisoning = _poisoning, True
    try:
        yield
    finally:
        _poisoning = previous


def poisoning() -> bool:
    return _poisoning


def poison_value(dtype):
    dtype = np.dtype(dtype)
    return np.nan if dtype.kind == "f" else np.iinfo(dtype).max


def new_output(xp, shape, dtype=np.float32):
    """An array for a kernel to fill: uninitialised, or poisoned inside poisoned_outputs()."""
    if _poisoning:
        return xp.full(shape, poison_value(dtype), dtype=dtype)
    return xp.empty(shape, dtype=dtype)
