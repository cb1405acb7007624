"""The loader benchmark runs end to end at a tiny size (speed is its output, never asserted here)."""

import argparse
import json

import pytest

from benchmarks import loader_bench as bench
from loaders.synthetic import SynthSpec, write_synthetic


def _arguments(*argv):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_benchmark_reports_all_three_paths_on_the_same_files(tmp_path, capsys):
    data = write_synthetic(tmp_path / "synth", SynthSpec(train_per_class=4, val_per_class=1, size=40))
    results = bench.run(_arguments("--data", str(data), "--images", "32", "--batch-size", "8", "--resize-size", "32",
                                   "--input-size", "24", "--workers", "2", "--repeats", "2", "--epoch-images", "32",
                                   "--min-seconds", "0"))
    json.dumps(results)  # what `alexnet-cuda bench loader --json` writes
    assert results["images"] == 32 and len(results["rounds"]) == 2
    for round_ in results["rounds"]:
        for key in ("jpeg", "packed"):
            # one epoch each (--min-seconds 0): all but its first batch is timed
            assert round_[key]["epochs"] == 1 and round_[key]["images"] == 32 - 8 and round_[key]["skipped"] == 0
    for key in ("jpeg", "packed"):
        assert results[key]["images_per_s"] > 0 and results[key]["target"] == bench.TARGETS[key]
        assert results[key]["met"] == (results[key]["ratio"] >= bench.TARGETS[key])
    printed = capsys.readouterr().out
    assert "baseline: 1 process" in printed and "JPEG folder" in printed and "packed" in printed


def test_generated_jpegs_look_like_photographs_to_the_decoder(tmp_path):
    root = bench.natural_jpegs(tmp_path, 3, size=(120, 90), classes=2)
    files = sorted((root / "train").rglob("*.jpg"))
    assert len(files) == 3 and len(list((root / "val").rglob("*.jpg"))) == 2
    # 1/f noise compresses like a photograph: far from flat (tiny files) and from white noise (huge)
    bytes_per_pixel = sum(path.stat().st_size for path in files) / (3 * 120 * 90)
    assert 0.2 < bytes_per_pixel < 1.5, bytes_per_pixel


def test_too_few_images_is_an_error():
    with pytest.raises(ValueError, match="at least two batches"):
        bench.run(_arguments("--images", "100", "--batch-size", "64"))
