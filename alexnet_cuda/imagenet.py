"""The 1000 ImageNet classes (ILSVRC2012) in output order: WordNet ids sorted, each with its lemmas.

The list ships as alexnet_cuda/data/imagenet_classes.tsv, one `wnid<TAB>lemmas` line per class.
The sorted-id order is that of torchvision's ImageNet models and of an ImageNet train folder read
as an image folder here, so output i of either is line i.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

IMAGENET_CLASS_COUNT = 1000
DATA_FILE = "imagenet_classes.tsv"


@cache
def imagenet_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(wnids, names): the 1000 synset ids, sorted, and their WordNet lemmas ("tabby, tabby cat")."""
    text = resources.files("alexnet_cuda").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    if len(rows) != IMAGENET_CLASS_COUNT or any(len(row) != 2 for row in rows):
        raise RuntimeError(f"alexnet_cuda/data/{DATA_FILE}: expected {IMAGENET_CLASS_COUNT} lines of "
                           f"'wnid<TAB>names'; the installed package is damaged, reinstall it")
    wnids, names = zip(*rows, strict=True)
    return wnids, names


def names_for(classes: list[str]) -> list[str] | None:
    """The ImageNet names of `classes` when they are the 1000 ImageNet ids in output order, else None."""
    wnids, names = imagenet_classes()
    return list(names) if list(classes) == list(wnids) else None
