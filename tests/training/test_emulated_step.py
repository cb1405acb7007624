"""The trainer's model on the CUDA C face, its .cu sources run by the CPU emulator
(kernels.cuda.emulated): two whole training steps of the tiny network (every layer type:
convolution with groups, ReLU, LRN, max pool, dropout, linear, softmax cross-entropy, SGD with
momentum), every output poisoned and every launch checked, against the same steps on the NumPy
reference: the losses, and every parameter and momentum buffer after the second step, as
tests/training/test_sim.py does for the Numba face in its simulator (tests/training/test_emulated.py
follows the losses of a longer run).

The op tests call each op once on fresh inputs; this chains them as training does: outputs feed
the next op, layers of the same shape follow each other, saved activations are read back in the
backward pass, and the second step's SGD starts from the first step's momentum.
"""

import numpy as np
import pytest

from alexnet_cuda.archs import TINY
from alexnet_cuda.model import Model
from kernels import reference
from kernels.cuda import emulated
from kernels.cuda import runtime as cuda_runtime
from kernels.testing import assert_matches, poisoned_outputs
from kernels.toolchain import emulator

pytestmark = pytest.mark.skipif(
    not emulator.available(), reason="the CUDA C emulator needs g++ (every machine of this project has it)"
)

STEPS = 2
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


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
    with poisoned_outputs(), cuda_runtime.checked_launches():
        cuda_losses, cuda_params, cuda_velocities = _train(emulated.load(), images, labels)
    reference_losses, reference_params, reference_velocities = _train(reference, images, labels)
    assert cuda_losses == pytest.approx(reference_losses, rel=1e-5)
    assert cuda_losses[1] != reference_losses[0], "the second step saw the same weights as the first"
    for key in reference_params:
        assert_matches(cuda_params[key], reference_params[key], "float32_reduction", f"{key} after {STEPS} steps")
        assert_matches(cuda_velocities[key], reference_velocities[key], "float32_reduction", f"{key} velocity")
        assert np.any(cuda_velocities[key] != 0), key
