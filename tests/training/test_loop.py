"""The training loop in process, on a tiny network and in-memory data: learning, determinism, exact
resume, checkpoint contents, divergence handling."""

import json

import numpy as np
import pytest

from alexnet_cuda import checkpoint, config, training
from kernels import reference
from tests.training.support import make_array_loader, pattern_dataset, tiny_arch  # noqa: F401 (the fixture below)

pytestmark = pytest.mark.usefixtures("tiny_arch")


def make_trainer(tmp_path, name="run", resume_from=None, steps=None, **flags):
    given = dict(arch="tiny", checkpoint_dir=str(tmp_path / name), **flags)
    cfg = config.resolve(given, resume_from.meta["config"] if resume_from else None)
    losses = [] if steps is None else steps
    trainer = training.Trainer(cfg, pattern_dataset(), reference, "cpu", make_array_loader,
                               resume_from=resume_from, progress_bars=False,
                               on_step=lambda step, loss: losses.append((step, loss)), log=lambda line: None)
    return trainer, losses


def test_training_reduces_the_loss_and_beats_chance(tmp_path):
    trainer, losses = make_trainer(tmp_path, epochs=6)
    result = trainer.run()
    assert result.status == "complete" and result.position.step == 6 * (72 // 8)
    first, last = np.mean([l for _, l in losses[:5]]), np.mean([l for _, l in losses[-5:]])
    assert last < 0.5 * first, (first, last)
    assert result.history[-1]["val_top1"] >= 0.9, result.history[-1]


def test_same_seed_same_losses_and_weights(tmp_path):
    first, losses_a = make_trainer(tmp_path, "a", epochs=2)
    second, losses_b = make_trainer(tmp_path, "b", epochs=2)
    first.run()
    second.run()
    assert losses_a == losses_b
    for (key, a), (_, b) in zip(first.model.named_arrays("params"), second.model.named_arrays("params"), strict=True):
        assert np.array_equal(a, b), key
    other, losses_c = make_trainer(tmp_path, "c", epochs=2, seed=1)
    other.run()
    assert losses_c != losses_a


@pytest.mark.parametrize("stop_at", [4, 9, 13])  # mid-epoch after a checkpoint, at an epoch end, mid-epoch
def test_resume_gives_the_uninterrupted_losses_exactly(tmp_path, stop_at):
    whole, whole_losses = make_trainer(tmp_path, "whole", epochs=3)
    whole.run()
    interrupted, losses = make_trainer(tmp_path, "split", epochs=3, max_steps=stop_at)
    assert interrupted.run().status == "stopped"
    saved = training.load_for_resume(tmp_path / "split" / training.LAST)
    assert saved.meta["progress"]["step"] == stop_at
    resumed, _ = make_trainer(tmp_path, "split", resume_from=saved, steps=losses, max_steps=10**6)
    result = resumed.run()
    assert result.status == "complete"
    assert losses == whole_losses
    complete = [r for r in result.history if not r["partial"]]
    assert [r["train_loss"] for r in complete] == [r["train_loss"] for r in whole.history]
    assert [r["val_loss"] for r in complete] == [r["val_loss"] for r in whole.history]


def test_checkpoint_holds_the_whole_state(tmp_path):
    trainer, _ = make_trainer(tmp_path, epochs=1, metrics_file=str(tmp_path / "metrics.jsonl"))
    trainer.run()
    saved = checkpoint.load(tmp_path / "run" / training.LAST)
    meta = saved.meta
    assert meta["arch"] == "tiny" and meta["classes"] == ["class0", "class1", "class2"]
    assert meta["progress"] == {"epoch": 1, "batch": 0, "step": 9}
    assert meta["config"]["lr"] == 0.05 and meta["schedule"]["epochs_done"] == 1
    assert meta["rng"]["seed"] == 0 and meta["rng"]["dropout_offset_next"] == 9 * 2
    for key, value in trainer.model.host_arrays("params").items():
        assert np.array_equal(saved.params[key], value), key
    for key, value in trainer.model.host_arrays("velocities").items():
        assert np.array_equal(saved.velocities[key], value), key
        assert np.any(value != 0), f"{key}: momentum buffer never moved"
    assert (tmp_path / "run" / training.BEST).is_file()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1
    for key in ("epoch", "step", "lr", "train_loss", "val_loss", "val_top1", "val_top5", "images_per_s",
                "skipped_images"):
        assert key in records[0], key
    assert records[0] == meta["history"][0]


def test_a_diverging_run_stops_with_a_crash_checkpoint_and_keeps_the_last_good_one(tmp_path):
    trainer, _ = make_trainer(tmp_path, epochs=1)
    trainer.run()
    last = tmp_path / "run" / training.LAST
    good_bytes = last.read_bytes()
    saved = training.load_for_resume(last)
    diverging, _ = make_trainer(tmp_path, "run", resume_from=saved, epochs=3)
    diverging.schedule.lr = 1e6  # a blow-up the way a too-large lr makes one
    with pytest.raises(training.Diverged, match=r"diverged at epoch 2.*crash\.npz.*untouched"):
        diverging.run()
    assert last.read_bytes() == good_bytes
    crash = checkpoint.load(tmp_path / "run" / training.CRASH)
    assert crash.meta["status"] == "diverged"
    with pytest.raises(checkpoint.CheckpointError, match="crash checkpoint"):
        training.load_for_resume(tmp_path / "run" / training.CRASH)


def test_a_corrupt_checkpoint_is_refused_with_its_name(tmp_path):
    damaged = tmp_path / "last.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(checkpoint.CheckpointError, match=r"last\.npz: not a readable alexnet-cuda checkpoint"):
        checkpoint.load(damaged)


def test_a_truncated_checkpoint_is_refused(tmp_path):
    trainer, _ = make_trainer(tmp_path, epochs=1)
    trainer.run()
    whole = (tmp_path / "run" / training.LAST).read_bytes()
    for cut in (len(whole) // 3, len(whole) - 10):
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(whole[:cut])
        with pytest.raises(checkpoint.CheckpointError, match="damaged"):
            checkpoint.load(truncated)


def test_resuming_with_another_arch_or_optimisation_is_refused(tmp_path):
    trainer, _ = make_trainer(tmp_path, epochs=1)
    trainer.run()
    saved = training.load_for_resume(tmp_path / "run")
    with pytest.raises(config.ConfigError, match="architecture tiny"):
        config.resolve({"arch": "alexnet-mini"}, saved.meta["config"])
    with pytest.raises(config.ConfigError, match=r"--lr 0\.5: the checkpoint was trained with 0\.05"):
        config.resolve({"lr": 0.5}, saved.meta["config"])
    assert config.resolve({"epochs": 9}, saved.meta["config"]).epochs == 9


def test_bad_configuration_values_are_named():
    with pytest.raises(config.ConfigError, match="--batch-size 0: must be at least 1"):
        config.resolve({"batch_size": 0})
    with pytest.raises(config.ConfigError, match="--arch 'alexnet3000'"):
        config.resolve({"arch": "alexnet3000"})
    with pytest.raises(config.ConfigError, match=r"--momentum 1\.0"):
        config.resolve({"momentum": 1.0})
