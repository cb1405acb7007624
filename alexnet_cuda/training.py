"""The training loop: SGD over the train split, validation after every epoch, checkpoints.

Everything a run's future depends on is in its checkpoint: parameters, momentum buffers, the
position (epoch, batch within it, step), the schedule, the per-epoch running totals and the
history. Randomness is a function of counters only: the loader seeds each sample from
(seed, epoch, sample index) and dropout draws Philox numbers at an offset derived from the step,
so a run resumed from any checkpoint takes exactly the steps the uninterrupted run took.

A step queues its work and reads nothing back: the losses and top-1 counts come to the host in one
copy every --log-every steps and at the epoch's end (alexnet_cuda.readback). Those reads are where
divergence is caught, and last.npz is written only after a read of every loss up to it and a
check of the weights it copies have found them finite.

A stop asked for through should_stop (the train command sets it on SIGINT or SIGTERM) is honoured
between steps: the step in flight finishes, last.npz is written, and the run returns "interrupted".

Given a `group` (alexnet_cuda.distributed, a run under mpiexec), the trainer is one rank of a
data-parallel run: it trains on its share of every global batch, its gradients are summed with the
other ranks' before each update, and the losses and counts it reads back are the whole batch's. Only
rank 0 writes checkpoints and metrics and shows progress. The ranks agree after every step whether
any was asked to stop, so they all stop after the same step.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from alexnet_cuda import checkpoint as checkpoints
from alexnet_cuda.archs import get_arch
from alexnet_cuda.config import TrainConfig
from alexnet_cuda.evaluation import EvalResult, EvaluationStopped, evaluate, top1_hits
from alexnet_cuda.model import Model, dropout_seed
from alexnet_cuda.readback import Readback
from alexnet_cuda.schedule import LRSchedule
from loaders import atomic

LAST, BEST, CRASH = "last.npz", "best.npz", "crash.npz"


class Diverged(Exception):
    """The loss or the weights became NaN or infinite; the message says where the state went."""


class NotWritten(Exception):
    """A checkpoint or the metrics file could not be written (a full disk, say); the one-line message
    names the file and the reason, says what is intact and how to resume."""


def resume_command(last: Path) -> str:
    """The command that continues the run whose last.npz is `last` (its configuration is inside)."""
    return f"alexnet-cuda train --resume {shlex.quote(str(last))}"


def loader_device(device: str) -> str:
    """The loaders' device for a --device: the emulator, like the NumPy faces, takes host arrays."""
    return "cpu" if device == "emu" else device


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
    status: str  # "complete", "stopped" (--max-steps or on_epoch) or "interrupted" (should_stop)
    position: Position
    history: list[dict] = field(default_factory=list)
    best_val_top1: float = float("nan")
    checkpoint_dir: Path | None = None


class Trainer:
    """Runs one training run; `make_loader` has loaders.make_loader's signature."""

    def __init__(self, config: TrainConfig, dataset, face, device: str, make_loader: Callable, *,
                 resume_from: checkpoints.Checkpoint | None = None, progress_bars: bool = True,
                 on_step: Callable[[int, float], None] | None = None,
                 on_epoch: Callable[[dict], bool] | None = None, should_stop: Callable[[], bool] | None = None,
                 log: Callable[[str], None] = print, group=None):
        """on_step(step, loss) is called for every step, in order, at the read that brought its loss
        to the host; on_epoch(metrics record) after every epoch, and training stops there
        (checkpointed, resumable) when it returns True. should_stop() is asked between steps and
        between validation batches; when it returns True the run writes last.npz and returns with
        status "interrupted". group: the data-parallel group this rank belongs to (None: one process)."""
        self.config, self.dataset, self.face, self.device = config, dataset, face, device
        self.make_loader, self.on_step, self.on_epoch = make_loader, on_step, on_epoch
        self.group = group
        self.is_root = group is None or group.is_root
        self.log = log if self.is_root else (lambda line: None)
        self._asked_to_stop = should_stop or (lambda: False)
        self._stop_agreed = False
        self.should_stop = self._asked_to_stop if group is None else (lambda: self._stop_agreed)
        self.progress_bars = progress_bars and self.is_root
        self.arch = get_arch(config.arch)
        self.classes = list(dataset.classes)
        self.model = Model(self.arch, len(self.classes), face, seed=config.seed, rank=group.rank if group else 0)
        self.position = Position()
        self.totals = EpochTotals()
        self.schedule = LRSchedule(config.lr_schedule, config.lr, config.lr_step_epochs, config.plateau_patience)
        self.history: list[dict] = []
        self.best_val_top1 = -1.0
        self.readback = Readback(face, config.log_every)
        self._bar = None  # the epoch's progress bar while one is shown
        self._saved_at: dict | None = None  # the position this run last wrote last.npz at
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
            # The ranks that wrote it; any number resumes it (the position counts global batches).
            "ranks": self.group.size if self.group else 1,
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

    def _host_state(self) -> tuple[dict, dict]:
        return self.model.host_arrays("params"), self.model.host_arrays("velocities")

    def _save(self, name: str, state: tuple[dict, dict], status: str = "ok") -> Path:
        path = self.folder / name
        if not self.is_root:
            return path  # every rank holds the same state; rank 0 writes it
        try:
            return checkpoints.save(path, self._meta(status), *state)
        except OSError as error:
            raise NotWritten(self._not_written(path, error)) from error

    def _not_written(self, path: Path, error: OSError) -> str:
        last = self.folder / LAST
        step = checkpoints.saved_step(last)
        if step is None:
            kept, then = f"no earlier {LAST} of this run exists", "run the same command again once there is room"
        else:
            kept, then = f"the previous {last} (step {step}) is intact", f"resume with `{resume_command(last)}`"
        return f"could not write {path}: {error.strerror or error}; {kept}; {then} once there is room"

    def _save_last(self) -> None:
        """Write last.npz, from a state that a read has just found finite."""
        self._read()
        state = self._host_state()
        if not all(np.isfinite(array).all() for arrays in state for array in arrays.values()):
            self._diverge(f"after step {self.position.step} the weights hold NaN or infinite values, though every "
                          f"loss up to it was finite", state)
        self._save(LAST, state)
        self._saved_at = asdict(self.position)

    def _diverge(self, what: str, state: tuple[dict, dict] | None = None) -> None:
        crash = self._save(CRASH, state or self._host_state(), status="diverged")
        last = self.folder / LAST
        kept = f"the last good checkpoint {last} is untouched" if last.exists() else "no checkpoint was written yet"
        raise Diverged(
            f"training diverged at epoch {self.position.epoch + 1}, {what}. The diverged state (after step "
            f"{self.position.step}) is in {crash} (for inspection, not for resuming); {kept}. Lower --lr (now "
            f"{self.schedule.lr:g}) and start again, or resume from the last good checkpoint with a lower lr "
            f"in a new run"
        )

    def _write_metrics(self, records: list[dict], append: bool) -> None:
        if not self.config.metrics_file or not self.is_root:
            return
        path = Path(self.config.metrics_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a" if append else "w") as file:
                for record in records:
                    file.write(json.dumps(record) + "\n")
        except OSError as error:
            raise NotWritten(self._not_written(path, error)) from error

    # --- reads -----------------------------------------------------------------------------------

    def _read(self) -> None:
        """Bring the losses and top-1 counts of the steps since the last read to the host in one copy,
        check them, and add them to the epoch's totals in step order."""
        values = self.readback.read()
        totals = self.totals
        for value in values:
            if not math.isfinite(value.loss):
                together = f"steps {values[0].step} to {values[-1].step}" if len(values) > 1 else "the step"
                self._diverge(f"in the interval of {together}, read at step {values[-1].step}: the loss of "
                              f"step {value.step} is {value.loss}")
            totals.loss_sum += value.loss * value.images
            totals.correct += value.correct
            totals.images += value.images
            if self.on_step is not None:
                self.on_step(value.step, value.loss)
        if values and self._bar is not None:
            self._bar.set_postfix(loss=f"{totals.loss:.4f}", top1=f"{totals.top1:.3f}",
                                  img_s=f"{totals.images / max(totals.seconds, 1e-9):.1f}",
                                  wait=f"{totals.wait_seconds:.1f}s", refresh=False)

    # --- the run ---------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        if self.is_root:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic.remove_stale_temporaries(self.folder)
        self._write_metrics(self.history, append=False)
        if self.group is not None:
            # Every rank builds the same weights from the seed or loads the same file; taking rank 0's
            # makes "the same" a fact rather than an expectation.
            for which in ("params", "velocities"):
                self.model.load_arrays(which, self.group.broadcast_arrays(self.model.host_arrays(which)))
        try:
            while self.position.epoch < self.config.epochs and not self._step_budget_spent():
                outcome = self._train_epoch()
                if outcome == "stop":
                    break
                record = self._end_epoch(partial=outcome == "budget")
                self._agree_on_stop()
                if outcome == "budget" or self.should_stop() or (self.on_epoch is not None and self.on_epoch(record)):
                    break
        except EvaluationStopped:
            pass  # validation cut short: the resumed run validates this epoch again
        best = self.best_val_top1 if self.best_val_top1 >= 0 else float("nan")
        if self.position.epoch >= self.config.epochs:
            status = "complete"
        elif self.should_stop():
            status = "interrupted"
            if self._saved_at != asdict(self.position):
                self._save_last()
        else:
            status = "stopped"
        return TrainResult(status, self.position, self.history, best, self.folder)

    def _step_budget_spent(self) -> bool:
        return self.config.max_steps is not None and self.position.step >= self.config.max_steps

    def _agree_on_stop(self) -> None:
        """In a group, every rank learns whether any was asked to stop (a collective: every rank calls
        it at the same points, after every step and every epoch's end)."""
        if self.group is not None:
            self._stop_agreed = self.group.any(self._asked_to_stop())

    def _loader(self, split: str, *, train: bool, start_batch: int = 0, ten_crop: bool = False):
        shard = {} if self.group is None else {"shard": self.group.shard}
        return self.make_loader(
            self.dataset.split(split), batch_size=self.config.batch_size, input_size=self.arch.input_size,
            resize_size=self.arch.resize_size, train=train, seed=self.config.seed, epoch=self.position.epoch,
            start_batch=start_batch, workers=self.config.workers, device=loader_device(self.device),
            face=self.face, ten_crop=ten_crop, **shard,
        )

    def _train_epoch(self) -> str:
        """Train the rest of the epoch in progress. Returns "done", "budget" (--max-steps ended it
        early) or "stop" (should_stop() asked for it; the step in flight was finished first)."""
        config, position, totals = self.config, self.position, self.totals
        first_batch = position.batch
        with self._loader("train", train=True, start_batch=first_batch) as loader:
            batches = first_batch + len(loader)
            self._bar = tqdm(total=batches, initial=first_batch, desc=f"epoch {position.epoch + 1}/{config.epochs}",
                             unit="batch", disable=not self.progress_bars, dynamic_ncols=True)
            reported_skips = 0
            wait_before = loader.wait_seconds
            step_started = time.perf_counter()
            try:
                for batch in self._batches(loader):
                    if self.should_stop():
                        return "stop"  # asked while waiting for this batch: no step is in flight
                    self._train_step(batch.images, batch.labels)
                    self._agree_on_stop()
                    # The loader does not yield a batch whose files all failed to decode: its number
                    # keeps the position exact for --resume all the same.
                    position.batch = batch.number + 1
                    now = time.perf_counter()
                    totals.seconds += now - step_started
                    totals.wait_seconds += loader.wait_seconds - wait_before
                    wait_before = loader.wait_seconds
                    step_started = now
                    for path, reason in loader.skipped[reported_skips:]:
                        if self.is_root:
                            self._bar.write(f"skipped {path}: {reason}")
                    totals.skipped += len(loader.skipped) - reported_skips
                    reported_skips = len(loader.skipped)
                    if self.readback.due():
                        self._read()
                    self._bar.update(position.batch - self._bar.n)
                    if self.should_stop():
                        return "stop"
                    if position.batch < batches and self._step_budget_spent():
                        return "budget"
                    if position.batch < batches and config.checkpoint_every and \
                            position.step % config.checkpoint_every == 0:
                        self._save_last()
                self._read()
            finally:
                self._bar.close()
                self._bar = None
        return "stop" if self.should_stop() else "done"

    def _batches(self, loader):
        """The loader's batches. A SIGTERM sent to the whole process group also ends the loader's
        workers; the loader failing after a stop was asked for ends the epoch's loop, not the run."""
        batches = iter(loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception:
                if self.should_stop():
                    return
                raise
            yield batch

    def _train_step(self, images, labels) -> None:
        """Queue one step: forward, loss, top-1 count, backward, (in a group: the gradients summed over
        the ranks), SGD. Nothing is read back here. images None: this rank's share of the global batch
        failed to decode; it takes part in the sum with nothing."""
        model, position = self.model, self.position
        count = int(labels.shape[0])
        # A diverging run overflows on its way to NaN; the next read reports it in one clear message
        # instead of NumPy's warnings from deep inside the ops.
        with np.errstate(over="ignore", invalid="ignore"):
            model.set_step(position.step)
            if images is None:
                loss = correct = 0.0
            else:
                logits = model.forward(images, training=True)
                loss, probs = model.loss(logits, labels)
                correct = top1_hits(probs, labels, self.face.xp)
                model.backward()
            if self.group is not None:
                loss, correct, count = self.group.sum_step(model.layers, loss, correct, count)
            model.sgd_step(self.schedule.lr, self.config.momentum, self.config.weight_decay)
        position.step += 1
        self.readback.add(position.step, loss, correct, count)

    def validate(self, ten_crop: bool = False) -> EvalResult:
        with self._loader("val", train=False, ten_crop=ten_crop) as loader:
            bar = tqdm(total=len(loader), desc="validate", unit="batch", leave=False,
                       disable=not self.progress_bars, dynamic_ncols=True)
            try:
                result = evaluate(self.model, loader, ten_crop=ten_crop, progress=bar, should_stop=self.should_stop,
                                  sum_across=self.group.sum_host if self.group else None)
            finally:
                bar.close()
        for path, reason in result.skipped:
            self.log(f"skipped {path}: {reason}")
        return result

    def _end_epoch(self, partial: bool) -> dict:
        """Validate, record, checkpoint. A partial epoch (--max-steps) keeps its place for --resume."""
        self._read()
        val = self.validate()
        totals, position = self.totals, self.position
        skipped = totals.skipped + len(val.skipped)
        if self.group is not None:
            skipped = int(self.group.sum_host([skipped])[0])
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
            "skipped_images": skipped,
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
        if improved and self.is_root:
            try:
                atomic.link_or_copy(self.folder / LAST, self.folder / BEST)
            except OSError as error:
                raise NotWritten(self._not_written(self.folder / BEST, error)) from error
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

