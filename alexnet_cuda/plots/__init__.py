"""Pictures of runs and benchmarks, drawn with matplotlib's Agg backend (files only, no display).

curves    learning curves of one or more training runs (alexnet_cuda.plots.curves)
filters   a conv layer's kernels as a grid of patches, as in the 2012 paper's Figure 3 (.filters)
roofline  every timed kernel under the measured roofline (.roofline)
step      where a training step's time goes, per layer (.step)

Each reads what the project already writes: the trainer's --metrics-file JSONL and checkpoints,
`bench kernels --json` and `bench step --json`. save() writes a figure atomically as PNG or SVG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display is ever opened, on a headless machine or not

from matplotlib.figure import Figure

from loaders.atomic import atomic_open

FORMATS = (".png", ".svg")
DPI = 100  # figure sizes below are in inches at this many pixels each: an 9x8 figure is 900x800 px


class PlotError(Exception):
    """An input that cannot be drawn; the message names the file and what to do."""


def check_output(path: Path) -> Path:
    """Fail before reading any input when the picture cannot go where asked."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise PlotError(f"-o {path}: expected a .png or .svg file name")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise PlotError(f"-o {path}: the folder {folder} does not exist; create it or choose another path")
    return path


def save(figure: Figure, path: Path, dpi: int = DPI) -> Path:
    """Write `figure` to `path` (its suffix picks PNG or SVG) through a temporary, so that a reader
    never sees half a picture under the name, even one refreshed while training. `dpi` scales a PNG:
    its size in pixels is the figure's size in inches times `dpi`."""
    path = check_output(path)
    with atomic_open(path, "wb") as file:
        figure.savefig(file, format=path.suffix.lower()[1:], dpi=dpi)
    return path


def machine(environment: dict) -> str:
    """'NVIDIA H200' or the CPU's name, from a benchmark's environment block."""
    return environment.get("gpu") or environment.get("cpu", "unknown machine")


def provenance(environment: dict) -> str:
    """The machine, date and commit a benchmark result came from, for a title's second line."""
    return f"{machine(environment)} · {environment.get('date', 'undated')} · commit {environment.get('commit', '?')}"
