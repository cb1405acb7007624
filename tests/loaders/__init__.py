"""Tests of loaders/: data sets, decoding, augmentation (NumPy and the GPU path), the loader."""
