"""Tests of the harness: benchmarks/ and `alexnet-cuda bench`/`inspect`."""
