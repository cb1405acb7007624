"""Real small inputs for the pictures, made once per session: a two-epoch CPU run of alexnet-mini on
the project's synthetic shapes (with --plot, and a learning-rate drop after the first epoch), and
the CPU `bench kernels` and `bench step` JSON at batch 1."""

import contextlib
import io
import json
import shutil

import pytest

from alexnet_cuda.cli import main

RUN = ["--arch", "alexnet-mini", "--batch-size", "8", "--lr-schedule", "step", "--lr-step-epochs", "1", "--device",
       "cpu", "--no-progress", "--plot"]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A finished two-epoch run, trained one epoch at a time with --plot: {folder, metrics, curves
    after epoch 1 (bytes), records}."""
    root = tmp_path_factory.mktemp("plots-run")
    status, out, _ = run_cli("synth", str(root / "shapes"), "--train-per-class", "4", "--val-per-class", "2",
                             "--workers", "1", "--quiet")
    assert status == 0, out
    folder, metrics = root / "run", root / "run" / "metrics.jsonl"
    common = ["--data", str(root / "shapes"), "--checkpoint-dir", str(folder), "--metrics-file", str(metrics)]
    status, out, _ = run_cli("train", *RUN, *common, "--epochs", "1")
    assert status == 0, out
    after_first = (folder / "curves.png").read_bytes()
    # The same folder name as the run's, so that a picture of it carries the same label.
    first_checkpoint = root / "epoch-1" / folder.name / "last.npz"
    first_checkpoint.parent.mkdir(parents=True)
    shutil.copy(folder / "last.npz", first_checkpoint)
    status, out, _ = run_cli("train", "--resume", str(folder / "last.npz"), "--epochs", "2", "--no-progress", "--plot")
    assert status == 0, out
    return dict(folder=folder, metrics=metrics, first_curves=after_first, first_checkpoint=first_checkpoint,
                records=[json.loads(line) for line in metrics.read_text().splitlines()])


@pytest.fixture(scope="session")
def bench_results(tmp_path_factory):
    """(kernels.json, step.json) of the CPU benchmarks at batch 1 on alexnet-owt, through the CLI."""
    patcher = pytest.MonkeyPatch()
    patcher.setattr("kernels.gpu_probe.has_gpu", lambda: False)  # the CPU JSON, on any machine
    root = tmp_path_factory.mktemp("plots-bench")
    try:
        status, out, err = run_cli("bench", "kernels", "--arch", "alexnet-owt", "--batch", "1", "--op",
                                   "relu_forward", "--op", "conv2d_forward", "--op", "linear_forward", "--json",
                                   str(root / "kernels.json"))
        assert status == 0, out + err
        status, out, err = run_cli("bench", "step", "--arch", "alexnet-owt", "--batch", "1", "--steps", "1",
                                   "--warmup", "0", "--json", str(root / "step.json"))
        assert status == 0, out + err
    finally:
        patcher.undo()
    return root / "kernels.json", root / "step.json"
