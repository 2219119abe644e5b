import numpy as np
import pytest

from benchmark.data.imbalance import frequency_tiers, hide_tail_labels, validate_factor
from benchmark.system.errors import BenchmarkError

ISPRS_LIKE = (0.36, 0.20, 0.275, 0.135, 0.02, 0.01)


def test_default_tiers_on_isprs_like_frequencies():
    tiers = frequency_tiers(ISPRS_LIKE)
    assert tiers.head == (0, 1, 2) and tiers.body == (3,) and tiers.tail == (4, 5)
    assert tiers.tier_of(4) == "tail"
    assert frequency_tiers(ISPRS_LIKE, classes=(0, 1, 2, 3, 4)).tail == (4,)


def test_bad_thresholds_and_factors():
    with pytest.raises(BenchmarkError):
        frequency_tiers(ISPRS_LIKE, thresholds=(0.01, 0.2))
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(BenchmarkError):
            validate_factor(bad)


def tile(seed=0, size=256):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 4, (size, size))
    for _ in range(120):  # car-like rectangles of the tail class 4
        y, x = rng.integers(0, size - 8, 2)
        mask[y : y + 4, x : x + 9] = 4
    mask[:8, :8] = 255
    return mask


@pytest.mark.parametrize("factor", [4.0, 10.0])
def test_hiding_reduces_tail_share_about_f_fold_and_touches_nothing_else(factor):
    masks = [tile(s) for s in range(12)]
    before = sum((m == 4).sum() for m in masks)
    hidden = [hide_tail_labels(m, factor, (4,), 255, i, m.shape) for i, m in enumerate(masks)]
    after = sum((h == 4).sum() for h in hidden)
    assert 0.5 / factor < after / before < 2.0 / factor
    for m, h in zip(masks, hidden, strict=True):
        changed = m != h
        assert (m[changed] == 4).all() and (h[changed] == 255).all()


def test_factor_one_is_identity_and_crops_agree_with_the_full_tile():
    mask = tile(3)
    assert hide_tail_labels(mask, 1.0, (4,), 255, 0, mask.shape) is mask
    full = hide_tail_labels(mask, 10.0, (4,), 255, 7, mask.shape)
    crop = hide_tail_labels(mask[40:168, 100:228], 10.0, (4,), 255, 7, mask.shape, (40, 100))
    np.testing.assert_array_equal(crop, full[40:168, 100:228])
    again = hide_tail_labels(mask, 10.0, (4,), 255, 7, mask.shape)
    np.testing.assert_array_equal(full, again)
