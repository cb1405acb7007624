"""Validation: loss, top-1 and top-5 of a model over a loader, with a centre crop or the paper's ten.

Counts are formed on the device (argmax and a rank per row) and only the totals come to the host,
once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEN_CROPS = 10


@dataclass
class EvalResult:
    loss: float
    top1: float
    top5: float
    images: int
    skipped: list  # (path, reason) of files that failed to decode

    def as_dict(self) -> dict:
        return {"loss": self.loss, "top1": self.top1, "top5": self.top5, "images": self.images}


class EvaluationStopped(Exception):
    """evaluate() stopped early because a stop was asked for (SIGINT or SIGTERM)."""

    def __init__(self, batches: int):
        super().__init__(f"stopped after {batches} batches")
        self.batches = batches


def label_ranks(probs, labels, xp):
    """Per row of probabilities (N, K), how many classes beat its label: higher probability, or
    equal probability and a lower index (the same tie rule as argmax), so rank 0 agrees with argmax.
    An array of the face's kind: nothing comes to the host."""
    rows = xp.arange(probs.shape[0])
    label_probs = probs[rows, labels][:, None]
    columns = xp.arange(probs.shape[1])[None, :]
    beats = (probs > label_probs) | ((probs == label_probs) & (columns < labels[:, None]))
    return beats.sum(axis=1)


def top1_hits(probs, labels, xp):
    """The number of rows whose label wins, as a 0-d array on the device."""
    return (label_ranks(probs, labels, xp) == 0).sum()


def evaluate(model, loader, ten_crop: bool = False, progress=None, should_stop=None, sum_across=None) -> EvalResult:
    """Loss, top-1 and top-5 over the loader's batches. The sums stay on the device and come to the
    host in one copy at the end. With should_stop, it is asked before every batch, and a True ends
    the evaluation with EvaluationStopped. sum_across (data-parallel validation, each rank holding a
    shard of the split) sums the host vector (loss sum, top-1, top-5, images) over the ranks."""
    face, xp = model.face, model.face.xp
    loss_sum, top1, top5 = xp.zeros((), xp.float64), xp.zeros((), xp.int64), xp.zeros((), xp.int64)
    images = done = 0
    batches = iter(loader)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except Exception:
            # A SIGTERM sent to the whole process group also ends the loader's workers: that is
            # the stop asked for, not a failure of the evaluation.
            if should_stop is not None and should_stop():
                raise EvaluationStopped(done) from None
            raise
        if should_stop is not None and should_stop():
            raise EvaluationStopped(done)
        labels = batch.labels
        logits = model.forward(batch.images, training=False)
        if ten_crop:
            crop_labels = xp.repeat(labels, TEN_CROPS)
            loss, probs = face.softmax_xent_forward(logits, crop_labels)
            probs = probs.reshape(labels.shape[0], TEN_CROPS, -1).mean(axis=1)
        else:
            loss, probs = face.softmax_xent_forward(logits, labels)
        count = int(labels.shape[0])
        # float64 sums in batch order: the same numbers as adding the batches' losses on the host
        loss_sum = loss_sum + loss.astype(xp.float64) * count
        rank = label_ranks(probs, labels, xp)
        top1 = top1 + (rank == 0).sum()
        top5 = top5 + (rank < 5).sum()
        images += count
        done += 1
        if progress is not None:
            progress.update(1)
    skipped = list(getattr(loader, "skipped", []))
    sums = np.asarray(face.to_host(xp.stack([loss_sum, top1.astype(xp.float64), top5.astype(xp.float64),
                                             xp.asarray(float(images))])))
    if sum_across is not None:
        sums = sum_across(sums)
    images = int(sums[3])
    if images == 0:
        return EvalResult(float("nan"), float("nan"), float("nan"), 0, skipped)
    return EvalResult(float(sums[0]) / images, float(sums[1]) / images, float(sums[2]) / images, images, skipped)
