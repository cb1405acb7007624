"""Data-parallel training (alexnet_cuda.distributed): shards, dropout per rank, and real
`mpiexec -n 2 alexnet-cuda train` runs against one process.

The runs spawn processes on a small synthetic folder (shapes at 16 pixels) with --arch tiny. The MPI
tests skip, saying "MPI runtime cannot start", only where `mpiexec -n 2` cannot start two ranks of
this Python with mpi4py (the `dist` extra, which the `test` extra includes, brings both).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import loaders
from alexnet_cuda import checkpoint
from alexnet_cuda.archs import TINY
from alexnet_cuda.distributed import LAUNCHER_VARIABLES
from alexnet_cuda.model import RANK_SHIFT, Model
from benchmarks.dist_bench import mpiexec as find_mpiexec
from kernels import reference
from loaders.synthetic import SynthSpec, write_synthetic
from tests.training.support import write_image_folder

ROOT = Path(__file__).resolve().parents[2]
RANKS = 2
RUN_SECONDS = 180  # one small run takes 2 to 25 s on 2 busy cores; past this it hangs
# 2 ranks against 1 process, 20 steps, dropout off: the same arithmetic but for the order of the sums
# (each rank sums the gradient over its share, then the ranks' sums are added, where one process sums
# 32 images at once; with 3 ranks the scale by 11 or 10 images and back rounds too). Measured, as the
# largest difference over an array's largest magnitude: 2.6 float32 epsilons (2 ranks, the built-in
# shapes), 3.5 and 3.6 (2 and 3 ranks, 2,000 shapes at 16 pixels). Allowed: 32 epsilons, so that
# float32 reassociation passes and a wrong shard (other images) or scale (a gradient R times too
# large, off by far more than rounding) fails.
TOLERANCE = 32 * np.finfo(np.float32).eps


def _environment(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in ("DROPOUT", "KILL_RANK", "KILL_AT_STEP", "FAIL_RANK", "FAIL_AT_STEP"):
        env.pop(name, None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def mpiexec():
    launcher = find_mpiexec()
    if launcher is None:
        pytest.skip("MPI runtime cannot start: no mpiexec beside this Python or on PATH (install the dist extra)")
    probe = "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2; MPI.COMM_WORLD.Barrier()"
    try:
        done = subprocess.run([launcher, "-n", str(RANKS), sys.executable, "-c", probe], capture_output=True,
                              text=True, timeout=60, env=_environment())
    except subprocess.TimeoutExpired:
        pytest.skip(f"MPI runtime cannot start: `{launcher} -n 2` did not finish a barrier in 60 s")
    if done.returncode != 0:
        pytest.skip(f"MPI runtime cannot start: `{launcher} -n 2 python` failed: {done.stderr.strip()[-400:]}")
    return launcher


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The synthetic shapes, 80 train and 10 val images a class, at 16 pixels."""
    return write_synthetic(tmp_path_factory.mktemp("dist") / "synth",
                           SynthSpec(train_per_class=80, val_per_class=10, size=16), workers=1, progress=False)


def _train(launcher, ranks, data, folder, *flags, env=None, device="cpu"):
    """`alexnet-cuda train` (through tests/training/dist_driver.py) on `ranks` ranks, or one plain
    process with ranks=None. Returns (completed process, seconds)."""
    command = [sys.executable, "-m", "tests.training.dist_driver", "train", "--data", str(data), "--arch", "tiny",
               "--device", device, "--no-progress", "--checkpoint-dir", str(folder), *flags]
    if ranks is not None:
        command = [launcher, "-n", str(ranks), *command]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_SECONDS, env=env or _environment(),
                          cwd=ROOT)
    return done, time.perf_counter() - started


def _assert_same_state(expected: Path, actual: Path):
    a, b = checkpoint.load(expected), checkpoint.load(actual)
    assert a.meta["progress"] == b.meta["progress"]
    for kind in ("params", "velocities"):
        left, right = getattr(a, kind), getattr(b, kind)
        assert left.keys() == right.keys()
        for key in left:
            scale = float(np.abs(left[key]).max())
            difference = float(np.abs(left[key] - right[key]).max())
            assert difference <= TOLERANCE * scale, (kind, key, difference, scale)


# --- in process -------------------------------------------------------------------------------------


def _masks(model, step):
    model.set_step(step)
    return [reference.dropout_forward(np.ones((4, 10), np.float32), d.p, d.seed, d.offset)[1] for d in model.dropouts]


def test_dropout_masks_differ_by_rank_and_rank_zero_keeps_the_single_process_masks():
    single, rank0, rank1 = (Model(TINY, 10, reference, seed=3, **kw) for kw in ({}, {"rank": 0}, {"rank": 1}))
    for step in (0, 7):
        offsets = [step * len(single.dropouts) + index for index in range(len(single.dropouts))]
        single.set_step(step)
        assert [d.offset for d in single.dropouts] == offsets  # the counters of every existing run
        for a, b in zip(_masks(single, step), _masks(rank0, step), strict=True):
            assert np.array_equal(a, b)
        for a, b in zip(_masks(rank0, step), _masks(rank1, step), strict=True):
            assert not np.array_equal(a, b)
        rank1.set_step(step)
        assert [d.offset for d in rank1.dropouts] == [(1 << RANK_SHIFT) + offset for offset in offsets]
    again = Model(TINY, 10, reference, seed=3, rank=1)
    assert all(np.array_equal(a, b) for a, b in zip(_masks(again, 7), _masks(rank1, 7), strict=True))
    with pytest.raises(ValueError, match="rank 70000"):
        Model(TINY, 10, reference, rank=70000)


@pytest.mark.parametrize("ranks", [2, 3])
def test_the_shards_of_a_global_batch_are_the_batch(shapes, ranks):
    """Rank r's part of batch k, joined over the ranks in rank order, is batch k of one process
    (images, augmentation and labels), in training (from a resumed batch on) and in validation."""
    dataset = loaders.open_dataset(shapes)
    for split, train in (("train", True), ("val", False)):
        options = dict(batch_size=32, input_size=12, resize_size=12, train=train, seed=5, epoch=1,
                       start_batch=3 if train else 0)
        with loaders.make_loader(dataset.split(split), **options) as loader:
            whole = list(loader)
        parts = []
        for rank in range(ranks):
            with loaders.make_loader(dataset.split(split), shard=(rank, ranks), **options) as loader:
                parts.append(list(loader))
        assert [len(part) for part in parts] == [len(whole)] * ranks
        for k, batch in enumerate(whole):
            assert all(part[k].number == batch.number for part in parts)
            sizes = [len(part[k].labels) for part in parts]
            assert max(sizes) - min(sizes) <= 1
            assert np.array_equal(np.concatenate([part[k].labels for part in parts]), batch.labels)
            assert np.array_equal(np.concatenate([part[k].images for part in parts]), batch.images)
    with pytest.raises(ValueError, match="batch_size 2 is smaller than the 3 ranks"):
        loaders.make_loader(dataset.split("train"), batch_size=2, input_size=12, resize_size=12, train=True, seed=0,
                            epoch=0, shard=(0, 3))


def test_one_process_without_mpiexec_never_imports_mpi4py(shapes, tmp_path):
    script = ("import sys\nfrom alexnet_cuda.cli import main\nstatus = main(sys.argv[1:])\n"
              "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'\nsys.exit(status)")
    command = [sys.executable, "-c", script, "train", "--data", str(shapes), "--arch", "tiny", "--device", "cpu",
               "--no-progress", "--batch-size", "32", "--max-steps", "2", "--checkpoint-dir", str(tmp_path / "run")]
    env = _environment()
    for name in LAUNCHER_VARIABLES:
        env.pop(name, None)
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_SECONDS, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ranks            1 (one process)" in done.stdout
    assert checkpoint.load(tmp_path / "run" / "last.npz").meta["ranks"] == 1


# --- under mpiexec ----------------------------------------------------------------------------------


STEPS_OF_32 = ("--batch-size", "32", "--max-steps", "20", "--checkpoint-every", "5")


@pytest.fixture(scope="module")
def one_process(mpiexec, shapes, tmp_path_factory):
    """last.npz of 20 steps at batch 32, dropout off, in one process (no mpiexec)."""
    folder = tmp_path_factory.mktemp("one") / "run"
    single, _ = _train(mpiexec, None, shapes, folder, *STEPS_OF_32, env=_environment(DROPOUT="off"))
    assert single.returncode == 0, single.stdout + single.stderr
    return folder / "last.npz"


def test_two_ranks_take_the_steps_of_one_process_and_resume_on_either(mpiexec, shapes, one_process, tmp_path):
    """Dropout off, global batch 32, 20 steps: 2 ranks end with one process's weights (to float32
    rounding); a run stopped at step 10 continues to the same weights on the other rank count."""
    env = _environment(DROPOUT="off")
    pair, seconds_pair = _train(mpiexec, RANKS, shapes, tmp_path / "two", *STEPS_OF_32, env=env)
    assert pair.returncode == 0, pair.stdout + pair.stderr
    assert "ranks            2 (mpiexec)" in pair.stdout and pair.stdout.count("resolved configuration") == 1
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == ["best.npz", "last.npz"]
    _assert_same_state(one_process, tmp_path / "two" / "last.npz")
    assert checkpoint.load(tmp_path / "two" / "last.npz").meta["ranks"] == RANKS

    half = ("--batch-size", "32", "--max-steps", "10")
    for first, then, name in ((RANKS, None, "two-then-one"), (None, RANKS, "one-then-two")):
        folder = tmp_path / name
        started, _ = _train(mpiexec, first, shapes, folder, *half, env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        resumed, _ = _train(mpiexec, then, shapes, folder, "--resume", str(folder / "last.npz"), "--max-steps", "20",
                            env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        written, continued = (RANKS, 1) if first else (1, RANKS)
        assert f"written by {written} rank(s), continued on {continued}" in resumed.stdout
        _assert_same_state(one_process, folder / "last.npz")
    print(f"20 steps on {RANKS} ranks: {seconds_pair:.1f} s (wall, with start-up)")


def test_three_ranks_with_uneven_shares_take_the_same_steps(mpiexec, shapes, one_process, tmp_path):
    """32 images on 3 ranks: shares of 11, 11 and 10, each rank's gradient weighted by its count."""
    run, _ = _train(mpiexec, 3, shapes, tmp_path / "three", *STEPS_OF_32, env=_environment(DROPOUT="off"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "32 in all, 10 or 11 per rank" in run.stdout
    _assert_same_state(one_process, tmp_path / "three" / "last.npz")


def test_a_share_that_fails_to_decode_takes_part_with_nothing(mpiexec, tmp_path):
    """Global batch 2 on 2 ranks, one image a rank; two train files are damaged, so at their batches
    one rank has no image. It still takes the step (the loader yields an empty part) and adds nothing,
    and the weights follow one process's, whose batch there holds the one good image."""
    data = write_image_folder(tmp_path / "data", classes=3, train_per_class=8, val_per_class=2)
    for damaged in sorted((data / "train").rglob("*.png"))[::11][:2]:
        damaged.write_bytes(b"not an image")
    env = _environment(DROPOUT="off")
    flags = ("--batch-size", "2", "--epochs", "1")
    single, _ = _train(mpiexec, None, data, tmp_path / "one", *flags, env=env)
    assert single.returncode == 0, single.stdout + single.stderr
    pair, _ = _train(mpiexec, RANKS, data, tmp_path / "two", *flags, env=env)
    assert pair.returncode == 0, pair.stdout + pair.stderr
    assert "2 images skipped" in pair.stdout, pair.stdout  # the ranks' skips, summed
    _assert_same_state(tmp_path / "one" / "last.npz", tmp_path / "two" / "last.npz")
    dataset = loaders.open_dataset(data)
    parts = [list(loaders.make_loader(dataset.split("train"), batch_size=2, input_size=12, resize_size=12,
                                      train=True, seed=0, epoch=0, shard=(rank, RANKS))) for rank in range(RANKS)]
    assert [len(part) for part in parts] == [12, 12]
    empty = [batch for part in parts for batch in part if batch.images is None]
    assert len(empty) == 2 and all(len(batch.labels) == 0 for batch in empty)


def test_two_ranks_with_dropout_learn_the_shapes(mpiexec, tmp_path):
    data = write_synthetic(tmp_path / "synth", SynthSpec(train_per_class=200, val_per_class=40, size=16), workers=1,
                           progress=False)
    run, seconds = _train(mpiexec, RANKS, data, tmp_path / "run", "--epochs", "4", "--lr", "0.05",
                          "--metrics-file", str(tmp_path / "metrics.jsonl"))
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and records[-1]["train_images"] == 2000 // 16 * 16
    assert records[-1]["val_images"] == 400  # the ranks' validation shards, summed
    # Chance is 10% top-1 and a loss of ln 10 = 2.303; measured after 4 epochs: 21.0% and 2.030.
    assert records[-1]["val_top1"] >= 0.15, records
    assert records[-1]["val_loss"] <= records[0]["val_loss"] - 0.15, records
    print(f"4 epochs of tiny on {RANKS} ranks: {seconds:.1f} s")


def test_a_killed_rank_takes_the_job_down_and_last_npz_stays_whole(mpiexec, shapes, tmp_path):
    folder = tmp_path / "run"
    env = _environment(KILL_RANK="1", KILL_AT_STEP="13")
    run, seconds = _train(mpiexec, RANKS, shapes, folder, "--batch-size", "16", "--checkpoint-every", "5", env=env)
    assert run.returncode != 0
    assert "killed" in (run.stdout + run.stderr).lower(), run.stdout + run.stderr
    assert seconds < 60, seconds
    assert checkpoint.saved_step(folder / "last.npz") == 10
    assert checkpoint.load(folder / "last.npz").meta["progress"]["step"] == 10


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(child) for child in children.read_text().split()] if children.exists() else []
    return found + [grandchild for child in found for grandchild in _descendants(child)]


def _rank_pid(launcher_pid: int, rank: int) -> int | None:
    """The pid of the training process of `rank` among mpiexec's descendants (its PMI_RANK)."""
    for pid in _descendants(launcher_pid):
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in environment and b"dist_driver" in command:
            return pid
    return None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds a rank's process through /proc (Linux)")
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(mpiexec, shapes, tmp_path):
    """Only rank 1 is signalled: the ranks agree after every step, so both stop after the same one,
    rank 0 writes it, and the job exits with 143 (128 + SIGTERM) saying how to resume."""
    folder = tmp_path / "run"
    command = [mpiexec, "-n", str(RANKS), sys.executable, "-m", "tests.training.dist_driver", "train", "--data",
               str(shapes), "--arch", "tiny", "--device", "cpu", "--no-progress", "--checkpoint-dir", str(folder),
               "--batch-size", "8", "--epochs", "50", "--checkpoint-every", "5"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_environment(),
                           cwd=ROOT)
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while not (folder / "last.npz").exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        rank1 = _rank_pid(job.pid, 1)
        assert rank1 is not None and job.poll() is None
        os.kill(rank1, signal.SIGTERM)
        output, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 128 + signal.SIGTERM, output
    stopped = re.search(r"SIGTERM: stopped after step (\d+) ", output)
    assert stopped, output
    assert checkpoint.saved_step(folder / "last.npz") == int(stopped.group(1))


def test_a_rank_that_fails_says_why_and_ends_every_rank(mpiexec, shapes, tmp_path):
    folder = tmp_path / "run"
    env = _environment(FAIL_RANK="1", FAIL_AT_STEP="8")
    run, seconds = _train(mpiexec, RANKS, shapes, folder, "--batch-size", "16", "--checkpoint-every", "5", env=env)
    assert run.returncode != 0
    assert "error on rank 1 of 2: planted failure at step 8; ending every rank" in run.stderr, run.stderr
    assert seconds < 60, seconds
    assert checkpoint.saved_step(folder / "last.npz") == 5


def test_bench_step_ranks_reports_the_all_reduce_share(mpiexec):
    from benchmarks import dist_bench

    result = dist_bench.run(RANKS, ("tiny",), batch=8, steps=2, warmup=1, timeout=RUN_SECONDS)
    assert result["ranks"] == RANKS and result["batch"] == 8
    [row] = result["results"]
    params = Model(TINY, 1000, reference).parameter_count()
    assert row["buffer_mb"] == pytest.approx((params + 3) * 4 / 1e6)
    assert 0 < row["all_reduce_ms"] < row["step_ms"]
    assert row["all_reduce_share"] == pytest.approx(row["all_reduce_ms"] / row["step_ms"])
    text = dist_bench.render(result)
    assert "all-reduce share" in text and "tiny" in text


def test_bench_step_ranks_refuses_what_it_cannot_time(capsys):
    from alexnet_cuda.cli import main

    assert main(["bench", "step", "--ranks", "1"]) == 2
    assert "--ranks 1: a data-parallel step needs 2 ranks or more" in capsys.readouterr().err
    assert main(["bench", "step", "--ranks", "4", "--batch", "2"]) == 2
    assert "--batch 2 is the global batch of 4 ranks" in capsys.readouterr().err


# --- one rank in this process (MPI's singleton start, no mpiexec) -----------------------------------


def _one_rank_group(face, device):
    try:
        from mpi4py import MPI
    except ImportError as error:
        pytest.skip(f"MPI runtime cannot start: mpi4py cannot be imported ({error}); install the dist extra")
    from alexnet_cuda.distributed import Group

    return Group(MPI.COMM_WORLD, face, device)


def _step_alone_and_through(group, face):
    """One tiny step at batch 8 without a group and through the one-rank group: (models, losses, count)."""
    rng = np.random.default_rng(4)
    images = face.to_device(rng.standard_normal((8, 3, 12, 12), dtype=np.float32))
    labels = face.to_device(rng.integers(0, 10, 8, dtype=np.int32))
    models, losses, count = [], [], None
    for through in (None, group):
        model = Model(TINY, 10, face, seed=2)
        model.set_step(0)
        loss, probs = model.loss(model.forward(images, training=True), labels)
        model.backward()
        if through is not None:
            loss, _, count = through.sum_step(model.layers, loss, 0, 8)
        model.sgd_step(0.05, 0.9, 5e-4)
        models.append(model)
        losses.append(float(face.to_host(loss)))
    return models, losses, float(face.to_host(count))


def _assert_one_rank_group_changes_nothing(face, device):
    group = _one_rank_group(face, device)
    assert (group.rank, group.size, group.is_root) == (0, 1, True)
    (alone, through), (loss_alone, loss_through), count = _step_alone_and_through(group, face)
    assert count == 8
    # The sum of one rank is its own gradient times 8, then divided by 8: powers of two, exact.
    assert loss_through == pytest.approx(loss_alone, rel=1e-7)
    for (key, a), (_, b) in zip(alone.named_arrays("params"), through.named_arrays("params"), strict=True):
        assert np.array_equal(face.to_host(a), face.to_host(b)), key
    assert group.reduce_seconds > 0
    return group


def test_a_one_rank_group_takes_the_single_process_step():
    from alexnet_cuda.distributed import MpiReducer

    group = _assert_one_rank_group_changes_nothing(reference, "cpu")
    assert isinstance(group.reducer, MpiReducer)
    assert group.sum_host([1.5, 2.0]).tolist() == [1.5, 2.0]


@pytest.mark.gpu
def test_a_one_rank_nccl_communicator_takes_the_single_process_step():
    """The NCCL path on the one GPU: the communicator (its id broadcast over MPI), the all-reduce on
    the compute stream, the step through it equal to the step without."""
    import cupy

    import kernels
    from alexnet_cuda.distributed import NcclReducer

    face = kernels.load("cuda")
    group = _assert_one_rank_group_changes_nothing(face, "gpu")
    assert isinstance(group.reducer, NcclReducer)
    buffer = cupy.arange(5, dtype=cupy.float32)
    group.reducer.all_reduce(buffer)
    assert cupy.asnumpy(buffer).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match="one C-contiguous float32 buffer"):
        group.reducer.all_reduce(cupy.zeros(4, dtype=cupy.float64))


@pytest.mark.gpu
def test_one_rank_under_mpiexec_trains_through_nccl_as_one_process(mpiexec, shapes, tmp_path):
    """The whole launch on the GPU: `mpiexec -n 1 ... --device gpu` (group, NCCL communicator, the
    sharded loader's GPU augmentation) ends 8 steps with the weights of the same run without mpiexec."""
    flags = ("--batch-size", "16", "--max-steps", "8")
    env = _environment(DROPOUT="off")
    alone, _ = _train(mpiexec, None, shapes, tmp_path / "alone", *flags, env=env, device="gpu")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    ranked, _ = _train(mpiexec, 1, shapes, tmp_path / "ranked", *flags, env=env, device="gpu")
    assert ranked.returncode == 0, ranked.stdout + ranked.stderr
    assert "gradients summed by NCCL all-reduce" in ranked.stdout
    _assert_same_state(tmp_path / "alone" / "last.npz", tmp_path / "ranked" / "last.npz")
