"""make_loader: shapes, order, determinism, resuming mid-epoch, workers, and the interface's errors."""

import numpy as np
import pytest

import loaders
from kernels import reference
from loaders import augment
from loaders.decode import decode_square
from loaders.synthetic import SynthSpec, write_synthetic

SIZES = dict(input_size=24, resize_size=30)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = write_synthetic(tmp_path_factory.mktemp("data") / "synth", SynthSpec(train_per_class=7, val_per_class=3,
                                                                                  size=36))
    return loaders.open_dataset(root)


def _epoch(split, **options):
    settings = dict(batch_size=16, train=True, seed=1, epoch=0, **SIZES)
    settings.update(options)
    with loaders.make_loader(split, **settings) as loader:
        return list(loader), loader


def test_train_batches_shapes_types_and_dropped_remainder(dataset):
    train = dataset.split("train")
    batches, loader = _epoch(train)
    assert len(train) == 70 and len(batches) == 70 // 16 == len(loaders.make_loader(train, batch_size=16, train=True,
                                                                                     seed=1, epoch=0, **SIZES))
    for number, batch in enumerate(batches):
        images, labels = batch
        assert batch.number == number
        assert images.shape == (16, 3, 24, 24) and images.dtype == np.float32 and images.flags.c_contiguous
        assert labels.shape == (16,) and labels.dtype == np.int32
    seen = np.concatenate([batch.labels for batch in batches])
    assert len(seen) == 64 and set(seen.tolist()) <= set(range(10))
    assert loader.skipped == [] and loader.wait_seconds > 0


def test_eval_batches_keep_the_remainder_in_file_order_with_centre_crops(dataset):
    val = dataset.split("val")
    batches, _ = _epoch(val, train=False)
    assert [len(batch.labels) for batch in batches] == [16, 14]
    labels = np.concatenate([batch.labels for batch in batches])
    np.testing.assert_array_equal(labels, val.labels)
    square = decode_square(val.describe(17), 30)
    expected = augment.apply_plan(square[None], augment.eval_plan(1, 30, 24))[0]
    np.testing.assert_array_equal(batches[1].images[1], expected)


def test_ten_crop_rows(dataset):
    batches, _ = _epoch(dataset.split("val"), train=False, ten_crop=True, batch_size=8)
    assert batches[0].images.shape == (80, 3, 24, 24) and batches[0].labels.shape == (8,)
    centre, _ = _epoch(dataset.split("val"), train=False, batch_size=8)
    np.testing.assert_array_equal(batches[0].images[10 * 3 + 4], centre[0].images[3])


def test_same_seed_and_epoch_give_the_same_batches_and_others_differ(dataset):
    train = dataset.split("train")
    first, _ = _epoch(train)
    again, _ = _epoch(train)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    other_epoch, _ = _epoch(train, epoch=1)
    other_seed, _ = _epoch(train, seed=2)
    for other in (other_epoch, other_seed):
        assert not np.array_equal(first[0].labels, other[0].labels) or not np.array_equal(first[0].images,
                                                                                          other[0].images)


def test_each_sample_appears_once_per_epoch_with_its_own_draws(dataset):
    train = dataset.split("train")
    order = augment.shuffled_order(len(train), 1, 0)
    batches, _ = _epoch(train, batch_size=10)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), train.labels[order])
    draws = augment.draw_samples(order, 1, 0, 30, 24)
    assert len({tuple(alpha) for alpha in draws.alpha.tolist()}) == len(order)  # no two samples share draws


@pytest.mark.parametrize("workers", [0, 2])
def test_start_batch_resumes_mid_epoch_exactly(dataset, workers):
    train = dataset.split("train")
    full, _ = _epoch(train, batch_size=8)
    resumed, loader = _epoch(train, batch_size=8, start_batch=5, workers=workers)
    assert len(loader) == len(full) - 5 == len(resumed)
    for a, b in zip(full[5:], resumed, strict=True):
        assert a.number == b.number
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    past_the_end, loader = _epoch(train, batch_size=8, start_batch=100)
    assert past_the_end == [] and len(loader) == 0


def test_workers_give_the_same_batches_as_the_consumer_alone(dataset):
    train = dataset.split("train")
    alone, _ = _epoch(train, batch_size=8)
    for workers, prefetch in ((1, None), (2, 3), (3, 1)):
        pooled, _ = _epoch(train, batch_size=8, workers=workers, prefetch=prefetch)
        assert len(pooled) == len(alone)
        for a, b in zip(alone, pooled, strict=True):
            np.testing.assert_array_equal(a.images, b.images)
            np.testing.assert_array_equal(a.labels, b.labels)


def test_close_stops_the_workers_even_mid_epoch(dataset):
    loader = loaders.make_loader(dataset.split("train"), batch_size=8, train=True, seed=0, epoch=0, workers=2,
                                 **SIZES)
    processes = list(loader._source.processes)
    next(loader)
    assert all(process.is_alive() for process in processes)
    loader.close()
    assert not any(process.is_alive() for process in processes)
    loader.close()  # twice is fine


def test_a_split_smaller_than_one_batch_is_a_data_error_when_training(dataset):
    with pytest.raises(loaders.DataError, match="fewer than one batch"):
        loaders.make_loader(dataset.split("val"), batch_size=64, train=True, seed=0, epoch=0, **SIZES)
    batches, _ = _epoch(dataset.split("val"), batch_size=64, train=False)
    assert len(batches) == 1 and len(batches[0].labels) == 30


@pytest.mark.parametrize("options, message", [
    (dict(batch_size=0), "batch_size"),
    (dict(input_size=40), "larger than resize_size"),
    (dict(ten_crop=True), "ten_crop"),
    (dict(device="tpu"), "device"),
    (dict(device="gpu", face=reference), "face"),
    (dict(start_batch=-1), "start_batch"),
])
def test_wrong_arguments_are_value_errors(dataset, options, message):
    settings = dict(batch_size=8, train=True, seed=0, epoch=0, **SIZES)
    settings.update(options)
    with pytest.raises(ValueError, match=message):
        loaders.make_loader(dataset.split("train"), **settings)


def test_batches_live_in_the_workers_slots_until_dropped_and_kept_ones_stay_intact(dataset):
    train = dataset.split("train")
    reference, _ = _epoch(train, batch_size=4)
    with loaders.make_loader(train, batch_size=4, train=True, seed=1, epoch=0, workers=2, prefetch=3,
                             **SIZES) as loader:
        slots = loader._source.slots
        lent = sum(any(np.shares_memory(batch.images, slot) for slot in slots) for batch in loader)
    assert lent == len(reference)  # a streaming consumer gets the slots themselves, never a copy
    kept = []
    with loaders.make_loader(train, batch_size=4, train=True, seed=1, epoch=0, workers=2, prefetch=3,
                             **SIZES) as loader:
        for batch in loader:
            if batch.number % 5 == 0:
                kept.append(batch.images[1:])  # a view held on to: its slot must not be refilled under it
    for number, images in zip(range(0, len(reference), 5), kept, strict=True):
        np.testing.assert_array_equal(images, reference[number].images[1:])


def test_a_closed_loader_says_so(dataset):
    loader = loaders.make_loader(dataset.split("train"), batch_size=8, train=True, seed=0, epoch=0, **SIZES)
    next(loader)
    loader.close()
    with pytest.raises(RuntimeError, match="closed"):
        next(loader)
