"""Which Numba CUDA target this process uses, decided once, before `numba.cuda` is first imported.

MODE is one of
- "simulator": Numba's CUDA simulator; kernels run as Python threads on NumPy arrays. Chosen when
  no CUDA GPU is present or NUMBA_ENABLE_CUDASIM=1 is set.
- "gpu": a real CUDA GPU; kernels take CuPy arrays and launch on CuPy's current stream.
- "compile": no GPU, but ALEXNET_CUDA_NUMBA_COMPILE_ONLY=1 asked for the real CUDA target so that
  the kernels can be compiled to PTX (`python -m kernels.toolchain.numba_compile`); nothing can launch.

Numba reads NUMBA_ENABLE_CUDASIM when `numba` itself is imported and picks the simulator or the
driver when `numba.cuda` is imported. If only `numba` has been imported so far, the setting is
re-read (numba.core.config.reload_config); once `numba.cuda` has been imported, its choice stands,
and a real-driver `numba.cuda` on a machine without a GPU makes this face unavailable.
"""

from __future__ import annotations

import os
import sys

from kernels import FaceUnavailable
from kernels.gpu_probe import has_gpu

COMPILE_ONLY_ENV = "ALEXNET_CUDA_NUMBA_COMPILE_ONLY"
SIMULATOR_ENV = "NUMBA_ENABLE_CUDASIM"
COMPILER_ENV = "ALEXNET_CUDA_NUMBA_COMPILER"
COMPILERS = ("numba-cuda", "mlir")  # what each is: kernels.numba.compiler


def requested_compiler() -> str:
    """The compiler ALEXNET_CUDA_NUMBA_COMPILER asks for for the real CUDA target (default numba-cuda);
    ValueError names the variable and the choices when it asks for something else."""
    name = os.environ.get(COMPILER_ENV, "").strip() or "numba-cuda"
    if name not in COMPILERS:
        raise ValueError(f"{COMPILER_ENV}={name!r}: expected one of {', '.join(COMPILERS)}")
    return name


def _simulator_env_set() -> bool:
    value = os.environ.get(SIMULATOR_ENV, "0").strip()
    return value not in ("", "0")


def _loaded_cuda_is_simulator(cuda_module) -> bool:
    # numba.cuda re-exports its jit decorator from the simulator package when it chose the simulator.
    return getattr(cuda_module.jit, "__module__", "").startswith("numba.cuda.simulator")


def _set_simulator(enabled: bool) -> None:
    os.environ[SIMULATOR_ENV] = "1" if enabled else "0"
    if "numba.core.config" in sys.modules:
        sys.modules["numba.core.config"].reload_config()


def choose_mode() -> str:
    compile_only = os.environ.get(COMPILE_ONLY_ENV) == "1"
    gpu = has_gpu()
    if "numba.cuda" in sys.modules:
        if _loaded_cuda_is_simulator(sys.modules["numba.cuda"]):
            if compile_only:
                raise FaceUnavailable(
                    f"{COMPILE_ONLY_ENV}=1 asks for Numba's real CUDA target, but numba.cuda was already "
                    "imported with the simulator in this process; compile in a fresh process "
                    "(python -m kernels.toolchain.numba_compile does)"
                )
            return "simulator"
        if gpu:
            return "gpu"
        if compile_only:
            return "compile"
        raise FaceUnavailable(
            "the 'numba' face needs Numba's CUDA simulator on this machine (no CUDA GPU was found), but "
            "numba.cuda was already imported without it, and Numba cannot switch afterwards. Set "
            f"{SIMULATOR_ENV}=1 in the environment, or import kernels.numba before anything imports "
            "numba.cuda; use the 'reference' face if neither is possible."
        )
    if compile_only:
        _set_simulator(False)
        return "gpu" if gpu else "compile"
    if _simulator_env_set() or not gpu:
        _set_simulator(True)
        return "simulator"
    return "gpu"


MODE = choose_mode()
