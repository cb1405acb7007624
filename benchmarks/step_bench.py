"""`alexnet-cuda bench step`: images/s of a full training step of alexnet2012 and alexnet-owt at
batch 128 for each face, with a per-layer forward/backward breakdown, and PyTorch's same model in
the same run where it is importable.

A step is what the trainer does (alexnet_cuda.training): set the dropout offsets, forward through
model.layers, the loss and the batch's top-1 count (both left on the device), backward through the
layers in reverse, and the SGD update of every parameter. The input is one fixed batch of random
images and labels on the device: data loading is `bench loader`'s business.

Each step is timed both ways: as the trainer runs it now, reading nothing back (the trainer reads
the losses once per --log-every interval), and as it used to, reading the loss and two top-k
counts back after every step, three waits for the device per step. On a GPU the difference is the
time the GPU idled while the host, having drained the queue, queued the next layer; on the CPU the
two agree within the noise.

Three measurements per (arch, face):
- images/s: blocks of whole steps after warm-up, each block ending in one read that waits for the
  device, so the host clock sees finished work; blocks of the two ways alternate, twice, and each
  way's median block gives its time per step;
- the breakdown: further steps in which every layer's forward and backward, the loss and the SGD
  update are wrapped between CUDA events (the host clock on the CPU). The sum of the parts falls
  short of the step by the time the GPU waited for the host between launches; the table shows that
  remainder as "host gaps", the launch overhead a step pays.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from benchmarks.report import Target, format_table
from benchmarks.shapes import ARCHS, DEFAULT_BATCH

STEP_TARGET = Target("vendor", 0.5, "of PyTorch float32 on alexnet-owt")
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


@dataclass
class StepResult:
    arch: str
    face: str
    batch: int
    steps: int
    ms_per_step: float  # as the trainer steps now: nothing read back within the block
    images_per_s: float
    spread: float  # (max − min) / median of the blocks timed this way
    read_every_step_ms: float = 0.0  # the loss and two top-k counts read back after every step
    read_every_step_spread: float = 0.0
    layers: list[dict] = field(default_factory=list)  # {"name", "forward_ms", "backward_ms"}
    loss_ms: float = 0.0
    sgd_ms: float = 0.0
    parts_ms: float = 0.0  # sum of every timed part of one instrumented step
    breakdown_step_ms: float = 0.0  # the instrumented steps' own wall time, which the parts share
    torch_images_per_s: float | None = None
    torch_ratio: float | None = None  # our images/s over PyTorch's
    verdict: str | None = None
    note: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def trainer_model(arch: str, face, classes: int = 1000, seed: int = 0, rank: int = 0):
    """The trainer's own model (alexnet_cuda.model.Model) of `arch` on `face` (as data-parallel rank `rank`)."""
    from alexnet_cuda.archs import get_arch
    from alexnet_cuda.model import Model

    return Model(get_arch(arch), classes=classes, face=face, seed=seed, rank=rank)


def random_batch(face, arch: str, batch: int, classes: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    size = ARCHS[arch].input_size
    images = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    labels = rng.integers(0, classes, size=batch, dtype=np.int32)
    return face.to_device(images), face.to_device(labels)


def training_step(model, images, labels, step: int, read_back: bool = True) -> float | None:
    """One training step as the trainer queues it. With read_back it also reads back, as the trainer
    did before --log-every, the loss and the top-1 and top-5 counts (three waits for the device) and
    returns the loss; without, it reads nothing and returns None."""
    model.set_step(step)
    logits = model.forward(images, training=True)
    loss, probs = model.loss(logits, labels)
    xp = model.face.xp
    rows = xp.arange(probs.shape[0])
    label_probs = probs[rows, labels][:, None]
    columns = xp.arange(probs.shape[1])[None, :]
    rank = ((probs > label_probs) | ((probs == label_probs) & (columns < labels[:, None]))).sum(axis=1)
    top1 = (rank == 0).sum()  # the trainer keeps it on the device until its next read
    value = None
    if read_back:
        value = float(model.face.to_host(loss))
        int(top1), int((rank < 5).sum())
    model.backward()
    model.sgd_step(LR, MOMENTUM, WEIGHT_DECAY)
    return value


def wait_for_device(model) -> None:
    """Read one element of the parameter the last SGD update wrote: on a GPU stream that copy waits
    for all the work queued before it."""
    last = [value for _, value in model.named_arrays("params")][-1]
    model.face.to_host(last.reshape(-1)[:1])


class _Clock:
    """Marks on the GPU stream (CUDA events) or the host clock; elapsed() in milliseconds."""

    def __init__(self, gpu: bool):
        self.gpu = gpu
        if gpu:
            import cupy

            self._cupy = cupy

    def mark(self):
        if not self.gpu:
            return time.perf_counter()
        event = self._cupy.cuda.Event()
        event.record()
        return event

    def elapsed(self, start, end) -> float:
        if not self.gpu:
            return (end - start) * 1e3
        end.synchronize()
        return self._cupy.cuda.get_elapsed_time(start, end)


class _Instrumented:
    """Wraps each layer's forward/backward, the loss and the SGD step of a model between clock
    marks, on the instances only; restore() puts the original methods back."""

    def __init__(self, model, clock: _Clock):
        self.model, self.clock, self.marks, self._originals = model, clock, [], []
        for layer in model.layers:
            self._wrap(layer, "forward", (layer.name, "forward"))
            self._wrap(layer, "backward", (layer.name, "backward"))
        self._wrap(model.loss_layer, "forward", ("loss", "forward"))
        self._wrap(model.loss_layer, "backward", ("loss", "backward"))
        self._wrap(model, "sgd_step", ("sgd", "update"))

    def _wrap(self, owner, method: str, key):
        original = getattr(owner, method)
        self._originals.append((owner, method))

        def timed(*args, **kwargs):
            start = self.clock.mark()
            result = original(*args, **kwargs)
            self.marks.append((key, start, self.clock.mark()))
            return result

        setattr(owner, method, timed)

    def collect(self) -> dict[tuple[str, str], float]:
        totals: dict[tuple[str, str], float] = {}
        for key, start, end in self.marks:
            totals[key] = totals.get(key, 0.0) + self.clock.elapsed(start, end)
        self.marks = []
        return totals

    def restore(self):
        for owner, method in self._originals:
            delattr(owner, method)  # the instance attribute goes; the class's method shows again


ROUNDS = 2  # blocks of each way, alternating, so that a drift of the machine's speed hits both


def bench_model(model, images, labels, *, gpu: bool, steps: int, warmup: int, breakdown_steps: int) -> StepResult:
    """Time `steps`-step blocks of `model` both ways after `warmup` steps, then the per-layer breakdown."""
    batch = int(images.shape[0])
    for step in range(warmup):
        training_step(model, images, labels, step)
    wait_for_device(model)
    per_step: dict[bool, list[float]] = {True: [], False: []}
    step = warmup
    for _round in range(ROUNDS):
        for read_back in (True, False):
            began = time.perf_counter()
            for _ in range(steps):
                training_step(model, images, labels, step, read_back=read_back)
                step += 1
            wait_for_device(model)
            per_step[read_back].append((time.perf_counter() - began) / steps)
    median, with_reads = statistics.median(per_step[False]), statistics.median(per_step[True])
    result = StepResult("", model.face.NAME, batch, steps, median * 1e3, batch / median,
                        (max(per_step[False]) - min(per_step[False])) / median, with_reads * 1e3,
                        (max(per_step[True]) - min(per_step[True])) / with_reads)

    clock = _Clock(gpu)
    instrumented = _Instrumented(model, clock)
    try:
        totals: dict[tuple[str, str], float] = {}
        walls = []
        for offset in range(breakdown_steps):
            began = time.perf_counter()
            training_step(model, images, labels, step + offset, read_back=False)
            wait_for_device(model)
            walls.append(time.perf_counter() - began)
            for key, ms in instrumented.collect().items():
                totals[key] = totals.get(key, 0.0) + ms / breakdown_steps
    finally:
        instrumented.restore()
    result.layers = [{"name": layer.name, "forward_ms": totals.get((layer.name, "forward"), 0.0),
                      "backward_ms": totals.get((layer.name, "backward"), 0.0)} for layer in model.layers]
    result.loss_ms = totals.get(("loss", "forward"), 0.0) + totals.get(("loss", "backward"), 0.0)
    result.sgd_ms = totals.get(("sgd", "update"), 0.0)
    result.parts_ms = sum(totals.values())
    result.breakdown_step_ms = statistics.mean(walls) * 1e3
    return result


def bench_torch(arch: str, batch: int, steps: int, warmup: int) -> tuple[float | None, str]:
    """(images/s of PyTorch's same model and step, a note); (None, why) without PyTorch."""
    from benchmarks import torch_models
    from benchmarks.vendor import torch_status

    torch, status = torch_status()
    if torch is None:
        return None, status
    torch.manual_seed(0)
    model = torch_models.build(torch, arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    step = torch_models.training_step(torch, model, optimizer)
    size = ARCHS[arch].input_size
    images = torch.randn(batch, 3, size, size, device="cuda")
    labels = torch.randint(0, 1000, (batch,), device="cuda")
    for _ in range(warmup):
        step(images, labels)
    durations = []
    for _ in range(steps):
        began = time.perf_counter()
        step(images, labels)
        durations.append(time.perf_counter() - began)
    del model, optimizer
    torch.cuda.empty_cache()
    return batch / statistics.median(durations), status


def run(faces=None, archs=tuple(ARCHS), batch: int = DEFAULT_BATCH, steps: int | None = None,
        warmup: int | None = None, torch_baseline: bool = True, model_builder=trainer_model, log=None,
        on_result=None, kernel_choices=("promoted",)) -> dict:
    """The step benchmark; returns a JSON-ready dict (render() gives the text). on_result(result),
    if given, is called after each (arch, face) with the results so far. kernel_choices: "promoted",
    "measured" or both, per GPU face (alexnet_cuda.tuning.bench_choices); the measured face chooses
    during the warm-up steps, so its timed steps run the choices."""
    import kernels
    from alexnet_cuda import tuning
    from benchmarks import environment
    from kernels.gpu_probe import has_gpu

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    gpu = has_gpu()
    notes = []
    if not gpu:
        notes.append("No CUDA GPU on this machine: GPU numbers need a GPU (benchmarks/gpu_check.sh on one). "
                     "Timed here: the NumPy reference face on the CPU.")
    faces = faces or (kernels.GPU_FACES if gpu else ("reference",))
    steps = steps if steps is not None else (10 if gpu else 2)
    warmup = warmup if warmup is not None else (3 if gpu else 1)
    result = {"kind": "step", "environment": environment.describe(gpu), "batch": batch, "archs": list(archs),
              "steps": steps, "warmup": warmup, "notes": notes, "complete": False, "results": []}
    for arch in archs:
        torch_rate = None
        if gpu and torch_baseline:
            log(f"bench step: {arch} PyTorch")
            try:
                torch_rate, status = bench_torch(arch, batch, steps, warmup)
            except Exception as error:  # the baseline failing leaves our numbers standing, with the reason
                status = f"PyTorch baseline failed: {type(error).__name__}: {error}"
            if status not in notes:
                notes.append(status)
        runs = [(n, c) for n in faces for c in (("promoted",) if n == "reference" else kernel_choices)]
        for name, kernel_choice in runs:
            if name != "reference" and not gpu:
                notes.append(f"face {name}: not timed without a GPU")
                continue
            try:
                face = kernels.load(name)
            except (kernels.FaceUnavailable, ImportError) as error:
                notes.append(f"face {name}: not available ({error})")
                continue
            if kernel_choice == "measured":
                face = tuning.with_kernel_choice(face, "gpu", "measured",
                                                 report=lambda m: log("    " + tuning.choice_line(m)))
            log(f"bench step: {arch} on {face.NAME}")
            try:
                model = model_builder(arch, face)
                images, labels = random_batch(face, arch, batch)
                timed = bench_model(model, images, labels, gpu=name != "reference", steps=steps, warmup=warmup,
                                    breakdown_steps=max(1, min(steps, 3)))
            except Exception as error:  # a face that cannot run a step is reported, the others still run
                result["results"].append(StepResult(arch, face.NAME, batch, 0, 0.0, 0.0, 0.0,
                                                    note=f"failed: {type(error).__name__}: {error}").as_dict())
                log(f"    failed: {type(error).__name__}: {error}")
                if on_result is not None:
                    on_result(result)
                continue
            finally:
                model = None
                if name != "reference":  # the next model needs the memory this one held
                    import cupy

                    cupy.get_default_memory_pool().free_all_blocks()
            timed.arch = arch
            if torch_rate:
                timed.torch_images_per_s = torch_rate
                timed.torch_ratio = timed.images_per_s / torch_rate
                if arch == "alexnet-owt" and name != "reference":
                    timed.verdict = STEP_TARGET.verdict(timed.torch_ratio)
            log(f"    {timed.images_per_s:,.1f} images/s ({timed.ms_per_step:.1f} ms a step)")
            result["results"].append(timed.as_dict())
            if on_result is not None:
                on_result(result)
    result["complete"] = True
    return result


def render(result: dict) -> str:
    env = result["environment"]
    lines = [
        f"alexnet-cuda bench step · {env['date']} · commit {env['commit']}",
        f"machine: {env.get('gpu', 'no GPU')} · {env['cpu']}",
        f"batch {result['batch']} · {result['steps']} timed steps after {result['warmup']} warm-up · one fixed "
        "random batch on the device (no data loading)",
    ]
    lines += [f"note: {note}" for note in result["notes"]]
    if not result.get("complete", True):
        lines.append("note: INCOMPLETE: the run stopped before every architecture and face was timed")
    runs = result["results"]
    summary = [[r["arch"], r["face"], f"{r['images_per_s']:,.1f}" if r["steps"] else "—",
                f"{r['ms_per_step']:.1f}" if r["steps"] else "—", f"{r['spread']:.0%}" if r["steps"] else "—",
                f"{r['read_every_step_ms']:.1f}" if r.get("read_every_step_ms") else "—",
                f"{r['read_every_step_spread']:.0%}" if r.get("read_every_step_ms") else "—",
                f"{r['read_every_step_ms'] / r['ms_per_step']:.2f}" if r.get("read_every_step_ms") else "—",
                f"{r['torch_images_per_s']:,.1f}" if r.get("torch_images_per_s") else "—",
                f"{r['torch_ratio']:.2f}" if r.get("torch_ratio") else "—", r.get("verdict") or r.get("note") or ""]
               for r in runs]
    lines += ["", format_table(["arch", "face", "images/s", "ms/step", "±", "ms/step reading every step", "±",
                                "x", "PyTorch images/s", "x PyTorch", "target"], summary, {2, 3, 4, 5, 6, 7, 8, 9}),
              "ms/step: as the trainer steps, reading nothing back between --log-every reads; reading every step: "
              "the loss and two top-k counts read back after each step, as before; x: their ratio (above 1: the "
              "time the reads cost)"]
    for r in runs:
        if not r["steps"]:
            continue
        gpu = r["face"] != "reference"
        unit = "GPU ms between CUDA events" if gpu else "ms on the host clock"
        step_ms = r["breakdown_step_ms"]
        cells = [[layer["name"], f"{layer['forward_ms']:.3f}", f"{layer['backward_ms']:.3f}",
                  f"{(layer['forward_ms'] + layer['backward_ms']) / step_ms:.1%}"] for layer in r["layers"]]
        cells.append(["loss", f"{r['loss_ms']:.3f}", "", f"{r['loss_ms'] / step_ms:.1%}"])
        cells.append(["sgd update", "", f"{r['sgd_ms']:.3f}", f"{r['sgd_ms'] / step_ms:.1%}"])
        rest = step_ms - r["parts_ms"]
        cells.append(["host gaps" if gpu else "between parts", "", f"{rest:.3f}", f"{rest / step_ms:.1%}"])
        lines += ["", f"{r['arch']} on {r['face']}: per layer, {unit}; share of the instrumented step "
                  f"({step_ms:.1f} ms)", format_table(["layer", "forward", "backward", "share"], cells, {1, 2, 3})]
    return "\n".join(lines)
