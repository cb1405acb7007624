"""Image-folder scanning: the ImageFolder layout, ILSVRC's flat val folder, and every DataError."""

import numpy as np
import pytest
from PIL import Image

import loaders
from loaders.folder import scan_image_folder


def _image(path, colour=(200, 10, 10), size=(24, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")


def _folder(root, classes=("cat", "ant", "bee"), per_class=2, val=True):
    for split in ("train", "val") if val else ("train",):
        for name in classes:
            for index in range(per_class):
                _image(root / split / name / f"{name}{index}.jpg")
    return root


def test_classes_are_sorted_folder_names_and_labels_follow_them(tmp_path):
    root = _folder(tmp_path)
    dataset = loaders.open_dataset(root)
    assert dataset.classes == ["ant", "bee", "cat"]
    assert dataset.kind == "folder" and dataset.root == root
    train = dataset.split("train")
    assert len(train) == 6
    assert [train.describe(i).split("/")[-2] for i in range(6)] == ["ant", "ant", "bee", "bee", "cat", "cat"]
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2] and train.labels.dtype == np.int32


def test_extensions_match_in_any_case_and_other_files_are_ignored(tmp_path):
    root = _folder(tmp_path, classes=("a", "b"), per_class=1)
    _image(root / "train" / "a" / "upper.JPEG")
    _image(root / "train" / "a" / "mixed.Png")
    (root / "train" / "a" / "readme.txt").write_text("not an image")
    (root / "train" / "a" / ".hidden.jpg").write_bytes(b"")
    (root / "train" / ".cache").mkdir()
    names = sorted(loaders.open_dataset(root).split("train").describe(i).split("/")[-1] for i in range(4))
    assert names == ["a0.jpg", "b0.jpg", "mixed.Png", "upper.JPEG"]


@pytest.mark.parametrize("label_style", ["wnid", "index", "kaggle"])
def test_flat_validation_folder_with_a_labels_file(tmp_path, label_style):
    root = _folder(tmp_path, classes=("n02", "n01"), per_class=1, val=False)
    names = ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000003.JPEG"]
    truth = ["n02", "n01", "n02"]
    for name in names:
        _image(root / "val" / name)
    if label_style == "kaggle":
        rows = [f"{name.split('.')[0]},{wnid} 1 2 3 4" for name, wnid in zip(names, truth, strict=True)]
        (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    else:
        words = truth if label_style == "wnid" else [str(["n01", "n02"].index(wnid)) for wnid in truth]
        (root / "val.txt").write_text("".join(f"{name} {word}\n" for name, word in zip(names, words, strict=True)))
    val = loaders.open_dataset(root).split("val")
    assert len(val) == 3
    assert val.labels.tolist() == [1, 0, 1]  # classes sorted: n01 -> 0, n02 -> 1


def _raises(root, *fragments):
    with pytest.raises(loaders.DataError) as info:
        loaders.open_dataset(root)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_missing_and_empty_folders_are_data_errors_naming_the_path(tmp_path):
    _raises(tmp_path / "nowhere", "nowhere", "missing")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "val").mkdir()
    _raises(tmp_path / "empty", "no class folders")
    root = _folder(tmp_path / "noval", val=False)
    _raises(root, "val", "missing")
    root = _folder(tmp_path / "emptyclass")
    (root / "train" / "dog").mkdir()
    (root / "val" / "dog").mkdir()
    _raises(root, "dog", "no images")
    (tmp_path / "afile").write_text("x")
    _raises(tmp_path / "afile", "afile")


def test_classes_of_train_and_val_must_agree(tmp_path):
    root = _folder(tmp_path)
    _image(root / "train" / "dog" / "d.jpg")
    _raises(root, "dog", "have no folder here")
    root = _folder(tmp_path / "extra")
    _image(root / "val" / "eel" / "e.jpg")
    _raises(root, "eel", "not classes of train")


def test_flat_validation_folder_problems(tmp_path):
    root = _folder(tmp_path, classes=("a", "b"), per_class=1, val=False)
    _image(root / "val" / "v1.jpg")
    _image(root / "val" / "v2.jpg")
    _raises(root, "labels file")
    (root / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n")
    _raises(root, "devkit ids")
    (root / "val.txt").write_text("v1.jpg a\n")
    _raises(root, "v2.jpg", "no label")
    (root / "val.txt").write_text("v1.jpg a\nv2.jpg zebra\n")
    _raises(root, "zebra")
    (root / "val.txt").write_text("v1.jpg a\nv2.jpg a\nv3.jpg b\n")
    _raises(root, "v3.jpg")
    (root / "val.txt").write_text("v1.jpg a\nv2.jpg a\n")
    _raises(root, "no validation image", "b")


def test_scan_lists_in_name_order_whatever_the_file_system_order(tmp_path):
    root = _folder(tmp_path, classes=("x",), per_class=0)
    for name in ["b.jpg", "a.jpg", "c.jpg"]:
        _image(root / "train" / "x" / name)
        _image(root / "val" / "x" / name)
    _, files = scan_image_folder(root)
    assert [files["train"].relative(i) for i in range(3)] == ["x/a.jpg", "x/b.jpg", "x/c.jpg"]
