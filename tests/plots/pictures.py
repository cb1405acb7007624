"""Reading a drawn picture back: a valid PNG of the expected size that is not blank."""

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_picture(path, size: tuple[int, int]) -> np.ndarray:
    """The RGB pixels of the PNG at `path`, checked to be a whole PNG of `size` (width, height) with
    something drawn on it."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    with Image.open(path) as image:
        image.verify()  # checks the chunks' CRCs: a truncated or damaged file fails here
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size, (image.format, image.size, size)
        pixels = np.asarray(image.convert("RGB"))
    # A blank or nearly blank figure (axes only) has few colours and almost no ink.
    assert pixels.std() > 20, f"{path}: pixel standard deviation {pixels.std():.1f}: blank"
    ink = (pixels < 200).any(axis=2).mean()
    assert ink > 0.02, f"{path}: only {ink:.1%} of the pixels drawn on"
    return pixels
