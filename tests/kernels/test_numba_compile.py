"""Every Numba kernel compiles to PTX for sm_90 through NVVM, in a process without the simulator.

The simulator runs kernels as Python, so it accepts code the CUDA target rejects; these tests compile
what the GPU would run, assemble it for sm_90, and show that the check fails on a kernel the
simulator runs happily.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import kernels.numba as face

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, **environment) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter at the repository root, without this process's simulator choice."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(environment)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def test_every_kernel_compiles_and_assembles_for_sm_90():
    run = python("""
        import sys
        from kernels.toolchain.numba_compile import main
        sys.exit(main(["--resources"]))
    """)
    assert run.returncode == 0, run.stdout + run.stderr
    count = len(face.compile_targets())
    assert f"{count} of {count} kernel targets compiled for sm_90 with numba-cuda" in run.stdout, run.stdout
    assert "FAILED" not in run.stdout
    assert run.stdout.count(" 0/0 bytes spilled") == count, run.stdout  # no register spills anywhere


def _has_mlir() -> bool:
    run = python("import numba_cuda_mlir")
    return run.returncode == 0


@pytest.mark.skipif(not _has_mlir(), reason='numba-cuda-mlir is not installed (pip install -e ".[mlir]", Python 3.11+)')
def test_every_kernel_compiles_and_assembles_for_sm_90_with_numba_cuda_mlir():
    """The same kernel sources through numba-cuda-mlir, the successor compiler."""
    run = python("""
        import sys
        from kernels.toolchain.numba_compile import main
        sys.exit(main(["--resources", "--compiler", "mlir"]))
    """)
    assert run.returncode == 0, run.stdout + run.stderr
    count = len(face.compile_targets())
    assert run.stdout.startswith("compiler: mlir (numba-cuda-mlir "), run.stdout
    assert f"{count} of {count} kernel targets compiled for sm_90 with mlir" in run.stdout, run.stdout
    assert run.stdout.count(" 0/0 bytes spilled") == count, run.stdout


def test_an_unknown_compiler_is_named_with_the_choices():
    run = python("import kernels.numba", ALEXNET_CUDA_NUMBA_COMPILE_ONLY="1", ALEXNET_CUDA_NUMBA_COMPILER="nvcc")
    assert run.returncode != 0
    assert "ALEXNET_CUDA_NUMBA_COMPILER='nvcc': expected one of numba-cuda, mlir" in run.stderr


def test_the_simulator_ignores_the_compiler_choice():
    run = python("import kernels.numba.compiler as c; print(c.COMPILER)",
                 NUMBA_ENABLE_CUDASIM="1", ALEXNET_CUDA_NUMBA_COMPILER="mlir")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "numba-cuda simulator"


# NumPy 2.5 removed np.row_stack. Where NumPy is older, deleting it makes this process look like 2.5
# to numba-cuda, so the tests below check the compatibility step on every Python; under NumPy 2.5
# (Python 3.12+) the deletion does nothing and the compile test above runs the real thing.
AS_NUMPY_2_5 = """
    import numpy as np
    if hasattr(np, "row_stack"):
        delattr(np, "row_stack")
        np.__all__ = [name for name in np.__all__ if name != "row_stack"]  # `from numpy import *` too
"""


def test_numpy_2_5_compat_step_is_still_needed():
    """Fails once numba-cuda guards its row_stack overload: then remove kernels/numba/compat.py."""
    run = python(textwrap.dedent(AS_NUMPY_2_5) + textwrap.dedent("""
        import importlib
        try:
            importlib.import_module("numba.cuda.np.arrayobj")
        except AttributeError as error:
            print("fails without the step:", error)
        else:
            print("imports without the step")
    """), ALEXNET_CUDA_NUMBA_COMPILE_ONLY="1", NUMBA_ENABLE_CUDASIM="0")
    assert run.returncode == 0, run.stderr
    assert "fails without the step: module 'numpy' has no attribute 'row_stack'" in run.stdout, (
        run.stdout + "\nnumba-cuda imports its array registry without np.row_stack now: "
        "kernels/numba/compat.py can go")


def test_numpy_2_5_compat_step_compiles_and_leaves_numpy_as_it_was():
    run = python(textwrap.dedent(AS_NUMPY_2_5) + textwrap.dedent("""
        import kernels.numba as face
        from kernels.numba import compat
        from kernels.toolchain.numba_compile import compile_ptx
        ptx = compile_ptx(face.compile_targets()[0])
        print("compiled", len(ptx) > 0)
        print("row_stack", hasattr(np, "row_stack"))
        print("vstack", np.vstack.__module__, np.vstack((np.ones(2), np.zeros(2))).shape)
    """), ALEXNET_CUDA_NUMBA_COMPILE_ONLY="1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == ["compiled True", "row_stack False", "vstack numpy (2, 2)"]


BROKEN = """
    import numpy as np
    from numba import cuda

    @cuda.jit
    def norm_kernel(x, y):
        # np.linalg runs in the simulator (it is NumPy there) but has no CUDA implementation.
        y[0] = np.linalg.norm(x)
"""


def test_the_check_fails_on_a_kernel_that_the_simulator_runs():
    namespace = {}
    exec(textwrap.dedent(BROKEN), namespace)  # in this process: the simulator (or a GPU)
    if face.MODE == "simulator":
        x = np.arange(4, dtype=np.float32)
        y = np.zeros(1, np.float32)
        namespace["norm_kernel"][1, 1](x, y)
        assert y[0] == pytest.approx(np.linalg.norm(x))

    run = python(textwrap.dedent(BROKEN) + textwrap.dedent("""
        import sys
        import kernels.numba as face
        from kernels.toolchain import numba_compile as compile_check
        from kernels.numba.runtime import kernel_target

        broken = kernel_target("norm", 1, norm_kernel, "void(float32[::1], float32[::1])")
        mistyped = kernel_target("relu_forward", 1, face.relu.relu_forward_kernel,
                                 "void(float32[:, ::1], float32[::1])")  # a 2-D x where the kernel wants 1-D
        for target in (broken, mistyped):
            try:
                compile_check.compile_ptx(target)
            except Exception as error:
                print("raised:", target.kernel, type(error).__name__)
        face.compile_targets = lambda: [broken, mistyped]  # main() then checks just these two
        sys.exit(compile_check.main([]))
    """), ALEXNET_CUDA_NUMBA_COMPILE_ONLY="1")
    assert "raised: norm_kernel TypingError" in run.stdout, run.stdout + run.stderr
    assert "raised: relu_forward_kernel TypingError" in run.stdout, run.stdout + run.stderr
    assert run.returncode == 1, run.stdout + run.stderr
    assert "0 of 2 kernel targets compiled" in run.stdout


def test_compile_ptx_refuses_the_simulator():
    if face.MODE != "simulator":
        pytest.skip("this process runs the real CUDA target")
    from kernels.toolchain.numba_compile import compile_ptx

    with pytest.raises(RuntimeError, match="ALEXNET_CUDA_NUMBA_COMPILE_ONLY"):
        compile_ptx(face.compile_targets()[0])
