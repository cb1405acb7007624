"""A whole training step (forward, loss, backward, SGD) on the trainer's model: the NumPy reference
on the host, both GPU faces and PyTorch on a GPU. The per-layer breakdown is `alexnet-cuda bench step`'s."""

import numpy as np
import pytest

import kernels
from benchmarks import step_bench

from .conftest import BATCH, ROUNDS

ARCHS = ["alexnet2012", "alexnet-owt"]


def _bench(benchmark, arch, face, sync):
    model = step_bench.trainer_model(arch, face)
    images, labels = step_bench.random_batch(face, arch, BATCH)
    before = {name: value.copy() for name, value in model.host_arrays("params").items()}  # SGD works in place
    steps = iter(range(10**9))
    losses = []

    def step():
        losses.append(step_bench.training_step(model, images, labels, next(steps)))  # ends in the loss read-back
        sync()

    benchmark.group = f"training step {arch}"
    benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _assert_trained(losses, ROUNDS + 1, before, model.host_arrays("params"))
    benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats.stats.median
    assert benchmark.extra_info["images_per_s"] > 0


def _assert_trained(losses, steps, before, after):
    """What was timed was whole training steps: one finite loss per call, and every parameter moved
    by SGD (the backward pass reached the first layer, the update reached every layer)."""
    assert len(losses) == steps and all(np.isfinite(losses)), losses
    unchanged = [name for name in before if np.array_equal(before[name], after[name])]
    assert not unchanged, f"parameters the timed steps never updated: {unchanged}"


@pytest.mark.parametrize("arch", ARCHS)
def test_step_reference(benchmark, arch):
    _bench(benchmark, arch, kernels.load("reference"), lambda: None)


@pytest.mark.gpu
@pytest.mark.parametrize("face_name", ["cuda", "numba"])
@pytest.mark.parametrize("arch", ARCHS)
def test_step_gpu(benchmark, arch, face_name):
    import cupy

    _bench(benchmark, arch, kernels.load(face_name), cupy.cuda.Device().synchronize)


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ARCHS)
def test_step_pytorch(benchmark, arch):
    from benchmarks import torch_models
    from benchmarks.vendor import torch_status

    torch, status = torch_status()
    if torch is None:
        pytest.skip(status)
    model = torch_models.build(torch, arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=step_bench.LR, momentum=step_bench.MOMENTUM,
                                weight_decay=step_bench.WEIGHT_DECAY)
    step = torch_models.training_step(torch, model, optimizer)
    size = 227 if arch == "alexnet2012" else 224
    images = torch.randn(BATCH, 3, size, size, device="cuda")
    labels = torch.randint(0, 1000, (BATCH,), device="cuda")
    before = {name: value.detach().cpu().numpy().copy() for name, value in model.named_parameters()}
    losses = []
    rounds = max(ROUNDS, 5)
    benchmark.group = f"training step {arch}"
    benchmark.pedantic(lambda: losses.append(step(images, labels)), rounds=rounds, iterations=1, warmup_rounds=2)
    _assert_trained(losses, rounds + 2, before,
                    {name: value.detach().cpu().numpy() for name, value in model.named_parameters()})
    benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats.stats.median
