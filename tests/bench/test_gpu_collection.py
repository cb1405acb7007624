"""What a GPU machine's `pytest -m gpu tests` collects, checked here without a GPU.

- pytest imports every test module before it filters by mark, so one module-level import of a
  package the GPU machine lacks stops the whole collection, CUDA C tests included. Optional
  packages (scikit-learn, PyTorch, pytest-xdist) are blocked below, and collection must succeed.
- The conformance suite's GPU runs of both faces, and the trainer's step on the Numba face (written
  to run compiled on a GPU too; it still runs here, in the simulator): `-m gpu` must select them.
- benchmarks/gpu_check.sh asks for its order (ALEXNET_CUDA_GPU_TEST_ORDER): the promoted kernel
  versions first, then the trainer, then the benchmarks' machinery, then the other versions, so that
  a run cut off by its time limit loses what matters least.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("sklearn", "torch", "xdist")

COLLECT = f"""
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (absent on this machine)", name=name)
        return None

sys.meta_path.insert(0, Missing())
import pytest
sys.exit(pytest.main(["--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-p", "no:xdist", "tests"]))
"""


@pytest.fixture(scope="module")
def collected():
    done = subprocess.run([sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ALEXNET_CUDA_GPU_TEST_ORDER="promoted-first", PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_collection_survives_missing_optional_packages(collected):
    assert len(collected) > 300
    assert any(line.startswith("tests/kernels/test_cuda_gpu.py::") for line in collected)


def test_gpu_runs_select_both_faces_and_the_trainer(collected):
    modules = {line.split("::")[0] for line in collected}
    assert {"tests/kernels/test_conformance.py", "tests/training/test_sim.py", "tests/kernels/test_numba_gpu.py"} <= modules
    faces = {line.split("test_gpu_faces[")[1].split("-")[0] for line in collected if "test_gpu_faces[" in line}
    assert faces == {"cuda", "numba"}


def test_promoted_versions_then_the_trainer_then_the_rest(collected):
    position = {line: index for index, line in enumerate(collected)}

    def where(fragment):
        matches = [index for line, index in position.items() if fragment in line]
        assert matches, fragment
        return matches

    promoted = where("test_gpu_faces[cuda-conv2d_backward-conv1-v3]") + where(
        "test_gpu_faces[numba-conv2d_backward-conv1-v3]") + where("test_gpu_faces[numba-linear_forward-fc6-v3]")
    trainer = where("tests/training/test_sim.py::")
    machinery = where("tests/bench/test_kernel_bench.py::")
    exhaustive = where("test_gpu_faces[cuda-conv2d_backward-conv1-v1]") + where(
        "test_gpu_faces[numba-conv2d_backward-conv1-v1]") + where("test_gpu_faces[numba-conv2d_backward-66-per-group-v1]")
    assert max(promoted) < min(trainer) <= max(trainer) < min(machinery) <= max(machinery) < min(exhaustive)
