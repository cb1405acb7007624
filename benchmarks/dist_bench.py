"""`alexnet-cuda bench step --ranks R`: the share of a data-parallel training step (CPU ranks, the
NumPy reference) spent summing the gradients over the ranks.

run() starts `mpiexec -n R python -m benchmarks.dist_bench ...` from this Python's environment. Every
rank builds the trainer's model, takes its share of a fixed random global batch (as the trainer
shards one, alexnet_cuda.distributed) and times whole steps as the trainer takes them: forward, loss,
top-1 count, backward, the all-reduce of the flattened gradients (Group.sum_step) and SGD. Beside
each step's host time it keeps the time spent inside the all-reduce. That time includes waiting for
the slowest rank to arrive, so it is what the step pays for the sum, not only the copying.

The ranks share the machine's cores: each gets cores // R BLAS threads (at least 1), as a real run
on one machine should (README.md, "Several processes").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import format_table

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


class RanksUnavailable(Exception):
    """mpiexec or mpi4py is missing, or the ranks could not start; the message says what to install."""


def mpiexec() -> str | None:
    """The mpiexec of this Python's environment (the dist extra installs MPICH's there), else PATH's."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def run(ranks: int, archs: tuple[str, ...], batch: int, steps: int, warmup: int, timeout: float | None = None) -> dict:
    """Starts the ranks and returns the result rank 0 wrote."""
    launcher = mpiexec()
    if launcher is None:
        raise RanksUnavailable('no mpiexec beside this Python or on PATH; install the dist extra '
                               '(python -m pip install -e ".[dist]")')
    threads = str(max(1, (os.cpu_count() or 1) // ranks))
    env = dict(os.environ, **{name: threads for name in THREAD_VARIABLES})
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "result.json"
        command = [launcher, "-n", str(ranks), sys.executable, "-m", "benchmarks.dist_bench", "--batch", str(batch),
                   "--steps", str(steps), "--warmup", str(warmup), "--json", str(output), *archs]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
        if done.returncode != 0 or not output.exists():
            raise RanksUnavailable(f"`{' '.join(command[:3])} ...` failed (exit status {done.returncode}): "
                                   f"{(done.stderr or done.stdout).strip()[-800:]}")
        result = json.loads(output.read_text())
    result["threads_per_rank"] = int(threads)
    return result


def render(result: dict) -> str:
    lines = [f"alexnet-cuda bench step --ranks {result['ranks']} · CPU ranks, NumPy reference, "
             f"{result['threads_per_rank']} BLAS thread(s) each · global batch {result['batch']} · "
             f"{result['steps']} timed steps after {result['warmup']} warm-up"]
    rows = [[r["arch"], f"{r['images_per_s']:,.1f}", f"{r['step_ms']:.1f}", f"{r['all_reduce_ms']:.1f}",
             f"{r['all_reduce_share']:.1%}", f"{r['buffer_mb']:.1f}"] for r in result["results"]]
    lines += ["", format_table(["arch", "images/s", "ms/step", "all-reduce ms", "all-reduce share", "buffer MB"], rows,
                               {1, 2, 3, 4, 5}),
              "ms/step: the median step's host time on the slowest rank; all-reduce: the median time inside "
              "the gradient sum (the MPI Allreduce call on one flat float32 buffer), waiting for the other ranks "
              "included, averaged over the ranks; share: all-reduce ms / ms/step"]
    return "\n".join(lines)


# --- inside each rank ------------------------------------------------------------------------------


def _rank_main(argv: list[str]) -> int:
    from mpi4py import MPI

    from alexnet_cuda.distributed import Group
    from benchmarks.step_bench import trainer_model
    from kernels import reference

    parser = argparse.ArgumentParser()
    parser.add_argument("archs", nargs="+")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    group = Group(MPI.COMM_WORLD, reference, "cpu")
    results = []
    for arch in args.archs:
        results.append(_time_arch(group, trainer_model(arch, reference, rank=group.rank), arch, args))
    if group.is_root:
        args.json.write_text(json.dumps({"ranks": group.size, "batch": args.batch, "steps": args.steps,
                                         "warmup": args.warmup, "results": results}))
    return 0


def _time_arch(group, model, arch: str, args) -> dict:
    from alexnet_cuda.evaluation import top1_hits

    rng = np.random.default_rng(0)  # the same global batch on every rank; each takes its share
    size = model.arch.input_size
    images = rng.standard_normal((args.batch, 3, size, size), dtype=np.float32)
    labels = rng.integers(0, model.classes, size=args.batch, dtype=np.int32)
    share = np.array_split(np.arange(args.batch), group.size)[group.rank]
    images, labels = images[share], labels[share]
    step_seconds, reduce_seconds = [], []
    for step in range(args.warmup + args.steps):
        group.comm.Barrier()  # every rank starts the step together, so the sum's wait is this step's
        before = group.reduce_seconds
        started = time.perf_counter()
        model.set_step(step)
        loss, probs = model.loss(model.forward(images, training=True), labels)
        correct = top1_hits(probs, labels, model.face.xp)
        model.backward()
        group.sum_step(model.layers, loss, correct, len(labels))
        model.sgd_step(LR, MOMENTUM, WEIGHT_DECAY)
        if step >= args.warmup:
            step_seconds.append(time.perf_counter() - started)
            reduce_seconds.append(group.reduce_seconds - before)
    step_ms = statistics.median(step_seconds) * 1e3
    reduce_ms = statistics.median(reduce_seconds) * 1e3
    slowest_step_ms = group.comm.allreduce(step_ms, op=group.MPI.MAX)
    mean_reduce_ms = group.comm.allreduce(reduce_ms) / group.size
    floats = sum(int(np.prod(value.shape)) for _, value in model.named_arrays("params")) + 3
    return {"arch": arch, "step_ms": slowest_step_ms, "all_reduce_ms": mean_reduce_ms,
            "all_reduce_share": mean_reduce_ms / slowest_step_ms, "images_per_s": args.batch / slowest_step_ms * 1e3,
            "buffer_mb": floats * 4 / 1e6}


if __name__ == "__main__":
    sys.exit(_rank_main(sys.argv[1:]))
