"""The trainer's model on the CUDA C face, its .cu sources run by the CPU emulator: two whole
training steps of the tiny network (every layer type: convolution with groups, ReLU, LRN, max
pool, dropout, linear, softmax cross-entropy, SGD with momentum) against the same steps on the
NumPy reference, as tests/test_train_sim.py does for the Numba face in its simulator.

The op tests call each op once on fresh inputs; this chains them as training does: outputs feed
the next op, layers of the same shape follow each other, saved activations are read back in the
backward pass, and the second step's SGD starts from the first step's momentum.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from alexnet_cuda.archs import TINY
from alexnet_cuda.model import Model
from kernels import OPS, reference
from kernels.cuda import _runtime, emulator
from kernels.testing import assert_matches

pytestmark = pytest.mark.skipif(
    not emulator.available(), reason="the CUDA C emulator needs g++ (every machine of this project has it)"
)

STEPS = 2
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


class _GuardedNumpy:
    """NumPy whose zeros() come from the emulator's guarded allocations (the momentum buffers)."""

    def __init__(self, backend):
        self._backend = backend

    def zeros(self, shape, dtype=np.float32):
        return self._backend.guarded(np.zeros(shape, dtype))

    def __getattr__(self, name):
        return getattr(np, name)


def _emulated_face(backend):
    import kernels.cuda as face

    return SimpleNamespace(NAME="cuda (emulated)", xp=_GuardedNumpy(backend), to_device=backend.guarded,
                           to_host=np.asarray, **{op: getattr(face, op) for op in OPS})


def _train(face, images, labels):
    """STEPS training steps from seed 0; returns (losses, params, velocities) on the host."""
    model = Model(TINY, 3, face, seed=0)
    losses = []
    for step in range(STEPS):
        model.set_step(step)
        loss, _ = model.loss(model.forward(face.to_device(images), training=True), face.to_device(labels))
        losses.append(float(face.to_host(loss)))
        model.backward()
        model.sgd_step(LR, MOMENTUM, WEIGHT_DECAY)
    return losses, model.host_arrays("params"), model.host_arrays("velocities")


def test_training_steps_on_the_emulated_cuda_face_match_the_reference():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, TINY.input_size, TINY.input_size)).astype(np.float32)
    labels = np.array([0, 2], dtype=np.int32)
    backend = emulator.EmulatorBackend()
    with _runtime.use_backend(backend), _runtime.poisoned_outputs(), _runtime.checked_launches():
        cuda_losses, cuda_params, cuda_velocities = _train(_emulated_face(backend), images, labels)
    reference_losses, reference_params, reference_velocities = _train(reference, images, labels)
    assert cuda_losses == pytest.approx(reference_losses, rel=1e-5)
    assert cuda_losses[1] != reference_losses[0], "the second step saw the same weights as the first"
    for key in reference_params:
        assert_matches(cuda_params[key], reference_params[key], "float32_reduction", f"{key} after {STEPS} steps")
        assert_matches(cuda_velocities[key], reference_velocities[key], "float32_reduction", f"{key} velocity")
        assert np.any(cuda_velocities[key] != 0), key
