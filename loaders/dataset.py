"""Datasets and their splits, one interface over image folders and packed datasets.

A Split lists images and their labels and turns image i into the decoded uint8 (R, R, 3) square of
`decode(i, R)` (raising DecodeFailure for a file that cannot be used). Splits are picklable and
small to pickle, so the prefetch workers receive them whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loaders import packed
from loaders.decode import decode_square, resize_square
from loaders.errors import DataError
from loaders.folder import SPLITS, FileList, scan_image_folder


class Split:
    """The images of one split. len(split) is the number listed; labels is int32 (len,)."""

    name: str
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self, index: int) -> str:
        """Where image `index` comes from, for messages (a file path)."""
        raise NotImplementedError

    def decode(self, index: int, size: int) -> np.ndarray:
        """Image `index` as uint8 (size, size, 3), or DecodeFailure."""
        raise NotImplementedError


class FolderSplit(Split):
    def __init__(self, name: str, files: FileList):
        self.name, self.files, self.labels = name, files, files.labels

    def describe(self, index: int) -> str:
        return self.files.path(index)

    def decode(self, index: int, size: int) -> np.ndarray:
        return decode_square(self.files.path(index), size)


class PackedSplit(Split):
    """Rows of a memory-mapped uint8 array written by `alexnet-cuda prepare` (see loaders/packed.py)."""

    def __init__(self, name: str, root: Path, info: dict):
        self.name, self.root = name, Path(root)
        self.stored_size = int(info["size"])
        self.images_file = self.root / info["images"]
        self.rows = np.load(self.root / info["rows"], allow_pickle=False)
        self.labels = np.load(self.root / info["labels"], allow_pickle=False)
        self.files_file = self.root / info["files"]
        self._images = self._files = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_images"] = None  # each process maps the file itself
        state["_files"] = None  # read when a message needs a name (a million names are 60 MB)
        return state

    @property
    def images(self) -> np.ndarray:
        if self._images is None:
            self._images = np.load(self.images_file, mmap_mode="r", allow_pickle=False)
        return self._images

    def describe(self, index: int) -> str:
        if self._files is None:
            self._files = packed.read_file_names(self.files_file)
        return f"{self._files[int(self.rows[index])]} (row {int(self.rows[index])} of {self.images_file})"

    def decode(self, index: int, size: int) -> np.ndarray:
        return resize_square(self.images[self.rows[index]], size)


class Dataset:
    """An image folder or a packed dataset: .classes (sorted names), .root, .kind, .split(name)."""

    def __init__(self, root: Path, kind: str, classes: list[str], splits: dict[str, Split]):
        self.root, self.kind, self.classes, self._splits = root, kind, classes, splits

    def split(self, name: str) -> Split:
        if name not in self._splits:
            raise ValueError(f"split {name!r}: expected one of {', '.join(SPLITS)}")
        return self._splits[name]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name} {len(split)}" for name, split in self._splits.items())
        return f"Dataset({str(self.root)!r}, kind={self.kind!r}, {len(self.classes)} classes, {sizes})"


def open_dataset(path) -> Dataset:
    """Open an image folder or a packed dataset; DataError names what is wrong and what to do."""
    root = Path(path).expanduser()
    if (root / packed.MANIFEST).is_file():
        manifest = packed.read_manifest(root)
        splits = {name: PackedSplit(name, root, dict(info, size=manifest["size"]))
                  for name, info in manifest["splits"].items()}
        for name, split in splits.items():
            if len(split) == 0:
                raise DataError(f"{root}: the packed {name} split holds no images (all were skipped by prepare; "
                                f"see {packed.MANIFEST})")
        return Dataset(root, "packed", list(manifest["classes"]), splits)
    partial = packed.partial_folder(root)
    if not root.exists() and partial.exists():
        raise DataError(f"{root}: not there yet; {partial} holds an unfinished `alexnet-cuda prepare`. Run the same "
                        "prepare command again to finish it.")
    classes, files = scan_image_folder(root)
    return Dataset(root, "folder", classes, {name: FolderSplit(name, files[name]) for name in SPLITS})
