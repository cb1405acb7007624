"""How kernels.numba chooses the simulator, the GPU or compile-only, each in a fresh process."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kernels.gpu_probe import has_gpu

ROOT = Path(__file__).resolve().parents[2]
no_gpu_only = pytest.mark.skipif(has_gpu(), reason="checks the choice made on a machine without a GPU")


def python(code: str, **environment) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(environment)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


RELU_ON_THE_FACE = """
    import numpy as np
    import kernels
    face = kernels.load("numba")
    y = face.to_host(face.relu_forward(face.to_device(np.array([-1.0, 2.0], np.float32))))
    print(face.MODE, y.tolist())
"""


@no_gpu_only
def test_without_a_gpu_the_face_runs_in_the_simulator():
    run = python(RELU_ON_THE_FACE)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["simulator", "[0.0,", "2.0]"]


def test_numba_enable_cudasim_forces_the_simulator():
    run = python(RELU_ON_THE_FACE, NUMBA_ENABLE_CUDASIM="1")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("simulator ")


@no_gpu_only
def test_numba_imported_first_is_still_switched_to_the_simulator():
    run = python("import numba\n" + textwrap.dedent(RELU_ON_THE_FACE))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("simulator ")


@no_gpu_only
def test_numba_cuda_imported_without_the_simulator_makes_the_face_unavailable():
    run = python("""
        import numba.cuda
        import kernels
        try:
            kernels.load("numba")
        except kernels.FaceUnavailable as error:
            print("unavailable:", error)
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("unavailable:")
    assert "NUMBA_ENABLE_CUDASIM=1" in run.stdout and "reference" in run.stdout


@no_gpu_only
def test_compile_only_mode_compiles_but_refuses_to_launch():
    run = python("""
        import numpy as np
        import kernels
        import kernels.numba as face
        from kernels.toolchain.numba_compile import compile_ptx
        print(face.MODE, len(compile_ptx(face.compile_targets()[0])) > 0)
        try:
            face.to_device(np.zeros(2, np.float32))
        except kernels.FaceUnavailable as error:
            print("refused:", error)
    """, ALEXNET_CUDA_NUMBA_COMPILE_ONLY="1")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "compile True"
    assert lines[1].startswith("refused:") and "ALEXNET_CUDA_NUMBA_COMPILE_ONLY" in lines[1]
