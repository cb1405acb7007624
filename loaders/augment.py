"""The paper's augmentation as a per-batch plan plus one affine map, applied in NumPy (kernels/reference/augment.py)
and by the hand-written kernels of kernels/numba/augment.py and kernels/cuda/augment.cu on a GPU.

Every output image o of a batch is a crop of one decoded uint8 square (R, R, 3):

    out[o, c, y, x] = images[source[o], top[o] + y, left[o] + x', c] · scale[c] + bias[o, c]
    x' = S − 1 − x if flip[o] else x

with scale[c] = 1 / (255·std[c]) and bias[o, c] = (lighting[o, c] − mean[c]) / std[c]: pixels go to
[0, 1], get the PCA lighting shift, and are normalized by the ImageNet mean and std, in one
multiply-add. The plan (source, top, left, flip, bias) is drawn on the host; the same plan gives the
same batch in every face, up to float32 rounding of the multiply-add.

Random draws come from Philox4x32-10 (the counter-based generator the dropout kernels use) keyed by
the seed, with the sample index and the epoch in the counter: the draws of a sample depend on
(seed, epoch, index) alone, never on which worker decoded it or which batches were read before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels.reference.augment import augment_crop
from kernels.reference.philox import philox4x32_10

# ImageNet's per-channel mean and standard deviation on [0, 1] pixels, the values torchvision's models use.
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
# PCA of ImageNet's RGB pixels: eigenvalues, and eigenvectors as the columns of EIGVEC.
EIGVAL = np.array([0.2175, 0.0188, 0.0045])
EIGVEC = np.array([
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
])
LIGHTING_SIGMA = 0.1  # the paper's standard deviation of the PCA coefficients

SCALE = (1.0 / (255.0 * STD)).astype(np.float32)

# The fourth counter word tells the uses of Philox apart, so they never share a random word.
_TAG_SHUFFLE = 0x53485546  # "SHUF"
_TAG_SAMPLE = 0x53414D50  # "SAMP"
_LOW32 = 0xFFFFFFFF


def _check_seed(seed: int, epoch: int) -> None:
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed {seed}: expected an integer in [0, 2^64)")
    if not 0 <= epoch < 2**32:
        raise ValueError(f"epoch {epoch}: expected an integer in [0, 2^32)")


def _words(seed: int, epoch: int, indices: np.ndarray, stream: int, tag: int) -> tuple[np.ndarray, ...]:
    indices = np.asarray(indices, dtype=np.uint64)
    return philox4x32_10(indices, np.uint64(epoch), np.uint64(stream), np.uint64(tag),
                         np.uint64(seed & _LOW32), np.uint64(seed >> 32))


def _below(words: np.ndarray, bound: int) -> np.ndarray:
    """Map uniform 32-bit words to integers in [0, bound) by multiply-and-shift (bias < bound/2^32)."""
    return ((words.astype(np.uint64) * np.uint64(bound)) >> np.uint64(32)).astype(np.int32)


def shuffled_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """A permutation of range(count), a function of (seed, epoch) only: sort by 64 random bits each."""
    _check_seed(seed, epoch)
    indices = np.arange(count, dtype=np.uint64)
    high, low, _, _ = _words(seed, epoch, indices, 0, _TAG_SHUFFLE)
    keys = (high.astype(np.uint64) << np.uint64(32)) | low.astype(np.uint64)
    return np.argsort(keys, kind="stable").astype(np.int64)


@dataclass(frozen=True)
class SampleDraws:
    """The random choices for training samples: crop corner, mirror and PCA lighting coefficients."""

    top: np.ndarray  # int32 (n,), in [0, R − S]
    left: np.ndarray  # int32 (n,)
    flip: np.ndarray  # int32 (n,), 0 or 1
    alpha: np.ndarray  # float64 (n, 3), N(0, LIGHTING_SIGMA) coefficients of the eigenvectors


def draw_samples(indices, seed: int, epoch: int, resize_size: int, input_size: int) -> SampleDraws:
    """Draws for dataset samples `indices` in `epoch`: two Philox blocks per sample, block 0 for the
    crop and mirror, block 1 for four uniforms that Box-Muller turns into the lighting normals."""
    _check_seed(seed, epoch)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= 2**32):
        raise ValueError("sample indices must lie in [0, 2^32)")
    positions = resize_size - input_size + 1
    w0, w1, w2, _ = _words(seed, epoch, indices, 0, _TAG_SAMPLE)
    u0, u1, u2, u3 = _words(seed, epoch, indices, 1, _TAG_SAMPLE)
    # Box-Muller: radius from a uniform in (0, 1], angle from one in [0, 1).
    radius_a = np.sqrt(-2.0 * np.log((u0.astype(np.float64) + 1.0) / 2.0**32))
    radius_b = np.sqrt(-2.0 * np.log((u2.astype(np.float64) + 1.0) / 2.0**32))
    angle_a = 2.0 * np.pi * (u1.astype(np.float64) / 2.0**32)
    angle_b = 2.0 * np.pi * (u3.astype(np.float64) / 2.0**32)
    normals = np.stack([radius_a * np.cos(angle_a), radius_a * np.sin(angle_a), radius_b * np.cos(angle_b)], axis=1)
    return SampleDraws(
        top=_below(w0, positions),
        left=_below(w1, positions),
        flip=(w2 >> np.uint32(31)).astype(np.int32),
        alpha=LIGHTING_SIGMA * normals,
    )


def lighting_shift(alpha: np.ndarray) -> np.ndarray:
    """(n, 3) RGB shift on [0, 1] pixels: channel i gets Σ_j EIGVEC[i, j]·alpha_j·EIGVAL_j."""
    return (np.asarray(alpha, dtype=np.float64) * EIGVAL) @ EIGVEC.T


@dataclass(frozen=True)
class CropPlan:
    """Everything a face needs to turn a uint8 batch (B, R, R, 3) into float32 outputs (n, 3, S, S)."""

    size: int  # S, the output side
    source: np.ndarray  # int32 (n,), the decoded image each output is cut from
    top: np.ndarray  # int32 (n,)
    left: np.ndarray  # int32 (n,)
    flip: np.ndarray  # int32 (n,)
    bias: np.ndarray  # float32 (n, 3)
    scale: np.ndarray = field(default_factory=SCALE.copy)  # float32 (3,)

    def __len__(self) -> int:
        return len(self.source)

    @property
    def params(self) -> np.ndarray:
        """int32 (n, 4) rows (source, top, left, flip), the kernels' argument."""
        return np.ascontiguousarray(np.stack([self.source, self.top, self.left, self.flip], axis=1), dtype=np.int32)


def _bias(shift: np.ndarray) -> np.ndarray:
    return ((shift - MEAN) / STD).astype(np.float32)


def _int32(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int32)


def train_plan(indices, seed: int, epoch: int, resize_size: int, input_size: int) -> CropPlan:
    """One random crop, mirror and lighting shift per decoded sample (its dataset index in `indices`)."""
    draws = draw_samples(indices, seed, epoch, resize_size, input_size)
    return CropPlan(input_size, _int32(np.arange(len(draws.top))), draws.top, draws.left, draws.flip,
                    _bias(lighting_shift(draws.alpha)))


def eval_plan(count: int, resize_size: int, input_size: int, ten_crop: bool = False) -> CropPlan:
    """The centre crop of each of `count` images; with ten_crop, the four corners and the centre and
    their mirrors, image i's ten crops at outputs 10i .. 10i+9."""
    margin = resize_size - input_size
    if not ten_crop:
        corner = np.full(count, margin // 2, dtype=np.int32)
        zeros = np.zeros(count, dtype=np.int32)
        return CropPlan(input_size, _int32(np.arange(count)), corner, corner.copy(), zeros,
                        np.tile(_bias(np.zeros(3)), (count, 1)))
    # top-left, top-right, bottom-left, bottom-right, centre; then the same mirrored
    tops = np.array([0, 0, margin, margin, margin // 2] * 2)
    lefts = np.array([0, margin, 0, margin, margin // 2] * 2)
    flips = np.array([0] * 5 + [1] * 5)
    return CropPlan(input_size, _int32(np.repeat(np.arange(count), 10)), _int32(np.tile(tops, count)),
                    _int32(np.tile(lefts, count)), _int32(np.tile(flips, count)),
                    np.tile(_bias(np.zeros(3)), (10 * count, 1)))


def apply_plan(images: np.ndarray, plan: CropPlan, out: np.ndarray | None = None) -> np.ndarray:
    """The NumPy face of the augmentation: uint8 (B, R, R, 3) → float32 (n, 3, S, S), C-contiguous."""
    return augment_crop(images, plan.params, plan.scale, plan.bias, plan.size, out)
