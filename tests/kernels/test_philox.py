"""Philox4x32-10 against Random123's known answers, and the dropout mask rule element by element."""

import numpy as np
import pytest

from kernels import reference
from kernels.contract import dropout_threshold
from kernels.reference.philox import philox4x32_10

# Random123, tests/kat_vectors: philox4x32 10 <counter words> <key words> <output words>
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KNOWN_ANSWERS)
def test_known_answers(counter, key, expected):
    assert tuple(int(v) for v in philox4x32_10(*counter, *key)) == expected


def _philox_scalar(counter, key):
    """A plain-integer Philox4x32-10, written apart from the NumPy one, to check it per element."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(10):
        if round_index:
            k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & 0xFFFFFFFF, (p0 >> 32) ^ c3 ^ k1, p0 & 0xFFFFFFFF
    return c0, c1, c2, c3


@pytest.mark.parametrize(
    ("p", "seed", "offset"),
    [(0.5, 0, 0), (0.3, 1234, 5), (0.1, (7 << 32) + 9, (3 << 32) + 11), (0.0, 42, 1), (0.999, 2**64 - 1, 2**64 - 1)],
)
def test_mask_follows_the_rule_element_by_element(p, seed, offset):
    shape = (3, 5, 7)  # 105 elements: not a multiple of 4, so the last Philox block is partly used
    mask = reference.dropout_mask(shape, p, seed, offset).reshape(-1)
    key = (seed & 0xFFFFFFFF, seed >> 32)
    for i in range(mask.size):
        j = i // 4
        word = _philox_scalar((j & 0xFFFFFFFF, j >> 32, offset & 0xFFFFFFFF, offset >> 32), key)[i % 4]
        keep = (word >> 8) * 2.0**-24 >= p
        assert mask[i] == keep, f"element {i}: mask {mask[i]}, rule says {keep}"


def test_threshold_is_exact_at_representable_probabilities():
    assert dropout_threshold(0.5) == 1 << 23
    assert dropout_threshold(0.0) == 0
    assert dropout_threshold(3 * 2.0**-24) == 3
    assert dropout_threshold(3 * 2.0**-24 + 2.0**-40) == 4


def test_mask_keeps_about_one_minus_p_and_changes_with_offset():
    a = reference.dropout_mask((1 << 16,), 0.5, seed=1, offset=0)
    b = reference.dropout_mask((1 << 16,), 0.5, seed=1, offset=1)
    c = reference.dropout_mask((1 << 16,), 0.5, seed=2, offset=0)
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert abs(a.mean() - 0.5) < 0.01
    assert abs(reference.dropout_mask((1 << 16,), 0.2, 1, 0).mean() - 0.8) < 0.01
    assert (a != b).mean() > 0.4 and (a != c).mean() > 0.4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_scales_kept_elements(dtype):
    x = np.random.default_rng(0).standard_normal((4, 50)).astype(dtype)
    y, mask = reference.dropout_forward(x, 0.25, seed=3, offset=4)
    assert y.dtype == dtype and mask.shape == x.shape
    np.testing.assert_array_equal(mask, reference.dropout_mask(x.shape, 0.25, 3, 4))
    np.testing.assert_allclose(y, np.where(mask == 1, x / 0.75, 0), rtol=1e-6)
    dx = reference.dropout_backward(np.ones_like(x), mask, 0.25)
    np.testing.assert_allclose(dx, mask / 0.75, rtol=1e-6)
