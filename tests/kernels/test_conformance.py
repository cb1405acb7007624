"""Every face holds to the op contract: one table of cases (tests/kernels/cases.py), run over every
version of every face that can run here, against the NumPy reference in float64.

- the reference face itself (float32 against float64);
- the Numba face in Numba's CUDA simulator;
- the CUDA C face's .cu sources compiled by g++ and run on the CPU emulator
  (kernels/toolchain/emulator.py): guard bands around every array, threads shuffled between
  barriers, argument types checked against each kernel's parameters;
- marked `gpu`: both GPU faces on a GPU at the same cases plus every call of a training step of
  alexnet2012 at batch 128 (benchmarks/gpu_check.sh runs them where a GPU is lent), and the two GPU
  faces against each other.

Outputs a GPU face allocates are poisoned (NaN, or the integer dtype's largest value) before every
launch, so an element a kernel forgets to write fails the comparison.
"""

import numpy as np
import pytest

import kernels
from kernels import GPU_FACES, reference
from kernels.testing import poisoned_outputs, to_numpy
from tests.kernels.cases import REAL, TINY


def _runs(face_module, cases):
    return [pytest.param(case, version, id=f"{case.id}-v{version}")
            for case in cases for version in sorted(face_module.VERSIONS[case.op])]


def _check_kind(outputs, array_type, what):
    """Outputs are arrays of the face's kind; its float outputs are float32 (the reference's float64
    inputs never reach a GPU face)."""
    for output in outputs:
        assert isinstance(output, array_type), f"{what}: {type(output).__name__} is not {array_type.__name__}"
        assert output.dtype != np.float64, f"{what}: a float64 output"


@pytest.mark.parametrize("case", TINY, ids=[case.id for case in TINY])
def test_reference_face(case):
    args, kwargs = case.inputs()
    expected = case.reference_outputs(args, kwargs)
    actual = case.face_outputs(getattr(reference, case.op), reference.to_device, args, kwargs)
    _check_kind(actual, np.ndarray, case.id)
    case.compare(actual, expected, f"reference {case.id}")


import kernels.numba as numba_face  # noqa: E402 (after the reference's tests: it turns the simulator on)


@pytest.fixture(scope="module")
def simulated():
    if numba_face.MODE != "simulator":
        pytest.skip("a GPU is present: the numba face's cases run on it in test_gpu_faces")
    with numba_face.runtime.poisoned_outputs():
        yield numba_face


# Numba's v5 differs from its v4 only in which outputs a thread owns (kernels/numba/gemm.py,
# staged_product), and every simulated thread costs time: v5's 256-thread 128 x 128 blocks took 29 s
# for one split-K backward case on this project's 2-core machine. v4 runs every case; v5 the linear
# ones and three convolutions (padding, more than 64 filters, stride 4 with groups 3), which put every
# lane's runs of rows and columns across partial tiles.
SIMULATED_V5 = {"pad1-nonsquare", "66-filters-1x1", "stride4-groups3-batch1"}


def _simulated(case, version) -> bool:
    if not case.simulated:
        return False
    return version != 5 or case.op.startswith("linear") or case.name in SIMULATED_V5


@pytest.mark.parametrize(("case", "version"), [run for run in _runs(numba_face, TINY) if _simulated(*run.values)])
def test_numba_face_in_the_simulator(simulated, case, version):
    args, kwargs = case.inputs()
    expected = case.reference_outputs(args, kwargs)
    actual = case.face_outputs(simulated.VERSIONS[case.op][version], simulated.to_device, args, kwargs)
    _check_kind(actual, simulated.xp.ndarray, f"{case.id} v{version}")
    case.compare(actual, expected, f"numba {case.id} v{version}")


import kernels.cuda as cuda_face  # noqa: E402
from kernels.cuda import runtime as cuda_runtime  # noqa: E402
from kernels.toolchain import emulator  # noqa: E402


@pytest.fixture(scope="module")
def emulated():
    if not emulator.available():
        pytest.skip("the CUDA C emulator needs g++ (every machine of this project has it)")
    backend = emulator.EmulatorBackend()
    with cuda_runtime.use_backend(backend), cuda_runtime.poisoned_outputs(), cuda_runtime.checked_launches():
        yield backend


@pytest.mark.parametrize(("case", "version"), _runs(cuda_face, TINY))
def test_cuda_face_in_the_emulator(emulated, case, version):
    args, kwargs = case.inputs()
    expected = case.reference_outputs(args, kwargs)
    actual = case.face_outputs(cuda_face.VERSIONS[case.op][version], emulated.guarded, args, kwargs)
    _check_kind(actual, np.ndarray, f"{case.id} v{version}")
    case.compare(actual, expected, f"cuda {case.id} v{version}")


# ------------------------------------------------------------------------------------------------
# On a GPU: both faces, every version, the tiny cases and AlexNet's own shapes
# ------------------------------------------------------------------------------------------------

_inputs_made: dict[str, tuple] = {}
_references: dict[str, tuple] = {}


def _inputs(case):
    """Host inputs, made once per case: the real shapes take seconds to draw. Faces get device
    copies and the reference works on copies, so one set serves every face and version."""
    if case.id not in _inputs_made:
        _inputs_made[case.id] = case.inputs()
    return _inputs_made[case.id]


def _reference(case):
    if case.id not in _references:
        _references[case.id] = case.reference_outputs(*_inputs(case))
    return _references[case.id]


@pytest.fixture(scope="module")
def gpu_faces():
    faces = {name: kernels.load(name) for name in GPU_FACES}
    assert faces["numba"].MODE == "gpu", f"kernels.numba runs in mode {faces['numba'].MODE!r} beside a GPU"
    with faces["cuda"].checked_launches(), poisoned_outputs():
        yield faces


GPU_RUNS = [pytest.param(name, case, version, id=f"{name}-{case.id}-v{version}")
            for name, face in (("cuda", cuda_face), ("numba", numba_face))
            for case in TINY + REAL for version in sorted(face.VERSIONS[case.op])]


@pytest.mark.gpu
@pytest.mark.parametrize(("name", "case", "version"), GPU_RUNS)
def test_gpu_faces(gpu_faces, name, case, version):
    face = gpu_faces[name]
    args, kwargs = _inputs(case)
    actual = case.face_outputs(face.VERSIONS[case.op][version], face.to_device, args, kwargs)
    _check_kind(actual, face.xp.ndarray, f"{name} {case.id} v{version}")
    case.compare(actual, _reference(case), f"{name} {case.id} v{version}")


CROSS = [case for case in TINY + REAL if not case.face_kwargs]


@pytest.mark.gpu
@pytest.mark.parametrize("case", CROSS, ids=[case.id for case in CROSS])
def test_gpu_faces_agree(gpu_faces, case):
    """The promoted CUDA C and Numba kernels on the same inputs, to the same tolerances."""
    args, kwargs = _inputs(case)
    from_cuda = case.face_outputs(getattr(gpu_faces["cuda"], case.op), gpu_faces["cuda"].to_device, args, kwargs)
    from_numba = case.face_outputs(getattr(gpu_faces["numba"], case.op), gpu_faces["numba"].to_device, args, kwargs)
    case.compare(from_cuda, [to_numpy(a) for a in from_numba], f"{case.id} cuda vs numba")
