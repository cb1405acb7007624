"""Compile a CUDA C source with NVRTC, without a GPU, and read ptxas's resource report.

The `cuda` face compiles its `.cu` files at run time through CuPy (which also uses NVRTC); this
module builds the same text with the same options for a chosen architecture, through
`cuda.bindings.nvrtc`, which needs no driver. It serves three users:

- the CI compile check (tests/kernels/test_cuda_compile.py): every `.cu` under kernels/cuda/ compiles for
  sm_80 and sm_90, and promoted kernels spill nothing;
- `alexnet-cuda inspect` (registers, spills, shared memory, stack per kernel);
- the face itself, for `load_source` (one source text for the compile check and the GPU) and
  `FACE_OPTIONS` (one set of options).

    result = compile_file("kernels/cuda/sgd.cu", "sm_90", name_expressions=["sgd_update_v1"])
    result.resources_of("sgd_update_v1").registers

Local headers (`#include "x.cuh"`) are inlined by `load_source`, with `#line` markers so that
errors still name the header and its line. Inlining, rather than `-I`, puts the header text into
the source CuPy hashes for its kernel cache, so an edited header can never reuse a stale binary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[1] / "cuda"  # the CUDA C face's sources
ARCHS = ("sm_80", "sm_90")  # A100 and H100/H200: what CI checks

# The options every .cu of the face is compiled with, on a GPU through CuPy and here.
FACE_OPTIONS = (
    # Templates carry the tile sizes (name expressions such as conv2d_forward_v3<64, 64, 8, 4, 4>),
    # and `if constexpr` picks code paths per layout.
    "-std=c++17",
    # Contract a·b + c into one fused multiply-add (the NVRTC default, written out): one rounding
    # instead of two, which the tolerance table allows ("faces may contract a·b + c").
    "--fmad=true",
    # IEEE-rounded division and square root (the defaults, written out): softmax divides by the
    # row sum and LRN raises to -beta; approximate forms would exceed float32_elementwise.
    "--prec-div=true",
    "--prec-sqrt=true",
    # CuPy appends -ftz=true to every RawModule it compiles; stating it here makes the compile
    # check build exactly what runs. Flushing subnormals (|v| < 1.2e-38) to zero is far inside
    # every atol of the tolerance table.
    "-ftz=true",
    # Source line tables for profilers (Nsight Compute); changes no instruction.
    "--generate-line-info",
)
# Deliberately absent: --use_fast_math. It swaps expf/logf/powf for approximate hardware forms
# (errors of several ulp growing with |x|), which would push softmax and LRN beyond the table.

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
_PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\s*$")


class NvrtcError(RuntimeError):
    """NVRTC rejected a source; the message names the file, the architecture and the compiler log."""

    def __init__(self, source: Path | str, arch: str, log: str, what: str = "compile"):
        self.source = str(source)
        self.arch = arch
        self.log = log
        super().__init__(f"NVRTC could not {what} {self.source} for {arch}:\n{log.strip()}")


@dataclass(frozen=True)
class KernelResources:
    """ptxas's report for one kernel (`--ptxas-options=-v`); sizes in bytes."""

    kernel: str  # the symbol ptxas names: an extern "C" name or a mangled template instantiation
    registers: int
    spill_store_bytes: int
    spill_load_bytes: int
    shared_memory_bytes: int  # static shared memory
    stack_frame_bytes: int
    barriers: int

    @property
    def spills(self) -> bool:
        return self.spill_store_bytes > 0 or self.spill_load_bytes > 0


@dataclass(frozen=True)
class CompileResult:
    source: Path
    arch: str
    options: tuple[str, ...]
    ptx: str
    cubin: bytes
    log: str  # the full NVRTC log, ptxas's -v report included
    lowered_names: dict[str, str] = field(default_factory=dict)  # name expression -> symbol
    resources: dict[str, KernelResources] = field(default_factory=dict)  # symbol -> report

    def symbol_of(self, name_expression: str) -> str:
        """The symbol of a kernel: the lowered name of a name expression, else the name itself."""
        return self.lowered_names.get(name_expression, name_expression)

    def resources_of(self, name_expression: str) -> KernelResources:
        symbol = self.symbol_of(name_expression)
        try:
            return self.resources[symbol]
        except KeyError:
            raise KeyError(
                f"{name_expression!r} is not a kernel of {self.source} for {self.arch} "
                f"(kernels reported: {', '.join(sorted(self.resources)) or 'none'})"
            ) from None


def load_source(path: Path | str) -> str:
    """The text of a .cu file with its local `#include "..."` headers inlined (each once)."""
    path = Path(path).resolve()
    return _expand(path, seen=set())


def _expand(path: Path, seen: set[Path]) -> str:
    if path in seen:
        return ""  # included already: every header behaves as if it had #pragma once
    seen.add(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise NvrtcError(path, "-", f"cannot read the source: {error}", what="read") from error
    out = [f'#line 1 "{path.name}"']
    for number, line in enumerate(lines, start=1):
        match = _INCLUDE.match(line)
        if match:
            header = (path.parent / match.group(1)).resolve()
            if not header.is_file():
                raise NvrtcError(path, "-", f"{path.name}({number}): header {match.group(1)!r} not found "
                                 f"next to {path.name}", what="preprocess")
            out.append(_expand(header, seen))
            out.append(f'#line {number + 1} "{path.name}"')
        elif _PRAGMA_ONCE.match(line):
            out.append("")  # load_source includes each header once already; kept as a blank line for numbering
        else:
            out.append(line)
    return "\n".join(out) + "\n"


# ptxas -v prints, per entry function:
#   ptxas info    : Compiling entry function '<symbol>' for 'sm_90'
#   ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
#   ptxas info    : Used 10 registers, used 1 barriers, 512 bytes smem, 364 bytes cmem[0]
_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_BARRIERS = re.compile(r"used (\d+) barriers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas_report(log: str) -> dict[str, KernelResources]:
    """Per-kernel resources from a log compiled with --ptxas-options=-v."""
    found: dict[str, dict[str, int]] = {}
    current = None
    for line in log.splitlines():
        entry = _ENTRY.search(line)
        if entry:
            current = found.setdefault(entry.group(1), {})
            continue
        if current is None:
            continue
        frame = _FRAME.search(line)
        if frame:
            current["stack_frame_bytes"], current["spill_store_bytes"], current["spill_load_bytes"] = (
                int(v) for v in frame.groups()
            )
        used = _USED.search(line)
        if used:
            current["registers"] = int(used.group(1))
            barriers = _BARRIERS.search(line)
            smem = _SMEM.search(line)
            current["barriers"] = int(barriers.group(1)) if barriers else 0
            current["shared_memory_bytes"] = int(smem.group(1)) if smem else 0
    defaults = dict(registers=0, spill_store_bytes=0, spill_load_bytes=0, shared_memory_bytes=0,
                    stack_frame_bytes=0, barriers=0)
    return {name: KernelResources(kernel=name, **{**defaults, **values}) for name, values in found.items()}


def supported_archs() -> tuple[str, ...]:
    from cuda.bindings import nvrtc

    result, archs = nvrtc.nvrtcGetSupportedArchs()
    _check(result, "nvrtcGetSupportedArchs")
    return tuple(f"sm_{a}" for a in archs)


def compile_file(
    path: Path | str,
    arch: str = "sm_90",
    name_expressions: Iterable[str] = (),
    extra_options: Sequence[str] = (),
) -> CompileResult:
    """Compile one .cu file (headers inlined) for `arch` with FACE_OPTIONS and ptxas's -v report.

    `name_expressions` instantiates template kernels (as CuPy's RawModule does) and maps each to
    its symbol. Raises NvrtcError with the compiler log when the source does not compile.
    """
    path = Path(path)
    return compile_text(load_source(path), path, arch, name_expressions, extra_options)


def compile_text(
    text: str,
    path: Path | str,
    arch: str = "sm_90",
    name_expressions: Iterable[str] = (),
    extra_options: Sequence[str] = (),
) -> CompileResult:
    """compile_file for a source held in memory; `path` names it in messages and the log."""
    from cuda.bindings import nvrtc

    if not re.fullmatch(r"sm_\d+[a-z]?", arch):
        raise ValueError(f"arch: expected a real architecture such as 'sm_90', got {arch!r}")
    name_expressions = list(dict.fromkeys(name_expressions))
    options = (f"--gpu-architecture={arch}", *FACE_OPTIONS, *extra_options, "--ptxas-options=-v")
    result, program = nvrtc.nvrtcCreateProgram(text.encode(), Path(path).name.encode(), 0, [], [])
    _check(result, "nvrtcCreateProgram")
    try:
        for expression in name_expressions:
            (result,) = nvrtc.nvrtcAddNameExpression(program, expression.encode())
            _check(result, f"nvrtcAddNameExpression({expression!r})")
        encoded = [option.encode() for option in options]
        (compiled,) = nvrtc.nvrtcCompileProgram(program, len(encoded), encoded)
        log = _read(nvrtc.nvrtcGetProgramLogSize, nvrtc.nvrtcGetProgramLog, program).decode(errors="replace")
        if compiled != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise NvrtcError(path, arch, log or _error_string(compiled))
        ptx = _read(nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX, program).decode()
        cubin = _read(nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN, program)
        lowered = {}
        for expression in name_expressions:
            result, symbol = nvrtc.nvrtcGetLoweredName(program, expression.encode())
            _check(result, f"nvrtcGetLoweredName({expression!r})")
            lowered[expression] = symbol.decode()
    finally:
        nvrtc.nvrtcDestroyProgram(program)
    return CompileResult(Path(path), arch, options, ptx, cubin, log, lowered, parse_ptxas_report(log))


def _read(size_of, read, program) -> bytes:
    result, size = size_of(program)
    _check(result, size_of.__name__)
    buffer = b" " * size
    (result,) = read(program, buffer)
    _check(result, read.__name__)
    return buffer.rstrip(b"\x00")


def _error_string(result) -> str:
    from cuda.bindings import nvrtc

    return nvrtc.nvrtcGetErrorString(result)[1].decode()


def _check(result, call: str) -> None:
    from cuda.bindings import nvrtc

    if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"{call} failed: {_error_string(result)}")


def cu_files(directory: Path | str = SOURCE_DIR) -> list[Path]:
    """Every .cu file of a directory (the face's by default), sorted: what the compile check covers."""
    return sorted(Path(directory).glob("*.cu"))


def resource_report(targets, arch: str = "sm_90", only=None) -> list[tuple[object, KernelResources]]:
    """Compile the .cu files of `targets` (the CUDA C face's compile_targets()) with NVRTC for `arch`
    (no GPU needed) and pair every target (or those in `only`) with ptxas's report: registers,
    spills, shared memory, stack. Each file is built once with every name expression declared for it."""
    targets = list(targets)
    chosen = targets if only is None else list(only)
    builds = {}
    for source in dict.fromkeys(t.source for t in chosen):
        expressions = [t.name_expression for t in targets if t.source == source]
        builds[source] = compile_file(source, arch, expressions)
    return [(t, builds[t.source].resources_of(t.name_expression)) for t in chosen]
