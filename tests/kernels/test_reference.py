"""The reference ops against direct loops over their formulas, and the contract's finer points."""

import itertools

import numpy as np
import pytest

from kernels import reference
from kernels.testing import assert_close, assert_matches

RNG = np.random.default_rng(2012)


def direct_conv(x, w, b, stride, pad, groups):
    """The formula, one output element at a time."""
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.empty((n, f, oh, ow))
    fg = f // groups
    for i, o, r, s in itertools.product(range(n), range(f), range(oh), range(ow)):
        g = o // fg
        window = xp[i, g * cg : (g + 1) * cg, r * stride : r * stride + kh, s * stride : s * stride + kw]
        y[i, o, r, s] = b[o] + np.sum(window * w[o])
    return y


CONV_SHAPES = [
    # x shape, w shape, stride, pad, groups
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 0, 1),
    ((1, 4, 9, 7), (6, 2, 3, 3), 2, 1, 2),
    ((2, 3, 15, 15), (6, 1, 11, 11), 4, 2, 3),
    ((1, 1, 5, 5), (2, 1, 5, 5), 1, 0, 1),
    ((3, 2, 6, 5), (2, 2, 1, 1), 1, 0, 1),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad", "groups"), CONV_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_forward_matches_direct_loop(x_shape, w_shape, stride, pad, groups, dtype):
    x = RNG.standard_normal(x_shape).astype(dtype)
    w = RNG.standard_normal(w_shape).astype(dtype)
    b = RNG.standard_normal(w_shape[0]).astype(dtype)
    y = reference.conv2d_forward(x, w, b, stride=stride, pad=pad, groups=groups)
    assert y.dtype == dtype and y.flags.c_contiguous
    expected = direct_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad, groups)
    assert_matches(y, expected, "float32_reduction")


def test_grouped_conv_equals_two_half_convolutions():
    x = RNG.standard_normal((2, 6, 9, 9))
    w = RNG.standard_normal((8, 3, 3, 3))
    b = RNG.standard_normal(8)
    dy = RNG.standard_normal((2, 8, 5, 5))
    y = reference.conv2d_forward(x, w, b, stride=2, pad=1, groups=2)
    halves = [reference.conv2d_forward(x[:, 3 * g : 3 * g + 3].copy(), w[4 * g : 4 * g + 4].copy(),
                                       b[4 * g : 4 * g + 4].copy(), stride=2, pad=1) for g in range(2)]
    assert_close(y, np.concatenate(halves, axis=1), atol=1e-12, rtol=1e-12)
    dx, dw, db = reference.conv2d_backward(dy, x, w, stride=2, pad=1, groups=2)
    half_grads = [reference.conv2d_backward(dy[:, 4 * g : 4 * g + 4].copy(), x[:, 3 * g : 3 * g + 3].copy(),
                                            w[4 * g : 4 * g + 4].copy(), stride=2, pad=1) for g in range(2)]
    for got, parts, axis in ((dx, [h[0] for h in half_grads], 1), (dw, [h[1] for h in half_grads], 0),
                             (db, [h[2] for h in half_grads], 0)):
        assert_close(got, np.concatenate(parts, axis=axis), atol=1e-12, rtol=1e-12)


def direct_lrn(x, size, alpha, beta, k):
    n, c, h, w = x.shape
    scale = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c - 1, ch + size // 2)
        scale[:, ch] = k + alpha * np.sum(x[:, lo : hi + 1] ** 2, axis=1)
    return x * scale**-beta, scale


@pytest.mark.parametrize(
    ("size", "alpha", "beta", "k"),
    [(5, 1e-4, 0.75, 2.0), (3, 0.1, 0.5, 1.0), (1, 0.5, 1.0, 0.5), (4, 0.01, 0.75, 2.0), (7, 1e-3, 2.0, 1.0)],
)
def test_lrn_matches_direct_loop(size, alpha, beta, k):
    x = RNG.standard_normal((2, 9, 3, 4)) * 5
    y, scale = reference.lrn_forward(x, size=size, alpha=alpha, beta=beta, k=k)
    expected_y, expected_scale = direct_lrn(x, size, alpha, beta, k)
    assert_close(scale, expected_scale, atol=0, rtol=1e-12)
    assert_close(y, expected_y, atol=0, rtol=1e-12)


def test_lrn_uses_alpha_undivided_by_size():
    x = np.zeros((1, 5, 1, 1))
    x[0, 2] = 10.0
    _, scale = reference.lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0)
    np.testing.assert_allclose(scale.ravel(), 2.0 + 1e-4 * 100.0)  # not 2 + (1e-4 / 5)·100


def test_maxpool_ties_go_to_first_element_in_row_major_order():
    x = np.zeros((1, 1, 5, 5), np.float32)
    y, argmax = reference.maxpool_forward(x, kernel=3, stride=2)
    np.testing.assert_array_equal(argmax[0, 0], [[0, 2], [10, 12]])  # each window's top-left
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = 1.0  # a tie inside the first window: (1, 2) comes first
    _, argmax = reference.maxpool_forward(x, kernel=3, stride=2)
    assert argmax[0, 0, 0, 0] == 1 * 5 + 2
    assert argmax.dtype == np.int32 and y.dtype == np.float32


def test_maxpool_matches_direct_loop_and_overlapping_gradients_add():
    x = RNG.standard_normal((2, 3, 9, 8))
    y, argmax = reference.maxpool_forward(x, kernel=3, stride=2)
    assert y.shape == (2, 3, 4, 3)
    dy = RNG.standard_normal(y.shape)
    expected_dx = np.zeros_like(x)
    for n, c, r, s in itertools.product(*map(range, y.shape)):
        window = x[n, c, 2 * r : 2 * r + 3, 2 * s : 2 * s + 3]
        i, j = np.unravel_index(np.argmax(window), window.shape)  # np.argmax also keeps the first
        assert y[n, c, r, s] == window[i, j]
        assert argmax[n, c, r, s] == (2 * r + i) * 8 + (2 * s + j)
        expected_dx[n, c, 2 * r + i, 2 * s + j] += dy[n, c, r, s]
    assert_close(reference.maxpool_backward(dy, argmax, x.shape), expected_dx, atol=1e-12, rtol=1e-12)


def test_maxpool_backward_adds_when_one_input_wins_two_windows():
    x = np.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 1.0  # the shared column of two overlapping 3x3 windows
    _, argmax = reference.maxpool_forward(x, kernel=3, stride=2)
    dx = reference.maxpool_backward(np.array([[[[1.0, 2.0]]]]), argmax, x.shape)
    assert dx[0, 0, 1, 2] == 3.0 and dx.sum() == 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_stable_for_large_logits(dtype):
    logits = np.array([[1000.0, 0.0, -1000.0], [5e4, 5e4, 5e4], [-3e4, 2.0, 1.0]], dtype=dtype)
    labels = np.array([1, 2, 1])
    loss, probs = reference.softmax_xent_forward(logits, labels)
    expected = np.mean([1000.0, np.log(3.0), np.log1p(np.exp(-1.0))])
    assert loss.dtype == dtype and loss.shape == ()
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    dlogits = reference.softmax_xent_backward(probs, labels)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(dlogits, (probs - onehot) / 3, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_update_is_the_papers_rule_in_place(dtype):
    w = RNG.standard_normal((4, 3)).astype(dtype)
    grad = RNG.standard_normal((4, 3)).astype(dtype)
    velocity = RNG.standard_normal((4, 3)).astype(dtype)
    w0, v0 = w.astype(np.float64), velocity.astype(np.float64)
    w_id, v_id = id(w), id(velocity)
    assert reference.sgd_update(w, grad, velocity, lr=0.01, momentum=0.9, weight_decay=5e-4) is None
    expected_v = 0.9 * v0 - 5e-4 * 0.01 * w0 - 0.01 * grad
    assert id(w) == w_id and id(velocity) == v_id and w.dtype == dtype
    assert_matches(velocity, expected_v, "float32_elementwise")
    assert_matches(w, w0 + expected_v, "float32_elementwise")


def test_linear_and_relu():
    x = RNG.standard_normal((5, 7)).astype(np.float32)
    w = RNG.standard_normal((3, 7)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    y = reference.linear_forward(x, w, b)
    assert_matches(y, x.astype(np.float64) @ w.T.astype(np.float64) + b, "float32_reduction")
    r = reference.relu_forward(y)
    np.testing.assert_array_equal(r, np.where(y > 0, y, 0))
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(reference.relu_backward(dy, r), np.where(r > 0, dy, 0))


def test_every_op_keeps_the_input_dtype():
    for dtype in (np.float32, np.float64):
        x = RNG.standard_normal((2, 4, 7, 7)).astype(dtype)
        w = RNG.standard_normal((4, 2, 3, 3)).astype(dtype)
        b = np.zeros(4, dtype)
        outputs = [
            reference.conv2d_forward(x, w, b, groups=2),
            *reference.conv2d_backward(reference.conv2d_forward(x, w, b, groups=2), x, w, groups=2),
            reference.relu_forward(x),
            *reference.lrn_forward(x),
            reference.maxpool_forward(x)[0],
            reference.maxpool_backward(*reference.maxpool_forward(x), x.shape),
            reference.dropout_forward(x, 0.5, 1, 1)[0],
            *reference.softmax_xent_forward(x.reshape(2, -1), np.array([0, 1])),
        ]
        for out in outputs:
            assert out.dtype == dtype
