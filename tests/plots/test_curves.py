"""`alexnet-cuda plot curves` and `train --plot` on a real two-epoch run, and their bad inputs."""

import json

import numpy as np
import pytest

from alexnet_cuda.plots import DPI, curves
from tests.plots.conftest import run_cli
from tests.plots.pictures import read_picture

SIZE = (curves.SIZE[0] * DPI, curves.SIZE[1] * DPI)


def test_curves_of_a_metrics_file_and_of_a_checkpoint(trained, tmp_path):
    for source in (trained["metrics"], trained["folder"] / "last.npz"):
        output = tmp_path / f"{source.suffix[1:]}.png"
        status, out, err = run_cli("plot", "curves", str(source), "-o", str(output))
        assert status == 0, err
        assert "2 epochs" in out
        read_picture(output, SIZE)


def test_curves_mark_the_learning_rate_drop(trained):
    """The run divides the rate by 10 after epoch 1: one drop, between epochs 1 and 2, on the lr axis."""
    run = curves.read_run(trained["metrics"])
    assert [r["epoch"] for r in run.records] == [1, 2]
    assert run.records[1]["lr"] == pytest.approx(run.records[0]["lr"] / 10)
    figure = curves.draw([run])
    loss_axes, accuracy_axes, lr_axes = figure.axes
    drops = [line for line in lr_axes.get_lines() if line.get_gid() == curves.DROP_GID]
    assert [float(line.get_xdata()[0]) for line in drops] == [1.5]
    assert [text.get_text() for text in lr_axes.texts] == ["÷10"]
    assert lr_axes.get_yscale() == "log" and "learning rate" in lr_axes.get_ylabel()
    plotted = {line.get_label(): line for line in loss_axes.get_lines() + accuracy_axes.get_lines()}
    assert list(plotted["validation"].get_ydata()) == [r["val_loss"] for r in run.records]
    assert list(plotted["validation top-5"].get_ydata()) == [100 * r["val_top5"] for r in run.records]
    assert all("epoch" not in axes.get_xlabel() for axes in (loss_axes, accuracy_axes))
    assert lr_axes.get_xlabel() == "epoch" and "(nats)" in loss_axes.get_ylabel() and "%" in accuracy_axes.get_ylabel()


def test_several_runs_are_drawn_one_line_each_with_their_labels(trained, tmp_path):
    output = tmp_path / "two.svg"
    status, _, err = run_cli("plot", "curves", str(trained["metrics"]), str(trained["first_checkpoint"]),
                             "--label", "two epochs", "--label", "one epoch", "-o", str(output))
    assert status == 0, err
    text = output.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    runs = [curves.read_run(trained["metrics"], "two epochs"), curves.read_run(trained["first_checkpoint"], "one")]
    figure = curves.draw(runs)
    labels = [line.get_label() for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert labels == ["two epochs: train", "two epochs: validation", "one: train", "one: validation"]
    assert "2 runs" in figure._suptitle.get_text()


def test_train_plot_redraws_the_curves_after_every_epoch(trained, tmp_path):
    """curves.png after epoch 1 and after epoch 2 are each what `plot curves` draws of the checkpoint
    written at that epoch's end."""
    folder = trained["folder"]
    for checkpoint, drawn in ((trained["first_checkpoint"], trained["first_curves"]),
                              (folder / "last.npz", (folder / "curves.png").read_bytes())):
        output = tmp_path / "again.png"
        assert run_cli("plot", "curves", str(checkpoint), "-o", str(output))[0] == 0
        (tmp_path / "drawn.png").write_bytes(drawn)
        assert np.array_equal(read_picture(tmp_path / "drawn.png", SIZE), read_picture(output, SIZE)), checkpoint
    assert trained["first_curves"] != (folder / "curves.png").read_bytes()


@pytest.mark.parametrize("contents, message", [
    (None, "no such file"),
    ("", "no epoch records"),
    ('{"note": "no epoch here"}\n', "no epoch records"),
    ('{"epoch": 1, "lr": 0.01}\nnot json\n', "line 2: not JSON"),
])
def test_bad_runs_get_a_clear_error(tmp_path, capsys, contents, message):
    path = tmp_path / "metrics.jsonl"
    if contents is not None:
        path.write_text(contents)
    from alexnet_cuda.cli import main

    assert main(["plot", "curves", str(path), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err
    assert not (tmp_path / "c.png").exists()


def test_bad_output_names_get_a_clear_error(trained, tmp_path, capsys):
    from alexnet_cuda.cli import main

    assert main(["plot", "curves", str(trained["metrics"]), "-o", str(tmp_path / "c.jpg")]) == 2
    assert "expected a .png or .svg file name" in capsys.readouterr().err
    assert main(["plot", "curves", str(trained["metrics"]), "-o", str(tmp_path / "missing" / "c.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["plot", "curves", str(trained["metrics"]), "--dpi", "5", "-o", str(tmp_path / "c.png")]) == 2
    assert "--dpi 5: expected 20 to 600" in capsys.readouterr().err


def test_dpi_scales_the_png(trained, tmp_path):
    output = tmp_path / "small.png"
    assert run_cli("plot", "curves", str(trained["metrics"]), "--dpi", "50", "-o", str(output))[0] == 0
    read_picture(output, (SIZE[0] // 2, SIZE[1] // 2))


def test_a_resumed_partial_epoch_is_replaced_by_the_whole_one(tmp_path):
    records = [{"epoch": 1, "lr": 0.1, "val_loss": 3.0, "partial": True},
               {"epoch": 1, "lr": 0.1, "val_loss": 2.0, "partial": False},
               {"epoch": 2, "lr": 0.1, "val_loss": 1.0, "partial": False}]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    run = curves.read_run(path)
    assert run.series("val_loss") == ([1, 2], [2.0, 1.0]) and run.lr_drops() == []
