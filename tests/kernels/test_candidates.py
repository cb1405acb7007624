"""Every candidate of the measured kernel choice (geometry.candidate_tiles, each face's CANDIDATES) is
held to the contract like every version is: the GEMM-shaped cases of the conformance table, whose
shapes leave partial tiles along every axis, plus two cases that span two 128-wide tiles with a
partial second one, in the CUDA C emulator and Numba's simulator against the reference.

The candidates at a version's default tile are that version's kernels, which test_conformance.py
runs; here run the others, the tiles only the measured choice launches.
"""

import pytest

import kernels.cuda as cuda_face
import kernels.numba as numba_face
from kernels import geometry
from kernels.cuda import runtime as cuda_runtime
from kernels.toolchain import emulator
from tests.kernels.cases import TINY, conv_case, linear_case

WIDE_CASES = [
    *conv_case("132-positions-1x1", 1, 2, 12, 11, 3, 1),  # N·OH·OW = 132: two 128-wide tiles, the second of 4
    *linear_case("130-outputs", 3, 12, 130),  # O = 130: two 128-wide tiles of outputs
]
CASES = [case for case in TINY if case.op in geometry.GEMM_OPS] + WIDE_CASES


def alternatives(face):
    """{op: the candidates only the measured choice launches}: other tiles, and split K."""
    return {op: [c for c in launchers if c.tile != geometry.candidate_tiles(op)[c.version][0] or c.splits > 1]
            for op, launchers in face.CANDIDATES.items()}


# In Numba's simulator every thread costs time, so there the other tiles run at the linear cases and
# the two wide ones (which span two 128-wide tiles), not at every convolution; the emulator runs all.
SIMULATED = [case for case in CASES if case.simulated and (case.op.startswith("linear") or case in WIDE_CASES)]


def runs(face, cases=CASES):
    return [pytest.param(case, candidate, id=f"{case.id}-{candidate}".replace(" ", "-"))
            for case in cases for candidate in alternatives(face)[case.op]]


def test_both_faces_offer_every_declared_candidate_of_their_versions():
    for face in (cuda_face, numba_face):
        assert set(face.CANDIDATES) == set(geometry.GEMM_OPS)
        for op, launchers in face.CANDIDATES.items():
            assert list(launchers) == geometry.candidates(op, face.VERSIONS[op]), (face.NAME, op)
            assert alternatives(face)[op], f"{face.NAME} {op}: no tile beyond the versions' own"


@pytest.fixture(scope="module")
def emulated():
    if not emulator.available():
        pytest.skip("the CUDA C emulator needs g++ (every machine of this project has it)")
    backend = emulator.EmulatorBackend()
    with cuda_runtime.use_backend(backend), cuda_runtime.poisoned_outputs(), cuda_runtime.checked_launches():
        yield backend


@pytest.mark.parametrize(("case", "candidate"), runs(cuda_face))
def test_cuda_candidates_in_the_emulator(emulated, case, candidate):
    args, kwargs = case.inputs()
    actual = case.face_outputs(cuda_face.CANDIDATES[case.op][candidate], emulated.guarded, args, kwargs)
    case.compare(actual, case.reference_outputs(args, kwargs), f"cuda {case.id} {candidate}")


@pytest.fixture(scope="module")
def simulated():
    if numba_face.MODE != "simulator":
        pytest.skip("a GPU is present: the candidates run on it (tests marked gpu)")
    with numba_face.runtime.poisoned_outputs():
        yield numba_face


@pytest.mark.parametrize(("case", "candidate"), runs(numba_face, SIMULATED))
def test_numba_candidates_in_the_simulator(simulated, case, candidate):
    args, kwargs = case.inputs()
    actual = case.face_outputs(simulated.CANDIDATES[case.op][candidate], simulated.to_device, args, kwargs)
    case.compare(actual, case.reference_outputs(args, kwargs), f"numba {case.id} {candidate}")


@pytest.mark.parametrize("block_k", [8, 16])
def test_split_chunks_cover_k_once_with_no_empty_split(block_k):
    """Every split starts on a k-tile boundary, none is empty, and together they cover [0, K) once;
    the count never exceeds what was asked."""
    for k in range(1, 200):
        for asked in (1, 2, 3, 4, 7):
            count, chunk = geometry.split_chunks(k, block_k, asked)
            assert chunk % block_k == 0 and 1 <= count <= asked, (k, asked, count, chunk)
            assert (count - 1) * chunk < k <= count * chunk, (k, asked, count, chunk)


def test_fc6_at_batch_128_splits_as_asked():
    """fc6's forward product at batch 128 (K = 9216) is where the split candidates are meant to help:
    each asked split count is the count launched, so 64 x 64 tiles give 128 x splits blocks."""
    tile = geometry.LINEAR_TILES[3]
    for splits in geometry.LINEAR_SPLITS:
        count, chunk = geometry.split_chunks(9216, tile.block_k, splits)
        assert (count, chunk) == (splits, 9216 // splits)
        assert tile.blocks(128, 4096) * count == 128 * splits
