"""`--kernel-choice promoted|measured`: run the GEMM-shaped ops with each face's promoted version, or
with the candidate measured fastest at each shape (kernels/choice.py), and `alexnet-cuda tune`.

Measured is the default on a GPU. Elsewhere the default is promoted: the reference face has no
candidates, and host times of the emulator or the simulator say nothing about a GPU. Asked for
there, measured runs with host times under a cache key that names the device, so a GPU never
reads them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels import choice
from loaders import atomic

CHOICES = ("promoted", "measured")


class KernelChoiceError(ValueError):
    """--kernel-choice measured cannot work with this face; the message says what to do."""


def default_choice(device: str) -> str:
    return "measured" if device == "gpu" else "promoted"


def bench_choices(kernel_choice: str | None, gpu: bool) -> tuple[str, ...]:
    """What the benchmarks time: both side by side by default on a GPU, else what was asked for."""
    if kernel_choice is None:
        return ("promoted", "measured") if gpu else ("promoted",)
    return (kernel_choice,)


def not_gpu_times_note(device: str) -> str:
    where = "the CUDA C emulator" if device == "emu" else "Numba's CUDA simulator"
    return (f"note: --device {device} times the candidates on the host ({where}); these are not GPU times and "
            "choose nothing for a GPU, which keeps its own entries in the cache")


def with_kernel_choice(face, device: str, kernel_choice: str | None, report=None, remeasure: bool = False,
                       cache_file: Path | None = None, timer=None):
    """The face to hand the trainer: `face` itself for promoted, else a kernels.choice.ChosenFace."""
    kernel_choice = kernel_choice or default_choice(device)
    if kernel_choice not in CHOICES:
        raise KernelChoiceError(f"--kernel-choice {kernel_choice!r}: expected one of {', '.join(CHOICES)}")
    if kernel_choice == "promoted":
        return face
    if not getattr(face, "CANDIDATES", None):
        raise KernelChoiceError(f"--kernel-choice measured: the {face.NAME} face has no candidate kernels to time; "
                                "use --kernel-choice promoted, or a GPU face (--device gpu, emu or sim)")
    if device == "gpu":
        gpu, driver = choice.gpu_identity()
        timer = timer or choice.event_timer()
    else:
        gpu, driver = f"{device} (host times, not a GPU)", "none"
        timer = timer or choice.host_timer()
    cache = choice.ChoiceCache(cache_file or choice.cache_path(), gpu, driver, atomic.write_text)
    return choice.ChosenFace(face, choice.Chooser(face, timer, cache, report=report, remeasure=remeasure))


def choice_line(m) -> str:
    """A measured choice in one line (a Measurement), with each refused candidate by name."""
    line = f"kernel choice: {m.face} {m.op} {m.shape}: {m.choice} ({m.gain:.2f}x the promoted version)"
    return line + "".join(f"; {name} REFUSED: {why.splitlines()[0]}" for name, why in m.refused.items())


def report_choice(measurement) -> None:
    """How training and evaluation announce a measured choice."""
    print(choice_line(measurement), flush=True)


def add_argument(parser) -> None:
    """--kernel-choice, as train, eval and bench take it."""
    parser.add_argument("--kernel-choice", choices=CHOICES, default=None,
                        help="the GEMM-shaped ops' kernels: each face's promoted version, or the candidate measured "
                             "fastest at each shape and cached (default: measured on a GPU, promoted elsewhere)")


def tune(chosen_face, arch, batch: int, classes: int = 1000) -> None:
    """Make every GEMM-shaped call of one training step of `arch` at `batch` once, so that the chooser
    measures (and caches) each shape."""
    from alexnet_cuda.model import Model

    model = Model(arch, classes, chosen_face, seed=0)
    rng = np.random.default_rng(0)
    images = chosen_face.to_device(rng.standard_normal((batch, 3, arch.input_size, arch.input_size), np.float32))
    labels = chosen_face.to_device((np.arange(batch) % classes).astype(np.int32))
    model.set_step(0)
    model.loss(model.forward(images, training=True), labels)
    model.backward()


def as_record(m) -> dict:
    """A Measurement as JSON: times in ms, refusals with their reason, the choice and its gain."""
    return {"face": m.face, "op": m.op, "shape": m.shape, "ms": {name: t * 1e3 for name, t in m.times.items()},
            "refused": dict(m.refused), "choice": m.choice, "gain": m.gain}


def append_record(path: Path, record: dict) -> None:
    """One JSON line appended, so that a run cut off part-way keeps every shape it measured."""
    import json

    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")


def table(measurements) -> str:
    """One row per (op, shape): every candidate's time, the choice and its gain over promoted."""
    lines = []
    for m in measurements:
        lines.append(f"{m.op}  {m.shape}")
        for name, seconds in m.times.items():
            mark = "  <- chosen" if name == m.choice else ""
            lines.append(f"    {name:<20} {seconds * 1e3:10.3f} ms{mark}")
        for name, why in m.refused.items():
            lines.append(f"    {name:<20}    REFUSED: {why.splitlines()[0]}")
        lines.append(f"    choice {m.choice}: {m.gain:.2f}x the promoted version's speed")
    return "\n".join(lines)
