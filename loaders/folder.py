"""Image folders: the ImageNet / torchvision ImageFolder layout, and ILSVRC's flat validation folder.

    DIR/train/<class>/<image>     one folder per class; classes are the sorted folder names
    DIR/val/<class>/<image>       the same classes
    DIR/val/<image> + labels      or a flat validation folder with a labels file (see LABEL_FILES)

Images are recognised by extension, case-insensitively; other files are left alone. Listing is by
name, sorted, so the order of a split never depends on the file system.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loaders.errors import DataError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)
SPLITS = ("train", "val")

# Labels for a flat validation folder, looked for in this order in DIR and then in DIR/val:
#   LOC_val_solution.csv   Kaggle's ImageNet: "ImageId,PredictionString", the class is the first word
#                          of PredictionString, the file is ImageId plus an image extension
#   val_labels.txt, val.txt, labels.txt
#                          one "<file name> <class>" per line, the class a folder name of train or an
#                          index into the sorted class list (Caffe's val.txt has this form)
LABEL_FILES = ("LOC_val_solution.csv", "val_labels.txt", "val.txt", "labels.txt")
# ILSVRC2012's devkit ground truth holds devkit ids, which are not the sorted-wnid order.
DEVKIT_GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not name.startswith(".")


@dataclass(frozen=True)
class FileList:
    """The images of one split: paths relative to `root`, packed into one byte string so that sending
    a million of them to a worker process is one memory copy, and their integer labels."""

    root: str
    blob: bytes
    offsets: np.ndarray  # int64 (n + 1,): path i is blob[offsets[i]:offsets[i + 1]]
    labels: np.ndarray  # int32 (n,)

    @classmethod
    def build(cls, root: Path, relative_paths: list[str], labels: list[int]) -> FileList:
        encoded = [os.fsencode(path) for path in relative_paths]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(item) for item in encoded], out=offsets[1:])
        return cls(str(root), b"".join(encoded), offsets, np.asarray(labels, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.labels)

    def relative(self, index: int) -> str:
        return os.fsdecode(self.blob[self.offsets[index]:self.offsets[index + 1]])

    def path(self, index: int) -> str:
        return os.path.join(self.root, self.relative(index))


def _subfolders(path: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith("."))


def _images_in(path: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(path) if entry.is_file() and is_image_name(entry.name))


def _require_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: {what} is missing. Expected the image-folder layout DIR/train/<class>/*.jpg and "
                        f"DIR/val/<class>/*.jpg (or a packed dataset written by `alexnet-cuda prepare`).")
    if not path.is_dir():
        raise DataError(f"{path}: {what} should be a folder, but it is a file.")


def scan_class_folders(split_dir: Path, classes: list[str] | None = None) -> tuple[list[str], FileList]:
    """List DIR/<split>/<class>/<image>. With `classes` given (the train classes), the split must have
    exactly those class folders."""
    found = _subfolders(split_dir)
    if classes is None:
        classes = found
        if not classes:
            raise DataError(f"{split_dir}: no class folders. Put each class's images in its own folder, "
                            f"{split_dir}/<class>/<image>.")
    else:
        missing = [name for name in classes if name not in found]
        extra = [name for name in found if name not in classes]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} class(es) of train have no folder here: {_few(missing)}")
            if extra:
                parts.append(f"{len(extra)} folder(s) here are not classes of train: {_few(extra)}")
            raise DataError(f"{split_dir}: the classes differ from train's ({'; '.join(parts)}). Train and val must "
                            "hold the same class folders.")
    relative_paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        images = _images_in(split_dir / name)
        if not images:
            raise DataError(f"{split_dir / name}: class folder with no images (looked for the extensions "
                            f"{', '.join(sorted(IMAGE_EXTENSIONS))}, any case). Add images or remove the class.")
        relative_paths.extend(f"{name}/{image}" for image in images)
        labels.extend([label] * len(images))
    return classes, FileList.build(split_dir, relative_paths, labels)


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_label_file(root: Path) -> Path | None:
    for folder in (root, root / "val"):
        for name in LABEL_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def _read_label_file(path: Path) -> list[tuple[str, str]]:
    """(file name or stem, class word) pairs from a labels file."""
    pairs = []
    with open(path, newline="") as handle:
        if path.suffix.lower() == ".csv":
            rows = csv.reader(handle)
            header = next(rows, None)
            if not header or [column.strip() for column in header[:2]] != ["ImageId", "PredictionString"]:
                raise DataError(f"{path}: expected a header 'ImageId,PredictionString' (Kaggle's LOC_val_solution.csv)")
            for line_number, row in enumerate(rows, start=2):
                if len(row) < 2 or not row[1].split():
                    raise DataError(f"{path}:{line_number}: expected 'ImageId,<class> ...', got {','.join(row)!r}")
                pairs.append((row[0].strip(), row[1].split()[0]))
        else:
            for line_number, line in enumerate(handle, start=1):
                words = line.split()
                if not words:
                    continue
                if len(words) != 2:
                    raise DataError(f"{path}:{line_number}: expected '<file name> <class>', got {line.strip()!r}")
                pairs.append((words[0], words[1]))
    if not pairs:
        raise DataError(f"{path}: the labels file is empty")
    return pairs


def scan_flat_val(val_dir: Path, label_file: Path, classes: list[str]) -> FileList:
    """List a flat validation folder whose labels come from `label_file`."""
    images = _images_in(val_dir)
    by_name = {name: name for name in images}
    by_stem = {os.path.splitext(name)[0]: name for name in images}
    class_index = {name: index for index, name in enumerate(classes)}
    labelled: dict[str, int] = {}
    for key, word in _read_label_file(label_file):
        key = os.path.basename(key)
        name = by_name.get(key) or by_stem.get(key) or by_stem.get(os.path.splitext(key)[0])
        if name is None:
            raise DataError(f"{label_file}: lists {key!r}, which is not an image in {val_dir}")
        if word in class_index:
            labelled[name] = class_index[word]
        elif word.isdigit() and int(word) < len(classes):
            labelled[name] = int(word)
        else:
            raise DataError(f"{label_file}: {key!r} has class {word!r}, which is neither a class folder of train nor "
                            f"an index below {len(classes)}")
    unlabelled = [name for name in images if name not in labelled]
    if unlabelled:
        raise DataError(f"{val_dir}: {len(unlabelled)} image(s) have no label in {label_file}: {_few(unlabelled)}")
    names = sorted(labelled)
    labels = [labelled[name] for name in names]
    absent = [classes[index] for index in sorted(set(range(len(classes))) - set(labels))]
    if absent:
        raise DataError(f"{label_file}: {len(absent)} class(es) of train have no validation image: {_few(absent)}. "
                        "Train and val must hold the same classes.")
    return FileList.build(val_dir, names, labels)


def scan_image_folder(root: Path) -> tuple[list[str], dict[str, FileList]]:
    """Classes and the file list of each split of an image folder; DataError on anything amiss."""
    _require_folder(root, "the data folder")
    train_dir, val_dir = root / "train", root / "val"
    _require_folder(train_dir, "the training split (a 'train' folder)")
    _require_folder(val_dir, "the validation split (a 'val' folder)")
    classes, train = scan_class_folders(train_dir)
    if _subfolders(val_dir):
        _, val = scan_class_folders(val_dir, classes)
    else:
        if not _images_in(val_dir):
            raise DataError(f"{val_dir}: no class folders and no images. Put validation images in "
                            f"{val_dir}/<class>/, or flat in {val_dir} with a labels file ({', '.join(LABEL_FILES)}).")
        label_file = find_label_file(root)
        if label_file is None:
            hint = ""
            if (root / DEVKIT_GROUND_TRUTH).exists() or (val_dir / DEVKIT_GROUND_TRUTH).exists():
                hint = (f" {DEVKIT_GROUND_TRUTH} holds ILSVRC devkit ids, which are not the sorted-class order; "
                        "map them to class folder names through the devkit's meta.mat first.")
            raise DataError(f"{val_dir}: a flat validation folder needs a labels file, one of {', '.join(LABEL_FILES)} "
                            f"in {root} or {val_dir}, with a '<file name> <class>' line per image.{hint}")
        val = scan_flat_val(val_dir, label_file, classes)
    return classes, {"train": train, "val": val}
