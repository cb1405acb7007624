"""The data pipeline on the built-in synthetic dataset (generated once into the cache, as
`alexnet-cuda train` does): images/s of a training epoch's first batches, decoded in this process
and by worker processes, next to a plain Pillow loop over the same files. `alexnet-cuda bench
loader` is the loaders' own, fuller benchmark (JPEG and packed paths against the same baseline)."""

import os

import numpy as np
import pytest

BATCHES = 8
BATCH_SIZE = 64


@pytest.fixture(scope="module")
def train_split():
    import loaders

    return loaders.open_dataset(loaders.ensure_synthetic(progress=False)).split("train")


@pytest.mark.parametrize("workers", [0, min(2, os.cpu_count() or 1)])
def test_loader_images_per_s(benchmark, train_split, workers):
    import loaders

    def epoch_start():
        with loaders.make_loader(train_split, batch_size=BATCH_SIZE, input_size=64, resize_size=73, train=True,
                                 seed=0, epoch=0, workers=workers) as loader:
            for index, batch in enumerate(loader):
                if index + 1 == BATCHES:
                    return batch

    benchmark.group = "loader: first batches of an epoch"
    batch = benchmark.pedantic(epoch_start, rounds=3, iterations=1, warmup_rounds=0)
    assert batch.images.shape == (BATCH_SIZE, 3, 64, 64) and np.isfinite(batch.images).all()
    benchmark.extra_info["images_per_s"] = BATCHES * BATCH_SIZE / benchmark.stats.stats.median
    benchmark.extra_info["workers"] = workers


def test_plain_pillow_baseline(benchmark, train_split):
    """Decode, resize the shorter side to 73, centre 73 crop, random 64 crop: the same images."""
    from PIL import Image

    paths = [train_split.describe(index) for index in range(BATCHES * BATCH_SIZE)]  # a folder split names files
    rng = np.random.default_rng(0)

    def loop():
        for path in paths:
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = 73 / min(image.size)
                image = image.resize((max(73, round(image.width * scale)), max(73, round(image.height * scale))))
                array = np.asarray(image)
                top, left = rng.integers(0, array.shape[0] - 63), rng.integers(0, array.shape[1] - 63)
                array[top:top + 64, left:left + 64].astype(np.float32)

    benchmark.group = "loader: first batches of an epoch"
    benchmark.pedantic(loop, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["images_per_s"] = len(paths) / benchmark.stats.stats.median
