"""Decoding: awkward files come out RGB, broken ones are skipped and named, never a crash."""

import numpy as np
import pytest
from PIL import Image

import loaders
from loaders.decode import DecodeFailure, decode_square
from tests.images import AWKWARD_KINDS, BROKEN_KINDS, build_bad_folder


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    return build_bad_folder(tmp_path_factory.mktemp("bad"))


def test_the_builder_covers_every_kind(bad_folder):
    assert sorted(bad_folder.awkward) == sorted(AWKWARD_KINDS)
    assert sorted(bad_folder.broken) == sorted(BROKEN_KINDS)


def test_awkward_files_decode_to_rgb_close_to_the_picture(bad_folder):
    reference = decode_square(str(bad_folder.awkward["uppercase_extension"]), 32).astype(float)
    for kind, path in bad_folder.awkward.items():
        image = decode_square(str(path), 32)
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8, kind
        error = np.abs(image.astype(float) - reference).mean()
        if kind.startswith("grayscale"):
            # gray has equal channels, and is the picture's luma
            assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all(), kind
            luma = reference @ np.array([0.299, 0.587, 0.114])
            assert np.abs(image[..., 0] - luma).mean() < 6, kind
        elif kind == "palette_png_transparent":
            assert error < 20, (kind, error)  # 16 colours
        else:
            assert error < 6, (kind, error)


@pytest.mark.parametrize("kind", sorted(BROKEN_KINDS))
def test_broken_files_raise_decode_failure_with_a_reason(bad_folder, kind):
    with pytest.raises(DecodeFailure) as info:
        decode_square(str(bad_folder.broken[kind]), 32)
    assert BROKEN_KINDS[kind] in str(info.value)


def test_shorter_side_to_size_then_centre_square(tmp_path):
    # 300x100: left, centre and right thirds red, green, blue; the centre square is the green third
    pixels = np.zeros((100, 300, 3), np.uint8)
    pixels[:, :100, 0] = pixels[:, 100:200, 1] = pixels[:, 200:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    square = decode_square(str(tmp_path / "wide.png"), 50)
    assert square.shape == (50, 50, 3)
    assert (square[:, 2:-2, 1] > 240).all() and (square[:, 2:-2, 0] < 15).all() and (square[:, 2:-2, 2] < 15).all()
    Image.fromarray(pixels.transpose(1, 0, 2).copy()).save(tmp_path / "tall.png")  # 100 wide, 300 high
    square = decode_square(str(tmp_path / "tall.png"), 50)
    assert (square[2:-2, :, 1] > 240).all()


def test_jpeg_draft_mode_decodes_large_images_close_to_a_full_decode(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (16, 24, 3)), np.ones((64, 64, 1))).astype(np.uint8)  # 1024 x 1536
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=95)
    fast = decode_square(str(tmp_path / "big.jpg"), 64).astype(float)
    with Image.open(tmp_path / "big.jpg") as image:
        full = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR,
                                                      box=(256, 0, 1280, 1024)), dtype=float)
    assert np.abs(fast - full).mean() < 4


def test_a_loader_over_the_bad_folder_runs_to_the_end_and_names_the_broken_files(bad_folder):
    dataset = loaders.open_dataset(bad_folder.root)
    train = dataset.split("train")
    assert len(train) == bad_folder.train_count
    for workers in (0, 2):
        seen = 0
        with loaders.make_loader(train, batch_size=8, input_size=28, resize_size=32, train=False, seed=0, epoch=0,
                                 workers=workers) as loader:
            for images, labels in loader:
                assert images.shape == (len(labels), 3, 28, 28) and np.isfinite(images).all()
                seen += len(labels)
        assert seen == bad_folder.train_count - len(BROKEN_KINDS)
        named = {path: reason for path, reason in loader.skipped}
        assert sorted(named) == sorted(str(path) for path in bad_folder.broken.values())
        for kind, path in bad_folder.broken.items():
            assert BROKEN_KINDS[kind] in named[str(path)]
        summary = loaders.skipped_summary(loader.skipped)
        assert summary.startswith(f"{len(BROKEN_KINDS)} image(s) skipped") and str(bad_folder.broken["zero_byte"]) in summary


def test_a_split_where_nothing_decodes_stops_with_a_data_error(tmp_path):
    for split in ("train", "val"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            for index in range(5):
                (tmp_path / split / name / f"{index}.jpg").write_bytes(b"GIF89a? not really")
    train = loaders.open_dataset(tmp_path).split("train")
    loader = loaders.make_loader(train, batch_size=4, input_size=8, resize_size=8, train=True, seed=0, epoch=0)
    with pytest.raises(loaders.DataError) as info:
        list(loader)
    assert "could be decoded" in str(info.value) and str(tmp_path) in str(info.value)
