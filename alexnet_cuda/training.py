"""The training loop: SGD over the train split, validation after every epoch, checkpoints.

Everything a run's future depends on is in its checkpoint: parameters, momentum buffers, the
position (epoch, batch within it, step), the schedule, the per-epoch running totals and the
history. Randomness is a function of counters only: the loader seeds each sample from
(seed, epoch, sample index) and dropout draws Philox numbers at an offset derived from the step,
so a run resumed from any checkpoint takes exactly the steps the uninterrupted run took.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from alexnet_cuda import checkpoint as checkpoints
from alexnet_cuda.archs import get_arch
from alexnet_cuda.config import TrainConfig
from alexnet_cuda.evaluation import EvalResult, correct_counts, evaluate
from alexnet_cuda.model import Model, dropout_seed
from alexnet_cuda.schedule import LRSchedule
from loaders import atomic

LAST, BEST, CRASH = "last.npz", "best.npz", "crash.npz"


class Diverged(Exception):
    """The loss or the weights became NaN or infinite; the message says where the state went."""


@dataclass
class Position:
    epoch: int = 0  # the epoch in progress, counted from 0
    batch: int = 0  # batches of it already trained
    step: int = 0  # SGD steps of the whole run


@dataclass
class EpochTotals:
    """Running sums over the batches of the epoch in progress (checkpointed with it)."""

    loss_sum: float = 0.0  # Σ batch loss · batch images
    correct: int = 0
    images: int = 0
    seconds: float = 0.0
    wait_seconds: float = 0.0
    skipped: int = 0

    @property
    def loss(self) -> float:
        return self.loss_sum / self.images if self.images else float("nan")

    @property
    def top1(self) -> float:
        return self.correct / self.images if self.images else float("nan")


@dataclass
class TrainResult:
    status: str  # "complete", "stopped" (--max-steps) or "diverged"
    position: Position
    history: list[dict] = field(default_factory=list)
    best_val_top1: float = float("nan")
    checkpoint_dir: Path | None = None


class Trainer:
    """Runs one training run; `make_loader` has loaders.make_loader's signature."""

    def __init__(self, config: TrainConfig, dataset, face, device: str, make_loader: Callable, *,
                 resume_from: checkpoints.Checkpoint | None = None, progress_bars: bool = True,
                 on_step: Callable[[int, float], None] | None = None,
                 on_epoch: Callable[[dict], bool] | None = None, log: Callable[[str], None] = print):
        """on_step(step, loss) is called after every step; on_epoch(metrics record) after every epoch,
        and training stops there (checkpointed, resumable) when it returns True."""
        self.config, self.dataset, self.face, self.device = config, dataset, face, device
        self.make_loader, self.on_step, self.on_epoch, self.log = make_loader, on_step, on_epoch, log
        self.progress_bars = progress_bars
        self.arch = get_arch(config.arch)
        self.classes = list(dataset.classes)
        self.model = Model(self.arch, len(self.classes), face, seed=config.seed)
        self.position = Position()
        self.totals = EpochTotals()
        self.schedule = LRSchedule(config.lr_schedule, config.lr, config.lr_step_epochs, config.plateau_patience)
        self.history: list[dict] = []
        self.best_val_top1 = -1.0
        if not config.checkpoint_dir:
            raise ValueError("config.checkpoint_dir: a training run needs a folder for its checkpoints")
        self.folder = Path(config.checkpoint_dir)
        if resume_from is not None:
            self._restore(resume_from)

    # --- checkpoints -----------------------------------------------------------------------------

    def _meta(self, status: str) -> dict:
        return {
            "arch": self.arch.name,
            "classes": self.classes,
            "config": self.config.as_dict(),
            "progress": asdict(self.position),
            "schedule": self.schedule.state(),
            "epoch_totals": asdict(self.totals),
            "best_val_top1": self.best_val_top1,
            "history": self.history,
            # The only random state: counter-based streams keyed by these (see the module docstring).
            "rng": {"seed": self.config.seed, "dropout_seed": dropout_seed(self.config.seed),
                    "dropout_offset_next": self.position.step * len(self.model.dropouts),
                    "loader": "per sample from (seed, epoch, sample index)"},
            "status": status,
            "saved_at": time.time(),
        }

    def _restore(self, saved: checkpoints.Checkpoint) -> None:
        meta = saved.meta
        try:
            self.model.load_arrays("params", saved.params)
            self.model.load_arrays("velocities", saved.velocities)
            self.position = Position(**meta["progress"])
            self.totals = EpochTotals(**meta["epoch_totals"])
            self.schedule = LRSchedule.from_state(meta["schedule"])
            self.history = list(meta["history"])
            self.best_val_top1 = float(meta["best_val_top1"])
        except (KeyError, TypeError, ValueError) as error:
            raise checkpoints.CheckpointError(
                f"{saved.path}: the checkpoint does not fit a {self.arch.name} network with {len(self.classes)} "
                f"classes ({error}); it is damaged or from another program version"
            ) from error

    def _all_finite(self) -> bool:
        xp = self.face.xp
        return all(bool(xp.isfinite(value).all()) for _, value in self.model.named_arrays("params"))

    def _save(self, name: str, status: str = "ok") -> Path:
        return checkpoints.save(self.folder / name, self._meta(status), self.model.host_arrays("params"),
                                self.model.host_arrays("velocities"))

    def _save_last(self) -> None:
        """Write last.npz, unless the weights are no longer finite (then it is a divergence)."""
        if not self._all_finite():
            self._diverge("the weights hold NaN or infinite values")
        self._save(LAST)

    def _diverge(self, what: str) -> None:
        crash = self._save(CRASH, status="diverged")
        last = self.folder / LAST
        kept = f"the last good checkpoint {last} is untouched" if last.exists() else "no checkpoint was written yet"
        raise Diverged(
            f"training diverged at epoch {self.position.epoch + 1}, step {self.position.step}: {what}. The diverged "
            f"state is in {crash} (for inspection, not for resuming); {kept}. Lower --lr (now "
            f"{self.schedule.lr:g}) and start again, or resume from the last good checkpoint with a lower lr "
            f"in a new run"
        )

    def _write_metrics(self, records: list[dict], append: bool) -> None:
        if not self.config.metrics_file:
            return
        path = Path(self.config.metrics_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a" if append else "w") as file:
            for record in records:
                file.write(json.dumps(record) + "\n")

    # --- the run ---------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic.remove_stale_temporaries(self.folder)
        self._write_metrics(self.history, append=False)
        while self.position.epoch < self.config.epochs and not self._step_budget_spent():
            if self._train_epoch():
                record = self._end_epoch(partial=False)
                if self.on_epoch is not None and self.on_epoch(record):
                    break
            else:
                self._end_epoch(partial=True)
                break
        status = "complete" if self.position.epoch >= self.config.epochs else "stopped"
        best = self.best_val_top1 if self.best_val_top1 >= 0 else float("nan")
        return TrainResult(status, self.position, self.history, best, self.folder)

    def _step_budget_spent(self) -> bool:
        return self.config.max_steps is not None and self.position.step >= self.config.max_steps

    def _loader(self, split: str, *, train: bool, start_batch: int = 0, ten_crop: bool = False):
        return self.make_loader(
            self.dataset.split(split), batch_size=self.config.batch_size, input_size=self.arch.input_size,
            resize_size=self.arch.resize_size, train=train, seed=self.config.seed, epoch=self.position.epoch,
            start_batch=start_batch, workers=self.config.workers, device=self.device,
            face=self.face, ten_crop=ten_crop,
        )

    def _train_epoch(self) -> bool:
        """Train the rest of the epoch in progress; False when --max-steps stopped it early."""
        config, position, totals = self.config, self.position, self.totals
        first_batch = position.batch
        with self._loader("train", train=True, start_batch=first_batch) as loader:
            batches = first_batch + len(loader)
            bar = tqdm(total=batches, initial=first_batch, desc=f"epoch {position.epoch + 1}/{config.epochs}",
                       unit="batch", disable=not self.progress_bars, dynamic_ncols=True)
            reported_skips = 0
            wait_before = loader.wait_seconds
            step_started = time.perf_counter()
            try:
                for batch in loader:
                    self._train_step(batch.images, batch.labels)
                    # The loader does not yield a batch whose files all failed to decode: its number
                    # keeps the position exact for --resume all the same.
                    position.batch = batch.number + 1
                    now = time.perf_counter()
                    totals.seconds += now - step_started
                    totals.wait_seconds += loader.wait_seconds - wait_before
                    wait_before = loader.wait_seconds
                    step_started = now
                    for path, reason in loader.skipped[reported_skips:]:
                        bar.write(f"skipped {path}: {reason}")
                    totals.skipped += len(loader.skipped) - reported_skips
                    reported_skips = len(loader.skipped)
                    bar.update(position.batch - bar.n)
                    bar.set_postfix(loss=f"{totals.loss:.4f}", top1=f"{totals.top1:.3f}",
                                    img_s=f"{totals.images / max(totals.seconds, 1e-9):.1f}",
                                    wait=f"{totals.wait_seconds:.1f}s", refresh=False)
                    if position.batch < batches and self._step_budget_spent():
                        return False
                    if position.batch < batches and config.checkpoint_every and \
                            position.step % config.checkpoint_every == 0:
                        self._save_last()
            finally:
                bar.close()
        return True

    def _train_step(self, images, labels) -> None:
        # A diverging run overflows on its way to NaN; the loss check below reports it in one clear
        # message instead of NumPy's warnings from deep inside the ops.
        with np.errstate(over="ignore", invalid="ignore"):
            self._forward_backward_update(images, labels)

    def _forward_backward_update(self, images, labels) -> None:
        model, position, totals = self.model, self.position, self.totals
        model.set_step(position.step)
        logits = model.forward(images, training=True)
        loss, probs = model.loss(logits, labels)
        loss_value = float(self.face.to_host(loss))
        if not math.isfinite(loss_value):
            self._diverge(f"the loss is {loss_value}")
        correct, _ = correct_counts(probs, labels, self.face.xp)
        model.backward()
        model.sgd_step(self.schedule.lr, self.config.momentum, self.config.weight_decay)
        count = int(labels.shape[0])
        totals.loss_sum += loss_value * count
        totals.correct += correct
        totals.images += count
        position.step += 1
        if self.on_step is not None:
            self.on_step(position.step, loss_value)

    def validate(self, ten_crop: bool = False) -> EvalResult:
        with self._loader("val", train=False, ten_crop=ten_crop) as loader:
            bar = tqdm(total=len(loader), desc="validate", unit="batch", leave=False,
                       disable=not self.progress_bars, dynamic_ncols=True)
            try:
                result = evaluate(self.model, loader, ten_crop=ten_crop, progress=bar)
            finally:
                bar.close()
        for path, reason in result.skipped:
            self.log(f"skipped {path}: {reason}")
        return result

    def _end_epoch(self, partial: bool) -> dict:
        """Validate, record, checkpoint. A partial epoch (--max-steps) keeps its place for --resume."""
        val = self.validate()
        totals, position = self.totals, self.position
        record = {
            "epoch": position.epoch + 1,
            "step": position.step,
            "lr": self.schedule.lr,
            "train_loss": totals.loss,
            "train_top1": totals.top1,
            "val_loss": val.loss,
            "val_top1": val.top1,
            "val_top5": val.top5,
            "images_per_s": totals.images / totals.seconds if totals.seconds else 0.0,
            "data_wait_s": totals.wait_seconds,
            "skipped_images": totals.skipped + len(val.skipped),
            "train_images": totals.images,
            "val_images": val.images,
            "partial": partial,
        }
        self.history.append(record)
        improved = val.top1 > self.best_val_top1
        if improved:
            self.best_val_top1 = val.top1
        if not partial:
            self.schedule.end_epoch(val.top1)
            position.epoch += 1
            position.batch = 0
            self.totals = EpochTotals()
        self._save_last()
        if improved:
            atomic.link_or_copy(self.folder / LAST, self.folder / BEST)
        self._write_metrics([record], append=True)
        self.log(_epoch_line(record, self.config.epochs))
        return record


def _epoch_line(record: dict, epochs: int) -> str:
    label = f"epoch {record['epoch']}/{epochs}" + (" (stopped early)" if record["partial"] else "")
    return (
        f"{label}: step {record['step']}, train loss {record['train_loss']:.4f} top-1 {record['train_top1']:.2%}"
        f" | val loss {record['val_loss']:.4f} top-1 {record['val_top1']:.2%} top-5 {record['val_top5']:.2%}"
        f" | {record['images_per_s']:.1f} images/s, data wait {record['data_wait_s']:.1f} s, lr {record['lr']:g}"
        + (f", {record['skipped_images']} images skipped" if record["skipped_images"] else "")
    )


def load_for_resume(path: Path) -> checkpoints.Checkpoint:
    saved = checkpoints.load(path)
    if saved.meta.get("status") == "diverged":
        raise checkpoints.CheckpointError(
            f"{saved.path}: this is the crash checkpoint of a diverged run (its weights are not finite); resume "
            f"from last.npz beside it, or start afresh with a lower --lr"
        )
    return saved


def model_from_checkpoint(saved: checkpoints.Checkpoint, face) -> Model:
    """A model with the checkpoint's architecture, classes and parameters, ready for evaluation."""
    arch = get_arch(saved.meta["arch"])
    model = Model(arch, len(saved.meta["classes"]), face, seed=int(saved.meta["config"].get("seed", 0)))
    try:
        model.load_arrays("params", saved.params)
    except ValueError as error:
        raise checkpoints.CheckpointError(
            f"{saved.path}: its parameters do not fit {arch.name} with {len(saved.meta['classes'])} classes "
            f"({error}); the file is damaged"
        ) from error
    return model

