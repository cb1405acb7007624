"""The step benchmark on the trainer's own model: instrumentation covers every layer, changes no
result, and leaves the model as it found it."""

import numpy as np
import pytest

from benchmarks import step_bench
from kernels import reference


def _mini(seed=0):
    return step_bench.trainer_model("alexnet-mini", reference, classes=10, seed=seed)


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, 3, 64, 64), dtype=np.float32), rng.integers(0, 10, 4, dtype=np.int32)


def test_breakdown_times_every_layer_and_leaves_the_model_untouched():
    model = _mini()
    images, labels = _batch()
    result = step_bench.bench_model(model, images, labels, gpu=False, steps=1, warmup=1, breakdown_steps=1)
    assert [layer["name"] for layer in result.layers] == [layer.name for layer in model.layers]
    conv1 = result.layers[0]
    assert conv1["forward_ms"] > 0 and conv1["backward_ms"] > 0
    assert result.sgd_ms > 0 and result.loss_ms > 0
    assert 0 < result.parts_ms <= result.breakdown_step_ms * 1.05
    assert result.images_per_s == pytest.approx(4 / (result.ms_per_step / 1e3))
    for layer in model.layers:
        assert "forward" not in vars(layer) and "backward" not in vars(layer)
    assert "sgd_step" not in vars(model)


def test_instrumented_steps_compute_what_plain_steps_compute():
    images, labels = _batch(1)
    plain, timed = _mini(), _mini()
    losses = [step_bench.training_step(plain, images, labels, step) for step in range(2)]
    instrumented = step_bench._Instrumented(timed, step_bench._Clock(gpu=False))
    try:
        timed_losses = [step_bench.training_step(timed, images, labels, step) for step in range(2)]
    finally:
        instrumented.restore()
    assert timed_losses == losses
    np.testing.assert_array_equal(plain.layers[0].params["w"], timed.layers[0].params["w"])


def test_cpu_run_and_text(monkeypatch):
    monkeypatch.setattr("kernels.gpu_probe.has_gpu", lambda: False)
    result = step_bench.run(archs=("alexnet-owt",), batch=1, steps=1, warmup=0, log=lambda message: None)
    (run,) = result["results"]
    assert run["face"] == "reference" and run["images_per_s"] > 0
    text = step_bench.render(result)
    assert "GPU numbers need a GPU" in text
    assert "alexnet-owt on reference" in text and "fc6" in text


@pytest.mark.gpu
def test_gpu_step_on_both_faces():
    result = step_bench.run(archs=("alexnet-owt",), batch=16, steps=2, warmup=1, log=lambda message: None)
    runs = {run["face"]: run for run in result["results"]}
    for face in ("cuda", "numba"):
        assert runs[face]["images_per_s"] > 0, runs[face].get("note")
        assert runs[face]["parts_ms"] > 0
