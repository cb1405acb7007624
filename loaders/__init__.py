"""Data for alexnet-cuda: image folders, the paper's augmentation, a packed format, synthetic data and
a prefetching loader. The interface the trainer uses:

    open_dataset(path) -> Dataset       an image folder or a packed dataset (.classes, .root, .kind, .split())
    make_loader(split, ...) -> Loader   one epoch of augmented batches (see make_loader's docstring)
    DataError                           bad or missing data, with a message that says what to do
    default_data_dir(), ensure_synthetic(path=None)   the built-in synthetic dataset
    skipped_summary(loader.skipped)     the end-of-epoch report of files that failed to decode
"""

from loaders.dataset import Dataset, Split, open_dataset
from loaders.errors import DataError
from loaders.loader import Batch, Loader, make_loader, skipped_summary
from loaders.synthetic import default_data_dir, ensure_synthetic

__all__ = [
    "Batch",
    "DataError",
    "Dataset",
    "Loader",
    "Split",
    "default_data_dir",
    "ensure_synthetic",
    "make_loader",
    "open_dataset",
    "skipped_summary",
]
