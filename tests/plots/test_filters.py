"""`alexnet-cuda plot filters`: the grid's geometry counted back from the picture (one tile per
kernel, the groups in blocks), each tile scaled to its own range, and the bad inputs."""

import itertools

import numpy as np
import pytest

from alexnet_cuda import checkpoint
from alexnet_cuda.archs import ALEXNET_2012, build_layers, initial_parameters
from alexnet_cuda.plots import DPI, filters
from kernels import reference
from tests.plots.conftest import run_cli
from tests.plots.pictures import read_picture


def paper_checkpoint(path, layers=("conv1", "conv2")):
    """A checkpoint of alexnet2012 holding the paper's initial weights of `layers` only (the whole
    network would be 240 MB; the picture reads conv weights and the metadata)."""
    rng = np.random.default_rng(0)
    params = {}
    for layer in build_layers(ALEXNET_2012, reference, 1000):
        if layer.name in layers:
            params.update({f"{layer.name}.{k}": v for k, v in initial_parameters(ALEXNET_2012, layer, rng).items()})
    meta = {"arch": "alexnet2012", "classes": [f"c{i}" for i in range(1000)], "config": {},
            "progress": {"epoch": 0, "batch": 0, "step": 0}}
    path.parent.mkdir(parents=True, exist_ok=True)
    return checkpoint.save(path, meta, params, {})


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of False in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([1], flags.astype(np.int8), [1]))))
    return list(zip(edges[::2], edges[1::2], strict=True))


def count_tiles(pixels: np.ndarray):
    """(tiles, tile row spans, tile column spans) of the mosaic in a picture: the mosaic is where the
    gap colour is; a tile is a cell between whole gap rows and columns that is not all gap."""
    gap = np.all(np.abs(pixels.astype(int) - np.round(np.array(filters.GAP_COLOUR) * 255)) <= 1, axis=2)
    rows, columns = np.flatnonzero(gap.any(axis=1)), np.flatnonzero(gap.any(axis=0))
    region = gap[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    row_spans, column_spans = runs(region.all(axis=1)), runs(region.all(axis=0))
    tiles = sum(1 for r0, r1 in row_spans for c0, c1 in column_spans if not region[r0:r1, c0:c1].all())
    return tiles, row_spans, column_spans


def draw_file(checkpoint_path, output, *extra):
    status, out, err = run_cli("plot", "filters", str(checkpoint_path), *extra, "-o", str(output))
    assert status == 0, err
    return out


def expected_size(kernels):
    figure, _ = filters.draw(kernels)
    width, height = figure.get_size_inches() * DPI
    return round(width), round(height)


def test_alexnet2012_conv1_is_96_tiles_in_two_blocks_of_48(tmp_path):
    path = paper_checkpoint(tmp_path / "paper" / "last.npz")
    output = tmp_path / "filters.png"
    assert "96 tiles" in draw_file(path, output)
    pixels = read_picture(output, expected_size(filters.read_kernels(path)))
    tiles, row_spans, column_spans = count_tiles(pixels)
    assert tiles == 96
    assert len(row_spans) * len(column_spans) == 96, "the blocks are full: no empty slot"
    heights = {r1 - r0 for r0, r1 in row_spans} | {c1 - c0 for c0, c1 in column_spans}
    assert len(heights) == 1, "square tiles, all of one size"
    between = [b0 - a1 for (_, a1), (b0, _) in itertools.pairwise(row_spans)]
    widest = int(np.argmax(between))
    assert between.count(max(between)) == 1 and max(between) > min(between), "one wider gap between the blocks"
    assert (widest + 1) * len(column_spans) == 48, "48 kernels above the blocks' gap, 48 below"


def test_each_tile_is_scaled_to_its_own_range():
    weights = np.random.default_rng(1).normal(size=(4, 3, 5, 5)) * np.array([1e-3, 1, 10, 100])[:, None, None, None]
    image, grid = filters.mosaic(weights, blocks=1)
    for kernel in range(4):
        top, left = grid.origin(0, *divmod(kernel, grid.columns))
        tile = image[top:top + 5, left:left + 5]
        assert tile.min() == 0 and tile.max() == 1, kernel
        assert np.allclose(tile, (weights[kernel].transpose(1, 2, 0) - weights[kernel].min()) / np.ptp(weights[kernel]))


def test_a_trained_alexnet_mini_conv1_and_a_greyscale_layer(trained, tmp_path):
    folder = trained["folder"]
    output = tmp_path / "conv1.png"
    draw_file(folder, output)
    kernels = filters.read_kernels(folder)
    assert kernels.blocks == 2, "conv1 feeds conv2's two groups"
    tiles, _, _ = count_tiles(read_picture(output, expected_size(kernels)))
    assert tiles == 48
    output = tmp_path / "conv2.png"
    draw_file(folder / "last.npz", output, "--layer", "conv2")
    kernels = filters.read_kernels(folder, "conv2")
    tiles, row_spans, column_spans = count_tiles(read_picture(output, expected_size(kernels)))
    assert (tiles, len(row_spans), len(column_spans)) == (96 * 24, 48, 2 * 24), "a row per kernel, a column per channel"
    pixels = read_picture(output, expected_size(kernels))
    inside = pixels[pixels.shape[0] // 2, pixels.shape[1] // 2]
    assert inside[0] == inside[1] == inside[2], "greyscale"


def test_a_checkpoint_without_conv1_gets_a_clear_error(tmp_path, capsys):
    from alexnet_cuda.cli import main

    path = paper_checkpoint(tmp_path / "last.npz", layers=("conv2",))
    assert main(["plot", "filters", str(path), "-o", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "holds no conv1 weights" in err
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("make, message", [
    (lambda folder: folder / "missing.npz", "no such checkpoint file"),
    (lambda folder: (folder / "bad.npz").write_bytes(b"not a zip") and folder / "bad.npz", "not a readable"),
])
def test_missing_and_damaged_checkpoints_get_a_clear_error(tmp_path, capsys, make, message):
    from alexnet_cuda.cli import main

    path = make(tmp_path)
    assert main(["plot", "filters", str(path), "-o", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err


def test_a_layer_that_is_not_a_conv_layer_is_refused(tmp_path, capsys):
    from alexnet_cuda.cli import main

    path = paper_checkpoint(tmp_path / "last.npz")
    assert main(["plot", "filters", str(path), "--layer", "fc6", "-o", str(tmp_path / "f.png")]) == 2
    assert "not a conv layer of alexnet2012; choose one of conv1, conv2, conv3, conv4, conv5" in capsys.readouterr().err
