"""`alexnet-cuda bench kernels`: every op of both networks at batch 128, per face and version,
validated against the NumPy reference, then timed, against the roofline and the vendor.

On a GPU: the ceilings first (copy bandwidth, SGEMM), then for each case: inputs drawn on the host,
the reference's outputs, one set of device inputs shared by both GPU faces (they take the same CuPy
arrays) plus rotated copies larger than twice L2; each face's version is validated (after a call
on other data, so a stale buffer that happens to hold right values from an earlier call cannot pass
for an unwritten output) and then timed with CUDA events (benchmarks.timer); the vendor baseline
is timed on the same sets. A version that fails validation is reported and not timed.

Without a GPU: the NumPy reference on the host clock against the CPU's own ceilings (NumPy copy
bandwidth and BLAS SGEMM), and a plain statement that GPU numbers need a GPU.
"""

from __future__ import annotations

import sys
import zlib

import numpy as np

from benchmarks import cases as case_inputs
from benchmarks.counts import counts
from benchmarks.report import KernelRow, fill_rates, fill_verdict, format_kernel_rows
from benchmarks.shapes import ARCHS, DEFAULT_BATCH, benchmark_cases
from kernels import GPU_FACES
from kernels.geometry import GEMM_OPS

NO_GPU_NOTE = ("No CUDA GPU on this machine: GPU numbers need a GPU (benchmarks/gpu_check.sh on one). "
               "Timed here: the NumPy reference face on the CPU.")


def case_seed(case) -> int:
    """A fixed seed per case, so a rerun draws the same inputs."""
    return zlib.crc32(repr(case.key).encode()) & 0xFFFFF


def face_versions(face, op: str, which: str) -> list[tuple[str, object, bool]]:
    """[(version label, function, promoted?)] of `op` in `face`: the promoted version only, or every
    numbered version when `which` is 'all'. A face without VERSIONS gives its contract function, a
    face with a measured kernel choice its GEMM-shaped ops as "measured" (the choice is made on the
    first call, the validation's, and named in the log)."""
    if getattr(face, "chooser", None) is not None:  # a kernels.choice.ChosenFace: its GEMM ops only
        return [("measured", getattr(face, op), False)] if op in GEMM_OPS else []
    versions = getattr(face, "VERSIONS", {}).get(op)
    if not versions:
        return [("contract", getattr(face, op), True)]
    promoted = getattr(face, "PROMOTED", {}).get(op)
    chosen = sorted(versions) if which == "all" else [promoted if promoted in versions else max(versions)]
    return [(str(v), versions[v], v == promoted) for v in chosen]


def validate(face, function, case, device_args, reference_outputs) -> str:
    """'ok', or 'FAILED: <what differs>' comparing `function` on `device_args` with the reference."""
    from kernels.testing import assert_matches

    xp = face.xp
    in_place = case.op in case_inputs.IN_PLACE
    try:
        decoy = case_inputs.rotation_set(device_args, 3, xp)
        case_inputs.invoke(function, case, decoy)  # leaves wrong values in the pool's free buffers
        del decoy
        args = case_inputs.copy_args(device_args, xp) if in_place else device_args
        outputs = case_inputs.invoke(function, case, args)
        terms = case_inputs.summation_terms(case)
        for spec, actual, expected in zip(case_inputs.OUTPUTS[case.op], outputs, reference_outputs, strict=True):
            assert_matches(actual, expected, spec.tolerance, what=spec.name, terms=terms.get(spec.name))
    except AssertionError as error:
        return f"FAILED: {error}"
    except Exception as error:  # a crashing kernel is reported in its row, the run goes on
        return f"FAILED: {type(error).__name__}: {error}"
    return "ok"


def _load_faces(names, gpu: bool, notes: list[str], kernel_choices=("promoted",), log=print):
    import kernels
    from alexnet_cuda import tuning

    loaded = []
    for name in names:
        if name != "reference" and not gpu:
            notes.append(f"face {name}: not timed; without a GPU it runs in Numba's CUDA simulator or not at all, "
                         "and GPU numbers need a GPU")
            continue
        try:
            face = kernels.load(name)
        except (kernels.FaceUnavailable, ImportError) as error:
            notes.append(f"face {name}: not available ({error})")
            continue
        if "promoted" in kernel_choices or name == "reference":
            loaded.append(face)
        if "measured" in kernel_choices and name != "reference":
            loaded.append(tuning.with_kernel_choice(face, "gpu", "measured",
                                                    report=lambda m: log("    " + tuning.choice_line(m))))
    return loaded


def run(faces=None, archs=tuple(ARCHS), batch: int = DEFAULT_BATCH, ops=None, versions: str = "promoted",
        vendor: bool = True, log=None, on_case=None, kernel_choices=("promoted",)) -> dict:
    """Run the kernel benchmark; returns a JSON-ready dict (see render() for the text form).

    on_case(result), if given, is called after every case with the results so far ("complete" is
    false until the last case is done), so that a run stopped part-way still leaves its rows.
    kernel_choices: "promoted", "measured" or both (alexnet_cuda.tuning.bench_choices): the GPU faces'
    promoted versions and their measured choice (kernels/choice.py), side by side."""
    from benchmarks import ceilings as ceiling_module
    from benchmarks import environment
    from kernels.gpu_probe import has_gpu

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    gpu = has_gpu()
    notes = [] if gpu else [NO_GPU_NOTE]
    if faces is None:
        faces = GPU_FACES if gpu else ("reference",)
    loaded = _load_faces(faces, gpu, notes, kernel_choices, log)
    selected = benchmark_cases(archs, batch, ops)
    log(f"bench kernels: {len(selected)} cases x faces {', '.join(f.NAME for f in loaded) or 'none'}; "
        f"measuring ceilings")
    ceilings = ceiling_module.measure_gpu() if gpu else ceiling_module.measure_cpu()
    log(f"ceilings: {ceiling_module.describe(ceilings.as_dict())}")
    result = {
        "kind": "kernels", "environment": environment.describe(gpu), "ceilings": ceilings.as_dict(), "batch": batch,
        "archs": list(archs), "versions": versions, "notes": notes, "cases": len(selected), "cases_done": 0,
        "complete": False, "rows": [],
    }
    if gpu and vendor:
        from benchmarks.vendor import torch_status

        notes.append(torch_status()[1])
    cache_bytes = environment.l2_bytes() if gpu else 64 << 20
    for index, case in enumerate(selected, 1):
        log(f"[{index}/{len(selected)}] {case.op} {case.shape_text} ({case.label})")
        rows = _bench_case(case, loaded, versions, gpu and vendor, cache_bytes, log)
        for row in rows:
            fill_rates(row, ceilings.sgemm_flops_per_s, ceilings.copy_bytes_per_s)
            fill_verdict(row)
        result["rows"].extend(row.as_dict() for row in rows)
        result["cases_done"] = index
        result["complete"] = index == len(selected)
        if on_case is not None:
            on_case(result)
    result["complete"] = True
    return result


def _bench_case(case, faces, versions, with_vendor, cache_bytes, log) -> list[KernelRow]:
    from benchmarks.timer import rotation_count, time_gpu, time_host
    from kernels import reference

    host = case_inputs.make_inputs(case, case_seed(case))
    amounts = counts(case)
    set_count = rotation_count(case_inputs.nbytes(host), cache_bytes)
    rows = []
    reference_outputs = None
    device_sets = None
    for face in faces:
        for version, function, promoted in face_versions(face, case.op, versions):
            row = KernelRow(face.NAME, version, promoted, case.op, case.layers, case.shape_text, "oracle",
                            flops=amounts.flops, bytes=amounts.bytes)
            rows.append(row)
            if face.NAME == "reference":
                sets = [case_inputs.copy_args(host, np), case_inputs.rotation_set(host, 1, np)]
                timing = time_host(lambda s, f=function: case_inputs.invoke(f, case, s), sets)
            else:
                if reference_outputs is None:
                    reference_outputs = case_inputs.invoke(getattr(reference, case.op), case,
                                                           case_inputs.copy_args(host, np))
                    device_sets = _device_sets(face, host, set_count)
                # Timing an in-place op (SGD) changes its inputs: validate those on a fresh upload.
                checked = _device_sets(face, host, 1)[0] if case.op in case_inputs.IN_PLACE else device_sets[0]
                row.validation = validate(face, function, case, checked, reference_outputs)
                if row.validation != "ok":
                    log(f"    {face.NAME} v{version}: {row.validation}")
                    continue
                try:
                    timing = time_gpu(lambda s, f=function: case_inputs.invoke(f, case, s), device_sets)
                except Exception as error:  # a kernel that fails while timed is reported; the run goes on
                    row.validation = f"FAILED while timed: {type(error).__name__}: {error}"
                    log(f"    {face.NAME} v{version}: {row.validation}")
                    continue
            row.ms, row.spread, row.sets = timing.seconds * 1e3, timing.spread, timing.sets
            if face.NAME != "reference":  # on the host clock, issuing a call is the call
                row.host_ms = timing.host_seconds * 1e3
            log(f"    {face.NAME} v{version}: {row.ms:.3f} ms")
    if device_sets is not None:
        if with_vendor:
            _time_vendor(case, device_sets, rows, log)
        del device_sets
        _release_device_memory()
    return rows


def _device_sets(face, host, count):
    first = {name: face.to_device(value) if hasattr(value, "dtype") else value for name, value in host.items()}
    return [first] + [case_inputs.rotation_set(first, i, face.xp) for i in range(1, count)]


def _time_vendor(case, device_sets, rows, log) -> None:
    from benchmarks.timer import time_gpu
    from benchmarks.vendor import baseline

    vendor = baseline(case)
    if vendor is None:
        return
    try:
        run_vendor, vendor_sets = vendor.prepare(device_sets)
        timing = time_gpu(run_vendor, vendor_sets)
    except Exception as error:  # a vendor failure leaves our rows standing, with the reason
        log(f"    {vendor.name}: failed ({type(error).__name__}: {error})")
        for row in rows:
            row.vendor = f"{vendor.name} failed"
        return
    log(f"    {vendor.name}: {timing.seconds * 1e3:.3f} ms")
    for row in rows:
        row.vendor, row.vendor_ms = vendor.name, timing.seconds * 1e3
        if row.ms:
            row.vendor_ratio = row.vendor_ms / row.ms


def _release_device_memory() -> None:
    """Give the case's device buffers back, so that the next case's rotation sets have room."""
    import cupy

    cupy.get_default_memory_pool().free_all_blocks()


def render(result: dict) -> str:
    """The text form of a kernel benchmark result."""
    from benchmarks.ceilings import describe as describe_ceilings

    env, ceilings = result["environment"], result["ceilings"]
    lines = [
        f"alexnet-cuda bench kernels · {env['date']} · commit {env['commit']}",
        f"machine: {env.get('gpu', 'no GPU')} · {env['cpu']}",
        f"batch {result['batch']} · {', '.join(result['archs'])} · versions: {result['versions']}",
        f"ceilings ({ceilings['device']}): {describe_ceilings(ceilings)}",
        "ms: median of one call · ±: spread of the timed batches · host ms: time to issue one call from Python",
        "rate: GFLOP/s if compute-bound, GB/s if memory-bound, by this machine's roofline · roof: share of the "
        "roofline floor",
        "x vendor: vendor ms / our ms (above 1 is faster than the vendor) · * promoted version",
    ]
    lines += [f"note: {note}" for note in result["notes"]]
    if not result.get("complete", True):
        lines.append(f"note: INCOMPLETE: stopped after {result['cases_done']} of {result['cases']} cases")
    rows = [KernelRow(**{**row, "layers": tuple(row["layers"])}) for row in result["rows"]]
    lines += ["", format_kernel_rows(rows)]
    failed = [row for row in rows if row.validation not in ("ok", "oracle")]
    if failed:
        lines += ["", f"{len(failed)} kernel(s) FAILED validation and were not timed:"]
        lines += [f"  {row.face} v{row.version} {row.op} {row.shape}: {row.validation}" for row in failed]
    return "\n".join(lines)
