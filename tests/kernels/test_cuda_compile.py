"""Every .cu file under kernels/cuda/ compiles with NVRTC for sm_80 and sm_90, without a GPU.

Files are found by glob, so a .cu added by anyone (the loaders' augment.cu, say) is covered
without editing this test. Kernels the cuda face declares (compile_targets) are instantiated by
their name expressions and must appear in ptxas's report; the promoted ones, the trainer's fast
path, must not spill registers to local memory. tests/kernels/test_nvrtc.py proves both checks can fail.
"""

import functools
import subprocess
import sys
from pathlib import Path

import pytest

import kernels.cuda as face
from kernels import OPS
from kernels.toolchain import nvrtc

CU_FILES = nvrtc.cu_files()


@functools.cache
def compiled(path, arch):
    expressions = [t.name_expression for t in face.compile_targets() if t.source == path]
    return nvrtc.compile_file(path, arch, expressions)


def test_the_glob_finds_the_face_sources():
    names = {path.name for path in CU_FILES}
    assert {t.source.name for t in face.compile_targets()} <= names
    assert len(names) >= 9


@pytest.mark.parametrize("arch", nvrtc.ARCHS)
@pytest.mark.parametrize("path", CU_FILES, ids=lambda p: p.name)
def test_every_cu_file_compiles(path, arch):
    result = compiled(path, arch)
    assert result.resources, f"{path.name} compiled to no kernel for {arch}"
    errors = [line for line in result.log.splitlines() if "error" in line.lower()]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("arch", nvrtc.ARCHS)
def test_every_declared_kernel_is_built(arch):
    for target in face.compile_targets():
        resources = compiled(target.source, arch).resources_of(target.name_expression)
        assert resources.registers > 0, target


@pytest.mark.parametrize("arch", nvrtc.ARCHS)
def test_promoted_kernels_do_not_spill(arch):
    promoted = face.promoted_targets()
    assert {t.op for t in promoted} == set(face.PROMOTED)
    spilling = []
    for target in promoted:
        resources = compiled(target.source, arch).resources_of(target.name_expression)
        if resources.spills or resources.stack_frame_bytes:
            spilling.append(f"{target}: {resources}")
    assert not spilling, "\n".join(spilling)


def test_every_candidate_of_the_measured_choice_compiles_for_sm_90_without_spills():
    """The measured choice may launch any candidate (kernels/choice.py), so every tile geometry is held
    to what the promoted kernels are: no spills, no stack frame."""
    candidates = [t for t in face.compile_targets() if t.op in face.CANDIDATES and t.version >= 2
                  and t.kernel in ("main", "dx", "dw")]
    assert sum(t.alternative for t in candidates) == 3 * 2 * 3  # v3, v4, v5 second tiles: conv and linear main/dx/dw
    spilling = []
    for target in candidates:
        resources = compiled(target.source, "sm_90").resources_of(target.name_expression)
        if resources.spills or resources.stack_frame_bytes:
            spilling.append(f"{target}: {resources}")
    assert not spilling, "\n".join(spilling)


def test_promoted_functions_are_the_promoted_versions():
    for op, version in face.PROMOTED.items():
        assert getattr(face, op) is face.VERSIONS[op][version]


def test_versions_follow_the_shared_numbering():
    assert set(face.VERSIONS) == set(OPS)
    for op, versions in face.VERSIONS.items():
        assert sorted(versions) == list(range(1, len(versions) + 1)), op
        declared = {t.version for t in face.compile_targets() if t.op == op}
        assert declared <= set(versions), op


def test_importing_the_face_compiles_nothing_and_touches_no_device():
    """Imports are lazy: no backend (so no CuPy module, no context) until the first launch."""
    code = (
        "import kernels.cuda as face, kernels.cuda.runtime as runtime; "
        "assert runtime._backend is None; assert face.compile_targets(); print('lazy')"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "lazy", result.stderr


def test_resource_report_pairs_targets_with_their_kernels():
    promoted = [t for t in face.promoted_targets() if t.op == "softmax_xent_forward"]
    report = nvrtc.resource_report(face.compile_targets(), "sm_90", only=promoted)
    assert [t for t, _ in report] == promoted
    shared = {t.name_expression: r.shared_memory_bytes for t, r in report}
    assert shared["softmax_xent_mean<256>"] == 256 * 8  # one double per thread
