"""`alexnet-cuda plot roofline` and `plot step` on the CPU `bench kernels --json` and `bench step
--json` of this machine, on the same results dressed as a GPU run's (other versions, a vendor, a
PyTorch baseline), on gpu_check.sh's results.json, and their bad inputs."""

import json

import pytest

from alexnet_cuda.plots import DPI, roofline, step
from tests.plots.conftest import run_cli
from tests.plots.pictures import read_picture

ROOFLINE_SIZE = (roofline.SIZE[0] * DPI, roofline.SIZE[1] * DPI)
STEP_SIZE = (step.SIZE[0] * DPI, step.SIZE[1] * DPI)


def test_roofline_of_the_cpu_json(bench_results, tmp_path):
    kernels_json, _ = bench_results
    output = tmp_path / "roofline.png"
    status, out, err = run_cli("plot", "roofline", str(kernels_json), "-o", str(output))
    assert status == 0, err
    result = json.loads(kernels_json.read_text())
    timed = [row for row in result["rows"] if row["ms"]]
    assert f"{len(timed)} timed kernels" in out and len(timed) >= 3
    read_picture(output, ROOFLINE_SIZE)


def as_gpu_run(result: dict) -> dict:
    """The CPU rows as a GPU run would have them: each case also timed by a second, unpromoted
    version of the cuda face, at twice the time, and by the vendor at half."""
    rows = []
    for row in result["rows"]:
        rows.append({**row, "face": "cuda", "version": "2", "promoted": True, "vendor": "cuDNN",
                     "vendor_ms": row["ms"] / 2})
        rows.append({**row, "face": "cuda", "version": "1", "promoted": False, "ms": row["ms"] * 2,
                     "vendor": "cuDNN", "vendor_ms": row["ms"] / 2})
    return {**result, "rows": rows, "environment": {**result["environment"], "gpu": "sample GPU"}}


def test_roofline_places_every_kernel_and_the_vendor_beside_the_promoted_version(bench_results):
    kernels_json, _ = bench_results
    result = as_gpu_run(json.loads(kernels_json.read_text()))
    figure = roofline.draw(result)
    axes = figure.axes[0]
    kernels = [c for c in axes.collections if c.get_gid() == "kernel:cuda"]
    vendors = [c for c in axes.collections if c.get_gid() == "vendor"]
    cases = len(result["rows"]) // 2
    assert len(kernels) == 2 * cases and len(vendors) == cases
    filled = [c for c in kernels if len(c.get_facecolor()) and c.get_facecolor()[0][3] > 0]
    assert len(filled) == cases, "the promoted versions filled, the others hollow"
    row = result["rows"][0]
    x, y = filled[0].get_offsets()[0]
    assert x == pytest.approx(row["flops"] / row["bytes"]) and y == pytest.approx(row["flops"] / row["ms"] / 1e6)
    vx, vy = vendors[0].get_offsets()[0]
    assert vx == pytest.approx(x) and vy == pytest.approx(2 * y), "the vendor at the same intensity, twice as fast"
    roof = next(line for line in axes.get_lines() if line.get_gid() == "roof")
    ceilings = result["ceilings"]
    ridge = ceilings["sgemm_flops_per_s"] / ceilings["copy_bytes_per_s"]
    assert roof.get_xdata()[1] == pytest.approx(ridge) and roof.get_ydata()[1] == pytest.approx(
        ceilings["sgemm_flops_per_s"] / 1e9)
    assert "sample GPU" in axes.get_title() and "GFLOP/s" in axes.get_ylabel() and "FLOP per byte" in axes.get_xlabel()


def test_step_of_the_cpu_json(bench_results, tmp_path):
    _, step_json = bench_results
    output = tmp_path / "step.svg"
    status, _, err = run_cli("plot", "step", str(step_json), "-o", str(output))
    assert status == 0, err
    assert "<svg" in output.read_text()
    output = tmp_path / "step.png"
    assert run_cli("plot", "step", str(step_json), "-o", str(output))[0] == 0
    read_picture(output, STEP_SIZE)


def test_step_bar_stacks_every_part_to_the_step_and_pytorch_stands_beside(bench_results):
    _, step_json = bench_results
    result = json.loads(step_json.read_text())
    timed = result["results"][0]
    result["results"][0] = {**timed, "torch_images_per_s": 2 * timed["images_per_s"]}
    figure = step.draw(result)
    axes = figure.axes[0]
    ours = [bar for bar in axes.patches if bar.get_gid() and bar.get_gid() != "PyTorch" and bar.get_x() < 0.5]
    assert sum(bar.get_height() for bar in ours) == pytest.approx(
        max(timed["breakdown_step_ms"], timed["parts_ms"]))
    names = {bar.get_gid() for bar in ours}
    assert {"conv1:forward", "conv1:backward", "fc8:forward", "loss:", "SGD update:"} <= names
    pytorch = [bar for bar in axes.patches if bar.get_gid() == "PyTorch"]
    assert len(pytorch) == 1 and pytorch[0].get_height() == pytest.approx(timed["ms_per_step"] / 2, rel=1e-6)
    assert [t.get_text() for t in axes.get_xticklabels()] == ["alexnet-owt\nreference face", "alexnet-owt\nPyTorch"]


def test_pictures_from_gpu_checks_results_json(bench_results, tmp_path):
    kernels_json, step_json = bench_results
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"mode": "full", "kernels": json.loads(kernels_json.read_text()),
                                   "step": json.loads(step_json.read_text())}))
    for picture, size in (("roofline", ROOFLINE_SIZE), ("step", STEP_SIZE)):
        output = tmp_path / f"{picture}.png"
        status, _, err = run_cli("plot", picture, str(results), "-o", str(output))
        assert status == 0, err
        read_picture(output, size)


def test_bad_benchmark_inputs_get_a_clear_error(bench_results, tmp_path, capsys):
    from alexnet_cuda.cli import main

    kernels_json, step_json = bench_results
    cases = [
        ("roofline", tmp_path / "missing.json", "no such file"),
        ("roofline", step_json, "holds no `bench kernels` result"),
        ("step", kernels_json, "holds no `bench step` result"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "kernels", "rows"')
    cases.append(("roofline", broken, "not a JSON file"))
    failed = tmp_path / "failed.json"
    result = json.loads(kernels_json.read_text())
    failed.write_text(json.dumps({**result, "rows": [{**row, "validation": "FAILED: x", "ms": None}
                                                    for row in result["rows"]]}))
    cases.append(("roofline", failed, "no timed kernel"))
    for picture, path, message in cases:
        assert main(["plot", picture, str(path), "-o", str(tmp_path / "p.png")]) == 2, path
        err = capsys.readouterr().err
        assert str(path) in err and message in err, err
    assert not (tmp_path / "p.png").exists()
