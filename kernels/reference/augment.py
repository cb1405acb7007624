"""augment_crop: the data loader's one kernel outside the op contract, in NumPy: the oracle of the
GPU faces' kernels (kernels/numba/augment.py, kernels/cuda/augment.cu) and the loader's CPU path.

    out[o, c, y, x] = images[source, top + y, left + x', c] · scale[c] + bias[o, c]
    x' = S − 1 − x when flip, else x;  (source, top, left, flip) = params[o]

images uint8 (batch, R, R, 3) holds decoded squares, interleaved RGB; params int32 (n, 4); scale
float32 (3,); bias float32 (n, 3); out float32 (n, 3, S, S). loaders/augment.py forms scale and
bias so that this one multiply-add maps pixels to [0, 1], adds the PCA lighting shift and
normalizes by the ImageNet mean and std.

Every face checks its arguments with kernels.contract.check_augment_crop; the GPU faces launch over
kernels.geometry.augment_grid. The ranges inside params cannot be read on a GPU without a
synchronization; kernels.contract.check_augment_params checks them on the host, before the transfer
(loaders/gpu_augment.py calls it).
"""

from __future__ import annotations

import numpy as np

from kernels.contract import check_augment_crop


def augment_crop(images, params, scale, bias, size: int, out=None) -> np.ndarray:
    """The NumPy face: a loop over outputs, each a strided view of its source, one multiply (uint8 →
    float32 is exact, then one rounding) and one add (a second rounding; the GPU faces fuse both
    into one FMA, which the tolerance "float32_elementwise" covers)."""
    n = check_augment_crop(np, images, params, scale, bias, size)
    if out is None:
        out = np.empty((n, 3, size, size), dtype=np.float32)
    channel_scale = scale.reshape(3, 1, 1)
    for o, (source, top, left, flip) in enumerate(params.tolist()):
        crop = images[source, top:top + size, left:left + size]
        if flip:
            crop = crop[:, ::-1]
        np.multiply(crop.transpose(2, 0, 1), channel_scale, out=out[o], dtype=np.float32)
        out[o] += bias[o].reshape(3, 1, 1)
    return out
