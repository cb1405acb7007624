"""Checkpoints: one uncompressed .npz of plain arrays plus a JSON document, read with
allow_pickle=False, so that loading one never runs code from it.

    meta                 0-d unicode array: JSON with the format tag, arch, class names, configuration,
                         progress (epoch, batch within it, step), schedule, RNG seeds, history
    param:<layer>.<p>    float32 parameters
    velocity:<layer>.<p> float32 momentum buffers

Writing is atomic (loaders.atomic): a temporary file in the same folder is written and fsynced,
renamed over the target, and the folder is fsynced, so a crash at any moment leaves either the old
checkpoint or the new one, whole.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loaders.atomic import atomic_open

FORMAT = "alexnet-cuda checkpoint"
VERSION = 1
PARAM_PREFIX = "param:"
VELOCITY_PREFIX = "velocity:"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and what to do."""


@dataclass
class Checkpoint:
    path: Path
    meta: dict
    params: dict[str, np.ndarray]
    velocities: dict[str, np.ndarray]


def save(path: Path, meta: dict, params: dict[str, np.ndarray], velocities: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    arrays = {"meta": np.array(json.dumps({"format": FORMAT, "version": VERSION, **meta}))}
    arrays.update({PARAM_PREFIX + key: value for key, value in params.items()})
    arrays.update({VELOCITY_PREFIX + key: value for key, value in velocities.items()})
    with atomic_open(path, "wb") as file:
        np.savez(file, **arrays)
    return path


def saved_step(path: Path) -> int | None:
    """The step a checkpoint holds, reading its metadata only; None where there is no readable one."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return int(json.loads(str(archive["meta"][()]))["progress"]["step"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def load(path: Path) -> Checkpoint:
    path = Path(path)
    if path.is_dir():
        path = path / "last.npz"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; pass the path of a .npz that training wrote "
                              f"(CHECKPOINT_DIR/last.npz or best.npz)")
    if not zipfile.is_zipfile(path):
        # np.load would try the file as a pickle and suggest loading it unsafely: never the advice here.
        raise CheckpointError(
            f"{path}: not a readable alexnet-cuda checkpoint (not an .npz archive: truncated, damaged or another "
            f"kind of file). Use another one (best.npz beside it, or an earlier run's), or start training afresh "
            f"without --resume"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"][()]))
            # Reading every member in full makes zipfile check each CRC: a damaged file fails here.
            params = {k[len(PARAM_PREFIX):]: archive[k] for k in archive.files if k.startswith(PARAM_PREFIX)}
            velocities = {
                k[len(VELOCITY_PREFIX):]: archive[k] for k in archive.files if k.startswith(VELOCITY_PREFIX)
            }
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"{path}: not a readable alexnet-cuda checkpoint ({type(error).__name__}: {error}). The file is "
            f"damaged or is not a checkpoint; use another one (best.npz beside it, or an earlier run's), "
            f"or start training afresh without --resume"
        ) from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an alexnet-cuda checkpoint (no {FORMAT!r} tag in its metadata)")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')!r}; this alexnet-cuda "
                              f"reads version {VERSION}. Use the alexnet-cuda that wrote it")
    for key in ("arch", "classes", "config", "progress"):
        if key not in meta:
            raise CheckpointError(f"{path}: checkpoint metadata lacks {key!r}; the file is damaged")
    return Checkpoint(path, meta, params, velocities)
