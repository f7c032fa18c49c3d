"""Known-answer tests of the simulator: the truth it records must be what its pixels show."""

from __future__ import annotations

import json
import math
import re
from datetime import timezone

import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import window
from skimage.registration import phase_cross_correlation

from pipeline.sim import ground, imaging, materials, simulate, sky
from pipeline.grid import grid_for_bounds
from pipeline.sim.simulate import SIMULATOR_VERSION, simulate_village_series

# A 900 m square in central Mali (UTM 30N, about 13.7 N 3.0 W): 301 x 301 pixels at 3 m.
GRID = grid_for_bounds((500000, 1520000, 500900, 1520900), "EPSG:32630", 3.0)
SEED = 7
SIZES = {"n_compounds": 40, "n_burned_first": 25}
ATTACK, RETURN = "attack-2024-01-27", "return-2024-02-01"


@pytest.fixture(scope="module")
def series() -> simulate.SimulatedSeries:
    return simulate_village_series(GRID, seed=SEED, **SIZES)


def _ground_reflectance(scene: simulate.SimulatedScene) -> np.ndarray:
    """Undo the scene's gain, offset, haze and shift: back to surface reflectance on the grid."""
    m = scene.metadata
    obs = scene.reflectance / 10000.0
    gain, offset = (np.array(m[k])[:, None, None] for k in ("gain", "offset"))
    path = np.array(m["haze_path_reflectance"])[:, None, None]
    rho = ((obs - offset) / gain - path) / m["haze_transmittance"]
    back = -np.array(scene.true_shift_px)
    return np.stack([ndimage.shift(band, back, order=1, mode="nearest") for band in rho])


def _stable(series: simulate.SimulatedSeries) -> np.ndarray:
    """Pixels at least 3 px from any burn and from the grid edge (where shifts bring new ground)."""
    mask = ~ndimage.binary_dilation(series.truth_first_visible >= 0, iterations=3)
    mask[:8], mask[-8:], mask[:, :8], mask[:, -8:] = False, False, False, False
    return mask


@pytest.mark.slow
def test_same_seed_gives_identical_series(series):
    again = simulate_village_series(GRID, seed=SEED, **SIZES)
    for a, b in zip(series.scenes, again.scenes):
        np.testing.assert_array_equal(a.reflectance, b.reflectance)
        np.testing.assert_array_equal(a.udm2, b.udm2)
        assert a.true_shift_px == b.true_shift_px and a.metadata == b.metadata
    np.testing.assert_array_equal(series.truth_first_visible, again.truth_first_visible)
    assert series.truth_burns.geometry.geom_equals_exact(again.truth_burns.geometry, 1e-9).all()
    assert series.metadata == again.metadata


@pytest.mark.slow
def test_other_seed_gives_other_village(series):
    other = simulate_village_series(GRID, seed=SEED + 1, **SIZES)
    assert not np.array_equal(other.truth_first_visible, series.truth_first_visible)
    assert other.scenes[0].true_shift_px != series.scenes[0].true_shift_px


def test_shapes_dtypes_and_nodata(series):
    h, w = GRID.shape
    for scene in series.scenes:
        assert scene.reflectance.shape == (4, h, w) and scene.reflectance.dtype == np.uint16
        assert scene.udm2.shape == (8, h, w) and scene.udm2.dtype == np.uint8
        # 0 is nodata: the simulator covers the whole grid, so it must never write it.
        assert scene.reflectance.min() >= 1 and scene.reflectance.max() <= 10000
        assert set(np.unique(scene.udm2[:6])) <= {0, 1} and scene.udm2[6].max() <= 100
        assert not scene.udm2[7].any() and not scene.udm2[1].any() and not scene.udm2[4].any()
        assert not scene.reflectance.flags.writeable
    assert series.truth_first_visible.shape == (h, w) and series.truth_first_visible.dtype == np.int16


def test_five_acquisitions_at_1038_utc(series):
    days = [(s.acquired.month, s.acquired.day) for s in series.scenes]
    assert days == [(1, 26), (1, 27), (1, 28), (1, 31), (2, 1)]
    for k, scene in enumerate(series.scenes):
        assert scene.acquired.tzinfo is not None and scene.acquired.utcoffset().total_seconds() == 0
        assert (scene.acquired.hour, scene.acquired.minute, scene.acquired.second) == (10, 38, 0)
        assert re.fullmatch(rf"2024\d{{4}}_103800_sim_d{k}", scene.scene_id)
        iso = scene.acquired.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert scene.metadata["acquired"] == iso
    assert len({s.satellite_id for s in series.scenes}) == 5


def test_truth_dates_follow_the_reported_events(series):
    truth = series.truth_first_visible
    assert set(np.unique(truth)) == {-1, 2, 4}  # never 0, 1 or 3: nothing burned before the 27th
    burns = series.truth_burns
    assert (burns.event == ATTACK).sum() == SIZES["n_burned_first"]
    assert (burns.event == RETURN).sum() == SIZES["n_compounds"] - SIZES["n_burned_first"]
    assert set(burns.first_visible[burns.event == ATTACK]) == {"2024-01-28T10:38:00Z"}
    assert set(burns.first_visible[burns.event == RETURN]) == {"2024-02-01T10:38:00Z"}
    # The raster truth is the footprints' >= 50 % cover: its area matches theirs closely.
    for event, index in ((ATTACK, 2), (RETURN, 4)):
        raster_m2 = np.sum(truth == index) * GRID.pixel_area_m2
        assert raster_m2 == pytest.approx(burns.area[burns.event == event].sum(), rel=0.15)


def test_footprints_lie_in_their_compounds(series):
    assert series.truth_burns.crs == series.compounds.crs == GRID.crs
    outlines = series.compounds.set_index("compound_id").geometry
    for row in series.truth_burns.itertuples():
        outline = outlines[row.compound_id]
        assert outline.buffer(0.6, join_style="mitre").contains(row.geometry)
        assert 0.6 < row.geometry.area / outline.area < 1.0  # "most of the compound"
        assert series.settlement.contains(outline.centroid)


def test_char_darkens_nir_inside_the_truth_only(series):
    before, after = _ground_reflectance(series.scenes[1]), _ground_reflectance(series.scenes[2])
    truth = series.truth_first_visible
    drop = before[3] - after[3]
    assert drop[truth == 2].mean() > 0.15  # char (~0.06) replacing thatch and yards (~0.33)
    assert abs(np.median(drop[truth == 4])) < 0.02  # the return has not happened yet
    stable = _stable(series)
    for band in range(4):
        assert abs(np.median(after[band][stable] - before[band][stable])) < 0.02
    assert np.mean(drop[stable] > 0.1) < 0.001


def test_return_burns_show_on_1_february_not_31_january(series):
    truth = series.truth_first_visible
    cloudy = series.scenes[3]
    clear_31 = ndimage.shift(cloudy.udm2[0].astype(float), -np.array(cloudy.true_shift_px), order=0) > 0
    r28, r31, r01 = (_ground_reflectance(series.scenes[k])[3] for k in (2, 3, 4))
    later = (truth == 4) & clear_31
    assert later.sum() > 50
    assert abs(np.median(r28[later] - r31[later])) < 0.02
    assert np.mean(r28[truth == 4] - r01[truth == 4]) > 0.15


def test_cloud_only_on_31_january_and_flagged(series):
    for k, scene in enumerate(series.scenes):
        clear, shadow, cloud = (scene.udm2[band].astype(bool) for band in (0, 2, 5))
        assert cloud.any() == (k == 3) and scene.metadata["cloud"] == (k == 3)
        assert not shadow.any() or k == 3
        assert not (clear & (cloud | shadow)).any()
    cloudy = series.scenes[3]
    core = ndimage.binary_erosion(cloudy.udm2[5].astype(bool), iterations=6)
    assert core.any() and (cloudy.reflectance[:, core] > 4000).all(axis=0).mean() > 0.9
    assert (cloudy.udm2[6][cloudy.udm2[5] == 1] < cloudy.udm2[6][cloudy.udm2[0] == 1].min()).all()
    info = series.metadata["cloud"]
    returners = set(series.truth_burns.compound_id[series.truth_burns.event == RETURN])
    assert set(info["compound_ids_under_cloud"]) & returners
    hidden = series.truth_burns[series.truth_burns.compound_id.isin(info["compound_ids_under_cloud"])
                                & (series.truth_burns.event == RETURN)]
    assert set(hidden.last_clear_before) == {"2024-01-28T10:38:00Z"}  # 31 January saw nothing there


def test_cloud_shadow_points_away_from_the_sun(series):
    info = series.metadata["cloud"]
    east, north = info["shadow_offset_east_north_m"]
    assert math.hypot(east, north) == pytest.approx(
        info["cloud_base_m"] / math.tan(math.radians(info["sun_elevation"])), abs=1.0)
    bearing = math.degrees(math.atan2(east, north)) % 360
    assert abs((bearing - info["sun_azimuth"]) % 360 - 180) < 0.2
    assert 120 < info["sun_azimuth"] < 160 and 40 < info["sun_elevation"] < 60  # mid-morning, January


def test_haze_flagged_as_light_and_still_clear(series):
    hazy = [s.metadata["haze"] != "none" for s in series.scenes]
    assert hazy == [False, True, False, False, True]
    for scene, is_hazy in zip(series.scenes, hazy):
        assert scene.udm2[3].all() == is_hazy and scene.udm2[0].all() == (scene.udm2[5].sum() == 0)
    # Dust scatters blue most: the blue path radiance exceeds the NIR one.
    path = series.scenes[4].metadata["haze_path_reflectance"]
    assert path[0] > path[3] > 0


def _registration_error(reference: np.ndarray, moving: np.ndarray, expected: np.ndarray) -> np.ndarray:
    # Plain (not phase-normalised) cross-correlation of windowed, zero-mean images: the scenes
    # are aliased (1 m detail box-integrated to 3 m), and phase normalisation would weigh the
    # aliased high frequencies as much as the true ones, biasing the sub-pixel peak by ~0.1 px.
    hann = window("hann", reference.shape)
    a, b = (reference - reference.mean()) * hann, (moving - moving.mean()) * hann
    found, _, _ = phase_cross_correlation(a, b, upsample_factor=100, normalization=None)
    return found - expected


def test_shift_convention_against_an_unshifted_rendering(series):
    land = ground.build_landscape(GRID, seed=SEED, **SIZES)
    ground_nir = materials.LUT[3][land.labels] * land.texture
    unshifted = imaging.image_ground(ground_nir, (0.0, 0.0), GRID.shape)
    for scene in series.scenes[:2]:  # before any burn: same ground as the unshifted rendering
        dy, dx = scene.true_shift_px
        assert 0.3 <= abs(dy) <= 4 and 0.3 <= abs(dx) <= 4
        # Content displaced by +(dy, dx) is put back by shifting it by (-dy, -dx).
        error = _registration_error(unshifted, scene.reflectance[3].astype(float), np.array([-dy, -dx]))
        assert np.abs(error).max() < 0.1


def test_relative_shift_between_scenes(series):
    first, second = series.scenes[0], series.scenes[1]
    expected = np.array(first.true_shift_px) - np.array(second.true_shift_px)
    error = _registration_error(first.reflectance[3].astype(float), second.reflectance[3].astype(float),
                                expected)
    assert np.abs(error).max() < 0.1


def test_image_matches_map_coordinates():
    # Independent computation of the same imaging: 3x3 sub-samples by map_coordinates(order=1).
    rng = np.random.default_rng(0)
    shape = (20, 24)
    m = imaging.MARGIN_M
    ground = rng.random((3 * shape[0] + 2 * m, 3 * shape[1] + 2 * m)).astype(np.float32)
    dy, dx = 1.37, -2.61
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    total = sum(ndimage.map_coordinates(ground, [m + 3 * (rows - dy) + k, m + 3 * (cols - dx) + j], order=1)
                for k in range(3) for j in range(3))
    expected = ndimage.gaussian_filter(total / 9.0, imaging._PSF_SIGMA_PX, mode="nearest")
    got = imaging.image_ground(ground, (dy, dx), shape)
    np.testing.assert_allclose(got[3:-3, 3:-3], expected[3:-3, 3:-3], atol=1e-5)


def test_everything_says_simulated_and_is_json(series):
    assert series.metadata["simulated"] is True and series.metadata["version"] == SIMULATOR_VERSION
    json.dumps(series.metadata)
    for scene in series.scenes:
        assert scene.metadata["simulated"] is True
        json.dumps(scene.metadata)
    assert "simulated" in repr(series)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_compounds": 10, "n_burned_first": 11}, "n_burned_first"),
        ({"n_compounds": 0, "n_burned_first": 0}, "n_compounds"),
        ({"scenario": "flood"}, "scenario"),
        ({"seed": -1}, "seed"),
        ({"n_compounds": 2.5}, "integer"),
        ({"n_compounds": 220, "n_burned_first": 150}, "n_compounds <= about"),
    ],
)
def test_bad_arguments_say_what_and_how_to_fix(kwargs, message):
    args = {**SIZES, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_village_series(GRID, **args)


def test_grid_must_be_3_m_and_metric():
    with pytest.raises(ValueError, match="3 m"):
        simulate_village_series(grid_for_bounds((500000, 1520000, 501000, 1521000), "EPSG:32630", 10.0),
                                **SIZES)
    with pytest.raises(ValueError, match="projected"):
        simulate_village_series(grid_for_bounds((0, 0, 900, 900), "EPSG:4326", 3.0), **SIZES)
    with pytest.raises(ValueError, match="too small"):
        simulate_village_series(grid_for_bounds((500000, 1520000, 500300, 1520300), "EPSG:32630", 3.0),
                                **SIZES)


def test_coarse_band_matches_block_average_and_bilinear():
    # Independent computation of a 20 m band delivered on the 10 m grid: mean of 20 x 20 m
    # ground blocks aligned with the padded origin, PSF, then bilinear interpolation at the
    # 10 m pixel centres with scipy's RegularGridInterpolator.
    from scipy.interpolate import RegularGridInterpolator

    rng = np.random.default_rng(1)
    shape, sub, margin, pad = (16, 18), 10, 60, 4
    ground = rng.random((sub * shape[0] + 2 * margin, sub * shape[1] + 2 * margin)).astype(np.float32)
    start = margin - sub * pad
    n_r, n_c = shape[0] + 2 * pad, shape[1] + 2 * pad
    window_ = ground[start:start + sub * n_r, start:start + sub * n_c]
    blocks = window_.reshape(n_r // 2, 2 * sub, n_c // 2, 2 * sub).mean(axis=(1, 3))
    blocks = ndimage.gaussian_filter(blocks, imaging._PSF_SIGMA_PX)
    centres_r, centres_c = 2 * np.arange(n_r // 2) + 0.5, 2 * np.arange(n_c // 2) + 0.5  # in 10 m pixels
    interp = RegularGridInterpolator((centres_r, centres_c), blocks)
    rows, cols = np.mgrid[pad:pad + shape[0], pad:pad + shape[1]]
    expected = interp(np.stack([rows.ravel(), cols.ravel()], axis=1)).reshape(shape)
    got = imaging.image_ground(ground, (0.0, 0.0), shape, sub=sub, margin=margin, pad=pad, coarse=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_tree_shadow_falls_away_from_the_sun_at_its_height():
    # One 10 m tree of crown radius 3 m on bare ground: its shadow's centre lies
    # (height - crown half-depth) / tan(elevation) away in the anti-solar azimuth.
    land = ground.build_landscape(GRID, seed=SEED, **SIZES)
    land.labels = np.full((200, 200), materials.SAND, dtype=np.uint8)
    land.trees = np.array([[100.0, 100.0, 3.0, 10.0]])
    land.deciduous = np.zeros(1, dtype=bool)
    for azimuth, elevation in ((140.0, 48.0), (125.0, 38.0)):
        shaded = sky.tree_light(land, (azimuth, elevation), 0.0) < 1
        v, u = (np.mean(a) + 0.5 for a in np.nonzero(shaded))
        reach = (10.0 - 0.45 * 3.0) / math.tan(math.radians(elevation))
        az = math.radians(azimuth)
        assert (u - 100.0, v - 100.0) == pytest.approx((-reach * math.sin(az), reach * math.cos(az)), abs=0.3)
