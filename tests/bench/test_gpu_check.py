"""benchmarks/gpu_check.sh where there is no GPU: its syntax, its clean refusal, and its summary
writer on sample results of every part (real CPU results, a JUnit report, training metrics)."""

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


def test_script_refuses_cleanly_without_a_gpu(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, ALEXNET_CUDA_NO_GPU="1", PYTHON=sys.executable))
    assert done.returncode == 3
    assert "no CUDA GPU found" in done.stderr and "nothing was run" in done.stderr
    assert list(out.iterdir()) == []


def test_script_usage_error():
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr


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
    parts = out / "parts.tsv"
    parts.write_text("environment\tok\t2\t30\ngpu-tests\tfailed (1)\t40\t110\nkernels\tok\t120\t160\n"
                     "step\ttimed out\t80\t80\ntrain\tskipped (budget spent)\t0\t100\n")
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
    assert "| gpu-tests | failed (1) | 40 | 110 |" in text
    assert "2 passed, 1 failed, 0 errors, 2 skipped of 5" in text
    assert "tests.test_cuda_conv::test_conv1: AssertionError: y: 3 of 4 elements outside atol" in text
    assert "| conv2d_forward | reference |" in text and "### Missed targets and failures" in text
    assert "alexnet-owt on reference, ms per layer" in text
    assert "| 1 | 50 | 0.01 | 6.9 | 0.1 | 1234 |" in text
    results = json.loads((out / "results.json").read_text())
    assert results["gpu_tests"]["failures"] == 1
    assert [p["status"] for p in results["parts"]][-1] == "skipped (budget spent)"
    assert results["kernels"]["rows"] and results["step"]["results"]


def test_summary_says_what_is_missing(tmp_path):
    results, text = summary.build(tmp_path, None, {"gpu": "sample GPU"})
    assert results["kernels"] is None and results["gpu_tests"] is None
    assert "No kernel results" in text and "No test report" in text and "No metrics" in text
    assert text.startswith("# GPU check: sample GPU")


def test_budget_stops_parts_and_the_summary_still_comes(tmp_path):
    """The plumbing, without a GPU: with a 25 s budget the first parts run (the CPU kernel benchmark
    runs out of its time), the rest are 'skipped (budget spent)', the summary and results are still
    written, OUTDIR holds only the documented files, and the exit status says not all went well."""
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, GPU_CHECK_ALLOW_CPU="1", GPU_CHECK_BUDGET_S="25",
                                   ALEXNET_CUDA_NO_GPU="1", PYTHON=sys.executable))
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    statuses = {part["part"]: part["status"] for part in results["parts"]}
    assert list(statuses) == ["environment", "gpu-tests", "kernels", "step", "train"]
    assert statuses["environment"] == "ok"
    assert statuses["step"] == statuses["train"] == "skipped (budget spent)"
    assert sum(part["seconds"] for part in results["parts"]) <= 25 + 2
    summary_text = (out / "summary.md").read_text()
    assert "| train | skipped (budget spent) |" in summary_text and "No metrics" in summary_text
    if (out / "kernels.json").exists():  # stopped by SIGINT, the benchmark kept the cases it finished
        partial = json.loads((out / "kernels.json").read_text())
        assert partial["complete"] is False and len(partial["rows"]) >= partial["cases_done"]
        assert f"stopped after {partial['cases_done']} of {partial['cases']} cases" in summary_text
    documented = {"summary.md", "results.json", "log.txt", "gpu-tests.xml", "kernels.json", "step.json",
                  "train-metrics.jsonl"}
    assert {path.name for path in out.iterdir()} <= documented
