"""The quick parts of benchmarks/gpu_check.sh, each a few lines of verdicts a GPU run can afford.

    python -m benchmarks.gpu_quick toolchain                 # shell exports for NVVM and NVRTC, if needed
    python -m benchmarks.gpu_quick environment OUT.jsonl     # imports, toolchain paths, versions
    python -m benchmarks.gpu_quick kernels OUT.jsonl         # promoted kernels vs the reference
    python -m benchmarks.gpu_quick curves OUT.jsonl          # 30 training steps per face vs the CPU

kernels: every op's promoted version in each GPU face (the contract function), once at a small
shape (the op's smallest AlexNet case at batch 3) and once at its largest AlexNet case at batch 128,
against the NumPy reference (float64 for outputs that are sums, float32 for exact ones), outputs
poisoned and launches checked. One line each: ok with each output's largest error, or the error
message.

curves: alexnet-mini trained 30 steps (batch 16, a fixed sequence of batches) on each GPU face and
on the CPU reference with the same seed; dropout masks are bit-identical in every face. The two
free-running curves are printed with their largest difference, but they are not held to float32
rounding: rounding differences grow through training (on the CPU, the float32 and float64 runs of
this very curve differ by 2e-4 in the loss after 4 steps and by 0.26 after 28). What is held to
rounding is each step on its own: before every step a CPU shadow model takes the face's weights
and momentum, both take the step, and the losses and the weight updates must agree
(SAME_WEIGHTS_LOSS_TOLERANCE, UPDATE_TOLERANCE).

Each result is one JSON line appended (and flushed) to OUT.jsonl as soon as it exists, and one
line printed, so a part stopped by its time limit keeps everything it finished; the stop itself is
recorded as a last line {"kind": "stopped"}. The exit status is 1 when any line failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

GPU_FACES = ("cuda", "numba")
SMALL_BATCH, LARGE_BATCH = 3, 128
CURVE_STEPS, CURVE_BATCH, CURVE_CLASSES = 30, 16, 10
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
# One step from the same weights. Measured on the CPU (float32 reference against float64, 12 steps):
# the loss differs by at most 1.3e-7, and a weight update by at most 1.8% of that tensor's largest
# update (conv5's bias in step 0, whose gradient is a sum that nearly cancels; 0.07% elsewhere).
# A GPU face sums in other orders, so 1e-4 and 10% are allowed; a forward or backward kernel that
# is wrong moves one of them by far more.
SAME_WEIGHTS_LOSS_TOLERANCE = 1e-4
UPDATE_TOLERANCE = 0.10
UPDATE_FLOOR = 0.01  # a tensor's update is measured against at least 1% of the step's largest update

REQUIRED_MODULES = {
    "numpy": "the arrays", "cupy": "the cuda face and the device arrays", "numba": "the numba face",
    "numba.cuda": "the numba face's CUDA target", "PIL": "the image loaders (pillow)",
    "tqdm": "the trainer's progress", "pytest": "the gpu tests",
}
OPTIONAL_MODULES = {
    "xdist": "the gpu tests run in parallel (pytest-xdist); without it they run in one process",
    "torch": "the PyTorch/cuDNN baselines of bench kernels and bench step",
    "pytest_benchmark": "python -m pytest benchmarks/ (not used by gpu_check.sh)",
    "sklearn": "one CPU-only test (tests/training/test_digits.py; not a gpu test)",
}


class Results:
    """Appends one JSON object per line to a file, flushed at once; prints a line for each."""

    def __init__(self, path: Path, part: str):
        self.path, self.part, self.failed = path, part, False

    def write(self, record: dict, line: str) -> None:
        record = {"part": self.part, **record}
        self.failed = self.failed or record.get("status") == "failed"
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record, default=str) + "\n")
        print(line, flush=True)


# ---- toolchain and environment ----------------------------------------------------------------

def toolchain_exports(numba_paths: dict, cupy_nvrtc_ok: bool, environ: dict, nvcc: str | None,
                      candidates=("/usr/local/cuda",)) -> dict[str, str]:
    """The variables to export so that numba-cuda finds NVVM and libdevice and CuPy finds NVRTC.

    numba-cuda looks in its CUDA wheels first, then CUDA_HOME / CUDA_PATH and the library path; on a
    machine whose numba-cuda came without the wheels, neither is found unless CUDA_HOME points at a
    toolkit. Nothing is exported when both libraries already load, or when the user set CUDA_HOME or
    CUDA_PATH (their choice stands). Otherwise: the toolkit of the nvcc on PATH, else /usr/local/cuda,
    if it holds nvvm/libdevice."""
    numba_ok = all(numba_paths.get(key) and Path(numba_paths[key]).exists() for key in ("nvvm", "libdevice"))
    if (numba_ok and cupy_nvrtc_ok) or environ.get("CUDA_HOME") or environ.get("CUDA_PATH"):
        return {}
    roots = ([str(Path(nvcc).resolve().parent.parent)] if nvcc else []) + list(candidates)
    for root in roots:
        if (Path(root) / "nvvm" / "libdevice").is_dir():
            exports = {"CUDA_HOME": root}
            if not cupy_nvrtc_ok:
                exports["CUDA_PATH"] = root
            return exports
    return {}


def numba_cuda_paths() -> dict:
    """{'nvvm': path, 'libdevice': path, ..., 'found_by': {...}} as numba-cuda resolves them now."""
    try:
        from numba.cuda.cuda_paths import get_cuda_paths

        resolved = get_cuda_paths()
    except Exception as error:  # an old or broken numba-cuda is a finding, not a crash
        return {"error": f"{type(error).__name__}: {error}"}
    paths = {key: getattr(value, "info", None) for key, value in resolved.items()}
    paths["found_by"] = {key: getattr(value, "by", None) for key, value in resolved.items()}
    return paths


def cupy_nvrtc() -> tuple[bool, str]:
    try:
        from cupy.cuda import nvrtc

        major, minor = nvrtc.getVersion()
        return True, f"NVRTC {major}.{minor}"
    except Exception as error:
        return False, f"NVRTC not loadable: {type(error).__name__}: {error}"


def toolchain_main() -> int:
    exports = toolchain_exports(numba_cuda_paths(), cupy_nvrtc()[0], dict(os.environ), shutil.which("nvcc"))
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def check_imports(required=REQUIRED_MODULES, optional=OPTIONAL_MODULES) -> tuple[dict, list[str]]:
    """({module: version or 'MISSING: error'}, [missing required modules])."""
    import importlib

    found, missing = {}, []
    for module in [*required, *optional]:
        try:
            imported = importlib.import_module(module)
            found[module] = str(getattr(imported, "__version__", "imported"))
        except Exception as error:
            found[module] = f"MISSING: {type(error).__name__}: {error}"
            if module in required:
                missing.append(module)
    return found, missing


def environment_main(out: Path) -> int:
    results = Results(out, "environment")
    found, missing = check_imports()
    for module, version in found.items():
        use = REQUIRED_MODULES.get(module) or OPTIONAL_MODULES[module]
        kind = "required" if module in REQUIRED_MODULES else "optional"
        status = "failed" if module in missing else "ok"
        results.write({"kind": "import", "module": module, "required": kind == "required", "version": version,
                       "status": status}, f"import {module:17} {version:40.40} ({kind}: {use})")
    paths = numba_cuda_paths()
    nvrtc_ok, nvrtc_text = cupy_nvrtc()
    nvcc = shutil.which("nvcc")
    record = {"kind": "toolchain", "CUDA_HOME": os.environ.get("CUDA_HOME"), "CUDA_PATH": os.environ.get("CUDA_PATH"),
              "nvcc": nvcc, "numba_cuda": paths, "cupy_nvrtc": nvrtc_text,
              "status": "ok" if nvrtc_ok and paths.get("nvvm") and paths.get("libdevice") else "failed"}
    results.write(record, f"toolchain: CUDA_HOME={record['CUDA_HOME']} CUDA_PATH={record['CUDA_PATH']} nvcc={nvcc}; "
                  f"numba-cuda NVVM {paths.get('nvvm')} (by {paths.get('found_by', {}).get('nvvm')}), libdevice "
                  f"{paths.get('libdevice')}; CuPy {nvrtc_text}")
    if missing:
        print(f"gpu_check: required modules missing: {', '.join(missing)}", file=sys.stderr)
    return 1 if results.failed else 0


# ---- promoted kernels -------------------------------------------------------------------------

def case_size(case) -> int:
    """Elements of the case's main input and weights: what 'small' and 'largest' are measured by."""
    size = math.prod(case["x"])
    try:
        size += math.prod(case["w"])
    except KeyError:
        pass
    return size


def chosen_cases(ops=None, batches=(SMALL_BATCH, LARGE_BATCH)) -> list[tuple[str, object]]:
    """[("small" | "largest", OpCase)] for every op, in contract order: the op's smallest AlexNet case
    at the first batch size, its largest at the second."""
    from benchmarks.shapes import benchmark_cases
    from kernels import OPS

    chosen = []
    for op in ops or OPS:
        small = min(benchmark_cases(batch=batches[0], ops=[op]), key=case_size)
        largest = max(benchmark_cases(batch=batches[1], ops=[op]), key=case_size)
        chosen += [("small", small), ("largest", largest)]
    return chosen


def reference_outputs(case, host: dict) -> tuple:
    """The reference on copies of the inputs: float64 where an output is a sum or a transcendental,
    float32 where every output is exact (the same single rounding as the faces)."""
    from benchmarks import cases
    from kernels import reference

    exact = all(spec.tolerance == "exact" for spec in cases.OUTPUTS[case.op])
    args = {name: (value.astype(np.float64) if not exact and getattr(value, "dtype", None) == np.float32
                   else (value.copy() if hasattr(value, "copy") else value)) for name, value in host.items()}
    return cases.invoke(getattr(reference, case.op), case, args)


def compare(case, actual: tuple, expected: tuple) -> dict[str, float]:
    """{output: largest absolute error}; raises AssertionError when an output is outside its
    tolerance (kernels.testing.TOLERANCES, with each sum's length)."""
    from benchmarks import cases
    from kernels.testing import assert_matches, to_numpy

    terms = cases.summation_terms(case)
    errors = {}
    for spec, got, want in zip(cases.OUTPUTS[case.op], actual, expected, strict=True):
        errors[spec.name] = assert_matches(to_numpy(got), want, spec.tolerance, spec.name, terms=terms.get(spec.name))
    return errors


def run_face(face, case, host: dict) -> tuple:
    """The face's contract function on device copies of `host`, outputs poisoned, launches checked."""
    from benchmarks import cases
    from kernels.testing import poisoned_outputs

    device = {name: face.to_device(value) if hasattr(value, "dtype") else value for name, value in host.items()}
    checked = getattr(face, "checked_launches", None)
    with poisoned_outputs(), (checked() if checked else _nothing()):
        outputs = cases.invoke(getattr(face, case.op), case, device)
        return tuple(face.to_host(output) for output in outputs)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def load_faces(names, results: Results) -> list:
    """Each face named (or given as an object with the contract functions, NAME, to_device, to_host)."""
    import kernels

    loaded = []
    for name in names:
        if not isinstance(name, str):
            loaded.append(name)
            continue
        try:
            loaded.append(kernels.load(name))
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            results.write({"kind": "face", "face": name, "status": "failed", "error": message},
                          f"{name}: FAILED to load: {message}")
    return loaded


def prepared(chosen, lookahead: int = 3):
    """(case, host inputs, reference outputs, seconds) for each chosen case, in order, drawn and
    computed in `lookahead` threads ahead of the caller: the host's references at batch 128 are the
    slow part of this check, and NumPy leaves the interpreter lock while it computes."""
    from concurrent.futures import ThreadPoolExecutor

    from benchmarks import cases
    from benchmarks.kernel_bench import case_seed

    def prepare(case):
        began = time.perf_counter()
        host = cases.make_inputs(case, case_seed(case))
        return host, reference_outputs(case, host), time.perf_counter() - began

    pool = ThreadPoolExecutor(max_workers=lookahead)
    pending = [pool.submit(prepare, case) for case in chosen[:lookahead]]
    try:
        for index, case in enumerate(chosen):
            if index + lookahead < len(chosen):
                pending.append(pool.submit(prepare, chosen[index + lookahead]))
            host, expected, seconds = pending[index].result()
            pending[index] = None  # the arrays go once the caller is done with them
            yield case, host, expected, seconds
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def kernels_main(out: Path, faces=GPU_FACES, ops=None, batches=(SMALL_BATCH, LARGE_BATCH)) -> int:
    results = Results(out, "promoted")
    loaded = load_faces(faces, results)
    chosen = chosen_cases(ops, batches)
    sizes = [size for size, _ in chosen]
    for size, (case, host, expected, reference_seconds) in zip(sizes, prepared([case for _, case in chosen]),
                                                                strict=True):
        for face in loaded:
            began = time.perf_counter()
            record = {"kind": "kernel", "face": face.NAME, "op": case.op, "size": size, "shape": case.shape_text,
                      "layers": list(case.layers), "reference_s": round(reference_seconds, 3)}
            try:
                errors = compare(case, run_face(face, case, host), expected)
            except Exception as error:  # a wrong or crashing kernel is reported in its line; the rest go on
                message = f"{type(error).__name__}: {error}".splitlines()[0]
                record.update(status="failed", error=message, seconds=round(time.perf_counter() - began, 3))
                results.write(record, f"{face.NAME:5} {case.op:22} {size:7} {case.shape_text}: FAILED: {message}")
                continue
            record.update(status="ok", errors=errors, seconds=round(time.perf_counter() - began, 3))
            text = ", ".join(f"{name} {error:.3g}" for name, error in errors.items())
            results.write(record, f"{face.NAME:5} {case.op:22} {size:7} {case.shape_text}: ok (max error {text})")
    return 1 if results.failed else 0


# ---- training curves --------------------------------------------------------------------------

def curve_batches(steps: int = CURVE_STEPS, batch: int = CURVE_BATCH, size: int = 64, classes: int = CURVE_CLASSES,
                  seed: int = 0):
    """A fixed sequence of (images, labels): each class a smooth random colour pattern plus noise,
    so the loss has something to learn in 30 steps."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((classes, 3, size // 8, size // 8)).repeat(8, axis=2).repeat(8, axis=3)
    for _ in range(steps):
        labels = rng.integers(0, classes, batch).astype(np.int32)
        images = patterns[labels] + 0.5 * rng.standard_normal((batch, 3, size, size))
        yield images.astype(np.float32), labels


def _train_step(model, face, step: int, images, labels) -> float:
    model.set_step(step)
    loss, _ = model.loss(model.forward(face.to_device(images), training=True), face.to_device(labels))
    value = float(face.to_host(loss))
    model.backward()
    model.sgd_step(LR, MOMENTUM, WEIGHT_DECAY)
    return value


def _host_copy(model, which: str) -> dict[str, np.ndarray]:
    return {key: np.array(value, copy=True) for key, value in model.host_arrays(which).items()}


def train_losses(face, steps: int = CURVE_STEPS, batch: int = CURVE_BATCH, dtype=np.float32) -> list[float]:
    """The per-step losses of `steps` SGD steps of alexnet-mini from seed 0 on `face`."""
    from alexnet_cuda.archs import get_arch
    from alexnet_cuda.model import Model

    arch = get_arch("alexnet-mini")
    model = Model(arch, CURVE_CLASSES, face, seed=0, dtype=dtype)
    return [_train_step(model, face, step, images.astype(dtype), labels)
            for step, (images, labels) in enumerate(curve_batches(steps, batch, arch.input_size))]


def shadowed_training(face, steps: int = CURVE_STEPS, batch: int = CURVE_BATCH) -> dict:
    """`steps` steps of alexnet-mini on `face`, each repeated by a CPU reference model that starts
    the step from the face's own weights and momentum. Returns the face's losses and, per step, the
    loss difference and the largest update difference (as a share of the tensor's largest update,
    floored at UPDATE_FLOOR of the step's largest)."""
    from alexnet_cuda.archs import get_arch
    from alexnet_cuda.model import Model
    from kernels import reference

    arch = get_arch("alexnet-mini")
    model = Model(arch, CURVE_CLASSES, face, seed=0)
    shadow = Model(arch, CURVE_CLASSES, reference, seed=0)
    losses, loss_differences, update_differences, worst_tensors = [], [], [], []
    for step, (images, labels) in enumerate(curve_batches(steps, batch, arch.input_size)):
        start = _host_copy(model, "params")
        shadow.load_arrays("params", {key: value.copy() for key, value in start.items()})
        shadow.load_arrays("velocities", _host_copy(model, "velocities"))
        losses.append(_train_step(model, face, step, images, labels))
        loss_differences.append(abs(losses[-1] - _train_step(shadow, reference, step, images, labels)))
        ours, theirs = _host_copy(model, "params"), _host_copy(shadow, "params")
        wanted = {key: theirs[key].astype(np.float64) - start[key] for key in start}
        largest = max(float(np.abs(update).max()) for update in wanted.values())
        shares = {key: float(np.abs(ours[key].astype(np.float64) - theirs[key]).max()) /
                  max(float(np.abs(wanted[key]).max()), UPDATE_FLOOR * largest, 1e-30) for key in start}
        worst = max(shares, key=shares.__getitem__)
        update_differences.append(shares[worst])
        worst_tensors.append(worst)
    return {"losses": losses, "loss_differences": loss_differences, "update_differences": update_differences,
            "worst_tensors": worst_tensors}


def curves_main(out: Path, faces=GPU_FACES, steps: int = CURVE_STEPS, batch: int = CURVE_BATCH) -> int:
    from kernels import reference

    results = Results(out, "curves")
    loaded = load_faces(faces, results)
    began = time.perf_counter()
    expected = train_losses(reference, steps, batch)
    results.write({"kind": "curve", "face": "reference", "status": "ok", "losses": expected,
                   "seconds": round(time.perf_counter() - began, 3)},
                  f"reference (CPU), {steps} steps of batch {batch}: loss {expected[0]:.4f} -> {expected[-1]:.4f}")
    for face in loaded:
        began = time.perf_counter()
        try:
            run = shadowed_training(face, steps, batch)
        except Exception as error:
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            results.write({"kind": "curve", "face": face.NAME, "status": "failed", "error": message},
                          f"{face.NAME} curve: FAILED: {message}")
            continue
        losses = run["losses"]
        free = [abs(a - b) for a, b in zip(losses, expected, strict=True)]
        at = max(range(steps), key=free.__getitem__)
        loss_step = max(range(steps), key=run["loss_differences"].__getitem__)
        update_step = max(range(steps), key=run["update_differences"].__getitem__)
        loss_difference, update_difference = run["loss_differences"][loss_step], run["update_differences"][update_step]
        passed = (all(math.isfinite(loss) for loss in losses) and loss_difference <= SAME_WEIGHTS_LOSS_TOLERANCE
                  and update_difference <= UPDATE_TOLERANCE)
        results.write({"kind": "curve", "face": face.NAME, "status": "ok" if passed else "failed", "losses": losses,
                       "free_max_difference": free[at], "free_at_step": at, **run,
                       "same_weights_loss_difference": loss_difference, "update_difference": update_difference,
                       "seconds": round(time.perf_counter() - began, 3)},
                      f"{face.NAME} {steps} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}; largest difference from "
                      f"the CPU run {free[at]:.3g} (step {at}, rounding carried through training); from the same "
                      f"weights: loss {loss_difference:.2g} (step {loss_step}), update {update_difference:.2%} "
                      f"({run['worst_tensors'][update_step]}, step {update_step}): "
                      f"{'ok' if passed else 'FAILED'} (at most {SAME_WEIGHTS_LOSS_TOLERANCE:g} and "
                      f"{UPDATE_TOLERANCE:.0%})")
    return 1 if results.failed else 0


# ---- command line -----------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_quick", description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=("toolchain", "environment", "kernels", "curves"))
    parser.add_argument("out", nargs="?", type=Path, help="the JSON-lines file to append results to")
    parser.add_argument("--face", action="append", choices=("cuda", "numba", "reference"), default=None,
                        help="a face to check (repeatable; default: cuda and numba)")
    parser.add_argument("--op", action="append", default=None, help="kernels: only this op (repeatable)")
    parser.add_argument("--steps", type=int, default=CURVE_STEPS, help="curves: training steps (default 30)")
    args = parser.parse_args(argv)
    # A process started as a background job inherits SIGINT ignored, and would then sit out the time
    # limit's SIGINT until the SIGKILL after it; here SIGINT always stops the part, as below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.part == "toolchain":
        return toolchain_main()
    if args.out is None:
        parser.error(f"{args.part}: give the JSON-lines file to append results to")
    faces = tuple(args.face or GPU_FACES)
    try:
        if args.part == "environment":
            return environment_main(args.out)
        if args.part == "kernels":
            return kernels_main(args.out, faces, args.op)
        return curves_main(args.out, faces, args.steps)
    except KeyboardInterrupt:  # gpu_check.sh's time limit: say so in the results, keep what is there
        Results(args.out, {"kernels": "promoted"}.get(args.part, args.part)).write(
            {"kind": "stopped", "status": "stopped"}, f"{args.part}: stopped (time limit) after the lines above")
        sys.stdout.flush()
        sys.stderr.flush()
        # Every result is on disk already; exit now rather than wait for a reference still being
        # computed in a thread ahead (an ordinary exit joins those threads first).
        os._exit(130)
    except Exception:
        traceback.print_exc()
        Results(args.out, {"kernels": "promoted"}.get(args.part, args.part)).write(
            {"kind": "crashed", "status": "failed", "error": traceback.format_exc().splitlines()[-1]},
            f"{args.part}: crashed: {traceback.format_exc().splitlines()[-1]}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
