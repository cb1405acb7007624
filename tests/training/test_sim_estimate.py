"""`--device sim` says, before the first step, when Numba's simulator would take minutes or hours a
step, with the estimate and what to use instead; the count behind it is the threads a real step
launches."""

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from alexnet_cuda import config
from alexnet_cuda.backends import select_face
from alexnet_cuda.commands import train
from tests.training.support import write_image_folder

ROOT = Path(__file__).resolve().parents[2]


def _sim():
    return select_face("sim", "numba")[1]


def test_a_skipped_launch_counts_the_threads_a_run_launches_and_does_no_work():
    from kernels.numba import runtime

    face = _sim()
    x = face.to_device(np.linspace(-1, 1, 300, dtype=np.float32))
    before = runtime.threads_launched()
    ran = face.relu_forward(x)
    counted = runtime.threads_launched() - before
    assert counted >= 300 and np.array_equal(ran, np.maximum(x, 0))
    with runtime.skipped_launches(), runtime.poisoned_outputs():
        before = runtime.threads_launched()
        skipped = face.relu_forward(x)
        assert runtime.threads_launched() - before == counted
    assert np.isnan(skipped).all(), "a skipped launch leaves its output as allocated (poisoned here)"


def test_alexnet_mini_at_batch_32_is_called_hours_a_step(capsys):
    cfg = config.resolve({"arch": "alexnet-mini", "device": "sim", "kernels": "numba"})
    train._warn_of_simulated_step_time(cfg, _sim(), classes=10)
    out = capsys.readouterr().out
    assert "--device sim: one step of alexnet-mini at batch 32 launches 11,739,392 CUDA threads" in out, out
    assert "hours a step" in out and "--device emu --kernels cuda" in out and "--device cpu" in out


def test_a_step_of_seconds_passes_without_a_word(capsys):
    cfg = config.resolve({"arch": "tiny", "batch_size": 1})
    train._warn_of_simulated_step_time(cfg, _sim(), classes=3)
    assert capsys.readouterr().out == ""


def test_the_warning_comes_before_the_first_step(tmp_path):
    data = write_image_folder(tmp_path / "data")
    command = [sys.executable, "-m", "alexnet_cuda", "train", "--data", str(data), "--device", "sim", "-b", "8",
               "--no-progress", "--checkpoint-dir", str(tmp_path / "run")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    deadline = time.monotonic() + 120
    try:
        while b"--device sim:" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                break
            seen += chunk
        text = seen.decode()
        assert "--device sim: one step of alexnet-mini at batch 8 launches" in text, text
        assert process.poll() is None, "still on its first step"
    finally:
        process.kill()
        process.wait()
    assert not (tmp_path / "run" / "last.npz").exists()


def test_the_numbers_in_the_message_read_as_durations():
    assert train._duration(90) == "90 s"
    assert train._duration(600) == "10.0 minutes"
    assert train._duration(6.5 * 3600) == "6.5 hours"
    assert train._duration(30 * 86400) == "30 days"
