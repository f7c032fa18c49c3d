"""Known-answer tests for the benchmark baselines: a burn of known place and date, and the
look-alikes (gain, haze, a one-scene dip, cloud) each published rule should or should not call."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipeline.bench.baselines import (
    SEVERITY_NODATA,
    control_ratio,
    control_ratio_village,
    control_ring,
    fixed_threshold,
    two_condition,
    usgs_severity_classes,
)

# Surface reflectance of green-dry savanna and of fresh char (rounded, typical values).
GROUND = {"blue": 0.06, "green": 0.09, "red": 0.12, "nir": 0.30, "swir16": 0.22, "swir22": 0.15}
CHAR = {"blue": 0.04, "green": 0.04, "red": 0.05, "nir": 0.06, "swir16": 0.09, "swir22": 0.10}
SIX = tuple(GROUND)
FOUR = ("blue", "green", "red", "nir")
SIZE = 60
BURN = (slice(20, 40), slice(20, 40))  # burned between scenes 1 and 2
VILLAGE = (slice(15, 45), slice(15, 45))
PIXEL_M = 10.0


def _stack(n_time: int = 4, *, bands=SIX, burn_from: int | None = 2, noise: float = 0.002, seed: int = 0) -> xr.Dataset:
    """Flat ground, the BURN square charred from scene ``burn_from`` on, small sensor noise."""
    refl = np.empty((n_time, len(bands), SIZE, SIZE), np.float32)
    for b, name in enumerate(bands):
        refl[:, b] = GROUND[name]
        if burn_from is not None:
            refl[burn_from:, b, BURN[0], BURN[1]] = CHAR[name]
    refl += np.random.default_rng(seed).normal(0, noise, refl.shape).astype(np.float32)
    times = np.datetime64("2024-01-26T10:38", "ns") + np.arange(n_time) * np.timedelta64(1, "D")
    return xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), refl),
         "clear": (("time", "y", "x"), np.ones((n_time, SIZE, SIZE), bool))},
        coords={"time": times, "band": list(bands), "y": 5.0 - PIXEL_M * np.arange(SIZE),
                "x": 5.0 + PIXEL_M * np.arange(SIZE)},
    )


def _expected(date: int, region=BURN) -> np.ndarray:
    out = np.full((SIZE, SIZE), -1, np.int16)
    out[region] = date
    return out


def _set_spectrum(stack: xr.Dataset, t: int, region, spectrum: dict[str, float]) -> None:
    for b, name in enumerate(stack.band.values):
        stack["reflectance"].values[t, b, region[0], region[1]] = spectrum[str(name)]


def _masks() -> tuple[np.ndarray, np.ndarray]:
    village = np.zeros((SIZE, SIZE), bool)
    village[VILLAGE] = True
    return village, control_ring(village, inner_m=20, outer_m=100, pixel_size=PIXEL_M)


# --- fixed threshold (UN-SPIDER / USGS) ---------------------------------------------------

@pytest.mark.parametrize("bands", [SIX, FOUR], ids=["dNBR", "dNDVI"])
def test_fixed_threshold_dates_the_burn(bands):
    first_seen = fixed_threshold(_stack(bands=bands))
    assert first_seen.dtype == np.int16
    np.testing.assert_array_equal(first_seen, _expected(2))


def test_nothing_happens_nothing_is_called():
    stack = _stack(burn_from=None)
    assert (fixed_threshold(stack) == -1).all()
    assert (two_condition(stack) == -1).all()
    village, ring = _masks()
    assert (control_ratio(stack, village_mask=village, control_mask=ring) == -1).all()
    assert not control_ratio_village(stack, village_mask=village, control_mask=ring).any()


@pytest.mark.parametrize(("gains", "called"), [
    ({"all": 1.1}, False),  # a satellite 10 % brighter in every band: NDVI is a ratio, the gain cancels
    ({"nir": 0.9}, False),  # NIR 10 % low: dNDVI = 0.429 - 0.385 = 0.044 < 0.10
    ({"nir": 0.7}, True),   # NIR 30 % low: dNDVI = 0.429 - 0.273 = 0.156 >= 0.10, the whole scene "burns"
])
def test_fixed_threshold_reacts_to_gain_exactly_as_the_rule_says(gains, called):
    stack = _stack(bands=FOUR, burn_from=None, noise=0.0)
    for b, name in enumerate(FOUR):
        stack["reflectance"].values[2:, b] *= gains.get("all", gains.get(name, 1.0))
    # The rule computed independently from the known spectra, to keep the case honest.
    red, nir = GROUND["red"], GROUND["nir"]
    g_red, g_nir = (gains.get("all", gains.get(k, 1.0)) for k in ("red", "nir"))
    dndvi = (nir - red) / (nir + red) - (g_nir * nir - g_red * red) / (g_nir * nir + g_red * red)
    assert (dndvi >= 0.1) == called
    np.testing.assert_array_equal(fixed_threshold(stack), np.full((SIZE, SIZE), 2 if called else -1, np.int16))


def test_fixed_threshold_map_is_usgs_low_severity_or_above():
    rng = np.random.default_rng(3)
    stack = _stack(n_time=2, burn_from=None, noise=0.0)
    b_nir, b_swir = list(stack.band.values).index("nir"), list(stack.band.values).index("swir22")
    stack["reflectance"].values[1, b_nir] = rng.uniform(0.05, 0.35, (SIZE, SIZE))
    stack["reflectance"].values[1, b_swir] = rng.uniform(0.08, 0.30, (SIZE, SIZE))
    refl = stack["reflectance"].values.astype(np.float64)
    nbr = (refl[:, b_nir] - refl[:, b_swir]) / (refl[:, b_nir] + refl[:, b_swir])
    burned = fixed_threshold(stack) == 1
    np.testing.assert_array_equal(burned, usgs_severity_classes(nbr[0] - nbr[1]) >= 1)
    assert 0.2 < burned.mean() < 0.8  # both outcomes are exercised


def test_clear_mask_keeps_cloud_out_and_waits_for_the_next_clear_scene():
    stack = _stack()
    cloud = (slice(0, 10), slice(0, 60))
    hidden_burn = (slice(20, 25), slice(20, 40))  # part of the burn under cloud on its first scene
    bright = {name: 0.5 for name in SIX}
    for region in (cloud, hidden_burn):
        _set_spectrum(stack, 2, region, bright)
        stack["clear"].values[2, region[0], region[1]] = False
    expected = _expected(2)
    expected[hidden_burn] = 3  # first seen on the next clear scene, against scene 1
    np.testing.assert_array_equal(fixed_threshold(stack), expected)
    # Without the mask the cloud itself is a dNBR of 0.33: proof the mask was what kept it out.
    unmasked = fixed_threshold(stack, use_clear_mask=False)
    assert (unmasked[cloud] == 2).all()


def test_not_observed_pixels_are_skipped_even_without_the_mask():
    stack = _stack()
    stack["reflectance"].values[2, :, BURN[0], BURN[1]] = np.nan
    np.testing.assert_array_equal(fixed_threshold(stack, use_clear_mask=False), _expected(3))


def test_usgs_classes_at_the_bounds():
    values = [-0.30, -0.251, -0.25, -0.101, -0.10, 0.0, 0.099, 0.10, 0.269, 0.27, 0.439, 0.44, 0.659, 0.66, 1.3, np.nan]
    expected = [-2, -2, -1, -1, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, SEVERITY_NODATA]
    classes = usgs_severity_classes(values)
    assert classes.dtype == np.int8
    assert classes.tolist() == expected
    # float32 0.44 is 0.4399999976: still the table's 0.440, class 3.
    assert usgs_severity_classes(np.float32([0.10, 0.27, 0.44, 0.66])).tolist() == [1, 2, 3, 4]


# --- two-condition rule (CIR Burnscar) ----------------------------------------------------

def test_two_condition_dates_the_burn():
    np.testing.assert_array_equal(two_condition(_stack()), _expected(2))


def test_two_condition_is_stricter_than_the_fixed_threshold():
    stack = _stack(burn_from=None)
    scorched = dict(GROUND, nir=0.22, swir22=0.17)  # NBR 0.333 -> 0.128: dNBR 0.205 but NBR stays positive
    for t in (2, 3):
        _set_spectrum(stack, t, BURN, scorched)
    np.testing.assert_array_equal(fixed_threshold(stack), _expected(2))
    assert (two_condition(stack) == -1).all()


def test_two_condition_refuses_four_band_scenes():
    with pytest.raises(ValueError, match=r"swir22.*blue, green, red, nir.*no SWIR"):
        two_condition(_stack(bands=FOUR))


def test_missing_band_is_named_with_the_bands_present():
    stack = _stack(bands=SIX).sel(band=["nir", "swir22"])
    with pytest.raises(ValueError, match=r"needs band\(s\) red; the stack has nir, swir22"):
        fixed_threshold(stack, index="ndvi")
    with pytest.raises(ValueError, match=r"swir22.*swir16"):
        fixed_threshold(_stack(bands=SIX).sel(band=["red", "nir", "swir16"]))


def test_unsorted_time_is_refused():
    stack = _stack()
    with pytest.raises(ValueError, match="sortby"):
        fixed_threshold(stack.isel(time=[1, 0, 2, 3]))


# --- NIR control ratio (Marx, Windisch & Kim 2019) ----------------------------------------

def test_control_ring_is_a_ring_at_the_given_distances():
    village = np.zeros((21, 21), bool)
    village[10, 10] = True
    ring = control_ring(village, inner_m=10, outer_m=30, pixel_size=10)
    assert not ring[10, 10] and not ring[10, 11]  # the village and the 10 m gap
    assert ring[10, 12] and ring[10, 13] and ring[12, 12]  # 20, 30 and 28.3 m
    assert not ring[10, 14] and not ring[13, 11]  # 40 and 31.6 m
    with pytest.raises(ValueError, match="holds no pixel"):
        control_ring(village, inner_m=0, outer_m=5, pixel_size=10)


def test_control_ratio_dates_the_burn_inside_the_village():
    village, ring = _masks()
    first_seen = control_ratio(_stack(bands=FOUR), village_mask=village, control_mask=ring)
    assert first_seen.dtype == np.int16
    np.testing.assert_array_equal(first_seen, _expected(2))
    alerts = control_ratio_village(_stack(bands=FOUR), village_mask=village, control_mask=ring)
    assert alerts.tolist() == [False, False, True, False]


def test_control_ratio_ignores_a_scene_wide_darkening():
    stack = _stack(bands=FOUR, burn_from=None)
    stack["reflectance"].values[2:] *= 0.75  # haze or a darker satellite, on every later scene
    nir = stack["reflectance"].sel(band="nir").values
    assert (nir[2][VILLAGE] < 0.8 * nir[1][VILLAGE]).all()  # a plain NIR drop would call it all burned
    village, ring = _masks()
    assert (control_ratio(stack, village_mask=village, control_mask=ring) == -1).all()
    assert not control_ratio_village(stack, village_mask=village, control_mask=ring).any()


def test_control_ratio_needs_the_drop_to_persist():
    stack = _stack(bands=FOUR, burn_from=None)
    _set_spectrum(stack, 2, BURN, CHAR)  # dark on one scene only, back on the next
    village, ring = _masks()
    assert (control_ratio(stack, village_mask=village, control_mask=ring) == -1).all()
    assert not control_ratio_village(stack, village_mask=village, control_mask=ring).any()
    np.testing.assert_array_equal(control_ratio(stack, village_mask=village, control_mask=ring, persistence=1),
                                  _expected(2))
    np.testing.assert_array_equal(fixed_threshold(stack), _expected(2))  # the pairwise rule has no such guard


def test_control_ratio_persistence_counts_clear_observations_only():
    stack = _stack(n_time=5, bands=FOUR)
    _set_spectrum(stack, 3, BURN, {name: 0.5 for name in FOUR})  # cloud over the burn on scene 3
    stack["clear"].values[3, BURN[0], BURN[1]] = False
    village, ring = _masks()
    np.testing.assert_array_equal(control_ratio(stack, village_mask=village, control_mask=ring), _expected(2))
    # Read unmasked, the bright cloud breaks the run and scene 4 has no successor to confirm it.
    assert (control_ratio(stack, village_mask=village, control_mask=ring, use_clear_mask=False) == -1).all()


def test_control_ratio_village_skips_a_clouded_date_and_alerts_each_burning():
    stack = _stack(n_time=7, bands=FOUR, burn_from=None)
    first, second = (slice(15, 35), slice(15, 45)), (slice(35, 45), slice(15, 45))
    for t in range(2, 7):
        _set_spectrum(stack, t, first, CHAR)
    for t in range(5, 7):
        _set_spectrum(stack, t, second, CHAR)
    stack["clear"].values[3, VILLAGE[0], VILLAGE[1]] = False  # the whole village under cloud
    village, ring = _masks()
    alerts = control_ratio_village(stack, village_mask=village, control_mask=ring)
    assert alerts.tolist() == [False, False, True, False, False, True, False]


def test_control_ratio_refuses_an_overlapping_control():
    village, _ = _masks()
    with pytest.raises(ValueError, match="overlaps"):
        control_ratio(_stack(bands=FOUR), village_mask=village, control_mask=np.ones((SIZE, SIZE), bool))
    with pytest.raises(ValueError, match="drop"):
        control_ratio(_stack(bands=FOUR), village_mask=village, control_mask=~village, drop=20)
