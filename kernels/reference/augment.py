"""augment_crop: the data loader's one kernel outside the op contract, described once for all faces.

    out[o, c, y, x] = images[source, top + y, left + x', c] · scale[c] + bias[o, c]
    x' = S − 1 − x when flip, else x;  (source, top, left, flip) = params[o]

images uint8 (batch, R, R, 3) holds decoded squares, interleaved RGB; params int32 (n, 4); scale
float32 (3,); bias float32 (n, 3); out float32 (n, 3, S, S). loaders/augment.py forms scale and
bias so that this one multiply-add maps pixels to [0, 1], adds the PCA lighting shift and
normalizes by the ImageNet mean and std.

Faces: `augment_crop_reference` here (NumPy), kernels/numba/augment.py, kernels/cuda/augment.cu.
All check their arguments with `check_arguments` and launch over `grid`. The ranges inside params
cannot be read on a GPU without a synchronization; `check_params` checks them on the host, before
the transfer (loaders/device.py calls it).
"""

from __future__ import annotations

import numpy as np

from kernels.geometry import THREADS_PER_BLOCK, ceil_div

MAX_OUTPUTS = 65_535  # the y extent of the grid


def check_arguments(xp, images, params, scale, bias, size: int) -> int:
    """Shapes, dtypes and contiguity of augment_crop's arguments (arrays of module `xp`); returns n."""
    expected = [
        ("images", images, np.uint8, 4), ("params", params, np.int32, 2), ("scale", scale, np.float32, 1),
        ("bias", bias, np.float32, 2),
    ]
    for name, array, dtype, rank in expected:
        if not isinstance(array, xp.ndarray) or array.dtype != dtype or array.ndim != rank:
            raise ValueError(f"augment_crop: {name} must be a {rank}-D {np.dtype(dtype).name} {xp.__name__} array, "
                             f"got {type(array).__name__} {getattr(array, 'dtype', '')} {getattr(array, 'shape', '')}")
        if not array.flags.c_contiguous:
            raise ValueError(f"augment_crop: {name} must be C-contiguous")
    n = params.shape[0]
    if images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"augment_crop: images must be (batch, R, R, 3), got {images.shape}")
    if params.shape != (n, 4) or bias.shape != (n, 3) or scale.shape != (3,):
        raise ValueError(f"augment_crop: params (n, 4), bias (n, 3) and scale (3,) expected, got {params.shape}, "
                         f"{bias.shape} and {scale.shape}")
    if not 1 <= size <= images.shape[1]:
        raise ValueError(f"augment_crop: size {size} must lie in [1, {images.shape[1]}]")
    if not 1 <= n <= MAX_OUTPUTS:
        raise ValueError(f"augment_crop: {n} outputs; a launch makes 1 to {MAX_OUTPUTS}")
    return n


def check_params(params: np.ndarray, batch: int, resize: int, size: int) -> None:
    """The ranges the kernels rely on, on a host copy of params: every read stays inside images."""
    source, top, left, flip = (params[:, k] for k in range(4))
    problems = []
    if len(params) and (source.min() < 0 or source.max() >= batch):
        problems.append(f"source outside [0, {batch})")
    if len(params) and (min(top.min(), left.min()) < 0 or max(top.max(), left.max()) > resize - size):
        problems.append(f"a crop corner outside [0, {resize - size}]")
    if len(params) and not np.isin(flip, (0, 1)).all():
        problems.append("flip not 0 or 1")
    if problems:
        raise ValueError(f"augment_crop: params with {', '.join(problems)}")


def grid(n: int, size: int) -> tuple[tuple[int, int], tuple[int]]:
    """Blocks over (pixels of one output, outputs), THREADS_PER_BLOCK threads each: one thread per
    output pixel, all three channels."""
    return (ceil_div(size * size, THREADS_PER_BLOCK), n), (THREADS_PER_BLOCK,)


def augment_crop_reference(images, params, scale, bias, size: int, out=None) -> np.ndarray:
    """The NumPy face: a loop over outputs, each a strided view of its source, one multiply (uint8 →
    float32 is exact, then one rounding) and one add (a second rounding; the GPU faces fuse both
    into one FMA, which the tolerance "float32_elementwise" covers)."""
    n = check_arguments(np, images, params, scale, bias, size)
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
