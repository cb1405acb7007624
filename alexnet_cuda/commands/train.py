"""`alexnet-cuda train`: train an AlexNet with hand-written backprop and SGD, checkpointing as it goes.

With no arguments it trains alexnet-mini on the built-in synthetic dataset (generated on first
use) on the CPU, or on the GPU where there is one.

Started by `mpiexec -n R`, it is one rank of a data-parallel run (alexnet_cuda.distributed): rank 0
prints and writes; a rank that fails says why on stderr and ends the whole job.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from pathlib import Path

from alexnet_cuda import tuning
from alexnet_cuda.archs import ARCHS
from alexnet_cuda.backends import DEVICES, GPU_FACES
from alexnet_cuda.commands import UsageError
from alexnet_cuda.config import ARCH_DEFAULTS, TrainConfig
from alexnet_cuda.schedule import SCHEDULES

MINI = ARCH_DEFAULTS["alexnet-mini"]
PAPER = ARCH_DEFAULTS["alexnet2012"]


def _defaults(key: str) -> str:
    return f"default: {MINI[key]} for alexnet-mini, {PAPER[key]} for the full models"


def add_arguments(parser):
    add = parser.add_argument
    add("--data", metavar="DIR", help="image folder (DIR/train/<class>/*, DIR/val/...) or a dataset packed by "
                                      "`alexnet-cuda prepare` (default: the built-in synthetic dataset)")
    add("--arch", choices=list(ARCHS), help="network (default: alexnet-mini)")
    add("--device", choices=DEVICES, help="where the kernels run: auto (a GPU if there is one, else cpu), cpu "
                                          "(NumPy reference), gpu, sim (Numba's CUDA simulator: single kernels, "
                                          "not training), emu (the CUDA C kernels compiled by g++ for the CPU)")
    add("--kernels", choices=GPU_FACES, help="kernel face on a GPU (default: cuda)")
    tuning.add_argument(parser)
    add("--epochs", type=int, help=_defaults("epochs"))
    add("--max-steps", type=int, metavar="N", help="stop after N SGD steps in all (checkpointed; --resume goes on)")
    # -b, -j, --wd and -p/--print-freq: the flags of pytorch/examples' ImageNet script, for the same settings
    add("-b", "--batch-size", type=int, help=_defaults("batch_size"))
    add("--lr", type=float, help=_defaults("lr"))
    add("--momentum", type=float, help="default: 0.9")
    add("--weight-decay", "--wd", type=float, help="default: 0.0005")
    add("--lr-schedule", choices=SCHEDULES,
        help="divide the lr by 10 every --lr-step-epochs (step) or when validation top-1 stops improving "
             f"(plateau); {_defaults('lr_schedule')}")
    add("--lr-step-epochs", type=int, metavar="E", help=f"step schedule period; {_defaults('lr_step_epochs')}")
    add("--plateau-patience", type=int, metavar="E",
        help="plateau schedule: epochs without a better validation top-1 before dividing (default: 1)")
    add("--seed", type=int, help="seeds the initial weights, the data order and augmentation, dropout (default: 0)")
    add("-j", "--workers", type=int, help="image-decoding worker processes (default: 0, decode in this process)")
    add("--checkpoint-dir", metavar="DIR",
        help="where last.npz and best.npz go (default: runs/<arch>-<time>, or the resumed checkpoint's folder)")
    add("--checkpoint-every", type=int, metavar="N",
        help=f"also write last.npz every N steps within an epoch, 0: epoch ends only; {_defaults('checkpoint_every')}")
    add("--log-every", "-p", "--print-freq", type=int, metavar="N",
        help="read the losses back from the device every N steps, updating the progress bar; a GPU waits for "
             "nothing in between (default: about once a second, from the measured step time)")
    add("--resume", metavar="PATH", help="continue the run of this checkpoint (a .npz, or a folder holding last.npz)")
    add("--init", metavar="CK", help="start a new run from this checkpoint's weights (fine-tuning; imported ones too); "
                                     "fc8 starts afresh unless the data has the checkpoint's classes")
    add("--metrics-file", metavar="PATH", help="write one JSON object per epoch to this file")
    add("--no-progress", action="store_true", help="no progress bar (for logs)")
    add("--plot", action="store_true", help="redraw curves.png (alexnet-cuda plot curves) in the checkpoint folder at "
                                            "the end of every epoch")


CONFIG_FLAGS = list(TrainConfig.__dataclass_fields__)  # every one is also a flag of this command
CURVES = "curves.png"


def run(args) -> int:
    from alexnet_cuda import distributed

    if not distributed.launched_by_mpi():
        return _run(args, lambda face, device: None)
    groups = []
    with contextlib.ExitStack() as context:

        def open_group(face, device):
            """The data-parallel group, opened once the device is known and before any array exists
            (on GPUs each rank takes its own); ranks other than 0 print nothing from here on."""
            try:
                group = distributed.open_group(face, device)
            except distributed.DistributedError as error:
                raise UsageError(str(error)) from error
            groups.append(group)
            if not group.is_root:
                context.enter_context(contextlib.redirect_stdout(context.enter_context(open(os.devnull, "w"))))
            return group

        try:
            return _run(args, open_group)
        except BaseException as error:  # any failure of one rank must end them all, or the others wait forever
            if not groups or groups[0].size == 1:
                raise
            group = groups[0]
            print(f"alexnet-cuda train: error on rank {group.rank} of {group.size}: {error or type(error).__name__}; "
                  f"ending every rank", file=sys.stderr, flush=True)
            if not isinstance(error, (UsageError, KeyboardInterrupt)):
                traceback.print_exc()
            group.abort(2 if isinstance(error, UsageError) else 1)
            raise


def _run(args, open_group) -> int:
    """The command; open_group(face, device) returns the data-parallel group, None without mpiexec."""
    import loaders
    from alexnet_cuda import config as configuration
    from alexnet_cuda import training, weights
    from alexnet_cuda.backends import DeviceError, select_face
    from alexnet_cuda.checkpoint import CheckpointError, saved_step
    from alexnet_cuda.stopping import StopNow, StopSignals, exit_status, signal_name

    given = {name: getattr(args, name) for name in CONFIG_FLAGS}
    saved = None
    if args.resume:
        try:
            saved = training.load_for_resume(Path(args.resume))
        except CheckpointError as error:
            raise UsageError(str(error)) from error
        if saved.meta.get("status") == "imported":
            raise UsageError(f"{saved.path}: imported weights, with no training run to continue; start one from "
                             f"them with --init {saved.path}")
    initial = _initial_checkpoint(args, given)
    try:
        config = configuration.resolve(given, saved.meta["config"] if saved else None)
    except configuration.ConfigError as error:
        raise UsageError(str(error)) from error
    try:
        device, face = select_face(config.device, config.kernels)
        face = tuning.with_kernel_choice(face, device, args.kernel_choice, report=tuning.report_choice)
    except (DeviceError, tuning.KernelChoiceError) as error:
        raise UsageError(str(error)) from error
    group = open_group(face, device)
    if group is not None and config.batch_size < group.size:
        raise UsageError(f"--batch-size {config.batch_size} is the global batch, shared by {group.size} ranks: it "
                         f"needs at least one image per rank; pass --batch-size {group.size} or more")
    folder = _checkpoint_folder(args, config, saved)
    if group is not None:
        folder = Path(group.comm.bcast(str(folder), root=0))  # the default name has the time in it
    config.checkpoint_dir = str(folder)
    if group is not None and not group.is_root:
        group.comm.Barrier()  # rank 0 first: it generates the built-in dataset if it is missing, once
    try:
        dataset = loaders.open_dataset(config.data) if config.data else loaders.open_dataset(
            loaders.ensure_synthetic())
    except loaders.DataError as error:
        raise UsageError(str(error)) from error
    if group is not None and group.is_root:
        group.comm.Barrier()
    _check_data(dataset, config, saved)

    print(_describe(config, device, face, dataset, saved, group))
    if device == "sim":
        _warn_of_simulated_step_time(config, face, len(dataset.classes))
    started = time.perf_counter()
    last = folder / training.LAST
    with StopSignals() as stop:
        try:
            # Like checkpoints and metrics, the picture is rank 0's to draw.
            refresh = _curves_refresher(folder, config.arch, saved.meta.get("history", []) if saved else []) \
                if args.plot and (group is None or group.is_root) else None
            trainer = training.Trainer(config, dataset, face, device, loaders.make_loader, resume_from=saved,
                                       progress_bars=not args.no_progress, should_stop=stop.requested,
                                       on_epoch=refresh, group=group)
            if initial is not None:
                try:
                    print(weights.start_from(trainer.model, initial, list(dataset.classes)))
                except CheckpointError as error:
                    raise UsageError(str(error)) from error
            result = trainer.run()
        except (training.Diverged, training.NotWritten) as error:
            print(f"alexnet-cuda train: error: {error}", flush=True)
            # Every rank reads the same summed losses, so all diverge at the same read; a failed write
            # happens on rank 0 alone, and the others must not wait for it in the next step.
            if not isinstance(error, training.Diverged):
                _end_every_rank(group, 1)
            return 1
        except StopNow as again:
            step = saved_step(last)
            print(f"{again}: stopped at once, writing nothing more; {last} "
                  + (f"holds step {step}" if step is not None else "was never written")
                  + (f": resume with `{training.resume_command(last)}`" if step is not None else ""), flush=True)
            _end_every_rank(group, exit_status(again.signum))
            return exit_status(again.signum)
    minutes = (time.perf_counter() - started) / 60
    position = result.position
    if result.status == "interrupted":
        # Every rank stops, but the signal may have reached only some: all exit with the one they got.
        signum = stop.signum if group is None else group.agree_on_signal(stop.signum)
        print(f"{signal_name(signum)}: stopped after step {position.step} (epoch {position.epoch + 1}, "
              f"batch {position.batch}), written to {last}; resume with `{training.resume_command(last)}`",
              flush=True)
        return exit_status(signum)
    if result.status == "stopped":
        print(f"stopped after --max-steps {config.max_steps} ({minutes:.1f} min); continue with "
              f"`alexnet-cuda train --resume {last} --max-steps N` (a larger N) or without --max-steps")
    else:
        print(f"done: {config.epochs} epochs, {position.step} steps in {minutes:.1f} min; best validation "
              f"top-1 {result.best_val_top1:.2%}; checkpoints {last} and {folder / training.BEST}")
    return 0


def _end_every_rank(group, status: int) -> None:
    """After a failure that other ranks may not share, end the job rather than leave them waiting."""
    if group is not None and group.size > 1:
        group.abort(status)


def _curves_refresher(folder: Path, arch: str, history: list[dict]):
    """train --plot: an on_epoch callback that redraws folder/curves.png from the run's records so far
    (the resumed checkpoint's history, then each epoch's), as `alexnet-cuda plot curves folder` would.
    A picture that cannot be written is reported and training goes on; it never stops the run."""
    from alexnet_cuda import plots
    from alexnet_cuda.plots import curves

    records = list(history)
    label = curves.checkpoint_label(arch, folder)

    def refresh(record: dict) -> bool:
        records.append(record)
        try:
            plots.save(curves.draw([curves.run_from_records(records, label, folder)]), folder / CURVES)
        except (OSError, plots.PlotError) as error:
            print(f"--plot: {folder / CURVES} not redrawn ({error}); training goes on", flush=True)
        return False

    return refresh


# Numba's simulator on this project's 2-core machine, other jobs running: one step of --arch tiny
# took 70 s at batch 4 (33,792 CUDA threads, kernels.numba.runtime.threads_launched) and 268 s at
# batch 16 (96,000 threads; 168 s of CPU time), 1.8 to 2.8 ms a thread.
SIMULATED_THREAD_SECONDS = 2e-3
SLOW_STEP_SECONDS = 180


def _warn_of_simulated_step_time(config, face, classes: int) -> None:
    """Numba's simulator runs every CUDA thread as a Python thread. Before the first step, count the
    threads one step launches (a step with the launches skipped) and say when it would take minutes."""
    import numpy as np

    from alexnet_cuda.archs import get_arch
    from alexnet_cuda.model import Model
    from kernels.numba import runtime

    arch = get_arch(config.arch)
    model = Model(arch, classes, face, seed=config.seed)
    images = face.to_device(np.zeros((config.batch_size, 3, arch.input_size, arch.input_size), np.float32))
    labels = face.to_device(np.zeros(config.batch_size, np.int32))
    before = runtime.threads_launched()
    with runtime.skipped_launches(), np.errstate(all="ignore"):
        model.set_step(0)
        model.loss(model.forward(images, training=True), labels)
        model.backward()
        model.sgd_step(config.lr, config.momentum, config.weight_decay)
    threads = runtime.threads_launched() - before
    seconds = threads * SIMULATED_THREAD_SECONDS
    if seconds > SLOW_STEP_SECONDS:
        print(f"--device sim: one step of {arch.name} at batch {config.batch_size} launches {threads:,} CUDA threads, "
              f"which Numba's simulator runs as Python threads at about {SIMULATED_THREAD_SECONDS * 1e3:g} ms each: "
              f"about {_duration(seconds)} a step. The simulator is for stepping through single kernels. To train, "
              f"use --device cpu (the NumPy reference), or --device emu --kernels cuda with --arch tiny to watch the "
              f"CUDA C kernels train on the CPU (README.md gives each device's measured speed)", flush=True)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}" if seconds >= 20 * size else f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _initial_checkpoint(args, given):
    """The checkpoint of --init, loaded; a run started from it takes its arch unless --arch is given."""
    from alexnet_cuda import checkpoint
    from alexnet_cuda.checkpoint import CheckpointError

    if not args.init:
        return None
    if args.resume:
        raise UsageError("--init starts a new run from a checkpoint's weights and --resume continues a run; "
                         "pass one of them")
    try:
        initial = checkpoint.load(Path(args.init))
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    arch = initial.meta["arch"]
    if args.arch is not None and args.arch != arch:
        raise UsageError(f"--init {initial.path} holds {arch} weights, which do not fit --arch {args.arch}; leave "
                         f"--arch out or pass --arch {arch}")
    given["arch"] = arch
    given["init"] = str(initial.path)
    return initial


def _checkpoint_folder(args, config, saved) -> Path:
    """Where this run writes, refusing any layout that would overwrite another run's checkpoints."""
    from alexnet_cuda import training

    if args.checkpoint_dir:
        folder = Path(args.checkpoint_dir)
    elif saved is not None:
        folder = saved.path.parent
    else:
        folder = Path("runs") / f"{config.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    last = folder / training.LAST
    if saved is None:
        existing = [name for name in (training.LAST, training.BEST) if (folder / name).exists()]
        if existing:
            raise UsageError(
                f"--checkpoint-dir {folder} already holds {' and '.join(existing)} of another run. Resume it with "
                f"--resume {last}, or choose a new --checkpoint-dir; nothing was overwritten"
            )
    elif last.exists() and last.resolve() != saved.path.resolve():
        raise UsageError(
            f"resuming {saved.path} would overwrite {last}, which it did not come from. Pass a new "
            f"--checkpoint-dir for the resumed run; nothing was overwritten"
        )
    return folder


def _check_data(dataset, config, saved) -> None:
    if saved is not None and list(dataset.classes) != list(saved.meta["classes"]):
        raise UsageError(
            f"{dataset.root}: its {len(dataset.classes)} classes differ from the {len(saved.meta['classes'])} the "
            f"checkpoint was trained on; pass --data with the run's dataset"
        )
    train_images = len(dataset.split("train"))
    if train_images < config.batch_size:
        raise UsageError(
            f"{dataset.root}: the train split has {train_images} images, fewer than one batch of "
            f"{config.batch_size} (the last partial batch of an epoch is dropped); use a smaller --batch-size"
        )
    if len(dataset.split("val")) == 0:
        raise UsageError(f"{dataset.root}: the val split has no images; validation needs some")


def _describe(config, device, face, dataset, saved, group=None) -> str:
    steps_per_epoch = len(dataset.split("train")) // config.batch_size
    ranks = group.size if group else 1
    lines = ["alexnet-cuda train: resolved configuration"]
    if saved is not None:
        progress = saved.meta["progress"]
        written_by = int(saved.meta.get("ranks", 1))
        lines.append(f"  resume           {saved.path} (epoch {progress['epoch'] + 1}, batch {progress['batch']}, "
                     f"step {progress['step']})")
        if written_by != ranks:
            lines.append(f"                   written by {written_by} rank(s), continued on {ranks}: the position "
                         f"counts global batches of {config.batch_size}, so the run goes on at the same batch with "
                         f"the same weights; only the dropout masks (drawn per rank) differ from the original run's")
    data = config.data or f"{dataset.root} (built-in synthetic)"
    values = {
        "arch": config.arch,
        "data": f"{data}: {dataset.kind}, {len(dataset.classes)} classes, {len(dataset.split('train'))} train / "
                f"{len(dataset.split('val'))} val images",
        "device": f"{device}, kernels {face.NAME}",
        "epochs": f"{config.epochs} ({steps_per_epoch} steps each)"
                  + (f", at most {config.max_steps} steps" if config.max_steps else ""),
        "batch size": config.batch_size if ranks == 1 else f"{config.batch_size} in all, " + (
            f"{config.batch_size // ranks} per rank" if config.batch_size % ranks == 0 else
            f"{config.batch_size // ranks} or {config.batch_size // ranks + 1} per rank"),
        "ranks": "1 (one process)" if ranks == 1 else
                 f"{ranks} (mpiexec), gradients summed by {group.reducer.name} every step",
        "lr": f"{config.lr:g}, {config.lr_schedule} schedule ("
              + (f"/10 every {config.lr_step_epochs} epochs" if config.lr_schedule == "step"
                 else f"/10 after {config.plateau_patience} epoch(s) without a better val top-1") + ")",
        "momentum": config.momentum,
        "weight decay": config.weight_decay,
        "seed": config.seed,
        "workers": config.workers,
        "checkpoints": f"{config.checkpoint_dir} (last.npz every "
                       + (f"{config.checkpoint_every} steps and " if config.checkpoint_every else "")
                       + "epoch end, best.npz)",
        "metrics file": config.metrics_file or "none",
        "reads": f"losses read back every {config.log_every} steps and at epoch ends" if config.log_every
                 else "losses read back about once a second and at epoch ends",
        "initial weights": config.init or "fresh (the arch's initialisation)",
    }
    lines += [f"  {key:16} {value}" for key, value in values.items()]
    return "\n".join(lines)
