"""Class probabilities of single images under a checkpoint's preprocessing, for `alexnet-cuda predict`.

An image goes through what `eval` does to a validation image: decoded and scaled so that its shorter
side is the architecture's resize size, the centre square kept (loaders.decode), then the centre
crop or the ten crops, normalized by the checkpoint's mean and std (loaders.augment), and a forward
pass without dropout. The probabilities are the face's softmax, averaged over ten crops.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loaders.augment import apply_plan, eval_plan
from loaders.decode import DecodeFailure, decode_square
from loaders.folder import is_image_name

TEN_CROPS = 10


class PredictError(Exception):
    """An argument that names nothing to classify; the message says which and what to do."""


@dataclass
class Outcome:
    """One input file: its probabilities over the classes, or why it was skipped."""

    path: str
    probs: np.ndarray | None = None  # float32 (classes,)
    skipped: str | None = None


def image_files(paths: list[str]) -> list[str]:
    """The files to classify: files named as they are (a non-image is then skipped and named), and
    the images under each folder, by extension as in training, in sorted order."""
    files = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for folder, subfolders, names in os.walk(path):
                subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
                files += [os.path.join(folder, name) for name in sorted(names) if is_image_name(name)]
        elif path.exists():
            files.append(str(path))
        else:
            raise PredictError(f"{given}: no such file or folder; pass image files or folders of images")
    return files


def top_classes(probs: np.ndarray, count: int) -> list[tuple[int, float]]:
    """The `count` most probable (class index, probability), ties broken by the lower index as argmax does."""
    order = np.argsort(-probs, kind="stable")[:count]
    return [(int(index), float(probs[index])) for index in order]


class Classifier:
    def __init__(self, model, mean: np.ndarray, std: np.ndarray, ten_crop: bool = False):
        self.model, self.face, self.ten_crop = model, model.face, ten_crop
        self.arch = model.arch
        # The same float32 scale and bias as the loaders' plan (loaders.augment.SCALE and _bias) form
        # from their MEAN and STD, so that a checkpoint trained here sees exactly what eval feeds it.
        self.scale = (1.0 / (255.0 * std)).astype(np.float32)
        self.bias = ((np.zeros(3) - mean) / std).astype(np.float32)

    def probabilities(self, squares: np.ndarray) -> np.ndarray:
        """uint8 squares (B, R, R, 3) at the arch's resize size -> float32 probabilities (B, classes)."""
        count = len(squares)
        plan = eval_plan(count, self.arch.resize_size, self.arch.input_size, self.ten_crop)
        plan = dataclasses.replace(plan, scale=self.scale, bias=np.tile(self.bias, (len(plan), 1)))
        images = self.face.to_device(apply_plan(squares, plan))
        logits = self.model.forward(images, training=False)
        # The softmax of the loss op, as in evaluation; the labels only feed its unused loss.
        _, probs = self.face.softmax_xent_forward(logits, self.face.xp.zeros(len(plan), dtype=np.int32))
        probs = np.asarray(self.face.to_host(probs))
        if self.ten_crop:
            probs = probs.reshape(count, TEN_CROPS, -1).mean(axis=1)
        return probs

    def classify(self, files: list[str], batch_size: int) -> Iterator[Outcome]:
        """An Outcome per file, in order; files that fail to decode are skipped with the reason."""
        for start in range(0, len(files), batch_size):
            outcomes, squares = [], []
            for path in files[start:start + batch_size]:
                try:
                    squares.append(decode_square(path, self.arch.resize_size))
                    outcomes.append(Outcome(path))
                except DecodeFailure as failure:  # also a file that cannot be opened, with the reason
                    outcomes.append(Outcome(path, skipped=str(failure)))
            decoded = [outcome for outcome in outcomes if outcome.skipped is None]
            if decoded:
                for outcome, row in zip(decoded, self.probabilities(np.stack(squares)), strict=True):
                    outcome.probs = row
            yield from outcomes
