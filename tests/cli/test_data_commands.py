"""`alexnet-cuda synth` and `alexnet-cuda prepare` from the command line."""

import numpy as np

import loaders
from alexnet_cuda.cli import main


def test_synth_then_prepare_then_load(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "data"), "--train-per-class", "3", "--val-per-class", "1", "--size", "32",
                 "--workers", "1", "--quiet"]) == 0
    assert "10 classes, 3 training and 1 validation images each" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path / "data"), str(tmp_path / "packed"), "--size", "28", "--workers", "2",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "train: 30 of 30 images packed, 0 skipped" in printed
    dataset = loaders.open_dataset(tmp_path / "packed")
    assert dataset.kind == "packed" and len(dataset.split("val")) == 10
    images = np.load(tmp_path / "packed" / "val_images.npy")
    assert images.shape == (10, 28, 28, 3) and images.std() > 10  # real pixels, not the zeros of an unwritten row


def test_bad_arguments_and_bad_data_are_clean_errors(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--size", "4"]) == 2
    assert "size 4" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "alexnet-cuda prepare: error:" in error and "missing" in error and "Traceback" not in error
    assert main(["prepare", str(tmp_path), str(tmp_path / "out"), "--size", "0"]) == 2
    assert "--size 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
