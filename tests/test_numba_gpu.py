"""The Numba face on a real GPU: CuPy arrays, CuPy's current stream, no host synchronization, and
AlexNet's layer shapes at batch 128 against the NumPy reference (computed in float64).

Every test here is marked `gpu`; tests/conftest.py skips them, with the reason, where no GPU is.
Convolution and linear outputs are sums of up to 387,200 products; they are compared with the
float32_large_reduction row of kernels/testing.py, whose allowance follows each output's summation
length and the tensor's own scale (kernels.testing.conv_terms, linear_terms).

The kernels always run on the whole batch of 128. The forward references run on three sampled
images, and y, LRN and pooling are compared there. The convolutions' backward gets a random dy on
every image, and the float64 reference runs on the whole batch: dw and db sum over all 128 images,
so a kernel that drops any part of that sum (a split-K chunk, a tile) fails, wherever it lies.
"""

import functools
import time

import numpy as np
import pytest

from kernels import reference
from kernels.numba.runtime import poisoned_outputs
from kernels.testing import assert_matches, conv_terms, linear_terms, to_numpy

pytestmark = pytest.mark.gpu

BATCH = 128
SAMPLED = [0, 61, BATCH - 1]  # the images the reference computes
RNG = np.random.default_rng(2012)

CONV_LAYERS = {
    # x shape, w shape, stride, pad, groups
    "conv1": ((BATCH, 3, 227, 227), (96, 3, 11, 11), 4, 0, 1),
    "conv2": ((BATCH, 96, 27, 27), (256, 48, 5, 5), 1, 2, 2),
    "conv3": ((BATCH, 256, 13, 13), (384, 256, 3, 3), 1, 1, 1),
    "conv4": ((BATCH, 384, 13, 13), (384, 192, 3, 3), 1, 1, 2),
    "conv5": ((BATCH, 384, 13, 13), (256, 192, 3, 3), 1, 1, 2),
}
LINEAR_LAYERS = {"fc6": (9216, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000)}


def numba_face():
    import kernels.numba as face

    assert face.MODE == "gpu", f"kernels.numba runs in mode {face.MODE!r} on a machine with a GPU"
    return face


def versions(op):
    import kernels.numba as face

    return [pytest.param(version, id=f"v{version}") for version in face.VERSIONS[op]]


def random(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def assert_sums_match(actual, expected, name, terms):
    """float32_large_reduction for outputs that are sums of `terms` products."""
    assert_matches(to_numpy(actual), expected, "float32_large_reduction", name, terms=terms)


def assert_all_written(*arrays):
    """No element still holds the poison of poisoned_outputs (for outputs compared only in part)."""
    for array in arrays:
        host = to_numpy(array)
        unwritten = np.isnan(host) if host.dtype.kind == "f" else host == np.iinfo(host.dtype).max
        assert not unwritten.any(), f"{int(unwritten.sum())} of {host.size} output elements were never written"


def run(face, op, version, *args, **kwargs):
    with poisoned_outputs():
        result = face.VERSIONS[op][version](*args, **kwargs)
    return result


@functools.cache
def conv_case(layer):
    """Inputs (float32, whole batch), the float64 reference y on SAMPLED, and the float64 reference
    dx, dw, db of a random dy over the whole batch, of one AlexNet convolution, made once per layer."""
    x_shape, w_shape, stride, pad, groups = CONV_LAYERS[layer]
    fan_in = w_shape[1] * w_shape[2] * w_shape[3]
    x, w, b = random(*x_shape), random(*w_shape, scale=fan_in**-0.5), random(w_shape[0])
    w64, b64 = w.astype(np.float64), b.astype(np.float64)
    y = reference.conv2d_forward(x[SAMPLED].astype(np.float64), w64, b64, stride, pad, groups)
    dy = random(BATCH, *y.shape[1:])
    gradients = reference.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w64, stride, pad, groups)
    return (x, w, b, dy), y, gradients


def conv_layer_terms(layer):
    x_shape, w_shape, stride, pad, groups = CONV_LAYERS[layer]
    out = (x_shape[2] + 2 * pad - w_shape[2]) // stride + 1
    return conv_terms(BATCH, x_shape[1], w_shape[0], w_shape[2], w_shape[3], out, out, stride, groups)


@pytest.mark.parametrize("version", versions("conv2d_forward"))
@pytest.mark.parametrize("layer", list(CONV_LAYERS))
def test_conv2d_forward_at_alexnet_shapes(layer, version):
    face = numba_face()
    (x, w, b, _), expected, _ = conv_case(layer)
    _, _, stride, pad, groups = CONV_LAYERS[layer]
    y = run(face, "conv2d_forward", version, face.to_device(x), face.to_device(w), face.to_device(b),
            stride, pad, groups)
    assert isinstance(y, face.xp.ndarray) and y.shape[0] == BATCH
    assert_all_written(y)
    assert_sums_match(to_numpy(y)[SAMPLED], expected, f"{layer} y", conv_layer_terms(layer)["y"])


@pytest.mark.parametrize("version", versions("conv2d_backward"))
@pytest.mark.parametrize("layer", list(CONV_LAYERS))
def test_conv2d_backward_at_alexnet_shapes(layer, version):
    face = numba_face()
    (x, w, _, dy), _, expected = conv_case(layer)
    _, _, stride, pad, groups = CONV_LAYERS[layer]
    gradients = run(face, "conv2d_backward", version, face.to_device(dy), face.to_device(x), face.to_device(w),
                    stride, pad, groups)
    terms = conv_layer_terms(layer)
    for name, actual, wanted in zip(("dx", "dw", "db"), gradients, expected, strict=True):
        assert_sums_match(actual, wanted, f"{layer} {name}", terms[name])


@functools.cache
def linear_case(layer):
    inputs, outputs = LINEAR_LAYERS[layer]
    x, w, b, dy = random(BATCH, inputs), random(outputs, inputs, scale=inputs**-0.5), random(outputs), \
        random(BATCH, outputs)
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    return (x, w, b, dy), reference.linear_forward(x64, w64, b64), reference.linear_backward(dy64, x64, w64)


@pytest.mark.parametrize("version", versions("linear_forward"))
@pytest.mark.parametrize("layer", list(LINEAR_LAYERS))
def test_linear_at_alexnet_shapes(layer, version):
    face = numba_face()
    (x, w, b, dy), expected_y, expected_gradients = linear_case(layer)
    x_d, w_d, b_d, dy_d = (face.to_device(a) for a in (x, w, b, dy))
    terms = linear_terms(BATCH, *LINEAR_LAYERS[layer])
    assert_sums_match(run(face, "linear_forward", version, x_d, w_d, b_d), expected_y, f"{layer} y", terms["y"])
    gradients = run(face, "linear_backward", version, dy_d, x_d, w_d)
    for name, actual, wanted in zip(("dx", "dw", "db"), gradients, expected_gradients, strict=True):
        assert_sums_match(actual, wanted, f"{layer} {name}", terms[name])


@pytest.mark.parametrize("shape", [(BATCH, 96, 55, 55), (BATCH, 256, 27, 27)], ids=["lrn1", "lrn2"])
def test_lrn_at_alexnet_shapes(shape):
    face = numba_face()
    x, dy = random(*shape, scale=10.0), random(*shape)
    with poisoned_outputs():
        y, scale = face.lrn_forward(face.to_device(x))
        dx = face.lrn_backward(face.to_device(dy), face.to_device(x), y, scale)
    assert_all_written(y, scale, dx)
    y, scale, dx = (to_numpy(a)[SAMPLED] for a in (y, scale, dx))
    x64, dy64 = x[SAMPLED].astype(np.float64), dy[SAMPLED].astype(np.float64)
    expected_y, expected_scale = reference.lrn_forward(x64)
    assert_matches(scale, expected_scale, "float32_elementwise", "scale")
    assert_matches(y, expected_y, "float32_elementwise", "y")
    expected_dx = reference.lrn_backward(dy64, x64, y.astype(np.float64), scale.astype(np.float64))
    assert_matches(dx, expected_dx, "float32_elementwise", "dx")


@pytest.mark.parametrize("shape", [(BATCH, 96, 55, 55), (BATCH, 256, 27, 27), (BATCH, 256, 13, 13)],
                         ids=["pool1", "pool2", "pool5"])
def test_maxpool_at_alexnet_shapes(shape):
    face = numba_face()
    x = random(*shape)
    with poisoned_outputs():
        y, argmax = face.maxpool_forward(face.to_device(x), 3, 2)
    assert_all_written(y, argmax)
    expected_y, expected_argmax = reference.maxpool_forward(x[SAMPLED], 3, 2)
    assert_matches(to_numpy(y)[SAMPLED], expected_y, "exact", "y")
    assert_matches(to_numpy(argmax)[SAMPLED], expected_argmax, "exact", "argmax")
    dy = random(*y.shape)
    with poisoned_outputs():
        dx = face.maxpool_backward(face.to_device(dy), argmax, shape, 3, 2)
    assert_all_written(dx)
    expected_dx = reference.maxpool_backward(dy[SAMPLED], expected_argmax, (len(SAMPLED), *shape[1:]))
    assert_matches(to_numpy(dx)[SAMPLED], expected_dx, "float32_elementwise", "dx")


def test_dropout_relu_softmax_sgd_at_alexnet_shapes():
    face = numba_face()
    x = random(BATCH, 4096)
    seed, offset = (1 << 40) + 3, (1 << 33) + 5
    with poisoned_outputs():
        y, mask = face.dropout_forward(face.to_device(x), 0.5, seed, offset)
        relu = face.relu_forward(face.to_device(x))
    expected_y, expected_mask = reference.dropout_forward(x, 0.5, seed, offset)
    np.testing.assert_array_equal(to_numpy(mask), expected_mask)
    assert_matches(y, expected_y, "exact", "dropout y")
    assert_matches(relu, reference.relu_forward(x), "exact", "relu")

    logits, labels = random(BATCH, 1000, scale=3.0), RNG.integers(0, 1000, BATCH)
    with poisoned_outputs():
        loss, probs = face.softmax_xent_forward(face.to_device(logits), face.to_device(labels))
        dlogits = face.softmax_xent_backward(probs, face.to_device(labels))
    expected_loss, expected_probs = reference.softmax_xent_forward(logits, labels)
    assert loss.shape == () and isinstance(loss, face.xp.ndarray)
    assert_matches(loss, expected_loss, "float32_elementwise", "loss")
    assert_matches(probs, expected_probs, "float32_elementwise", "probs")
    assert_matches(dlogits, reference.softmax_xent_backward(expected_probs, labels), "float32_elementwise", "dlogits")

    w, grad, velocity = random(4096, 4096), random(4096, 4096), random(4096, 4096, scale=0.01)
    w_d, grad_d, velocity_d = (face.to_device(a) for a in (w, grad, velocity))
    face.sgd_update(w_d, grad_d, velocity_d, 0.01)
    reference.sgd_update(w, grad, velocity, 0.01)
    assert_matches(w_d, w, "float32_elementwise", "w")
    assert_matches(velocity_d, velocity, "float32_elementwise", "velocity")


SPIN_SOURCE = r"""
extern "C" __global__ void spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""
SPIN_CYCLES = 2_000_000_000  # about a second at the 1.5 - 2 GHz of a data-centre GPU


def test_launches_follow_cupys_stream_without_waiting_for_the_gpu():
    """Queue a kernel that keeps the GPU busy for about a second on a non-blocking CuPy stream, then
    the input of a small network and every op of its forward and part of its backward. If a launch
    synchronized the host, the stream would be idle by the time the launches return; if a kernel
    went to another stream, it would read its input before the input exists and its result would
    differ from the same computation on an idle stream."""
    import cupy

    face = numba_face()
    spin = cupy.RawKernel(SPIN_SOURCE, "spin")
    # Everything is on the device before the spin: a copy from pageable host memory may wait.
    x_host = random(2, 3, 11, 11)
    w, b = face.to_device(random(4, 3, 3, 3)), face.to_device(random(4))
    fc_w, fc_b = face.to_device(random(10, 4 * 2 * 2)), face.to_device(np.zeros(10, np.float32))
    labels = face.to_device(np.arange(2, dtype=np.int32))

    def network(source):
        x = source * 1.0  # queued behind the spin: its values exist only once the spin is over
        y = face.relu_forward(face.conv2d_forward(x, w, b, 2, 1, 1))
        y, _ = face.lrn_forward(y)
        pooled, _ = face.maxpool_forward(y, 3, 2)
        dropped, _ = face.dropout_forward(pooled, 0.5, 7, 11)
        flat = dropped.reshape(2, -1)
        loss, probs = face.softmax_xent_forward(face.linear_forward(flat, fc_w, fc_b), labels)
        _, dw, _ = face.linear_backward(face.softmax_xent_backward(probs, labels), flat, fc_w)
        return loss, dw

    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        source = cupy.asarray(x_host)
        network(source)  # compiles every kernel first, so that compiling is not mistaken for waiting
        stream.synchronize()
        spin((1,), (1,), (np.int64(SPIN_CYCLES),))
        started = time.perf_counter()
        loss, dw = network(source)
        issued = time.perf_counter() - started
        finished = stream.record()
        assert not finished.done, f"the stream was idle {issued:.3f} s after the launches began: something waited"
    stream.synchronize()

    with cupy.cuda.Stream.null:
        expected_loss, expected_dw = network(source)
    cupy.cuda.Stream.null.synchronize()
    assert_matches(loss, expected_loss, "exact", "loss on the busy stream vs on an idle one")
    assert_matches(dw, expected_dw, "exact", "fc dw on the busy stream vs on an idle one")


def test_launch_overhead_report():
    """Reports the host time per launch (python -m kernels.numba.launch_overhead prints the same)."""
    from kernels.numba.launch_overhead import measure

    rows = measure(repeats=50)
    for row in rows:
        print(f"{row.name:30} {row.launches_per_call:3d} kernels {row.microseconds_per_call:8.1f} us/call "
              f"{row.microseconds_per_launch:8.1f} us/launch")
    assert {row.name for row in rows} >= {"conv2d_forward", "sgd_update"}
    assert all(row.launches_per_call >= 1 for row in rows)
