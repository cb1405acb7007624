"""Built-in synthetic data: a deterministic image folder of procedurally drawn objects.

Ten classes of shapes (disc, ring, triangle, square, cross, star, crescent, arrow, L, bars), each
image one object at a random position, scale and rotation over a gradient background with clutter
(lines, arcs and dots drawn before and after the object, so some cross it). Colours carry no class
information: the object's colour and the background's are one random pair of colours assigned at
random to the two roles, so the expected colour of every pixel is the same for every class, and
neither mean colour nor a linear function of the pixels tells the classes apart (tests/
tests/loaders/test_synthetic.py measures both); a small CNN does.

Each image depends on (seed, split, class, index) alone, so the folder is the same on every run
and can be written by any number of processes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from loaders.errors import DataError

SYNTHETIC_VERSION = 1
MARKER = "synthetic.json"  # written last: its presence means the folder is complete
CLASSES = ("arrow", "bars", "crescent", "cross", "disc", "ell", "ring", "square", "star", "triangle")
_SPLIT_IDS = {"train": 0, "val": 1}
MAX_ROTATION = math.radians(40)
_SUPERSAMPLE = 2  # draw at twice the size, then downsample: antialiased edges


@dataclass(frozen=True)
class SynthSpec:
    """What `alexnet-cuda synth` writes; the defaults are the built-in dataset of `alexnet-cuda train`."""

    train_per_class: int = 500
    val_per_class: int = 100
    size: int = 80  # pixels; alexnet-mini resizes to 73 and crops 64
    seed: int = 0
    quality: int = 90  # JPEG quality

    def __post_init__(self):
        for name in ("train_per_class", "val_per_class", "size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)}: expected a positive integer")
        if self.size < 16:
            raise ValueError(f"size {self.size}: expected at least 16 pixels")


def _regular(points: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(points) / points
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star() -> np.ndarray:
    outer, inner = _regular(5, 1.0, -np.pi / 2), _regular(5, 0.42, -np.pi / 2 + np.pi / 5)
    return np.stack([outer, inner], axis=1).reshape(-1, 2)


# Each class as polygons in a unit disc (x right, y down); "disc", "ring" and "crescent" are circles.
_POLYGONS = {
    "triangle": [_regular(3, 1.0, -np.pi / 2)],
    "square": [_regular(4, 1.0, np.pi / 4)],
    "cross": [np.array([[-0.3, -1], [0.3, -1], [0.3, -0.3], [1, -0.3], [1, 0.3], [0.3, 0.3], [0.3, 1], [-0.3, 1],
                        [-0.3, 0.3], [-1, 0.3], [-1, -0.3], [-0.3, -0.3]])],
    "star": [_star()],
    "arrow": [np.array([[-1, -0.2], [0.2, -0.2], [0.2, -0.6], [1, 0], [0.2, 0.6], [0.2, 0.2], [-1, 0.2]])],
    "ell": [np.array([[-0.7, -1], [-0.2, -1], [-0.2, 0.5], [0.7, 0.5], [0.7, 1], [-0.7, 1]])],
    "bars": [np.array([[-1, -0.75], [1, -0.75], [1, -0.25], [-1, -0.25]]),
             np.array([[-1, 0.25], [1, 0.25], [1, 0.75], [-1, 0.75]])],
}


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


_LUMA = np.array([0.299, 0.587, 0.114])
MIN_LUMA_CONTRAST = 70  # of 255: the outline is always an edge in brightness, not only in hue


def _colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two colours whose brightness differs enough to see the object, in random roles (object,
    background).

    The acceptance test is symmetric in the two colours and the roles are assigned by a coin, so the
    object's colour and the background's have the same distribution: the object is as often darker
    than its background as brighter, which is what defeats a linear model of the pixels."""
    while True:
        first, second = _random_colour(rng), _random_colour(rng)
        if abs(float((first - second) @ _LUMA)) >= MIN_LUMA_CONTRAST:
            break
    return (first, second) if rng.random() < 0.5 else (second, first)


def _background(rng: np.random.Generator, colour: np.ndarray, side: int) -> Image.Image:
    """A linear gradient around `colour` in a random direction."""
    other = np.clip(colour + rng.uniform(-50, 50, size=3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    coordinate = np.linspace(-0.5, 0.5, side, dtype=np.float32)
    ramp = np.cos(angle) * coordinate[None, :] + np.sin(angle) * coordinate[:, None] + 0.5
    pixels = colour.astype(np.float32) + (other - colour).astype(np.float32) * np.clip(ramp, 0, 1)[..., None]
    return Image.fromarray(pixels.astype(np.uint8))


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, side: int, count: int) -> None:
    """Thin lines, arcs and dots in random colours: edges that are not the object."""
    for _ in range(count):
        colour = tuple(int(v) for v in _random_colour(rng))
        kind = rng.integers(3)
        x0, y0 = rng.uniform(0, side, size=2)
        if kind == 0:
            length, angle = rng.uniform(0.15, 0.5) * side, rng.uniform(0, 2 * np.pi)
            draw.line([x0, y0, x0 + length * math.cos(angle), y0 + length * math.sin(angle)], fill=colour,
                      width=_SUPERSAMPLE)
        elif kind == 1:
            radius = rng.uniform(0.05, 0.2) * side
            start = rng.uniform(0, 360)
            draw.arc([x0 - radius, y0 - radius, x0 + radius, y0 + radius], start, start + rng.uniform(60, 180),
                     fill=colour, width=_SUPERSAMPLE)
        else:
            radius = rng.uniform(0.01, 0.03) * side
            draw.ellipse([x0 - radius, y0 - radius, x0 + radius, y0 + radius], fill=colour)


def _object_mask(name: str, rng: np.random.Generator, side: int) -> Image.Image:
    """The object's coverage as an L mask: random scale, rotation and position inside the frame."""
    radius = rng.uniform(0.24, 0.38) * side
    margin = radius * 1.05
    cx, cy = rng.uniform(margin, side - margin, size=2)
    # Up to 40 degrees either way: enough that no pixel template fits, little enough that a
    # small net learns each class's outline in a few CPU minutes.
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)

    def circle(x, y, r, fill):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)

    if name == "disc":
        circle(cx, cy, radius, 255)
    elif name == "ring":
        circle(cx, cy, radius, 255)
        circle(cx, cy, 0.55 * radius, 0)
    elif name == "crescent":
        circle(cx, cy, radius, 255)
        circle(cx + 0.5 * radius * math.cos(angle), cy + 0.5 * radius * math.sin(angle), 0.85 * radius, 0)
    else:
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        for polygon in _POLYGONS[name]:
            points = polygon @ rotation.T * radius + (cx, cy)
            draw.polygon([tuple(point) for point in points], fill=255)
    return mask


def render(spec: SynthSpec, split: str, label: int, index: int) -> Image.Image:
    """Image `index` of class `label` in `split`: a function of (spec.seed, split, label, index) only."""
    rng = np.random.default_rng([spec.seed, _SPLIT_IDS[split], label, index, SYNTHETIC_VERSION])
    side = spec.size * _SUPERSAMPLE
    object_colour, background_colour = _colour_pair(rng)
    image = _background(rng, background_colour, side)
    draw = ImageDraw.Draw(image)
    _clutter(rng, draw, side, int(rng.integers(1, 5)))
    mask = _object_mask(CLASSES[label], rng, side)
    image.paste(tuple(int(v) for v in object_colour), (0, 0, side, side), mask)
    _clutter(rng, draw, side, int(rng.integers(0, 2)))
    # Downsampling the supersampled drawing antialiases it; sensor-like noise goes on last.
    pixels = np.asarray(image.resize((spec.size, spec.size), Image.Resampling.BOX), dtype=np.float32)
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * 6.0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _write_chunk(task: tuple) -> int:
    folder, spec, split, label, indices = task
    for index in indices:
        path = os.path.join(folder, split, CLASSES[label], f"{CLASSES[label]}_{index:05d}.jpg")
        render(spec, split, label, index).save(path, "JPEG", quality=spec.quality)
    return len(indices)


def write_synthetic(destination, spec: SynthSpec = SynthSpec(), workers: int = 1, progress: bool = False) -> Path:
    """Write the synthetic image folder to `destination`, atomically: it is drawn into a temporary
    sibling folder and renamed into place once complete. Returns the destination.

    An existing complete folder with the same spec is kept as it is; anything else at the
    destination is an error (nothing is overwritten)."""
    from tqdm import tqdm

    destination = Path(destination).expanduser().resolve()
    if _is_complete(destination, spec):
        return destination
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise DataError(f"{destination} exists and is not the synthetic dataset this would write ({MARKER} is "
                        "missing or differs); choose another folder or delete it.")
    temporary = destination.parent / f".{destination.name}.tmp-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    tasks = []
    for split, count in (("train", spec.train_per_class), ("val", spec.val_per_class)):
        for label, name in enumerate(CLASSES):
            (temporary / split / name).mkdir(parents=True)
            for start in range(0, count, 100):
                tasks.append((str(temporary), spec, split, label, range(start, min(start + 100, count))))
    total = len(CLASSES) * (spec.train_per_class + spec.val_per_class)
    try:
        with tqdm(total=total, unit="img", desc="synth", disable=not progress) as bar:
            if workers > 1:
                from loaders.workers import process_context

                with process_context().Pool(workers) as pool:
                    for written in pool.imap_unordered(_write_chunk, tasks):
                        bar.update(written)
            else:
                for task in tasks:
                    bar.update(_write_chunk(task))
        (temporary / MARKER).write_text(json.dumps(_marker(spec), indent=1))
        if destination.exists():
            destination.rmdir()  # empty, checked above
        try:
            os.rename(temporary, destination)
        except OSError:
            # Another process finished the same folder first; theirs is as good as ours.
            if not _is_complete(destination, spec):
                raise
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return destination


def _marker(spec: SynthSpec) -> dict:
    return {"generator": "alexnet-cuda synth", "version": SYNTHETIC_VERSION, "classes": list(CLASSES), **asdict(spec)}


def _is_complete(folder: Path, spec: SynthSpec) -> bool:
    try:
        return json.loads((folder / MARKER).read_text()) == _marker(spec)
    except (OSError, ValueError):
        return False


def default_data_dir() -> Path:
    """Where the built-in synthetic dataset lives: $ALEXNET_CUDA_DATA, else
    ~/.cache/alexnet-cuda/synthetic-v<version> (under $XDG_CACHE_HOME when that is set)."""
    if os.environ.get("ALEXNET_CUDA_DATA"):
        return Path(os.environ["ALEXNET_CUDA_DATA"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "alexnet-cuda" / f"synthetic-v{SYNTHETIC_VERSION}"


def ensure_synthetic(path=None, workers: int | None = None, progress: bool = True,
                     spec: SynthSpec | None = None) -> Path:
    """The built-in synthetic image folder at `path` (default: default_data_dir()), generated first if
    it is not there and complete. Generation is atomic: an interrupted run never looks complete.
    `spec` (default: SynthSpec()) is for tests that want a smaller folder."""
    from loaders.packed import default_workers

    spec = spec or SynthSpec()
    destination = Path(path).expanduser() if path is not None else default_data_dir()
    if _is_complete(destination.resolve(), spec):
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"generating the built-in synthetic dataset in {destination} (once)")
    write_synthetic(destination, spec, workers=workers or default_workers(), progress=progress)
    return destination
