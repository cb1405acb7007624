"""Measured kernel choice: the GPU picks, per op and shape, the fastest correct candidate.

The GEMM-shaped ops (geometry.GEMM_OPS) have several candidates in each GPU face, every tiled
version at a few tile geometries (geometry.candidate_tiles; a face's CANDIDATES). Which one is
fastest depends on the shape and the GPU, so, as cuDNN does behind PyTorch's `cudnn.benchmark`, the
first call of an op at a shape

1. runs the promoted version (the face's contract function) for the expected result;
2. runs every candidate on the same inputs and refuses, naming it, any that raises or whose result
   differs from the promoted one beyond testing.TOLERANCES["float32_large_reduction"]
   (the tolerance grows with each output's summation length);
3. times the promoted version and every valid candidate with `timer` and picks the fastest (the
   promoted version on a tie, so a choice is never slower than it as measured);
4. remembers the choice in a ChoiceCache, keyed by GPU name, driver version, face, op and shape, so
   that later calls and later runs go straight to it.

Timing and writing are injected (`timer(run) -> seconds`, `write_text(path, text)`): on a GPU the
timer is `event_timer` and the writer the project's atomic one (loaders.atomic.write_text, passed in
by alexnet_cuda.tuning, since nothing in kernels/ imports loaders); the tests hand in a stand-in
timer and so drive the whole mechanism on the CPU.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from kernels.geometry import GEMM_OPS
from kernels.testing import assert_matches, conv_terms, linear_terms, to_numpy

PROMOTED = "promoted"  # the name the promoted version is timed under
CACHE_FORMAT = 1
VALIDATION_TOLERANCE = "float32_large_reduction"  # two float32 GPU results summed in different orders


def cache_path() -> Path:
    """$XDG_CACHE_HOME/alexnet-cuda/choices.json, ~/.cache when XDG_CACHE_HOME is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "alexnet-cuda" / "choices.json"


def gpu_identity() -> tuple[str, str]:
    """(name, driver version) of CuPy's current device: the part of the cache key that says which GPU
    the times belong to."""
    import cupy

    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties["name"]
    return (name.decode() if isinstance(name, bytes) else str(name)), str(cupy.cuda.runtime.driverGetVersion())


def event_timer(repeats: int = 5):
    """timer(run) -> seconds: one untimed call (compilation, caches), then the median of `repeats`
    calls, each between two CUDA events on the current stream."""
    import cupy

    def timer(run) -> float:
        run()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        for _ in range(repeats):
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, end) * 1e-3)
        return sorted(times)[len(times) // 2]

    return timer


def host_timer(repeats: int = 3):
    """timer(run) -> seconds on the host clock (the median of `repeats` calls after one untimed one):
    for the emulator and the simulator, whose times say nothing about a GPU's."""
    import time

    def timer(run) -> float:
        run()
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            run()
            times.append(time.perf_counter() - began)
        return sorted(times)[len(times) // 2]

    return timer


def shape_key(op: str, args, kwargs) -> str:
    """The call's shape: every argument by the contract's parameter name, arrays by their shape and
    the rest by value, defaults filled in, e.g. "x=128x3x227x227 w=96x3x11x11 b=96 stride=4 pad=0 groups=1"."""
    from kernels import reference

    bound = inspect.signature(getattr(reference, op)).bind(*args, **kwargs)
    bound.apply_defaults()
    parts = []
    for name, value in bound.arguments.items():
        shape = getattr(value, "shape", None)
        parts.append(f"{name}={'x'.join(map(str, shape))}" if shape is not None else f"{name}={value!r}")
    return " ".join(parts)


class ChoiceCache:
    """The choices of one GPU, read from and written back to a JSON file.

    The file holds {"format": 1, "choices": {key: {"choice": name, "ms": {candidate: time}}}} where key
    is "gpu | driver | face | op | shape": a choice made on another GPU, driver or face, or at
    another shape, is never found. A file that cannot be read as that is ignored with a warning
    naming it, and rebuilt by the next write.
    """

    def __init__(self, path: Path, gpu: str, driver: str, write_text):
        self.path, self.gpu, self.driver, self._write_text = Path(path), gpu, driver, write_text
        self.entries = self._read()

    def _read(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != CACHE_FORMAT or not isinstance(data.get("choices"), dict):
                raise ValueError(f"not a format-{CACHE_FORMAT} choices file")
            if not all(isinstance(entry.get("choice"), str) for entry in data["choices"].values()):
                raise ValueError("an entry without a choice")
            return data["choices"]
        except (OSError, ValueError, AttributeError) as error:
            warnings.warn(f"{self.path}: damaged kernel-choice cache ignored ({error}); it will be rebuilt "
                          "from new measurements", stacklevel=2)
            return {}

    def key(self, face: str, op: str, shape: str) -> str:
        return " | ".join((self.gpu, self.driver, face, op, shape))

    def get(self, face: str, op: str, shape: str) -> str | None:
        entry = self.entries.get(self.key(face, op, shape))
        return entry["choice"] if entry else None

    def put(self, face: str, op: str, shape: str, choice: str, times_ms: dict[str, float]) -> None:
        self.entries[self.key(face, op, shape)] = {"choice": choice, "ms": times_ms}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_text(self.path, json.dumps({"format": CACHE_FORMAT, "choices": self.entries}, indent=1) + "\n")


@dataclass
class Measurement:
    """What the first call of an op at a shape found: every candidate's time or why it was refused."""

    face: str
    op: str
    shape: str
    times: dict[str, float] = field(default_factory=dict)  # seconds, the promoted version's included
    refused: dict[str, str] = field(default_factory=dict)  # candidate -> why its result was refused
    choice: str = PROMOTED

    @property
    def gain(self) -> float:
        """The promoted version's time over the choice's (1.0: the promoted version was kept)."""
        return self.times[PROMOTED] / self.times[self.choice]


def fastest(times: dict[str, float]) -> str:
    """The name with the smallest time; the promoted version wins a tie (it comes first)."""
    best = PROMOTED
    for name, seconds in times.items():
        if seconds < times[best]:
            best = name
    return best


def summation_lengths(op: str, args, kwargs) -> list[int]:
    """The length of the longest sum behind an element of each output of a GEMM-shaped op, which the
    validation tolerance grows with (testing.conv_terms, testing.linear_terms)."""
    from kernels import reference

    bound = inspect.signature(getattr(reference, op)).bind(*args, **kwargs)
    bound.apply_defaults()
    given = bound.arguments
    if op.startswith("linear"):
        x, w = given["x"], given["w"]
        terms = linear_terms(x.shape[0], x.shape[1], w.shape[0])
    else:
        x, w = given["x"], given["w"]
        stride, pad, groups = int(given["stride"]), int(given["pad"]), int(given["groups"])
        f, _, kh, kw = w.shape
        oh, ow = ((size + 2 * pad - k) // stride + 1 for size, k in zip(x.shape[2:], (kh, kw), strict=True))
        terms = conv_terms(x.shape[0], x.shape[1], f, kh, kw, oh, ow, stride, groups)
    names = ("y",) if op.endswith("forward") else ("dx", "dw", "db")
    return [terms[name] for name in names]


def refusal(result, expected, lengths) -> str | None:
    """Why `result` (a tuple of arrays) cannot stand in for `expected`, or None when it can; lengths:
    summation_lengths of the call."""
    try:
        if len(result) != len(expected):
            raise AssertionError(f"{len(result)} outputs where the promoted version returns {len(expected)}")
        for index, (actual, wanted, terms) in enumerate(zip(result, expected, lengths, strict=True)):
            assert_matches(actual, wanted, VALIDATION_TOLERANCE, f"output {index}", terms=terms)
    except (AssertionError, ValueError) as error:
        return str(error)
    return None


def _named_run(name: str, launcher, args, kwargs):
    """run() for the timer: one call of `launcher`; run.candidate names it (for stand-in timers)."""
    def run():
        return launcher(*args, **kwargs)

    run.candidate = name
    return run


def _outputs(result) -> tuple:
    return tuple(to_numpy(a) for a in (result if isinstance(result, tuple) else (result,)))


class Chooser:
    """Picks and remembers a candidate per (op, shape) for one face.

    face: the face module (its NAME, CANDIDATES and contract functions, which run the promoted
    versions); timer(run) -> seconds of one run() (run.candidate: its name); cache: a ChoiceCache;
    report(Measurement), called after every measurement (refusals are in it); remeasure: measure
    every shape once in this process even where the cache holds a choice (`alexnet-cuda tune`).
    """

    def __init__(self, face, timer, cache: ChoiceCache, report=None, remeasure: bool = False):
        self.face, self.timer, self.cache, self.report = face, timer, cache, report
        self.remeasure = remeasure
        self.face_name = face.NAME
        self._chosen: dict[tuple[str, str], object] = {}

    def launchers(self, op: str) -> dict[str, object]:
        """{name: launcher}: the promoted version first, then every candidate by its name."""
        return {PROMOTED: getattr(self.face, op), **{str(c): f for c, f in self.face.CANDIDATES[op].items()}}

    def __call__(self, op: str, *args, **kwargs):
        """Run `op` with the launcher chosen for this shape, choosing it first if need be."""
        shape = shape_key(op, args, kwargs)
        launcher = self._chosen.get((op, shape))
        if launcher is None:
            launchers = self.launchers(op)
            name = None if self.remeasure else self.cache.get(self.face_name, op, shape)
            if name not in launchers:  # not measured yet, or a candidate this version no longer has
                name = self.measure(op, args, kwargs).choice
            launcher = self._chosen[op, shape] = launchers[name]
        return launcher(*args, **kwargs)

    def measure(self, op: str, args, kwargs) -> Measurement:
        measurement = Measurement(self.face_name, op, shape_key(op, args, kwargs))
        launchers = self.launchers(op)
        expected = _outputs(launchers[PROMOTED](*args, **kwargs))
        lengths = summation_lengths(op, args, kwargs)
        for name, launcher in launchers.items():
            if name != PROMOTED:
                try:
                    why = refusal(_outputs(launcher(*args, **kwargs)), expected, lengths)
                except Exception as error:  # a candidate that fails to compile or launch is refused, not fatal
                    why = f"{type(error).__name__}: {error}"
                if why is not None:
                    measurement.refused[name] = why
                    continue
            measurement.times[name] = self.timer(_named_run(name, launcher, args, kwargs))
        measurement.choice = fastest(measurement.times)
        self.cache.put(self.face_name, op, measurement.shape, measurement.choice,
                       {name: seconds * 1e3 for name, seconds in measurement.times.items()})
        if self.report is not None:
            self.report(measurement)
        return measurement


class ChosenFace:
    """A face whose GEMM-shaped ops run the measured choice; everything else is the face's own."""

    def __init__(self, face, chooser: Chooser):
        self._face, self.chooser = face, chooser
        self.NAME = f"{face.NAME} (measured)"  # in reports, beside the face's promoted versions
        for op in GEMM_OPS:
            setattr(self, op, self._chosen(op))

    def _chosen(self, op: str):
        def run(*args, **kwargs):
            return self.chooser(op, *args, **kwargs)

        run.__name__ = run.__qualname__ = op
        return run

    def __getattr__(self, name):
        return getattr(self._face, name)
