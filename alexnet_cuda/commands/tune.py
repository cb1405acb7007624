"""`alexnet-cuda tune --arch A --batch B`: measure every candidate kernel of every GEMM-shaped call of
one training step, fill the kernel-choice cache (kernels/choice.py) and print the table: op, shape,
each candidate's time, the choice and its gain over the promoted version.

On a GPU it times with CUDA events. With --device emu or sim it times the CPU emulator or Numba's
simulator on the host, says so, and keeps those entries under that device's name, never a GPU's;
--device cpu (the NumPy reference) has nothing to choose from and is refused.
"""

from __future__ import annotations

from pathlib import Path

from alexnet_cuda.archs import ARCHS
from alexnet_cuda.backends import DEVICES, GPU_FACES


def add_arguments(parser):
    parser.add_argument("--arch", choices=list(ARCHS), default="alexnet2012", help="network (default: alexnet2012)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="gpu (auto where there is one), or emu / sim for host times that are not GPU times")
    parser.add_argument("--kernels", "--face", dest="kernels", choices=GPU_FACES, default="cuda",
                        help="kernel face (default: cuda)")
    parser.add_argument("--classes", type=int, default=1000, help="outputs of the last layer (default: 1000)")
    parser.add_argument("--cache", type=Path, default=None, metavar="PATH",
                        help="the choices file (default: $XDG_CACHE_HOME/alexnet-cuda/choices.json)")
    parser.add_argument("--jsonl", type=Path, default=None, metavar="PATH",
                        help="also append one JSON object per measured shape to this file, as it is measured "
                             "(benchmarks/gpu_check.sh folds them into its results)")


def run(args) -> int:
    from alexnet_cuda import tuning
    from alexnet_cuda.archs import get_arch
    from alexnet_cuda.backends import DeviceError, select_face
    from alexnet_cuda.commands import UsageError

    if args.batch < 1:
        raise UsageError(f"--batch {args.batch}: must be at least 1")
    if args.classes < 1:
        raise UsageError(f"--classes {args.classes}: must be at least 1")
    try:
        device, face = select_face(args.device, args.kernels)
    except DeviceError as error:
        raise UsageError(str(error)) from error
    if device == "cpu":
        raise UsageError("tune: no GPU here, and the NumPy reference (--device cpu) has no candidate kernels to "
                         "choose from; run it on a GPU, or use --device emu (the CUDA C emulator) or sim for host "
                         "times that only show the mechanism")
    if device != "gpu":
        print(tuning.not_gpu_times_note(device), flush=True)
    measurements = []

    def report(measurement):
        measurements.append(measurement)
        if args.jsonl is not None:
            tuning.append_record(args.jsonl, {"part": "tune", "kind": "choice", "arch": args.arch, "batch": args.batch,
                                              "device": device, **tuning.as_record(measurement)})

    try:
        chosen = tuning.with_kernel_choice(face, device, "measured", report=report, remeasure=True,
                                           cache_file=args.cache)
    except tuning.KernelChoiceError as error:
        raise UsageError(str(error)) from error
    tuning.tune(chosen, get_arch(args.arch), args.batch, args.classes)
    print(f"{args.arch} at batch {args.batch}, {device} ({face.NAME}); choices written to {chosen.chooser.cache.path}")
    print(tuning.table(measurements))
    return 0
