"""Bad arguments raise ValueError naming the argument, what was given and what is expected."""

import numpy as np
import pytest

import kernels
from kernels import reference

f32 = np.float32
X = np.zeros((2, 4, 8, 8), f32)
W = np.zeros((6, 2, 3, 3), f32)
B = np.zeros(6, f32)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: reference.conv2d_forward(X[0], W, B), ["x", "4-D", "(4, 8, 8)"]),
        (lambda: reference.conv2d_forward(X, W, B, groups=3), ["groups", "3", "4 input channels"]),
        (lambda: reference.conv2d_forward(X, W, B, groups=1), ["w", "4 input channels per filter"]),
        (lambda: reference.conv2d_forward(X, W, np.zeros(5, f32), groups=2), ["b", "(6,)", "(5,)"]),
        (lambda: reference.conv2d_forward(X.astype(np.int32), W, B, groups=2), ["x", "float32", "int32"]),
        (lambda: reference.conv2d_forward(X.astype(np.float16), W, B, groups=2), ["x", "float16"]),
        (lambda: reference.conv2d_forward(X, W.astype(np.float64), B, groups=2), ["w", "float64", "match x"]),
        (lambda: reference.conv2d_forward(X[:, :, :, ::2], W, B, groups=2), ["x", "C-contiguous"]),
        (lambda: reference.conv2d_forward(X, np.zeros((6, 2, 11, 11), f32), B, groups=2), ["larger than the padded"]),
        (lambda: reference.conv2d_forward(X, W, B, stride=0, groups=2), ["stride", ">= 1", "0"]),
        (lambda: reference.conv2d_forward(X, W, B, pad=-1, groups=2), ["pad", "-1"]),
        (lambda: reference.conv2d_forward(X.tolist(), W, B), ["x", "NumPy", "list"]),
        (lambda: reference.conv2d_backward(np.zeros((2, 6, 5, 5), f32), X, W, groups=2), ["dy", "(2, 6, 6, 6)"]),
        (lambda: reference.linear_forward(np.zeros((3, 5), f32), np.zeros((4, 6), f32), np.zeros(4, f32)), ["w", "5 input features"]),
        (lambda: reference.linear_backward(np.zeros((3, 3), f32), np.zeros((3, 5), f32), np.zeros((4, 5), f32)), ["dy", "(3, 4)"]),
        (lambda: reference.relu_backward(np.zeros(3, f32), np.zeros(4, f32)), ["y", "shape", "(3,)"]),
        (lambda: reference.lrn_forward(X, size=0), ["size", "0"]),
        (lambda: reference.lrn_forward(X, k=0.0), ["k", "> 0"]),
        (lambda: reference.lrn_backward(X, X, X, X[:, :2].copy()), ["scale", "shape"]),
        (lambda: reference.maxpool_forward(X, kernel=9), ["kernel", "9", "8x8"]),
        (lambda: reference.maxpool_backward(np.zeros((2, 4, 3, 3), f32), np.zeros((2, 4, 3, 3), np.int64), X.shape), ["argmax", "int32"]),
        (lambda: reference.maxpool_backward(np.zeros((2, 4, 3, 3), f32), np.zeros((2, 4, 3, 3), np.int32), (2, 5, 8, 8)), ["input_shape"]),
        (lambda: reference.dropout_forward(X, 1.0, 0, 0), ["p", "< 1"]),
        (lambda: reference.dropout_forward(X, 0.5, -1, 0), ["seed", "-1"]),
        (lambda: reference.dropout_forward(X, 0.5, 0, 2**64), ["offset"]),
        (lambda: reference.dropout_backward(X, np.zeros(X.shape, np.int32), 0.5), ["mask", "uint8"]),
        (lambda: reference.softmax_xent_forward(np.zeros((3, 4), f32), np.array([0, 1, 4])), ["labels", "[0, 4)", "4"]),
        (lambda: reference.softmax_xent_forward(np.zeros((3, 4), f32), np.array([0.0, 1.0, 2.0])), ["labels", "integer"]),
        (lambda: reference.softmax_xent_forward(np.zeros((3, 4), f32), np.array([0, 1])), ["labels", "(3,)"]),
        (lambda: reference.sgd_update(B, B, np.zeros(5, f32), 0.1), ["velocity", "(6,)"]),
        (lambda: reference.sgd_update(B, B, B, float("nan")), ["lr", "finite"]),
    ],
)
def test_bad_argument_raises_value_error_naming_it(call, words):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"


def test_load_returns_every_op_of_the_contract():
    face = kernels.load("reference")
    assert face is reference
    for op in kernels.OPS:
        assert callable(getattr(face, op)), op


def test_load_rejects_unknown_face():
    with pytest.raises(ValueError, match=r"unknown kernel face 'tensorflow'.*reference, numba, cuda"):
        kernels.load("tensorflow")


def test_load_cuda_without_gpu_says_what_to_use(monkeypatch):
    monkeypatch.setattr("kernels.gpu_probe.has_gpu", lambda: False)
    with pytest.raises(kernels.FaceUnavailable, match=r"no CUDA device.*'reference'"):
        kernels.load("cuda")


def test_maxpool_backward_checks_the_kernel_and_stride_it_is_told():
    x = np.random.default_rng(0).standard_normal((1, 2, 9, 9)).astype(np.float32)
    y, argmax = reference.maxpool_forward(x, 3, 2)
    dy = np.ones_like(y)
    np.testing.assert_array_equal(reference.maxpool_backward(dy, argmax, x.shape, 3, 2),
                                  reference.maxpool_backward(dy, argmax, x.shape))
    with pytest.raises(ValueError, match="kernel, stride: 3/1 pools 9x9 to 7x7"):
        reference.maxpool_backward(dy, argmax, x.shape, 3, 1)
    with pytest.raises(ValueError, match="give both or neither"):
        reference.maxpool_backward(dy, argmax, x.shape, kernel=3)
