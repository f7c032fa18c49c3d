"""Property tests: try to break the pure stage functions with generated inputs.

Each property holds for every input in its domain, which is stated in the strategy: the
reflectance of a scene is in [0, 1] (surface reflectance of soil, vegetation, char), an
index change is bounded by 1e6 (BAI, the largest index, stays under 1e5 for reflectance
quantised at 1e-4). Examples are few and derandomised so the file runs in seconds and a
failure reproduces exactly; no example database is written into the project.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from pipeline.stages.change import consecutive_change
from pipeline.stages.coregister import estimate_shift
from pipeline.grid import Grid
from pipeline.stages.indices import burn_index
from pipeline.stages.normalise import fit_linear_normalisation
from pipeline.stages.polygons import burn_polygons
from pipeline.stages.threshold import burn_mask

BOUNDED = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])
CHAR_POINT = (0.1, 0.06)  # red, NIR of char in BAI (Chuvieco et al. 2002)
BAI_FLOOR = 0.01  # the documented floor on BAI's distance to the char point (indices.BAI_MIN_DISTANCE)

shapes_2d = st.tuples(st.integers(1, 24), st.integers(1, 24))
reflectance = st.floats(0.0, 1.0, width=32)


def _scene(values: np.ndarray, bands: list[str]) -> xr.DataArray:
    return xr.DataArray(values, dims=("band", "y", "x"), coords={"band": bands}, attrs={"crs": "EPSG:32630"})


def _texture(seed: int, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Random ground: white noise smoothed to features of about ``sigma`` pixels, spread over [0, 1]."""
    noise = np.random.default_rng(seed).random(shape)
    smooth = ndimage.gaussian_filter(noise, sigma=[0] * (len(shape) - 2) + [sigma, sigma])
    lo = smooth.min(axis=(-2, -1), keepdims=True)
    hi = smooth.max(axis=(-2, -1), keepdims=True)
    return (smooth - lo) / (hi - lo)


# --- indices ---------------------------------------------------------------------------


@BOUNDED
@given(data=st.data(), index=st.sampled_from(["nbr", "ndvi"]))
def test_normalised_differences_are_in_minus_one_one(data, index):
    shape = data.draw(shapes_2d)
    values = data.draw(hnp.arrays(np.float32, (3, *shape), elements=reflectance))
    out = burn_index(_scene(values, ["red", "nir", "swir22"]), index=index)
    assert out.shape == shape and out.dims == ("y", "x") and out.attrs["crs"] == "EPSG:32630"
    other = values[0] if index == "ndvi" else values[2]
    defined = np.abs(values[1] + other) > 1e-6  # a pair summing to zero has no ratio: NaN, read as not observed
    assert np.all(np.isfinite(out.values[defined])) and np.all(np.isnan(out.values[~defined]))
    assert np.all((out.values[defined] >= -1) & (out.values[defined] <= 1))


@BOUNDED
@given(data=st.data())
def test_bai_is_finite_and_positive_off_the_char_point(data):
    shape = data.draw(shapes_2d)
    values = data.draw(hnp.arrays(np.float32, (2, *shape), elements=reflectance))
    at_char = (values[0] == np.float32(CHAR_POINT[0])) & (values[1] == np.float32(CHAR_POINT[1]))
    values[1][at_char] = 0.5  # the char point itself is the known singularity, tested below
    out = burn_index(_scene(values, ["red", "nir"]), index="bai")
    assert out.shape == shape and out.dtype == np.float32
    assert np.all(np.isfinite(out.values)) and np.all(out.values > 0)


def test_bai_is_finite_at_the_char_point():
    values = np.array([[[CHAR_POINT[0]]], [[CHAR_POINT[1]]]], np.float32)
    assert np.isfinite(burn_index(_scene(values, ["red", "nir"]), index="bai").values).all()


@BOUNDED
@given(data=st.data())
def test_bai_is_chuvieco_s_value_away_from_the_char_point_and_capped_near_it(data):
    # The floor on the distance changes nothing farther than BAI_MIN_DISTANCE from the char point.
    shape = data.draw(shapes_2d)
    values = data.draw(hnp.arrays(np.float32, (2, *shape), elements=reflectance))
    out = burn_index(_scene(values, ["red", "nir"]), index="bai").values
    distance2 = (0.1 - values[0].astype(np.float64)) ** 2 + (0.06 - values[1].astype(np.float64)) ** 2
    far = distance2 > BAI_FLOOR ** 2 * 1.001
    assert np.allclose(out[far], (1.0 / distance2[far]).astype(np.float32), rtol=1e-4)
    assert np.all(np.isfinite(out)) and np.all(out <= np.float32(1 / BAI_FLOOR ** 2) * 1.0001)


# --- change ----------------------------------------------------------------------------


@BOUNDED
@given(data=st.data(), direction=st.sampled_from([-1, 1]))
def test_change_is_taken_against_each_pixels_last_clear_scene(data, direction):
    n_time = data.draw(st.integers(1, 6))
    shape = (n_time, *data.draw(st.tuples(st.integers(1, 8), st.integers(1, 8))))
    finite = st.floats(-1e6, 1e6, width=32)
    values = data.draw(hnp.arrays(np.float32, shape, elements=finite | st.just(np.float32(np.nan))))
    clear = data.draw(hnp.arrays(bool, shape))
    index = xr.DataArray(values, dims=("time", "y", "x"), attrs={"burn_direction": direction, "index": "nir"})
    out = consecutive_change(index, xr.DataArray(clear, dims=("time", "y", "x")))
    delta, last = out["delta"].values, out["last_clear"].values
    assert delta.shape == shape and delta.dtype == np.float32 and last.dtype == np.int16
    observed = clear & np.isfinite(values)
    for t in range(n_time):
        seen_before = observed[:t].any(axis=0)
        comparable = observed[t] & seen_before
        assert np.all(np.isfinite(delta[t][comparable])) and np.all(np.isnan(delta[t][~comparable]))
        # the reference is the latest earlier observed scene, or -1
        latest = np.where(seen_before, t - 1 - np.argmax(observed[:t][::-1], axis=0), -1) if t else np.full(shape[1:], -1)
        assert np.array_equal(last[t], latest)
        rows, cols = np.nonzero(comparable)
        expected = direction * (values[t][rows, cols] - values[last[t][rows, cols], rows, cols])
        assert np.array_equal(delta[t][rows, cols], expected.astype(np.float32))


# --- threshold -------------------------------------------------------------------------


@st.composite
def change_images(draw):
    """A change image: background drift and noise, maybe a burn, maybe cloud (NaN), maybe any values at all."""
    if draw(st.booleans()):
        shape = draw(shapes_2d)
        bounded = st.floats(-1e6, 1e6, allow_nan=False) | st.just(float("nan"))
        return draw(hnp.arrays(np.float64, shape, elements=bounded))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    h, w = draw(st.integers(16, 64)), draw(st.integers(16, 64))
    delta = draw(st.floats(-0.05, 0.05)) + rng.normal(0, draw(st.floats(0.0, 0.05)), (h, w))
    if draw(st.booleans()):  # a burn of random size and depth
        r, c = rng.integers(0, h), rng.integers(0, w)
        delta[r : r + rng.integers(1, h), c : c + rng.integers(1, w)] += draw(st.floats(0.0, 0.5))
    if draw(st.booleans()):  # a cloud, possibly over the burn
        r, c = rng.integers(0, h), rng.integers(0, w)
        delta[r : r + rng.integers(1, h), c : c + rng.integers(1, w)] = np.nan
    delta[rng.random((h, w)) < draw(st.floats(0.0, 0.3))] = np.nan  # scattered unobserved pixels
    return delta


@BOUNDED
@given(delta=change_images(), with_exclude=st.booleans(), with_nir=st.booleans(), min_area=st.sampled_from([0.0, 50.0]))
def test_burn_mask_is_a_bool_mask_that_never_marks_an_unobserved_pixel(delta, with_exclude, with_nir, min_area):
    rng = np.random.default_rng(delta.size)
    da = xr.DataArray(delta.astype(np.float32), dims=("y", "x"), attrs={"index": "nir"})
    exclude = rng.random(delta.shape) < 0.2 if with_exclude else None
    post_nir = xr.DataArray(rng.random(delta.shape).astype(np.float32) * 0.3, dims=("y", "x")) if with_nir else None
    mask, info = burn_mask(da, burn_level=0.08, pixel_area_m2=9.0, post_nir=post_nir, exclude=exclude, min_area_m2=min_area)
    assert mask.dtype == bool and mask.shape == delta.shape and mask.dims == ("y", "x")
    assert not mask.values[np.isnan(da.values)].any()
    if exclude is not None:
        assert not mask.values[exclude].any()
    assert info.n_pixels == int(mask.values.sum())


# --- polygons --------------------------------------------------------------------------


@st.composite
def dated_masks(draw):
    """``first_seen`` with -1 (never burned) and up to three dates, in blobs and single pixels."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    first_seen = np.full((h, w), -1, dtype=np.int16)
    for t in range(1, draw(st.integers(1, 3)) + 1):
        blobs = ndimage.gaussian_filter(rng.random((h, w)), draw(st.floats(0.0, 3.0))) > draw(st.floats(0.4, 0.7))
        first_seen[blobs & (first_seen < 0)] = t
    return first_seen


@BOUNDED
@given(first_seen=dated_masks(), easting=st.floats(200_000, 800_000), northing=st.floats(0, 8_000_000),
       resolution=st.sampled_from([3.0, 10.0]))
def test_polygon_areas_sum_to_the_mask_area(first_seen, easting, northing, resolution):
    h, w = first_seen.shape
    grid = Grid("EPSG:32630", Affine(resolution, 0, round(easting, -1), 0, -resolution, round(northing, -1)), w, h)
    burned = first_seen >= 0
    dates = xr.Dataset(
        {
            "first_seen": (("y", "x"), first_seen),
            "last_clear_before": (("y", "x"), np.where(burned, first_seen - 1, -1).astype(np.int16)),
            "delta_at_first": (("y", "x"), np.where(burned, 0.2, np.nan).astype(np.float32)),
            "confirmed": (("y", "x"), burned),
        }
    )
    times = [f"2024-01-{26 + t:02d}T10:38:00Z" for t in range(4)]
    polys = burn_polygons(dates, grid=grid, times=times, index_name="nir")
    assert int(polys["n_pixels"].sum()) == int(burned.sum())
    mask_area = burned.sum() * grid.pixel_area_m2
    # UTM's scale error is under 0.2 % of area inside a zone; the areas are equal-area (LAEA)
    assert polys["area_m2"].sum() == pytest.approx(mask_area, rel=0.005, abs=0.1 * max(len(polys), 1))
    assert polys.crs == "EPSG:32630" and (polys["n_pixels"] > 0).all()


@BOUNDED
@given(first_seen=dated_masks(), seed=st.integers(0, 2**32 - 1))
def test_every_outline_is_valid_with_exactly_its_pixels_area_split_or_not(first_seen, seed):
    """Random masks (corners, holes touching rims) and a random before-scene (walls anywhere): every
    outline is a valid OGC geometry whose area in the grid's CRS is its pixels' to a millionth."""
    h, w = first_seen.shape
    grid = Grid("EPSG:32630", Affine(3.0, 0, 415_000, 0, -3.0, 1_528_000), w, h)
    burned = first_seen >= 0
    rng = np.random.default_rng(seed)
    dates = xr.Dataset(
        {
            "first_seen": (("y", "x"), first_seen),
            "last_clear_before": (("y", "x"), np.where(burned, first_seen - 1, -1).astype(np.int16)),
            "delta_at_first": (("y", "x"), np.where(burned, rng.uniform(0.05, 0.3, (h, w)), np.nan).astype(np.float32)),
            "confirmed": (("y", "x"), burned),
        }
    )
    times = [f"2024-01-{26 + t:02d}T10:38:00Z" for t in range(4)]
    before = rng.uniform(0.1, 0.4, (4, h, w)).astype(np.float32)
    for split in (None, before):
        polys = burn_polygons(dates, grid=grid, times=times, index_name="nir", before=split, min_core_px=2)
        assert polys.geometry.is_valid.all()
        np.testing.assert_allclose(polys.geometry.area.to_numpy(float), polys["n_pixels"].to_numpy(float) * 9.0, rtol=1e-9)
        assert int(polys["n_pixels"].sum()) == int(burned.sum())


def test_pixels_touching_at_a_corner_give_a_valid_polygon():
    first_seen = np.array([[1, -1, -1], [-1, 1, 1]], dtype=np.int16)
    burned = first_seen >= 0
    dates = xr.Dataset(
        {
            "first_seen": (("y", "x"), first_seen),
            "last_clear_before": (("y", "x"), np.where(burned, 0, -1).astype(np.int16)),
            "delta_at_first": (("y", "x"), np.where(burned, 0.2, np.nan).astype(np.float32)),
            "confirmed": (("y", "x"), burned),
        }
    )
    grid = Grid("EPSG:32630", Affine(3.0, 0, 415_000, 0, -3.0, 1_528_000), 3, 2)
    polys = burn_polygons(dates, grid=grid, times=["2024-01-26T10:38:00Z", "2024-01-27T10:38:00Z"], index_name="nir")
    assert len(polys) == 1 and polys.geometry.is_valid.all()
    assert polys["area_m2"].iloc[0] == pytest.approx(3 * 9.0, rel=2e-3)  # the three pixels' area, kept exactly


# --- co-registration -------------------------------------------------------------------


@settings(BOUNDED, max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(48, 128), sigma=st.floats(1.0, 4.0), cloud=st.booleans())
def test_an_image_registered_to_itself_does_not_move(seed, size, sigma, cloud):
    image = _texture(seed, (size, size), sigma)
    if cloud:  # the same cloud on both: a masked region must not pull the match
        rng = np.random.default_rng(seed + 1)
        r, c = rng.integers(0, size // 2, 2)
        image[r : r + size // 3, c : c + size // 3] = np.nan
    est = estimate_shift(image, image.copy())
    assert abs(est.dy) < 0.01 and abs(est.dx) < 0.01
    assert est.reliable and abs(est.gain - 1) < 1e-3 and abs(est.offset) < 1e-3


# --- radiometric normalisation ---------------------------------------------------------


@settings(BOUNDED, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), gain=st.floats(0.7, 1.4), offset=st.floats(-0.05, 0.05),
       sigma=st.floats(0.0, 3.0), changed=st.floats(0.0, 0.2))
def test_normalisation_recovers_an_injected_gain_and_offset(seed, gain, offset, sigma, changed):
    reference = (0.05 + 0.4 * _texture(seed, (4, 64, 64), sigma)).astype(np.float32)
    scene = ((reference - offset) / gain).astype(np.float32)
    if changed:  # a burn darkens part of the scene: those pixels must not count as stable
        rows = int(64 * changed)
        scene[:, :rows] *= 0.3
    fits, stable = fit_linear_normalisation(scene, reference, np.ones((64, 64), bool), bands=["blue", "green", "red", "nir"])
    for fit in fits:
        assert fit.applied
        assert fit.gain == pytest.approx(gain, rel=1e-3) and fit.offset == pytest.approx(offset, abs=1e-3)
    if changed:
        assert not stable[: int(64 * changed)].any()
