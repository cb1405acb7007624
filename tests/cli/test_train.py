"""`alexnet-cuda train` and `eval` end to end on small image folders, and every bad input the issue
names: each stops with a message that names the problem and the fix, and leaves checkpoints intact."""

import json
import re

import pytest

from alexnet_cuda import checkpoint
from alexnet_cuda.cli import main
from tests.images import build_bad_folder
from tests.training.support import write_image_folder

SMALL = ["--arch", "alexnet-mini", "--batch-size", "4", "--no-progress"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "images")


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    """A finished two-epoch run: (checkpoint folder, metrics records, stdout)."""
    run = tmp_path_factory.mktemp("run")
    metrics = run / "metrics.jsonl"
    capture = run / "stdout.txt"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["train", "--data", str(folder), *SMALL, "--epochs", "2", "--checkpoint-dir", str(run / "ckpt"),
                       "--metrics-file", str(metrics)])
    capture.write_text(out.getvalue())
    assert status == 0, out.getvalue()
    return run / "ckpt", [json.loads(line) for line in metrics.read_text().splitlines()], out.getvalue()


def test_train_prints_its_configuration_and_every_epoch(trained):
    _, records, out = trained
    assert "resolved configuration" in out
    assert re.search(r"arch\s+alexnet-mini", out) and re.search(r"batch size\s+4", out)
    assert "epoch 1/2: step 6," in out and "epoch 2/2: step 12," in out
    assert [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [6, 12]
    for record in records:
        assert {"lr", "train_loss", "val_loss", "val_top1", "val_top5", "images_per_s", "skipped_images"} <= set(record)
        assert record["val_images"] == 12 and record["skipped_images"] == 0
    assert records[1]["val_top5"] == 1.0, "three classes: the label is always in the top five"


def test_checkpoints_are_loadable_and_eval_reproduces_the_validation_top1(trained, capsys):
    ckpt, records, _ = trained
    for name in ("last.npz", "best.npz"):
        assert checkpoint.load(ckpt / name).meta["arch"] == "alexnet-mini"
    assert main(["eval", "--checkpoint", str(ckpt / "last.npz"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    top1 = float(re.search(r"top-1 ([0-9.]+)%", out).group(1)) / 100
    assert top1 == pytest.approx(records[-1]["val_top1"], abs=5e-5), out
    assert main(["eval", "--checkpoint", str(ckpt / "last.npz"), "--ten-crop", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "ten crops averaged" in out and "images 12" in out


def test_files_that_fail_to_decode_are_skipped_named_and_counted(tmp_path, capsys):
    bad = build_bad_folder(tmp_path / "bad")
    status = main(["train", "--data", str(bad.root), *SMALL, "--epochs", "1", "--checkpoint-dir",
                   str(tmp_path / "ckpt"), "--metrics-file", str(tmp_path / "m.jsonl")])
    out = capsys.readouterr().out
    assert status == 0, out
    record = json.loads((tmp_path / "m.jsonl").read_text())
    assert record["skipped_images"] == len(bad.broken)
    for path in bad.broken.values():
        assert str(path) in out, f"{path} not named"


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(("case", "expected"), [
    ("missing data", r"does-not-exist"),
    ("empty data", r"empty"),
    ("class only in train", r"class2"),
    ("batch size 0", r"--batch-size 0: must be at least 1"),
    ("checkpoint of another arch", r"architecture alexnet-mini.*--arch alexnet-mini"),
    ("corrupt checkpoint", r"broken\.npz: not a readable alexnet-cuda checkpoint"),
    ("checkpoint dir of another run", r"already holds last\.npz and best\.npz.*--resume"),
])
def test_bad_input_is_named_and_checkpoints_stay_intact(trained, folder, tmp_path, capsys, case, expected):
    """Data problems are tried while resuming the trained run (its data moved), so a bad input meets
    real checkpoints; none of them may change."""
    ckpt, _, _ = trained
    before = _snapshot(ckpt)
    resume = ["--resume", str(ckpt / "last.npz")]
    if case == "missing data":
        argv = [*resume, "--data", str(tmp_path / "does-not-exist")]
    elif case == "empty data":
        (tmp_path / "empty").mkdir()
        argv = [*resume, "--data", str(tmp_path / "empty")]
    elif case == "class only in train":
        partial = write_image_folder(tmp_path / "partial")
        for image in (partial / "val" / "class2").iterdir():
            image.unlink()
        (partial / "val" / "class2").rmdir()
        argv = [*resume, "--data", str(partial)]
    elif case == "batch size 0":
        argv = ["--data", str(folder), "--batch-size", "0", "--checkpoint-dir", str(tmp_path / "new")]
    elif case == "checkpoint of another arch":
        argv = [*resume, "--arch", "alexnet2012"]
    elif case == "corrupt checkpoint":
        broken = tmp_path / "broken.npz"
        broken.write_bytes((ckpt / "last.npz").read_bytes()[:5000])
        argv = ["--resume", str(broken), "--checkpoint-dir", str(ckpt)]
    else:
        argv = ["--data", str(folder), "--batch-size", "4", "--checkpoint-dir", str(ckpt)]
    status = main(["train", "--no-progress", *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert re.search(expected, err, re.S), err
    assert _snapshot(ckpt) == before, "a bad input changed the checkpoints"
    assert not (tmp_path / "new").exists()


def test_unknown_arch_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--arch", "alexnet3000"])
    assert stopped.value.code == 2
    assert "invalid choice: 'alexnet3000'" in capsys.readouterr().err


def test_eval_refuses_data_with_other_classes(trained, tmp_path, capsys):
    ckpt, _, _ = trained
    other = write_image_folder(tmp_path / "other", classes=4)
    assert main(["eval", "--checkpoint", str(ckpt / "last.npz"), "--data", str(other), "--device", "cpu"]) == 2
    assert "4 classes differ from the 3" in capsys.readouterr().err


def test_a_diverging_run_exits_with_a_crash_checkpoint(folder, tmp_path, capsys):
    status = main(["train", "--data", str(folder), *SMALL, "--epochs", "1", "--lr", "1000",
                   "--checkpoint-every", "1", "--checkpoint-dir", str(tmp_path / "ckpt")])
    out = capsys.readouterr().out
    assert status == 1
    assert "training diverged at epoch 1" in out and "crash.npz" in out and "Lower --lr" in out
    assert checkpoint.load(tmp_path / "ckpt" / "crash.npz").meta["status"] == "diverged"
    last = tmp_path / "ckpt" / "last.npz"
    if last.exists():
        saved = checkpoint.load(last)
        assert saved.meta["status"] == "ok"
        assert all(bool(abs(v).max() < float("inf")) for v in saved.params.values())
