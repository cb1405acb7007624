"""A training step the GPU never waits on: every device-to-host read of a training run is counted
through an instrumented face, and there is at most one per --log-every interval of steps plus one
per validation, where reading the loss and the top-1 counts every step made three per step."""

import math

import numpy as np
import pytest

from alexnet_cuda import config, training
from alexnet_cuda.readback import MAX_AUTO_STEPS, Readback
from kernels import reference
from tests.counting_face import CountingFace
from tests.training.support import make_array_loader, pattern_dataset, tiny_arch  # noqa: F401 (the fixture below)

pytestmark = pytest.mark.usefixtures("tiny_arch")


def _run(tmp_path, face, **flags):
    given = dict(arch="tiny", checkpoint_dir=str(tmp_path / "run"), checkpoint_every=0, batch_size=4, epochs=2,
                 **flags)
    trainer = training.Trainer(config.resolve(given), pattern_dataset(train_per_class=10), face, "cpu",
                               make_array_loader, progress_bars=False, log=lambda line: None)
    face.trainer = trainer
    for owner, name, phase in ((trainer, "validate", "validation"), (trainer.model, "host_arrays", "checkpoint")):
        original = getattr(owner, name)

        def tagged(*args, _original=original, _phase=phase, **kwargs):
            face.phase = _phase
            try:
                return _original(*args, **kwargs)
            finally:
                face.phase = "steps"

        setattr(owner, name, tagged)
    return trainer, trainer.run()


@pytest.mark.parametrize("every", [1, 3, 7])
def test_a_run_reads_once_per_log_interval_and_once_per_validation(tmp_path, every):
    face = CountingFace()
    trainer, result = _run(tmp_path, face, log_every=every)
    steps_per_epoch = 30 // 4
    assert result.status == "complete" and result.position.step == 2 * steps_per_epoch
    step_reads = [step for step, phase, _ in face.reads if phase == "steps"]
    # every `every` steps within an epoch, and at each epoch's end (step 7, then 14)
    expected = sorted({s for s in range(1, 15) if s % every == 0 or s % steps_per_epoch == 0})
    assert step_reads == expected, face.reads
    assert len(step_reads) <= 2 * (math.ceil(steps_per_epoch / every) + 1)
    assert [step for step, phase, _ in face.reads if phase == "validation"] == [7, 14]
    assert {step for step, phase, _ in face.reads if phase == "checkpoint"} == {7, 14}, "checkpoints only at epoch ends"


def test_the_reads_lose_nothing(tmp_path):
    """The totals come from the reads: the same losses, in the same order, as one read per step."""
    per_step, per_seven = [], []
    for every, losses in ((1, per_step), (7, per_seven)):
        given = dict(arch="tiny", checkpoint_dir=str(tmp_path / f"run{every}"), log_every=every, epochs=2)
        trainer = training.Trainer(config.resolve(given), pattern_dataset(), reference, "cpu", make_array_loader,
                                   progress_bars=False, on_step=lambda step, loss, out=losses: out.append((step, loss)),
                                   log=lambda line: None)
        trainer.run()
        losses.append([(r["train_loss"], r["train_top1"], r["train_images"]) for r in trainer.history])
    assert per_step == per_seven
    assert [step for step, _ in per_step[:-1]] == list(range(1, 19))


def test_the_default_interval_follows_the_step_time():
    """Without --log-every the reads aim at about one a second: steps of microseconds are read
    together, up to MAX_AUTO_STEPS at a time."""
    face = CountingFace()
    readback = Readback(face)
    values = []
    for step in range(1, 2001):
        readback.add(step, face.to_device(np.float32(step)), face.to_device(np.int64(1)), 4)
        if readback.due():
            values += readback.read()
    values += readback.read()
    assert [v.step for v in values] == list(range(1, 2001)) and [v.loss for v in values[:3]] == [1.0, 2.0, 3.0]
    assert len(face.reads) <= 2 + 2000 // MAX_AUTO_STEPS, face.reads
