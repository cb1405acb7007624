"""SIGKILL a real `alexnet-cuda train` process at random moments, check that every checkpoint on disk
loads, resume with --resume until the run completes, and compare with an uninterrupted run: on the
CPU the losses must be equal exactly."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from alexnet_cuda import checkpoint
from tests.training.support import write_image_folder

ROOT = Path(__file__).resolve().parents[2]
KILLS = 3


def _command(data, folder, extra=()):
    return [sys.executable, "-m", "alexnet_cuda", "train", "--data", str(data), "--arch", "alexnet-mini",
            "--device", "cpu", "--batch-size", "4", "--epochs", "3", "--checkpoint-every", "1", "--no-progress",
            "--checkpoint-dir", str(folder), "--metrics-file", str(folder / "metrics.jsonl"), *extra]


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _losses(folder):
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [(r["epoch"], r["step"], r["train_loss"], r["val_loss"], r["val_top1"]) for r in records if not r["partial"]]


def test_sigkill_at_random_moments_then_resume_completes_with_the_same_losses(tmp_path):
    data = write_image_folder(tmp_path / "data")
    uninterrupted = tmp_path / "uninterrupted"
    started = time.perf_counter()
    done = subprocess.run(_command(data, uninterrupted), env=_environment(), capture_output=True, text=True)
    duration = time.perf_counter() - started
    assert done.returncode == 0, done.stderr

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    folder = tmp_path / "killed"
    folder.mkdir()
    moments = []
    for _ in range(KILLS):
        last = folder / "last.npz"
        extra = ["--resume", str(last)] if last.exists() else []
        process = subprocess.Popen(_command(data, folder, extra), env=_environment(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        moments.append(rng.uniform(0.0, duration))
        try:
            process.wait(timeout=moments[-1])
        except subprocess.TimeoutExpired:
            process.kill()  # SIGKILL: no handler runs, no file is closed cleanly
            process.wait()
        for path in folder.glob("*.npz"):
            checkpoint.load(path)  # raises on a damaged file
    last = folder / "last.npz"
    extra = ["--resume", str(last)] if last.exists() else []
    finished = subprocess.run(_command(data, folder, extra), env=_environment(), capture_output=True, text=True)
    context = f"random seed {seed}, kills after {[round(m, 2) for m in moments]} s of a {duration:.1f} s run"
    assert finished.returncode == 0, f"{context}\n{finished.stdout}\n{finished.stderr}"
    assert checkpoint.load(last).meta["progress"] == {"epoch": 3, "batch": 0, "step": 18}, context
    assert _losses(folder) == _losses(uninterrupted), context
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [], "temporary files left behind"
