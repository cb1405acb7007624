"""`alexnet-cuda predict` classifies what `eval` evaluates, image by image: on the synthetic validation
split its top-1 and its probabilities are eval's, and files that are not images are named and skipped."""

import json
import re

import numpy as np
import pytest
from safetensors.numpy import save_file

import loaders
from alexnet_cuda import checkpoint, training, weights
from alexnet_cuda.archs import ALEXNET_MINI
from alexnet_cuda.cli import main
from kernels import reference


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(synthetic data folder, checkpoint) of a short `alexnet-cuda train` run."""
    root = tmp_path_factory.mktemp("predict")
    data, run = root / "synth", root / "run"
    assert main(["synth", str(data), "--train-per-class", "8", "--val-per-class", "4", "--quiet"]) == 0
    assert main(["train", "--data", str(data), "--arch", "alexnet-mini", "--batch-size", "8", "--max-steps", "8",
                 "--device", "cpu", "--no-progress", "--checkpoint-dir", str(run)]) == 0
    return data, run / "last.npz"


def eval_top1(capsys, argv) -> str:
    capsys.readouterr()
    assert main(["eval", *argv, "--device", "cpu"]) == 0
    return re.search(r"top-1 ([0-9.]+%)", capsys.readouterr().out).group(1)


def predictions(capsys, argv) -> list[dict]:
    capsys.readouterr()
    assert main(["predict", *argv, "--json", "--device", "cpu"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def top1_of(records, data) -> str:
    """Top-1 of predict's output against the class folder each image lies in, as eval prints it."""
    correct = sum(record["top"][0]["class"] == record["path"].split("/")[-2] for record in records)
    assert len({record["top"][0]["class"] for record in records}) > 1, "a network that always says one class " \
                                                                       "would make this comparison weak"
    return f"{correct / len(records):.2%}"


@pytest.mark.parametrize("ten_crop", [[], ["--ten-crop"]], ids=["centre", "ten-crop"])
def test_predict_reports_the_top1_of_eval(trained, capsys, ten_crop):
    data, ckpt = trained
    records = predictions(capsys, [str(data / "val"), "--checkpoint", str(ckpt), *ten_crop])
    assert len(records) == 40 and all(len(record["top"]) == 5 for record in records)
    assert top1_of(records, data) == eval_top1(capsys, ["--checkpoint", str(ckpt), "--data", str(data), *ten_crop])


def test_predict_gives_each_image_the_probabilities_of_the_eval_pipeline(trained, capsys):
    data, ckpt = trained
    saved = checkpoint.load(ckpt)
    records = predictions(capsys, [str(data / "val"), "--checkpoint", str(ckpt), "--top", "10"])
    split = loaders.open_dataset(str(data)).split("val")
    model = training.model_from_checkpoint(saved, reference)
    expected = {}
    with loaders.make_loader(split, batch_size=7, input_size=ALEXNET_MINI.input_size,
                             resize_size=ALEXNET_MINI.resize_size, train=False, seed=0, epoch=0) as loader:
        for number, batch in enumerate(loader):
            _, probs = reference.softmax_xent_forward(model.forward(batch.images, training=False), batch.labels)
            for row, index in enumerate(range(number * 7, number * 7 + len(probs))):
                expected[split.describe(index)] = probs[row]
    assert sorted(expected) == sorted(record["path"] for record in records)
    for record in records:
        ours = np.array([entry["probability"] for entry in sorted(record["top"], key=lambda entry: entry["index"])])
        np.testing.assert_allclose(ours, expected[record["path"]], rtol=1e-5, atol=1e-7, err_msg=record["path"])
        assert record["top"][0]["class"] == saved.meta["classes"][int(np.argmax(ours))]


def test_text_output_and_files_that_are_not_images(trained, capsys, tmp_path):
    data, ckpt = trained
    image = sorted((data / "val" / "triangle").iterdir())[0]
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    capsys.readouterr()
    assert main(["predict", str(image), str(notes), "--checkpoint", str(ckpt), "--top", "2", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == str(image) and len(lines) == 3
    assert all(re.fullmatch(r"  +[0-9.]+%  [a-z]+", line) for line in lines[1:]), lines
    assert f"skipped {notes}: not an image Pillow can identify" in captured.err
    assert "1 image(s) classified" in captured.err and "1 skipped" in captured.err

    assert main(["predict", str(notes), "--checkpoint", str(ckpt), "--json", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"path": str(notes), "skipped": "not an image Pillow can identify"}
    assert "0 image(s) classified" in captured.err

    assert main(["predict", str(tmp_path / "absent.png"), "--checkpoint", str(ckpt)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"{tmp_path / 'absent.png'}: no such file or folder" in error


def test_recorded_class_names_are_shown_beside_the_class(tmp_path, capsys):
    rng = np.random.default_rng(0)
    shapes = weights.parameter_shapes(ALEXNET_MINI, 3)
    state = {theirs: rng.standard_normal(shapes[ours], dtype=np.float32) * np.float32(0.05)
             for ours, theirs in weights.state_dict_names(ALEXNET_MINI).items()}
    record = {"arch": "alexnet-mini", "classes": ["n1", "n2", "n3"], "class_names": ["red fox", "owl", "hare"]}
    save_file(state, str(tmp_path / "mini.safetensors"), metadata={weights.METADATA_KEY: json.dumps(record)})
    assert main(["import-weights", str(tmp_path / "mini.safetensors"), "--arch", "alexnet-mini",
                 "-o", str(tmp_path / "mini.npz")]) == 0
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "photo.png"), "--checkpoint", str(tmp_path / "mini.npz"), "--top", "3",
                 "--device", "cpu"]) == 0
    shown = capsys.readouterr().out.splitlines()[1:]
    assert sorted(re.sub(r"^ +[0-9.]+%  ", "", line) for line in shown) == ["hare (n3)", "owl (n2)", "red fox (n1)"]
