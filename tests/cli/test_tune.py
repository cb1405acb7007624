"""`alexnet-cuda tune` and --kernel-choice as a user meets them without a GPU: refused with what to
do on the reference face, and the whole mechanism on the CUDA C emulator with a stand-in timer."""

import json

import pytest

from alexnet_cuda import cli
from alexnet_cuda.cli import build_parser
from kernels import choice, geometry, gpu_probe


def test_tune_refuses_the_reference_face_with_what_to_do(capsys, monkeypatch):
    monkeypatch.setenv("ALEXNET_CUDA_NO_GPU", "1")
    gpu_probe.gpu_count.cache_clear()
    try:
        assert cli.main(["tune", "--device", "cpu", "--arch", "tiny", "--batch", "1"]) == 2
    finally:
        gpu_probe.gpu_count.cache_clear()
    error = capsys.readouterr().err
    assert "no candidate kernels" in error and "--device emu" in error


def test_kernel_choice_is_a_flag_of_train_and_eval():
    assert build_parser().parse_args(["train", "--kernel-choice", "measured"]).kernel_choice == "measured"
    assert build_parser().parse_args(["eval", "--checkpoint", "c.npz"]).kernel_choice is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--kernel-choice", "fastest"])


def test_tune_on_the_emulator_fills_the_cache_and_prints_the_table(capsys, monkeypatch, tmp_path):
    """A stand-in timer makes the wide v4 tile fastest: every GEMM call of a tiny step is measured,
    every candidate validated, the choice cached under the emulator's name and printed with its gain."""
    wide = str(geometry.Candidate(4, geometry.WIDE_TILE))

    def stand_in(run):
        run()
        return 1.0 if run.candidate == wide else 2.0

    monkeypatch.setattr(choice, "host_timer", lambda: stand_in)
    path = tmp_path / "choices.json"
    assert cli.main(["tune", "--device", "emu", "--arch", "tiny", "--batch", "1", "--cache", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("note: --device emu times the candidates on the host")
    entries = json.loads(path.read_text())["choices"]
    ops = {key.split(" | ")[3] for key in entries}
    assert ops == set(geometry.GEMM_OPS)
    assert all(key.startswith("emu (host times, not a GPU) | none | cuda (emulated) |") for key in entries)
    assert {entry["choice"] for entry in entries.values()} == {wide}
    assert "REFUSED" not in out and f"choice {wide}: 2.00x the promoted version's speed" in out
