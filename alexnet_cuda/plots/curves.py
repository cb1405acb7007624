"""Learning curves: train and validation loss, top-1 and top-5 per epoch, and the learning rate on
its own axis with each drop marked, for one run or several side by side.

A run is the trainer's --metrics-file (one JSON object per epoch) or a checkpoint, whose metadata
holds the same records as its history. A resumed run that stopped inside an epoch recorded that
epoch twice (partial, then whole): the later record of an epoch wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alexnet_cuda.plots import PlotError

SIZE = (9, 9)  # inches: three panels stacked, each readable at the default 100 dpi
DROP_GID = "lr-drop"  # the gid of each learning-rate drop marker, so a test can find them


@dataclass
class Run:
    label: str
    source: Path
    records: list[dict]  # one per epoch, in epoch order

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of the records that have `key`."""
        points = [(r["epoch"], r[key]) for r in self.records if r.get(key) is not None]
        return [e for e, _ in points], [v for _, v in points]

    def lr_drops(self) -> list[tuple[float, float]]:
        """(x, factor) for every drop of the rate: x halfway between the last epoch at the old rate and
        the first at the new one, factor the old rate over the new (10 for the trainer's schedules)."""
        epochs, rates = self.series("lr")
        return [((before + after) / 2, previous / rate)
                for before, after, previous, rate in zip(epochs, epochs[1:], rates, rates[1:], strict=False)
                if rate < previous]


def read_run(path: Path, label: str | None = None) -> Run:
    """A run from a metrics JSONL file or a checkpoint (a .npz, or a folder holding last.npz)."""
    path = Path(path)
    if not path.exists():
        raise PlotError(f"{path}: no such file; pass a --metrics-file JSONL that `alexnet-cuda train` wrote, "
                        f"or a checkpoint (.npz, or the folder holding last.npz)")
    if path.is_dir() or path.suffix == ".npz":
        records, default_label = _from_checkpoint(path)
    else:
        records, default_label = _from_jsonl(path), f"{path.resolve().parent.name}/{path.name}"
    if not any(isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in records):
        raise PlotError(f"{path}: no epoch records (a run writes one at the end of each epoch); train at least one "
                        f"epoch, or pass the --metrics-file or checkpoint of a run that did")
    return run_from_records(records, label or default_label, path)


def run_from_records(records: list[dict], label: str, source: Path) -> Run:
    """A Run of the trainer's epoch records, the later record of an epoch replacing an earlier one."""
    by_epoch: dict[int, dict] = {}
    for record in records:
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            by_epoch[record["epoch"]] = record
    return Run(label, Path(source), [by_epoch[e] for e in sorted(by_epoch)])


def checkpoint_label(arch: str, folder: Path) -> str:
    """A run's name from its checkpoint: the arch and the checkpoint folder's name."""
    return f"{arch} {Path(folder).resolve().name}"


def _from_jsonl(path: Path) -> list[dict]:
    records = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PlotError(f"{path}: cannot be read as a metrics file ({error}); pass the --metrics-file of a run "
                        f"or its checkpoint") from error
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise PlotError(f"{path}, line {number}: not JSON ({error.msg}); a --metrics-file holds one JSON "
                            f"object per line") from error
    return records


def _from_checkpoint(path: Path) -> tuple[list[dict], str]:
    from alexnet_cuda import checkpoint

    try:
        saved = checkpoint.load(path)
    except checkpoint.CheckpointError as error:
        raise PlotError(str(error)) from error
    return list(saved.meta.get("history", [])), checkpoint_label(saved.meta["arch"], saved.path.parent)


def draw(runs: list[Run]) -> Figure:
    figure = Figure(figsize=SIZE, layout="constrained")
    loss_axes, accuracy_axes, lr_axes = figure.subplots(3, 1, sharex=True, height_ratios=(3, 3, 2))
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for run, colour in zip(runs, colours, strict=True):
        name = f"{run.label}: " if len(runs) > 1 else ""
        for axes, key, style, what in (
            (loss_axes, "train_loss", "--", "train"), (loss_axes, "val_loss", "-", "validation"),
            (accuracy_axes, "train_top1", "--", "train top-1"), (accuracy_axes, "val_top1", "-", "validation top-1"),
            (accuracy_axes, "val_top5", ":", "validation top-5"),
        ):
            epochs, values = run.series(key)
            if key.endswith(("top1", "top5")):
                values = [100 * v for v in values]
            if epochs:
                axes.plot(epochs, values, style, marker="o", markersize=3, color=colour, label=name + what)
        epochs, rates = run.series("lr")
        if epochs:
            lr_axes.plot(epochs, rates, drawstyle="steps-mid", marker="o", markersize=3, color=colour,
                         label=run.label)
        for boundary, factor in run.lr_drops():
            for axes in (loss_axes, accuracy_axes):
                axes.axvline(boundary, color=colour, linestyle=":", linewidth=1, alpha=0.6)
            lr_axes.axvline(boundary, color=colour, linestyle=":", linewidth=1, gid=DROP_GID)
            lr_axes.annotate(f"÷{factor:.3g}", (boundary, 1.0),
                             xycoords=("data", "axes fraction"), xytext=(3, -12), textcoords="offset points",
                             fontsize=8, color=colour)
    loss_axes.set_ylabel("cross-entropy loss (nats)")
    accuracy_axes.set_ylabel("accuracy (% of images)")
    lr_axes.set_ylabel("learning rate (log scale)")
    lr_axes.set_yscale("log")
    lr_axes.set_xlabel("epoch")
    lr_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="best")
    lr_axes.grid(alpha=0.3, which="both")
    if len(runs) > 1:
        lr_axes.legend(fontsize=8, loc="best")
    figure.suptitle(_title(runs))
    return figure


def _title(runs: list[Run]) -> str:
    if len(runs) == 1:
        run = runs[0]
        return (f"Learning curves of {run.label}, {len(run.records)} epochs\n"
                "(dashed: train, solid: validation, dotted: top-5 and learning-rate drops)")
    return (f"Learning curves of {len(runs)} runs: {', '.join(run.label for run in runs)}\n"
            "(dashed: train, solid: validation, dotted: top-5 and learning-rate drops)")
