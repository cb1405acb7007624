"""`alexnet-cuda synth DIR`: write the deterministic synthetic image folder (10 classes of drawn shapes)."""

from __future__ import annotations

from alexnet_cuda.commands import UsageError


def add_arguments(parser):
    from loaders.synthetic import SynthSpec

    defaults = SynthSpec()
    parser.add_argument("directory", metavar="DIR", help="folder to create (DIR/train/<class>/*.jpg, DIR/val/...); "
                        "it appears only once complete")
    parser.add_argument("--train-per-class", type=int, default=defaults.train_per_class,
                        help=f"training images per class (default: {defaults.train_per_class})")
    parser.add_argument("--val-per-class", type=int, default=defaults.val_per_class,
                        help=f"validation images per class (default: {defaults.val_per_class})")
    parser.add_argument("--size", type=int, default=defaults.size, help=f"image side in pixels (default: "
                        f"{defaults.size})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"seed (default: {defaults.seed})")
    parser.add_argument("--workers", type=int, default=None, help="drawing processes (default: one per CPU core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from loaders import DataError
    from loaders.packed import default_workers
    from loaders.synthetic import CLASSES, SynthSpec, write_synthetic

    try:
        spec = SynthSpec(train_per_class=args.train_per_class, val_per_class=args.val_per_class, size=args.size,
                         seed=args.seed)
        path = write_synthetic(args.directory, spec, workers=args.workers or default_workers(),
                               progress=not args.quiet)
    except (ValueError, DataError) as error:
        raise UsageError(str(error)) from error
    print(f"{path}: {len(CLASSES)} classes, {spec.train_per_class} training and {spec.val_per_class} validation "
          f"images each, {spec.size}x{spec.size} JPEG")
    return 0
