"""The trainer's ways of ending early, in process: a stop asked for mid-step, a second signal in the
middle of writing last.npz, a disk too full for a checkpoint, and divergence caught at a read."""

import errno
import os
import re
import signal

import numpy as np
import pytest

from alexnet_cuda import checkpoint, config, training
from alexnet_cuda.stopping import StopNow, StopSignals
from kernels import reference
from tests.training.support import make_array_loader, pattern_dataset, tiny_arch  # noqa: F401 (the fixture below)

pytestmark = pytest.mark.usefixtures("tiny_arch")
STEPS_PER_EPOCH = 9  # 72 images in batches of 8


def make_trainer(tmp_path, name="run", resume_from=None, should_stop=None, **flags):
    given = dict(arch="tiny", checkpoint_dir=str(tmp_path / name), **flags)
    cfg = config.resolve(given, resume_from.meta["config"] if resume_from else None)
    return training.Trainer(cfg, pattern_dataset(), reference, "cpu", make_array_loader, resume_from=resume_from,
                            progress_bars=False, should_stop=should_stop, log=lambda line: None)


def signal_during_backward(trainer, at_step, signum=signal.SIGTERM):
    """Deliver a real signal to this process in the middle of step `at_step` (after its forward)."""
    original = trainer.model.backward

    def backward():
        if trainer.position.step + 1 == at_step:
            os.kill(os.getpid(), signum)
        return original()

    trainer.model.backward = backward


@pytest.mark.parametrize("at_step", [2, 5, 11])  # before the first checkpoint, mid-epoch, in epoch 2
def test_a_stop_mid_step_finishes_that_step_and_checkpoints_it(tmp_path, at_step):
    whole = make_trainer(tmp_path, "whole", epochs=2, log_every=4)
    whole.run()
    with StopSignals() as stop:
        trainer = make_trainer(tmp_path, epochs=2, log_every=4, checkpoint_every=3, should_stop=stop.requested)
        signal_during_backward(trainer, at_step)
        result = trainer.run()
    assert result.status == "interrupted" and stop.signum == signal.SIGTERM
    saved = checkpoint.load(tmp_path / "run" / training.LAST)
    epoch, batch = divmod(at_step, STEPS_PER_EPOCH)
    assert saved.meta["progress"] == {"epoch": epoch, "batch": batch, "step": at_step}
    resumed = make_trainer(tmp_path, resume_from=training.load_for_resume(tmp_path / "run" / training.LAST))
    assert resumed.run().status == "complete"
    assert resumed.history == [{**record, "images_per_s": r["images_per_s"], "data_wait_s": r["data_wait_s"]}
                               for record, r in zip(whole.history, resumed.history, strict=True)]


def test_a_second_signal_while_last_npz_is_written_leaves_the_previous_one(tmp_path, monkeypatch):
    with StopSignals() as stop:
        trainer = make_trainer(tmp_path, epochs=2, checkpoint_every=3, should_stop=stop.requested)
        signal_during_backward(trainer, 5)
        real_savez = np.savez

        def savez_interrupted(file, **arrays):
            if stop.requested():  # the stop's own checkpoint: a second signal arrives half-way through it
                file.write(b"PK\x03\x04 half of an archive")
                os.kill(os.getpid(), signal.SIGTERM)
            return real_savez(file, **arrays)

        monkeypatch.setattr(checkpoint.np, "savez", savez_interrupted)
        last = tmp_path / "run" / training.LAST
        original_save_last = trainer._save_last

        def remember_and_save():
            original_save_last()
            remember_and_save.bytes = last.read_bytes()

        trainer._save_last = remember_and_save
        with pytest.raises(StopNow):
            trainer.run()
    assert checkpoint.saved_step(last) == 3 and last.read_bytes() == remember_and_save.bytes
    assert [p.name for p in last.parent.iterdir() if p.name.startswith(".")] == [], "temporary file left behind"


def test_sigint_ignored_by_a_background_job_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_full_disk_ends_the_run_with_one_line_and_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, epochs=2, checkpoint_every=3)
    real_savez = np.savez
    last = tmp_path / "run" / training.LAST
    writes = []

    def savez_until_full(file, **arrays):
        writes.append(checkpoint.saved_step(last))
        if len(writes) == 3:  # the checkpoint after those of steps 3 and 6
            file.write(b"PK\x03\x04 the first bytes")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_savez(file, **arrays)

    monkeypatch.setattr(checkpoint.np, "savez", savez_until_full)
    with pytest.raises(training.NotWritten) as failure:
        trainer.run()
    message = str(failure.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"could not write {re.escape(str(last))}: No space left on device; the previous {re.escape(str(last))} "
        rf"\(step 6\) is intact; resume with `alexnet-cuda train --resume {re.escape(str(last))}` once there is room",
        message), message
    assert checkpoint.saved_step(last) == 6
    assert [p.name for p in last.parent.iterdir() if p.name.startswith(".")] == [], "temporary file left behind"


def test_a_full_disk_before_any_checkpoint_says_so(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, epochs=1, checkpoint_every=3)

    def full(file, **arrays):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.np, "savez", full)
    with pytest.raises(training.NotWritten, match=r"No space left on device; no earlier last\.npz of this run "
                                                  r"exists; run the same command again once there is room"):
        trainer.run()


def test_divergence_names_the_interval_it_was_read_in_and_no_checkpoint_holds_it(tmp_path):
    good = make_trainer(tmp_path, epochs=1)
    good.run()
    last = tmp_path / "run" / training.LAST
    good_bytes = last.read_bytes()
    diverging = make_trainer(tmp_path, resume_from=training.load_for_resume(last), epochs=3, log_every=4,
                             checkpoint_every=0)
    diverging.schedule.lr = 1e6
    with pytest.raises(training.Diverged) as failure:
        diverging.run()
    message = str(failure.value)
    interval = re.search(r"in the interval of steps (\d+) to (\d+), read at step (\d+): the loss of step (\d+) is "
                         r"(nan|inf)", message)
    assert interval, message
    first, last_step, read_at, bad = (int(v) for v in interval.groups()[:4])
    # reads at multiples of 4; the resumed run's first step is 10
    assert last_step == read_at and read_at % 4 == 0 and first == max(read_at - 3, 10) and first <= bad <= read_at
    assert last.read_bytes() == good_bytes
    crash = checkpoint.load(tmp_path / "run" / training.CRASH)
    assert crash.meta["status"] == "diverged" and crash.meta["progress"]["step"] == read_at


def test_no_checkpoint_ever_holds_weights_that_are_not_finite(tmp_path):
    """A checkpoint every step, reads every fourth: each checkpoint reads and checks first."""
    trainer = make_trainer(tmp_path, epochs=3, log_every=4, checkpoint_every=1)
    trainer.schedule.lr = 1e4
    with pytest.raises(training.Diverged):
        trainer.run()
    last = checkpoint.load(tmp_path / "run" / training.LAST)
    crash = checkpoint.load(tmp_path / "run" / training.CRASH)
    assert last.meta["progress"]["step"] < crash.meta["progress"]["step"]
    assert all(np.isfinite(value).all() for value in [*last.params.values(), *last.velocities.values()])
    assert not all(np.isfinite(value).all() for value in crash.params.values())
