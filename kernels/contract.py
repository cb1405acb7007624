"""Argument checks and shape arithmetic shared by every face of the op contract.

Each face builds one `ArraySpec` (which array type and float dtypes it takes) and calls the
`check_*` function of an op before doing any work. A bad argument raises ValueError naming the
argument, what was given and what was expected, so a mistake reads the same in every face.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

FLOAT32 = (np.dtype(np.float32),)
FLOAT32_64 = (np.dtype(np.float32), np.dtype(np.float64))
UINT64_LIMIT = 1 << 64
DROPOUT_BITS = 24  # the mask rule compares the top 24 bits of a Philox word with p


@dataclass(frozen=True)
class ArraySpec:
    """What one face accepts: an array type (NumPy or CuPy) and its float dtypes."""

    array_type: type
    dtypes: tuple[np.dtype, ...]
    kind: str  # how a user names the array type in a message: "NumPy", "CuPy"


def _describe(a) -> str:
    return f"{type(a).__module__}.{type(a).__name__}"


def check_array(spec: ArraySpec, name: str, a, layout: str, *, dtypes=None):
    """Check type, rank, dtype and contiguity of array `name`; layout reads like "(N, C, H, W)"."""
    ndim = len([axis for axis in layout.strip("()").split(",") if axis.strip()])
    if not isinstance(a, spec.array_type):
        raise ValueError(f"{name}: expected a {spec.kind} array {layout}, got {_describe(a)}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array {layout}, got shape {tuple(a.shape)}")
    allowed = spec.dtypes if dtypes is None else dtypes
    if a.dtype not in allowed:
        names = " or ".join(str(d) for d in allowed)
        raise ValueError(f"{name}: expected dtype {names}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array; make a contiguous copy of it first")


def check_same_dtype(name: str, a, reference_name: str, reference) -> None:
    if a.dtype != reference.dtype:
        raise ValueError(f"{name}: expected dtype {reference.dtype} to match {reference_name}, got {a.dtype}")


def check_shape(name: str, a, expected: tuple[int, ...], why: str) -> None:
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)} ({why}), got {tuple(a.shape)}")


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}: expected an integer {bound}, got {value}")
    return value


def check_real(name: str, value, *, minimum=None, minimum_inclusive=True, below=None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite real number, got {value!r}")
    value = float(value)
    if minimum is not None and (value < minimum or (not minimum_inclusive and value == minimum)):
        relation = ">=" if minimum_inclusive else ">"
        raise ValueError(f"{name}: expected a number {relation} {minimum}, got {value}")
    if below is not None and value >= below:
        raise ValueError(f"{name}: expected a number < {below}, got {value}")
    return value


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a cross-correlation along one axis: (size + 2*pad - kernel)//stride + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def strided(start: int, count: int, stride: int) -> slice:
    """The slice start, start + stride, ..., taking `count` elements: one window offset of all outputs."""
    return slice(start, start + stride * (count - 1) + 1, stride)


# ---------------------------------------------------------------------------------------------
# One check per op. Each returns what the face needs next (output shapes, normalised scalars).
# ---------------------------------------------------------------------------------------------


def _check_conv_geometry(spec, x, w, stride, pad, groups):
    check_array(spec, "x", x, "(N, C, H, W)")
    check_array(spec, "w", w, "(F, C/groups, KH, KW)")
    check_same_dtype("w", w, "x", x)
    stride = check_int("stride", stride, 1)
    pad = check_int("pad", pad, 0)
    groups = check_int("groups", groups, 1)
    n, c, h, wd = x.shape
    f, c_per_group, kh, kw = w.shape
    if c % groups:
        raise ValueError(f"groups: {groups} does not divide the {c} input channels of x; choose a divisor of {c}")
    if f % groups:
        raise ValueError(f"groups: {groups} does not divide the {f} filters of w; choose a divisor of {f}")
    if c_per_group != c // groups:
        raise ValueError(
            f"w: expected {c // groups} input channels per filter (x has {c} channels in {groups} groups), "
            f"got w of shape {tuple(w.shape)}"
        )
    if kh > h + 2 * pad or kw > wd + 2 * pad:
        raise ValueError(
            f"w: kernel {kh}x{kw} is larger than the padded input {h + 2 * pad}x{wd + 2 * pad} "
            f"(x is {h}x{wd}, pad {pad}); use a smaller kernel or more padding"
        )
    out_shape = (n, f, conv_output_size(h, kh, stride, pad), conv_output_size(wd, kw, stride, pad))
    return stride, pad, groups, out_shape


def check_conv2d_forward(spec, x, w, b, stride, pad, groups):
    """Returns (stride, pad, groups, output_shape)."""
    stride, pad, groups, out_shape = _check_conv_geometry(spec, x, w, stride, pad, groups)
    check_array(spec, "b", b, "(F,)")
    check_same_dtype("b", b, "x", x)
    check_shape("b", b, (w.shape[0],), "one bias per filter of w")
    return stride, pad, groups, out_shape


def check_conv2d_backward(spec, dy, x, w, stride, pad, groups):
    """Returns (stride, pad, groups, output_shape)."""
    stride, pad, groups, out_shape = _check_conv_geometry(spec, x, w, stride, pad, groups)
    check_array(spec, "dy", dy, "(N, F, OH, OW)")
    check_same_dtype("dy", dy, "x", x)
    check_shape("dy", dy, out_shape, "the output shape of the forward convolution")
    return stride, pad, groups, out_shape


def check_linear_forward(spec, x, w, b):
    """Returns the output shape (N, O)."""
    check_array(spec, "x", x, "(N, I)")
    check_array(spec, "w", w, "(O, I)")
    check_array(spec, "b", b, "(O,)")
    check_same_dtype("w", w, "x", x)
    check_same_dtype("b", b, "x", x)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w: expected {x.shape[1]} input features to match x {tuple(x.shape)}, got {tuple(w.shape)}")
    check_shape("b", b, (w.shape[0],), "one bias per output of w")
    return (x.shape[0], w.shape[0])


def check_linear_backward(spec, dy, x, w):
    check_array(spec, "dy", dy, "(N, O)")
    check_array(spec, "x", x, "(N, I)")
    check_array(spec, "w", w, "(O, I)")
    check_same_dtype("x", x, "dy", dy)
    check_same_dtype("w", w, "dy", dy)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w: expected {x.shape[1]} input features to match x {tuple(x.shape)}, got {tuple(w.shape)}")
    check_shape("dy", dy, (x.shape[0], w.shape[0]), "the output shape of the forward layer")


def check_elementwise(spec, named_arrays):
    """Float arrays of any rank that must agree in shape and dtype with the first one."""
    (first_name, first), *rest = named_arrays
    layout = _layout_of(first)
    check_array(spec, first_name, first, layout)
    for name, a in rest:
        check_array(spec, name, a, layout)
        check_same_dtype(name, a, first_name, first)
        check_shape(name, a, first.shape, f"the shape of {first_name}")


def check_dropout_mask(spec, mask, dy):
    check_array(spec, "mask", mask, _layout_of(dy), dtypes=(np.dtype(np.uint8),))
    check_shape("mask", mask, dy.shape, "the shape of dy")


def check_lrn_params(size, alpha, beta, k):
    """Returns (size, alpha, beta, k) as (int, float, float, float)."""
    size = check_int("size", size, 1)
    alpha = check_real("alpha", alpha, minimum=0.0)
    beta = check_real("beta", beta)
    k = check_real("k", k, minimum=0.0, minimum_inclusive=False)
    return size, alpha, beta, k


def check_lrn_forward(spec, x, size, alpha, beta, k):
    check_array(spec, "x", x, "(N, C, H, W)")
    return check_lrn_params(size, alpha, beta, k)


def check_lrn_backward(spec, dy, x, y, scale, size, alpha, beta, k):
    check_array(spec, "x", x, "(N, C, H, W)")
    for name, a in (("dy", dy), ("y", y), ("scale", scale)):
        check_array(spec, name, a, "(N, C, H, W)")
        check_same_dtype(name, a, "x", x)
        check_shape(name, a, x.shape, "the shape of x")
    return check_lrn_params(size, alpha, beta, k)


def check_maxpool_forward(spec, x, kernel, stride):
    """Returns (kernel, stride, output_shape)."""
    check_array(spec, "x", x, "(N, C, H, W)")
    kernel = check_int("kernel", kernel, 1)
    stride = check_int("stride", stride, 1)
    n, c, h, w = x.shape
    if kernel > h or kernel > w:
        raise ValueError(f"kernel: {kernel} is larger than the input plane {h}x{w}; pooling has no padding")
    return kernel, stride, (n, c, pool_output_size(h, kernel, stride), pool_output_size(w, kernel, stride))


def check_maxpool_backward(spec, dy, argmax, input_shape, kernel=None, stride=None):
    """Returns (input_shape as four ints, kernel, stride); kernel and stride stay None when not given.

    They are optional because argmax already says where each gradient goes; a GPU face that gathers
    per input uses them to bound its search (see geometry.pool_gather_window).
    """
    check_array(spec, "dy", dy, "(N, C, OH, OW)")
    check_array(spec, "argmax", argmax, "(N, C, OH, OW)", dtypes=(np.dtype(np.int32),))
    check_shape("argmax", argmax, dy.shape, "the shape of dy")
    try:
        input_shape = tuple(check_int("input_shape", d, 1) for d in input_shape)
    except TypeError:
        raise ValueError(f"input_shape: expected a tuple (N, C, H, W), got {input_shape!r}") from None
    if len(input_shape) != 4 or input_shape[:2] != tuple(dy.shape[:2]):
        raise ValueError(
            f"input_shape: expected (N, C, H, W) with N, C = {tuple(dy.shape[:2])} from dy, got {input_shape}"
        )
    if (kernel is None) != (stride is None):
        raise ValueError(f"kernel, stride: give both or neither, got kernel={kernel!r}, stride={stride!r}")
    if kernel is not None:
        kernel = check_int("kernel", kernel, 1)
        stride = check_int("stride", stride, 1)
        height, width = input_shape[2:]
        pooled = (pool_output_size(height, kernel, stride), pool_output_size(width, kernel, stride))
        if pooled != tuple(dy.shape[2:]):
            raise ValueError(
                f"kernel, stride: {kernel}/{stride} pools {height}x{width} to {pooled[0]}x{pooled[1]}, "
                f"but dy is {dy.shape[2]}x{dy.shape[3]}; pass the forward's kernel and stride"
            )
    return input_shape, kernel, stride


def check_dropout_params(p, seed, offset):
    """Returns (p, seed, offset)."""
    p = check_real("p", p, minimum=0.0, below=1.0)
    seed = check_int("seed", seed, 0, UINT64_LIMIT - 1)
    offset = check_int("offset", offset, 0, UINT64_LIMIT - 1)
    return p, seed, offset


def dropout_threshold(p: float) -> int:
    """The integer form of the mask rule: keep iff (r >> 8) >= dropout_threshold(p).

    (r >> 8)·2^-24 >= p is exact in integers as (r >> 8) >= ceil(p·2^24); every face compares
    integers, so no face's float rounding of p can flip a mask bit.
    """
    return math.ceil(p * (1 << DROPOUT_BITS))


def dropout_scale(p: float) -> float:
    """Inverted dropout multiplies kept elements by 1/(1 - p)."""
    return 1.0 / (1.0 - p)


def split_u64(value: int) -> tuple[int, int]:
    """(low 32 bits, high 32 bits) of a 64-bit unsigned integer."""
    return value & 0xFFFFFFFF, value >> 32


def check_softmax_xent_forward(spec, logits, labels):
    check_array(spec, "logits", logits, "(N, K)")
    _check_labels(spec, labels, logits.shape[0])


def check_softmax_xent_backward(spec, probs, labels):
    check_array(spec, "probs", probs, "(N, K)")
    _check_labels(spec, labels, probs.shape[0])


def _check_labels(spec, labels, n):
    if not isinstance(labels, spec.array_type):
        raise ValueError(f"labels: expected a {spec.kind} integer array (N,), got {_describe(labels)}")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels: expected shape ({n},), one label per row, got {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected an integer dtype, got {labels.dtype}")


def check_label_range(labels_min: int, labels_max: int, classes: int) -> None:
    if labels_min < 0 or labels_max >= classes:
        raise ValueError(f"labels: expected values in [0, {classes}), got values in [{labels_min}, {labels_max}]")


def check_sgd_update(spec, w, grad, velocity, lr, momentum, weight_decay):
    """Returns (lr, momentum, weight_decay) as floats."""
    check_array(spec, "w", w, _layout_of(w))
    for name, a in (("grad", grad), ("velocity", velocity)):
        check_array(spec, name, a, _layout_of(w))
        check_same_dtype(name, a, "w", w)
        check_shape(name, a, w.shape, "the shape of w")
    lr = check_real("lr", lr, minimum=0.0)
    momentum = check_real("momentum", momentum, minimum=0.0)
    weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
    return lr, momentum, weight_decay


# augment_crop, the data loader's kernel outside the op contract (kernels/reference/augment.py).
MAX_AUGMENT_OUTPUTS = 65_535  # augment_crop's outputs: the y extent of its grid (geometry.augment_grid)


def check_augment_crop(xp, images, params, scale, bias, size: int) -> int:
    """Shapes, dtypes and contiguity of augment_crop's arguments (arrays of module `xp`); returns n."""
    expected = [
        ("images", images, np.uint8, 4), ("params", params, np.int32, 2), ("scale", scale, np.float32, 1),
        ("bias", bias, np.float32, 2),
    ]
    for name, array, dtype, rank in expected:
        if not isinstance(array, xp.ndarray) or array.dtype != dtype or array.ndim != rank:
            raise ValueError(f"augment_crop: {name} must be a {rank}-D {np.dtype(dtype).name} {xp.__name__} array, "
                             f"got {type(array).__name__} {getattr(array, 'dtype', '')} {getattr(array, 'shape', '')}")
        if not array.flags.c_contiguous:
            raise ValueError(f"augment_crop: {name} must be C-contiguous")
    n = params.shape[0]
    if images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"augment_crop: images must be (batch, R, R, 3), got {images.shape}")
    if params.shape != (n, 4) or bias.shape != (n, 3) or scale.shape != (3,):
        raise ValueError(f"augment_crop: params (n, 4), bias (n, 3) and scale (3,) expected, got {params.shape}, "
                         f"{bias.shape} and {scale.shape}")
    if not 1 <= size <= images.shape[1]:
        raise ValueError(f"augment_crop: size {size} must lie in [1, {images.shape[1]}]")
    if not 1 <= n <= MAX_AUGMENT_OUTPUTS:
        raise ValueError(f"augment_crop: {n} outputs; a launch makes 1 to {MAX_AUGMENT_OUTPUTS}")
    return n


def check_augment_params(params: np.ndarray, batch: int, resize: int, size: int) -> None:
    """The ranges the kernels rely on, on a host copy of params: every read stays inside images."""
    source, top, left, flip = (params[:, k] for k in range(4))
    problems = []
    if len(params) and (source.min() < 0 or source.max() >= batch):
        problems.append(f"source outside [0, {batch})")
    if len(params) and (min(top.min(), left.min()) < 0 or max(top.max(), left.max()) > resize - size):
        problems.append(f"a crop corner outside [0, {resize - size}]")
    if len(params) and not np.isin(flip, (0, 1)).all():
        problems.append("flip not 0 or 1")
    if problems:
        raise ValueError(f"augment_crop: params with {', '.join(problems)}")


def _layout_of(a) -> str:
    """A layout string with the rank of `a`, for arrays whose rank the contract leaves open."""
    ndim = getattr(a, "ndim", 1)
    return "(" + ", ".join(f"d{i}" for i in range(max(ndim, 1))) + ")"


NUMPY_SPEC = ArraySpec(np.ndarray, FLOAT32_64, "NumPy")
