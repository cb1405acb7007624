"""The packed dataset format, and `prepare`, which writes it from an image folder.

    DST/manifest.json            written last: its presence means the dataset is complete
    DST/<split>_images.npy       uint8 (listed, S, S, 3): every listed image decoded once into the
                                 paper's square (shorter side to S, centre crop); rows of files that
                                 failed to decode stay zero and are not used
    DST/<split>_rows.npy         int64 (n,): the rows that hold an image, in listing order
    DST/<split>_labels.npy       int32 (n,): the label of each of those rows
    DST/<split>_files.json       the source path of every listed row, relative to SRC/<split>

The manifest holds the class names, the size, and per split the counts per class and the skipped
files with their reasons. Loading maps the image array read-only, so reading a crop costs a page
cache lookup, not a decode.

prepare works in DST.partial next to DST, which it renames to DST only after writing the manifest:
an interrupted prepare never leaves a folder that looks like a dataset. Run again with the same
source and size, it resumes from the chunks it had finished; with another source or size it starts
over.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loaders.atomic import fsync_folder, write_text
from loaders.decode import DecodeFailure, decode_square
from loaders.errors import DataError
from loaders.folder import SPLITS, FileList, scan_image_folder

FORMAT = "alexnet-cuda-packed"
VERSION = 1
MANIFEST = "manifest.json"
PLAN = "plan.json"
CHUNK = 64  # images per unit of work, and per resume step


def partial_folder(dst: Path) -> Path:
    return dst.parent / (dst.name + ".partial")


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the packed dataset's manifest ({error}). Run `alexnet-cuda prepare` "
                        "again into a new folder.") from error
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DataError(f"{path}: not a packed dataset of version {VERSION} (format {manifest.get('format')!r}, "
                        f"version {manifest.get('version')!r}). Run `alexnet-cuda prepare` again with this version.")
    return manifest


def read_file_names(path: Path) -> list[str]:
    return json.loads(Path(path).read_text())


def _fingerprint(files: FileList) -> str:
    digest = hashlib.sha256(files.blob)
    digest.update(files.offsets.tobytes())
    digest.update(files.labels.tobytes())
    return digest.hexdigest()


def _images_name(split: str) -> str:
    return f"{split}_images.npy"


def _done_name(split: str) -> str:
    return f"{split}_done.npy"


def _skips_name(split: str) -> str:
    return f"{split}_skipped.jsonl"


@dataclass
class _Progress:
    """What a partial folder has finished, per split: chunk flags and the skips of finished chunks."""

    done: dict[str, np.ndarray]
    skipped: dict[str, dict[int, list]]  # split -> chunk -> [[index, reason], ...]


def _create_partial(partial: Path, plan: dict, files: dict[str, FileList], size: int) -> None:
    partial.mkdir(parents=True)
    for split, listed in files.items():
        # The header is written now; the data area stays sparse until workers fill it.
        np.lib.format.open_memmap(partial / _images_name(split), mode="w+", dtype=np.uint8,
                                  shape=(len(listed), size, size, 3)).flush()
        np.save(partial / _done_name(split), np.zeros(-(-len(listed) // CHUNK), dtype=np.uint8))
        (partial / _skips_name(split)).write_bytes(b"")
        (partial / f"{split}_files.json").write_text(json.dumps([listed.relative(i) for i in range(len(listed))]))
    write_text(partial / PLAN, json.dumps(plan, indent=1))


def _read_progress(partial: Path) -> _Progress:
    done, skipped = {}, {}
    for split in SPLITS:
        done[split] = np.load(partial / _done_name(split), mmap_mode="r+")
        path = partial / _skips_name(split)
        data = path.read_bytes()
        # A kill can tear the last line; drop it (its chunk's flag was not set, so the chunk is redone).
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with open(path, "r+b") as handle:
                handle.truncate(len(complete))
        skipped[split] = {}
        for line in complete.splitlines():
            record = json.loads(line)
            skipped[split][record["chunk"]] = record["skipped"]  # a redone chunk's last record wins
    return _Progress(done, skipped)


# ---- worker side: each worker maps the image arrays once and writes its chunks' rows in place ----

_worker_state: dict = {}


def _worker_start(partial: str, files: dict[str, FileList], size: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    _worker_state.update(partial=Path(partial), files=files, size=size, maps={})


def _image_rows(split: str) -> tuple[np.ndarray, mmap.mmap, int]:
    maps = _worker_state["maps"]
    if split not in maps:
        path = _worker_state["partial"] / _images_name(split)
        with open(path, "r+b") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, _ = read_header(handle)
            offset = handle.tell()
            mapping = mmap.mmap(handle.fileno(), 0)
        array = np.ndarray(shape, dtype=np.uint8, buffer=mapping, offset=offset)
        maps[split] = (array, mapping, offset)
    return maps[split]


def _prepare_chunk(task: tuple[str, int]) -> tuple[str, int, list]:
    split, chunk = task
    files, size = _worker_state["files"][split], _worker_state["size"]
    array, mapping, offset = _image_rows(split)
    start, stop = chunk * CHUNK, min((chunk + 1) * CHUNK, len(files))
    skipped = []
    for index in range(start, stop):
        try:
            array[index] = decode_square(files.path(index), size)
        except DecodeFailure as failure:
            skipped.append([index, str(failure)])
    # Make the rows durable before the parent marks the chunk done.
    row_bytes = size * size * 3
    first = offset + start * row_bytes
    aligned = first - first % mmap.ALLOCATIONGRANULARITY
    mapping.flush(aligned, offset + stop * row_bytes - aligned)
    return split, chunk, skipped


# ---- parent side ----

def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def prepare(source, destination, size: int = 256, workers: int | None = None, progress: bool = True,
            log=print) -> dict:
    """Pack the image folder `source` into `destination`; returns the manifest. See the module doc."""
    from loaders.workers import process_context

    source, destination = Path(source).expanduser().resolve(), Path(destination).expanduser().resolve()
    if size < 1:
        raise ValueError(f"size {size}: expected a positive number of pixels")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers {workers}: expected at least 1")
    if (destination / MANIFEST).exists():
        manifest = read_manifest(destination)
        if manifest["source"] == str(source) and manifest["size"] == size:
            log(f"{destination} is already a complete packed dataset of {source} at size {size}; nothing to do")
            return manifest
        raise DataError(f"{destination} already holds a packed dataset (of {manifest['source']} at size "
                        f"{manifest['size']}). Choose another destination or delete it first.")
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise DataError(f"{destination} exists and is not an empty folder; choose another destination for the "
                        "packed dataset.")
    if (source / MANIFEST).exists():
        raise DataError(f"{source} is already a packed dataset; prepare reads image folders")
    classes, files = scan_image_folder(source)
    plan = {
        "format": FORMAT, "version": VERSION, "source": str(source), "size": size, "classes": classes,
        "chunk": CHUNK, "splits": {split: {"listed": len(files[split]), "fingerprint": _fingerprint(files[split])}
                                   for split in SPLITS},
    }
    partial = partial_folder(destination)
    if partial.exists():
        try:
            earlier = json.loads((partial / PLAN).read_text())
        except (OSError, ValueError):
            earlier = None
        if earlier == plan:
            log(f"resuming the unfinished prepare in {partial}")
        else:
            log(f"{partial} holds an unfinished prepare of other input; starting over")
            shutil.rmtree(partial)
    if not partial.exists():
        _create_partial(partial, plan, files, size)
    state = _read_progress(partial)
    tasks = [(split, int(chunk)) for split in SPLITS for chunk in np.flatnonzero(state.done[split] == 0)]
    total = sum(len(files[split]) for split in SPLITS)
    remaining = sum(min(CHUNK, len(files[split]) - chunk * CHUNK) for split, chunk in tasks)
    _run_chunks(partial, files, size, workers, tasks, state, total, total - remaining, progress, process_context())
    manifest = _finish(partial, destination, plan, files, state)
    for split in SPLITS:
        info = manifest["splits"][split]
        log(f"{split}: {info['packed']} of {info['listed']} images packed, {len(info['skipped'])} skipped")
        for path, reason in info["skipped"][:20]:
            log(f"  skipped {path}: {reason}")
        if len(info["skipped"]) > 20:
            log(f"  ... and {len(info['skipped']) - 20} more, listed in {destination / MANIFEST}")
    return manifest


def _record(partial: Path, state: _Progress, split: str, chunk: int, skipped: list) -> None:
    with open(partial / _skips_name(split), "a") as handle:
        handle.write(json.dumps({"chunk": chunk, "skipped": skipped}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    state.skipped[split][chunk] = skipped
    state.done[split][chunk] = 1  # only after the rows and the skips are on disk
    state.done[split].flush()


def _run_chunks(partial, files, size, workers, tasks, state, total, initial, progress, context) -> None:
    from tqdm import tqdm

    with tqdm(total=total, initial=initial, unit="img", desc="prepare", disable=not progress, smoothing=0.1) as bar:
        if workers == 1:
            _worker_start(str(partial), files, size)
            results = map(_prepare_chunk, tasks)
            for split, chunk, skipped in results:
                _record(partial, state, split, chunk, skipped)
                bar.update(min(CHUNK, len(files[split]) - chunk * CHUNK))
            _worker_state.clear()
            return
        pool = context.Pool(workers, initializer=_worker_start, initargs=(str(partial), files, size))
        try:
            for split, chunk, skipped in pool.imap_unordered(_prepare_chunk, tasks):
                _record(partial, state, split, chunk, skipped)
                bar.update(min(CHUNK, len(files[split]) - chunk * CHUNK))
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()


def _finish(partial: Path, destination: Path, plan: dict, files: dict[str, FileList], state: _Progress) -> dict:
    classes = plan["classes"]
    manifest = {"format": FORMAT, "version": VERSION, "source": plan["source"], "size": plan["size"],
                "classes": classes, "splits": {}}
    for split in SPLITS:
        listed = files[split]
        failed = sorted((index, reason) for chunk in state.skipped[split].values() for index, reason in chunk)
        keep = np.ones(len(listed), dtype=bool)
        keep[[index for index, _ in failed]] = False
        rows = np.flatnonzero(keep).astype(np.int64)
        labels = listed.labels[rows]
        np.save(partial / f"{split}_rows.npy", rows)
        np.save(partial / f"{split}_labels.npy", labels)
        counts = np.bincount(labels, minlength=len(classes))
        manifest["splits"][split] = {
            "images": _images_name(split), "rows": f"{split}_rows.npy", "labels": f"{split}_labels.npy",
            "files": f"{split}_files.json", "listed": len(listed), "packed": len(rows),
            "class_counts": {name: int(count) for name, count in zip(classes, counts, strict=True)},
            "skipped": [[listed.relative(index), reason] for index, reason in failed],
        }
    for name in os.listdir(partial):
        with open(partial / name, "rb") as handle:
            os.fsync(handle.fileno())
    write_text(partial / MANIFEST, json.dumps(manifest, indent=1))
    if destination.exists():
        destination.rmdir()  # checked empty above
    os.rename(partial, destination)
    fsync_folder(destination.parent)
    # The bookkeeping goes only now: a kill before the rename leaves a partial folder that resumes
    # straight to this step, and one after it a complete dataset with a few stale files at worst.
    for split in SPLITS:
        (destination / _done_name(split)).unlink()
        (destination / _skips_name(split)).unlink()
    (destination / PLAN).unlink()
    return manifest
