"""Files that are never half-written, for checkpoints, packed datasets and benchmark results.

A file is written to a temporary beside its target (named .<target>.tmp-<pid>, so that two
processes never share one and a reader of *.npz or *.json never sees one), flushed and fsynced,
renamed over the target, and the folder is fsynced: a crash at any moment leaves either the old
file or the whole new one. In loaders, the lowest layer that writes files, so that alexnet_cuda and
the benchmarks use the same writer without importing upwards.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TEMPORARY_MARK = ".tmp-"


def temporary_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{TEMPORARY_MARK}{os.getpid()}")


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary for writing in `mode`; on leaving the block without an error it replaces
    `path`, on an error (or an interrupt) it is removed and `path` is untouched."""
    path = Path(path)
    temporary = temporary_path(path)
    try:
        with open(temporary, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_text(path, text: str) -> None:
    """Replace `path` with `text`, atomically."""
    with atomic_open(path, "w") as file:
        file.write(text)


def link_or_copy(source: Path, target: Path) -> None:
    """Make `target` a file identical to `source`, atomically (a hard link where possible)."""
    target = Path(target)
    temporary = temporary_path(target)
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        with open(source, "rb") as src, open(temporary, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    os.replace(temporary, target)
    fsync_folder(target.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries an interrupted write left in `folder`; returns what was removed."""
    removed = []
    for candidate in Path(folder).glob(f".*{TEMPORARY_MARK}*"):
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed
