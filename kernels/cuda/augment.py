"""The data loader's augmentation kernel in CUDA C (augment.cu), launched like the face's ops.

    augment_crop(images, params, scale, bias, size) -> out     v1 (the only version)

kernels/reference/augment.py states the formula and holds the NumPy reference; the argument checks
(device arrays here) are kernels.contract.check_augment_crop, the launch geometry
kernels.geometry.augment_grid, shared with the Numba face.
"""

from __future__ import annotations

from kernels.contract import check_augment_crop
from kernels.cuda.runtime import backend, declare, empty, i32, launch, require_int32_indexable
from kernels.geometry import augment_grid

AUGMENT = declare("augment", 1, "main", "augment.cu", "augment_crop_v1")


def augment_crop_v1(images, params, scale, bias, size: int):
    n = check_augment_crop(backend().xp, images, params, scale, bias, size)
    out = empty((n, 3, size, size))
    require_int32_indexable(out=out)
    launch(AUGMENT, *augment_grid(n, size), (images, params, scale, bias, out, i32(images.shape[1]), i32(size)))
    return out


augment_crop = augment_crop_v1
VERSIONS = {"augment": {1: augment_crop_v1}}
