"""The polygon stage's per-patch sums read only the patches and their rings, and equal the sums over the grid.

``polygons._fraction_sums`` (burned shares, their variances and end-member sigmas, with each date's
ring of mixed pixels) and ``polygons._min_by_label`` (the earliest last clear scene) gather the
labelled pixels and the rings alone, in the grid's order. Held here against the sums over every
pixel of the grid (as ``ndimage`` computes them), bit for bit, on random patches of three dates that
touch one another and the grid's edges, with shares that could not be fitted.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from pipeline.stages.polygons import _fraction_sums, _min_by_label, _sum_by_label

_EIGHT = np.ones((3, 3), bool)


def _over_the_whole_grid(dates, components, ids, component_date):
    share = dates["burned_fraction"].values
    fitted = np.isfinite(share)
    inside = components > 0
    values = (np.where(fitted, share, 1.0), np.where(fitted, np.square(np.nan_to_num(dates["fraction_sigma_noise"].values)), 0.0),
              np.where(fitted, np.nan_to_num(dates["fraction_sigma_endmember"].values), 0.0))
    sums = [_sum_by_label(np.where(inside, v, 0.0), components, ids) for v in values]
    rings = (dates["ring_fraction"].values, dates["ring_fraction_sigma_noise"].values, dates["ring_fraction_sigma_endmember"].values)
    for t in np.unique(component_date):
        of_date = np.where(np.isin(components, ids[component_date == t]), components, 0)
        ring = np.isfinite(rings[0][t]) & (of_date == 0)
        if not ring.any():
            continue
        owner = np.where(ring, ndimage.grey_dilation(of_date, footprint=_EIGHT), 0)
        for total, v in zip(sums, (rings[0][t], np.square(np.nan_to_num(rings[1][t])), np.nan_to_num(rings[2][t]))):
            total += _sum_by_label(np.where(owner > 0, np.nan_to_num(v), 0.0), owner, ids)
    return sums


def _case(rng, h, w, n_time=3):
    burned = ndimage.gaussian_filter(rng.random((h, w)), rng.uniform(0.7, 2.5)) > rng.uniform(0.45, 0.6)
    burned[0, : w // 2] = True  # along the grid's edge
    # Each burned pixel's date from coarse blocks, so that patches of different dates touch, and each date's
    # patches cut by a random line into pieces that touch one another (as split along a wall).
    date = np.kron(rng.integers(0, n_time, (h // 4 + 1, w // 4 + 1)), np.ones((4, 4), int))[:h, :w]
    cut = rng.integers(0, max(w, 1))
    components = np.zeros((h, w), int)
    component_date = []
    for t in range(n_time):
        for side in (np.arange(w)[None, :] < cut, np.arange(w)[None, :] >= cut):
            labels, n = ndimage.label(burned & (date == t) & side, structure=_EIGHT)
            components[labels > 0] = labels[labels > 0] + len(component_date)
            component_date += [t] * n
    ids = np.arange(1, len(component_date) + 1)
    component_date = np.array(component_date, dtype=int)
    shares = {k: np.where(rng.random((h, w)) < 0.12, np.nan, rng.random((h, w))) for k in ("f", "n", "e")}
    ring = {k: np.where(rng.random((n_time, h, w)) < 0.3, np.nan, rng.random((n_time, h, w))) for k in ("f", "n", "e")}
    dims = ("y", "x")
    dates = xr.Dataset({"burned_fraction": (dims, shares["f"]), "fraction_sigma_noise": (dims, shares["n"]),
                        "fraction_sigma_endmember": (dims, shares["e"]),
                        "ring_fraction": (("time", *dims), ring["f"]), "ring_fraction_sigma_noise": (("time", *dims), ring["n"]),
                        "ring_fraction_sigma_endmember": (("time", *dims), ring["e"])})
    return dates, components, ids, component_date


@pytest.mark.parametrize("seed", range(8))
def test_patch_sums_over_their_pixels_and_rings_are_those_over_the_grid_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(15):
        h, w = rng.integers(4, 70, 2)
        dates, components, ids, component_date = _case(rng, h, w)
        if not ids.size:
            continue
        got = _fraction_sums(dates, components, ids, component_date)
        want = _over_the_whole_grid(dates, components, ids, component_date)
        for g, x in zip(got.values(), want):
            assert g.dtype == x.dtype and np.array_equal(g, x)  # equal floats, not close ones
        last_clear = rng.integers(-1, 5, (h, w)).astype(np.int16)
        np.testing.assert_array_equal(_min_by_label(last_clear, components, ids),
                                      np.asarray(ndimage.minimum(last_clear, components, ids)).astype(int))
        compared += 1
    assert compared >= 10
