"""Known-answer tests of the named hard scenarios: each is hard for the reason it claims.

Every scenario is simulated once on a small grid (cached), then each test checks the trap it
sets against the truth the simulator records: the shifts, the sky, the ground changes. The
pixel checks undo each scene's recorded gain, offset, haze and shift first, so they read the
ground the engine painted.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import typing

import numpy as np
import pytest
import shapely
from scipy import ndimage
from skimage.filters import window
from skimage.registration import phase_cross_correlation

from pipeline.sim import ground, materials, simulate, sky
from pipeline.grid import grid_for_bounds
from pipeline.sim.scenarios import SCENARIOS, Scenario
from pipeline.sim.simulate import simulate_village_series

# 720 m (3 m pixels) and 800 m (10 m pixels) squares in central Mali, UTM 30N: small enough that
# every scenario runs twice within the time budget, large enough for fields beyond the village.
GRID = grid_for_bounds((500000, 1520000, 500720, 1520720), "EPSG:32630", 3.0)
GRID_10M = grid_for_bounds((500000, 1520000, 500800, 1520800), "EPSG:32630", 10.0)
SEED = 7
SIZES = {"n_compounds": 24, "n_burned_first": 15}
NAMES = list(typing.get_args(Scenario))
DAYS = ["2024-01-26", "2024-01-27", "2024-01-28", "2024-01-31", "2024-02-01"]
ATTACK = "attack-2024-01-27"


@functools.lru_cache(maxsize=None)
def _series(name: str) -> simulate.SimulatedSeries:
    return simulate_village_series(GRID_10M if name == "sentinel2" else GRID, seed=SEED, **SIZES, scenario=name)


@functools.lru_cache(maxsize=None)
def _land(name: str) -> ground.Landscape:
    """The scenario's 1 m ground, rebuilt as the series built it (same seed, same sun)."""
    series = _series(name)
    azimuth = series.scenes[SCENARIOS[name].cloud_scene or 0].metadata["sun_azimuth"]
    return ground.build_landscape(series.grid, seed=SEED, **SIZES, plan=SCENARIOS[name], sun_azimuth=azimuth)


# --------------------------------------------------------------------------- helpers
# Metadata keys added after version 1; the demo's checksum ignores them and the new columns.
_ADDED_KEYS = frozenset({"description", "setting", "shadow_flagged", "changes"})
_V1_BURN_COLUMNS = ["compound_id", "event", "first_visible", "last_clear_before", "area_m2"]
_V1_COMPOUND_COLUMNS = ["compound_id", "event", "first_visible", "obscured_scene", "obscured_fraction"]


_VERSION_KEYS = frozenset({"version", "simulator_version"})  # version 2 changed SWIR only: the demo has none


# The simulator's module moved with the package's layout (pipeline.simulate -> pipeline.sim.simulate);
# its name is recorded as the series' maker, so version 1's name stands in for it here.
_MOVED = {"burnscan pipeline.sim.simulate": "burnscan pipeline.simulate"}


def _v1(meta):
    if isinstance(meta, dict):
        return {k: ("1" if k in _VERSION_KEYS else _MOVED.get(v, v) if k == "simulator" else _v1(v))
                for k, v in meta.items() if k not in _ADDED_KEYS}
    if isinstance(meta, list):
        return [_v1(v) for v in meta]
    return meta


def _digest(series: simulate.SimulatedSeries) -> str:
    """SHA-256 of the pixels, masks, shifts, truth and version-1 metadata of a series."""
    h = hashlib.sha256()

    def put(x) -> None:
        h.update(x if isinstance(x, bytes) else str(x).encode())

    for s in series.scenes:
        put(s.scene_id), put(s.satellite_id), put(repr(s.true_shift_px))
        put(np.ascontiguousarray(s.reflectance).tobytes()), put(np.ascontiguousarray(s.udm2).tobytes())
        put(json.dumps(_v1(s.metadata), sort_keys=True))
    put(series.truth_first_visible.tobytes())
    for table, columns in ((series.truth_burns, _V1_BURN_COLUMNS), (series.compounds, _V1_COMPOUND_COLUMNS)):
        put(repr([tuple(r) for r in table[columns].itertuples(index=False)]))
        for g in table.geometry:
            put(g.wkb)
    put(series.settlement.wkb)
    put(json.dumps(_v1(series.metadata), sort_keys=True))
    return h.hexdigest()


def _ground(scene: simulate.SimulatedScene, *, unshift: bool = True) -> np.ndarray:
    """Undo the scene's gain, offset, haze (and shift): back to surface reflectance."""
    m = scene.metadata
    gain, offset, path = (np.array(m[k])[:, None, None] for k in ("gain", "offset", "haze_path_reflectance"))
    rho = ((scene.reflectance / 10000.0 - offset) / gain - path) / m["haze_transmittance"]
    if not unshift:
        return rho
    back = -np.array(scene.true_shift_px)
    return np.stack([ndimage.shift(band, back, order=1, mode="nearest") for band in rho])


def _share(name: str, scene: simulate.SimulatedScene, codes: list[int]) -> np.ndarray:
    """Share of each pixel of ``scene`` (in its own, shifted frame) covered by these materials."""
    land = _land(name)
    return ground.land_image(land, np.isin(land.labels, codes).astype(np.float32), scene.true_shift_px)


def _pixel_centres(series: simulate.SimulatedSeries) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(series.grid.x_coords(), series.grid.y_coords())


def _day_index(series: simulate.SimulatedSeries, iso: str) -> int:
    return [s.metadata["acquired"] for s in series.scenes].index(iso)


# --------------------------------------------------------------------------- the plans
def test_scenario_literal_and_plans_agree():
    assert NAMES == list(SCENARIOS) and NAMES[0] == "demo"
    for name, plan in SCENARIOS.items():
        assert plan.name == name
        assert plan.description.count(". ") == 0 and plan.description.endswith(".")  # one sentence
        times = [a.time for a in plan.acquisitions]
        assert [f"{t:%Y-%m-%d}" for t in times] == DAYS and times == sorted(times)
        assert [e.time for e in plan.events] == sorted(e.time for e in plan.events)
        assert sum(a.cloud for a in plan.acquisitions) <= 1
        settlement = [k for k, e in enumerate(plan.events) if e.setting == "settlement"]
        assert settlement == list(range(len(settlement)))  # settlement events are numbered first


@pytest.mark.slow
def test_demo_is_byte_identical_to_version_1():
    # Version stamps aside, the demo's pixels and truth have not changed since version 1.
    # Computed with the version-1 simulator (before any scenario existed) on numpy 2.4.6,
    # scipy 1.17.1, shapely 2.2.0, on tests/test_simulate.py's 900 m grid: pixels, masks,
    # shifts, truth tables and every metadata value of version 1. Keys and columns added
    # since are left out (_ADDED_KEYS).
    grid = grid_for_bounds((500000, 1520000, 500900, 1520900), "EPSG:32630", 3.0)
    series = simulate_village_series(grid, seed=SEED, n_compounds=40, n_burned_first=25)
    assert _digest(series) == "cb37a7d4ebfa38dacc2e10d82edb9668f225a8171a2256166ead51c2efd36721"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_same_seed_gives_identical_series(name):
    again = simulate_village_series(_series(name).grid, seed=SEED, **SIZES, scenario=name)
    assert _digest(again) == _digest(_series(name))
    assert again.metadata == _series(name).metadata


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_scenario_is_a_complete_series(name):
    series = _series(name)
    assert series.metadata["scenario"] == name and series.metadata["description"] == SCENARIOS[name].description
    json.dumps(series.metadata)
    n_bands = 6 if name == "sentinel2" else 4
    for k, scene in enumerate(series.scenes):
        assert f"{scene.acquired:%Y-%m-%d}" == DAYS[k] and scene.acquired.utcoffset().total_seconds() == 0
        assert re.fullmatch(rf"2024\d{{4}}_\d{{6}}_sim_d{k}", scene.scene_id)
        assert scene.reflectance.shape == (n_bands, *series.grid.shape) and len(scene.metadata["bands"]) == n_bands
        assert scene.reflectance.min() >= 1 and scene.reflectance.max() <= 10000  # ground never runs out
        assert scene.udm2.shape == (8, *series.grid.shape) and set(np.unique(scene.udm2[:6])) <= {0, 1}
        clear, shadow, cloud = (scene.udm2[b].astype(bool) for b in (0, 2, 5))
        assert not (clear & (cloud | shadow)).any() and not scene.udm2[4].any()
        assert scene.metadata["true_shift_px"] == list(scene.true_shift_px)
        json.dumps(scene.metadata)
    burns = series.truth_burns
    assert {"setting", "first_seen_clear"} <= set(burns.columns) and set(burns.setting) <= {"settlement", "outside"}
    first = {_day_index(series, iso) for iso in burns.first_visible}
    assert set(np.unique(series.truth_first_visible)) == {-1} | first
    assert series.settlement.is_valid and series.settlement.area > 0


def test_times_are_1038_utc_except_the_early_passes():
    early = {"dry_season": ["10:38", "09:40", "10:38", "10:38", "10:38"],
             "building_shadow": ["10:38", "10:38", "10:38", "07:50", "10:38"],
             "nonfire_with_burns": ["10:38", "07:50", "10:38", "10:38", "10:38"],
             "burns_at_dawn": ["10:38", "07:50", "10:38", "10:38", "10:38"]}
    for name in NAMES:
        hours = [f"{s.acquired:%H:%M}" for s in _series(name).scenes]
        assert hours == early.get(name, ["10:38"] * 5)


# --------------------------------------------------------------------------- large_shift
def _registration(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    hann = window("hann", reference.shape)
    a, b = (reference - reference.mean()) * hann, (moving - moving.mean()) * hann
    found, _, _ = phase_cross_correlation(a, b, upsample_factor=100, normalization=None)
    return found


def test_large_shift_misregisters_by_up_to_30_px_exactly():
    series = _series("large_shift")
    shifts = np.array([s.true_shift_px for s in series.scenes])
    pairwise = np.abs(shifts[:, None, :] - shifts[None, :, :])
    assert pairwise.max() > 25 and pairwise.max() <= 30  # every pair within 30 px per axis
    assert np.abs(shifts[1] - shifts[0]).max() > 25  # the pair before the attack: 27 January vs 26
    assert np.all(np.abs(shifts - np.round(shifts)) > 0.05)  # sub-pixel parts as well
    # Known answer: the recorded relative shift is what the pixels show, to 0.1 px. Both scenes
    # precede every burn, so only the misregistration differs.
    found = _registration(series.scenes[0].reflectance[3].astype(float), series.scenes[1].reflectance[3].astype(float))
    assert np.abs(found - (shifts[0] - shifts[1])).max() < 0.1


# --------------------------------------------------------------------------- satellite_response
def test_satellite_response_alternates_instruments():
    scenes = _series("satellite_response").scenes
    assert [s.metadata["instrument"] for s in scenes] == ["PS2", "PSB.SD", "PS2", "PSB.SD", "PS2"]


@pytest.mark.slow
def test_per_material_band_ratios_differ_between_instruments(monkeypatch):
    # Known answer: image the same ground, shift and noise through SuperDove only; the ratio of
    # the two renderings of scene 0 (Dove Classic in the real plan) is the response factor of
    # whatever fills each pixel. A single gain per band would make it the same for every material.
    name = "satellite_response"
    plan = SCENARIOS[name]
    twin_plan = dataclasses.replace(plan, acquisitions=tuple(
        dataclasses.replace(a, instrument="PSB.SD") for a in plan.acquisitions))
    monkeypatch.setitem(SCENARIOS, name, twin_plan)
    twin = simulate_village_series(GRID, seed=SEED, **SIZES, scenario=name)
    ps2, sd = _series(name).scenes[0], twin.scenes[0]
    ratio = _ground(ps2, unshift=False) / _ground(sd, unshift=False)
    tree = _share(name, ps2, [materials.TREE]) > 0.9
    sand = _share(name, ps2, [materials.SAND]) > 0.99
    assert tree.sum() > 10 and sand.sum() > 1000
    red_tree, red_sand = np.median(ratio[2][tree]), np.median(ratio[2][sand])
    # Pure materials would give 1.04 and 0.97; crown pixels hold a little soil and shadow.
    assert red_tree > 1.0 > 0.98 > red_sand and red_tree - red_sand > 0.04
    assert abs(np.median(ratio[3][tree]) - np.median(ratio[3][sand])) < 0.02  # NIR barely differs


def test_instrument_bias_shows_between_real_scenes():
    # After undoing each scene's own (linear) radiometry, sand's red still differs by ~3 %
    # between Dove Classic and SuperDove scenes, and agrees between scenes of one instrument.
    series = _series("satellite_response")
    sand = [_share("satellite_response", s, [materials.SAND]) > 0.99 for s in series.scenes]
    red = [np.median(_ground(s, unshift=False)[2][m]) for s, m in zip(series.scenes, sand)]
    assert abs(red[0] / red[2] - 1) < 0.01 and abs(red[1] / red[3] - 1) < 0.01
    assert red[1] / red[0] > 1.02 and red[3] / red[2] > 1.02


# --------------------------------------------------------------------------- haze_after
def test_haze_after_brightens_the_after_scenes_only():
    series = _series("haze_after")
    assert [s.metadata["haze"] for s in series.scenes] == ["none", "none", "dense", "none", "dense"]
    # Tree crowns (blue ~0.03) are the darkest ground: the dust's 0.08 blue path lifts them.
    crowns = [_share("haze_after", s, [materials.TREE]) > 0.9 for s in series.scenes]
    blue = [np.median(s.reflectance[0][m]) / 10000.0 for s, m in zip(series.scenes, crowns)]
    for k in (2, 4):
        assert blue[k] - blue[1] > 0.05 and blue[k] - blue[3] > 0.05
        assert series.scenes[k].metadata["haze_transmittance"] == pytest.approx(0.80)
        # UDM2 calls it light haze: the ground is seen, so the scene stays usable.
        assert series.scenes[k].udm2[3].all() and series.scenes[k].udm2[0].all()
        assert not series.scenes[k].udm2[4].any()
    assert not series.scenes[1].udm2[3].any() and not series.scenes[3].udm2[3].any()


# --------------------------------------------------------------------------- clouds
def test_cloud_flagged_hides_burned_compounds_on_28_january():
    series = _series("cloud_flagged")
    info = series.metadata["cloud"]
    assert info["scene_index"] == 2 and info["shadow_flagged"]
    cloudy = series.scenes[2]
    assert cloudy.udm2[5].any() and cloudy.udm2[2].any()
    for k in (0, 1, 3, 4):  # 31 January is the next clear scene
        assert series.scenes[k].udm2[0].all()
    attack = set(series.compounds.compound_id[series.compounds.event == ATTACK])
    under_cloud, under_shadow = set(info["compound_ids_under_cloud"]), set(info["compound_ids_under_shadow"])
    assert under_cloud & attack and under_shadow - attack and not under_cloud & under_shadow
    hidden = series.truth_burns[series.truth_burns.compound_id.isin(under_cloud)
                                & (series.truth_burns.event == ATTACK)]
    assert len(hidden) and set(hidden.first_visible) == {"2024-01-28T10:38:00Z"}
    assert set(hidden.first_seen_clear) == {"2024-01-31T10:38:00Z"}
    assert set(hidden.last_clear_before) == {"2024-01-27T10:38:00Z"}


def test_unflagged_shadow_darkens_clear_pixels_that_recover():
    series = _series("shadow_unflagged")
    cloudy = series.scenes[2]
    assert not cloudy.udm2[2].any() and cloudy.udm2[5].any() and not series.metadata["cloud"]["shadow_flagged"]
    before, during, after = (_ground(series.scenes[k])[3] for k in (1, 2, 3))
    clear = ndimage.shift(cloudy.udm2[0].astype(float), -np.array(cloudy.true_shift_px), order=0) > 0
    burned_by_28th = ndimage.binary_dilation(series.truth_first_visible == 2, iterations=2)
    dark = clear & ~burned_by_28th & (during < 0.6 * before)
    dark[:8], dark[-8:], dark[:, :8], dark[:, -8:] = False, False, False, False
    assert dark.sum() > 200  # a patch of 1800 m2 or more that trusts the mask and looks burned
    assert np.median(after[dark] / before[dark]) == pytest.approx(1.0, abs=0.05)  # gone on the 31st
    x, y = _pixel_centres(series)
    in_village = shapely.contains_xy(series.settlement, x[dark], y[dark])
    assert in_village.sum() > 20 and (~in_village).sum() > 20  # village ground and fields
    # Inside the village it darkens compounds that burn only on 1 February, or never.
    assert set(np.unique(series.truth_first_visible[dark])) <= {-1, 4}


# --------------------------------------------------------------------------- dry_season
def test_dry_season_burns_a_field_not_the_settlement():
    series = _series("dry_season")
    burns = series.truth_burns
    assert list(burns.setting) == ["outside"] and list(burns.compound_id) == [-1]
    assert set(burns.first_visible) == {"2024-01-31T10:38:00Z"}
    assert set(np.unique(series.truth_first_visible)) == {-1, 3}
    assert not burns.geometry.iloc[0].intersects(series.settlement)
    assert (series.compounds.event == "").all()
    nir = [_ground(series.scenes[k])[3] for k in (2, 3)]
    field = series.truth_first_visible == 3
    assert np.median(nir[0][field] - nir[1][field]) > 0.1  # a real burn: char on 31 January


def test_dry_season_lists_its_non_burn_changes():
    changes = {c["change"]: c for c in _series("dry_season").metadata["changes"]}
    assert set(changes) == {"leaf_fall", "harvest", "wet_soil", "sun_angle"}
    assert changes["harvest"]["first_visible"] == "2024-01-28T10:38:00Z"
    assert changes["wet_soil"]["scenes"] == ["2024-01-31T10:38:00Z", "2024-02-01T10:38:00Z"]
    assert changes["sun_angle"]["scenes"] == ["2024-01-27T09:40:00Z"]
    for c in changes.values():
        assert shapely.from_wkt(c["wkt"]).area > 0


def test_deciduous_canopy_nir_falls_and_red_rises():
    series = _series("dry_season")
    crown = [_share("dry_season", s, [materials.DECIDUOUS]) > 0.9 for s in series.scenes]
    rho = [_ground(s, unshift=False) for s in series.scenes]
    nir = [np.median(r[3][m]) for r, m in zip(rho, crown)]
    red = [np.median(r[2][m]) for r, m in zip(rho, crown)]
    assert nir[0] == pytest.approx(0.38, abs=0.03) and nir[4] == pytest.approx(0.25, abs=0.03)
    assert nir[2] < nir[0] - 0.03 and red[4] > red[0] + 0.07
    evergreen = [np.median(r[3][_share("dry_season", s, [materials.TREE]) > 0.9]) for r, s in zip(rho, series.scenes)]
    assert abs(evergreen[4] - evergreen[0]) < 0.03


def test_rain_darkens_soil_on_31_january_and_it_dries():
    series = _series("dry_season")
    sand = [_share("dry_season", s, [materials.SAND]) > 0.99 for s in series.scenes]
    rho = [_ground(s, unshift=False) for s in series.scenes]
    for band in range(4):
        level = [np.median(r[band][m]) for r, m in zip(rho, sand)]
        assert 0.6 < level[3] / level[2] < 0.7  # 30-40 % darker in every band
        assert level[4] / level[2] > 0.9


def test_harvest_brightens_the_field_on_28_january():
    series = _series("dry_season")
    field = shapely.from_wkt(next(c["wkt"] for c in series.metadata["changes"] if c["change"] == "harvest"))
    x, y = _pixel_centres(series)
    inside = shapely.contains_xy(field.buffer(-6.0), x, y)
    nir = [_ground(series.scenes[k])[3][inside] for k in (0, 2)]
    assert inside.sum() > 30 and np.median(nir[1] - nir[0]) > 0.03  # stalks cut: soil shows


def test_earlier_pass_lengthens_tree_shadows():
    series = _series("dry_season")
    land = _land("dry_season")
    sun = [(s.metadata["sun_azimuth"], s.metadata["sun_elevation"]) for s in series.scenes]
    assert sun[1][1] < sun[0][1] - 5 and sun[1][0] < sun[0][0] - 5  # lower and more easterly
    # Shadows reach farther from their crowns as the sun drops (about 1 / tan(elevation)).
    from_crown = ndimage.distance_transform_edt(~np.isin(land.labels, [materials.TREE, materials.DECIDUOUS]))
    reach = [from_crown[sky.tree_light(land, sun[k], 0.0) < 1].mean() for k in (0, 1)]
    assert reach[1] > 1.2 * reach[0]


# --------------------------------------------------------------------------- single_compound
def test_single_compound_burns_10_by_10_m():
    series = _series("single_compound")
    burns = series.truth_burns
    assert len(burns) == 1 and burns.setting.iloc[0] == "settlement"
    assert burns.area_m2.iloc[0] == pytest.approx(100.0, abs=0.1)
    assert burns.first_visible.iloc[0] == "2024-01-28T10:38:00Z"
    assert 8 <= np.sum(series.truth_first_visible == 2) <= 14  # about 11 pixels of 9 m2
    assert set(np.unique(series.truth_first_visible)) == {-1, 2}
    outline = series.compounds.set_index("compound_id").geometry[burns.compound_id.iloc[0]]
    assert outline.contains(burns.geometry.iloc[0])


# --------------------------------------------------------------------------- sentinel2
def test_sentinel2_has_six_bands_and_smoother_swir():
    series = _series("sentinel2")
    scene = series.scenes[1]
    assert scene.metadata["bands"] == ["blue", "green", "red", "nir", "swir16", "swir22"]
    assert scene.metadata["native_resolution_m"]["swir16"] == 20 and series.grid.resolution == 10.0
    assert max(scene.metadata["noise_sigma"]) <= 0.003
    rho = scene.reflectance / 10000.0
    roughness = [np.diff(b, axis=1).std() / b.std() for b in rho]  # pixel-to-pixel vs overall contrast
    assert max(roughness[4:]) < 0.75 * min(roughness[:4])
    shifts = np.abs([s.true_shift_px for s in series.scenes])
    assert shifts.min() >= 0.3 and shifts.max() <= 0.6


def test_sentinel2_swir_separates_char_from_soil():
    series = _series("sentinel2")
    before, after = (_ground(series.scenes[k]) for k in (1, 2))
    burned = series.truth_first_visible == 2  # compounds span 2-3 pixels: mostly mixed pixels
    assert burned.sum() > 20
    # SWIR2 falls from soil (~0.4) toward char (0.07), diluted by 20 m pixels over 20-28 m compounds.
    assert np.median(before[5][burned] - after[5][burned]) > 0.05


def test_grid_resolution_must_match_the_sensor():
    with pytest.raises(ValueError, match="10 m"):
        simulate_village_series(GRID, seed=SEED, **SIZES, scenario="sentinel2")
    with pytest.raises(ValueError, match="only scenario='sentinel2'"):
        simulate_village_series(GRID_10M, seed=SEED, **SIZES, scenario="large_shift")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_scene_reads_as_land_in_the_nir(name):
    """No simulated scene is taken for one whose bands are in another order (plausibility.nir_below_visible): not the
    cloud, the haze, the wet soil nor the bare fields of any scenario, on its clear pixels or on all of them."""
    from pipeline.stages.plausibility import nir_below_visible

    for scene in _series(name).scenes:
        bands = list(scene.metadata["bands"])
        refl = np.where(scene.reflectance > 0, scene.reflectance / 10000.0, np.nan)
        seen = np.all(np.isfinite(refl), axis=0)
        clear = seen & (scene.udm2[0] == 1)
        for pixels in (clear, seen):
            assert nir_below_visible(refl, pixels, bands=bands) is None, scene.scene_id
