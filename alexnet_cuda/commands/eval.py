"""`alexnet-cuda eval`: top-1 and top-5 of a checkpoint on a dataset's validation split, with a centre
crop or the paper's ten crops (four corners and the centre, and their mirrors) averaged."""

from __future__ import annotations

from pathlib import Path

from alexnet_cuda import tuning
from alexnet_cuda.backends import DEVICES, GPU_FACES


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="a checkpoint written by `alexnet-cuda train` (a .npz, or a folder holding last.npz)")
    parser.add_argument("--data", metavar="DIR", help="image folder or packed dataset (default: the one the "
                                                      "checkpoint was trained on)")
    parser.add_argument("--ten-crop", action="store_true", help="average the softmax over ten crops per image")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the kernels run, as for train (default: auto)")
    parser.add_argument("--kernels", choices=GPU_FACES, default="cuda", help="kernel face on a GPU (default: cuda)")
    tuning.add_argument(parser)
    parser.add_argument("-b", "--batch-size", type=int, default=None,
                        help="images per batch (default: the checkpoint's)")
    parser.add_argument("-j", "--workers", type=int, default=0, help="image-decoding worker processes (default: 0)")


def run(args) -> int:
    import loaders
    from alexnet_cuda import checkpoint, training
    from alexnet_cuda.backends import DeviceError, select_face
    from alexnet_cuda.checkpoint import CheckpointError
    from alexnet_cuda.commands import UsageError
    from alexnet_cuda.evaluation import EvaluationStopped, evaluate
    from alexnet_cuda.stopping import StopNow, StopSignals, exit_status, signal_name

    try:
        saved = checkpoint.load(Path(args.checkpoint))
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    meta = saved.meta
    batch_size = args.batch_size if args.batch_size is not None else int(meta["config"]["batch_size"])
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    if args.workers < 0:
        raise UsageError(f"--workers {args.workers}: must be zero or positive")
    try:
        device, face = select_face(args.device, args.kernels)
        face = tuning.with_kernel_choice(face, device, args.kernel_choice, report=tuning.report_choice)
    except (DeviceError, tuning.KernelChoiceError) as error:
        raise UsageError(str(error)) from error
    data = args.data or meta["config"].get("data")
    try:
        dataset = loaders.open_dataset(data) if data else loaders.open_dataset(loaders.ensure_synthetic())
    except loaders.DataError as error:
        raise UsageError(str(error)) from error
    if list(dataset.classes) != list(meta["classes"]):
        raise UsageError(
            f"{dataset.root}: its {len(dataset.classes)} classes differ from the {len(meta['classes'])} that "
            f"{saved.path} was trained on; evaluate it on data with the same class folders"
        )
    try:
        model = training.model_from_checkpoint(saved, face)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    arch = model.arch
    # eval writes nothing: a first SIGINT or SIGTERM ends it after the batch in flight, a second at once.
    with StopSignals() as stop:
        try:
            with loaders.make_loader(dataset.split("val"), batch_size=batch_size, input_size=arch.input_size,
                                     resize_size=arch.resize_size, train=False, seed=0, epoch=0, workers=args.workers,
                                     device=training.loader_device(device),
                                     face=face,
                                     ten_crop=args.ten_crop) as loader:
                batches = len(loader)
                result = evaluate(model, loader, ten_crop=args.ten_crop, should_stop=stop.requested)
        except EvaluationStopped as stopped:
            print(f"{signal_name(stop.signum)}: interrupted after {stopped.batches} of {batches} batches; "
                  "nothing was written", flush=True)
            return exit_status(stop.signum)
        except StopNow as again:
            print(f"{again}: stopped at once; nothing was written", flush=True)
            return exit_status(again.signum)
    for path, reason in result.skipped:
        print(f"skipped {path}: {reason}")
    crops = "ten crops averaged" if args.ten_crop else "centre crop"
    print(f"{saved.path} ({arch.name}, step {meta['progress']['step']}) on {dataset.root} val, {crops}, "
          f"{device} ({face.NAME}):")
    print(f"  images {result.images}, loss {result.loss:.4f}, top-1 {result.top1:.2%}, top-5 {result.top5:.2%}"
          + (f", {len(result.skipped)} skipped" if result.skipped else ""))
    return 0
