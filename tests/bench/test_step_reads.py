"""`bench step` times the step both ways: as the trainer runs it (nothing read back) and with the loss
and two top-k counts read back after every step, as the trainer used to."""

import numpy as np
import pytest

from benchmarks import step_bench
from kernels import reference
from tests.counting_face import CountingFace


def _tiny_batch(face, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((4, 3, 12, 12), dtype=np.float32)
    return face.to_device(images), face.to_device(rng.integers(0, 3, 4, dtype=np.int32))


@pytest.mark.parametrize(("read_back", "reads"), [(False, 0), (True, 3)])
def test_a_benchmarked_step_reads_back_only_when_asked(read_back, reads):
    face = CountingFace()
    model = step_bench.trainer_model("tiny", face, classes=3)
    images, labels = _tiny_batch(face)
    step_bench.training_step(model, images, labels, 0, read_back=read_back)
    assert len(face.reads) == reads, face.reads
    step_bench.wait_for_device(model)
    assert len(face.reads) == reads + 1


def test_both_ways_compute_the_same_steps():
    images, labels = _tiny_batch(reference, 1)
    quiet, reading = (step_bench.trainer_model("tiny", reference, classes=3) for _ in range(2))
    for step in range(3):
        assert step_bench.training_step(quiet, images, labels, step, read_back=False) is None
        assert isinstance(step_bench.training_step(reading, images, labels, step, read_back=True), float)
    for (key, a), (_, b) in zip(quiet.named_arrays("params"), reading.named_arrays("params"), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=key)


def test_the_result_and_the_table_show_both_ways():
    model = step_bench.trainer_model("tiny", reference, classes=3)
    images, labels = _tiny_batch(reference)
    timed = step_bench.bench_model(model, images, labels, gpu=False, steps=2, warmup=1, breakdown_steps=1)
    assert timed.ms_per_step > 0 and timed.read_every_step_ms > 0
    assert timed.spread >= 0 and timed.read_every_step_spread >= 0
    assert timed.images_per_s == pytest.approx(4 / (timed.ms_per_step / 1e3))
    timed.arch = "tiny"
    result = {"environment": {"date": "today", "commit": "abc", "cpu": "a CPU"}, "batch": 4, "steps": 2, "warmup": 1,
              "notes": [], "results": [timed.as_dict()]}
    text = step_bench.render(result)
    assert "ms/step reading every step" in text
    row = next(line for line in text.splitlines() if line.startswith("tiny"))
    assert f"{timed.read_every_step_ms:.1f}" in row and f"{timed.read_every_step_ms / timed.ms_per_step:.2f}" in row
