"""Compile every kernel of the Numba face to PTX through NVVM, without the simulator.

    python -m kernels.toolchain.numba_compile                  # sm_90; exit status 1 if any kernel fails
    python -m kernels.toolchain.numba_compile --resources      # + assemble: registers, spills, shared
    python -m kernels.toolchain.numba_compile --ptx-dir DIR    # + write DIR/<kernel>.ptx
    python -m kernels.toolchain.numba_compile --compiler mlir  # through numba-cuda-mlir, not numba-cuda

The simulator runs kernels as Python, so it never types them the way the CUDA target does; this
check does, and fails on what the simulator lets through (a float64 where a float32 is expected,
an unsupported call, a signature that does not fit the kernel). Run in a process where
kernels.numba already uses the simulator, it starts a fresh process with
ALEXNET_CUDA_NUMBA_COMPILE_ONLY=1 and reports that process's result; so it does when the process
already chose another compiler than the one asked for (kernels.numba.compiler).

What it compiles is the face's compile_targets(): every kernel each op module declared with
kernels.numba.runtime.declare, with the launch signature its launcher uses. compile_ptx(target, cc)
turns one into PTX; it needs Numba's real CUDA target, not the simulator, so call it in a process
where kernels.numba runs in mode "gpu" or "compile" (ALEXNET_CUDA_NUMBA_COMPILE_ONLY=1). Feed the
PTX to nvJitLink or `ptxas -arch=sm_90 -v` for registers, spills and shared memory per kernel.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from kernels.numba.mode import COMPILE_ONLY_ENV, COMPILER_ENV, COMPILERS, MODE, SIMULATOR_ENV, requested_compiler
from kernels.numba.runtime import KernelTarget, python_function

PTXAS_USAGE = re.compile(r"Used (\d+) registers")
PTXAS_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
PTXAS_SHARED = re.compile(r"(\d+) bytes smem")
PTXAS_STACK = re.compile(r"(\d+) bytes stack frame")


class _StandInDevice:
    """Answers the one question the compilers ask of the current device while compiling."""

    def __init__(self, compute_capability):
        self.compute_capability = tuple(compute_capability)


_stand_in = _StandInDevice((9, 0))


def _use_stand_in_device(cc) -> None:
    """Without a GPU, both compilers ask the (absent) current device for its compute capability even
    when a target is given, and fail with "CUDA driver library cannot be found": numba-cuda's
    dispatcher when a kernel calls a @cuda.jit(device=True) helper, numba-cuda-mlir for every kernel
    (its host architecture, `tools.get_gpu_compute_capability`, and its dispatcher's). In mode
    "compile" only, those module-level look-ups are replaced by ones that answer `cc`; nothing else
    in either compiler is touched."""
    from kernels.numba.compiler import COMPILER

    _stand_in.compute_capability = tuple(cc)
    if COMPILER == "mlir":
        import numba_cuda_mlir.descriptor
        import numba_cuda_mlir.numba_cuda.dispatcher
        import numba_cuda_mlir.tools

        def capability(as_type=str):
            major, minor = _stand_in.compute_capability
            return (major, minor) if as_type is tuple else f"sm_{major}{minor}"

        numba_cuda_mlir.tools.get_gpu_compute_capability = capability
        numba_cuda_mlir.numba_cuda.dispatcher.get_current_device = lambda: _stand_in
        numba_cuda_mlir.descriptor.get_current_device = lambda: _stand_in
    else:
        import numba.cuda.dispatcher

        numba.cuda.dispatcher.get_current_device = lambda: _stand_in


def compile_ptx(target: KernelTarget, cc: tuple[int, int] = (9, 0)) -> str:
    """PTX for `target` at compute capability `cc`, through the chosen compiler's compile_ptx
    (kernels.numba.compiler: NVVM for numba-cuda, MLIR for numba-cuda-mlir), with the dispatcher's own
    fastmath and lineinfo options. Raises on any typing or compile error."""
    if MODE == "simulator":
        raise RuntimeError(
            "compile_ptx needs Numba's real CUDA target, but this process runs the CUDA simulator; "
            f"compile in a process started with {COMPILE_ONLY_ENV}=1 (python -m kernels.toolchain.numba_compile)"
        )
    from kernels.numba.compiler import cuda

    if MODE == "compile":
        _use_stand_in_device(cc)
    options = getattr(target.dispatcher, "targetoptions", {})
    ptx, _ = cuda.compile_ptx(
        python_function(target.dispatcher),
        target.signature,
        cc=tuple(cc),
        fastmath=bool(options.get("fastmath", False)),
        lineinfo=bool(options.get("lineinfo", False)),
    )
    return ptx


@dataclass
class Compiled:
    target: KernelTarget
    ptx: str | None
    error: str | None


def compile_all(targets: list[KernelTarget], cc=(9, 0)) -> list[Compiled]:
    """Compile each distinct (kernel, signature) once; every target gets its result."""
    done: dict[tuple[int, str], tuple[str | None, str | None]] = {}
    results = []
    for target in targets:
        key = (id(target.dispatcher), target.signature)
        if key not in done:
            try:
                done[key] = (compile_ptx(target, cc), None)
            except Exception as error:  # every failure is reported; the exit status then says so
                done[key] = (None, f"{type(error).__name__}: {error}")
        results.append(Compiled(target, *done[key]))
    return results


def ptxas_log(ptx: str, arch: str) -> str:
    """ptxas -v's report on assembling `ptx` for `arch`, through nvJitLink (which ships with the same
    CUDA release as NVVM, so it reads the PTX version NVVM writes; a system ptxas may be older).
    Raises RuntimeError with the log when assembly fails."""
    from cuda.bindings import nvjitlink

    options = [f"-arch={arch}", "-verbose", "-Xptxas=-v"]
    handle = nvjitlink.create(len(options), options)
    try:
        data = ptx.encode()
        failure = None
        try:
            nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel.ptx")
            nvjitlink.complete(handle)
        except nvjitlink.nvJitLinkError as error:
            failure = error
        size = nvjitlink.get_error_log_size(handle) if failure else nvjitlink.get_info_log_size(handle)
        log = bytearray(size)
        (nvjitlink.get_error_log if failure else nvjitlink.get_info_log)(handle, log)
        text = bytes(log).decode(errors="replace").rstrip("\x00")
        if failure:
            raise RuntimeError(f"nvJitLink could not assemble the PTX for {arch}: {failure}\n{text}")
        return text
    finally:
        nvjitlink.destroy(handle)


def compiler_version(compiler: str) -> str:
    """The compiler's distribution and version, and NumPy's, for the report's first line."""
    import numpy as np

    distribution = "numba-cuda-mlir" if compiler == "mlir" else "numba-cuda"
    return f"{compiler} ({distribution} {metadata.version(distribution)}, NumPy {np.__version__})"


def resource_summary(log: str) -> str:
    """Registers, spill bytes, stack (local arrays left in memory) and static shared memory (with the
    1 KiB per block that sm_8x/sm_9x reserve) from a ptxas -v log."""
    registers = PTXAS_USAGE.search(log)
    spills = PTXAS_SPILLS.search(log)
    stack = PTXAS_STACK.search(log)
    shared = PTXAS_SHARED.search(log)
    return (
        f"{registers.group(1) if registers else '?'} registers, "
        f"{spills.group(1) if spills else '?'}/{spills.group(2) if spills else '?'} bytes spilled (stores/loads), "
        f"{stack.group(1) if stack else '?'} bytes stack, {shared.group(1) if shared else '0'} bytes shared"
    )


def _rerun_in_compile_process(argv: list[str], compiler: str) -> int:
    environment = dict(os.environ, **{COMPILE_ONLY_ENV: "1", SIMULATOR_ENV: "0", COMPILER_ENV: compiler})
    return subprocess.run([sys.executable, "-m", "kernels.toolchain.numba_compile", *argv], env=environment).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m kernels.toolchain.numba_compile",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--cc", default="9.0", help="compute capability to compile for (default 9.0)")
    parser.add_argument("--resources", action="store_true", help="run ptxas -v on each kernel's PTX")
    parser.add_argument("--ptx-dir", type=Path, help="write each kernel's PTX to this folder")
    parser.add_argument("--compiler", choices=COMPILERS,
                        help=f"numba-cuda or mlir (numba-cuda-mlir); default: ${COMPILER_ENV}, else numba-cuda")
    args = parser.parse_args(argv)
    try:
        wanted = args.compiler or requested_compiler()
    except ValueError as error:
        parser.error(str(error))
    if MODE == "simulator":
        return _rerun_in_compile_process(argv, wanted)
    from kernels.numba.compiler import COMPILER

    if COMPILER != wanted:
        return _rerun_in_compile_process(argv, wanted)
    print(f"compiler: {compiler_version(COMPILER)}")
    major, minor = (int(part) for part in args.cc.split("."))
    arch = f"sm_{major}{minor}"

    from kernels.numba import compile_targets

    results = compile_all(compile_targets(), (major, minor))
    if args.ptx_dir:
        args.ptx_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for result in results:
        target = result.target
        name = f"{target.op} v{target.version} {target.kernel}"
        if result.error is not None:
            failures += 1
            print(f"FAILED  {name} {target.signature}\n        {result.error}")
            continue
        line = f"ok      {name}: {len(result.ptx.splitlines())} lines of PTX for {arch}"
        if args.resources:
            try:
                line += f"; {resource_summary(ptxas_log(result.ptx, arch))}"
            except RuntimeError as error:
                failures += 1
                line = f"FAILED  {name}: {error}"
        print(line)
        if args.ptx_dir:
            (args.ptx_dir / f"{target.kernel}.ptx").write_text(result.ptx)
    print(f"{len(results) - failures} of {len(results)} kernel targets compiled for {arch} with {COMPILER}")
    return 1 if failures or not results else 0


if __name__ == "__main__":
    sys.exit(main())
