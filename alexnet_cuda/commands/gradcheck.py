"""`alexnet-cuda gradcheck`: every op's backward, a tiny network chained by hand, and the trainer's
own Model on the tiny arch, against float64 central differences of the NumPy reference, on the face
that --device/--kernels select."""

from __future__ import annotations

import numpy as np

from alexnet_cuda.backends import DEVICES, GPU_FACES, DeviceError, select_face
from alexnet_cuda.commands import UsageError


def add_arguments(parser):
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where the kernels run (default: auto)")
    parser.add_argument("--kernels", choices=GPU_FACES, default="cuda", help="kernel face on a GPU (default: cuda)")
    parser.add_argument("--max-entries", type=int, default=None, metavar="K",
                        help="difference at most K random entries per input (default: all on cpu, 24 elsewhere)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")


def run(args) -> int:
    from alexnet_cuda.gradcheck_model import model_case
    from kernels import gradcheck
    from kernels.testing import GRADCHECK_THRESHOLDS

    try:
        device, face = select_face(args.device, args.kernels)
    except DeviceError as error:
        raise UsageError(str(error)) from error
    dtype = np.float64 if face.NAME == "reference" else np.float32
    max_entries = args.max_entries if args.max_entries is not None else (None if device == "cpu" else 24)
    precision = "float64" if dtype == np.float64 else "float32"
    print(f"gradcheck: face {face.NAME} on {device}, {precision}; relative error = max|a - n| / max(max|a|, max|n|)")
    print(f"threshold {GRADCHECK_THRESHOLDS[precision][0]:g}: {GRADCHECK_THRESHOLDS[precision][1]}")
    print(f"{'case':34} {'input':9} {'entries':>7} {'rel. error':>10}  result")
    failures = 0
    for case, constants in [*gradcheck.all_cases(args.seed), model_case(args.seed)]:
        for result in gradcheck.check(case, constants, face, dtype=dtype, max_entries=max_entries, seed=args.seed):
            failures += not result.passed
            verdict = "ok" if result.passed else "FAIL"
            print(f"{result.case:34} {result.input:9} {result.entries:7d} {result.error:10.2e}  {verdict}")
    print(f"{failures} failure(s)" if failures else "all gradients match")
    return 1 if failures else 0
