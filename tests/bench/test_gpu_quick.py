"""The quick parts of benchmarks/gpu_check.sh (benchmarks/gpu_quick.py) on the CPU: the NumPy
reference stands in for a GPU face, and faces with one planted bug stand in for a broken one."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks import gpu_quick
from kernels import OPS, reference

ROOT = Path(__file__).resolve().parents[2]


def _face(name, **replaced):
    functions = {op: getattr(reference, op) for op in OPS}
    functions.update(replaced)
    return SimpleNamespace(NAME=name, xp=np, to_device=np.array, to_host=np.asarray, **functions)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _lost_middle_third(dy, x, w, stride=1, pad=0, groups=1):
    """conv2d_backward whose filter gradient lost the middle third of the positions it sums over."""
    dx, _, db = reference.conv2d_backward(dy, x, w, stride, pad, groups)
    kept = dy.copy()
    n = dy.shape[0]
    kept[n // 3:2 * n // 3] = 0.0
    return dx, reference.conv2d_backward(kept, x, w, stride, pad, groups)[1], db


def test_promoted_kernels_one_line_each_and_a_broken_one_named(tmp_path, capsys):
    out = tmp_path / "quick.jsonl"
    status = gpu_quick.kernels_main(out, (_face("good"), _face("broken", conv2d_backward=_lost_middle_third)),
                                    ops=["relu_forward", "conv2d_backward"], batches=(1, 3))
    assert status == 1
    lines = _lines(out)
    assert [(r["face"], r["op"], r["size"]) for r in lines] == [
        (face, op, size) for op in ("relu_forward", "conv2d_backward") for size in ("small", "largest")
        for face in ("good", "broken")]
    verdicts = {(r["face"], r["op"], r["size"]): r for r in lines}
    assert all(r["status"] == "ok" for key, r in verdicts.items() if key[0] == "good")
    broken = verdicts[("broken", "conv2d_backward", "largest")]
    assert broken["status"] == "failed" and broken["error"].startswith("AssertionError: dw:")
    assert verdicts[("broken", "relu_forward", "largest")]["status"] == "ok"
    assert verdicts[("good", "conv2d_backward", "largest")]["errors"]["dw"] > 0  # float32 against float64
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(lines) and "FAILED: AssertionError: dw:" in printed[-1]


def test_the_largest_case_is_the_largest_and_the_small_one_small():
    chosen = dict(((op, size), case) for size, case in gpu_quick.chosen_cases() for op in [case.op])
    assert len(chosen) == 2 * len(OPS)
    assert chosen[("conv2d_backward", "largest")].layers == ("alexnet2012/conv1",)
    assert chosen[("conv2d_backward", "largest")]["x"] == (128, 3, 227, 227)
    assert "fc6" in chosen[("sgd_update", "largest")].label
    for op in OPS:
        small, largest = chosen[(op, "small")], chosen[(op, "largest")]
        assert gpu_quick.case_size(small) < gpu_quick.case_size(largest), op
        if op != "sgd_update":  # the update's shapes are the weights', without a batch
            assert (small["x"][0], largest["x"][0]) == (3, 128), op


def test_shadowed_training_agrees_with_itself_and_catches_a_wrong_gradient():
    same = gpu_quick.shadowed_training(_face("same"), steps=2, batch=2)
    assert same["loss_differences"] == [0.0, 0.0] and same["update_differences"] == [0.0, 0.0]

    def relu_backward_ignoring_the_mask(dy, y):
        return dy.copy()

    wrong = gpu_quick.shadowed_training(_face("wrong", relu_backward=relu_backward_ignoring_the_mask), steps=2,
                                        batch=2)
    assert wrong["loss_differences"][0] == 0.0, "the first forward is the same: only the backward is wrong"
    assert max(wrong["update_differences"]) > gpu_quick.UPDATE_TOLERANCE


def test_curves_write_the_reference_and_one_verdict_per_face(tmp_path, capsys):
    out = tmp_path / "quick.jsonl"
    assert gpu_quick.curves_main(out, (_face("same"),), steps=2, batch=2) == 0
    reference_line, face_line = _lines(out)
    assert reference_line["face"] == "reference" and len(reference_line["losses"]) == 2
    assert face_line["status"] == "ok" and face_line["losses"] == reference_line["losses"]
    assert face_line["free_max_difference"] == 0.0
    assert "largest difference from the CPU run 0" in capsys.readouterr().out


def test_toolchain_points_numba_at_a_toolkit_only_when_it_finds_nothing(tmp_path):
    toolkit = tmp_path / "cuda-13.0"
    (toolkit / "nvvm" / "libdevice").mkdir(parents=True)
    (toolkit / "bin").mkdir()
    nvcc = toolkit / "bin" / "nvcc"
    nvcc.write_text("")
    library = tmp_path / "libnvvm.so"
    library.write_text("")
    found = {"nvvm": str(library), "libdevice": str(library)}
    assert gpu_quick.toolchain_exports(found, True, {}, str(nvcc)) == {}
    assert gpu_quick.toolchain_exports({"nvvm": None, "libdevice": None}, True, {}, str(nvcc)) == {
        "CUDA_HOME": str(toolkit)}
    assert gpu_quick.toolchain_exports({}, False, {}, None, candidates=(str(toolkit),)) == {
        "CUDA_HOME": str(toolkit), "CUDA_PATH": str(toolkit)}
    assert gpu_quick.toolchain_exports({}, False, {"CUDA_HOME": "/mine"}, str(nvcc)) == {}
    assert gpu_quick.toolchain_exports({}, True, {}, None, candidates=(str(tmp_path / "none"),)) == {}


def test_environment_names_every_module_and_the_toolchain(tmp_path):
    out = tmp_path / "quick.jsonl"
    gpu_quick.environment_main(out)
    lines = _lines(out)
    imports = {r["module"]: r for r in lines if r["kind"] == "import"}
    assert set(imports) == set(gpu_quick.REQUIRED_MODULES) | set(gpu_quick.OPTIONAL_MODULES)
    assert imports["numpy"]["status"] == "ok" and imports["numpy"]["version"] == np.__version__
    (toolchain,) = [r for r in lines if r["kind"] == "toolchain"]
    assert {"CUDA_HOME", "CUDA_PATH", "nvcc", "numba_cuda", "cupy_nvrtc"} <= set(toolchain)


def test_missing_required_modules_are_named():
    found, missing = gpu_quick.check_imports({"numpy": "arrays", "no_such_module_here": "x"}, {"neither_this": "y"})
    assert missing == ["no_such_module_here"]
    assert found["neither_this"].startswith("MISSING: ModuleNotFoundError")


STOPPED_DURING_THE_THIRD_CASE = """
import os, signal, sys
from benchmarks import gpu_quick

checked = gpu_quick.compare
calls = []

def compare(*args):
    calls.append(args)
    if len(calls) == 3:  # the time limit's SIGINT arrives while the third case is being checked
        os.kill(os.getpid(), signal.SIGINT)
    return checked(*args)

gpu_quick.compare = compare
sys.exit(gpu_quick.main(["kernels", sys.argv[1], "--face", "reference", "--op", "dropout_backward",
                         "--op", "relu_forward"]))
"""


def test_a_stopped_part_keeps_its_lines_and_says_it_stopped(tmp_path):
    """SIGINT, as gpu_check.sh's time limit sends it, in the middle of the third of four cases: the
    part ends with exit status 130 at once, its two finished lines kept and a last line saying it
    stopped."""
    out = tmp_path / "quick.jsonl"
    done = subprocess.run([sys.executable, "-c", STOPPED_DURING_THE_THIRD_CASE, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 130, done.stdout + done.stderr
    lines = _lines(out)
    assert [(r["op"], r["size"], r["status"]) for r in lines[:2]] == [
        ("dropout_backward", "small", "ok"), ("dropout_backward", "largest", "ok")]
    assert len(lines) == 3 and lines[-1]["kind"] == "stopped" and lines[-1]["part"] == "promoted"
    assert "kernels: stopped (time limit) after the lines above" in done.stdout
