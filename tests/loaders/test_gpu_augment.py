"""The augment kernel in both GPU faces against the NumPy path, without a GPU: the Numba kernel in
the simulator, the CUDA C kernel on the cuda face's CPU emulator; both listed for the faces' compile
checks, the CUDA C one compiled here without spills; and, marked gpu, the loader's device path on a
real GPU."""

import numpy as np
import pytest

from kernels import contract
from kernels.testing import assert_matches
from loaders import augment


def _case(count, resize, size, ten_crop=False, train=True):
    rng = np.random.default_rng(count * 100 + size)
    images = rng.integers(0, 256, (count, resize, resize, 3), dtype=np.uint8)
    if train:
        plan = augment.train_plan(np.arange(count) * 7 + 3, seed=11, epoch=2, resize_size=resize, input_size=size)
    else:
        plan = augment.eval_plan(count, resize, size, ten_crop=ten_crop)
    return images, plan


# sizes: one partial block (5x5), several blocks with a partial last one (17x17 = 289 pixels)
CASES = {"train-5-of-9": (3, 9, 5, False, True), "train-17-of-20": (2, 20, 17, False, True),
         "ten-crop-4-of-7": (2, 7, 4, True, False)}


@pytest.mark.parametrize("case", CASES)
def test_numba_kernel_in_the_simulator_matches_numpy(case):
    from kernels.numba.mode import MODE
    from kernels.numba.runtime import poisoned_outputs

    if MODE != "simulator":
        pytest.skip("this test runs the kernel in Numba's CUDA simulator; the gpu test covers a GPU")
    from kernels.numba.augment import augment_crop

    images, plan = _case(*CASES[case])
    with poisoned_outputs():
        out = augment_crop(images, plan.params, plan.scale, plan.bias, plan.size)
    assert_matches(out, augment.apply_plan(images, plan), "float32_elementwise")


@pytest.mark.parametrize("case", CASES)
def test_cuda_c_kernel_on_the_emulator_matches_numpy(case):
    from kernels.cuda import runtime
    from kernels.cuda.augment import augment_crop
    from kernels.toolchain import emulator

    if not emulator.available():
        pytest.skip("the CUDA C emulator needs g++")
    images, plan = _case(*CASES[case])
    backend = emulator.EmulatorBackend()
    with runtime.use_backend(backend), runtime.poisoned_outputs(), runtime.checked_launches():
        out = augment_crop(backend.guarded(images), backend.guarded(plan.params), backend.guarded(plan.scale),
                           backend.guarded(plan.bias), plan.size)
    assert_matches(out, augment.apply_plan(images, plan), "float32_elementwise")


def test_argument_checks_name_the_problem():
    images, plan = _case(2, 9, 5)
    with pytest.raises(ValueError, match="params"):
        contract.check_augment_crop(np, images, plan.params.astype(np.int64), plan.scale, plan.bias, 5)
    with pytest.raises(ValueError, match="C-contiguous"):
        contract.check_augment_crop(np, images[:, ::2], plan.params, plan.scale, plan.bias, 3)
    with pytest.raises(ValueError, match="size"):
        contract.check_augment_crop(np, images, plan.params, plan.scale, plan.bias, 10)
    contract.check_augment_params(plan.params, 2, 9, 5)
    for column, value, message in ((0, 2, "source"), (1, 5, "corner"), (2, -1, "corner"), (3, 2, "flip")):
        params = plan.params.copy()
        params[0, column] = value
        with pytest.raises(ValueError, match=message):
            contract.check_augment_params(params, 2, 9, 5)


def test_both_faces_list_the_kernel_for_the_compile_checks():
    """tests/kernels/test_numba_compile.py compiles (and checks for spills) every target compile_targets()
    lists; tests/kernels/test_cuda_compile.py every .cu file."""
    import kernels.cuda
    import kernels.numba

    assert [t.kernel for t in kernels.numba.compile_targets() if t.op == "augment"] == ["augment_crop_kernel"]
    assert [t.name_expression for t in kernels.cuda.compile_targets() if t.op == "augment"] == ["augment_crop_v1"]


def test_cuda_c_kernel_compiles_for_sm_90_without_spills():
    from kernels.toolchain import nvrtc

    result = nvrtc.compile_file(nvrtc.SOURCE_DIR / "augment.cu", "sm_90", ["augment_crop_v1"])
    resources = result.resources_of("augment_crop_v1")
    assert resources.registers > 0 and not resources.spills and not resources.stack_frame_bytes


# ---- on a GPU ----

@pytest.fixture(scope="module")
def gpu_dataset(tmp_path_factory):
    import loaders
    from loaders.synthetic import SynthSpec, write_synthetic

    root = write_synthetic(tmp_path_factory.mktemp("gpu") / "synth", SynthSpec(train_per_class=13, val_per_class=3,
                                                                                 size=64))
    return loaders.open_dataset(root)


@pytest.mark.gpu
@pytest.mark.parametrize("face", ["cuda", "numba"])
@pytest.mark.parametrize("mode", ["train", "ten_crop"])
def test_the_device_path_gives_the_numpy_batches(gpu_dataset, face, mode):
    import cupy

    import kernels
    import loaders

    train = mode == "train"
    split = gpu_dataset.split("train" if train else "val")
    options = dict(batch_size=16, input_size=56, resize_size=64, train=train, seed=3, epoch=1,
                   ten_crop=not train, workers=2)
    with loaders.make_loader(split, device="cpu", **options) as loader:
        on_host = list(loader)
    with loaders.make_loader(split, device="gpu", face=kernels.load(face), **options) as loader:
        on_device = list(loader)
    assert len(on_device) == len(on_host) > 2  # more batches than buffer sets: the buffers are reused
    for host_batch, device_batch in zip(on_host, on_device, strict=True):
        assert isinstance(device_batch.images, cupy.ndarray) and device_batch.images.flags.c_contiguous
        assert device_batch.images.dtype == cupy.float32 and device_batch.labels.dtype == cupy.int32
        assert_matches(device_batch.images, host_batch.images, "float32_elementwise")
        np.testing.assert_array_equal(cupy.asnumpy(device_batch.labels), host_batch.labels)


@pytest.mark.gpu
def test_the_device_path_leaves_the_compute_stream_to_the_caller(gpu_dataset):
    """Batches come back on the caller's current stream: work queued after them on that stream sees
    them complete, on a non-default stream too."""
    import cupy

    import kernels
    import loaders

    split = gpu_dataset.split("train")
    options = dict(batch_size=16, input_size=56, resize_size=64, train=True, seed=0, epoch=0)
    with loaders.make_loader(split, device="cpu", **options) as loader:
        expected = [float(batch.images.astype(np.float64).sum()) for batch in loader]
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream, loaders.make_loader(split, device="gpu", face=kernels.load("cuda"), **options) as loader:
        sums = [batch.images.astype(cupy.float64).sum() for batch in loader]
        stream.synchronize()
    np.testing.assert_allclose([float(s) for s in sums], expected, rtol=1e-5)
