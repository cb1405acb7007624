"""Find out whether this machine has a CUDA GPU without importing CuPy or Numba.

The probe talks to the driver library directly through ctypes, so it is cheap, never initialises a
CUDA context in CuPy or Numba, and lets `kernels.numba` decide whether to turn on Numba's CUDA
simulator before Numba is first imported.
"""

from __future__ import annotations

import ctypes
import functools
import os

CUDA_SUCCESS = 0


@functools.cache
def gpu_count() -> int:
    """Number of CUDA devices the driver reports; 0 when there is no driver or no device.

    Setting ALEXNET_CUDA_NO_GPU=1 makes the probe report none, for testing the CPU paths on a GPU
    machine.
    """
    if os.environ.get("ALEXNET_CUDA_NO_GPU") == "1":
        return 0
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    if driver.cuInit(0) != CUDA_SUCCESS:
        return 0
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != CUDA_SUCCESS:
        return 0
    return count.value


def has_gpu() -> bool:
    return gpu_count() > 0
