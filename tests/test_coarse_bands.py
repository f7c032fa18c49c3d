"""Bands coarser than the analysis grid are left out of the burned-fraction fit.

Sentinel-2's SWIR is integrated on 20 m pixels. Put on a 10 m grid, a 20 m band's value at a
10 m pixel is an average over its own footprint: a fully burned pixel beside unburned ground
reads about half burned in it, and its unburned neighbour half burned too. Fitted with the 10 m
bands, the 20 m bands pull every edge pixel's share toward its neighbours'.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from pipeline import run
from pipeline.config import Params
from pipeline.errors import SceneError
from pipeline.grid import grid_for_bounds
from pipeline.readers.planet import _native_pixels
from pipeline.stages.fraction import CHAR

BANDS = ["blue", "green", "red", "nir", "swir16", "swir22"]
SAND = np.array([0.14, 0.20, 0.27, 0.33, 0.45, 0.42])
SIDE = 48
NATIVE = {"blue": 10.0, "green": 10.0, "red": 10.0, "nir": 10.0, "swir16": 20.0, "swir22": 20.0}


def _twenty_metre(band: np.ndarray) -> np.ndarray:
    """A 10 m band as a 20 m sensor sees it: 2 x 2 block means, interpolated back onto the 10 m pixel centres."""
    block = band.reshape(SIDE // 2, 2, SIDE // 2, 2).mean(axis=(1, 3))
    rows = (np.arange(SIDE) - 0.5) / 2
    return ndimage.map_coordinates(block, np.meshgrid(rows, rows, indexing="ij"), order=1, mode="nearest")


def _series():
    """Two 10 m scenes of sand; on the second a char rectangle of 8 x 12 pixels, its SWIR seen at 20 m."""
    rng = np.random.default_rng(3)
    cover = np.zeros((SIDE, SIDE))
    cover[19:27, 17:29] = 1.0
    sand = np.broadcast_to(SAND[:, None, None], (6, SIDE, SIDE))
    char = np.array([CHAR[b] for b in BANDS])[:, None, None]
    after = (1 - cover) * sand + cover * char
    after[4:] = [_twenty_metre(b) for b in after[4:]]
    refl = np.stack([sand, after]) + rng.normal(0, 0.003, (2, 6, SIDE, SIDE))
    grid = grid_for_bounds((500000, 1500000, 500000 + 10 * SIDE, 1500000 + 10 * SIDE), "EPSG:32630", 10.0)
    x, y = grid.transform.c + 5 + 10 * np.arange(SIDE), grid.transform.f - 5 - 10 * np.arange(SIDE)
    times = np.array(["2024-01-27T10:38", "2024-01-28T10:38"], dtype="datetime64[ns]")
    stack = xr.Dataset({"reflectance": (("time", "band", "y", "x"), refl.astype(np.float32)),
                        "clear": (("time", "y", "x"), np.ones((2, SIDE, SIDE), bool))},
                       coords={"time": times, "band": BANDS, "y": y, "x": x})
    return stack, grid, cover


def _shares(band_pixel_m: dict[str, float]):
    stack, grid, cover = _series()
    records = [SimpleNamespace(sun_elevation=None, sun_azimuth=None, band_pixel_m=band_pixel_m)] * 2
    dates = run._dated(stack, Params(), grid, noise=None, records=records)[3]
    return dates, cover


def test_a_fully_burned_pixel_at_a_burn_s_edge_reads_fully_burned_without_the_20_m_bands():
    dates, cover = _shares(NATIVE)
    assert dates.attrs["unmixing_left_out"] == ["swir16", "swir22"]
    share = dates["burned_fraction"].values
    edge = np.zeros_like(cover, bool)
    edge[19, 17:29] = edge[26, 17:29] = True  # the rectangle's first and last rows: burned, beside unburned ground
    assert np.nanmedian(share[edge]) == pytest.approx(1.0, abs=0.05)
    assert np.nanmedian(share[18, 17:29]) == pytest.approx(0.0, abs=0.05)  # the unburned row beside it
    assert np.nansum(share) == pytest.approx(cover.sum(), rel=0.02)
    # Fitted with the 20 m bands (a product that does not say its bands differ), the edge reads far less.
    unknown, _ = _shares({})
    assert "unmixing_left_out" in unknown.attrs and unknown.attrs["unmixing_left_out"] == []
    assert np.nanmedian(unknown["burned_fraction"].values[edge]) < 0.9


def test_bands_are_left_out_only_when_coarser_than_the_grid_and_finer_bands_remain():
    from pipeline.stages.fraction import coarser_than_grid

    assert coarser_than_grid(NATIVE, 10.0) == ["swir16", "swir22"]
    assert coarser_than_grid(NATIVE, 20.0) == []  # on the 20 m grid every band measures the pixel
    assert coarser_than_grid({b: 30.0 for b in BANDS}, 10.0) == []  # Landsat on a finer grid: nothing finer to fit on
    assert coarser_than_grid({"nir": 10.0, "swir22": 20.0}, 10.0) == []  # one band would be left: keep both
    assert coarser_than_grid({**NATIVE, "nir": 10.4}, 10.0) == ["swir16", "swir22"]  # header rounding is not coarser


def test_a_delivery_s_metadata_says_which_bands_were_resampled_and_a_bad_value_is_one_line():
    where = Path("scene_metadata.json")
    names = ("blue", "green", "red", "nir", "swir16", "swir22")
    assert _native_pixels(None, names, where) == {}
    assert _native_pixels({"nir": 10, "swir22": 20, "coastal": 60}, names, where) == {"nir": 10.0, "swir22": 20.0}
    for bad in ("20", {"swir22": -20}, {"swir22": "twenty"}, {"swir22": True}, {"swir22": float("nan")}):
        with pytest.raises(SceneError) as err:
            _native_pixels(bad, names, where)
        message = str(err.value)
        assert "\n" not in message and "scene_metadata.json" in message and "native_resolution_m" in message
