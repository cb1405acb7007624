"""make_loader: batches of one epoch of a split, augmented as the paper does, prefetched by workers.

The docstring of make_loader is the contract with the trainer. Stages: the batch's sample indices
come from the epoch's order; a source (the consumer itself with workers=0, else worker processes,
loaders/workers.py) decodes them into uint8 squares; then the crop plan drawn from (seed, epoch,
index) turns the squares into float32 outputs, in NumPy by the source (device cpu/sim), or on the
device by a hand-written kernel of the chosen GPU face (device gpu, loaders/gpu_augment.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from kernels import DEVICES, GPU_FACES
from loaders import augment
from loaders.errors import DataError
from loaders.workers import InlineSource, RawBatch, Recipe, WorkerSource

# A split in which this many samples in a row (from the start of the epoch) fail stops the epoch.
NOTHING_DECODES_AFTER = 1000
# Shared memory for batches in flight: the default depth (2 per worker) is cut to fit, keeping 2 slots
# at least. Ten-crop batches of 128 at 224 take 770 MB a slot.
SHARED_MEMORY_BUDGET = 1 << 30


@dataclass
class Batch:
    """images float32 (N, 3, S, S) (10·N rows with ten_crop), labels int32 (N,), both NumPy on the
    cpu/sim devices and CuPy on the gpu; number is the batch's position in the epoch (resume from
    number + 1). Unpacks as `images, labels = batch`."""

    images: object
    labels: object
    number: int

    def __iter__(self):
        return iter((self.images, self.labels))


def skipped_summary(skipped: list, limit: int = 10) -> str:
    """A few lines naming the files skipped in an epoch and why, for the end-of-epoch report."""
    if not skipped:
        return "no images skipped"
    lines = [f"{len(skipped)} image(s) skipped (could not be decoded):"]
    lines += [f"  {path}: {reason}" for path, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more")
    return "\n".join(lines)


class Loader:
    """One epoch of batches; iterate once. Use as a context manager, or call close(), to stop workers."""

    def __init__(self, split, *, batch_size, input_size, resize_size, train, seed, epoch, start_batch, workers,
                 device, face, ten_crop, prefetch, shard=(0, 1)):
        self._source = None
        self._worker_cpu = 0.0
        self.split, self.batch_size, self.train, self.seed, self.epoch = split, batch_size, train, seed, epoch
        self.input_size, self.resize_size, self.ten_crop, self.device = input_size, resize_size, ten_crop, device
        count = len(split)
        if train:
            order = augment.shuffled_order(count, seed, epoch)
            batch_count = count // batch_size
            if batch_count == 0:
                raise DataError(f"the {split.name} split holds {count} image(s), fewer than one batch of {batch_size}; "
                                "lower --batch-size or add images")
        else:
            order = np.arange(count, dtype=np.int64)
            batch_count = -(-count // batch_size)
        self.first_batch = min(start_batch, batch_count)
        rank, ranks = shard
        self._batches = [np.array_split(order[k * batch_size:(k + 1) * batch_size], ranks)[rank]
                         for k in range(self.first_batch, batch_count)]
        self._yield_empty = train and ranks > 1
        self._planned_samples = sum(len(batch) for batch in self._batches)
        self.skipped: list[tuple[str, str]] = []
        self.wait_seconds = 0.0
        self.decoded = 0
        self._next = 0
        self._augmenter = None
        if device == "gpu":
            from loaders.gpu_augment import GpuAugmenter

            self._augmenter = GpuAugmenter(face, batch_size, resize_size, input_size, 10 if ten_crop else 1)
        self._recipe = Recipe(split, resize_size, input_size, train, seed, epoch, ten_crop,
                              floats=self._augmenter is None, batch_size=batch_size)
        if workers > 0 and self._batches:
            if prefetch is None:
                shape, dtype = self._recipe.slot_shape()
                slot_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
                prefetch = min(2 * workers, max(2, SHARED_MEMORY_BUDGET // slot_bytes))
            self._source = WorkerSource(self._recipe, self._batches, workers, prefetch)
        else:
            self._source = InlineSource(self._recipe, self._batches)

    def __len__(self) -> int:
        """Batches from start_batch to the end of the epoch (a batch whose files all fail is not yielded)."""
        return len(self._batches)

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        started = time.perf_counter()
        try:
            while self._next < len(self._batches):
                if self._source is None:
                    raise RuntimeError("the loader was closed before the end of its epoch; make a new one")
                raw = self._source.get(self._next)
                self._next += 1
                self._account(raw)
                if len(raw.indices):
                    return self._finish(raw)
                if self._yield_empty:
                    raw.release()
                    return Batch(None, np.zeros(0, np.int32), self.first_batch + raw.number)
                raw.release()  # nothing decoded: the slot goes straight back
            self.close()
            raise StopIteration
        finally:
            self.wait_seconds += time.perf_counter() - started

    def _account(self, raw: RawBatch) -> None:
        self.skipped.extend(raw.skipped)
        self.decoded += len(raw.indices)
        seen = self.decoded + len(self.skipped)
        if self.decoded == 0 and 0 < seen >= min(self._planned_samples, NOTHING_DECODES_AFTER):
            self.close()
            examples = "\n".join(f"  {path}: {reason}" for path, reason in self.skipped[:5])
            raise DataError(f"none of the first {seen} images of the {self.split.name} split could be decoded, "
                            f"for example:\n{examples}\nCheck that the folder holds images Pillow can read "
                            "(JPEG, PNG, ...).")

    def _finish(self, raw: RawBatch) -> Batch:
        labels = np.ascontiguousarray(self.split.labels[raw.indices], dtype=np.int32)
        if self._augmenter is None:
            images = raw.take()  # the float outputs themselves, or a copy (see RawBatch)
        else:
            images, labels = self._augmenter(raw.data, self._recipe.plan(raw.indices), labels)
            raw.release()  # the augmenter copied the squares out of the slot before returning
        return Batch(images, labels, self.first_batch + raw.number)

    @property
    def worker_cpu_seconds(self) -> float:
        """CPU time the worker processes have spent so far (0 with workers=0), for benchmarks."""
        return self._worker_cpu + sum(getattr(self._source, "cpu_seconds", {}).values())

    def close(self) -> None:
        if self._source is not None:
            self._worker_cpu = self.worker_cpu_seconds
            self._source.close()
            self._source = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down what close() needs
            pass


def make_loader(split, *, batch_size: int, input_size: int, resize_size: int, train: bool, seed: int, epoch: int,
                start_batch: int = 0, workers: int = 0, device: str = "cpu", face=None, ten_crop: bool = False,
                prefetch: int | None = None, shard: tuple[int, int] = (0, 1)) -> Loader:
    """Batches of one epoch of `split`.

    train=True: order shuffled from (seed, epoch); each image's square (shorter side to resize_size,
    centre crop) gets a random input_size crop, a random horizontal flip and PCA lighting (sigma 0.1),
    then mean/std normalization; the last partial batch is dropped. train=False: fixed order, centre
    crop, or with ten_crop the four corners, the centre and their mirrors (sample i's crops at rows
    10i..10i+9 of images; labels stay one per sample); the last partial batch is kept.

    Per-sample randomness depends on (seed, epoch, sample index) only: batch k is the same whether
    or not batches before it were read (start_batch=k resumes mid-epoch exactly) and whatever the
    number of workers. Batches yield images float32 (N, 3, S, S) and labels int32 (N,): NumPy for
    device cpu/sim, CuPy for gpu with the augmentation done by the augment_crop kernel of `face`, the
    GPU face module the trainer runs (kernels.cuda or kernels.numba; unused on cpu/sim). A batch
    holds fewer than batch_size images when files fail to decode; those are listed in
    loader.skipped as (path, reason).

    workers: processes that decode ahead (0: decode in this process); prefetch: batches in flight
    (default 2 per worker, fewer if their shared memory would pass SHARED_MEMORY_BUDGET).
    loader.wait_seconds is the time spent inside next().

    On cpu/sim, a batch's images may be the shared memory a worker wrote them to: the loader never
    reuses that memory while any array still views it, so keeping batches is safe (past a few kept
    batches, later ones are copies).

    shard=(rank, ranks) is data-parallel training's cut: batch k is still the epoch's k-th run of
    batch_size samples (the global batch), and this loader yields part `rank` of it, the global batch
    split into `ranks` parts of as equal size as can be (numpy.array_split), so the ranks together see
    each sample of the epoch once. A sharded training loader yields a batch with images None and no
    labels where none of its part decoded, so that every rank takes every step.
    """
    for name, value in (("batch_size", batch_size), ("input_size", input_size), ("resize_size", resize_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} {value!r}: expected a positive integer")
    if input_size > resize_size:
        raise ValueError(f"input_size {input_size} is larger than resize_size {resize_size}; a crop must fit")
    if start_batch < 0 or workers < 0:
        raise ValueError(f"start_batch {start_batch} and workers {workers} must not be negative")
    if ten_crop and train:
        raise ValueError("ten_crop is an evaluation mode; pass train=False")
    if device not in DEVICES:
        raise ValueError(f"device {device!r}: expected one of {', '.join(DEVICES)}")
    rank, ranks = shard
    if not 0 <= rank < ranks:
        raise ValueError(f"shard {shard!r}: expected (rank, ranks) with 0 <= rank < ranks")
    if train and batch_size < ranks:
        raise ValueError(f"batch_size {batch_size} is smaller than the {ranks} ranks sharing it; each rank needs "
                         "an image of every batch")
    if device == "gpu" and (getattr(face, "NAME", None) not in GPU_FACES or not hasattr(face, "augment_crop")):
        raise ValueError(f"face {getattr(face, 'NAME', face)!r}: the gpu augmentation runs in the augment_crop kernel "
                         f"of a GPU face module ({', '.join(f'kernels.{name}' for name in GPU_FACES)})")
    return Loader(split, batch_size=batch_size, input_size=input_size, resize_size=resize_size, train=train,
                  seed=seed, epoch=epoch, start_batch=start_batch, workers=workers, device=device, face=face,
                  ten_crop=ten_crop, prefetch=prefetch, shard=(rank, ranks))
