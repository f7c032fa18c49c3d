"""The spectral test on its own (pipeline/stages/spectral.py): known answers from the physics.

Char darkens every band; white ash brightens the visible bands but is flat like char; leaf drop
raises the red while the NIR falls and keeps a red edge, a harvest down to the soil lays a red
soil bare (not flat either); wet soil and shade darken every band in
proportion. The whole flow on the same changes: tests/test_spectral_flow.py.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely.geometry import box

from pipeline.stages import spectral
from pipeline.stages.confidence import confidence_tiers
from pipeline.stages.coregister import ShiftEstimate
from pipeline.stages.threshold import ThresholdInfo

# Band order blue, green, red, NIR; spectra of pipeline/sim/materials.py and the tree.
CHAR = (0.04, 0.04, 0.05, 0.06)
TREE = (0.04, 0.07, 0.08, 0.34)
BARE_TREE = (0.07, 0.10, 0.11, 0.22)
GREEN_GRASS = (0.05, 0.08, 0.10, 0.36)
GREY_ASH = (0.13, 0.135, 0.14, 0.145)


def _pair(before: tuple[float, ...], after: tuple[float, ...], shape=(5, 5)) -> tuple[np.ndarray, np.ndarray]:
    return (np.broadcast_to(np.asarray(before)[:, None, None], (4, *shape)).copy(),
            np.broadcast_to(np.asarray(after)[:, None, None], (4, *shape)).copy())


@pytest.mark.parametrize("before, after, code", [
    (TREE, BARE_TREE, spectral.VEGETATION),  # leaf drop: red up, NIR down, a red edge left
    ((0.03, 0.07, 0.05, 0.38), (0.09, 0.12, 0.16, 0.25), spectral.VEGETATION),  # full leaf fall to bare crown
    ((0.13, 0.19, 0.25, 0.36), CHAR, spectral.FIRE_LIKE),  # thatch to char
    ((0.14, 0.20, 0.27, 0.33), CHAR, spectral.FIRE_LIKE),  # sand to char: nearly a grey copy, but a fifth of it
    ((0.08, 0.12, 0.17, 0.27), (0.20, 0.21, 0.22, 0.23), spectral.FIRE_LIKE),  # dry grass to white ash: red up, flat
    (GREEN_GRASS, GREY_ASH, spectral.FIRE_LIKE),  # green grass to ash: red up, but no red edge left
    # an irrigated garden harvested down to sand (NDVI 0.096, as low as char's): red up to a red soil, not to flat ash
    ((0.05, 0.09, 0.08, 0.36), (0.105, 0.16, 0.235, 0.285), spectral.VEGETATION),
    ((0.05, 0.09, 0.08, 0.36), (0.09, 0.14, 0.24, 0.26), spectral.VEGETATION),  # ... or down to laterite (NDVI 0.04)
    (TREE, (0.18, 0.19, 0.20, 0.21), spectral.FIRE_LIKE),  # a crown burned to white ash over the ground: flat
    ((0.14, 0.20, 0.27, 0.33), (0.091, 0.13, 0.1755, 0.2145), spectral.PROPORTIONAL),  # sand wet by rain: x0.65
    ((0.15, 0.21, 0.28, 0.33), (0.0675, 0.0945, 0.126, 0.1485), spectral.PROPORTIONAL),  # yard in thin shade: x0.45
])
def test_each_change_gets_the_verdict_its_physics_gives(before, after, code):
    b, a = _pair(before, after)
    codes = spectral.spectral_codes(np.ones((5, 5), bool), b, a, bands=["blue", "green", "red", "nir"])
    assert set(np.unique(codes)) == {code}


def test_nothing_is_tested_without_a_red_band():
    b, a = _pair(TREE, BARE_TREE)
    codes = spectral.spectral_codes(np.ones((5, 5), bool), b[[0, 1, 3]], a[[0, 1, 3]], bands=["blue", "green", "nir"])
    assert (codes == spectral.NOT_TESTED).all()
    assert spectral.spectral_verdict(codes) == ("not tested", spectral.REASONS[spectral.NOT_TESTED])


def test_a_polygon_that_is_not_fire_like_is_never_above_low():
    # Strong, persistent, registered, seen clear and confirmed by an analyst: high, unless it is not fire-like.
    polygons = gpd.GeoDataFrame({
        "polygon_id": ["a", "b"], "first_seen_index": [1, 1], "last_clear_index": [0, 0], "mean_index_change": [0.3, 0.3],
        "confirmed": [True, True], "spectral_test": ["fire-like", "not fire-like"],
        "spectral_reason": [spectral.REASONS[spectral.FIRE_LIKE], spectral.REASONS[spectral.VEGETATION]],
        "review": ["", "confirmed"], "review_by": ["", "A. Analyst"], "review_reason": ["", ""],
    }, geometry=[box(30, 30, 60, 60), box(30, 30, 60, 60)], crs="EPSG:32630")
    info = ThresholdInfo(0.0, 0.01, 0.04, 0.02, 1, 10)
    shift = ShiftEstimate(0.0, 0.0)
    clear = xr.DataArray(np.ones((2, 30, 30), bool), dims=("time", "y", "x"),
                         coords={"y": np.arange(30)[::-1] * 3.0, "x": np.arange(30) * 3.0})
    tiers = confidence_tiers(polygons, thresholds=[None, info], shifts=[shift, shift], clear=clear, scene_ids=["s0", "s1"])
    assert list(tiers["tier"]) == ["high", "low"]
    assert "not fire-like, so at most low" in tiers["tier_reasons"].iloc[1]


def test_a_thin_strip_of_red_rise_along_a_white_ash_burn_is_its_rim_not_leaf_drop():
    # Ash over green grass, its last column 70 % burned and 30 % the savanna beyond: a one-pixel strip
    # whose red rose (0.118 -> 0.146) and that still has a red edge. It stays with the burn.
    before, after = _pair(GREEN_GRASS, GREY_ASH, shape=(8, 8))
    savanna = np.array([0.096, 0.128, 0.16, 0.28])
    before[:, :, 7] = (0.7 * np.asarray(GREEN_GRASS) + 0.3 * savanna)[:, None]
    after[:, :, 7] = (0.7 * np.asarray(GREY_ASH) + 0.3 * savanna)[:, None]
    bands = ["blue", "green", "red", "nir"]
    one_pixel = spectral.spectral_codes(np.ones((1, 1), bool), before[:, :1, 7:], after[:, :1, 7:], bands=bands)
    assert one_pixel[0, 0] == spectral.VEGETATION  # alone, the mixed pixel reads as vegetation change
    codes = spectral.spectral_codes(np.ones((8, 8), bool), before, after, bands=bands)
    assert (codes == spectral.FIRE_LIKE).all()


def test_a_fragment_under_the_mapping_unit_left_in_leaf_drop_is_leaf_drop():
    # One pixel of a tree whose red rise the noise hid, inside the tree beside a burn: not a burn of its own.
    before, after = _pair(TREE, BARE_TREE, shape=(6, 12))
    before[:, :, 6:], after[:, :, 6:] = np.asarray((0.13, 0.19, 0.25, 0.36))[:, None, None], np.asarray(CHAR)[:, None, None]
    after[2, 2, 2] = before[2, 2, 2] + 0.005  # the red barely moved here
    bands = ["blue", "green", "red", "nir"]
    one = spectral.spectral_codes(np.ones((6, 12), bool), before, after, bands=bands)
    six = spectral.spectral_codes(np.ones((6, 12), bool), before, after, bands=bands, min_pixels=6)
    assert one[2, 2] == spectral.FIRE_LIKE and six[2, 2] == spectral.VEGETATION
    assert (six[:, :6] == spectral.VEGETATION).all() and (six[:, 6:] == spectral.FIRE_LIKE).all()


def _noisy_patch(seed: int, noise: float, darken) -> tuple[np.ndarray, np.ndarray]:
    """An 8 x 8 patch of yard soil (10 % texture) read on two dates with ``noise`` per band and pixel."""
    rng = np.random.default_rng(seed)
    ground = np.array([0.14, 0.19, 0.25, 0.36])[:, None, None] * (1 + 0.1 * rng.standard_normal((8, 8)))
    before = ground * (1 + noise * rng.standard_normal((4, 8, 8)))
    after = darken(ground) * (1 + noise * rng.standard_normal((4, 8, 8)))
    return before, after


def _verdicts(noise: float, darken) -> list[int]:
    bands = ["blue", "green", "red", "nir"]
    return [int(spectral.spectral_codes(np.ones((8, 8), bool), *_noisy_patch(seed, noise, darken), bands=bands)[0, 0])
            for seed in range(40)]


def test_a_shadow_read_through_noise_is_proportional_whatever_the_noise_draw():
    # A shade keeping 0.6 of the light in every band, read with 1 % noise per band and pixel (normalised
    # scenes: ~0.003 on this soil): ranked by the NIR drop alone, the core would gather the pixels whose
    # NIR noise fell, and the NIR would seem to fall most.
    assert _verdicts(0.01, lambda ground: 0.6 * ground) == [spectral.PROPORTIONAL] * 40


def test_half_a_pixel_of_char_over_bright_soil_is_fire_like_though_every_band_darkened_alike():
    # (1 - f) soil + f char at f = 0.5 keeps 0.50-0.55 of every band over this soil: the proportions and the
    # NIR kept alone read it as shade; mixing toward char fits it, scaling does not.
    char = np.asarray(CHAR)[:, None, None]
    assert _verdicts(0.01, lambda ground: ground + 0.5 * (char - ground)) == [spectral.FIRE_LIKE] * 40


def test_when_noise_hides_which_model_fits_the_darkening_is_kept_as_fire_like():
    # At 8 % noise per band and pixel the two models fit a shade equally: the test cannot say it is not fire,
    # so the patch stays a burn for the other rules (gone on the next clear scene, back at the usual hour).
    assert _verdicts(0.08, lambda ground: 0.6 * ground).count(spectral.FIRE_LIKE) >= 36


@pytest.mark.parametrize("darken, expected", [
    (lambda b, c: 0.5 * b, True),  # shade: every band halved
    (lambda b, c: b + 0.5 * (c - b), False),  # half char
    (lambda b, c: b + 0.9 * (c - b), False),  # nearly all char
])
def test_scaling_is_preferred_only_where_it_fits_better_than_mixing_toward_char(darken, expected):
    soil = np.array([[0.19, 0.17], [0.25, 0.22], [0.36, 0.30]])
    char = np.array([0.04, 0.05, 0.06])
    assert spectral.scaling_beats_mixing(soil, darken(soil, char[:, None]), char) is expected


def _sand_dated(n_time: int, darkened: list[tuple], sun: list | None = None) -> xr.Dataset:
    """The dating of ``n_time`` 40 x 40 px scenes of bright sand, each ``(time, rows, cols)`` of ``darkened``
    darkened in every band to 0.43 of the sand (NIR 0.33 -> 0.14)."""
    from pipeline.config import Params
    from pipeline.stages.change import consecutive_change
    from pipeline.stages.dating import date_burns
    from pipeline.stages.indices import burn_index

    sand = np.array([0.14, 0.20, 0.27, 0.33])
    refl = np.broadcast_to(sand[:, None, None, None], (4, n_time, 40, 40)).transpose(1, 0, 2, 3).copy()
    for when, rows, cols in darkened:
        refl[when, :, rows, cols] *= 0.43
    refl += np.random.default_rng(9).normal(0, 0.002, refl.shape)
    stack = xr.DataArray(refl.astype(np.float32), dims=("time", "band", "y", "x"),
                         coords={"band": ["blue", "green", "red", "nir"]})
    clear = xr.DataArray(np.ones((n_time, 40, 40), bool), dims=("time", "y", "x"))
    index = burn_index(stack, index="nir")
    return date_burns(consecutive_change(index, clear), index=index, clear=clear, post_nir=stack.sel(band="nir", drop=True),
                      params=Params(), pixel_area_m2=9.0, reflectance=stack, sun=sun)[0]


def test_a_proportional_darkening_that_stays_on_the_next_clear_scene_is_a_burn_one_that_passes_is_not():
    # Both patches darken every band to 0.43 of the sand (NIR 0.33 -> 0.14): shade or wet soil to the spectral
    # test. On the next clear scene patch A is as dark as it was (char over bright ground stays) and patch B is
    # sand again (shade moved, soil dried): A is a burn of scene 1, B a mark seen once and gone.
    dates = _sand_dated(3, [(slice(1, None), slice(5, 15), slice(5, 15)),  # A: from scene 1 on
                            (1, slice(25, 35), slice(25, 35))])  # B: scene 1 only
    assert (dates["first_seen"].values[5:15, 5:15] == 1).all()
    assert (dates["spectral"].values[5:15, 5:15] == spectral.STAYED).all()
    assert spectral.spectral_verdict(dates["spectral"].values[5:15, 5:15])[0] == "fire-like"
    assert not (dates["first_seen"].values[25:35, 25:35] >= 0).any()
    assert (dates["transient_seen"].values[25:35, 25:35] == 1).all()  # seen once and gone: listed, never dated


def test_a_proportional_darkening_that_stays_after_a_scene_at_another_hour_opens_its_bracket_before_it():
    # As patch A above, three times: scene 1 is taken at 07:50, its sun 14 degrees high. Its long shadows darken
    # bright ground as far as char does, and a compound that burned before scene 2 would stay as dark: scene 1
    # cannot tell the two, so the burn is first visible on scene 2, not visible on scene 0 (never "on 1").
    def dated(sun):
        return _sand_dated(4, [(slice(1, None), slice(5, 15), slice(5, 15))], sun=sun)

    usual, early = (47.6, 140.0), (14.4, 113.8)
    same_hour = dated([usual, usual, usual, usual])
    assert (same_hour["first_seen"].values[5:15, 5:15] == 1).all()
    other_hour = dated([usual, early, usual, usual])
    assert (other_hour["first_seen"].values[5:15, 5:15] == 2).all()
    assert (other_hour["last_clear_before"].values[5:15, 5:15] == 0).all()
    assert (other_hour["first_seen"].values >= 0).sum() == 100


def test_with_swir_a_cloud_that_drops_the_nbr_is_not_a_burn_while_char_beside_it_is():
    """A cumulus over forest drops the NBR as char does (its NIR and SWIR read alike), but it brightens every band,
    the NIR included; char darkens the NIR. On a two-scene pair nothing else screens it out."""
    bands = ["blue", "green", "red", "nir", "swir16", "swir22"]
    forest = np.array([0.03, 0.05, 0.04, 0.32, 0.16, 0.08])[:, None, None]
    before = forest * np.ones((6, 6, 10))
    after = before.copy()
    after[:, :, :4] = np.array([0.46, 0.45, 0.45, 0.47, 0.44, 0.40])[:, None, None]  # the cloud
    after[:, :, 6:] = np.array([0.03, 0.04, 0.05, 0.08, 0.16, 0.18])[:, None, None]  # char
    new = np.zeros((6, 10), bool)
    new[:, :4] = new[:, 6:] = True
    codes = spectral.spectral_codes(new, before, after, bands=bands)
    assert set(codes[:, :4].ravel()) == {spectral.BRIGHTENED} and set(codes[:, 6:].ravel()) == {spectral.NBR_JUDGED}
    assert spectral.spectral_verdict(codes[:, :4])[0] == "not fire-like"
    assert "a cloud, haze or snow" in spectral.spectral_verdict(codes[:, :4])[1]
    # a thin cloud that leaves the NIR of bright vegetation as it was is not caught by this rule: it needs every band
    after[3, :, :4] = 0.32
    assert set(spectral.spectral_codes(new, before, after, bands=bands)[:, :4].ravel()) == {spectral.NBR_JUDGED}
