"""Known-answer tests for the analysis stages: inject the answer, get it back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from pipeline.stages.change import consecutive_change
from pipeline.config import Params
from pipeline.stages.coregister import coregister, estimate_shift, masked_correlation, undo_shift
from pipeline.stages.dating import date_burns
from pipeline.grid import grid_for_bounds
from pipeline.stages.indices import burn_index, choose_index
from pipeline.stages.normalise import clearest_scene, fit_linear_normalisation, normalise, wants_normalisation
from pipeline.stages.perimeter import extent_dates, extent_mask, extent_polygons
from pipeline.stages.polygons import burn_polygons
from pipeline.stages.threshold import background_and_noise, burn_mask, robust_sigma

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
NIR_LEVELS = {"burn_level": 0.08}


def _texture(shape=(360, 360), seed=0) -> np.ndarray:
    """A ground-like texture: blobs of several sizes, reflectance ~0.1-0.4."""
    rng = np.random.default_rng(seed)
    field = sum(ndimage.gaussian_filter(rng.random(shape), s) * w for s, w in ((1.5, 1.0), (4, 2.0), (12, 3.0)))
    field = (field - field.min()) / (field.max() - field.min())
    return (0.1 + 0.3 * field).astype(np.float64)


def _displace(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Content displaced by (+dy, +dx), the convention of pipeline.stages.coregister."""
    return ndimage.shift(image, (dy, dx), order=3, mode="nearest")


# --- co-registration -------------------------------------------------------------------

@pytest.mark.parametrize("true_shift", [(2.37, -1.62), (-0.41, 0.18), (12.6, 7.25)])
def test_shift_recovered_despite_burn_gain_and_noise(true_shift):
    rng = np.random.default_rng(1)
    ground = _texture((400, 400))
    moving = _displace(ground, *true_shift)
    moving = 0.9 * moving + 0.03  # haze-like gain and offset
    moving[150:230, 160:260] = 0.04  # a large burn: must not pull the estimate
    moving += rng.normal(0, 0.004, moving.shape)
    est = estimate_shift(ground, moving)
    assert est.converged
    assert abs(est.dy - true_shift[0]) < 0.05 and abs(est.dx - true_shift[1]) < 0.05
    assert est.inlier_fraction < 0.98  # the burn was recognised as an outlier


def test_self_registration_is_zero():
    ground = _texture()
    est = estimate_shift(ground, ground.copy())
    assert abs(est.dy) < 1e-3 and abs(est.dx) < 1e-3
    assert est.gain == pytest.approx(1.0, abs=1e-3)


def test_masked_cloud_is_ignored():
    ground = _texture((400, 400))
    moving = _displace(ground, 1.3, -2.7)
    moving[:150, :] = 0.6  # a bright cloud over the top, flagged in the mask
    mask = np.ones(moving.shape, bool)
    mask[:160, :] = False
    est = estimate_shift(ground, moving, moving_mask=mask)
    assert abs(est.dy - 1.3) < 0.05 and abs(est.dx + 2.7) < 0.05


def test_undo_shift_restores_content():
    ground = _texture()
    back = undo_shift(_displace(ground, 3.4, -1.2), 3.4, -1.2)
    inner = (slice(10, -10), slice(10, -10))
    assert np.nanmax(np.abs(back[inner] - ground[inner])) < 0.01
    assert np.isnan(back[-2:, :]).all()  # no source beyond the edge: not observed, not invented


@pytest.mark.parametrize("dy, dx", [(0.3, -0.7), (2.0, 3.9), (-9.4, 9.6), (0.0, 0.0), (12.5, -0.2)])
def test_undo_shift_moves_as_scipy_shift_does(dy, dx):
    """The translation is scipy's cubic spline shift computed with four taps per axis (and scipy's own
    shift beyond its padding): the same numbers, to float32, edges included."""
    rng = np.random.default_rng(7)
    image = (ndimage.gaussian_filter(rng.random((137, 151)), 1.2) * 0.4).astype(np.float32)
    scipy_way = ndimage.shift(image.astype(np.float64), (-dy, -dx), order=3, mode="nearest").astype(np.float32)
    support = ndimage.shift(np.ones(image.shape), (-dy, -dx), order=1, mode="constant", cval=0.0)
    expected = np.where(support > 0.999, scipy_way, np.nan)
    np.testing.assert_array_equal(undo_shift(image, dy, dx), expected)


@pytest.mark.parametrize("shape_a, shape_b", [((90, 120), (90, 120)), ((64, 97), (81, 70))])
def test_masked_correlation_gives_scikit_images_numbers(shape_a, shape_b):
    """The real-FFT masked correlation is scikit-image's (Padfield 2012) to rounding, odd sizes and cut masks included."""
    from skimage.registration._masked_phase_cross_correlation import cross_correlate_masked

    rng = np.random.default_rng(3)
    a, b = (ndimage.gaussian_filter(rng.random(s), 1.5) for s in (shape_a, shape_b))
    mask_a, mask_b = rng.random(shape_a) > 0.15, rng.random(shape_b) > 0.3
    mask_b[:, :10] = False  # a cloud along one edge
    expected = cross_correlate_masked(a, b, mask_a, mask_b, axes=(0, 1), mode="full", overlap_ratio=0.5)
    got = masked_correlation(a, b, mask_a, mask_b, overlap_ratio=0.5)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert (got == 0).sum() == (expected == 0).sum()  # the same lags set aside for too little overlap


@pytest.mark.parametrize("shape_a, shape_b, max_lag, whole", [((90, 120), (90, 120), 7, [False, False]),
                                                              ((64, 97), (81, 70), 12, [False, False]),
                                                              ((20, 300), (20, 300), 25, [True, False])])
def test_masked_correlation_near_zero_lag_is_the_full_ones_window(shape_a, shape_b, max_lag, whole):
    """The shorter transforms give the full correlation's numbers at every lag within ``max_lag``
    (an axis too short to gain is kept whole), with the zero lag where zero_lag_at says."""
    from pipeline.stages.coregister import zero_lag_at

    rng = np.random.default_rng(5)
    a, b = (ndimage.gaussian_filter(rng.random(s), 1.5) for s in (shape_a, shape_b))
    mask_a, mask_b = np.ones(shape_a, bool), rng.random(shape_b) > 0.2
    full = masked_correlation(a, b, mask_a, mask_b, overlap_ratio=0.5)
    near = masked_correlation(a, b, mask_a, mask_b, overlap_ratio=0.5, max_lag=max_lag)
    zero_full, zero_near = np.array(shape_b) - 1, zero_lag_at(shape_a, shape_b, max_lag)
    start = zero_full - zero_near
    np.testing.assert_allclose(near, full[start[0]:start[0] + near.shape[0], start[1]:start[1] + near.shape[1]],
                               rtol=0, atol=1e-9)
    expected_shape = [a_ + b_ - 1 if w else 2 * max_lag + 1 for a_, b_, w in zip(shape_a, shape_b, whole)]
    assert list(near.shape) == expected_shape
    with pytest.raises(ValueError, match="max_lag must be 0 or more"):
        masked_correlation(a, b, mask_a, mask_b, overlap_ratio=0.5, max_lag=-1)


def test_coregister_stack_keeps_labels_and_aligns():
    ground = _texture((300, 300))
    scenes = np.stack([np.stack([ground, ground]), np.stack([_displace(ground, -2.2, 1.6)] * 2)]).astype(np.float32)
    stack = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), scenes), "clear": (("time", "y", "x"), np.ones((2, 300, 300), bool))},
        coords={"time": np.array(["2024-01-27T10:38", "2024-01-28T10:38"], "datetime64[ns]"), "band": ["red", "nir"],
                "scene_id": ("time", ["a", "b"]), "y": np.arange(300.0), "x": np.arange(300.0)},
        attrs={"crs": "EPSG:32630"},
    )
    aligned, shifts = coregister(stack, band="red")
    assert aligned.attrs["crs"] == "EPSG:32630" and list(aligned.band.values) == ["red", "nir"]
    assert abs(shifts[1].dy + 2.2) < 0.05 and abs(shifts[1].dx - 1.6) < 0.05
    diff = np.abs(aligned.reflectance[1, 0] - aligned.reflectance[0, 0]).values[10:-10, 10:-10]
    assert np.nanmax(diff) < 0.01
    assert not aligned.clear[1].values[:, -1].any()  # moved-in edge is not observed


def test_large_scene_is_registered_on_its_clearest_window(monkeypatch):
    import pipeline.stages.coregister as coreg

    monkeypatch.setattr(coreg, "_WINDOW_PX", 256)  # a 600 px scene stands in for a tile
    ground = _texture((600, 600), seed=3)
    moved = _displace(ground, 3.3, -2.1)
    clear = np.ones((2, 600, 600), bool)
    clear[1, :, :380] = False  # cloud over the west of the later scene: the window must go east
    assert coreg._estimation_window(clear[0] & clear[1], 256)[1].start >= 344
    scenes = np.stack([np.stack([ground]), np.stack([moved])]).astype(np.float32)
    stack = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), scenes), "clear": (("time", "y", "x"), clear)},
        coords={"time": np.array(["2024-01-27T10:38", "2024-01-28T10:38"], "datetime64[ns]"), "band": ["red"],
                "scene_id": ("time", ["a", "b"]), "y": np.arange(600.0), "x": np.arange(600.0)},
    )
    _, shifts = coregister(stack, band="red")
    assert abs(shifts[1].dy - 3.3) < 0.05 and abs(shifts[1].dx + 2.1) < 0.05 and shifts[1].reliable
    assert coreg._estimation_window(clear[0], 700) == (slice(None), slice(None))  # small scenes: all of it


# --- normalisation --------------------------------------------------------------------

def test_gain_and_offset_removed_burn_not_normalised_away():
    rng = np.random.default_rng(2)
    ref = np.stack([_texture(seed=s) for s in (3, 4, 5)])
    scene = ref * np.array([1.07, 0.95, 0.9])[:, None, None] + np.array([0.02, -0.01, 0.03])[:, None, None]
    scene[:, 100:200, 100:200] = 0.04  # burned between the dates
    scene += rng.normal(0, 0.003, scene.shape)
    fits, stable = fit_linear_normalisation(scene, ref, np.ones(ref.shape[1:], bool), bands=["green", "red", "nir"])
    for fit, gain, offset in zip(fits, (1.07, 0.95, 0.9), (0.02, -0.01, 0.03)):
        assert fit.gain == pytest.approx(1 / gain, rel=0.01)
        assert fit.offset == pytest.approx(-offset / gain, abs=0.005)
    assert not stable[120:180, 120:180].any()


def test_normalise_stack_maps_onto_reference():
    ref = np.stack([_texture(seed=7), _texture(seed=8)]).astype(np.float32)
    later = (ref * 1.1 + 0.02).astype(np.float32)
    stack = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), np.stack([ref, later])), "clear": (("time", "y", "x"), np.ones((2,) + ref.shape[1:], bool))},
        coords={"band": ["red", "nir"]},
    )
    out, fits = normalise(stack)
    assert np.allclose(out.reflectance[1].values, ref, atol=1e-3)
    assert fits[0][0].gain == 1.0


def test_a_hazy_first_scene_is_not_the_radiometric_reference():
    """The first scene with light haze (+0.025 path in the blue, as the demo's 27 January): the fits onto it
    show another scene clearer at the dark end, and that one becomes the reference; a clear first scene
    stays the reference, whatever the others' gains (5-8 %) and their own haze."""
    ground = np.stack([0.3 * _texture(seed=s) + 0.03 for s in (3, 4, 5)]).astype(np.float32)  # blue, green, red
    path = np.array([0.025, 0.02, 0.015])[:, None, None]

    def fitted(scenes: list[np.ndarray]) -> list:
        stack = xr.Dataset({"reflectance": (("time", "band", "y", "x"), np.stack(scenes).astype(np.float32)),
                            "clear": (("time", "y", "x"), np.ones((len(scenes),) + ground.shape[1:], bool))},
                           coords={"band": ["blue", "green", "red"]})
        return normalise(stack)[1]

    hazy_first = [0.95 * ground + path, 1.05 * ground, 0.97 * ground]
    assert clearest_scene(fitted(hazy_first), 0) in (1, 2)
    clear_first = [ground, 1.08 * ground, 0.92 * ground + 2 * path]
    assert clearest_scene(fitted(clear_first), 0) == 0


# --- indices and change ----------------------------------------------------------------

def test_index_choice_follows_bands():
    assert choose_index(["blue", "green", "red", "nir"]) == "nir"
    assert choose_index(["red", "nir", "swir22"]) == "nbr"
    with pytest.raises(ValueError, match="swir"):
        choose_index(["red", "nir"], "nbr")


def test_nbr_and_bai_known_values():
    scene = xr.DataArray(np.array([[[0.1]], [[0.3]], [[0.1]]]), dims=("band", "y", "x"), coords={"band": ["red", "nir", "swir22"]})
    assert float(burn_index(scene, index="nbr").squeeze()) == pytest.approx(0.5)
    assert float(burn_index(scene, index="bai").squeeze()) == pytest.approx(1 / (0.0 + 0.24**2))
    assert burn_index(scene, index="nbr").attrs["burn_direction"] == -1


def test_change_skips_cloud_and_keeps_bracket():
    values = np.array([0.30, 0.30, 0.31, 0.05, 0.05], np.float32).reshape(5, 1, 1)
    clear = np.array([True, True, False, True, True]).reshape(5, 1, 1)
    out = consecutive_change(xr.DataArray(values, dims=("time", "y", "x"), attrs={"burn_direction": -1}),
                             xr.DataArray(clear, dims=("time", "y", "x")))
    assert np.isnan(out.delta[0, 0, 0]) and np.isnan(out.delta[2, 0, 0])
    assert float(out.delta[3, 0, 0]) == pytest.approx(0.25)
    assert int(out.last_clear[3, 0, 0]) == 1  # compared with the last *clear* date, not the cloudy one
    assert float(out.delta[4, 0, 0]) == pytest.approx(0.0)


# --- threshold, dating, polygons --------------------------------------------------------

def test_noise_alone_gives_no_burn():
    noise = np.random.default_rng(3).normal(0, 0.01, (200, 200)).astype(np.float32)
    mask, info = burn_mask(xr.DataArray(noise, dims=("y", "x")), pixel_area_m2=9.0, **NIR_LEVELS)
    assert int(mask.sum()) == 0 and info.noise_sigma == pytest.approx(0.01, rel=0.05)


def test_mixed_pixels_count_when_half_burned():
    delta = np.zeros((60, 60), np.float32)
    delta[20:30, 20:30] = 0.25
    delta[19, 20:30] = 0.15  # 60 % burned edge row: in
    delta[30, 20:30] = 0.10  # 40 % burned edge row: out
    mask, _ = burn_mask(xr.DataArray(delta, dims=("y", "x")), pixel_area_m2=9.0, **NIR_LEVELS)
    assert mask.values[19, 20:30].all() and not mask.values[30, 20:30].any()
    assert int(mask.sum()) == 110


def test_minimum_mapping_unit_and_darkness_rule():
    delta = np.zeros((60, 60), np.float32)
    delta[5:7, 5:7] = 0.3  # 36 m2 < 50 m2
    delta[30:40, 30:40] = 0.3
    post = np.full((60, 60), 0.05, np.float32)
    post[30:40, 30:40] = 0.3  # did not end dark: a shadow or haze, not char
    mask, _ = burn_mask(xr.DataArray(delta, dims=("y", "x")), post_nir=xr.DataArray(post, dims=("y", "x")), pixel_area_m2=9.0, **NIR_LEVELS)
    assert int(mask.sum()) == 0


def test_two_dates_give_two_dated_polygons_of_known_area():
    grid = grid_for_bounds((500000, 1500000, 500300, 1500300), "EPSG:32630", 3.0)  # 100 x 100 px
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[2:, 10:30, 10:30] = 0.05  # burned before scene 2
    nir[3:, 60:70, 50:80] = 0.05  # burned before scene 3
    clear = np.ones_like(nir, bool)
    clear[2, 55:75, 45:85] = False  # cloud on scene 2 over the second burn
    nir += np.random.default_rng(4).normal(0, 0.004, nir.shape).astype(np.float32)
    times = ["2024-01-26T10:38:00Z", "2024-01-27T10:38:00Z", "2024-01-28T10:38:00Z", "2024-01-31T10:38:00Z"]
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    change = consecutive_change(index, xr.DataArray(clear, dims=("time", "y", "x")))
    dates, _ = date_burns(change, index=index, clear=xr.DataArray(clear, dims=("time", "y", "x")), post_nir=index,
                          params=Params(), pixel_area_m2=9.0)
    polys = burn_polygons(dates, grid=grid, times=times, index_name="nir")
    assert list(polys.first_seen_index) == [2, 3]
    assert polys.area_m2.iloc[0] == pytest.approx(400 * 9.0, rel=0.002)
    assert polys.area_m2.iloc[1] == pytest.approx(300 * 9.0, rel=0.002)
    assert polys.last_clear_before.tolist() == [times[1], times[1]]  # second burn: cloud on 28th widens bracket
    assert polys.polygon_id.iloc[0].startswith("20240128-E")


def test_robust_sigma_ignores_outliers():
    values = np.random.default_rng(5).normal(0, 0.01, 10000)
    values[:500] = 0.5
    assert robust_sigma(values) == pytest.approx(0.01, rel=0.15)


# --- house rules -----------------------------------------------------------------------

def test_noise_is_the_background_peak_width_not_a_second_population_below_it():
    # Regrowth around a fire: a third of the scene greener (change -0.3) than the stable ground.
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.normal(0.0, 0.02, 60000), rng.normal(-0.3, 0.05, 30000), rng.normal(0.4, 0.1, 5000)])
    mode, sigma = background_and_noise(values)
    assert mode == pytest.approx(0.0, abs=0.005)
    assert sigma == pytest.approx(0.02, rel=0.15)  # the MAD of everything below the mode would be ~0.2
    assert 1.4826 * np.median(np.abs(values[values <= mode] - mode)) > 5 * sigma


def test_normalisation_is_for_scenes_without_swir():
    assert wants_normalisation(["blue", "green", "red", "nir"]) and not wants_normalisation(["nir", "swir16", "swir22"])
    assert wants_normalisation(["nir", "swir22"], "always") and not wants_normalisation(["nir"], "never")


# --- burned extent ---------------------------------------------------------------------

def test_extent_closes_lanes_fills_islands_and_keeps_burns_on_the_frame():
    burned = np.zeros((60, 60), bool)
    burned[10:30, 10:20] = burned[10:30, 22:32] = True  # two compounds, a 2-pixel lane between
    burned[40:55, 40:55] = True
    burned[45:50, 45:50] = False  # an unburned island inside a burn
    burned[0:6, 0:60] = True  # a burn along the frame
    extent = extent_mask(burned, pixel_size_m=3.0, close_radius_m=6.0)
    assert extent[15:25, 20:22].all()  # the lane
    assert extent[45:50, 45:50].all()  # the island
    assert extent[0:6].all() and (extent >= burned).all()  # never shrinks, not eaten at the frame
    assert not extent[35:38, 0:8].any()  # unburned ground away from burns stays out
    assert extent_mask(burned, pixel_size_m=3.0, close_radius_m=0.0)[45:50, 45:50].all()  # holes always filled


def test_extent_is_dated_cumulatively_and_counts_its_burns():
    grid = grid_for_bounds((500000, 1500000, 500180, 1500180), "EPSG:32630", 3.0)  # 60 x 60 pixels of 9 m2
    first = np.full((60, 60), -1, np.int16)
    first[10:20, 10:20] = 1
    first[10:20, 22:32] = 2  # joins the first across a 2-pixel gap on date 2
    first[45:55, 45:55] = 2
    dated = extent_dates(first, pixel_size_m=3.0, close_radius_m=6.0)
    assert (dated[10:20, 10:20] == 1).all() and (dated[10:20, 22:32] == 2).all() and (dated[12:18, 20:22] == 2).all()
    assert (dated[first >= 0] <= first[first >= 0]).all()
    times = ["2024-01-26T10:38:00Z", "2024-01-27T10:38:00Z", "2024-01-28T10:38:00Z"]
    extents = extent_polygons(dated, first, grid=grid, times=times)
    assert extents.as_of.tolist() == [times[1], times[2], times[2]]
    first_day = extents.iloc[0]
    assert first_day.area_m2 == pytest.approx(100 * 9.0, rel=0.003) and first_day.burned_ha == pytest.approx(0.09)
    joined = extents[extents.n_burn_polygons == 2].iloc[0]  # the two compounds in one extent, lane included
    assert joined.burned_ha == pytest.approx(0.18) and joined.area_m2 > 200 * 9.0


@pytest.mark.parametrize("seed", range(12))
def test_each_burn_is_counted_in_the_extent_ndimage_maximum_gives_it(seed):
    """The burns per extent read from the burned pixels alone, against ``ndimage.maximum`` over the grid:
    extents made by the closing, and labels laid at random (a burn across two of them takes the larger)."""
    from pipeline.stages.perimeter import _extent_of_each_burn

    rng = np.random.default_rng(seed)
    burned = ndimage.binary_opening(rng.random((90, 120)) < 0.35)
    eight = np.ones((3, 3), bool)
    for labels in (ndimage.label(extent_mask(burned, pixel_size_m=3.0, close_radius_m=6.0), structure=eight)[0],
                   rng.integers(0, 7, burned.shape)):
        burn_labels, n_burn = ndimage.label(burned, structure=eight)
        assert n_burn > 3
        expected = ndimage.maximum(labels, burn_labels, np.arange(1, n_burn + 1)).astype(int)
        assert _extent_of_each_burn(labels, burn_labels, n_burn).tolist() == expected.tolist()




def test_transient_darkening_is_not_a_burn_and_burns_are_confirmed():
    grid = grid_for_bounds((500000, 1500000, 500300, 1500300), "EPSG:32630", 3.0)
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 10:30, 10:30] = 0.10  # unflagged cloud shadow on scene 1, gone on scene 2
    nir[1:, 50:70, 50:70] = 0.05  # char from scene 1 on: it stays
    nir[3, 80:90, 10:30] = 0.05  # burned before the last scene: nothing later can confirm it
    nir += np.random.default_rng(6).normal(0, 0.004, nir.shape).astype(np.float32)
    clear = np.ones_like(nir, bool)
    times = ["2024-01-27T10:38:00Z", "2024-01-28T10:38:00Z", "2024-01-31T10:38:00Z", "2024-02-01T10:38:00Z"]
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    clear_da = xr.DataArray(clear, dims=("time", "y", "x"))
    change = consecutive_change(index, clear_da)
    dates, _ = date_burns(change, index=index, clear=clear_da, post_nir=index, params=Params(), pixel_area_m2=9.0)
    polys = burn_polygons(dates, grid=grid, times=times, index_name="nir")
    assert list(polys.first_seen_index) == [1, 3]  # the shadow is gone, the char and the late burn stay
    assert polys.confirmed.tolist() == [True, False]
    assert not (dates.first_seen.values[10:30, 10:30] >= 0).any()


def test_shadow_back_at_the_usual_hour_after_an_early_scene_is_not_a_burn():
    # Scene 3 is taken at 07:50 instead of 10:38: a tree's shadow, on its ground in every scene taken at
    # the usual hour, lies elsewhere on it, so the last scene seems to darken that ground; nothing later
    # can show it gone. Char on the same last scene is new: every earlier scene saw that ground unburned.
    grid = grid_for_bounds((500000, 1500000, 500300, 1500300), "EPSG:32630", 3.0)
    nir = np.full((5, 100, 100), 0.30, np.float32)
    nir[[0, 1, 2, 4], 10:14, 10:14] = 0.14  # shaded at 10:38, lit at 07:50
    nir[3, 10:14, 18:26] = 0.14  # the long 07:50 shadow, gone on the next scene
    nir[4, 50:62, 50:62] = 0.05  # burned before the last scene
    nir[3:, 80:92, 20:32] = 0.05  # burned before scene 3 ...
    nir[1, 80:86, 20:32] = 0.14  # ... half of its ground shaded on an odd earlier scene only
    nir += np.random.default_rng(7).normal(0, 0.004, nir.shape).astype(np.float32)
    clear = xr.DataArray(np.ones_like(nir, bool), dims=("time", "y", "x"))
    times = ["2024-01-26T10:38:00Z", "2024-01-27T07:50:00Z", "2024-01-28T10:38:00Z", "2024-01-31T07:50:00Z",
             "2024-02-01T10:38:00Z"]
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    change = consecutive_change(index, clear)
    dates, _ = date_burns(change, index=index, clear=clear, post_nir=index, params=Params(), pixel_area_m2=9.0)
    first = dates.first_seen.values
    assert not (first[5:20, 5:20] >= 0).any()  # the shadow back where it always falls
    assert (first[50:62, 50:62] == 4).all()  # the char of the last scene stays
    assert (first[80:92, 20:32] == 3).all()  # and the burn over ground shaded once before
    polys = burn_polygons(dates, grid=grid, times=times, index_name="nir")
    assert sorted(polys.first_seen_index.tolist()) == [3, 4]


@pytest.mark.parametrize("sun_a, sun_b, moved", [
    ((47.64, 139.98), (14.37, 113.84), True),  # 10:38 against 07:50 UTC in central Mali, late January
    ((47.64, 139.98), (47.95, 139.36), False),  # the next day at the same hour
    ((47.64, 139.98), (37.51, 127.23), False),  # an hour earlier: tips under half a height apart
    ((60.0, 90.0), (60.0, 270.0), True),  # the same height from the other side: 1.15 heights apart
    ((47.64, 139.98), None, False),  # unknown: cannot tell
    ((47.64, None), (14.37, 113.84), False),
    ((47.64, 139.98), (float("nan"), 113.84), False),
    ((47.64, 139.98), (-5.0, 113.84), False),  # no sun over lit ground: a corrupt field, not a scene at dawn
    ((47.64, 139.98), (95.0, 113.84), False),
    ((47.64, 139.98), (14.37, 113.84 + 360.0), True),  # an azimuth past a turn is the same direction
])
def test_shadows_move_when_their_tips_lie_more_than_an_object_height_apart(sun_a, sun_b, moved):
    from pipeline.stages.dating import shadows_moved

    assert shadows_moved(sun_a, sun_b) is moved
    assert shadows_moved(sun_b, sun_a) is moved


def _dated_with_scene_1_at_another_hour(nir: np.ndarray, seed: int):
    """``date_burns`` on an NIR series (with a little noise) whose scene 1 is taken at 07:50, the others at 10:38."""
    nir = nir + np.random.default_rng(seed).normal(0, 0.004, nir.shape).astype(np.float32)
    clear = xr.DataArray(np.ones_like(nir, bool), dims=("time", "y", "x"))
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    return date_burns(consecutive_change(index, clear), index=index, clear=clear, post_nir=index, params=Params(),
                      pixel_area_m2=9.0, sun=[(47.6, 140.0), (14.4, 113.8), (47.6, 140.0), (47.6, 140.0)])[0]


def test_a_scene_at_another_hour_does_not_date_a_mark_that_darkens_further_on_the_next_one():
    # Scene 1 is taken at 07:50 instead of 10:38. Ground A lies in a long shadow on it (NIR 0.30 -> 0.10) and
    # burned before scene 2 (0.05): scene 1 cannot tell that shadow from a first burn, so A is first visible on
    # scene 2 and its bracket opens at scene 0. Ground B was already char on scene 1 and looks the same on
    # scene 2: it is dated on scene 1. Without the scenes' suns A is dated on scene 1.
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 10:30, 10:30] = 0.10
    nir[2:, 10:30, 10:30] = 0.05
    nir[1:, 50:70, 50:70] = 0.05
    nir += np.random.default_rng(11).normal(0, 0.004, nir.shape).astype(np.float32)
    clear = xr.DataArray(np.ones_like(nir, bool), dims=("time", "y", "x"))
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    change = consecutive_change(index, clear)

    def dated(sun):
        return date_burns(change, index=index, clear=clear, post_nir=index, params=Params(), pixel_area_m2=9.0,
                          sun=sun)[0]

    usual, early = (47.6, 140.0), (14.4, 113.8)
    for sun in (None, [usual] * 4):
        first = dated(sun).first_seen.values
        assert (first[10:30, 10:30] == 1).all() and (first[50:70, 50:70] == 1).all()
    dates = dated([usual, early, usual, usual])
    first, opened = dates.first_seen.values, dates.last_clear_before.values
    assert (first[10:30, 10:30] == 2).all() and (opened[10:30, 10:30] == 0).all()
    assert (first[50:70, 50:70] == 1).all() and (opened[50:70, 50:70] == 0).all()
    assert (first >= 0).sum() == 800


def test_a_scene_at_another_hour_does_not_date_a_mark_that_is_lighter_on_the_next_one():
    # As above, but the 07:50 shadow is deeper than the burn that followed it (a bluish sky light keeps 0.31 of the
    # NIR: 0.30 -> 0.093), and the compound burned only in part (0.30 -> 0.16 on scene 2): the next scene shows it
    # lighter than scene 1 did, yet still changed. Char does not fade in a day; a shadow passes: A was a shadow on
    # scene 1 and is first visible on scene 2. B, char on both, is dated on scene 1.
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 10:30, 10:30] = 0.093
    nir[2:, 10:30, 10:30] = 0.16
    nir[1:, 50:70, 50:70] = 0.05
    dates = _dated_with_scene_1_at_another_hour(nir, 12)
    first, opened = dates.first_seen.values, dates.last_clear_before.values
    assert (first[10:30, 10:30] == 2).all() and (opened[10:30, 10:30] == 0).all()
    assert (first[50:70, 50:70] == 1).all()


def test_a_scene_at_another_hour_does_not_date_a_shadow_whose_pixels_moved_both_ways_the_next_day():
    # One 07:50 shadow (0.30 -> 0.093) over two yards that burned before scene 2: the west one in part, lighter
    # than the shadow (0.15), the east one to char, darker (0.04). The patch's median move is near nought (half
    # lighter, half darker by as much), but every pixel moved: it was no char on scene 1, and both yards are
    # first visible on scene 2. B, char on both scenes, is dated on scene 1.
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 10:30, 10:30] = 0.093
    nir[2:, 10:30, 10:20] = 0.15
    nir[2:, 10:30, 20:30] = 0.04
    nir[1:, 50:70, 50:70] = 0.05
    dates = _dated_with_scene_1_at_another_hour(nir, 13)
    first = dates.first_seen.values
    assert (first[10:30, 10:30] == 2).all() and (dates.last_clear_before.values[10:30, 10:30] == 0).all()
    assert (first[50:70, 50:70] == 1).all()


def test_char_in_the_shade_of_another_hour_is_dated_on_that_scene_and_the_shadow_beside_it_is_not():
    # A compound burned before scene 1, taken at 07:50: its char (B) lies half in its walls' long shadow
    # (NIR 0.04 on scene 1) and is lit on scene 2 (0.07): lighter, but keeping nine tenths of its change, as char
    # under another sun does. It is dated on scene 1. The walls' shadow over the unburned ground beside it (C,
    # 0.30 -> 0.10) joins it in one patch on scene 1 and is gone on scene 2: no char, dropped as seen and gone.
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 40:60, 40:60] = 0.04
    nir[2:, 40:60, 40:60] = 0.07
    nir[1, 40:60, 60:66] = 0.10
    # E, on B's other side, had burned in part (lit on scene 2: 0.30 -> 0.20) under the same kind of shadow (0.06
    # on scene 1): gone with the shadow by the rule above. Beside it, F burns between scenes 1 and 2, and on
    # scene 2 E is found as F's rim: its bracket opens at scene 0, before the scene that could not tell.
    nir[1, 40:60, 36:40] = 0.06
    nir[2:, 40:60, 36:40] = 0.20
    nir[2:, 40:60, 28:36] = 0.05
    dates = _dated_with_scene_1_at_another_hour(nir, 14)
    first, opened = dates.first_seen.values, dates.last_clear_before.values
    assert (first[40:60, 40:60] == 1).all() and (opened[40:60, 40:60] == 0).all()
    assert (first[40:60, 61:66] < 0).all() and (dates.transient_seen.values[40:60, 61:66] == 1).all()
    assert (first[40:60, 28:36] == 2).all() and (opened[40:60, 28:36] == 1).all()
    assert (first[41:59, 36:39] == 2).all() and (opened[41:59, 36:39] == 0).all()
    assert (first[:, 60:] >= 0).sum() <= 20  # at most a one-pixel rim into C


def test_char_is_judged_without_the_long_shadow_beside_it_and_a_shadow_over_a_later_burn_is_not():
    # Scene 1 is taken at 07:50. A compound's char (B, NIR 0.30 -> 0.04 in the shade of 07:50; lit on scene 2 at
    # 0.08, or at 0.14 on its partly burned west side) joins the long shadow of its walls over the ground to its
    # west (C, 0.30 -> 0.16, gone on scene 2) in one patch. Judged with C, most of the patch looks moved (C gone,
    # the partly burned side keeping 0.6 of its change). B darkened much more than C did (char stands out of a
    # shadow): C is left out of the judgement and B is dated on scene 1. A long shadow (D, 0.30 -> 0.16) over
    # ground that burned before scene 2 (E, 0.06), beside the same shadow over ground that did not burn, darkened
    # as that shadow did: it is not dated on scene 1.
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 10:30, 10:30] = 0.04
    nir[2:, 10:30, 16:30] = 0.08
    nir[2:, 10:30, 10:16] = 0.144
    nir[1, 10:30, 30:48] = 0.16
    nir[1, 60:80, 10:52] = 0.16
    nir[2:, 60:80, 10:30] = 0.06
    dates = _dated_with_scene_1_at_another_hour(nir, 23)
    first, opened = dates.first_seen.values, dates.last_clear_before.values
    assert (first[11:29, 11:29] == 1).all() and (opened[11:29, 11:29] == 0).all()
    assert not (first[10:30, 32:48] >= 0).any()
    assert (first[61:79, 11:29] == 2).all()


def test_the_gone_pixels_are_left_out_of_a_patch_only_beside_char_that_stood_out_of_them():
    from pipeline.stages.dating import _long_shadow_beside_char

    # One row, two patches of four pixels, scene 0 before, scene 1 at the odd hour. Patch 1: two pixels of char
    # (0.30 -> 0.04) beside two of shadow (0.30 -> 0.16); patch 2: shadow over ground that burned since (0.30 ->
    # 0.16) beside shadow over ground that did not. The next clear scene shows both shadows gone (kept 0).
    values = np.full((2, 1, 8), 0.30)
    values[1, 0] = [0.04, 0.04, 0.16, 0.16, 0.16, 0.16, 0.16, 0.16]
    rows, cols = np.zeros(8, int), np.arange(8)
    kept = np.array([0.85, 0.85, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    lab = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    out = _long_shadow_beside_char(np.ones(8, bool), kept, rows, cols, 1, values, -1, np.zeros((1, 8), int), lab, 2)
    assert out.tolist() == [False, False, True, True, False, False, False, False]


def test_char_inside_a_long_shadow_of_another_hour_is_dated_on_that_scene_though_lit_later():
    # Scene 1 is taken at 07:50. A compound burned before it (B, NIR 0.30 -> 0.04 in the shade of 07:50) lies in a
    # wide long shadow (C, 0.30 -> 0.12) that joins it in one patch and outnumbers it: the patch is gone on scene 2,
    # as the shadow is. B stood out of the shadow on scene 1 and is still char on scene 2, lit by the sun of 10:38
    # (0.08: lighter, keeping 0.85 of its change, as char under another sun does): it is dated on scene 1, its
    # bracket from scene 0, not on scene 2 as a burn scene 1 did not show.
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 20:70, 20:70] = 0.12
    nir[1, 40:50, 40:50] = 0.04
    nir[2:, 40:50, 40:50] = 0.08
    dates = _dated_with_scene_1_at_another_hour(nir, 21)
    first, opened = dates.first_seen.values, dates.last_clear_before.values
    assert (first[41:49, 41:49] == 1).all() and (opened[41:49, 41:49] == 0).all()
    assert (first >= 0).sum() <= 100 + 40  # at most a one-pixel rim of the shadow
    assert (dates.transient_seen.values[20:70, 20:70] == 1).mean() > 0.9  # the shadow, seen once and gone


def test_char_seen_after_a_passing_cloud_shadow_is_measured_from_the_ground_before_the_shadow():
    # Scene 1: an unflagged cloud shadow (0.35 of the light) over a whole quarter, gone on scene 2 except where
    # a compound burned meanwhile. From the shadow (NIR 0.105) to char (0.06) the NIR falls by 0.045, under
    # the burn level; from the lit ground before it (0.30) it falls by 0.24. The bracket still opens at
    # scene 1, the last clear scene, on which the burn was not visible.
    nir = np.full((3, 100, 100), 0.30, np.float32)
    nir[1, 10:60, 10:60] = 0.30 * 0.35
    nir[2, 30:40, 30:40] = 0.06
    nir += np.random.default_rng(8).normal(0, 0.004, nir.shape).astype(np.float32)
    clear = xr.DataArray(np.ones_like(nir, bool), dims=("time", "y", "x"))
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    change = consecutive_change(index, clear)
    dates, _ = date_burns(change, index=index, clear=clear, post_nir=index, params=Params(), pixel_area_m2=9.0)
    first = dates.first_seen.values
    assert (dates.transient_seen.values[10:60, 10:60] == 1).mean() > 0.9  # the shadow, seen once and gone
    assert (first[30:40, 30:40] == 2).all() and (first >= 0).sum() == 100
    assert (dates.last_clear_before.values[30:40, 30:40] == 1).all()
    assert dates.delta_at_first.values[35, 35] == pytest.approx(0.24, abs=0.02)


def test_char_inside_wet_soil_gone_on_the_next_scene_is_dated_on_its_own_scene():
    # Scene 1: rain darkened a quarter by a fifth (NIR 0.30 -> 0.24) around a compound that burned before it
    # (0.05); scene 2 shows the ground dry again and the char as it was. The burn's patch grows into the wet
    # soil past the grow threshold and is outnumbered by it: dropped whole, the char would be dated on scene 2,
    # "not visible on scene 1", which showed it. A second compound burned after scene 1 under the same wet
    # soil darkened on scene 1 only as the soil did: it is dated on scene 2.
    nir = np.full((3, 100, 100), 0.30, np.float32)
    nir[1, 10:70, 10:70] = 0.24
    nir[1:, 30:40, 30:40] = 0.05
    nir[2, 55:65, 20:30] = 0.05
    nir += np.random.default_rng(9).normal(0, 0.004, nir.shape).astype(np.float32)
    clear = xr.DataArray(np.ones_like(nir, bool), dims=("time", "y", "x"))
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    change = consecutive_change(index, clear)
    dates, _ = date_burns(change, index=index, clear=clear, post_nir=index, params=Params(), pixel_area_m2=9.0)
    first, opened = dates.first_seen.values, dates.last_clear_before.values
    assert (first[30:40, 30:40] == 1).all() and (opened[30:40, 30:40] == 0).all()
    assert dates.confirmed.values[30:40, 30:40].all()
    assert (first[55:65, 20:30] == 2).all()
    assert (first >= 0).sum() == 200  # neither burn keeps a rim of wet soil
    assert (dates.transient_seen.values[10:70, 10:70] == 1).mean() > 0.9  # the wet soil, seen once and gone
    assert (dates.transient_seen.values[30:40, 30:40] == -1).all()


@pytest.mark.parametrize("which", [[0, 1], [2], [3, 0, 1]])
def test_the_visible_bands_mean_is_numpys_bit_for_bit(which):
    """Dating reads the mean of blue and green on every scene; the faster sum gives the reduction's numbers."""
    from pipeline.stages.dating import _band_mean

    rng = np.random.default_rng(len(which))
    reflectance = rng.random((3, 4, 57, 61)).astype(np.float32)
    reflectance[1, 0, :5] = np.nan  # not observed stays not observed
    expected = reflectance[:, which].mean(axis=1)
    got = _band_mean(reflectance, which)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_polygon_sums_over_the_labelled_pixels_are_ndimages_bit_for_bit(dtype):
    """Polygon figures (pixels, mean change, shares) sum over the labelled pixels only: the same numbers."""
    from pipeline.stages.polygons import _sum_by_label

    rng = np.random.default_rng(7)
    labels, n = ndimage.label(rng.random((180, 230)) < 0.3)
    values = (rng.random((180, 230)) * 1000).astype(dtype)
    ids = np.arange(1, n + 1)
    np.testing.assert_array_equal(_sum_by_label(values, labels, ids), ndimage.sum_labels(values, labels, ids))
    counts = _sum_by_label(np.ones_like(labels), labels, ids)
    np.testing.assert_array_equal(_sum_by_label(values, labels, ids) / counts, ndimage.mean(values, labels, ids))
    assert _sum_by_label(values, np.zeros_like(labels), np.arange(1, 1)).size == 0


@pytest.mark.parametrize("correlations, reference, expected", [
    ([1.0, 0.95, 0.30, 0.94, 0.95], 0, [2]),  # wet soil on one date: the ground came back after it
    ([1.0, 0.95, 0.36, 0.36, 0.36], 0, []),  # a large burn: every scene from it on matches less, and shows it
    ([1.0, 0.30, 0.31, 0.95], 0, [1, 2]),  # two wet dates in a row, dry again after
    ([0.36, 0.36, 1.0, 0.95], 2, []),  # the reference after the burn: the scenes before it are the change's other side
    ([1.0, 0.999, 0.95], 0, []),  # matched, though its shift could not be trusted (not converged): kept
])
def test_a_scene_is_unmatched_only_when_the_ground_matched_before_and_after_it(correlations, reference, expected):
    """A middle scene whose ground does not match the reference is read as not observed only when the change came and
    went (wet soil, dust). A post-fire scene that a large burn set apart from a pre-fire reference was discarded: the
    burn was dated on the last scene, months late."""
    from pipeline.run import _unmatched
    from pipeline.stages.coregister import ShiftEstimate

    shifts = [ShiftEstimate(0.0, 0.0, correlation=c, converged=c != 0.999, reliable=c >= 0.6 and c != 0.999)
              for c in correlations]
    assert _unmatched(shifts, replace(Params(), reference_scene=reference)) == expected


def test_the_per_patch_median_is_numpys_nanmedian_of_each_patch():
    """All patches' medians in one sort: the same numbers as a nanmedian per patch (odd and even counts, NaN left
    out, a patch with no pixel to read NaN), for every patch of a chunk at once."""
    from pipeline.stages.dating import _median_by_patch

    rng = np.random.default_rng(5)
    n, size = 300, 20_000
    lab = rng.integers(1, n + 1, size)
    values = rng.normal(size=size).astype(np.float32)
    values[rng.random(size) < 0.05] = np.nan
    where = (rng.random(size) < 0.8) & (lab != 7)  # patch 7 has nothing to read
    expected = [np.nanmedian(values[(lab == i) & where]) if ((lab == i) & where & ~np.isnan(values)).any() else np.nan
                for i in range(1, n + 1)]
    got = _median_by_patch(values, where, lab, n)
    assert np.array_equal(got, np.array(expected, dtype=np.float64), equal_nan=True) and np.isnan(got[6])
