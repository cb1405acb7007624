"""Learning-rate schedules, both dividing by 10 as the paper did: on a fixed epoch count (`step`)
or when validation top-1 stops improving (`plateau`). The whole state is a small JSON-able dict
so that checkpoints carry it and a resumed run takes the same decisions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SCHEDULES = ("step", "plateau")
FACTOR = 0.1


@dataclass
class LRSchedule:
    kind: str
    lr: float  # the rate in force now
    step_epochs: int = 30  # step: divide after every this many epochs
    patience: int = 1  # plateau: divide after this many epochs without a better val top-1
    epochs_done: int = 0
    best_val_top1: float = -1.0
    epochs_without_gain: int = 0
    reductions: int = 0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"lr schedule {self.kind!r}: expected one of {', '.join(SCHEDULES)}")

    def end_epoch(self, val_top1: float) -> float:
        """Account for a finished epoch with its validation top-1; returns the rate for the next one."""
        self.epochs_done += 1
        if val_top1 > self.best_val_top1:
            self.best_val_top1 = val_top1
            self.epochs_without_gain = 0
        else:
            self.epochs_without_gain += 1
        if self.kind == "step":
            divide = self.epochs_done % self.step_epochs == 0
        else:
            divide = self.epochs_without_gain >= self.patience
        if divide:
            self.lr *= FACTOR
            self.reductions += 1
            self.epochs_without_gain = 0
        return self.lr

    def state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> LRSchedule:
        return cls(**state)
