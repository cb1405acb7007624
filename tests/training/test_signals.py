"""SIGTERM and SIGINT sent to real `alexnet-cuda` processes in the middle of their work.

train finishes the step in flight, writes last.npz at that step, prints the command that resumes and
exits with 143 / 130; the resumed run ends with the uninterrupted run's metrics exactly. A second
signal ends it at once without touching last.npz. eval and prepare stop as cleanly.

The processes run tests/training/pause_driver.py, which pauses inside a chosen step (between its forward and
its backward) after printing a line: the signal is sent on that line, so it always lands mid-step.
A job started with `&` by a non-interactive shell ignores SIGINT, and its children inherit that; the
processes here restore the default first, as an interactive shell does.
"""

import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alexnet_cuda.checkpoint import load, saved_step
from tests.training.support import write_image_folder

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("pause_driver.py")
STEPS_PER_EPOCH = 12  # 24 training images in batches of 2
PAUSED_STEP = 7  # mid-epoch, two steps after the periodic checkpoint at step 5
SIGNALS = {"SIGTERM": (signal.SIGTERM, 143), "SIGINT": (signal.SIGINT, 130)}
COMPARED = ("epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "train_images")


def _train_flags(data, folder):
    return ["train", "--data", str(data), "--arch", "tiny", "--device", "cpu", "-b", "2", "--epochs", "2",
            "--lr", "0.05", "--checkpoint-every", "5", "-p", "3", "--no-progress", "--checkpoint-dir", str(folder),
            "--metrics-file", str(folder / "metrics.jsonl")]


def _environment(**extra):
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(arguments, pause_in, pause_at):
    return subprocess.Popen([sys.executable, str(DRIVER), *arguments], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=_default_sigint,
                            env=_environment(PAUSE_IN=pause_in, PAUSE_AT=str(pause_at)))


def _wait_for(process, text, timeout=120.0) -> str:
    """The output up to and including `text`, read without blocking past the deadline."""
    seen = b""
    deadline = time.monotonic() + timeout
    descriptor = process.stdout.fileno()
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([descriptor], [], [], max(remaining, 0))
        chunk = os.read(descriptor, 65536) if ready else b""
        if not chunk:
            process.kill()
            raise AssertionError(f"no {text!r} from the process within {timeout} s; it printed:\n{seen.decode()}")
        seen += chunk
    return seen.decode()


def _finish(process, before="") -> tuple[int, str]:
    out, _ = process.communicate(timeout=120)
    return process.returncode, before + out.decode()


def _metrics(folder):
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{key: record[key] for key in COMPARED} for record in records]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("signals") / "images")


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    done = subprocess.run([sys.executable, "-m", "alexnet_cuda", *_train_flags(data, folder)], cwd=ROOT,
                          env=_environment(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return _metrics(folder)


@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_mid_step_checkpoints_that_step_and_the_resumed_run_matches(data, uninterrupted, tmp_path, name):
    signum, status = SIGNALS[name]
    folder = tmp_path / "run"
    process = _start(_train_flags(data, folder), "train", PAUSED_STEP)
    before = _wait_for(process, "paused")
    assert saved_step(folder / "last.npz") == 5, "the periodic checkpoint before the paused step"
    process.send_signal(signum)
    code, out = _finish(process, before)
    assert code == status, out
    saved = load(folder / "last.npz")
    assert saved.meta["progress"] == {"epoch": 0, "batch": PAUSED_STEP, "step": PAUSED_STEP}, out
    assert saved.meta["epoch_totals"]["images"] == 2 * PAUSED_STEP, "every finished step's loss is in the totals"
    command = f"alexnet-cuda train --resume {shlex.quote(str(folder / 'last.npz'))}"
    assert f"{name}: stopped after step {PAUSED_STEP} (epoch 1, batch {PAUSED_STEP})" in out, out
    assert f"resume with `{command}`" in out, out
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [], "temporary files left behind"

    resumed = subprocess.run([sys.executable, "-m", "alexnet_cuda", *shlex.split(command)[1:], "--no-progress"],
                             cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert load(folder / "last.npz").meta["progress"] == {"epoch": 2, "batch": 0, "step": 2 * STEPS_PER_EPOCH}
    assert _metrics(folder) == uninterrupted


def test_a_second_signal_stops_at_once_and_leaves_last_npz_alone(data, tmp_path):
    folder = tmp_path / "run"
    process = _start(_train_flags(data, folder), "train", PAUSED_STEP)
    before = _wait_for(process, "paused")
    periodic = (folder / "last.npz").read_bytes()
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    code, out = _finish(process, before)
    assert code == 143, out
    assert "SIGTERM: stopped at once, writing nothing more" in out and "holds step 5" in out, out
    assert (folder / "last.npz").read_bytes() == periodic
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [], "temporary files left behind"


@pytest.mark.parametrize("name", list(SIGNALS))
def test_eval_stops_after_the_batch_in_flight(data, tmp_path, name):
    signum, status = SIGNALS[name]
    folder = tmp_path / "run"
    trained = subprocess.run([sys.executable, "-m", "alexnet_cuda", *_train_flags(data, folder), "--max-steps", "2"],
                             cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    process = _start(["eval", "--checkpoint", str(folder / "last.npz"), "--device", "cpu", "-b", "2"], "eval", 3)
    before = _wait_for(process, "paused")
    process.send_signal(signum)
    code, out = _finish(process, before)
    assert code == status, out
    assert f"{name}: interrupted after 3 of 6 batches; nothing was written" in out, out
    assert "Traceback" not in out


def test_prepare_stops_on_sigterm_and_resumes(data, tmp_path):
    destination = tmp_path / "packed"
    arguments = ["prepare", str(data), str(destination), "--size", "16", "--workers", "1", "--quiet"]
    process = _start(arguments, "prepare", 2)  # the val split's chunk, once the train split's is on disk
    before = _wait_for(process, "paused")
    process.send_signal(signal.SIGTERM)
    code, out = _finish(process, before)
    assert code == 143, out
    assert f"SIGTERM: interrupted; the work done so far is kept in {destination}.partial" in out, out
    assert "Traceback" not in out and not destination.exists()
    again = subprocess.run([sys.executable, "-m", "alexnet_cuda", *arguments], cwd=ROOT, env=_environment(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((destination / "manifest.json").read_text())["splits"]["val"]["packed"] == 12


def test_sigterm_to_the_whole_process_group_with_loader_workers(data, uninterrupted, tmp_path):
    """Schedulers often signal every process of the job: the loader's workers end too, and the step in
    flight is still finished and checkpointed."""
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, str(DRIVER), *_train_flags(data, folder), "-j", "2"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                               env=_environment(PAUSE_IN="train", PAUSE_AT=str(PAUSED_STEP)))
    before = _wait_for(process, "paused")
    os.killpg(process.pid, signal.SIGTERM)
    code, out = _finish(process, before)
    assert code == 143, out
    assert load(folder / "last.npz").meta["progress"]["step"] == PAUSED_STEP, out
    resumed = subprocess.run([sys.executable, "-m", "alexnet_cuda", "train", "--resume", str(folder / "last.npz"),
                              "--no-progress"], cwd=ROOT, env=_environment(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _metrics(folder) == uninterrupted
