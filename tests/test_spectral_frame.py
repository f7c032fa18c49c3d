"""Scenes the index reads as delivered (SWIR products) are read in one radiometric frame for the burned fraction.

A hazy before-scene (transmittance 0.85, path reflectance in every band) left as delivered biases
the unmixed burned share: the background removal takes out an offset, not the loss of contrast.
The run maps every scene onto the clearest one for that reading only, with the normalisation
stage's fits; the index, and so the burn mask, still reads the scenes as delivered.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from pipeline import run
from pipeline.config import Params
from pipeline.grid import grid_for_bounds
from pipeline.stages.fraction import CHAR
from pipeline.stages.normalise import apply_fits

BANDS = ["blue", "green", "red", "nir", "swir16", "swir22"]
SAND = np.array([0.14, 0.20, 0.27, 0.33, 0.45, 0.42])
DRY_GRASS = np.array([0.08, 0.12, 0.17, 0.27, 0.36, 0.28])
PATH = np.array([0.04, 0.03, 0.02, 0.012, 0.005, 0.003])  # dust path reflectance, strongest in the blue
SIDE = 60


def _series(bands: list[str] = BANDS):
    """Three 10 m scenes of sand and dry grass: clear, hazy, clear with a char square (20.6 px a side)."""
    rng = np.random.default_rng(5)
    keep = [BANDS.index(b) for b in bands]
    mix = np.clip(ndimage.gaussian_filter(rng.random((SIDE, SIDE)), 4) * 4 - 1.5, 0, 1)
    ground = ((1 - mix) * SAND[:, None, None] + mix * DRY_GRASS[:, None, None])[keep]
    edges = np.arange(SIDE + 1, dtype=float)
    side_cover = np.clip(np.minimum(edges[1:], 40.3) - np.maximum(edges[:-1], 19.7), 0, 1)
    cover = np.outer(side_cover, side_cover)
    char = np.array([CHAR[b] for b in bands])[:, None, None]
    scenes = [ground, 0.85 * ground + PATH[keep][:, None, None], (1 - cover) * ground + cover * char]
    refl = np.stack(scenes) + rng.normal(0, 0.003, (3, len(bands), SIDE, SIDE))
    grid = grid_for_bounds((500000, 1500000, 500000 + 10 * SIDE, 1500000 + 10 * SIDE), "EPSG:32630", 10.0)
    x, y = grid.transform.c + 5 + 10 * np.arange(SIDE), grid.transform.f - 5 - 10 * np.arange(SIDE)
    times = np.array(["2024-01-26T10:38", "2024-01-27T10:38", "2024-01-28T10:38"], dtype="datetime64[ns]")
    stack = xr.Dataset({"reflectance": (("time", "band", "y", "x"), refl.astype(np.float32)),
                        "clear": (("time", "y", "x"), np.ones((3, SIDE, SIDE), bool))},
                       coords={"time": times, "band": bands, "y": y, "x": x})
    return stack, grid, cover


def _dates(stack, grid, spectral_fits):
    records = [SimpleNamespace(sun_elevation=None, sun_azimuth=None, band_pixel_m={})] * stack.sizes["time"]
    spectral = None if spectral_fits is None else apply_fits(stack, spectral_fits)
    return run._dated(stack, Params(), grid, noise=None, records=records, spectral=spectral)[3]


def test_a_hazy_before_scene_does_not_bias_the_burned_area_of_a_swir_series():
    stack, grid, cover = _series()
    fits = run._spectral_frame(stack, Params())[1]
    assert fits is not None
    # The hazy scene is mapped back: gains near 1 / 0.85 = 1.18 in every band; the clear ones are left alone.
    assert all(1.12 < f.gain < 1.24 for f in fits[1])
    assert all(f.gain == pytest.approx(1.0, abs=0.02) for f in fits[2])
    framed, delivered = _dates(stack, grid, fits), _dates(stack, grid, None)
    truth_px = cover.sum()  # 424.4 pixels of 100 m2
    assert np.nansum(framed["burned_fraction"].values) == pytest.approx(truth_px, rel=0.01)
    # As delivered, the hazy before-scene's lost contrast reads as more burned ground (+4 %).
    assert np.nansum(delivered["burned_fraction"].values) > 1.03 * truth_px
    # The index reads the scenes as delivered either way: the same burn mask.
    np.testing.assert_array_equal(framed["first_seen"].values, delivered["first_seen"].values)
    assert int((framed["first_seen"].values == 2).sum()) == 400


def test_the_spectral_frame_is_only_for_scenes_the_index_reads_as_delivered():
    stack, _, _ = _series()
    assert run._spectral_frame(stack, Params(normalisation="never"))[1] is None  # asked for the scenes as delivered
    assert run._spectral_frame(stack, Params(normalisation="always"))[1] is None  # already normalised for the index
    four_band, _, _ = _series(["blue", "green", "red", "nir"])
    assert run._spectral_frame(four_band, Params())[1] is None  # PlanetScope: normalised for everything already
