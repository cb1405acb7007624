"""`alexnet-cuda bench` and `alexnet-cuda inspect` from the command line, as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernels.toolchain import resources

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env=None):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), ALEXNET_CUDA_NO_GPU="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "alexnet_cuda", *args], capture_output=True, text=True,
                          cwd=ROOT, env=environment, timeout=600)


def test_bench_kernels_on_the_cpu_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "kernels.json"
    done = cli("bench", "kernels", "--batch", "1", "--arch", "alexnet-owt", "--op", "relu_forward",
               "--op", "softmax_xent_backward", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "GPU numbers need a GPU" in done.stdout
    assert "relu_forward" in done.stdout and "softmax_xent_backward" in done.stdout
    result = json.loads(out.read_text())
    assert result["kind"] == "kernels" and len(result["rows"]) == 6
    assert result["ceilings"]["device"] == "cpu"


def test_bench_step_on_the_cpu(tmp_path):
    done = cli("bench", "step", "--arch", "alexnet-owt", "--batch", "1", "--steps", "1", "--warmup", "0",
               "--json", str(tmp_path / "step.json"))
    assert done.returncode == 0, done.stderr
    assert "images/s" in done.stdout and "GPU numbers need a GPU" in done.stdout
    assert json.loads((tmp_path / "step.json").read_text())["results"][0]["face"] == "reference"


def test_bench_loader_delegates_to_the_loaders_benchmark():
    done = cli("bench", "loader", "--help")
    assert done.returncode == 0 and "--images" in done.stdout and "--json" in done.stdout
    done = cli("bench", "loader", "--images", "1")
    assert done.returncode == 2 and "--images 1" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("bench", "kernels", "--batch", "0"), "--batch"),
    (("bench", "kernels", "--op", "relu_sideways"), "relu_sideways"),
    (("bench", "step", "--steps", "0"), "--steps"),
    (("bench", "kernels", "--json", "/no/such/folder/k.json"), "/no/such/folder"),
    (("inspect", "relu_sideways"), "relu_sideways"),
])
def test_bad_arguments_stop_before_any_work_with_a_clear_message(args, message):
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    """`alexnet-cuda inspect --json` over every kernel of both faces, run once for the tests below."""
    out = tmp_path_factory.mktemp("inspect") / "inspect.json"
    done = cli("inspect", "--json", str(out))
    return done, json.loads(out.read_text())["reports"] if out.exists() else []


def test_inspect_reports_every_kernel_of_both_faces(inspected):
    done, reports = inspected
    assert done.returncode == 0, done.stdout + done.stderr
    numba_targets = _numba_target_names()
    assert numba_targets, "the Numba face declares its kernels"
    for kernel in numba_targets:
        assert kernel in done.stdout
    import kernels.cuda

    for target in kernels.cuda.compile_targets():
        assert target.name_expression.replace(", ", ",") in done.stdout
    assert "occupancy" in done.stdout and "FAILED" not in done.stdout
    assert all(r["error"] is None and r["registers"] > 0 and 0 < r["occupancy"] <= 1 for r in reports)


def test_tiled_kernels_report_their_shared_memory_and_promoted_versions_are_marked(inspected):
    import kernels.cuda

    _, reports = inspected
    linear = [r for r in reports if r["op"] == "linear_forward"]
    tiled = [r for r in linear if r["version"] >= 2]
    assert {r["face"] for r in tiled} == {"cuda", "numba"}
    assert all(r["shared_bytes"] > 0 for r in tiled), tiled
    assert all(r["shared_bytes"] == 0 for r in linear if r["version"] == 1)
    promoted = {(r["face"], r["version"]) for r in linear if r["promoted"]}
    assert ("cuda", kernels.cuda.PROMOTED["linear_forward"]) in promoted
    assert len(promoted) == 2  # one version per face


def test_inspect_one_op_with_ptx_and_json(tmp_path):
    out = tmp_path / "inspect.json"
    done = cli("inspect", "relu_forward", "--face", "numba", "--ptx", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert ".entry" in done.stdout and ".target sm_90" in done.stdout
    reports = json.loads(out.read_text())["reports"]
    assert reports and all(r["op"] == "relu_forward" and r["registers"] > 0 for r in reports)
    assert all(0 < r["occupancy"] <= 1 and r["ptx"] for r in reports)


def _numba_target_names():
    listing = subprocess.run(
        [sys.executable, "-c", "import kernels.numba as nb; print('\\n'.join(t.kernel for t in nb.compile_targets()))"],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    return listing.stdout.split()


def test_ptx_entry_is_cut_out_of_a_module():
    ptx = ".version 8.0\n.visible .entry a(\n.param .u64 p\n)\n{\n ret;\n}\n\n.visible .entry b(\n)\n{\n ret;\n}\n"
    assert resources.entry_ptx(ptx, "b") == ".visible .entry b(\n)\n{\n ret;\n}"
    assert resources.entry_ptx(ptx, "c") == ptx


def test_threads_per_block_come_from_the_target_or_the_geometry():
    from types import SimpleNamespace

    from kernels import geometry

    assert resources.threads_per_block(SimpleNamespace(op="relu_forward", version=1, kernel="k", threads=128)) == (
        128, "target")
    assert resources.threads_per_block(SimpleNamespace(op="relu_forward", version=1, kernel="k")) == (
        geometry.THREADS_PER_BLOCK, "geometry")
    tile = geometry.LINEAR_TILES[3]
    assert resources.threads_per_block(SimpleNamespace(op="linear_forward", version=3, kernel="gemm")) == (
        tile.threads, "geometry")


def test_static_shared_memory_is_summed_from_ptx_declarations():
    ptx = (".visible .shared .align 4 .b8 _cudapy_smem_1[1024];\n.shared .align 4 .b8 _cudapy_smem_2[1024];\n"
           ".extern .shared .align 16 .b8 dynamic[];\n\t.shared .f32 x[10];\n\tst.shared.f32 [%rd1], %f1;\n")
    assert resources.ptx_static_shared_bytes(ptx) == 2048 + 40
