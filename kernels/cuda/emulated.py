"""The `cuda` face run on the CPU: its real .cu sources compiled by g++ against the CUDA stand-in of
kernels/toolchain/emulator.hpp, behind the op contract, on NumPy float32 arrays.

    face = kernels.cuda.emulated.load()        # FaceUnavailable where there is no g++
    loss, probs = face.softmax_xent_forward(face.to_device(logits), labels)

Every contract function is the cuda face's own (the promoted version), launched through the
emulator backend (kernels.toolchain.emulator), so this is how `alexnet-cuda train --device emu` watches
the CUDA C kernels train a network without a GPU. Arrays this face makes sit between guard bands,
so a kernel writing out of bounds fails its launch during training too. Each .cu file is compiled
on its first launch and the library cached (~/.cache/alexnet-cuda/emulator). It is slow next to
the reference (blocks run one after another, each thread a fiber; see README.md for the measured
speed) and fast next to Numba's simulator, which runs each thread as a Python thread.
"""

from __future__ import annotations

import functools

import numpy as np

import kernels.cuda as cuda_face
from kernels import OPS, FaceUnavailable
from kernels.cuda import runtime
from kernels.toolchain import emulator


class EmulatedCudaFace:
    """The op contract of the cuda face, every launch going to one EmulatorBackend."""

    NAME = "cuda (emulated)"
    xp = np
    PROMOTED = cuda_face.PROMOTED

    def __init__(self):
        self.backend = emulator.EmulatorBackend()
        for op in OPS:
            setattr(self, op, self._emulated(getattr(cuda_face, op)))
        self.CANDIDATES = {op: {candidate: self._emulated(launcher) for candidate, launcher in launchers.items()}
                           for op, launchers in cuda_face.CANDIDATES.items()}

    def _emulated(self, function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            with runtime.use_backend(self.backend):
                return function(*args, **kwargs)

        return run

    def to_device(self, array):
        """A guarded C-contiguous copy (a write past either end of it fails the launch that made it)."""
        return self.backend.guarded(array)

    @staticmethod
    def to_host(array):
        return np.asarray(array)


def load() -> EmulatedCudaFace:
    if not emulator.available():
        raise FaceUnavailable(
            "the emulated cuda face compiles the .cu kernels with a C++17 compiler, and g++ was not found (set CXX "
            "to another); use --device cpu for the NumPy reference, or --device sim for the Numba kernels"
        )
    return EmulatedCudaFace()
