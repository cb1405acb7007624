"""Validation: loss, top-1 and top-5 of a model over a loader, with a centre crop or the paper's ten.

Counts are formed on the device (argmax and a rank per row) and only the totals come to the host.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def correct_counts(probs, labels, xp) -> tuple[int, int]:
    """(top-1 correct, top-5 correct) of probabilities (N, K) against labels (N,).

    A sample's rank is the number of classes that beat its label: higher probability, or equal
    probability and a lower index (the same tie rule as argmax), so top-1 agrees with argmax.
    """
    rows = xp.arange(probs.shape[0])
    label_probs = probs[rows, labels][:, None]
    columns = xp.arange(probs.shape[1])[None, :]
    beats = (probs > label_probs) | ((probs == label_probs) & (columns < labels[:, None]))
    rank = beats.sum(axis=1)
    return int((rank == 0).sum()), int((rank < 5).sum())


def evaluate(model, loader, ten_crop: bool = False, progress=None) -> EvalResult:
    face, xp = model.face, model.face.xp
    loss_sum, top1, top5, images = 0.0, 0, 0, 0
    for batch_images, labels in loader:
        logits = model.forward(batch_images, training=False)
        if ten_crop:
            crop_labels = xp.repeat(labels, TEN_CROPS)
            loss, probs = face.softmax_xent_forward(logits, crop_labels)
            probs = probs.reshape(labels.shape[0], TEN_CROPS, -1).mean(axis=1)
        else:
            loss, probs = face.softmax_xent_forward(logits, labels)
        count = int(labels.shape[0])
        loss_sum += float(face.to_host(loss)) * count
        batch_top1, batch_top5 = correct_counts(probs, labels, xp)
        top1 += batch_top1
        top5 += batch_top5
        images += count
        if progress is not None:
            progress.update(1)
    skipped = list(getattr(loader, "skipped", []))
    if images == 0:
        return EvalResult(float("nan"), float("nan"), float("nan"), 0, skipped)
    return EvalResult(loss_sum / images, top1 / images, top5 / images, images, skipped)
