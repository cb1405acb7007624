"""The dropout keep/drop boundary, pinned in every face.

The contract keeps element i when (r_i >> 8)·2^-24 >= p. Random data almost never lands on the
boundary (one word in 2^24), so a face that compares with > instead of >= passes every other test.
Here p is set exactly on element 0's own Philox word, r >> 8 = ceil(p·2^24): element 0 must be
kept; one step of 2^-24 higher, it must be dropped. Words come from the reference's Philox, which
tests/kernels/test_philox.py holds to Random123's published answers.
"""

import contextlib

import numpy as np
import pytest

from kernels import reference
from kernels.contract import dropout_threshold, split_u64
from kernels.reference.philox import philox4x32_10

SEED, OFFSET = (1 << 40) + 2012, (1 << 33) + 5  # both above 2^32: the high key and counter words matter
SHAPE = (3, 7)


def _element_zero_word() -> int:
    """r_0 >> 8: word 0 of Philox block 0 (counter (0, 0, offset)) under key seed."""
    word = philox4x32_10(0, 0, *split_u64(OFFSET), *split_u64(SEED))[0]
    return int(word) >> 8


def _reference():
    return reference.dropout_forward, np.asarray, np.asarray, contextlib.nullcontext()


def _numba():
    import kernels.numba as face

    return face.dropout_forward, face.to_device, face.to_host, contextlib.nullcontext()


def _cuda_emulated():
    from kernels.cuda import runtime as cuda_runtime
    from kernels.toolchain import emulator

    if not emulator.available():
        pytest.fail("the CUDA C emulator needs g++, which every machine of this project has")
    import kernels.cuda as face

    backend = emulator.EmulatorBackend()
    return face.dropout_forward, backend.guarded, np.asarray, cuda_runtime.use_backend(backend)


FACES = {"reference": _reference, "numba": _numba, "cuda-emulated": _cuda_emulated}


@pytest.mark.parametrize("face_name", list(FACES))
def test_element_zero_is_kept_on_its_threshold_and_dropped_just_above(face_name):
    drawn = _element_zero_word()
    assert 0 < drawn < (1 << 24) - 1, "pick another seed: p must stay inside (0, 1) one step either side"
    on_boundary, above = drawn * 2.0**-24, (drawn + 1) * 2.0**-24
    assert dropout_threshold(on_boundary) == drawn and dropout_threshold(above) == drawn + 1
    dropout_forward, to_device, to_host, context = FACES[face_name]()
    x = np.full(SHAPE, 3.0, dtype=np.float32)
    outcomes = {}
    with context:
        for name, p in (("on the boundary", on_boundary), ("just above", above)):
            y, mask = dropout_forward(to_device(x), p, SEED, OFFSET)
            outcomes[name] = (int(to_host(mask).reshape(-1)[0]), float(to_host(y).reshape(-1)[0]))
    assert outcomes["on the boundary"] == (1, np.float32(3.0) * np.float32(1.0 / (1.0 - on_boundary))), (
        f"{face_name}: element 0 with (r >> 8)·2^-24 == p must be kept (the rule is >=): {outcomes}")
    assert outcomes["just above"] == (0, 0.0), f"{face_name}: element 0 below p must be dropped: {outcomes}"

