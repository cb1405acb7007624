"""Test support for the trainer: a tiny architecture and an in-memory dataset with the loader interface.

The in-memory loader follows the contract of loaders.make_loader (shuffled order from (seed, epoch),
start_batch resumes exactly, last partial batch dropped when training, ten crops as 10 rows per
sample) without decoding files, so the training loop's own tests run in seconds.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from alexnet_cuda import archs, config

Batch = namedtuple("Batch", "images labels number")

TINY = archs.TINY


@pytest.fixture
def tiny_arch(monkeypatch):
    """Registers the tiny network as an --arch for the duration of a test."""
    monkeypatch.setitem(archs.ARCHS, TINY.name, TINY)
    monkeypatch.setitem(config.ARCH_DEFAULTS, TINY.name, dict(
        epochs=3, batch_size=8, lr=0.05, lr_schedule="step", lr_step_epochs=2, plateau_patience=1,
        checkpoint_every=3))
    return TINY


class ArraySplit:
    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)


class ArrayDataset:
    kind = "arrays"

    def __init__(self, classes, train: ArraySplit, val: ArraySplit):
        self.classes, self.root = list(classes), Path("memory")
        self._splits = {"train": train, "val": val}

    def split(self, name):
        return self._splits[name]


def pattern_dataset(classes=3, train_per_class=24, val_per_class=8, size=12, noise=0.6, seed=0) -> ArrayDataset:
    """Each class is a fixed random smooth pattern; images are the pattern plus noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((classes, 3, size // 4, size // 4)).repeat(4, axis=2).repeat(4, axis=3)

    def split(per_class):
        labels = np.repeat(np.arange(classes, dtype=np.int32), per_class)
        images = patterns[labels] + noise * rng.standard_normal((len(labels), 3, size, size))
        return ArraySplit(images.astype(np.float32), labels)

    return ArrayDataset([f"class{i}" for i in range(classes)], split(train_per_class), split(val_per_class))


class ArrayLoader:
    def __init__(self, split, batch_size, train, seed, epoch, start_batch, ten_crop):
        count = len(split)
        order = np.random.default_rng([seed, epoch]).permutation(count) if train else np.arange(count)
        batches = count // batch_size if train else -(-count // batch_size)
        self.split, self.order, self.batch_size, self.ten_crop = split, order, batch_size, ten_crop
        self.batch_indices = range(start_batch, batches)
        self.skipped: list = []
        self.wait_seconds = 0.0

    def __len__(self):
        return len(self.batch_indices)

    def __iter__(self):
        for k in self.batch_indices:
            rows = self.order[k * self.batch_size:(k + 1) * self.batch_size]
            images = self.split.images[rows]
            if self.ten_crop:
                images = np.repeat(images, 10, axis=0)
            yield Batch(np.ascontiguousarray(images), self.split.labels[rows].copy(), k)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_array_loader(split, *, batch_size, input_size, resize_size, train, seed, epoch, start_batch=0, workers=0,
                      device="cpu", face=None, ten_crop=False):
    assert split.images.shape[-1] == input_size, "the in-memory data is stored at the input size"
    return ArrayLoader(split, batch_size, train, seed, epoch, start_batch, ten_crop)


def write_image_folder(root, classes=3, train_per_class=8, val_per_class=4, size=20, seed=0) -> Path:
    """A small learnable image folder: each class has its own colour layout, each image adds noise."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    layouts = rng.uniform(30, 225, (classes, 2, 2, 3))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                picture = layouts[label].repeat(size // 2, axis=0).repeat(size // 2, axis=1)
                picture = picture + rng.normal(0, 20, picture.shape)
                Image.fromarray(picture.clip(0, 255).astype(np.uint8)).save(folder / f"{index:03d}.png")
    return root
