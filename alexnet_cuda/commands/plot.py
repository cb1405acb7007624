"""`alexnet-cuda plot curves|filters|roofline|step`: pictures of runs and benchmarks, as PNG or SVG.

curves    RUN... : loss, top-1/top-5 and the learning rate per epoch of one or more runs
filters   CHECKPOINT : a conv layer's kernels as a grid of patches (the 2012 paper's Figure 3)
roofline  KERNELS.json : every timed kernel of `bench kernels --json` under the measured roofline
step      STEP.json : per face, the time of a training step per layer, from `bench step --json`

The drawing is alexnet_cuda.plots (matplotlib, Agg), imported only when a picture is drawn.
"""

from __future__ import annotations

from pathlib import Path

from alexnet_cuda.commands import UsageError

OUTPUT_HELP = "the picture to write: a .png or .svg file (default: %(default)s)"
DPI = 100  # alexnet_cuda.plots.DPI, repeated so that --help does not import matplotlib
DPI_HELP = "pixels per inch of a PNG: 100 (the default) is the size the pictures are laid out for"


def add_arguments(parser):
    which = parser.add_subparsers(dest="picture", metavar="PICTURE", required=True)

    curves = which.add_parser("curves", help="learning curves of one or more runs",
                              description="Train and validation loss, top-1 and top-5 per epoch, and the learning "
                              "rate with its drops marked; several runs are drawn together, one colour each.")
    curves.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="a run's --metrics-file (JSONL) or checkpoint (.npz, or the folder holding last.npz)")
    curves.add_argument("--label", action="append", default=None, metavar="TEXT",
                        help="a name for each RUN, in order (default: its folder and file name)")
    curves.add_argument("-o", "--output", type=Path, default=Path("curves.png"), help=OUTPUT_HELP)
    curves.add_argument("--dpi", type=int, default=DPI, help=DPI_HELP)

    filters = which.add_parser("filters", help="a conv layer's kernels as a grid of patches",
                               description="conv1's kernels as RGB patches, each scaled to its own range, as in the "
                               "2012 paper's Figure 3, one block per group (the paper's two GPUs); another layer's "
                               "kernels one greyscale patch per input channel.")
    filters.add_argument("checkpoint", type=Path, metavar="CHECKPOINT",
                         help="a checkpoint (.npz, or the folder holding last.npz)")
    filters.add_argument("--layer", default="conv1", help="the conv layer to draw (default: conv1)")
    filters.add_argument("-o", "--output", type=Path, default=Path("filters.png"), help=OUTPUT_HELP)
    filters.add_argument("--dpi", type=int, default=DPI, help=DPI_HELP)

    roofline = which.add_parser("roofline", help="every timed kernel under the measured roofline",
                                description="Each kernel of a `bench kernels --json` result at its arithmetic "
                                "intensity and achieved rate, under the copy-bandwidth and SGEMM ceilings of the "
                                "same run; the vendor's time for the same case beside the promoted version.")
    roofline.add_argument("result", type=Path, metavar="KERNELS.json",
                          help="`bench kernels --json` output, or gpu_check.sh's results.json")
    roofline.add_argument("-o", "--output", type=Path, default=Path("roofline.png"), help=OUTPUT_HELP)
    roofline.add_argument("--dpi", type=int, default=DPI, help=DPI_HELP)

    step = which.add_parser("step", help="where a training step's time goes, per layer and face",
                            description="A stacked bar per network and face of each layer's forward and backward, "
                            "the loss, SGD and the host gaps, from `bench step --json`, with PyTorch's step beside.")
    step.add_argument("result", type=Path, metavar="STEP.json",
                      help="`bench step --json` output, or gpu_check.sh's results.json")
    step.add_argument("-o", "--output", type=Path, default=Path("step.png"), help=OUTPUT_HELP)
    step.add_argument("--dpi", type=int, default=DPI, help=DPI_HELP)


def run(args) -> int:
    from alexnet_cuda import plots

    if not 20 <= args.dpi <= 600:
        raise UsageError(f"--dpi {args.dpi}: expected 20 to 600 pixels per inch")
    try:
        plots.check_output(args.output)
        figure, what = _draw(args)
        path = plots.save(figure, args.output, args.dpi)
    except plots.PlotError as error:
        raise UsageError(str(error)) from error
    print(f"{path}: {what}")
    return 0


def _draw(args):
    from alexnet_cuda.plots import PlotError

    if args.picture == "curves":
        from alexnet_cuda.plots import curves

        labels = args.label or []
        if len(labels) > len(args.runs):
            raise PlotError(f"--label given {len(labels)} times for {len(args.runs)} RUN(s); give at most one a run")
        runs = [curves.read_run(path, label) for path, label in
                zip(args.runs, labels + [None] * (len(args.runs) - len(labels)), strict=True)]
        return curves.draw(runs), f"learning curves of {len(runs)} run(s), {sum(len(r.records) for r in runs)} epochs"
    if args.picture == "filters":
        from alexnet_cuda.plots import filters

        kernels = filters.read_kernels(args.checkpoint, args.layer)
        figure, grid = filters.draw(kernels)
        return figure, f"{grid.tiles} tiles of {kernels.layer} ({kernels.arch}) in {grid.blocks} block(s)"
    from alexnet_cuda.plots import bench, roofline, step

    kind = "kernels" if args.picture == "roofline" else "step"
    result = bench.read_result(args.result, kind)
    try:
        if args.picture == "roofline":
            return roofline.draw(result, args.result.name), f"{len(roofline.points(result))} timed kernels"
        return (step.draw(result, args.result.name),
                f"the step of {len(step.timed_results(result))} network/face pair(s), per layer")
    except PlotError as error:
        raise PlotError(f"{args.result}: {error}") from error
