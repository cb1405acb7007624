"""The augmentation plan and its NumPy face: draws from (seed, epoch, index), crops, mirrors, lighting."""

import numpy as np
import pytest

from kernels.testing import assert_matches
from loaders import augment


def _reference(images, plan):
    """The documented formula, element by element in float64 (slow, obviously right)."""
    n, size = len(plan), plan.size
    out = np.empty((n, 3, size, size))
    for o in range(n):
        for y in range(size):
            for x in range(size):
                source_x = plan.left[o] + (size - 1 - x if plan.flip[o] else x)
                pixel = images[plan.source[o], plan.top[o] + y, source_x].astype(np.float64)
                out[o, :, y, x] = pixel * plan.scale + plan.bias[o]
    return out


@pytest.fixture
def images():
    return np.random.default_rng(1).integers(0, 256, (5, 11, 11, 3), dtype=np.uint8)


def test_train_plan_applied_in_numpy_matches_the_formula(images):
    plan = augment.train_plan(np.array([7, 3, 1000, 2**31, 5]), seed=9, epoch=2, resize_size=11, input_size=7)
    assert set(plan.flip.tolist()) == {0, 1} or len(plan) < 5
    out = augment.apply_plan(images, plan)
    assert out.dtype == np.float32 and out.shape == (5, 3, 7, 7) and out.flags.c_contiguous
    assert_matches(out, _reference(images, plan).astype(np.float32), "float32_elementwise")


def test_a_mirrored_crop_is_the_crop_reversed_left_to_right(images):
    plan = augment.eval_plan(5, 11, 7)
    mirrored = augment.CropPlan(plan.size, plan.source, plan.top, plan.left, np.ones(5, np.int32), plan.bias)
    np.testing.assert_array_equal(augment.apply_plan(images, mirrored), augment.apply_plan(images, plan)[..., ::-1])


def test_centre_crop_without_lighting_is_plain_normalization(images):
    out = augment.apply_plan(images, augment.eval_plan(5, 11, 7))
    expected = (images[:, 2:9, 2:9].transpose(0, 3, 1, 2) / 255.0 - augment.MEAN[:, None, None]) / augment.STD[:, None, None]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_ten_crops_are_corners_centre_and_mirrors_in_order(images):
    plan = augment.eval_plan(2, 11, 7, ten_crop=True)
    out = augment.apply_plan(images, plan)
    assert out.shape == (20, 3, 7, 7)
    centre = augment.apply_plan(images, augment.eval_plan(2, 11, 7))
    corners = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
    for sample in range(2):
        crops = out[10 * sample:10 * sample + 10]
        np.testing.assert_array_equal(crops[4], centre[sample])
        for k, (top, left) in enumerate(corners):
            window = np.ascontiguousarray(images[sample:sample + 1, top:top + 7, left:left + 7])
            expected = augment.apply_plan(window, augment.eval_plan(1, 7, 7))[0]
            np.testing.assert_array_equal(crops[k], expected)
            np.testing.assert_array_equal(crops[5 + k], expected[..., ::-1])


def test_draws_depend_on_seed_epoch_and_index_only():
    indices = np.arange(0, 4000, 3)
    full = augment.draw_samples(indices, seed=5, epoch=1, resize_size=256, input_size=224)
    part = augment.draw_samples(indices[100:110][::-1], seed=5, epoch=1, resize_size=256, input_size=224)
    np.testing.assert_array_equal(part.top, full.top[100:110][::-1])
    np.testing.assert_array_equal(part.alpha, full.alpha[100:110][::-1])
    for other in (dict(seed=6, epoch=1), dict(seed=5, epoch=2), dict(seed=5 + 2**32, epoch=1)):
        changed = augment.draw_samples(indices, resize_size=256, input_size=224, **other)
        assert (changed.top != full.top).mean() > 0.9 and (changed.alpha != full.alpha).all()


def test_draws_have_the_documented_distributions():
    draws = augment.draw_samples(np.arange(200_000), seed=1, epoch=0, resize_size=256, input_size=224)
    for corner in (draws.top, draws.left):
        assert corner.min() == 0 and corner.max() == 32
        counts = np.bincount(corner, minlength=33)
        assert np.abs(counts / counts.mean() - 1).max() < 0.05  # uniform over the 33 positions
    assert abs(draws.flip.mean() - 0.5) < 0.005
    assert np.abs(draws.alpha.mean(axis=0)).max() < 0.002
    np.testing.assert_allclose(draws.alpha.std(axis=0), augment.LIGHTING_SIGMA, rtol=0.01)
    assert np.abs(np.corrcoef(draws.alpha.T) - np.eye(3)).max() < 0.01
    # neighbouring samples do not share draws
    assert (np.diff(draws.top) != 0).mean() > 0.9


def test_lighting_shift_is_the_eigenvector_combination():
    alpha = np.array([[0.1, -0.2, 0.3]])
    expected = sum(augment.EIGVEC[:, j] * alpha[0, j] * augment.EIGVAL[j] for j in range(3))
    np.testing.assert_allclose(augment.lighting_shift(alpha)[0], expected)


def test_shuffled_order_is_a_permutation_fixed_by_seed_and_epoch():
    order = augment.shuffled_order(1000, seed=3, epoch=0)
    assert sorted(order.tolist()) == list(range(1000))
    np.testing.assert_array_equal(order, augment.shuffled_order(1000, seed=3, epoch=0))
    assert (order != augment.shuffled_order(1000, seed=3, epoch=1)).mean() > 0.9
    assert (order != augment.shuffled_order(1000, seed=4, epoch=0)).mean() > 0.9
    assert (order != np.arange(1000)).mean() > 0.9


def test_bad_seeds_are_value_errors():
    with pytest.raises(ValueError, match="seed"):
        augment.shuffled_order(10, seed=-1, epoch=0)
    with pytest.raises(ValueError, match="epoch"):
        augment.draw_samples([0], seed=0, epoch=2**32, resize_size=8, input_size=4)
