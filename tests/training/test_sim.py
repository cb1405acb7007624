"""The trainer is face-agnostic: a whole training step of the tiny network on the Numba face (in
Numba's CUDA simulator here, on a GPU where there is one) against the same step on the reference."""

import numpy as np
import pytest

from alexnet_cuda.archs import TINY
from alexnet_cuda.backends import select_face
from alexnet_cuda.model import Model
from kernels import reference
from kernels.gpu_probe import has_gpu
from kernels.testing import assert_matches

pytestmark = [pytest.mark.gpu, pytest.mark.runs_without_gpu]  # on a GPU by `-m gpu`, in the simulator elsewhere


@pytest.mark.slow
def test_one_training_step_on_the_numba_face_matches_the_reference():
    device, face = select_face("gpu" if has_gpu() else "sim", "numba")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, TINY.input_size, TINY.input_size)).astype(np.float32)
    labels = np.array([0, 2], dtype=np.int32)
    results = {}
    for name, model_face in (("numba", face), ("reference", reference)):
        model = Model(TINY, 3, model_face, seed=0)
        model.set_step(3)
        loss, probs = model.loss(model.forward(model_face.to_device(images), training=True),
                                 model_face.to_device(labels))
        model.backward()
        model.sgd_step(0.1, 0.9, 5e-4)
        results[name] = (float(model_face.to_host(loss)), model.host_arrays("params"), model.host_arrays("velocities"))
    numba_loss, numba_params, numba_velocities = results["numba"]
    reference_loss, reference_params, reference_velocities = results["reference"]
    assert numba_loss == pytest.approx(reference_loss, rel=1e-5)
    for key in reference_params:
        assert_matches(numba_params[key], reference_params[key], "float32_reduction", f"{device} {key}")
        assert_matches(numba_velocities[key], reference_velocities[key], "float32_reduction", f"{device} {key} velocity")
        assert np.any(numba_velocities[key] != 0), key

