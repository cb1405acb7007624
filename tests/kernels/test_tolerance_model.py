"""The tolerance table's two rules that a GPU run depends on, held to CPU models of what they judge.

- "float32_large_reduction": a float32 sum of conv1's filter-gradient length (N·OH·OW = 387,200
  products at batch 128), added in order (the worst order any kernel uses) or split-K style, must
  pass against the exact sum; the same sum missing one split-K chunk, or one 8-term k-tile, must
  fail. The tolerance's reason in kernels/testing.py gives the numbers behind its coefficient.
- values below FLT_MIN compare as zero: the CUDA C face flushes subnormals (CuPy's -ftz=true, the
  emulator likewise), the Numba face and NumPy keep them; both must still agree exactly.
"""

import math

import numpy as np
import pytest

from kernels import geometry, reference
from kernels.testing import (
    FLT_MIN,
    TOLERANCES,
    UNIT_ROUNDOFF,
    assert_matches,
    conv_terms,
    linear_terms,
    root_mean_square,
)

LONG = "float32_large_reduction"
CONV1_DW = conv_terms(n=128, c=3, f=96, kh=11, kw=11, oh=55, ow=55, stride=4)["dw"]  # 387,200
ELEMENTS = 32  # sums drawn at full length: 32 x 387,200 float32 products, 50 MB


def _in_order(terms: np.ndarray) -> np.ndarray:
    """Each row added left to right in float32, as one thread of v1 accumulates (np.cumsum adds
    in order; np.sum would add pairwise, which errs less)."""
    return np.cumsum(terms, axis=1, dtype=np.float32)[:, -1]


def _exact(terms: np.ndarray) -> np.ndarray:
    return terms.sum(axis=1, dtype=np.float64)


@pytest.fixture(scope="module")
def products():
    """dy·x products of unit normal inputs, one row per dw element."""
    rng = np.random.default_rng(CONV1_DW)
    terms = rng.standard_normal((ELEMENTS, CONV1_DW), dtype=np.float32)
    terms *= rng.standard_normal((ELEMENTS, CONV1_DW), dtype=np.float32)
    return terms


def _allowance(exact: np.ndarray, terms: int) -> float:
    return TOLERANCES[LONG].per_term * UNIT_ROUNDOFF * math.sqrt(terms) * root_mean_square(exact)


def _conv1_split() -> tuple[int, int]:
    """(splits, chunk) of conv1's filter gradient in the promoted (v3) kernels of both faces."""
    tile = geometry.CONV_TILES[3]
    m, n, k = geometry.conv_filter_gemm(128, 3, 96, 55, 55, 11, 11, 1)
    assert k == CONV1_DW
    return geometry.split_k(k, tile.block_k, tile.blocks(m, n))


def test_a_correct_float32_sum_of_conv1s_length_passes_with_room(products):
    exact = _exact(products)
    summed = _in_order(products)
    assert_matches(summed, exact, LONG, "in-order float32 sums", terms=CONV1_DW)
    error = np.abs(summed - exact).max()
    assert error < 0.5 * _allowance(exact, CONV1_DW), "the allowance has less than a factor 2 of room"
    assert error > 2e-3, "the float32 sums came out more exact than the model says; recheck the model"


def test_the_allowance_covers_the_worst_of_many_sums_twice_over():
    """The error in units of 2^-24·sqrt(K)·rms(result) does not depend on K, so its tail is measured
    on 100,000 short sums: the worst must stay below half the allowance, the room a comparison of
    two float32 faces needs (their errors add, about sqrt(2) more)."""
    rng = np.random.default_rng(100_000)
    length = 256
    summed, exact = [], []
    for _ in range(8):
        terms = rng.standard_normal((12_500, length), dtype=np.float32)
        terms *= rng.standard_normal((12_500, length), dtype=np.float32)
        summed.append(_in_order(terms))
        exact.append(_exact(terms))
    summed, exact = np.concatenate(summed), np.concatenate(exact)
    worst = np.abs(summed - exact).max() / (UNIT_ROUNDOFF * math.sqrt(length) * root_mean_square(exact))
    assert 2.0 < worst < TOLERANCES[LONG].per_term / 2, f"worst error {worst:.2f} units"
    assert_matches(summed, exact, LONG, "100,000 in-order sums", terms=length)


def test_a_split_k_float32_sum_passes(products):
    splits, chunk = _conv1_split()
    assert splits > 2, "conv1's filter gradient is split, so there is a middle chunk to lose"
    partial = [_in_order(products[:, s * chunk:(s + 1) * chunk]) for s in range(splits)]
    summed = np.zeros(ELEMENTS, np.float32)
    for piece in partial:  # the second pass adds the splits in order, in float32
        summed += piece
    assert_matches(summed, _exact(products), LONG, "split-K float32 sums", terms=CONV1_DW)


def test_a_sum_missing_its_middle_split_k_chunk_fails(products):
    splits, chunk = _conv1_split()
    middle = splits // 2
    kept = np.concatenate([products[:, :middle * chunk], products[:, (middle + 1) * chunk:]], axis=1)
    with pytest.raises(AssertionError, match="elements outside"):
        assert_matches(_in_order(kept), _exact(products), LONG, "without chunk", terms=CONV1_DW)


def test_a_sum_missing_one_k_tile_fails(products):
    """Eight products (one k-step of the v3 tile) left out of every sum, in the middle."""
    begin = CONV1_DW // 2 // 8 * 8
    kept = np.concatenate([products[:, :begin], products[:, begin + 8:]], axis=1)
    with pytest.raises(AssertionError, match="elements outside"):
        assert_matches(_in_order(kept), _exact(products), LONG, "without one tile", terms=CONV1_DW)


def test_sums_of_terms_with_a_mean_pass():
    """Post-ReLU activations (non-negative) times weights with a small mean: the partial sums grow
    linearly, and the allowance, scaled by the results' own size, still holds them."""
    rng = np.random.default_rng(1)
    terms = np.abs(rng.standard_normal((ELEMENTS, 65536), dtype=np.float32))
    terms *= rng.normal(0.05, 1.0, (ELEMENTS, 65536)).astype(np.float32)
    assert_matches(_in_order(terms), _exact(terms), LONG, "sums with a mean", terms=65536)


def test_the_summation_length_is_required_and_follows_each_output():
    with pytest.raises(TypeError, match="terms=K"):
        assert_matches(np.ones(3), np.ones(3), LONG)
    assert conv_terms(128, 3, 96, 11, 11, 55, 55, stride=4) == {"y": 363, "dx": 96 * 9, "dw": 387200, "db": 387200}
    assert conv_terms(128, 96, 256, 5, 5, 27, 27, groups=2) == {"y": 1200, "dx": 3200, "dw": 93312, "db": 93312}
    assert linear_terms(128, 9216, 4096) == {"y": 9216, "dx": 4096, "dw": 128, "db": 128}


def test_values_below_flt_min_compare_as_zero():
    subnormal = np.float32(FLT_MIN / 8)
    assert_matches(np.array([0.0, 1.0], np.float32), np.array([subnormal, 1.0], np.float32), "exact")
    assert_matches(np.array([-subnormal], np.float32), np.array([subnormal], np.float64), "exact")
    with pytest.raises(AssertionError):
        assert_matches(np.array([0.0], np.float32), np.array([FLT_MIN], np.float32), "exact")


def test_cuda_c_and_numba_softmax_gradients_agree_across_subnormals():
    """A 3x300 softmax case of tests/kernels/cases.py at logit scale 20: the emulated CUDA C face
    flushes its subnormal probabilities, the Numba face in its simulator keeps them, and the
    comparison the gpu tests make between the two faces still holds exactly."""
    from kernels.cuda import runtime as cuda_runtime
    from kernels.toolchain import emulator

    if not emulator.available():
        pytest.fail("the CUDA C emulator needs g++, which every machine of this project has")
    import kernels.cuda as cuda_face
    import kernels.numba as numba_face
    from tests.kernels.cases import softmax_case

    case = next(c for c in softmax_case("3x300", 3, 300, scale=20.0) if c.op == "softmax_xent_backward")
    (probs, labels), _ = case.inputs()
    expected = reference.softmax_xent_backward(probs, labels)
    assert ((expected != 0) & (np.abs(expected) < FLT_MIN)).sum() == 39, "the case no longer makes 39 subnormals"
    from_numba = numba_face.to_host(numba_face.softmax_xent_backward(numba_face.to_device(probs),
                                                                     numba_face.to_device(labels)))
    backend = emulator.EmulatorBackend()
    with cuda_runtime.use_backend(backend):
        from_cuda = cuda_face.softmax_xent_backward(backend.guarded(probs), backend.guarded(labels))
    assert ((from_numba != 0) & (np.abs(from_numba) < FLT_MIN)).any() and not (
        (from_cuda != 0) & (np.abs(from_cuda) < FLT_MIN)).any()
    assert_matches(from_cuda, from_numba, "exact", "cuda (flushed) vs numba (subnormals kept)")


def test_the_real_shape_conv_check_sees_a_dropped_middle_split_k_chunk():
    """The real-shape convolution check of the gpu tests (tests/kernels/test_conformance.py, with the
    benchmark's inputs), on a small shape, against a filter gradient that lost the middle split-K
    chunk of its sum over positions. A dy random on three sampled images and zero on the rest (what
    the gpu tests once used) leaves that chunk's products all zero when the chunk falls between the
    sampled images: the faulty gradient is then exactly right. With dy random everywhere, as the
    benchmark's inputs are, the check fails it."""

    def assert_sums_match(actual, expected, name, terms):
        assert_matches(actual, expected, "float32_large_reduction", name, terms=terms)

    n, c, size, f, k = 16, 32, 13, 32, 3
    tile = geometry.CONV_TILES[3]
    m, columns, positions = geometry.conv_filter_gemm(n, c, f, size, size, k, k, 1)
    splits, chunk = geometry.split_k(positions, tile.block_k, tile.blocks(m, columns))
    middle = range(splits // 2 * chunk, (splits // 2 + 1) * chunk)
    images_hit = {p // (size * size) for p in middle}
    sampled = [0, 5, n - 1]
    assert splits > 2 and not images_hit & set(sampled), (splits, images_hit)

    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = (rng.standard_normal((f, c, k, k)) / math.sqrt(c * k * k)).astype(np.float32)

    def filter_gradient(dy, drop_middle):
        dy = dy.astype(np.float64).reshape(n, f, -1).transpose(0, 2, 1).reshape(-1, f).copy()
        if drop_middle:
            dy[middle.start:middle.stop] = 0.0
        dy = np.ascontiguousarray(dy.reshape(n, size * size, f).transpose(0, 2, 1)).reshape(n, f, size, size)
        return reference.conv2d_backward(dy, x.astype(np.float64), w.astype(np.float64), 1, 1, 1)[1]

    sampled_dy = np.zeros((n, f, size, size), np.float32)
    sampled_dy[sampled] = rng.standard_normal((len(sampled), f, size, size))
    np.testing.assert_array_equal(filter_gradient(sampled_dy, True), filter_gradient(sampled_dy, False))

    full_dy = rng.standard_normal((n, f, size, size)).astype(np.float32)
    terms = conv_terms(n, c, f, k, k, size, size)["dw"]
    correct = filter_gradient(full_dy, False)
    float32_dw = reference.conv2d_backward(full_dy, x, w, 1, 1, 1)[1]
    assert_sums_match(float32_dw, correct, "float32 dw", terms)
    with pytest.raises(AssertionError, match="elements outside"):
        assert_sums_match(filter_gradient(full_dy, True), correct, "dw without its middle chunk", terms)
