"""The data loader's augmentation kernel in Numba: crop, mirror, PCA lighting and normalization.

    augment_crop(images, params, scale, bias, size) -> out     v1 (the only version)

kernels/reference/augment.py states the formula and holds the NumPy reference this kernel is tested
against; the argument checks are kernels.contract.check_augment_crop, the launch geometry
kernels.geometry.augment_grid, shared with the CUDA C face.
"""

from __future__ import annotations

from kernels.contract import check_augment_crop
from kernels.geometry import augment_grid
from kernels.numba.compiler import cuda, float32, int64
from kernels.numba.runtime import declare, empty, launch, xp


@cuda.jit
def augment_crop_kernel(images, params, scale, bias, out):
    """v1: out[o, c, y, x] = images[source, top + y, left + x', c]·scale[c] + bias[o, c], x' mirrored
    when flip.

    images (batch, R, R, 3) uint8, params (n, 4) int32 rows (source, top, left, flip), scale (3,),
    bias (n, 3), out (n, 3, S, S) (out). Block (bx, o): thread t covers output pixel
    p = bx·blockDim.x + t of output o, (y, x) = (p // S, p % S), all three channels.
    Preconditions (checked on the host): 0 <= source < batch, 0 <= top, left <= R − S.
    """
    size = out.shape[2]
    pixel = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    o = cuda.blockIdx.y
    if pixel >= size * size:
        return
    y = pixel // size
    x = pixel - y * size
    source = int64(params[o, 0])
    row = params[o, 1] + y
    column = params[o, 2] + (size - 1 - x if params[o, 3] != 0 else x)
    for c in range(3):
        out[o, c, y, x] = float32(images[source, row, column, c]) * scale[c] + bias[o, c]


def augment_crop_v1(images, params, scale, bias, size: int):
    n = check_augment_crop(xp, images, params, scale, bias, size)
    out = empty((n, 3, size, size))
    launch(augment_crop_kernel, *augment_grid(n, size), images, params, scale, bias, out)
    return out


augment_crop = augment_crop_v1
VERSIONS = {"augment": {1: augment_crop_v1}}

declare("augment", 1, augment_crop_kernel,
        "void(uint8[:, :, :, ::1], int32[:, ::1], float32[::1], float32[:, ::1], float32[:, :, :, ::1])")
