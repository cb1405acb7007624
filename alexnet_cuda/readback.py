"""What a training run reads back from the device, and when.

A training step only queues work: forward, loss, backward and SGD. Its loss (a 0-d array, see
kernels/README.md) and its count of top-1 hits stay on the device, and every `--log-every N` steps
(by default about once a second, from the measured step time) and at the end of the epoch one
transfer fetches the values of all the steps since the last read. On a GPU that is the only
moment the host waits for the device; reading after every step would drain the launch queue three
times a step, leaving the GPU idle while Python queues the next layer.

The values come back per step, not as a sum, so the trainer adds them up on the host in step order
(the epoch totals are then the same, bit for bit, whatever the read schedule, which keeps a resumed
run equal to an uninterrupted one) and can name the first step whose loss was not finite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

READ_SECONDS = 1.0  # the default read interval aims at about one read (one progress bar update) a second
MAX_AUTO_STEPS = 1000  # bounds the device values kept between reads when steps take microseconds


@dataclass(frozen=True)
class StepValues:
    step: int  # the step's number in the run, counted from 1
    loss: float
    correct: int  # top-1 hits of the step's batch
    images: int


class Readback:
    """Device values of the steps since the last read; `read()` fetches them in one transfer."""

    def __init__(self, face, every: int | None = None):
        """every: steps between reads; None adapts it to about READ_SECONDS between reads."""
        self.face, self.every = face, every
        self._auto_steps = 1  # the first read comes after one step, so the bar shows a loss at once
        self._steps: list[int] = []
        self._losses: list = []
        self._images: list = []
        self._corrects: list = []
        self._last_read = time.perf_counter()

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, step: int, loss, correct, images) -> None:
        """Keep one step's loss and top-1 count (arrays of the face's kind; nothing is read), and its
        image count: an int, or a face array where it is only known on the device (the images of all
        ranks of a data-parallel step)."""
        self._steps.append(step)
        self._losses.append(loss)
        self._corrects.append(correct)
        self._images.append(images)

    def due(self) -> bool:
        """After the step just added, is it time to read? With a fixed interval at every multiple of
        it (the same steps in a resumed run); adapted, after that many steps since the last read."""
        if not self._steps:
            return False
        if self.every:
            return self._steps[-1] % self.every == 0
        return len(self._steps) >= self._auto_steps

    def read(self) -> list[StepValues]:
        """The values of every step kept since the last read, in step order: one device-to-host copy."""
        if not self._steps:
            return []
        xp = self.face.xp
        counts_on_host = all(isinstance(count, int) for count in self._images)
        on_device = [self._losses, self._corrects] + ([] if counts_on_host else [self._images])
        rows = np.asarray(self.face.to_host(xp.stack([xp.stack(values).astype(xp.float64) for values in on_device])))
        losses, corrects = rows[0], rows[1]
        images = self._images if counts_on_host else rows[2]
        values = [StepValues(step, float(loss), int(correct), int(count))
                  for step, loss, correct, count in zip(self._steps, losses, corrects, images, strict=True)]
        now = time.perf_counter()
        if self.every is None:
            # The copy waited for the device, so the clock since the last read measured the device's
            # own pace: aim the next read about READ_SECONDS ahead.
            per_second = len(values) / max(now - self._last_read, 1e-9)
            self._auto_steps = int(min(max(round(per_second * READ_SECONDS), 1), MAX_AUTO_STEPS))
        self._last_read = now
        self._steps, self._losses, self._corrects, self._images = [], [], [], []
        return values
