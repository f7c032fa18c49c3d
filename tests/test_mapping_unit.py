"""The mapping unit reads only the patches and their ring, and gives what a sum over the whole grid gives.

``threshold._large_enough_burns`` adds each patch's burned shares and those of the ring of mixed
pixels around it. It gathers those pixels alone, in the grid's order; held here against the sum
over every pixel of the grid, bit for bit, on random patches that touch the grid's edges, with
pixels that could not be fitted and pixels that may not burn.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pipeline.stages.threshold import FRACTION_SEED, _PART_OF_UNIT, _large_enough_burns

_EIGHT = np.ones((3, 3), bool)


def _over_the_whole_grid(mask, fraction, allowed, min_px, core_px=None):
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return mask
    fitted = np.isfinite(fraction)
    around = ndimage.grey_dilation(labels, footprint=_EIGHT)
    ring = ~mask & allowed & fitted & (around > 0)
    owner = np.where(mask, labels, np.where(ring, around, 0))
    share = np.where(mask, np.where(fitted, np.clip(fraction, 0.0, 1.0), 1.0),
                     np.where(ring, np.clip(np.nan_to_num(fraction), 0.0, 1.0), 0.0))
    burned_px = np.bincount(owner.ravel(), weights=share.ravel(), minlength=n + 1)
    keep = burned_px >= min_px - 1e-9
    if core_px is not None:
        charred = np.bincount(labels[mask & (np.nan_to_num(fraction, nan=0.0) >= FRACTION_SEED)], minlength=n + 1)
        keep |= (charred >= core_px) & (burned_px >= _PART_OF_UNIT * min_px - 1e-9)
    keep[0] = False
    return keep[labels]


@pytest.mark.parametrize("seed", range(6))
def test_patches_kept_by_the_unit_are_those_the_whole_grid_sum_keeps(seed):
    rng = np.random.default_rng(seed)
    kept_some = dropped_some = False
    for _ in range(40):
        h, w = rng.integers(5, 90, 2)
        mask = ndimage.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 3)) > rng.uniform(0.5, 0.6)
        mask[0, : w // 3] = True  # a patch along the grid's edge
        fraction = rng.random((h, w)) * rng.uniform(0.5, 1.5) - 0.1
        fraction[rng.random((h, w)) < 0.15] = np.nan
        allowed = rng.random((h, w)) > 0.1
        for min_px in (1.0, 3.5, 5.6, 11.0):
            for core_px in (None, 2):
                got = _large_enough_burns(mask, fraction, allowed, min_px, core_px=core_px)
                np.testing.assert_array_equal(got, _over_the_whole_grid(mask, fraction, allowed, min_px, core_px))
                kept_some |= bool(got.any())
                dropped_some |= bool((mask & ~got).any())
    assert kept_some and dropped_some  # the unit both kept and dropped patches: the comparison could fail
