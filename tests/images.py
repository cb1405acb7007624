"""Test data builders shared by the loader tests and the trainer's tests.

`build_bad_folder(root)` writes a small image folder of synthetic shapes in which the training split
also holds every kind of awkward file real ImageNet has, plus the broken ones a download can leave.
The awkward ones must load; the broken ones must be skipped and named.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from loaders.synthetic import CLASSES, SynthSpec, render

# Files that decode, each named for what it is (the class folder is the first class).
AWKWARD_KINDS = ("cmyk_jpeg", "grayscale_jpeg", "palette_png_transparent", "rgba_png", "png_named_jpeg",
                 "grayscale_16bit_png", "uppercase_extension")
# Files that must be skipped, and a word their skip reason contains.
BROKEN_KINDS = {
    "truncated_jpeg": "truncated",
    "corrupt_jpeg": "cannot decode",
    "zero_byte": "zero-byte",
    "not_an_image": "not an image",
    "decompression_bomb": "decompression bomb",
}


@dataclass
class BadFolder:
    root: Path
    classes: list[str]
    awkward: dict[str, Path] = field(default_factory=dict)  # kind -> file that must load
    broken: dict[str, Path] = field(default_factory=dict)  # kind -> file that must be skipped
    train_count: int = 0  # images listed in train, broken ones included
    val_count: int = 0


def _jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def decompression_bomb_png(side: int = 40_000) -> bytes:
    """A tiny PNG whose header claims side x side pixels (1.6 gigapixels by default), beyond twice
    Pillow's MAX_IMAGE_PIXELS, so Image.open refuses it with DecompressionBombError."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grayscale
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(row * 4))
            + _png_chunk(b"IEND", b""))


def build_bad_folder(root, classes: int = 3, train_per_class: int = 12, val_per_class: int = 4,
                     size: int = 48) -> BadFolder:
    """An image folder at `root` (root/train/<class>/*, root/val/<class>/*) of synthetic shapes whose
    first training class also holds one file of each AWKWARD_KINDS and BROKEN_KINDS."""
    root = Path(root)
    spec = SynthSpec(train_per_class=train_per_class, val_per_class=val_per_class, size=size)
    names = list(CLASSES[:classes])
    folder = BadFolder(root, names)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label, name in enumerate(names):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                render(spec, split, label, index).save(root / split / name / f"{name}_{index:03d}.jpg", quality=90)
    target = root / "train" / names[0]
    picture = render(spec, "train", 0, 10_000)
    rng = np.random.default_rng(0)

    def awkward(kind: str, filename: str, data: bytes) -> None:
        (target / filename).write_bytes(data)
        folder.awkward[kind] = target / filename

    def broken(kind: str, filename: str, data: bytes) -> None:
        (target / filename).write_bytes(data)
        folder.broken[kind] = target / filename

    awkward("cmyk_jpeg", "cmyk.jpg", _jpeg_bytes(picture.convert("CMYK")))
    awkward("grayscale_jpeg", "gray.jpeg", _jpeg_bytes(picture.convert("L")))
    palette = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=0)
    awkward("palette_png_transparent", "palette.png", buffer.getvalue())
    buffer = io.BytesIO()
    rgba = picture.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(buffer, "PNG")
    awkward("rgba_png", "rgba.png", buffer.getvalue())
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    awkward("png_named_jpeg", "really_a_png.JPEG", buffer.getvalue())  # as n02105855_2933.JPEG in ImageNet
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture.convert("L"), dtype=np.uint16) * 257).save(buffer, "PNG")
    awkward("grayscale_16bit_png", "gray16.png", buffer.getvalue())
    awkward("uppercase_extension", "UPPER.JPG", _jpeg_bytes(picture))

    good = _jpeg_bytes(picture)
    broken("truncated_jpeg", "truncated.jpg", good[:len(good) // 2])
    corrupt = bytearray(good)
    scan = good.index(b"\xff\xda") + 16  # keep the headers, garble the entropy-coded scan data
    corrupt[scan:] = rng.integers(0, 256, len(corrupt) - scan, dtype=np.uint8).tobytes()
    broken("corrupt_jpeg", "corrupt.jpg", bytes(corrupt))
    broken("zero_byte", "empty.jpg", b"")
    broken("not_an_image", "page.jpg", b"<html><body>404 Not Found</body></html>\n")
    broken("decompression_bomb", "bomb.png", decompression_bomb_png())
    (target / "notes.txt").write_text("not listed: the extension is not an image's\n")

    folder.train_count = classes * train_per_class + len(folder.awkward) + len(folder.broken)
    folder.val_count = classes * val_per_class
    return folder
