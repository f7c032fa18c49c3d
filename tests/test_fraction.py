"""The burned share of each pixel (stages/fraction.py): known fractions come back, a burn's area is the
sum of its shares (its mixed rim included), and the polygons, report and manifest carry it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from pipeline.config import Params
from pipeline.grid import grid_for_bounds
from pipeline.stages.change import consecutive_change
from pipeline.stages.dating import date_burns
from pipeline.stages.fraction import CHAR, WHITE_ASH, area_with_sigma, burned_fraction, fit_noise, unmix
from pipeline.stages.indices import burn_index
from pipeline.stages.polygons import burn_polygons
from pipeline.stages.threshold import burn_candidates, burn_mask

BANDS = ["blue", "green", "red", "nir"]
SAND = np.array([0.14, 0.20, 0.27, 0.33])
DRY_GRASS = np.array([0.08, 0.12, 0.17, 0.27])
THATCH = np.array([0.13, 0.19, 0.25, 0.36])
C = np.array([CHAR[b] for b in BANDS])
A = np.array([WHITE_ASH[b] for b in BANDS])


def test_unmixing_recovers_known_char_and_ash_shares_under_noise():
    # 20 000 pixels: a before-state drawn between sand, dry grass and thatch, a known char and ash share
    # (f_char + f_ash <= 1), and 0.005 reflectance of noise per band (a clear PlanetScope scene's).
    rng = np.random.default_rng(7)
    n = 20_000
    mix = rng.dirichlet([1, 1, 1], n)
    before = (mix @ np.stack([SAND, DRY_GRASS, THATCH])).T  # (band, n)
    f_char = rng.uniform(0, 1, n)
    f_ash = rng.uniform(0, 1, n) * (1 - f_char) * 0.5
    clean = (1 - f_char - f_ash) * before + f_char * C[:, None] + f_ash * A[:, None]
    after = clean + rng.normal(0, 0.005, clean.shape)
    fc, fa, var = unmix(before, after, bands=BANDS, noise=np.full(4, 0.005))
    err = (fc + fa) - (f_char + f_ash)
    # Tolerance: the burned share within 0.03 for half the pixels, 0.08 for 95 % of them (white ash and a
    # sandy before-state are alike in the visible, so the ash share is the loosely bound one) and unbiased
    # to 0.01; the 1 sigma it states covers the error about as often as a 1 sigma should.
    assert np.median(np.abs(err)) < 0.03 and np.percentile(np.abs(err), 95) < 0.08
    assert abs(np.mean(err)) < 0.01
    inside = np.abs(err) <= np.sqrt(var)
    assert 0.55 < inside.mean() < 0.95
    # The split between char and ash is recovered too where each is plentiful.
    assert np.median(np.abs(fc - f_char)) < 0.05 and np.median(np.abs(fa - f_ash)) < 0.05


def test_white_ash_alone_is_burned_ground_not_unburned():
    # Ash over dark dry grass brightens the visible bands: a change that a NIR drop alone barely sees.
    before = np.repeat(DRY_GRASS[:, None], 3, axis=1)
    after = np.stack([(1 - f) * DRY_GRASS + f * A for f in (0.2, 0.6, 1.0)], axis=1)
    fc, fa, _ = unmix(before, after, bands=BANDS, noise=np.full(4, 0.003))
    np.testing.assert_allclose(fc + fa, [0.2, 0.6, 1.0], atol=0.02)
    np.testing.assert_allclose(fc, 0.0, atol=0.02)


def _square_pair(lo: float = 9.7, hi: float = 30.3, *, noise: float = 0.004, seed: int = 3, burned=C):
    """Two 3 m scenes of sand; on the second a square of ``burned`` (char) from ``lo`` to ``hi`` (pixel units)
    on both axes, so its border pixels are partly burned (a one-pixel mixed rim), and the true burned share
    per pixel."""
    rng = np.random.default_rng(seed)
    side = 40
    edges = np.arange(side + 1, dtype=float)
    cover_1d = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, 1)
    cover = np.outer(cover_1d, cover_1d)
    before = np.broadcast_to(SAND[:, None, None], (4, side, side))
    after = (1 - cover) * before + cover * np.asarray(burned)[:, None, None]
    refl = np.stack([before, after]) + rng.normal(0, noise, (2, 4, side, side))
    grid = grid_for_bounds((500000, 1500000, 500000 + 3 * side, 1500000 + 3 * side), "EPSG:32630", 3.0)
    x = grid.transform.c + 1.5 + 3 * np.arange(side)
    y = grid.transform.f - 1.5 - 3 * np.arange(side)
    stack = xr.DataArray(refl.astype(np.float32), dims=("time", "band", "y", "x"),
                         coords={"time": np.array(["2024-01-26T10:38", "2024-01-28T10:38"], dtype="datetime64[ns]"),
                                 "band": BANDS, "y": y, "x": x})
    clear = xr.DataArray(np.ones((2, side, side), bool), dims=("time", "y", "x"), coords={"y": y, "x": x})
    return stack, clear, grid, cover


def _dated(stack, clear, params=Params()):
    index = burn_index(stack, index="nir")
    change = consecutive_change(index, clear)
    return date_burns(change, index=index, clear=clear, post_nir=stack.sel(band="nir", drop=True), params=params,
                      pixel_area_m2=9.0, reflectance=stack)


def test_burned_square_with_a_mixed_rim_gets_the_square_s_area():
    stack, clear, grid, cover = _square_pair()
    dates, _ = _dated(stack, clear)
    polys = burn_polygons(dates, grid=grid, times=["2024-01-26T10:38:00Z", "2024-01-28T10:38:00Z"], index_name="nir")
    assert len(polys) == 1
    truth_ha = cover.sum() * 9.0 / 1e4  # 20.6 x 20.6 pixels of 9 m2
    row = polys.iloc[0]
    assert row["burned_fraction_ha"] == pytest.approx(truth_ha, rel=0.03)
    # Its 1 sigma is stated, positive and small against the area (noise 0.004, end-members' spread).
    assert 0 < row["burned_fraction_sigma_ha"] < 0.05 * truth_ha
    # The rim pixels are 0.3 burned: under the cut, so the outline holds the 20 x 20 fully burned pixels only.
    assert row["n_pixels"] == 400
    share = dates["burned_fraction"].values
    assert np.nanmedian(share[12:28, 12:28]) == pytest.approx(1.0, abs=0.05)
    assert np.nanmedian(share[9, 12:28]) == pytest.approx(0.3, abs=0.05)


def test_a_burn_that_left_mostly_white_ash_is_found_though_its_nir_stays_bright():
    # 70 % white ash and 30 % char: NIR 0.18 afterwards, above the darkness rule's 0.15 for char, while the
    # NIR still fell by 0.15; unmixed, the pixel is 0.7 white ash, and that is as plain a mark of fire.
    ash_rich = 0.7 * A + 0.3 * C
    stack, clear, grid, cover = _square_pair(burned=ash_rich)
    assert float(stack.sel(band="nir").values[1, 20, 20]) > Params().max_post_nir
    dates, _ = _dated(stack, clear)
    polys = burn_polygons(dates, grid=grid, times=["2024-01-26T10:38:00Z", "2024-01-28T10:38:00Z"], index_name="nir")
    assert len(polys) == 1
    assert polys.iloc[0]["burned_fraction_ha"] == pytest.approx(cover.sum() * 9.0 / 1e4, rel=0.05)


def test_a_burn_of_char_and_white_ash_mixed_is_found_though_neither_rule_alone_holds_it():
    # 35 % white ash, 45 % char, 20 % of the sand left: NIR 0.17 afterwards, above the char rule's 0.15, and
    # white ash under half the pixel; unmixed, 0.8 of it burned, as plain a mark of fire as either alone.
    # Held by neither rule alone, this 60 x 60 m burn was not found at all.
    mixed = 0.35 * A + 0.45 * C + 0.20 * SAND
    stack, clear, grid, cover = _square_pair(burned=mixed)
    assert float(stack.sel(band="nir").values[1, 20, 20]) > Params().max_post_nir
    dates, _ = _dated(stack, clear)
    assert np.nanmedian(dates["burned_fraction"].values[12:28, 12:28]) == pytest.approx(0.8, abs=0.05)
    polys = burn_polygons(dates, grid=grid, times=["2024-01-26T10:38:00Z", "2024-01-28T10:38:00Z"], index_name="nir")
    assert len(polys) == 1
    assert polys.iloc[0]["burned_fraction_ha"] == pytest.approx(0.8 * cover.sum() * 9.0 / 1e4, rel=0.05)


def test_rim_pixels_are_decided_by_their_burned_share_at_the_cut():
    # Border pixels 0.8 burned (corners 0.64): over the default cut they are burned pixels; with a cut of
    # 0.9 they are not.
    stack, clear, grid, cover = _square_pair(9.2, 30.8)
    counts = {}
    for cut in (0.5, 0.9):
        dates, _ = _dated(stack, clear, Params(rim_burned_fraction=cut))
        counts[cut] = int((dates["first_seen"].values == 1).sum())
    assert counts == {0.5: 22 * 22, 0.9: 20 * 20}


def test_a_hole_is_filled_only_where_it_burned():
    rng = np.random.default_rng(0)
    delta = np.zeros((40, 40))
    delta[10:30, 10:30] = 0.25
    delta[19, 19] = 0.03  # one pixel inside the burn whose change stays low
    delta += rng.normal(0, 0.004, delta.shape)
    da = xr.DataArray(delta.astype(np.float32), dims=("y", "x"))
    share = np.where(delta > 0.1, 1.0, 0.0)
    kept = {}
    for f in (0.1, 0.9):
        share[19, 19] = f
        mask, _ = burn_mask(da, burn_level=0.08, pixel_area_m2=9.0, fraction=share, fraction_cut=0.5)
        kept[f] = bool(mask.values[19, 19])
    assert kept == {0.1: False, 0.9: True}  # an unburned courtyard stays open; an ash speck is filled


def test_polygon_area_adds_noise_in_quadrature_and_end_members_linearly():
    f = np.full(100, 0.5)
    area, sigma = area_with_sigma(f, np.full(100, 0.1), np.full(100, 0.02), 9.0)
    assert area == pytest.approx(450.0)
    assert sigma == pytest.approx(np.hypot(np.sqrt(100) * 0.1, 100 * 0.02) * 9.0)


def test_scene_noise_and_background_drift_do_not_read_as_burned():
    rng = np.random.default_rng(5)
    before = SAND[:, None, None] + rng.normal(0, 0.004, (4, 60, 60))
    after = before * 1.0 + 0.01 + rng.normal(0, 0.004, before.shape)  # a brighter day, no burn
    out = burned_fraction(before, after, bands=BANDS)
    assert np.median(out.fraction) < 0.03 and np.percentile(out.fraction, 99) < 0.15
    assert np.all(out.sigma_noise > 0) and np.all(np.isfinite(out.sigma_endmember))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # float32: the scenes as a run holds them
def test_shares_fitted_only_where_asked_are_those_of_the_whole_scene_and_nan_elsewhere(dtype):
    rng = np.random.default_rng(8)
    before = SAND[:, None, None] + rng.normal(0, 0.004, (4, 40, 40))
    after = before + rng.normal(0, 0.004, before.shape)
    after[:, 10:20, 10:20] = 0.4 * before[:, 10:20, 10:20] + 0.6 * np.array([CHAR[b] for b in BANDS])[:, None, None]
    before, after = before.astype(dtype), after.astype(dtype)
    where = np.zeros((40, 40), bool)
    where[8:22, 8:22] = True
    whole, part = burned_fraction(before, after, bands=BANDS), burned_fraction(before, after, bands=BANDS, where=where)
    for key in ("char", "ash", "fraction", "sigma_noise", "sigma_endmember"):
        np.testing.assert_array_equal(getattr(part, key)[where], getattr(whole, key)[where])
        assert np.isnan(getattr(part, key)[~where]).all()
    nowhere = burned_fraction(before, after, bands=BANDS, where=np.zeros((40, 40), bool))  # a chunk without a burn
    for key in ("char", "ash", "fraction", "sigma_noise", "sigma_endmember"):
        value = getattr(nowhere, key)
        assert value.shape == (40, 40) and value.dtype == whole.fraction.dtype and np.isnan(value).all()


def test_a_window_fitted_with_the_scene_s_noise_gets_the_scene_s_shares_not_its_own():
    """A chunk fits with the band noise measured once on the scene (fit_noise), not with its own."""
    rng = np.random.default_rng(11)
    before = SAND[:, None, None] + rng.normal(0, 0.004, (4, 60, 60))
    after = before + rng.normal(0, 0.004, before.shape)
    after[:, 5:15, 5:15] = 0.5 * before[:, 5:15, 5:15] + 0.5 * np.array([CHAR[b] for b in BANDS])[:, None, None]
    after[:, 30:, 30:] += rng.normal(0, 0.02, (4, 30, 30))  # a noisier corner: its own noise would weigh the bands otherwise
    scene = fit_noise(before, after, bands=BANDS)
    assert scene["bands"] == BANDS and len(scene["background"]) == len(scene["sigma"]) == 4
    whole = burned_fraction(before, after, bands=BANDS)
    np.testing.assert_array_equal(burned_fraction(before, after, bands=BANDS, noise=scene).fraction, whole.fraction)
    window = (slice(None), slice(0, 40), slice(0, 40))
    own = burned_fraction(before[window], after[window], bands=BANDS)
    given = burned_fraction(before[window], after[window], bands=BANDS, noise=scene)
    np.testing.assert_allclose(given.sigma_noise, whole.sigma_noise[:40, :40], rtol=1e-12)
    assert not np.allclose(own.sigma_noise, whole.sigma_noise[:40, :40], rtol=1e-3)
    with pytest.raises(ValueError, match="bands"):  # weights of other bands are a programming error, never used
        burned_fraction(before, after, bands=BANDS, skip=["blue"], noise=scene)


def test_a_chunk_gathering_only_the_pixels_it_fits_gets_the_shares_of_the_whole_window():
    """date_burns on a chunk gathers each fitted pixel's before-state alone (dating._before_after_at); the shares
    are those of the whole window's arrays, bit for bit, where a pixel has no before-state or is not clear too."""
    from pipeline.stages.dating import _before_after, _before_after_at
    from pipeline.stages.fraction import burned_fraction_of_pixels

    rng = np.random.default_rng(12)
    refl = (SAND[None, :, None, None] + rng.normal(0, 0.01, (3, 4, 30, 40))).astype(np.float32)
    refl[2, :, 5:15, 5:20] = (0.3 * refl[1, :, 5:15, 5:20] + 0.7 * np.array([CHAR[b] for b in BANDS])[:, None, None])
    refl[0, :, 0:3, :] = np.nan
    clear = np.ones((3, 30, 40), bool)
    clear[2, 25:, :] = False  # not clear on the date
    last_clear = rng.integers(-1, 2, (30, 40))  # some pixels without a before-state
    where = np.zeros((30, 40), bool)
    where[2:20, 3:25] = True
    where[26:28, 30:33] = True
    before, after = _before_after(refl, clear, last_clear, 2)
    gathered = _before_after_at(refl, clear, last_clear, 2, where)
    np.testing.assert_array_equal(gathered[0], before[:, where])
    np.testing.assert_array_equal(gathered[1], after[:, where])
    noise = fit_noise(before, after, bands=BANDS)
    whole = burned_fraction(before, after, bands=BANDS, where=where, noise=noise)
    alone = burned_fraction_of_pixels(*gathered, where, bands=BANDS, noise=noise)
    for key in ("char", "ash", "fraction", "sigma_noise", "sigma_endmember"):
        np.testing.assert_array_equal(getattr(alone, key), getattr(whole, key))
    assert np.isfinite(whole.fraction).sum() > 100 and np.nanmax(whole.fraction) > 0.5
    empty = burned_fraction_of_pixels(gathered[0][:, :0], gathered[1][:, :0], np.zeros((30, 40), bool), bands=BANDS, noise=noise)
    assert np.isnan(empty.fraction).all() and empty.fraction.shape == (30, 40)


def test_no_burn_reaches_beyond_the_candidates_it_is_judged_on():
    rng = np.random.default_rng(9)
    d = rng.normal(0, 0.01, (60, 60))
    d[10:25, 10:25] += 0.3
    d[40:43, 40:48] += 0.06  # above growth, below a seed: a candidate that is never a burn
    candidates, judged_on = burn_candidates(d, burn_level=0.08, grow_k=2.0)
    mask, info = burn_mask(xr.DataArray(d, dims=("y", "x")), burn_level=0.08, pixel_area_m2=9.0, grow_k=2.0)
    assert judged_on == pytest.approx((info.background, info.noise_sigma))
    assert mask.values.any() and not (mask.values & ~candidates).any()
    assert candidates[40:43, 40:48].all() and not mask.values[40:43, 40:48].any()


def test_fraction_area_is_in_the_polygons_report_and_manifest(small_run):
    run = small_run.run_dir
    report = json.loads((run / "report.json").read_text())
    geo = json.loads((run / next(p.name for p in run.glob("*.geojson") if "polygon" in p.name or "burn" in p.name)).read_text())
    features = geo["features"]
    assert features, "the small run finds burns"
    props = [f["properties"] for f in features]
    assert all(p["burned_fraction_ha"] > 0 and p["burned_fraction_sigma_ha"] > 0 for p in props)
    assert all(p["burned_fraction_ha"] <= p["area_ha"] * 1.5 for p in props)
    totals = report["totals"]
    assert totals["burned_fraction_ha"] == pytest.approx(sum(p["burned_fraction_ha"] for p in props), abs=1e-3)
    assert totals["burned_fraction_sigma_ha"] > 0
    headline = f"{totals['burned_fraction_ha']:.2f} ha ± {totals['burned_fraction_sigma_ha']:.2f} ha burned in the AOI"
    basis = f"(sum of burned fractions; {totals['area_ha']:.2f} ha of pixels called burned), in {totals['n_polygons']} polygon"
    assert headline in report["summary"] and basis in report["summary"]
    assert totals["burned_fraction_statement"] in report["summary"].replace(f" burned in the AOI of {report['aoi']['display_name']}", "")
    md, html = (run / "report.md").read_text(), (run / "report.html").read_text()
    assert headline in md and basis in md and headline in html and basis in html
    assert "burned, sum of fractions (ha)" in md and "burned, sum of fractions (ha)" in html
    cell = f"{props[0]['burned_fraction_ha']:.4f} ± {props[0]['burned_fraction_sigma_ha']:.4f}"
    assert cell in md and cell in html
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["parameters"]["rim_burned_fraction"] == 0.5
    assert report["parameters"]["rim_burned_fraction"] == 0.5


def test_the_unburned_strip_between_two_neighbours_burns_parts_them():
    # Two burned yards with a strip of unburned ground between them that straddles two pixels, each 0.3
    # burned: the change there is above the growth threshold, so the hysteresis joins the burns into one
    # patch; read by its burned share, the strip is not burned, and the two burns are two polygons.
    rng = np.random.default_rng(4)
    side = 40
    cover = np.zeros((side, side))
    cover[10:30, 8:19] = 1.0
    cover[10:30, 21:32] = 1.0
    cover[10:30, 19:21] = 0.3
    before = np.broadcast_to(SAND[:, None, None], (4, side, side))
    after = (1 - cover) * before + cover * C[:, None, None]
    refl = np.stack([before, after]) + rng.normal(0, 0.004, (2, 4, side, side))
    grid = grid_for_bounds((500000, 1500000, 500000 + 3 * side, 1500000 + 3 * side), "EPSG:32630", 3.0)
    x = grid.transform.c + 1.5 + 3 * np.arange(side)
    y = grid.transform.f - 1.5 - 3 * np.arange(side)
    times = ["2024-01-26T10:38:00Z", "2024-01-28T10:38:00Z"]
    stack = xr.DataArray(refl.astype(np.float32), dims=("time", "band", "y", "x"),
                         coords={"time": np.array(["2024-01-26T10:38", "2024-01-28T10:38"], dtype="datetime64[ns]"),
                                 "band": BANDS, "y": y, "x": x})
    clear = xr.DataArray(np.ones((2, side, side), bool), dims=("time", "y", "x"), coords={"y": y, "x": x})
    dates, _ = _dated(stack, clear)
    assert not (dates["first_seen"].values[10:30, 19:21] >= 0).any()
    polys = burn_polygons(dates, grid=grid, times=times, index_name="nir")
    assert len(polys) == 2 and sorted(polys["n_pixels"].tolist()) == [220, 220]


def _clear_stack(refl: np.ndarray, times: list[str]):
    """``(time, band, y, x)`` reflectance on a 3 m UTM grid, every scene clear."""
    side = refl.shape[-1]
    y = 1500000 - 1.5 - 3 * np.arange(side)
    x = 500000 + 1.5 + 3 * np.arange(side)
    stack = xr.DataArray(refl.astype(np.float32), dims=("time", "band", "y", "x"),
                         coords={"time": np.array(times, dtype="datetime64[ns]"), "band": BANDS, "y": y, "x": x})
    clear = xr.DataArray(np.ones((len(times), side, side), bool), dims=("time", "y", "x"), coords={"y": y, "x": x})
    return stack, clear


def _pair_from_cover(cover: np.ndarray, seed: int, burned: np.ndarray = C):
    side = cover.shape[0]
    before = np.broadcast_to(SAND[:, None, None], (4, side, side))
    after = (1 - cover) * before + cover * burned[:, None, None]
    refl = np.stack([before, after]) + np.random.default_rng(seed).normal(0, 0.004, (2, 4, side, side))
    return _clear_stack(refl, ["2024-01-26T10:38", "2024-01-28T10:38"])


def test_a_partly_caught_compound_is_cut_against_a_full_burn_not_against_its_own_mixed_rim():
    # A small patch that is all rim cannot show what a fully burned pixel reads: its own 75th
    # percentile is its best-mixed row (0.75), and half of that would keep the rows 0.4 burned.
    # The full reading is borrowed from the date's patches with an interior (the large burn, 1.0),
    # so only the middle row, burned over half, stays.
    cover = np.zeros((48, 48))
    cover[6:26, 6:26] = 1.0
    cover[34:37, 30:37] = 0.4
    cover[35, 30:37] = 0.75
    stack, clear = _pair_from_cover(cover, 7)
    # The shares are painted on the pixels without a point-spread function: none is undone.
    burned = _dated(stack, clear, Params(psf_sigma_px=0.0))[0]["first_seen"].values >= 0
    assert burned[6:26, 6:26].all()
    assert burned[35, 30:37].all()
    assert not burned[34, 30:37].any() and not burned[36, 30:37].any()


def test_a_small_burn_the_rim_cut_parts_from_its_neighbour_keeps_the_mapping_unit_of_the_patch_it_grew_in():
    # A 2 x 2 burn (36 m2) joined to a large one by a strip 0.3 burned: the cut parts them, and the small
    # burn, a seed's find within a patch over the unit, stays.
    cover = np.zeros((40, 40))
    cover[8:28, 6:20] = 1.0
    cover[16:18, 20:23] = 0.3
    cover[16:18, 23:25] = 1.0
    burned = _dated(*_pair_from_cover(cover, 3))[0]["first_seen"].values >= 0
    assert burned[8:28, 6:20].all() and burned[16:18, 23:25].all()
    assert not burned[16:18, 20:23].any()


def test_a_burn_under_the_mapping_unit_stays_only_where_it_is_char_down_to_half_the_unit():
    # Under the 50 m2 unit: a hut's 2 x 2 pixels of char (36 m2) stay; a pixel of char in a ring 0.45
    # burned (46 m2 of burned area, one pixel of char) and one pixel of char alone (9 m2) go.
    cover = np.zeros((48, 48))
    cover[6:26, 6:26] = 1.0  # the village's large burn, for the date's full reading
    cover[34:36, 8:10] = 1.0
    cover[33:36, 20:23] = 0.45
    cover[34, 21] = 1.0
    cover[34, 34] = 1.0
    pair = _pair_from_cover(cover, 5)
    sharp = Params(psf_sigma_px=0.0)  # the shares are painted without a point-spread function
    burned = _dated(*pair, sharp)[0]["first_seen"].values >= 0
    assert burned[6:26, 6:26].all()
    assert burned[34:36, 8:10].all()
    assert not burned[30:40, 16:26].any()
    assert not burned[30:40, 30:40].any()
    # With a 100 m2 unit, 36 m2 of char is under half of it: the unit the analyst set still holds.
    burned = _dated(*pair, Params(psf_sigma_px=0.0, min_area_m2=100.0))[0]["first_seen"].values >= 0
    assert not burned[30:40, 4:14].any()


def _three_scenes(after_1: np.ndarray, after_2: np.ndarray, seed: int):
    side = 36
    refl = np.broadcast_to(COMPOUND_SOIL[None, :, None, None], (3, 4, side, side)).copy()
    refl[1, :, 8:28, 8:28] = after_1 if after_1.ndim == 3 else after_1[:, None, None]
    refl[2, :, 8:28, 8:28] = after_2[:, None, None]
    refl += np.random.default_rng(seed).normal(0, 0.004, refl.shape)
    return _clear_stack(refl, ["2024-01-26T10:38", "2024-01-27T07:50", "2024-01-28T10:38"])


# Reflectance of one compound of the nonfire_with_burns case: its yard, and the same yard charred.
COMPOUND_SOIL = np.array([0.134, 0.186, 0.248, 0.333])
CHARRED = np.array([0.047, 0.045, 0.047, 0.076])


def test_an_early_shadow_over_a_compound_that_burned_the_next_day_is_not_dated_as_the_burn():
    # The 07:50 shadow of the compound's walls: a third off the yard, deeper (0.42 of the light) where two
    # walls meet, bluer than the light as shade lit by the sky is. Its deep corner passes as char, so the
    # shadow reads as a burn on its own; the next day's char stands more than twice as far from the yard.
    light = np.full((20, 20), 0.65)
    light[6:14, 6:14] = 0.42
    sky_tint = np.array([1.2, 1.1, 1.0, 0.9])[:, None, None] ** (1 - light[None])
    shade = COMPOUND_SOIL[:, None, None] * light[None] * sky_tint
    dates, _ = _dated(*_three_scenes(shade, CHARRED, 11))
    inside = dates["first_seen"].values[8:28, 8:28]
    assert (inside == 2).all()
    assert (dates["last_clear_before"].values[8:28, 8:28] == 1).all()  # the bracket opens on the shaded scene


def test_char_seen_first_and_charred_the_same_the_next_day_keeps_its_first_date():
    dates, _ = _dated(*_three_scenes(CHARRED, CHARRED, 12))
    assert (dates["first_seen"].values[8:28, 8:28] == 1).all()


def test_white_ash_that_blows_off_to_char_keeps_the_date_the_ash_was_first_seen():
    ash_over_soil = 0.3 * COMPOUND_SOIL + 0.7 * A  # NIR down by about a third, the visible bands brighter
    dates, _ = _dated(*_three_scenes(ash_over_soil, CHARRED, 13))
    assert (dates["first_seen"].values[8:28, 8:28] == 1).all()


def test_a_narrow_burn_mostly_ash_seeds_on_its_own_burned_share():
    # Two pixels wide: every 3 x 3 window over it holds unburned ground, so its mean change stays under the
    # burn level, and the ash left the NIR bright. Each pixel unmixes as 0.8 burned: it is found.
    cover = np.zeros((30, 30))
    cover[12:14, 10:14] = 0.8
    burned = _dated(*_pair_from_cover(cover, 21, burned=0.75 * A + 0.25 * C))[0]["first_seen"].values >= 0
    assert burned[12:14, 10:14].all() and burned.sum() == 8


def test_a_ring_pixel_between_burns_of_two_dates_gives_each_burn_its_own_share():
    # Two yards burned two days apart, 8.25 pixels wide each; the pixel between them is 0.25 burned by the
    # first fire and 0.25 more by the second. On the second date its before-state already holds the first
    # burn's char, so its fit reads 0.25 of the 0.75 left (0.33): the share of the pixel is 0.25. Each burn
    # keeps its own share of it: each polygon's area is its own burn's, and the pixel's share is 0.5.
    rng = np.random.default_rng(11)
    side = 44
    edges = np.arange(side + 1, dtype=float)

    def strip(lo: float, hi: float) -> np.ndarray:
        cols = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, 1)
        rows = np.zeros(side)
        rows[8:38] = 1.0
        return np.outer(rows, cols)

    first, second = strip(18.0, 26.25), strip(26.75, 35.0)
    sand = np.broadcast_to(SAND[:, None, None], (4, side, side))
    scenes = [sand, (1 - first) * sand + first * C[:, None, None]]
    burned = first + second
    scenes.append((1 - burned) * sand + burned * C[:, None, None])
    refl = np.stack(scenes) + rng.normal(0, 0.004, (3, 4, side, side))
    times = ["2024-01-26T10:38:00Z", "2024-01-28T10:38:00Z", "2024-02-01T10:38:00Z"]
    stack, clear = _clear_stack(refl, [t[:16] for t in times])
    grid = grid_for_bounds((500000, 1500000 - 3 * side, 500000 + 3 * side, 1500000), "EPSG:32630", 3.0)
    dates, _ = _dated(stack, clear)
    assert not (dates["first_seen"].values[8:38, 26] >= 0).any()  # the shared pixel is nobody's: under the cut twice
    assert np.nanmedian(dates["burned_fraction"].values[8:38, 26]) == pytest.approx(0.5, abs=0.05)
    polys = burn_polygons(dates, grid=grid, times=times, index_name="nir").sort_values("first_seen_index")
    assert len(polys) == 2
    truth_ha = first.sum() * 9 / 1e4  # 247.5 pixels of 9 m2, each burn
    assert second.sum() == pytest.approx(first.sum())
    for area in polys["burned_fraction_ha"]:
        assert area == pytest.approx(truth_ha, rel=0.015)


def _dated_with_scene_1_at_07_50(refl: np.ndarray, seed: int):
    """``date_burns`` on three scenes (10:38, 07:50, 10:38) of ``refl`` with a little noise, as a function of
    whether the scenes' suns are given (without them the dating takes every scene at one hour)."""
    refl = refl + np.random.default_rng(seed).normal(0, 0.004, refl.shape)
    stack, clear = _clear_stack(refl, ["2024-01-26T10:38", "2024-01-27T07:50", "2024-01-28T10:38"])
    index = burn_index(stack, index="nir")
    usual, early = (47.6, 140.0), (14.4, 113.8)

    def dated(suns: bool):
        return date_burns(consecutive_change(index, clear), index=index, clear=clear,
                          post_nir=stack.sel(band="nir", drop=True), params=Params(), pixel_area_m2=9.0,
                          reflectance=stack, sun=[usual, early, usual] if suns else None)[0]

    return dated


def test_a_burn_first_seen_at_another_hour_keeps_the_share_its_next_clear_scene_shows():
    # Scene 1 is taken at 07:50: the compound had burned on seven tenths of every pixel, and the long shadow of
    # its walls darkens the rest by half (bluish sky light). Unmixed on scene 1, that shadow reads as more
    # char; scene 2, at 10:38 like the before-scene, shows the seven tenths. Char does not fade in a day and a
    # shadow only adds darkness, so the share recorded for scene 1's burn is the smaller one, scene 2's.
    side = 36
    refl = np.broadcast_to(COMPOUND_SOIL[None, :, None, None], (3, 4, side, side)).copy()
    shade = COMPOUND_SOIL * 0.5 * np.array([1.3, 1.15, 1.0, 0.9])
    refl[1, :, 8:28, 8:28] = (0.3 * shade + 0.7 * CHARRED)[:, None, None]
    refl[2, :, 8:28, 8:28] = (0.3 * COMPOUND_SOIL + 0.7 * CHARRED)[:, None, None]
    dated = _dated_with_scene_1_at_07_50(refl, 15)
    for suns, share in ((True, 0.7), (False, None)):
        dates = dated(suns)
        assert (dates["first_seen"].values[10:26, 10:26] == 1).all()
        inside = float(np.median(dates["burned_fraction"].values[10:26, 10:26]))
        if share is None:
            assert inside > 0.8  # without the suns, scene 1's own fit: the shadow counted as char
        else:
            assert inside == pytest.approx(share, abs=0.05)


def test_a_rim_pixel_a_long_shadow_made_look_burned_is_cut_by_the_share_its_next_clear_scene_shows():
    # Scene 1 is taken at 07:50: a compound burned whole, and on its rim one column of pixels four tenths burned
    # under the long shadow of the walls (the rest of each pixel at 0.7 of its light, bluish): unmixed on scene 1
    # it reads about 0.6 burned and joins the burn. Scene 2, at 10:38 like the before-scene, shows the four tenths,
    # keeping more than half the column's change (no shadow gone from it, by that rule): the rim is cut on that
    # share, as on any scene, and the column is a mixed pixel of the burn's ring. A column on the other side seven
    # tenths burned under the same shadow stays in the burn. Without the suns scene 1's own shares decide, and
    # the shadowed column is in the burn.
    side = 36
    refl = np.broadcast_to(COMPOUND_SOIL[None, :, None, None], (3, 4, side, side)).copy()
    shade = COMPOUND_SOIL * 0.7 * np.array([1.3, 1.15, 1.0, 0.9])
    refl[1:, :, 8:28, 8:28] = CHARRED[:, None, None]
    for col, burned in ((28, 0.4), (7, 0.7)):
        refl[1, :, 8:28, col] = (burned * CHARRED + (1 - burned) * shade)[:, None]
        refl[2, :, 8:28, col] = (burned * CHARRED + (1 - burned) * COMPOUND_SOIL)[:, None]
    dated = _dated_with_scene_1_at_07_50(refl, 16)
    dates = dated(True)
    first = dates["first_seen"].values
    assert (first[10:26, 8:28] == 1).all() and (first[10:26, 7] == 1).all()
    assert not (first[10:26, 28] >= 0).any()
    assert float(np.median(dates["ring_fraction"].values[1, 10:26, 28])) == pytest.approx(0.4, abs=0.07)
    assert float(np.median(dated(False)["burned_fraction"].values[10:26, 28])) > 0.5
    assert (dated(False)["first_seen"].values[10:26, 28] == 1).all()
