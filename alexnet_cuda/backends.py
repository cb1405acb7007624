"""Which kernels do the work: `--device auto|cpu|sim|emu|gpu` and `--kernels cuda|numba` to a face
module, which the trainer and the loaders are handed (the names come from kernels.DEVICES and
GPU_FACES)."""

from __future__ import annotations

import os
from types import ModuleType

import kernels
from kernels.gpu_probe import has_gpu

DEVICES = ("auto", *kernels.DEVICES)  # --device: auto picks gpu where there is one, else cpu
GPU_FACES = kernels.GPU_FACES  # --kernels


class DeviceError(Exception):
    """The device asked for cannot run here; the message says what to use instead."""


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise DeviceError(f"--device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "auto":
        return "gpu" if has_gpu() else "cpu"
    if device == "gpu" and not has_gpu():
        raise DeviceError("--device gpu: no CUDA GPU was found on this machine; use --device cpu (NumPy) or sim "
                          "(Numba's CUDA simulator)")
    return device


def select_face(device: str, kernel_face: str = "cuda") -> tuple[str, ModuleType]:
    """Returns (resolved device, face module)."""
    device = resolve_device(device)
    if kernel_face not in GPU_FACES:
        raise DeviceError(f"--kernels {kernel_face!r}: expected one of {', '.join(GPU_FACES)}")
    try:
        if device == "cpu":
            return device, kernels.load("reference")
        if device == "sim":
            # The simulator must be chosen before Numba is first imported.
            os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
            return device, kernels.load("numba")
        if device == "emu":
            if kernel_face != "cuda":
                raise DeviceError(f"--device emu runs the cuda face's CUDA C on the CPU; --kernels {kernel_face} "
                                  "has no emulator: use --device sim for the Numba kernels")
            from kernels.cuda import emulated

            return device, emulated.load()
        return device, kernels.load(kernel_face)
    except (kernels.FaceUnavailable, ImportError) as error:
        raise DeviceError(str(error)) from error
