"""`alexnet-cuda predict IMAGE... --checkpoint CK`: the top classes of each image, with probabilities.

Each image gets the checkpoint's preprocessing (shorter side to the resize size, centre crop or ten
crops, its mean/std normalization) and a forward pass on the chosen device. Folders are walked for
images; files that cannot be decoded are named on stderr, skipped and counted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from alexnet_cuda.backends import DEVICES, GPU_FACES


def add_arguments(parser):
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders to walk for images")
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="a checkpoint from `alexnet-cuda train` or `import-weights` (a .npz, or a folder "
                             "holding last.npz)")
    parser.add_argument("--top", type=int, default=5, metavar="K", help="classes to show per image (default: 5)")
    parser.add_argument("--ten-crop", action="store_true", help="average the softmax over ten crops per image")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where the kernels run (default: auto)")
    parser.add_argument("--kernels", choices=GPU_FACES, default="cuda", help="kernel face on a GPU (default: cuda)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per forward pass (default: 16)")


def run(args) -> int:
    from alexnet_cuda import checkpoint, training, weights
    from alexnet_cuda.backends import DeviceError, select_face
    from alexnet_cuda.checkpoint import CheckpointError
    from alexnet_cuda.commands import UsageError
    from alexnet_cuda.predict import Classifier, PredictError, image_files, top_classes

    if args.top < 1 or args.batch_size < 1:
        raise UsageError(f"--top {args.top} and --batch-size {args.batch_size}: each must be at least 1")
    try:
        files = image_files(args.images)
        saved = checkpoint.load(Path(args.checkpoint))
        device, face = select_face(args.device, args.kernels)
        model = training.model_from_checkpoint(saved, face)
    except (PredictError, CheckpointError, DeviceError) as error:
        raise UsageError(str(error)) from error
    if not files:
        raise UsageError(f"no images in {', '.join(args.images)} (looked for files ending in .jpg, .png, ...)")
    classes, names = list(saved.meta["classes"]), weights.class_names(saved.meta)
    mean, std = weights.normalization(saved.meta)
    classifier = Classifier(model, mean, std, ten_crop=args.ten_crop)
    classified, skipped = 0, 0
    for outcome in classifier.classify(files, args.batch_size):
        if outcome.skipped is not None:
            skipped += 1
            print(f"skipped {outcome.path}: {outcome.skipped}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": outcome.path, "skipped": outcome.skipped}), flush=True)
            continue
        classified += 1
        top = top_classes(outcome.probs, min(args.top, len(classes)))
        if args.json:
            print(json.dumps({"path": outcome.path, "top": [
                {"index": index, "class": classes[index], "name": names[index], "probability": probability}
                for index, probability in top]}), flush=True)
        else:
            print(outcome.path)
            for index, probability in top:
                label = names[index] if names[index] == classes[index] else f"{names[index]} ({classes[index]})"
                print(f"  {probability:7.2%}  {label}")
    crops = "ten crops averaged" if args.ten_crop else "centre crop"
    print(f"{classified} image(s) classified by {saved.path} ({model.arch.name}, {crops}, {device} {face.NAME})"
          + (f"; {skipped} skipped (not readable images, named above)" if skipped else ""), file=sys.stderr)
    return 0 if classified else 1
