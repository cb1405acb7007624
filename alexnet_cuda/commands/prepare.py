"""`alexnet-cuda prepare SRC DST`: decode an image folder once into a packed, memory-mapped dataset."""

from __future__ import annotations

from alexnet_cuda.commands import UsageError


def add_arguments(parser):
    parser.add_argument("source", metavar="SRC", help="image folder: SRC/train/<class>/*, SRC/val/<class>/* (or a "
                        "flat val folder with a labels file)")
    parser.add_argument("destination", metavar="DST", help="folder to create; it appears only once complete "
                        "(work in progress lives in DST.partial, and running the command again resumes it)")
    parser.add_argument("--size", type=int, default=256, help="side of the stored squares: shorter side scaled to "
                        "SIZE, centre crop (default: 256, the paper's; use the --resize-size you train with)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per CPU core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from alexnet_cuda.stopping import StopNow, StopSignals, exit_status
    from loaders import DataError
    from loaders.packed import prepare

    if args.size < 1:
        raise UsageError(f"--size {args.size}: expected a positive number of pixels")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected at least 1")
    # Every finished chunk is already on disk, so the first SIGINT or SIGTERM stops at once.
    with StopSignals(at_once=True):
        try:
            prepare(args.source, args.destination, size=args.size, workers=args.workers, progress=not args.quiet)
        except DataError as error:
            raise UsageError(str(error)) from error
        except StopNow as stop:
            print(f"{stop}: interrupted; the work done so far is kept in {args.destination}.partial; run the same "
                  "command again to resume", flush=True)
            return exit_status(stop.signum)
    return 0
