"""The packed format: prepare then load gives the folder's batches; interrupted, prepare resumes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import loaders
from loaders import packed
from loaders.synthetic import SynthSpec, write_synthetic
from tests.images import BROKEN_KINDS, build_bad_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("src") / "synth", SynthSpec(train_per_class=6, val_per_class=2,
                                                                                 size=40))


def _quiet(*_):
    pass


def _first_batches(dataset, **options):
    settings = dict(batch_size=12, input_size=28, resize_size=32, seed=4, epoch=3, train=True)
    settings.update(options)
    train = next(iter(loaders.make_loader(dataset.split("train"), **settings)))
    settings.update(train=False)
    val = next(iter(loaders.make_loader(dataset.split("val"), **settings)))
    return train, val


def test_prepare_then_load_gives_the_folders_first_batch(source, tmp_path):
    manifest = packed.prepare(source, tmp_path / "packed", size=32, workers=2, progress=False, log=_quiet)
    dataset = loaders.open_dataset(tmp_path / "packed")
    folder = loaders.open_dataset(source)
    assert dataset.kind == "packed" and dataset.classes == folder.classes == manifest["classes"]
    assert len(dataset.split("train")) == len(folder.split("train")) == 60
    for from_packed, from_folder in zip(_first_batches(dataset), _first_batches(folder), strict=True):
        np.testing.assert_array_equal(from_packed.images, from_folder.images)
        np.testing.assert_array_equal(from_packed.labels, from_folder.labels)
    assert manifest["splits"]["train"]["class_counts"] == {name: 6 for name in folder.classes}
    assert "alexnet_cuda" not in os.listdir(tmp_path) and not (tmp_path / "packed.partial").exists()
    assert sorted(os.listdir(tmp_path / "packed")) == sorted(
        ["manifest.json"] + [f"{split}_{part}" for split in ("train", "val")
                             for part in ("images.npy", "rows.npy", "labels.npy", "files.json")])


def test_a_packed_dataset_at_another_size_is_resized_on_the_fly(source, tmp_path):
    packed.prepare(source, tmp_path / "p40", size=40, workers=1, progress=False, log=_quiet)
    train, _ = _first_batches(loaders.open_dataset(tmp_path / "p40"))
    reference, _ = _first_batches(loaders.open_dataset(source))
    np.testing.assert_array_equal(train.labels, reference.labels)
    # a second resampling (40 -> 32 after source -> 40) differs from one (source -> 32) only slightly
    assert np.abs(train.images - reference.images).mean() < 0.1


def test_bad_files_are_skipped_at_prepare_and_listed_in_the_manifest(tmp_path):
    folder = build_bad_folder(tmp_path / "bad", train_per_class=3, val_per_class=2)
    manifest = packed.prepare(folder.root, tmp_path / "packed", size=24, workers=2, progress=False, log=_quiet)
    train = manifest["splits"]["train"]
    assert train["listed"] == folder.train_count
    assert train["packed"] == folder.train_count - len(BROKEN_KINDS)
    skipped = dict(train["skipped"])
    assert sorted(skipped) == sorted(str(path.relative_to(folder.root / "train")) for path in folder.broken.values())
    for kind, path in folder.broken.items():
        assert BROKEN_KINDS[kind] in skipped[str(path.relative_to(folder.root / "train"))]
    split = loaders.open_dataset(tmp_path / "packed").split("train")
    assert len(split) == train["packed"]
    with loaders.make_loader(split, batch_size=4, input_size=20, resize_size=24, train=False, seed=0,
                             epoch=0) as loader:
        assert sum(len(batch.labels) for batch in loader) == train["packed"] and loader.skipped == []


def test_prepare_refuses_to_overwrite_and_is_a_no_op_when_done(source, tmp_path):
    packed.prepare(source, tmp_path / "packed", size=16, workers=1, progress=False, log=_quiet)
    before = (tmp_path / "packed" / "manifest.json").stat().st_mtime_ns
    messages = []
    packed.prepare(source, tmp_path / "packed", size=16, workers=1, progress=False, log=messages.append)
    assert "nothing to do" in messages[0] and (tmp_path / "packed" / "manifest.json").stat().st_mtime_ns == before
    with pytest.raises(loaders.DataError, match="already holds a packed dataset"):
        packed.prepare(source, tmp_path / "packed", size=20, workers=1, progress=False, log=_quiet)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("precious")
    with pytest.raises(loaders.DataError, match="not an empty folder"):
        packed.prepare(source, tmp_path / "busy", size=16, workers=1, progress=False, log=_quiet)
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "precious"
    with pytest.raises(loaders.DataError, match="already a packed dataset"):
        packed.prepare(tmp_path / "packed", tmp_path / "again", size=16, workers=1, progress=False, log=_quiet)


def test_a_damaged_manifest_is_a_data_error(source, tmp_path):
    packed.prepare(source, tmp_path / "packed", size=16, workers=1, progress=False, log=_quiet)
    manifest = json.loads((tmp_path / "packed" / "manifest.json").read_text())
    (tmp_path / "packed" / "manifest.json").write_text(json.dumps(dict(manifest, version=99)))
    with pytest.raises(loaders.DataError, match="version"):
        loaders.open_dataset(tmp_path / "packed")
    (tmp_path / "packed" / "manifest.json").write_text("{")
    with pytest.raises(loaders.DataError, match="manifest"):
        loaders.open_dataset(tmp_path / "packed")


@pytest.fixture(scope="module")
def big_source(source, tmp_path_factory):
    """Enough files (copies of the small source) that prepare takes a good fraction of a second."""
    root = tmp_path_factory.mktemp("big")
    for split in ("train", "val"):
        for class_folder in (source / split).iterdir():
            target = root / split / class_folder.name
            target.mkdir(parents=True)
            for copy in range(40 if split == "train" else 4):
                for image in class_folder.iterdir():
                    shutil.copyfile(image, target / f"{copy:02d}_{image.name}")
    return root


def _interrupted_prepare(source, destination, size):
    """Start `alexnet-cuda prepare` in a subprocess and SIGKILL it and its workers once a few chunks
    are done; returns how many were."""
    process = subprocess.Popen(
        [sys.executable, "-m", "alexnet_cuda", "prepare", str(source), str(destination), "--size", str(size),
         "--workers", "1", "--quiet"], cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    done_file = packed.partial_folder(destination) / "train_done.npy"
    deadline = time.monotonic() + 60
    done = 0
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                done = int(np.load(done_file).sum())
            except (OSError, ValueError, EOFError):  # not there yet, or caught while np.save creates it
                done = 0
            if done >= 3:
                break
            time.sleep(0.005)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    return done


def test_an_interrupted_prepare_resumes_and_ends_as_an_uninterrupted_one(big_source, tmp_path):
    destination = tmp_path / "packed"
    done = _interrupted_prepare(big_source, destination, 24)
    assert done >= 3
    partial = packed.partial_folder(destination)
    assert not destination.exists() and partial.exists()
    with pytest.raises(loaders.DataError, match="unfinished"):
        loaders.open_dataset(destination)
    # a kill can tear the last line of the skip log; resuming must cope with it
    with open(partial / "train_skipped.jsonl", "ab") as handle:
        handle.write(b'{"chunk": 99, "skip')
    messages = []
    manifest = packed.prepare(big_source, destination, size=24, workers=2, progress=False, log=messages.append)
    assert messages[0].startswith("resuming")
    packed.prepare(big_source, tmp_path / "reference", size=24, workers=2, progress=False, log=_quiet)
    assert manifest == json.loads((tmp_path / "reference" / "manifest.json").read_text())
    for name in ("train_images.npy", "train_rows.npy", "train_labels.npy", "val_images.npy"):
        np.testing.assert_array_equal(np.load(destination / name), np.load(tmp_path / "reference" / name))
    assert not partial.exists()


def test_an_interrupted_prepare_of_other_input_starts_over(big_source, tmp_path):
    destination = tmp_path / "packed"
    _interrupted_prepare(big_source, destination, 24)
    messages = []
    packed.prepare(big_source, destination, size=20, workers=2, progress=False, log=messages.append)
    assert "starting over" in messages[0]
    dataset = loaders.open_dataset(destination)
    assert np.load(destination / "train_images.npy", mmap_mode="r").shape[1:] == (20, 20, 3)
    assert len(dataset.split("train")) == 2400
