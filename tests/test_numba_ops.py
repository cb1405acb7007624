"""Every version of every op of the Numba face against the NumPy reference, at tiny shapes.

Without a GPU the kernels run in Numba's CUDA simulator (about a millisecond per thread, so the
shapes are small); on a GPU machine the same tests run the compiled kernels on CuPy arrays.
Outputs are poisoned (NaN, or the integer dtype's largest value) before every launch, so an element
a kernel forgets to write fails the comparison. Shapes are chosen to be multiples of no tile size
(16 for v2, 64 for v3), with stride 4, padding, groups 2 and 3, batch 1 and one channel among them.
"""

import numpy as np
import pytest

import kernels.numba as face
from kernels import OPS, reference
from kernels.numba.runtime import poisoned_outputs
from kernels.testing import assert_matches, to_numpy

RNG = np.random.default_rng(1998)

pytestmark = [pytest.mark.gpu, pytest.mark.runs_without_gpu]  # compiled on a GPU by `-m gpu`, simulated elsewhere


def versions(op):
    return [pytest.param(version, id=f"v{version}") for version in face.VERSIONS[op]]


def random(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def on_face(*arrays):
    return [face.to_device(a) for a in arrays]


def run(op, version, *args, **kwargs):
    with poisoned_outputs():
        return face.VERSIONS[op][version](*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------

CONV_CASES = [
    # x shape, w shape, stride, pad, groups
    pytest.param((2, 3, 6, 5), (4, 3, 3, 3), 1, 1, 1, id="pad1-nonsquare"),
    pytest.param((1, 6, 9, 9), (3, 2, 3, 3), 4, 1, 3, id="stride4-groups3-batch1"),
    pytest.param((1, 1, 5, 5), (2, 1, 5, 5), 1, 2, 1, id="one-channel-pad2"),
    pytest.param((2, 4, 6, 6), (4, 2, 3, 3), 1, 1, 2, id="groups2-splitk"),
]
# Products with more than 64 rows or columns (two v3 tiles, five v2 tiles): the forward's filters;
# the data gradient's channels and the filter gradient's weight columns. (66 filters in a backward
# test would cost 66 bias-reduction blocks, ~25 s in the simulator, for nothing the others miss.)
CONV_FORWARD_CASES = [*CONV_CASES, pytest.param((1, 2, 3, 3), (66, 2, 1, 1), 1, 0, 1, id="66-filters-1x1")]
CONV_BACKWARD_CASES = [*CONV_CASES, pytest.param((1, 66, 2, 2), (2, 66, 1, 1), 1, 0, 1, id="66-channels-1x1")]
# 132 positions: three split-K chunks in v2 and v3, so a lost middle chunk shows (groups2-splitk has two).
CONV_BACKWARD_CASES.append(pytest.param((1, 1, 12, 11), (1, 1, 1, 1), 1, 0, 1, id="three-splits"))


@pytest.mark.parametrize("version", versions("conv2d_forward"))
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad", "groups"), CONV_FORWARD_CASES)
def test_conv2d_forward(version, x_shape, w_shape, stride, pad, groups):
    x, w, b = random(*x_shape), random(*w_shape), random(w_shape[0])
    y = run("conv2d_forward", version, *on_face(x, w, b), stride, pad, groups)
    assert_matches(y, reference.conv2d_forward(x, w, b, stride, pad, groups), "float32_reduction", "y")


@pytest.mark.parametrize("version", versions("conv2d_backward"))
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "pad", "groups"), CONV_BACKWARD_CASES)
def test_conv2d_backward(version, x_shape, w_shape, stride, pad, groups):
    x, w = random(*x_shape), random(*w_shape)
    dy = random(*reference.conv2d_forward(x, w, np.zeros(w_shape[0], np.float32), stride, pad, groups).shape)
    gradients = run("conv2d_backward", version, *on_face(dy, x, w), stride, pad, groups)
    expected = reference.conv2d_backward(dy, x, w, stride, pad, groups)
    for name, actual, wanted in zip(("dx", "dw", "db"), gradients, expected, strict=True):
        assert_matches(actual, wanted, "float32_reduction", name)


def test_filter_gradient_case_splits_its_reduction():
    """The groups2-splitk case really exercises the split-K path of v2 and v3 (more than one split)."""
    from kernels.geometry import CONV_TILES, conv_filter_gemm, split_k

    m, columns, positions = conv_filter_gemm(2, 4, 4, 6, 6, 3, 3, 2)
    for version in (2, 3):
        tile = CONV_TILES[version]
        splits, _ = split_k(positions, tile.block_k, tile.blocks(m, columns) * 2)
        assert splits > 1


# ---------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------

LINEAR_CASES = [
    pytest.param(3, 20, 17, id="3x20->17"),  # two 16-wide tiles along I and O
    pytest.param(1, 5, 1, id="batch1-one-output"),
    pytest.param(2, 9, 70, id="70-outputs"),  # two 64-wide tiles along O
]


@pytest.mark.parametrize("version", versions("linear_forward"))
@pytest.mark.parametrize(("batch", "inputs", "outputs"), LINEAR_CASES)
def test_linear_forward(version, batch, inputs, outputs):
    x, w, b = random(batch, inputs), random(outputs, inputs), random(outputs)
    y = run("linear_forward", version, *on_face(x, w, b))
    assert_matches(y, reference.linear_forward(x, w, b), "float32_reduction", "y")


@pytest.mark.parametrize("version", versions("linear_backward"))
@pytest.mark.parametrize(("batch", "inputs", "outputs"), LINEAR_CASES)
def test_linear_backward(version, batch, inputs, outputs):
    dy, x, w = random(batch, outputs), random(batch, inputs), random(outputs, inputs)
    gradients = run("linear_backward", version, *on_face(dy, x, w))
    for name, actual, wanted in zip(("dx", "dw", "db"), gradients, reference.linear_backward(dy, x, w), strict=True):
        assert_matches(actual, wanted, "float32_reduction", name)


# ---------------------------------------------------------------------------------------------
# Elementwise: ReLU, SGD
# ---------------------------------------------------------------------------------------------

ELEMENTWISE_SHAPES = [pytest.param((3, 5, 7), id="105"), pytest.param((300,), id="300-two-blocks")]


@pytest.mark.parametrize("version", versions("relu_forward"))
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_relu_forward(version, shape):
    x = random(*shape)
    assert_matches(run("relu_forward", version, *on_face(x)), reference.relu_forward(x), "exact")


@pytest.mark.parametrize("version", versions("relu_backward"))
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_relu_backward(version, shape):
    dy, y = random(*shape), reference.relu_forward(random(*shape))
    assert_matches(run("relu_backward", version, *on_face(dy, y)), reference.relu_backward(dy, y), "exact")


@pytest.mark.parametrize("version", versions("sgd_update"))
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_sgd_update_in_place(version, shape):
    w, grad, velocity = random(*shape), random(*shape), random(*shape)
    w_face, grad_face, velocity_face = on_face(w, grad, velocity)
    assert run("sgd_update", version, w_face, grad_face, velocity_face, 0.01, momentum=0.9, weight_decay=5e-4) is None
    reference.sgd_update(w, grad, velocity, 0.01, momentum=0.9, weight_decay=5e-4)
    assert_matches(w_face, w, "float32_elementwise", "w")
    assert_matches(velocity_face, velocity, "float32_elementwise", "velocity")
    assert_matches(grad_face, grad, "exact", "grad (unchanged)")


# ---------------------------------------------------------------------------------------------
# Dropout: masks bit for bit
# ---------------------------------------------------------------------------------------------

DROPOUT_CASES = [
    pytest.param((3, 5, 7), 0.5, 0, 0, id="105-seed0"),
    pytest.param((3, 5, 7), 0.3, (7 << 32) + 9, (3 << 32) + 11, id="seed-offset-over-2^32"),
    pytest.param((2, 550), 0.5, 20120101, 2**64 - 1, id="1100-offset-2^64-1"),
    pytest.param((4, 9), 0.999, 2**64 - 1, 5, id="p0.999"),
    pytest.param((1, 6), 0.0, 42, 1, id="p0"),
]


@pytest.mark.parametrize("version", versions("dropout_forward"))
@pytest.mark.parametrize(("shape", "p", "seed", "offset"), DROPOUT_CASES)
def test_dropout_forward_masks_are_bit_identical(version, shape, p, seed, offset):
    x = random(*shape)
    y, mask = run("dropout_forward", version, *on_face(x), p, seed, offset)
    expected_y, expected_mask = reference.dropout_forward(x, p, seed, offset)
    assert to_numpy(mask).dtype == np.uint8
    np.testing.assert_array_equal(to_numpy(mask), expected_mask)
    assert_matches(y, expected_y, "exact", "y")


@pytest.mark.parametrize("version", versions("dropout_backward"))
def test_dropout_backward(version):
    dy = random(6, 7)
    mask = reference.dropout_mask(dy.shape, 0.4, 9, 3)
    dx = run("dropout_backward", version, *on_face(dy, mask), 0.4)
    assert_matches(dx, reference.dropout_backward(dy, mask, 0.4), "exact", "dx")


def test_philox_under_numba_typing_matches_the_reference():
    """The simulator runs Philox with NumPy's integer rules; the GPU runs it with Numba's. Compiling
    the same function for the CPU with numba.njit checks Numba's typing of every cast and shift."""
    import numba

    from kernels.numba.dropout import philox4x32_10
    from kernels.numba.targets import python_function
    from kernels.reference.philox import philox4x32_10 as reference_philox

    compiled = numba.njit(python_function(philox4x32_10))
    for counter, key in [((0, 0, 0, 0), (0, 0)), ((2**32 - 1,) * 4, (2**32 - 1,) * 2), ((5, 1, 7, 9), (123, 456))]:
        words = compiled(*(np.uint32(v) for v in counter), *(np.uint32(v) for v in key))
        assert [int(v) for v in words] == [int(v) for v in reference_philox(*counter, *key)]


# ---------------------------------------------------------------------------------------------
# LRN
# ---------------------------------------------------------------------------------------------

LRN_CASES = [
    pytest.param((2, 7, 3, 4), {}, id="defaults"),
    pytest.param((1, 6, 2, 3), dict(size=3, alpha=0.1, beta=0.75, k=1.5), id="strong-size3"),
    pytest.param((1, 5, 3, 2), dict(size=4, alpha=0.5, beta=0.6, k=1.0), id="even-size"),
    pytest.param((2, 1, 3, 3), dict(size=5, alpha=0.2), id="one-channel"),
]


@pytest.mark.parametrize("version", versions("lrn_forward"))
@pytest.mark.parametrize(("shape", "params"), LRN_CASES)
def test_lrn_forward(version, shape, params):
    x = random(*shape)
    y, scale = run("lrn_forward", version, *on_face(x), **params)
    expected_y, expected_scale = reference.lrn_forward(x, **params)
    assert_matches(scale, expected_scale, "float32_elementwise", "scale")
    assert_matches(y, expected_y, "float32_elementwise", "y")


@pytest.mark.parametrize("version", versions("lrn_backward"))
@pytest.mark.parametrize(("shape", "params"), LRN_CASES)
def test_lrn_backward(version, shape, params):
    x, dy = random(*shape), random(*shape)
    y, scale = reference.lrn_forward(x, **params)
    dx = run("lrn_backward", version, *on_face(dy, x, y, scale), **params)
    assert_matches(dx, reference.lrn_backward(dy, x, y, scale, **params), "float32_elementwise", "dx")


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------

POOL_CASES = [
    pytest.param((2, 3, 9, 8), 3, 2, id="3/2-overlapping"),
    pytest.param((1, 2, 8, 8), 2, 2, id="2/2"),
    pytest.param((1, 1, 6, 7), 3, 1, id="3/1-one-channel"),
]


def tied_input(shape):
    """Small integers: most windows hold ties, which must go to the first in row-major order."""
    return RNG.integers(0, 4, shape).astype(np.float32)


@pytest.mark.parametrize("version", versions("maxpool_forward"))
@pytest.mark.parametrize(("shape", "kernel", "stride"), POOL_CASES)
def test_maxpool_forward_with_ties(version, shape, kernel, stride):
    x = tied_input(shape)
    y, argmax = run("maxpool_forward", version, *on_face(x), kernel, stride)
    expected_y, expected_argmax = reference.maxpool_forward(x, kernel, stride)
    assert_matches(y, expected_y, "exact", "y")
    assert to_numpy(argmax).dtype == np.int32
    assert_matches(argmax, expected_argmax, "exact", "argmax")


@pytest.mark.parametrize("version", versions("maxpool_backward"))
@pytest.mark.parametrize(("shape", "kernel", "stride"), POOL_CASES)
@pytest.mark.parametrize("told", [True, False], ids=["told", "safe-window"])
def test_maxpool_backward(version, shape, kernel, stride, told):
    """Told the forward's kernel and stride, the gather uses the exact window; not told, the safe
    wider one from the shapes alone. Both must give the reference's dx."""
    x = tied_input(shape)
    _, argmax = face.maxpool_forward(face.to_device(x), kernel, stride)
    _, expected_argmax = reference.maxpool_forward(x, kernel, stride)
    dy = random(*expected_argmax.shape)
    keywords = dict(kernel=kernel, stride=stride) if told else {}
    dx = run("maxpool_backward", version, face.to_device(dy), argmax, x.shape, **keywords)
    assert_matches(dx, reference.maxpool_backward(dy, expected_argmax, x.shape), "float32_elementwise", "dx")


def test_maxpool_gather_window():
    from kernels.geometry import pool_gather_window

    assert pool_gather_window((55, 55), (27, 27), 3, 2) == (3, 3, 2, 2)
    assert pool_gather_window((55, 55), (27, 27), 2, 2) == (2, 2, 2, 2)  # 2/2 also pools 55 to 27
    assert pool_gather_window((55, 55), (27, 27)) == (29, 29, 1, 1)
    x = face.to_device(tied_input((1, 1, 9, 9)))
    _, argmax = face.maxpool_forward(x, 3, 2)
    with pytest.raises(ValueError, match="kernel, stride"):
        face.maxpool_backward(face.to_device(random(*argmax.shape)), argmax, x.shape, kernel=3, stride=1)


# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy
# ---------------------------------------------------------------------------------------------

XENT_CASES = [
    pytest.param(3, 13, 1.0, np.int64, id="3x13-int64"),
    pytest.param(2, 300, 30.0, np.int32, id="2x300-large-logits-int32"),
    pytest.param(1, 1, 1.0, np.int64, id="one-class"),
]


@pytest.mark.parametrize("version", versions("softmax_xent_forward"))
@pytest.mark.parametrize(("rows", "classes", "scale", "label_dtype"), XENT_CASES)
def test_softmax_xent_forward(version, rows, classes, scale, label_dtype):
    logits = random(rows, classes, scale=scale)
    labels = RNG.integers(0, classes, rows).astype(label_dtype)
    loss, probs = run("softmax_xent_forward", version, *on_face(logits, labels))
    expected_loss, expected_probs = reference.softmax_xent_forward(logits, labels)
    assert loss.shape == () and isinstance(loss, type(probs))
    assert_matches(loss, expected_loss, "float32_elementwise", "loss")
    assert_matches(probs, expected_probs, "float32_elementwise", "probs")


@pytest.mark.parametrize("version", versions("softmax_xent_backward"))
@pytest.mark.parametrize(("rows", "classes", "scale", "label_dtype"), XENT_CASES)
def test_softmax_xent_backward(version, rows, classes, scale, label_dtype):
    _, probs = reference.softmax_xent_forward(random(rows, classes, scale=scale), np.zeros(rows, np.int64))
    labels = RNG.integers(0, classes, rows).astype(label_dtype)
    dlogits = run("softmax_xent_backward", version, *on_face(probs, labels))
    assert_matches(dlogits, reference.softmax_xent_backward(probs, labels), "float32_elementwise", "dlogits")


# ---------------------------------------------------------------------------------------------
# The face as a whole
# ---------------------------------------------------------------------------------------------


def test_every_contract_function_is_its_promoted_version():
    assert face.NAME == "numba"
    assert set(face.PROMOTED) == set(OPS) == set(face.VERSIONS)
    for op in OPS:
        assert getattr(face, op) is face.VERSIONS[op][face.PROMOTED[op]]


def test_every_version_has_compile_targets():
    targets = face.compile_targets()
    covered = {(t.op, t.version) for t in targets}
    for op, launchers in face.VERSIONS.items():
        for version in launchers:
            assert (op, version) in covered, f"{op} v{version} declares no kernel to compile"
    for target in targets:
        assert target.kernel == face.targets.python_function(target.dispatcher).__name__


def test_poisoned_outputs_are_not_valid_values():
    from kernels.numba.runtime import empty

    with poisoned_outputs():
        floats, ints, bytes_ = empty((3,)), empty((3,), np.int32), empty((3,), np.uint8)
    assert np.isnan(to_numpy(floats)).all()
    assert (to_numpy(ints) == np.iinfo(np.int32).max).all() and (to_numpy(bytes_) == 255).all()


def test_to_device_copies_and_returns_the_face_kind():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    on = face.to_device(a)
    assert isinstance(on, face.xp.ndarray)
    a[0, 0] = 99
    assert to_numpy(face.to_host(on))[0, 0] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: face.relu_forward(face.to_device(np.zeros(3))), "float32"),
        (lambda: face.relu_forward([1.0, 2.0]), "array"),
        (lambda: face.conv2d_forward(*on_face(random(1, 3, 5, 5), random(2, 2, 3, 3), random(2))), "channels"),
        (lambda: face.dropout_forward(face.to_device(random(4)), 1.0, 0, 0), "p"),
    ],
    ids=["float64", "list", "conv-channels", "dropout-p"],
)
def test_bad_arguments_raise_value_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_launchers_pass_the_types_their_compile_targets_declare():
    """The PTX compile check compiles each kernel for its KernelTarget signature; a launcher passing
    other types (an int64 for an int32, a strided array) would make the GPU compile a variant that
    no check has seen. Every launch of every version of every op, at tiny shapes, is typed here as
    Numba types it at launch and compared with the kernel's declared signatures. The calls are those
    of the GPU-only launch-overhead report (kernels.numba.launch_overhead), which this also runs."""
    import numba
    from numba.core.sigutils import normalize_signature

    from kernels.numba.launch_overhead import tiny_calls
    from kernels.numba.runtime import recorded_launches
    from kernels.numba.targets import python_function

    declared = {}
    for target in face.compile_targets():
        arguments, _ = normalize_signature(target.signature)
        declared.setdefault(python_function(target.dispatcher), set()).add(tuple(arguments))

    calls = tiny_calls(face)
    assert set(calls) == set(OPS)
    with recorded_launches() as launches:
        for op, call in calls.items():
            for version, launcher in face.VERSIONS[op].items():
                setattr(face, op, launcher)
                try:
                    before = len(launches)
                    call()
                    assert len(launches) > before, f"{op} v{version} launched nothing"
                finally:
                    setattr(face, op, face.VERSIONS[op][face.PROMOTED[op]])
    kernels_launched = set()
    for kernel, arguments in launches:
        function = python_function(kernel)
        kernels_launched.add(function)
        types = tuple(numba.typeof(a if isinstance(a, np.generic) else to_numpy(a)) for a in arguments)
        assert types in declared[function], f"{function.__name__} launched with {types}, declared {declared[function]}"
    contract_kernels = {python_function(t.dispatcher) for t in face.compile_targets() if t.op in OPS}
    assert kernels_launched == contract_kernels
