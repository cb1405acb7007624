"""Loader benchmark: images/s of the JPEG path and the packed path against a plain Pillow loop.

    alexnet-cuda bench loader [--data DIR] [--images N] [--workers W] [--batch-size B] [--repeats R]

All three read the same N files (N of DIR's train split, chosen at random):
- baseline: one process, for each file: Pillow decode, shorter side resized to 256, a random 224
  crop (uint8; no normalization, no batching);
- JPEG path: make_loader over those files with W worker processes, train=True (random 224 crop
  of the 256 square, mirror, PCA lighting, normalization to float32 batches);
- packed path: the same loader over a packed copy of them (`alexnet-cuda prepare`, timed on its
  own and not counted).
The targets are JPEG >= 1.5x and packed >= 10x the baseline. A machine check runs the baseline in W
processes at once: the most W workers could get from the machine at that moment.

How it measures: loaders in the steady state, from the first batch of an epoch to its last (worker
start-up happens once an epoch and is reported apart), in epochs of --epoch-images (the files listed
as often as it takes: a real dataset's epoch is long, and its start-up costs vanish in it), over as
many epochs as --min-seconds takes;
the three paths in turn, --repeats rounds, each ratio the median of the per-round ratios, so that a
change in a shared machine's load biases none of them. It also counts the CPU time of every
process per image. On a machine where other work takes cores, the single-process baseline keeps its
core while the loader's processes lose theirs, and the wall-clock ratio understates what the loader
does on the idle cores the targets assume; the machine check shows how many cores there were.

Without --data it generates N ImageNet-sized JPEGs (500x375, 1/f noise, the power spectrum of
natural images, quality 90) in a temporary folder: photographs decode at a similar cost per pixel,
but a run on your own data is the number that counts.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {"jpeg": 1.5, "packed": 10.0}


def add_arguments(parser):
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="image folder to read (default: generated ImageNet-sized JPEGs)")
    parser.add_argument("--images", type=int, default=768, help="files to time (default: 768)")
    parser.add_argument("--workers", type=int, default=None, help="loader worker processes (default: one per core)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--resize-size", type=int, default=256, help="shorter side and square (default: 256)")
    parser.add_argument("--input-size", type=int, default=224, help="crop (default: 224)")
    parser.add_argument("--epoch-images", type=int, default=4096, help="images in a timed epoch of the loaders: the "
                        "files are listed again as often as it takes (default: 4096)")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="time each path for at least this long per "
                        "round, repeating epochs (default: 3)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of baseline, JPEG and packed, interleaved so "
                        "that a change in the machine's load hits all three; medians are reported (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the file choice and the crops (default: 0)")


def natural_jpegs(root: Path, count: int, size=(500, 375), classes: int = 4, seed: int = 0) -> Path:
    """An image folder of `count` training JPEGs (plus a few for val) of 1/f noise, the amplitude
    spectrum of natural photographs, so that they compress and decode like photographs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    frequency = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.rfftfreq(width)[None, :] ** 2)
    amplitude = 1.0 / np.maximum(frequency, 1.0 / max(width, height))
    for split, total in (("train", count), ("val", classes)):
        for index in range(total):
            label = index % classes
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            phases = rng.uniform(0, 2 * np.pi, (3, *amplitude.shape))
            planes = np.fft.irfft2(amplitude * np.exp(1j * phases), s=(height, width))
            planes = (planes - planes.mean(axis=(1, 2), keepdims=True)) / planes.std(axis=(1, 2), keepdims=True)
            colour = rng.uniform(60, 190, 3)[:, None, None]
            mixed = 0.6 * planes + 0.4 * planes.mean(axis=0)  # correlated channels, as in photographs
            pixels = np.clip(colour + 45 * mixed, 0, 255).astype(np.uint8).transpose(1, 2, 0)
            Image.fromarray(pixels).save(folder / f"{split}_{index:05d}.jpg", quality=90)
    return root


def baseline(paths: list[str], resize: int, crop: int, seed: int, min_seconds: float = 0.0) -> dict:
    """images/s of the plain loop (decode, shorter side to `resize`, random `crop` square), passes over
    `paths` repeated until `min_seconds` have gone by; and its CPU time per image."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    started, cpu_started, done = time.perf_counter(), time.process_time(), 0
    while done == 0 or time.perf_counter() - started < min_seconds:
        for path in paths:
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = resize / min(image.size)
                size = (max(resize, round(image.width * scale)), max(resize, round(image.height * scale)))
                pixels = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
                top = rng.integers(0, pixels.shape[0] - crop + 1)
                left = rng.integers(0, pixels.shape[1] - crop + 1)
                np.ascontiguousarray(pixels[top:top + crop, left:left + crop])
        done += len(paths)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"images_per_s": done / elapsed, "consumer_cpu_ms": 1000 * cpu / done, "worker_cpu_ms": 0.0}


def _baseline_rate(task: tuple) -> float:
    return baseline(*task)["images_per_s"]


def parallel_baseline(paths: list[str], resize: int, crop: int, seed: int, processes: int,
                      min_seconds: float) -> float:
    """images/s of `processes` plain loops running at once, each over its share of `paths`: how much
    parallel work the machine gives right now, the ceiling of a loader with that many workers."""
    from loaders.workers import process_context

    shares = [(paths[i::processes], resize, crop, seed + i, min_seconds) for i in range(processes)]
    with process_context().Pool(processes) as pool:
        return float(sum(pool.map(_baseline_rate, shares)))


def time_loader(split, args, workers: int, min_seconds: float = 0.0) -> dict:
    """Steady-state images/s of training epochs over `split` (each from its first batch to its last),
    epochs repeated until `min_seconds` of steady state have been timed; and the CPU time all the
    processes spent per image over the whole epochs."""
    import loaders

    counted, steady, epochs, skipped, first_batch_s = 0, 0.0, 0, 0, None
    images, consumer_cpu, worker_cpu = 0, 0.0, 0.0
    while epochs == 0 or steady < min_seconds:
        started, cpu_started = time.perf_counter(), time.process_time()
        first_batch_at = None
        with loaders.make_loader(split, batch_size=args.batch_size, input_size=args.input_size,
                                 resize_size=args.resize_size, train=True, seed=args.seed, epoch=epochs,
                                 workers=workers) as loader:
            for batch in loader:
                images += len(batch.labels)
                if first_batch_at is None:
                    first_batch_at = time.perf_counter()
                else:
                    counted += len(batch.labels)
        steady += time.perf_counter() - first_batch_at
        consumer_cpu += time.process_time() - cpu_started
        worker_cpu += loader.worker_cpu_seconds
        first_batch_s = first_batch_at - started if first_batch_s is None else first_batch_s
        skipped += len(loader.skipped)
        epochs += 1
    return {"images_per_s": counted / steady, "first_batch_s": first_batch_s, "images": counted, "epochs": epochs,
            "skipped": skipped, "consumer_cpu_ms": 1000 * consumer_cpu / images,
            "worker_cpu_ms": 1000 * worker_cpu / images}


def _subset_folder(split, chosen: np.ndarray, root: Path) -> Path:
    """A folder of links to the chosen files (and one per class in val), for prepare, which packs
    whole folders."""
    in_val = set()
    for index in chosen:
        source = Path(split.describe(int(index)))
        splits = ["train"] + (["val"] if source.parent.name not in in_val else [])
        in_val.add(source.parent.name)
        for target_split in splits:
            link = root / target_split / source.parent.name / source.name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, link)
    return root


def median(values) -> float:
    return float(np.median(values))


def run(args) -> dict:
    import loaders
    from loaders.dataset import FolderSplit
    from loaders.folder import FileList
    from loaders.packed import default_workers, prepare

    workers = args.workers or default_workers()
    if args.images < 2 * args.batch_size:
        raise ValueError(f"--images {args.images}: time at least two batches ({2 * args.batch_size} images)")
    scratch = Path(tempfile.mkdtemp(prefix="alexnet-cuda-loader-bench-"))
    try:
        data = args.data
        if data is None:
            print(f"generating {args.images} ImageNet-sized JPEGs (500x375, 1/f noise) in {scratch} ...")
            data = natural_jpegs(scratch / "jpegs", args.images, seed=args.seed)
        train = loaders.open_dataset(data).split("train")
        if not isinstance(train, FolderSplit):
            raise ValueError(f"{data}: the benchmark reads image files; give it an image folder, not a packed dataset")
        count = min(args.images, len(train))
        chosen = np.sort(np.random.default_rng(args.seed).permutation(len(train))[:count])
        repeats = max(1, -(-args.epoch_images // count))
        relative = [train.files.relative(int(i)) for i in chosen]
        paths = [str(Path(train.files.root) / name) for name in relative]
        # Each file listed `repeats` times: one long epoch, as on a real dataset, instead of many
        # short ones that would each pay the workers' start-up.
        subset = FolderSplit("train", FileList.build(Path(train.files.root), relative * repeats,
                                                     np.tile(train.labels[chosen], repeats)))
        for path in paths[:16]:  # warm the page cache, so that no path pays for the first reads
            Path(path).read_bytes()
        print(f"loader benchmark: {count} files from {data} ({count * repeats} to a loader epoch); batch "
              f"{args.batch_size}, {args.input_size} crops of "
              f"{args.resize_size} squares; {workers} worker(s) on {os.cpu_count()} CPU core(s)")
        results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.node(),
                   "cpu_cores": os.cpu_count(), "data": str(data), "images": count,
                   "epoch_images": count * repeats, "workers": workers,
                   "batch_size": args.batch_size, "resize_size": args.resize_size, "input_size": args.input_size}
        started = time.perf_counter()
        prepare(_subset_folder(train, chosen, scratch / "links"), scratch / "packed", size=args.resize_size,
                workers=workers, progress=False, log=lambda *_: None)
        results["prepare_s"] = time.perf_counter() - started
        packed_split = loaders.open_dataset(scratch / "packed").split("train")
        packed_split.rows = np.tile(packed_split.rows, repeats)
        packed_split.labels = np.tile(packed_split.labels, repeats)
        rounds = []
        for number in range(args.repeats):
            parallel = parallel_baseline(paths, args.resize_size, args.input_size, args.seed, workers,
                                         args.min_seconds)
            rounds.append({"baseline": baseline(paths, args.resize_size, args.input_size, args.seed, args.min_seconds),
                           "parallel_baseline": {"images_per_s": parallel},
                           "jpeg": time_loader(subset, args, workers, args.min_seconds),
                           "packed": time_loader(packed_split, args, workers, args.min_seconds)})
            print(f"round {number + 1}: " + ", ".join(f"{key} {rounds[-1][key]['images_per_s']:.1f}"
                                                     for key in ("baseline", "parallel_baseline", "jpeg", "packed"))
                  + " images/s")
        results["rounds"] = rounds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reference = median([r["baseline"]["images_per_s"] for r in rounds])
    results["baseline"] = {"images_per_s": reference,
                           "cpu_ms": median([r["baseline"]["consumer_cpu_ms"] for r in rounds])}
    print(f"\n{'path':44} {'images/s':>9} {'ratio':>7} {'target':>8}        {'CPU ms/img':>10}")
    print(f"{'baseline: 1 process, decode + resize + crop':44} {reference:9.1f} {'1.00x':>7} {'':8}        "
          f"{results['baseline']['cpu_ms']:10.2f}")
    parallel = median([r["parallel_baseline"]["images_per_s"] for r in rounds])
    parallel_ratio = median([r["parallel_baseline"]["images_per_s"] / r["baseline"]["images_per_s"] for r in rounds])
    results["parallel_baseline"] = {"images_per_s": parallel, "ratio": parallel_ratio}
    print(f"{f'machine check: {workers} baseline loops at once':44} {parallel:9.1f} {parallel_ratio:6.2f}x")
    for key, label in (("jpeg", f"JPEG folder, loader, {workers} worker(s)"),
                       ("packed", f"packed, loader, {workers} worker(s)")):
        entry = {
            "images_per_s": median([r[key]["images_per_s"] for r in rounds]),
            "ratio": median([r[key]["images_per_s"] / r["baseline"]["images_per_s"] for r in rounds]),
            "first_batch_s": median([r[key]["first_batch_s"] for r in rounds]),
            "cpu_ms": median([r[key]["consumer_cpu_ms"] + r[key]["worker_cpu_ms"] for r in rounds]),
            "target": TARGETS[key],
        }
        entry["met"] = entry["ratio"] >= TARGETS[key]
        results[key] = entry
        verdict = "met" if entry["met"] else "MISSED"
        print(f"{label:44} {entry['images_per_s']:9.1f} {entry['ratio']:6.2f}x {'>= ' + str(TARGETS[key]) + 'x':>8} "
              f"{verdict:6} {entry['cpu_ms']:10.2f}")
    print(f"\nimages/s and ratio: wall clock in the steady state (first batch to last), medians over {len(rounds)} "
          f"rounds; the first batch came after {results['jpeg']['first_batch_s']:.2f} s (JPEG), "
          f"{results['packed']['first_batch_s']:.2f} s (packed); prepare took {results['prepare_s']:.1f} s.\n"
          f"machine check: the plain loop in {workers} processes at once, the most {workers} workers could get from "
          f"this machine at the time (near {workers}x on idle cores; lower when other work shares them).\n"
          "CPU ms/img: CPU time of every process of the path per image, worker start-up included.")
    return results
