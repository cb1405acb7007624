"""The gpu path of the loader: decoded uint8 batches to the device, augmented there by a kernel.

Per batch: the squares are copied from the worker's shared-memory slot into pinned (page-locked)
host memory, so that the slot goes back to the workers at once; the pinned buffer goes to the
device on a stream of its own (cudaMemcpyAsync), and the compute stream (CuPy's current stream, the
trainer's) waits for that copy by an event, not the host; the face's augment_crop kernel then
writes the float32 batch. Two sets of buffers alternate, so batch k+1's copy can run while batch k
is still being used. Events keep the reuse safe:
- before the host refills pinned buffer i, it waits for the copy that last read it;
- before the copy stream refills device buffer i, it waits for the kernel that last read it.
"""

from __future__ import annotations

import numpy as np

from kernels.contract import check_augment_params
from loaders.augment import SCALE, CropPlan

BUFFERS = 2


def _pinned(shape, dtype):
    import cupy

    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    memory = cupy.cuda.alloc_pinned_memory(max(count * dtype.itemsize, 1))
    return np.frombuffer(memory, dtype=dtype, count=count).reshape(shape)


class _Buffers:
    """One set: pinned host staging and device arrays for a batch's images, params, bias and labels."""

    def __init__(self, cupy, batch: int, resize: int, outputs: int):
        shapes = {"images": ((batch, resize, resize, 3), np.uint8), "params": ((outputs, 4), np.int32),
                  "bias": ((outputs, 3), np.float32), "labels": ((batch,), np.int32)}
        self.host = {name: _pinned(shape, dtype) for name, (shape, dtype) in shapes.items()}
        self.device = {name: cupy.empty(shape, dtype) for name, (shape, dtype) in shapes.items()}
        self.copied = cupy.cuda.Event(disable_timing=True)  # the last copy out of `host` has finished
        self.consumed = cupy.cuda.Event(disable_timing=True)  # the last kernel reading `device` has finished
        self.used = False


class GpuAugmenter:
    """Turns (uint8 squares, plan, labels) on the host into CuPy (images, labels) on the device, with
    the augment_crop kernel of `face` (a GPU face module: kernels.cuda or kernels.numba)."""

    def __init__(self, face, batch_size: int, resize_size: int, input_size: int, crops_per_image: int):
        import cupy

        self.cupy = cupy
        self.augment_crop = face.augment_crop
        self.resize_size = resize_size
        self.copy_stream = cupy.cuda.Stream(non_blocking=True)
        self.buffers = [_Buffers(cupy, batch_size, resize_size, batch_size * crops_per_image) for _ in range(BUFFERS)]
        self.scale = cupy.asarray(SCALE)
        self.turn = 0

    def __call__(self, images: np.ndarray, plan: CropPlan, labels: np.ndarray):
        cupy = self.cupy
        count, outputs = len(images), len(plan)
        params = plan.params
        check_augment_params(params, count, self.resize_size, plan.size)
        buffers = self.buffers[self.turn]
        self.turn = (self.turn + 1) % BUFFERS
        if buffers.used:
            buffers.copied.synchronize()  # the host may now overwrite the pinned buffers
        host, device = buffers.host, buffers.device
        np.copyto(host["images"][:count], images)
        host["params"][:outputs] = params
        host["bias"][:outputs] = plan.bias
        host["labels"][:count] = labels
        with self.copy_stream:
            if buffers.used:
                self.copy_stream.wait_event(buffers.consumed)  # the device buffers are free again
            for name, rows in (("images", count), ("params", outputs), ("bias", outputs), ("labels", count)):
                source = host[name][:rows]
                device[name].data.copy_from_host_async(source.ctypes.data, source.nbytes, self.copy_stream)
            buffers.copied.record(self.copy_stream)
        compute = cupy.cuda.get_current_stream()
        compute.wait_event(buffers.copied)
        out = self.augment_crop(device["images"][:count], device["params"][:outputs], self.scale,
                                device["bias"][:outputs], plan.size)
        labels_out = device["labels"][:count].copy()
        buffers.consumed.record(compute)
        buffers.used = True
        return out, labels_out
