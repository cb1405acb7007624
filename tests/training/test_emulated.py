"""`--device emu`: the cuda face's CUDA C kernels, compiled by g++ for the CPU emulator, train the tiny
network and follow the NumPy reference's losses for the same seed."""

import pytest

from alexnet_cuda import config, training
from alexnet_cuda.backends import DeviceError, select_face
from alexnet_cuda.cli import main
from kernels import reference
from kernels.toolchain import emulator
from tests.training.support import make_array_loader, pattern_dataset, write_image_folder

needs_gxx = pytest.mark.skipif(not emulator.available(), reason="the CUDA C emulator needs g++")
STEPS = 18  # two epochs of the in-memory data


def _losses(tmp_path, face, device, name):
    losses = []
    given = dict(arch="tiny", checkpoint_dir=str(tmp_path / name), batch_size=8, lr=0.05, max_steps=STEPS,
                 log_every=1)
    trainer = training.Trainer(config.resolve(given), pattern_dataset(), face, device, make_array_loader,
                               progress_bars=False, on_step=lambda step, loss: losses.append(loss),
                               log=lambda line: None)
    trainer.run()
    return losses, trainer


@needs_gxx
def test_the_emulated_cuda_kernels_follow_the_reference_losses(tmp_path):
    device, face = select_face("emu", "cuda")
    assert device == "emu" and face.NAME == "cuda (emulated)"
    emulated, trainer = _losses(tmp_path, face, device, "emu")
    expected, _ = _losses(tmp_path, reference, "cpu", "reference")
    assert len(emulated) == STEPS
    assert emulated == pytest.approx(expected, rel=2e-5), (emulated, expected)
    assert sum(expected[-4:]) < sum(expected[:4]), "the steps compared are learning steps"
    assert [r["val_images"] for r in trainer.history] == [24, 24]


@needs_gxx
def test_train_on_emu_from_the_command_line(tmp_path, capsys):
    data = write_image_folder(tmp_path / "data")
    status = main(["train", "--data", str(data), "--arch", "tiny", "--device", "emu", "--kernels", "cuda", "-b", "4",
                   "--max-steps", "3", "--no-progress", "--checkpoint-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "device           emu, kernels cuda (emulated)" in out and "step 3," in out
    assert main(["eval", "--checkpoint", str(tmp_path / "run" / "last.npz"), "--device", "emu"]) == 0
    assert "emu (cuda (emulated))" in capsys.readouterr().out


@needs_gxx
def test_gradcheck_passes_on_emu(capsys):
    assert main(["gradcheck", "--device", "emu", "--max-entries", "4"]) == 0
    out = capsys.readouterr().out
    assert "face cuda (emulated) on emu, float32" in out and "all gradients match" in out


def test_emu_runs_only_the_cuda_face():
    with pytest.raises(DeviceError, match="--device emu runs the cuda face's CUDA C on the CPU; --kernels numba"):
        select_face("emu", "numba")


def test_emu_without_a_compiler_says_what_to_use_instead(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(DeviceError, match=r"g\+\+ was not found.*--device cpu"):
        select_face("emu", "cuda")
