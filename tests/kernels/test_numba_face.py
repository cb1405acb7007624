"""The Numba face's own machinery: what the conformance suite (test_conformance.py, where every
version of every op runs against the reference) does not show: the promoted versions, the compile
targets the launchers must match, the poisoned outputs, argument errors, and Philox under Numba's
integer typing.

Without a GPU the kernels run in Numba's CUDA simulator; on a GPU machine the compiled kernels on
CuPy arrays.
"""

import numpy as np
import pytest

import kernels.numba as face
from kernels import OPS
from kernels.numba.runtime import poisoned_outputs
from kernels.testing import to_numpy

RNG = np.random.default_rng(1998)


def random(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def on_face(*arrays):
    return [face.to_device(a) for a in arrays]


def test_filter_gradient_case_splits_its_reduction():
    """The conformance table's groups2-splitk-float4 case really exercises the split-K path of v2
    and v3 (more than one split)."""
    from kernels.geometry import CONV_TILES, conv_filter_gemm, split_k

    m, columns, positions = conv_filter_gemm(2, 8, 4, 6, 6, 3, 3, 2)
    for version in (2, 3):
        tile = CONV_TILES[version]
        splits, _ = split_k(positions, tile.block_k, tile.blocks(m, columns) * 2)
        assert splits > 1


def test_philox_under_numba_typing_matches_the_reference():
    """The simulator runs Philox with NumPy's integer rules; the GPU runs it with Numba's. Compiling
    the same function for the CPU with numba.njit checks Numba's typing of every cast and shift."""
    import numba

    from kernels.numba.dropout import philox4x32_10
    from kernels.numba.runtime import python_function
    from kernels.reference.philox import philox4x32_10 as reference_philox

    compiled = numba.njit(python_function(philox4x32_10))
    for counter, key in [((0, 0, 0, 0), (0, 0)), ((2**32 - 1,) * 4, (2**32 - 1,) * 2), ((5, 1, 7, 9), (123, 456))]:
        words = compiled(*(np.uint32(v) for v in counter), *(np.uint32(v) for v in key))
        assert [int(v) for v in words] == [int(v) for v in reference_philox(*counter, *key)]


def test_maxpool_gather_window():
    from kernels.geometry import pool_gather_window

    assert pool_gather_window((55, 55), (27, 27), 3, 2) == (3, 3, 2, 2)
    assert pool_gather_window((55, 55), (27, 27), 2, 2) == (2, 2, 2, 2)  # 2/2 also pools 55 to 27
    assert pool_gather_window((55, 55), (27, 27)) == (29, 29, 1, 1)
    x = face.to_device(RNG.integers(0, 4, (1, 1, 9, 9)).astype(np.float32))
    _, argmax = face.maxpool_forward(x, 3, 2)
    with pytest.raises(ValueError, match="kernel, stride"):
        face.maxpool_backward(face.to_device(random(*argmax.shape)), argmax, x.shape, kernel=3, stride=1)


# ---------------------------------------------------------------------------------------------
# The face as a whole
# ---------------------------------------------------------------------------------------------


def test_every_contract_function_is_its_promoted_version():
    assert face.NAME == "numba"
    assert set(face.PROMOTED) == set(OPS) == set(face.VERSIONS)
    for op in OPS:
        assert getattr(face, op) is face.VERSIONS[op][face.PROMOTED[op]]


def test_every_version_has_compile_targets():
    targets = face.compile_targets()
    covered = {(t.op, t.version) for t in targets}
    for op, launchers in face.VERSIONS.items():
        for version in launchers:
            assert (op, version) in covered, f"{op} v{version} declares no kernel to compile"
    for target in targets:
        assert target.kernel == face.runtime.python_function(target.dispatcher).__name__


def test_poisoned_outputs_are_not_valid_values():
    from kernels.numba.runtime import empty

    with poisoned_outputs():
        floats, ints, bytes_ = empty((3,)), empty((3,), np.int32), empty((3,), np.uint8)
    assert np.isnan(to_numpy(floats)).all()
    assert (to_numpy(ints) == np.iinfo(np.int32).max).all() and (to_numpy(bytes_) == 255).all()


def test_to_device_copies_and_returns_the_face_kind():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    on = face.to_device(a)
    assert isinstance(on, face.xp.ndarray)
    a[0, 0] = 99
    assert to_numpy(face.to_host(on))[0, 0] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: face.relu_forward(face.to_device(np.zeros(3))), "float32"),
        (lambda: face.relu_forward([1.0, 2.0]), "array"),
        (lambda: face.conv2d_forward(*on_face(random(1, 3, 5, 5), random(2, 2, 3, 3), random(2))), "channels"),
        (lambda: face.dropout_forward(face.to_device(random(4)), 1.0, 0, 0), "p"),
    ],
    ids=["float64", "list", "conv-channels", "dropout-p"],
)
def test_bad_arguments_raise_value_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_launchers_pass_the_types_their_compile_targets_declare():
    """The PTX compile check compiles each kernel for its KernelTarget signature; a launcher passing
    other types (an int64 for an int32, a strided array) would make the GPU compile a variant that
    no check has seen. Every launch of every version (and candidate) of every op, at tiny shapes, is typed here as
    Numba types it at launch and compared with the kernel's declared signatures. The calls are those
    of the GPU-only launch-overhead report (benchmarks.launch_overhead), which this also runs."""
    import numba
    from numba.core.sigutils import normalize_signature

    from benchmarks.launch_overhead import tiny_calls
    from kernels.numba.runtime import python_function, recorded_launches

    declared = {}
    for target in face.compile_targets():
        arguments, _ = normalize_signature(target.signature)
        declared.setdefault(python_function(target.dispatcher), set()).add(tuple(arguments))

    calls = tiny_calls(face)
    assert set(calls) == set(OPS)
    with recorded_launches() as launches:
        for op, call in calls.items():
            # every version, and every candidate of the measured kernel choice (kernels/choice.py)
            launchers = {f"v{v}": f for v, f in face.VERSIONS[op].items()}
            launchers.update({str(c): f for c, f in face.CANDIDATES.get(op, {}).items()})
            for name, launcher in launchers.items():
                setattr(face, op, launcher)
                try:
                    before = len(launches)
                    call()
                    assert len(launches) > before, f"{op} {name} launched nothing"
                finally:
                    setattr(face, op, face.VERSIONS[op][face.PROMOTED[op]])
    kernels_launched = set()
    for kernel, arguments in launches:
        function = python_function(kernel)
        kernels_launched.add(function)
        types = tuple(numba.typeof(a if isinstance(a, np.generic) else to_numpy(a)) for a in arguments)
        assert types in declared[function], f"{function.__name__} launched with {types}, declared {declared[function]}"
    contract_kernels = {python_function(t.dispatcher) for t in face.compile_targets() if t.op in OPS}
    assert kernels_launched == contract_kernels
