"""A conv layer's kernels as a grid of patches, as in Figure 3 of Krizhevsky et al. (2012).

conv1 reads the three colour channels, so each of its kernels is one RGB patch. Any other layer's
kernel is a stack of one slice per input channel: one greyscale patch each, a kernel per row and
an input channel per column. Every patch is scaled to its own range (its minimum black, its
maximum white), so that a kernel with small weights shows its pattern as clearly as a large one.

The paper split the network over two GPUs, and its two sets of conv1 kernels came out different:
one mostly colour-agnostic, the other colour-specific. Here that split is the layer's groups, or
for an ungrouped layer the groups of the conv layer that reads its output (conv1's 96 kernels feed
conv2's two groups, 48 each): each group's kernels are drawn as a block of their own.

The mosaic is assembled in NumPy with one-pixel gaps of a colour no patch can take (a greyscale
patch is grey, an RGB patch spans black to white), and drawn pixel for pixel at an integer scale,
so that the tiles can be counted back from the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from alexnet_cuda.plots import DPI, PlotError

GAP_COLOUR = (0.16, 0.20, 0.28)  # slate: not grey, so no greyscale patch has it; no RGB patch is all one colour
BLOCK_GAP = 4  # gap pixels between two groups' blocks, against 1 between tiles
LARGEST_SIDE = 720  # the mosaic is scaled up by the largest whole factor that keeps it within this many pixels
MOST_SCALE = 8
MARGINS = dict(left=120, right=24, top=96, bottom=64)  # pixels around the mosaic: labels and the title
LEAST_WIDTH = 720  # pixels: room for the title and the caption under a small mosaic


@dataclass(frozen=True)
class Grid:
    """Where the tiles go: `blocks` blocks of rows x columns tiles each, stacked down the picture
    (colour patches) or side by side (greyscale); `tiles` of them hold a patch, the rest are empty."""

    blocks: int
    rows: int
    columns: int
    tiles: int
    tile: int  # a patch's side in pixels (the kernel size)
    colour: bool

    @property
    def stacked(self) -> bool:
        return self.colour

    def origin(self, block: int, row: int, column: int) -> tuple[int, int]:
        """The top-left pixel of a tile in the mosaic."""
        step = self.tile + 1
        top, left = 1 + row * step, 1 + column * step
        if self.stacked:
            top += block * (self.rows * step + BLOCK_GAP - 1)
        else:
            left += block * (self.columns * step + BLOCK_GAP - 1)
        return top, left

    @property
    def shape(self) -> tuple[int, int]:
        """The mosaic's (height, width) in pixels."""
        step = self.tile + 1
        height, width = 1 + self.rows * step, 1 + self.columns * step
        if self.stacked:
            height = self.blocks * height + (self.blocks - 1) * (BLOCK_GAP - 1)
        else:
            width = self.blocks * width + (self.blocks - 1) * (BLOCK_GAP - 1)
        return height, width


def block_columns(count: int) -> int:
    """Columns for a block of `count` colour patches: a divisor of `count` near sqrt(3·count), so the
    block is about three times as wide as tall and full; without one, that width with a last row short."""
    aim = math.sqrt(3 * count)
    divisors = [d for d in range(1, count + 1) if count % d == 0 and d * d >= count]
    best = min(divisors, key=lambda d: abs(d - aim))
    return best if best <= 2 * aim else math.ceil(aim)


def grid_for(weights: np.ndarray, blocks: int) -> Grid:
    kernels, channels, height, width = weights.shape
    if kernels % blocks:
        raise ValueError(f"{kernels} kernels do not split into {blocks} groups")
    per_block = kernels // blocks
    if channels == 3:
        columns = block_columns(per_block)
        return Grid(blocks, math.ceil(per_block / columns), columns, kernels, height, colour=True)
    return Grid(blocks, per_block, channels, kernels * channels, height, colour=False)


def _scaled(patch: np.ndarray) -> np.ndarray:
    low, high = float(patch.min()), float(patch.max())
    return (patch - low) / (high - low) if high > low else np.full_like(patch, 0.5)


def mosaic(weights: np.ndarray, blocks: int) -> tuple[np.ndarray, Grid]:
    """(an RGB image in [0, 1] of every kernel of `weights` (K, C, k, k), its Grid)."""
    weights = np.asarray(weights, dtype=np.float64)
    grid = grid_for(weights, blocks)
    image = np.empty((*grid.shape, 3))
    image[:] = GAP_COLOUR
    per_block = weights.shape[0] // blocks
    k = grid.tile
    for kernel, value in enumerate(weights):
        block, index = divmod(kernel, per_block)
        if grid.colour:
            top, left = grid.origin(block, *divmod(index, grid.columns))
            image[top:top + k, left:left + k] = _scaled(value).transpose(1, 2, 0)
            continue
        for channel, plane in enumerate(value):
            top, left = grid.origin(block, index, channel)
            image[top:top + k, left:left + k] = _scaled(plane)[..., None]
    return image, grid


def conv_layers(arch) -> list[tuple[str, int]]:
    """(name, groups) of every conv layer of `arch`, in order."""
    return [(name, options.get("groups", 1)) for kind, name, options in arch.steps if kind == "conv"]


def block_count(arch, layer: str) -> int:
    """The paper's two-GPU split of `layer`: its own groups, or the groups of the next conv layer."""
    layers = conv_layers(arch)
    names = [name for name, _ in layers]
    index = names.index(layer)
    following = layers[index + 1][1] if index + 1 < len(layers) else 1
    return max(layers[index][1], following)


@dataclass
class Kernels:
    arch: str
    layer: str
    weights: np.ndarray
    blocks: int
    source: str  # the checkpoint, for the title


def read_kernels(path: Path, layer: str = "conv1") -> Kernels:
    from alexnet_cuda import checkpoint
    from alexnet_cuda.archs import ArchError, get_arch

    try:
        saved = checkpoint.load(Path(path))
    except checkpoint.CheckpointError as error:
        raise PlotError(str(error)) from error
    try:
        arch = get_arch(saved.meta["arch"])
    except ArchError as error:
        raise PlotError(f"{saved.path}: {error}") from error
    names = [name for name, _ in conv_layers(arch)]
    if layer not in names:
        raise PlotError(f"--layer {layer}: not a conv layer of {arch.name}; choose one of {', '.join(names)}")
    weights = saved.params.get(f"{layer}.w")
    if weights is None:
        raise PlotError(f"{saved.path}: holds no {layer} weights (no '{layer}.w' parameter), so it has no kernels "
                        f"to draw; the file is damaged or was not written by alexnet-cuda train or import-weights")
    if weights.ndim != 4 or weights.shape[2] != weights.shape[3]:
        raise PlotError(f"{saved.path}: {layer}.w has shape {weights.shape}, not (kernels, channels, k, k); "
                        f"the file is damaged")
    progress = saved.meta.get("progress", {})
    status = saved.meta.get("status")
    when = "imported weights" if status == "imported" else f"step {progress.get('step', '?')}"
    source = f"{saved.path.resolve().parent.name}/{saved.path.name}, {when}"
    return Kernels(arch.name, layer, weights, block_count(arch, layer), source)


def draw(kernels: Kernels) -> tuple[Figure, Grid]:
    """The figure and the Grid it drew (the tests count the tiles back from the picture)."""
    image, grid = mosaic(kernels.weights, kernels.blocks)
    height, width = image.shape[:2]
    scale = max(1, min(MOST_SCALE, LARGEST_SIDE // max(height, width)))
    margins = MARGINS
    figure_width = max(LEAST_WIDTH, margins["left"] + scale * width + margins["right"])
    figure_height = margins["top"] + scale * height + margins["bottom"]
    figure = Figure(figsize=(figure_width / DPI, figure_height / DPI))
    # Whole pixels on every side, so each mosaic pixel becomes exactly scale x scale picture pixels.
    left = margins["left"] + (figure_width - margins["left"] - scale * width - margins["right"]) // 2
    axes = figure.add_axes((left / figure_width, margins["bottom"] / figure_height,
                            scale * width / figure_width, scale * height / figure_height))
    axes.imshow(image, interpolation="nearest", aspect="auto", resample=False)
    count, k = kernels.weights.shape[0], grid.tile
    channels = kernels.weights.shape[1]
    centres = [(grid.origin(block, 0, 0)[0 if grid.stacked else 1]
                + (grid.rows if grid.stacked else grid.columns) * (k + 1) / 2) for block in range(grid.blocks)]
    per_block = count // grid.blocks
    labels = [f"group {block + 1}\nkernels {block * per_block + 1}–{(block + 1) * per_block}"
              for block in range(grid.blocks)]
    if grid.stacked:
        axes.set_yticks(centres, labels, fontsize=9)
        axes.set_xticks([])
        axes.set_xlabel(f"one tile per kernel: {k}×{k} weights × RGB, each scaled to its own range")
    else:
        axes.set_xticks(centres, labels, fontsize=9)
        axes.set_yticks([])
        axes.set_ylabel(f"output kernel ({per_block} rows a group)")
        axes.set_xlabel(f"input channel of its group ({channels} columns); tiles {k}×{k} weights, each scaled to its "
                        f"own range")
    split = ("\none block per group, as the paper's two GPUs held them" if grid.blocks == 2 else
             f"\none block per group ({grid.blocks})" if grid.blocks > 1 else "")
    figure.suptitle(f"{kernels.layer} of {kernels.arch}: {count} kernels of {k}×{k}×{channels}{split}\n"
                    f"{kernels.source}", fontsize=11, y=1 - 8 / figure_height, va="top")
    return figure, grid
