"""`alexnet-cuda bench kernels|step|loader [--json PATH]`: the benchmarks, as tables.

kernels  every op of alexnet2012 and alexnet-owt at batch 128, per face and version, validated
         against the NumPy reference, then timed against the measured roofline and the vendor
         (cuBLAS, cuDNN through PyTorch) in the same run (benchmarks.kernel_bench)
step     images/s of a whole training step per face with a per-layer breakdown, and PyTorch's same
         model in the same run (benchmarks.step_bench); with --ranks R, a data-parallel step on R CPU
         ranks under mpiexec and the share of it spent summing gradients (benchmarks.dist_bench)
loader   images/s of the data pipeline against a plain Pillow loop (benchmarks.loader_bench)

Without a GPU, kernels and step time the NumPy reference on the CPU and say that GPU numbers need
a GPU; loader runs anywhere.
"""

from __future__ import annotations

from pathlib import Path

from alexnet_cuda.commands import UsageError, check_json_path, write_json
from kernels import FACES

ARCH_NAMES = ("alexnet2012", "alexnet-owt")


def add_arguments(parser):
    which = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)

    kernels = which.add_parser("kernels", help="every op at AlexNet's shapes against the roofline and the vendor",
                               description="Every op of both networks at batch 128 per face and version, validated "
                               "against the NumPy reference, timed with CUDA events against the measured copy "
                               "bandwidth and SGEMM throughput and against cuBLAS / cuDNN in the same run.")
    _common(kernels)
    kernels.add_argument("--op", action="append", default=None, metavar="OP",
                         help="only this contract op (repeatable; default: every op)")
    kernels.add_argument("--versions", choices=("promoted", "all"), default="promoted",
                         help="the promoted version of each op (default) or every numbered (teaching) version")
    kernels.add_argument("--no-vendor", action="store_true", help="skip the cuBLAS / cuDNN baselines")

    step = which.add_parser("step", help="images/s of a whole training step, per layer, against PyTorch",
                            description="Images/s of a full training step (forward, loss, backward, SGD) of each "
                            "network per face, with a per-layer forward/backward breakdown, and PyTorch's same model "
                            "in the same run where it is importable.")
    _common(step)
    step.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 on a GPU, 2 on the CPU)")
    step.add_argument("--warmup", type=int, default=None,
                      help="untimed steps first (default: 3 on a GPU, 1 on the CPU)")
    step.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    step.add_argument("--ranks", type=int, default=None, metavar="R",
                      help="time a data-parallel step on R CPU ranks under mpiexec (NumPy reference; --batch is the "
                           "global batch) and report the gradient all-reduce's share of it")

    from benchmarks import loader_bench

    loader = which.add_parser("loader", help="images/s of the data pipeline against a plain Pillow loop",
                              description=loader_bench.__doc__.strip().split("\n")[0])
    loader_bench.add_arguments(loader)
    loader.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON here")


def _common(parser):
    parser.add_argument("--face", action="append", choices=FACES, default=None,
                        help="a face to time (repeatable; default: cuda and numba on a GPU, reference without one)")
    parser.add_argument("--arch", action="append", choices=ARCH_NAMES, default=None,
                        help="a network whose shapes to time (repeatable; default: both)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--kernel-choice", choices=("promoted", "measured"), default=None,
                        help="the GPU faces' GEMM-shaped ops: promoted versions, the measured choice "
                             "(kernels/choice.py) or, by default on a GPU, both side by side")


def run(args) -> int:
    if args.benchmark == "loader":
        return _run_loader(args)
    if args.batch < 1:
        raise UsageError(f"--batch: expected a positive batch size, got {args.batch}")
    archs = tuple(args.arch or ARCH_NAMES)
    faces = tuple(dict.fromkeys(args.face)) if args.face else None
    check_json_path(args.json)
    if args.benchmark == "kernels":
        from benchmarks import kernel_bench
        from benchmarks.ceilings import Tf32Enabled

        try:
            result = kernel_bench.run(faces, archs, args.batch, args.op, args.versions, vendor=not args.no_vendor,
                                      on_case=_saver(args.json), kernel_choices=_kernel_choices(args))
        except (ValueError, Tf32Enabled) as error:
            raise UsageError(str(error)) from error
        text = kernel_bench.render(result)
        failed = any(row["validation"].startswith("FAILED") for row in result["rows"])
    else:
        from benchmarks import step_bench

        for name in ("steps", "warmup"):
            value = getattr(args, name)
            if value is not None and value < (1 if name == "steps" else 0):
                raise UsageError(f"--{name}: expected {'a positive' if name == 'steps' else 'a non-negative'} "
                                 f"number, got {value}")
        if args.ranks is not None:
            return _run_ranks(args, archs)
        result = step_bench.run(faces, archs, args.batch, args.steps, args.warmup, torch_baseline=not args.no_torch,
                                on_result=_saver(args.json), kernel_choices=_kernel_choices(args))
        text = step_bench.render(result)
        failed = any(r.get("note", "") and r["note"].startswith("failed") for r in result["results"])
    print(text)
    if args.json:
        write_json(args.json, result)
        print(f"\nresults written to {args.json}")
    return 1 if failed else 0


def _kernel_choices(args) -> tuple[str, ...]:
    from alexnet_cuda.tuning import bench_choices
    from kernels.gpu_probe import has_gpu

    return bench_choices(args.kernel_choice, has_gpu())


def _run_ranks(args, archs) -> int:
    from benchmarks import dist_bench

    if args.ranks < 2:
        raise UsageError(f"--ranks {args.ranks}: a data-parallel step needs 2 ranks or more")
    if args.batch < args.ranks:
        raise UsageError(f"--batch {args.batch} is the global batch of {args.ranks} ranks: it needs an image per "
                         f"rank; pass --batch {args.ranks} or more")
    if args.face and set(args.face) != {"reference"}:
        raise UsageError("--ranks times CPU ranks on the NumPy reference; leave --face out or pass --face reference")
    try:
        warmup = 1 if args.warmup is None else args.warmup
        result = dist_bench.run(args.ranks, archs, args.batch, args.steps or 2, warmup)
    except dist_bench.RanksUnavailable as error:
        raise UsageError(str(error)) from error
    print(dist_bench.render(result))
    if args.json:
        write_json(args.json, result)
        print(f"\nresults written to {args.json}")
    return 0


def _saver(path: Path | None):
    """With --json, the results so far are written after every step of a run, so that a run that is
    interrupted (or stopped by benchmarks/gpu_check.sh's time limit) still leaves what it measured,
    marked "complete": false."""
    if path is None:
        return None
    return lambda result: write_json(path, result)


def _run_loader(args) -> int:
    from benchmarks import loader_bench

    check_json_path(args.json)
    try:
        results = loader_bench.run(args)
    except ValueError as error:  # the loader benchmark's own argument checks
        raise UsageError(str(error)) from error
    if args.json:
        write_json(args.json, results)
        print(f"\nresults written to {args.json}")
    return 0
