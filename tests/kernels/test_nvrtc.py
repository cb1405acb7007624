"""kernels.toolchain.nvrtc itself: errors surface with file and line, spills are seen, headers inline.

These prove that the compile check in tests/kernels/test_cuda_compile.py can fail: a broken source raises, and a
kernel that spills reports it.
"""

import pytest

from kernels.toolchain import nvrtc

GOOD = """
template <int N>
__global__ void reverse(float* a) {
    __shared__ float staged[N];
    staged[threadIdx.x] = a[threadIdx.x];
    __syncthreads();
    a[threadIdx.x] = staged[N - 1 - threadIdx.x];
}
extern "C" __global__ void scale(float* a, float s) { a[threadIdx.x] *= s; }
"""

# 200 floats indexed with a runtime stride cannot live in registers under a 32-register cap
# (launch bounds 1024 threads, 2 blocks a multiprocessor), so ptxas must spill.
SPILLING = """
extern "C" __global__ void __launch_bounds__(1024, 2) spills(float* a, int n) {
    float r[200];
    for (int i = 0; i < 200; i++) r[i] = a[i * n];
    float s = 0.0f;
    for (int i = 0; i < 200; i++) s += r[i] * r[(i * 7) % 200];
    for (int i = 0; i < 200; i++) a[i] = r[i] + s;
}
"""


def test_good_source_reports_every_kernel(tmp_path):
    path = tmp_path / "good.cu"
    path.write_text(GOOD)
    result = nvrtc.compile_file(path, "sm_90", name_expressions=["reverse<128>"])
    reverse = result.resources_of("reverse<128>")
    assert result.symbol_of("reverse<128>") != "reverse<128>"  # a mangled template symbol
    assert reverse.shared_memory_bytes == 128 * 4
    assert reverse.barriers == 1
    assert reverse.registers > 0 and not reverse.spills
    assert result.resources_of("scale").shared_memory_bytes == 0
    assert ".entry scale" in result.ptx and result.cubin[:4] == b"\x7fELF"
    assert "--ptxas-options=-v" in result.options and "-ftz=true" in result.options


def test_broken_source_fails_naming_file_and_line(tmp_path):
    path = tmp_path / "broken.cu"
    path.write_text(GOOD + 'extern "C" __global__ void broken(float* a) { a[0] = undefined_name; }\n')
    with pytest.raises(nvrtc.NvrtcError) as caught:
        nvrtc.compile_file(path, "sm_80")
    message = str(caught.value)
    assert "broken.cu" in message and "sm_80" in message
    assert f"broken.cu({GOOD.count(chr(10)) + 1})" in message  # the line of the error
    assert "undefined_name" in message


def test_error_in_header_names_the_header(tmp_path):
    (tmp_path / "helpers.cuh").write_text("__device__ float twice(float v) { return 2.0f * v }\n")
    path = tmp_path / "user.cu"
    path.write_text('#include "helpers.cuh"\n#include "helpers.cuh"\nextern "C" __global__ void k(float* a) {}\n')
    assert nvrtc.load_source(path).count("twice") == 1  # a header is inlined once
    with pytest.raises(nvrtc.NvrtcError, match=r"helpers\.cuh\(1\)"):
        nvrtc.compile_file(path)


def test_missing_header_is_reported(tmp_path):
    path = tmp_path / "lonely.cu"
    path.write_text('#include "absent.cuh"\n')
    with pytest.raises(nvrtc.NvrtcError, match=r"lonely\.cu\(1\).*absent\.cuh"):
        nvrtc.load_source(path)


def test_lines_after_a_header_keep_their_numbers(tmp_path):
    (tmp_path / "ok.cuh").write_text("__device__ float one() { return 1.0f; }\n\n\n")
    path = tmp_path / "after.cu"
    path.write_text('#include "ok.cuh"\n\nextern "C" __global__ void k(float* a) { a[0] = missing; }\n')
    with pytest.raises(nvrtc.NvrtcError, match=r"after\.cu\(3\)"):
        nvrtc.compile_file(path)


def test_spills_are_reported(tmp_path):
    path = tmp_path / "spilling.cu"
    path.write_text(SPILLING)
    spills = nvrtc.compile_file(path, "sm_80").resources_of("spills")
    assert spills.spills and spills.spill_store_bytes > 0 and spills.stack_frame_bytes > 0


def test_unknown_kernel_is_a_clear_error(tmp_path):
    path = tmp_path / "good.cu"
    path.write_text(GOOD)
    result = nvrtc.compile_file(path, "sm_90")
    with pytest.raises(KeyError, match="not a kernel"):
        result.resources_of("absent_kernel")


def test_bad_arch_is_rejected(tmp_path):
    path = tmp_path / "good.cu"
    path.write_text(GOOD)
    with pytest.raises(ValueError, match="arch"):
        nvrtc.compile_file(path, "compute_90")


def test_checked_architectures_are_supported():
    assert set(nvrtc.ARCHS) <= set(nvrtc.supported_archs())


def test_parse_report_reads_every_field():
    log = (
        "ptxas info    : Compiling entry function '_Z1kILi4EEvPf' for 'sm_80'\n"
        "ptxas info    : Function properties for _Z1kILi4EEvPf\n"
        "ptxas         .     16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
        "ptxas info    : Used 40 registers, used 1 barriers, 4096 bytes smem, 364 bytes cmem[0]\n"
    )
    (report,) = nvrtc.parse_ptxas_report(log).values()
    assert report == nvrtc.KernelResources("_Z1kILi4EEvPf", 40, 8, 12, 4096, 16, 1)
