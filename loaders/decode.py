"""Decoding with Pillow, robust to what real image collections hold, into the paper's square.

`decode_square(path, size)` returns the image as uint8 (size, size, 3) RGB: shorter side scaled to
`size`, centre square kept (the paper's "rescaled the image such that the shorter side was of
length 256, and then cropped out the central 256x256 patch"). CMYK and grayscale JPEGs, palette and
RGBA PNGs and a PNG named .JPEG all come out RGB (Pillow detects the format from the bytes, not the
name). Anything Pillow cannot decode raises DecodeFailure with a short reason; the loaders skip the
file, count it and name it.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

# Pillow's bilinear filter widens its support when it shrinks, so downscaling is antialiased.
RESAMPLE = Image.Resampling.BILINEAR


class DecodeFailure(Exception):
    """The file is not a usable image; str() is the reason, for the skip report."""


def _reason(error: BaseException) -> str:
    if isinstance(error, Image.DecompressionBombError):
        return f"refused as a decompression bomb: {error}"
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can identify"
    if isinstance(error, OSError) and "truncated" in str(error).lower():
        return "truncated image file"
    return f"cannot decode ({type(error).__name__}: {error})"


def _open_rgb(path: str, size: int) -> Image.Image:
    if os.path.getsize(path) == 0:
        raise DecodeFailure("zero-byte file")
    with warnings.catch_warnings():
        # Palette images with transparency warn on convert; the conversion below handles them.
        warnings.simplefilter("ignore", UserWarning)
        with Image.open(path) as image:
            # JPEG draft mode: the decoder scales by 1/2, 1/4 or 1/8 in the DCT, keeping the shorter
            # side >= size, which makes decoding much faster when the target is much smaller.
            if image.format == "JPEG":
                image.draft(None, (size, size))
            image.load()
            return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as RGB. Transparency is dropped (the colour under it is kept), as torchvision does."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        # 16-bit grayscale: keep the top 8 bits (Pillow's own conversion to L would clip at 255).
        return Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)).convert("RGB")
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")  # a palette with transparency converts cleanly only through RGBA
    return image.convert("RGB")


def square_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centre square of a width x height image, as a Pillow box (left, upper, right, lower)."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def decode_square(path: str, size: int) -> np.ndarray:
    """The image at `path` as uint8 (size, size, 3) RGB: shorter side to `size`, centre square."""
    try:
        image = _open_rgb(path, size)
        # Resizing only the centre square is the same as scaling the shorter side and then cropping,
        # without resampling pixels that the crop throws away.
        image = image.resize((size, size), RESAMPLE, box=square_box(*image.size))
        return np.asarray(image, dtype=np.uint8)
    except DecodeFailure:
        raise
    except Exception as error:  # Pillow raises many types for bad files; each becomes a named skip
        raise DecodeFailure(_reason(error)) from error


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 (S, S, 3) square resized to (size, size, 3), for a packed dataset stored at another size."""
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), RESAMPLE), dtype=np.uint8)
