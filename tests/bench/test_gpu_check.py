"""benchmarks/gpu_check.sh where there is no GPU: its syntax, its clean refusal, its summary writer
on sample results of every part (real CPU results, a JUnit report, training metrics, quick-check
lines), and both of its modes run end to end with the NumPy reference standing in for the GPU
faces (GPU_CHECK_ALLOW_CPU=1) and short time limits, so that every part is started, stopped and
summarised."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import kernel_bench, step_bench, summary

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="2" tests="5" time="12.0">
<testcase classname="tests.test_cuda_linear" name="test_fc6" time="1.0"/>
<testcase classname="tests.test_cuda_conv" name="test_conv1" time="2.0">
<failure message="AssertionError: y: 3 of 4 elements outside atol">details</failure></testcase>
<testcase classname="tests.test_numba_pool" name="test_pool" time="1.0"/>
<testcase classname="tests.test_x" name="test_a" time="0"><skipped message="needs"/></testcase>
<testcase classname="tests.test_x" name="test_b" time="0"><skipped message="needs"/></testcase>
</testsuite></testsuites>
"""


def test_script_parses_as_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize("mode", [[], ["--quick"]], ids=["full", "quick"])
def test_script_refuses_cleanly_without_a_gpu(tmp_path, mode):
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(SCRIPT), str(out), *mode], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, ALEXNET_CUDA_NO_GPU="1", PYTHON=sys.executable))
    assert done.returncode == 3
    assert "no CUDA GPU found" in done.stderr and "nothing was run" in done.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("arguments", [[], ["--quick"], ["out", "--fast"], ["out", "--quick", "more"]])
def test_script_usage_error(arguments):
    done = subprocess.run(["bash", str(SCRIPT), *arguments], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: benchmarks/gpu_check.sh OUTDIR [--quick]" in done.stderr


@pytest.fixture(scope="module")
def sample_outdir(tmp_path_factory, monkeypatch_module):
    """An OUTDIR as gpu_check.sh leaves it, from real (CPU, tiny) runs of each part's code."""
    monkeypatch_module.setattr("kernels.gpu_probe.has_gpu", lambda: False)
    out = tmp_path_factory.mktemp("gpu-check")
    kernels = kernel_bench.run(archs=("alexnet-owt",), batch=1, ops=["relu_forward", "conv2d_forward"],
                               log=lambda message: None)
    for row in kernels["rows"]:  # as a GPU run would fill them in: a vendor row and a verdict
        row.update(vendor="cuDNN", vendor_ms=row["ms"] / 2, vendor_ratio=0.5, verdict="MISSES by 0%: sample")
    (out / "kernels.json").write_text(json.dumps(kernels))
    step = step_bench.run(archs=("alexnet-owt",), batch=1, steps=1, warmup=0, log=lambda message: None)
    (out / "step.json").write_text(json.dumps(step))
    (out / "gpu-tests.xml").write_text(JUNIT)
    (out / "train-metrics.jsonl").write_text(json.dumps({"epoch": 1, "step": 50, "lr": 0.01, "train_loss": 6.9,
                                                         "val_top1": 0.1, "images_per_s": 1234.5}) + "\n")
    quick = [
        {"part": "environment", "kind": "import", "module": "cupy", "required": True, "version": "14.2.0", "status": "ok"},
        {"part": "environment", "kind": "import", "module": "torch", "required": False,
         "version": "MISSING: ModuleNotFoundError: No module named 'torch'", "status": "ok"},
        {"part": "environment", "kind": "toolchain", "CUDA_HOME": "/usr/local/cuda", "CUDA_PATH": None, "nvcc": "nvcc",
         "numba_cuda": {"nvvm": "/usr/local/cuda/nvvm/lib64/libnvvm.so", "found_by": {"nvvm": "CUDA_HOME"}},
         "cupy_nvrtc": "NVRTC 13.0", "status": "ok"},
        {"part": "promoted", "kind": "kernel", "face": "cuda", "op": "conv2d_backward", "size": "largest",
         "shape": "128x3x227x227", "status": "ok", "errors": {"dx": 1e-6, "dw": 0.004, "db": 0.0006}},
        {"part": "promoted", "kind": "kernel", "face": "numba", "op": "conv2d_backward", "size": "largest",
         "shape": "128x3x227x227", "status": "failed", "error": "AssertionError: dw: 12 of 34848 elements outside"},
        {"part": "promoted", "kind": "stopped", "status": "stopped"},
        {"part": "curves", "kind": "curve", "face": "cuda", "status": "ok", "losses": [2.3, 1.1],
         "free_max_difference": 0.01, "free_at_step": 1, "same_weights_loss_difference": 2e-7,
         "update_difference": 0.004},
    ]
    (out / "quick.jsonl").write_text("".join(json.dumps(record) + "\n" for record in quick) + '{"part": "cur')
    parts = out / "parts.tsv"
    parts.write_text("environment\tok\t2\t30\npromoted\tcut off (time limit)\t75\t75\ncurves\tok\t30\t45\n"
                     "gpu-tests\tfailed (1)\t40\t110\nkernels\tok\t120\t160\n"
                     "step\tcut off (time limit)\t80\t80\ntrain\tnot started (budget spent)\t0\t100\n")
    return out, parts


@pytest.fixture(scope="module")
def monkeypatch_module():
    patcher = pytest.MonkeyPatch()
    yield patcher
    patcher.undo()


def test_summary_writer_on_sample_results(sample_outdir):
    out, parts = sample_outdir
    done = subprocess.run([sys.executable, "-m", "benchmarks.summary", str(out), "--parts", str(parts)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), ALEXNET_CUDA_NO_GPU="1"))
    assert done.returncode == 0, done.stderr
    text = (out / "summary.md").read_text()
    assert "- passed: environment, curves, kernels" in text
    assert "- failed: gpu-tests (failed (1))" in text
    assert "- cut off by their time limit: promoted, step" in text
    assert "- not started (budget spent): train" in text
    assert "required modules: all import; optional modules missing: torch" in text
    assert "numba-cuda NVVM /usr/local/cuda/nvvm/lib64/libnvvm.so (by CUDA_HOME)" in text
    assert "### Promoted kernels against the reference (1 ok, 1 failed; CUT OFF by the time limit" in text
    assert "| cuda | conv2d_backward | largest | 128x3x227x227 | ok, max error dx 1e-06, dw 0.004, db 0.0006 |" in text
    assert "FAILED: AssertionError: dw: 12 of 34848 elements outside" in text
    assert "| cuda | 2.3000 → 1.1000 | 0.01 (step 1) | 2e-07, 0.40% | ok |" in text
    assert "| gpu-tests | failed (1) | 40 | 110 |" in text
    assert "2 passed, 1 failed, 0 errors, 2 skipped of 5" in text
    assert "tests.test_cuda_conv::test_conv1: AssertionError: y: 3 of 4 elements outside atol" in text
    assert "| conv2d_forward | reference |" in text and "### Missed targets and failures" in text
    assert "alexnet-owt on reference, ms per layer" in text
    assert "| 1 | 50 | 0.01 | 6.9 | 0.1 | 1234 |" in text
    results = json.loads((out / "results.json").read_text())
    assert results["gpu_tests"]["failures"] == 1
    assert [p["status"] for p in results["parts"]][-1] == "not started (budget spent)"
    assert results["kernels"]["rows"] and results["step"]["results"]
    # Folded into results.json, and drawn in their place: OUTDIR keeps to eight files.
    assert not (out / "kernels.json").exists() and not (out / "step.json").exists()
    assert results["pictures"] == {"roofline.png": "drawn", "step.png": "drawn"}
    assert "## Pictures" in text and "- roofline.png: drawn" in (out / "summary.md").read_text()
    for name in ("roofline.png", "step.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {path.name for path in out.iterdir()} - {"parts.tsv"} <= DOCUMENTED


def test_pictures_that_cannot_be_drawn_are_reported_not_fatal(tmp_path):
    outcomes = summary.draw_pictures(tmp_path, {"kernels": None, "step": {"kind": "step", "results": [],
                                                                          "environment": {}}})
    assert outcomes == {"roofline.png": "not drawn: no kernels results",
                        "step.png": "not drawn: no timed step in it (every network and face failed or was cut off): "
                                    "nothing to draw"}
    assert list(tmp_path.iterdir()) == []


def test_summary_says_what_is_missing(tmp_path):
    results, text = summary.build(tmp_path, None, {"gpu": "sample GPU"})
    assert results["kernels"] is None and results["gpu_tests"] is None
    assert "No kernel results" in text and "No test report" in text and "No metrics" in text
    assert "No environment results" in text and "### Promoted kernels against the reference (0 ok, 0 failed)" in text
    assert text.startswith("# GPU check (full): sample GPU")


def test_the_tune_table_is_folded_into_the_summary_and_results(tmp_path):
    """`alexnet-cuda tune --jsonl` lines in quick.jsonl become a table in summary.md and stay in
    results.json, so the OUTDIR needs no file of its own for them."""
    record = {"part": "tune", "kind": "choice", "arch": "alexnet2012", "batch": 128, "device": "gpu", "face": "cuda",
              "op": "linear_forward", "shape": "x=128x9216 w=4096x9216 b=4096",
              "ms": {"promoted": 2.0, "v5 128x128x8/16x4": 1.6}, "refused": {"v4 64x64x16/4x4": "output 0: ..."},
              "choice": "v5 128x128x8/16x4", "gain": 1.25}
    (tmp_path / "quick.jsonl").write_text(json.dumps(record) + "\n")
    parts = tmp_path / "parts.tsv"
    parts.write_text("tune\tok\t30\t60\n")
    results, text = summary.build(tmp_path, parts, {"gpu": "sample GPU"})
    assert results["quick"] == [record]
    assert ("| alexnet2012 | cuda | linear_forward | x=128x9216 w=4096x9216 b=4096 | 2.000 | v5 128x128x8/16x4 | "
            "1.600 | 1.25x | v4 64x64x16/4x4 |") in text


DOCUMENTED = {"summary.md", "results.json", "log.txt", "quick.jsonl", "step.png", "gpu-tests.xml", "roofline.png",
              "train-metrics.jsonl"}


def _plumbing(out, *mode, **settings):
    return subprocess.run(["bash", str(SCRIPT), str(out), *mode], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, GPU_CHECK_ALLOW_CPU="1", ALEXNET_CUDA_NO_GPU="1", PYTHON=sys.executable,
                                   GPU_CHECK_FACES="reference", **settings))


def test_full_run_starts_stops_and_summarises_every_part(tmp_path):
    """Every part of the full run, each held to 5 s: each is started, stopped by its limit if it has
    not finished, and reported; the summary and results still come, and OUTDIR holds only the
    documented files (eight at most)."""
    out = tmp_path / "out"
    done = _plumbing(out, GPU_CHECK_LIMIT_S="5")
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    statuses = {part["part"]: part["status"] for part in results["parts"]}
    assert list(statuses) == ["environment", "promoted", "curves", "step", "tune", "gpu-tests", "kernels", "train"]
    assert set(statuses.values()) <= {"ok", "cut off (time limit)"}, statuses
    assert "cut off (time limit)" in statuses.values() and results["mode"] == "full"
    assert all(part["seconds"] <= 5 + 16 for part in results["parts"])  # the limit, then SIGKILL 15 s later
    text = (out / "summary.md").read_text()
    assert text.startswith("# GPU check (full)") and "- cut off by their time limit: " in text
    assert "## GPU tests" in text and "## Kernels" in text and "## Training run" in text
    assert "## Measured kernel choice (alexnet-cuda tune)" in text  # the reference has no candidates: none
    assert {path.name for path in out.iterdir()} <= DOCUMENTED and len(DOCUMENTED) == 8


def test_quick_run_keeps_its_lines_when_cut_off_and_skips_what_the_budget_cannot_hold(tmp_path):
    """--quick runs the environment, promoted, curves and step parts only; the reference, standing in
    for the GPU faces at batch 128, is cut off part-way and keeps the lines it finished; once the
    budget is spent, the remaining parts are not started, and the summary says so."""
    out = tmp_path / "out"
    # The reference's promoted part at batch 128 outlasts its 35 s here, so environment and promoted
    # together take at least 38 s (or the whole 50 s budget) however loaded the machine is: curves
    # gets at most the 12 s left, and step never starts. (Curves alone can finish in 13 s on an idle
    # machine, so the budget must not count on curves being cut off.)
    done = _plumbing(out, "--quick", GPU_CHECK_BUDGET_S="50", GPU_CHECK_LIMIT_S="35")
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    statuses = {part["part"]: part["status"] for part in results["parts"]}
    assert list(statuses) == ["environment", "promoted", "curves", "step"] and results["mode"] == "quick"
    assert statuses["environment"] == "ok" and statuses["step"] == "not started (budget spent)"
    lines = [json.loads(line) for line in (out / "quick.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines if line["part"] == "environment"} == {"import", "toolchain"}
    promoted = [line for line in lines if line["part"] == "promoted"]
    if statuses["promoted"].startswith("cut off"):
        assert promoted[-1]["kind"] == "stopped" and all(line["status"] == "ok" for line in promoted[:-1])
    text = (out / "summary.md").read_text()
    assert text.startswith("# GPU check (quick)") and "- not started (budget spent): " in text and "step" in text
    assert "## GPU tests" not in text and "## Kernels" not in text
