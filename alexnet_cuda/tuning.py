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


def report_choice(measurement) -> None:
    """How training and evaluation announce a measured choice: one line, and each refusal by name."""
    m = measurement
    print(f"kernel choice: {m.op} {m.shape}: {m.choice} ({m.gain:.2f}x the promoted version)", flush=True)
    for name, why in m.refused.items():
        print(f"kernel choice: {m.op} {m.shape}: candidate {name} REFUSED, its result differs from the promoted "
              f"version's: {why.splitlines()[0]}", flush=True)


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
