"""Known-answer tests of the simulated search box: its truth table, its truth raster and its pixels
must tell the same story, and its folder must read like any Planet delivery."""

from __future__ import annotations

import math

import geopandas
import numpy as np
import pytest
import rasterio
import shapely
from scipy import ndimage

from pipeline.aoi import aoi_from_feature
from pipeline.errors import AoiError, OutputError, ParameterError
from pipeline.grid import grid_for_bounds
from pipeline.sim.scenarios import SCENARIOS
from pipeline.sim.search_box import (SEARCH_BOX_VERSION, ensure_search_box, search_box_grid, simulate_search_box,
                                 write_search_box)
from pipeline.readers.recognise import load_sources, recognise
from pipeline.sim.search_ground import layout_sites

SEED = 11
SIZE_M = 2500.0  # the smallest box the tests need: 833 x 833 px, about 5 s to simulate
LON, LAT = -3.785, 13.835  # inside the Segue search area
AOI = aoi_from_feature("searchtest", {
    "type": "Feature",
    "properties": {"search_area": {"type": "Polygon", "coordinates": [[
        [LON - 0.1, LAT - 0.1], [LON + 0.1, LAT - 0.1], [LON + 0.1, LAT + 0.1], [LON - 0.1, LAT + 0.1],
        [LON - 0.1, LAT - 0.1]]]}},
    "geometry": {"type": "Polygon", "coordinates": [[
        [LON - 0.01, LAT - 0.01], [LON + 0.01, LAT - 0.01], [LON + 0.01, LAT + 0.01], [LON - 0.01, LAT + 0.01],
        [LON - 0.01, LAT - 0.01]]]},
})
GRID = search_box_grid((LON, LAT), SIZE_M)
CLOUD, HAZE = 3, 4  # 31 January and 1 February


@pytest.fixture(scope="module")
def box():
    return simulate_search_box(GRID, seed=SEED)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """``(folder, box)``: the same box, simulated again and written by ``ensure_search_box``."""
    return ensure_search_box(tmp_path_factory.mktemp("data"), AOI, size_m=SIZE_M, seed=SEED)


def _site(box, site_id):
    return box.sites.set_index("site_id").loc[site_id]


def _scene_index(iso: str, box) -> int:
    return [s.metadata["acquired"] for s in box.scenes].index(iso)


def _inside(box, geometry, buffer_m: float = 0.0) -> np.ndarray:
    """Pixels whose centres lie in ``geometry`` (grown by ``buffer_m``)."""
    xx, yy = np.meshgrid(box.grid.x_coords(), box.grid.y_coords())
    return shapely.contains_xy(geometry.buffer(buffer_m), xx, yy)


def _ground_reflectance(scene) -> np.ndarray:
    """Undo the scene's gain, offset, haze and shift: back to surface reflectance on the grid."""
    m = scene.metadata
    gain, offset = (np.array(m[k])[:, None, None] for k in ("gain", "offset"))
    path = np.array(m["haze_path_reflectance"])[:, None, None]
    rho = ((scene.reflectance / 10000.0 - offset) / gain - path) / m["haze_transmittance"]
    return np.stack([ndimage.shift(band, -np.array(scene.true_shift_px), order=1, mode="nearest") for band in rho])


# --------------------------------------------------------------------------- the grid and arguments
def test_grid_is_the_asked_square_in_utm():
    assert GRID.shape == (833, 833) and GRID.crs == "EPSG:32630" and GRID.resolution == 3.0
    assert GRID.transform.c % 3 == 0 and GRID.transform.f % 3 == 0
    assert search_box_grid((LON, LAT)).shape == (2000, 2000)


def test_bad_grids_are_refused_with_the_fix():
    ten_m = grid_for_bounds(GRID.bounds, GRID.crs, 10.0)
    with pytest.raises(ParameterError, match="search_box_grid"):
        simulate_search_box(ten_m)
    with pytest.raises(ParameterError, match="size_m"):
        simulate_search_box(search_box_grid((LON, LAT), 1200.0))
    with pytest.raises(AoiError, match="search_area"):
        ensure_search_box("/nonexistent", aoi_from_feature("nosearch", {"type": "Feature", "properties": {},
                                                                          "geometry": AOI.geometry.__geo_interface__}))


# --------------------------------------------------------------------------- determinism
@pytest.mark.slow
def test_same_seed_gives_identical_box(box, written):
    _, again = written
    assert again is not None, "the folder did not exist, so the box was simulated"
    for a, b in zip(box.scenes, again.scenes, strict=True):
        np.testing.assert_array_equal(a.reflectance, b.reflectance)
        np.testing.assert_array_equal(a.udm2, b.udm2)
        assert a.true_shift_px == b.true_shift_px and a.metadata == b.metadata
    np.testing.assert_array_equal(box.truth_first_visible, again.truth_first_visible)
    assert box.sites.drop(columns="geometry").equals(again.sites.drop(columns="geometry"))
    assert box.sites.geometry.geom_equals_exact(again.sites.geometry, 1e-9).all()
    assert box.metadata == again.metadata


def test_other_seed_lays_out_other_sites(box):
    """Everything derives from the seed, the layout first (simulating a second box to see it took 9 s)."""
    (mine, _), (other, _) = (layout_sites(GRID, seed) for seed in (SEED, SEED + 1))
    assert [s.outline.wkb for s in mine] == [s.outline.wkb for s in layout_sites(GRID, SEED)[0]]
    assert {s.site_id for s in mine} == set(box.sites["site_id"])
    assert not any(a.outline.equals_exact(b.outline, 1.0) for a in mine for b in other)


# --------------------------------------------------------------------------- the scenes
@pytest.mark.slow
def test_five_demo_acquisitions_laid_out_like_planet(box):
    assert [s.acquired for s in box.scenes] == [a.time for a in SCENARIOS["demo"].acquisitions]
    h, w = GRID.shape
    gains = set()
    for k, scene in enumerate(box.scenes):
        assert scene.scene_id.endswith(f"_sim_d{k}") and scene.metadata["simulated"] is True
        assert scene.reflectance.shape == (4, h, w) and scene.reflectance.dtype == np.uint16
        assert scene.udm2.shape == (8, h, w) and scene.udm2.dtype == np.uint8
        assert scene.reflectance.min() >= 1 and scene.reflectance.max() <= 10000  # 0 is nodata
        assert not scene.reflectance.flags.writeable and not scene.udm2.flags.writeable
        assert all(0.3 <= abs(d) <= 4.0 for d in scene.true_shift_px)  # one misregistration per scene
        gains.add(tuple(scene.metadata["gain"]))
    assert len(gains) == 5


@pytest.mark.slow
def test_haze_only_on_its_scene(box):
    assert box.metadata["haze_scene_indices"] == [HAZE]
    for k, scene in enumerate(box.scenes):
        assert scene.metadata["haze"] == ("moderate" if k == HAZE else "none")
        assert bool(scene.udm2[3].any()) == (k == HAZE)  # flagged as light haze, as the demo does
    assert box.scenes[HAZE].udm2[3].mean() > 0.99  # the whole box


# --------------------------------------------------------------------------- the sites
@pytest.mark.slow
def test_sites_of_each_kind_as_specified(box):
    sites = box.sites
    kinds = sites["kind"].value_counts().to_dict()
    assert kinds["village_burned"] == 3 and kinds["village_unburned"] == 2
    assert 3 <= kinds["bush_fire"] <= 4 and 3 <= kinds["field_fire"] <= 4
    burned = sites[sites["kind"] == "village_burned"]
    assert sorted(burned["first_visible_index"]) == [2, 2, 4]  # 28 January twice, 1 February once
    assert (sites[sites["kind"] == "village_unburned"]["first_visible_index"] == -1).all()
    villages = sites[sites["kind"].str.startswith("village")]
    assert villages["n_compounds"].between(25, 90).all()
    share = burned["n_compounds_burned"] / burned["n_compounds"]
    assert (share > 0.5).all() and (share < 1.0).all()  # most, not all
    for kind, low, high in (("bush_fire", 5e4, 80e4), ("field_fire", 0.5e4, 3e4)):
        fires = sites[sites["kind"] == kind]
        assert fires["area_m2"].between(low * 0.99, high * 1.01).all(), fires["area_m2"]
        dates = set(fires["first_visible_index"])
        assert len(dates) >= 3 and dates & {2, 4}, "various dates, some on the attacks' dates"
    for row in sites.itertuples():
        seen = row.first_visible_index
        assert row.first_visible == (box.scenes[seen].metadata["acquired"] if seen >= 0 else "")
    # Compounds burn one by one: a burned village's burns are many separate patches of 10-25 m.
    one = box.compounds[(box.compounds["site_id"] == burned["site_id"].iloc[0]) & box.compounds["burned"]]
    assert one["burned_area_m2"].between(100, 625).all()


@pytest.mark.slow
def test_sites_lie_well_inside_the_box_and_apart(box):
    inner = shapely.box(*GRID.bounds).buffer(-150.0, join_style="mitre")
    geoms = list(box.sites.geometry)
    assert all(inner.contains(g) for g in geoms)
    for i, a in enumerate(geoms):
        for b in geoms[i + 1:]:
            assert a.distance(b) > 0
    villages = box.sites[box.sites["kind"].str.startswith("village")].geometry
    near = [g for g in box.sites[box.sites["kind"] == "bush_fire"].geometry
            if any(g.centroid.distance(v.centroid) <= 800.0 and g.distance(v) > 0 for v in villages)]
    assert near, "a bush fire within ~800 m of a village, not touching it"


# --------------------------------------------------------------------------- truth raster
@pytest.mark.slow
def test_truth_raster_agrees_with_sites(box):
    truth = box.truth_first_visible
    assert truth.dtype == np.int16 and truth.shape == GRID.shape
    anywhere = np.zeros(GRID.shape, dtype=bool)
    for row in box.sites.itertuples():
        near = _inside(box, row.geometry, 3.0)
        anywhere |= near
        values = set(np.unique(truth[near]))
        if row.first_visible_index < 0:
            assert values == {-1}, f"{row.site_id} never burned but the truth says {values}"
            continue
        assert values <= {-1, row.first_visible_index}, f"{row.site_id}: {values}"
        area = 9.0 * np.count_nonzero(truth[near] == row.first_visible_index)
        # Painted 1 m cells against polygon areas: within 1 % on three seeds; 5 % leaves room.
        assert area == pytest.approx(row.burned_area_m2, rel=0.05), row.site_id
    assert not (truth >= 0)[~anywhere].any(), "a burn in the truth raster that no site accounts for"


@pytest.mark.slow
def test_nir_drops_on_burns_and_not_on_unburned_compounds(box):
    rho = [_ground_reflectance(s) for s in box.scenes]
    truth = box.truth_first_visible
    burned = box.sites[box.sites["first_visible_index"] >= 0]
    pairs = set()
    for row in burned.itertuples():
        after = row.first_visible_index
        before = _scene_index(row.last_clear_before, box)
        pairs.add((before, after))
        core = ndimage.binary_erosion((truth == after) & _inside(box, row.geometry, 3.0))  # no mixed edges
        drop = rho[before][3][core] - rho[after][3][core]
        # Char drops NIR by 0.18-0.26 on three seeds (0.27-0.38 to 0.06 in materials.py, mixed).
        assert core.sum() > 20 and np.median(drop) > 0.12, (row.site_id, np.median(drop))
        assert np.median(rho[after][2][core]) < np.median(rho[before][2][core]) - 0.05  # darker red too
        if before > 0:  # and not a scene earlier: the burn shows first exactly where the table says
            assert abs(np.median(rho[0][3][core] - rho[before][3][core])) < 0.01, row.site_id
    kept = box.compounds[~box.compounds["burned"]]
    assert len(kept) >= 25 + 25  # the two unburned villages and the spared compounds
    compounds = _inside(box, shapely.union_all(list(kept.geometry)), -3.0)
    compounds &= ~ndimage.binary_dilation(truth >= 0, iterations=2)
    for before, after in sorted(pairs):
        change = rho[before][3][compounds] - rho[after][3][compounds]
        # Noise and the day-to-day field alone: median ~0.001, 95th percentile ~0.013 on three seeds.
        assert abs(np.median(change)) < 0.01 and np.percentile(np.abs(change), 95) < 0.04, (before, after)


# --------------------------------------------------------------------------- the cumulus
@pytest.mark.slow
def test_cloud_and_shadow_flagged_over_the_1_february_village(box):
    assert box.metadata["cloud_scene_index"] == CLOUD
    village = _site(box, "village-3")
    assert village["first_visible_index"] == 4
    udm2 = box.scenes[CLOUD].udm2
    inside = _inside(box, village.geometry)
    assert udm2[5][inside].any() and udm2[2][inside].any(), "cloud and shadow both over the village"
    assert not (udm2[5] & udm2[2]).any() and not (udm2[0] & (udm2[5] | udm2[2])).any()
    for k, scene in enumerate(box.scenes):
        if k != CLOUD:
            assert not scene.udm2[5].any() and not scene.udm2[2].any() and scene.udm2[0].all()
    # Back on the ground, part of the return's burns is hidden on 31 January and part is not:
    # for the hidden part the last clear view before the burn is 28 January.
    hidden = ndimage.shift((udm2[5] | udm2[2]).astype(float), -np.array(box.scenes[CLOUD].true_shift_px), order=0) > 0
    burns = (box.truth_first_visible == 4) & inside
    assert (burns & hidden).sum() > 20 and (burns & ~hidden).sum() > 20
    assert village["last_clear_before"] == box.scenes[2].metadata["acquired"]
    assert village["obscured_scene"] == CLOUD and 0 < village["obscured_fraction"] < 1
    covered = box.compounds[(box.compounds["site_id"] == "village-3") & (box.compounds["obscured_scene"] == CLOUD)]
    assert len(covered) and (covered["last_clear_before"][covered["burned"]] == village["last_clear_before"]).all()


# --------------------------------------------------------------------------- the folder
@pytest.mark.slow
def test_written_folder_loads_as_five_simulated_planet_scenes(box, written):
    folder, _ = written
    names = [p.name for p in folder.rglob("*") if p.is_file()]
    assert names and all("SIMULATED" in n for n in names), names
    assert "SIMULATED" in folder.name and f"-v{SEARCH_BOX_VERSION}-" in folder.name
    sources = recognise(folder)
    assert len(sources) == 5
    infos = [s.describe() for s in sources]
    assert all(i.kind == "planet" and i.properties["simulated"] for i in infos)
    stack, records = load_sources(sources, box.grid)
    assert stack.sizes["time"] == 5 and (stack.sizes["y"], stack.sizes["x"]) == GRID.shape
    assert all(r.simulated for r in records)
    np.testing.assert_allclose(stack["reflectance"].values[2, 3], box.scenes[2].reflectance[3] / 10000.0, atol=1e-6)
    assert not stack["clear"].values[CLOUD].all() and stack["clear"].values[2].all()
    with rasterio.open(folder / "truth_first_visible_SIMULATED.tif") as src:
        np.testing.assert_array_equal(src.read(1), box.truth_first_visible)
        assert src.tags()["SIMULATED"] == "yes"
    sites = geopandas.read_file(folder / "sites_SIMULATED.geojson")
    assert sites.crs.to_epsg() == 4326 and list(sites["site_id"]) == list(box.sites["site_id"])
    back = sites.to_crs(GRID.crs).geometry
    assert all(math.isclose(a.area, b.area, rel_tol=1e-3) for a, b in zip(back, box.sites.geometry))


@pytest.mark.slow
def test_ensure_reuses_a_complete_folder_and_never_rewrites_it(written):
    folder, _ = written
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*")}
    siblings = sorted(folder.parent.iterdir())
    again, box = ensure_search_box(folder.parent.parent, AOI, size_m=SIZE_M, seed=SEED)
    assert again == folder and box is None
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*")} == before
    assert sorted(folder.parent.iterdir()) == siblings  # nothing half-written left beside it


@pytest.mark.slow
def test_write_refuses_to_overwrite(box, written):
    folder, _ = written
    with pytest.raises(OutputError, match="never written over"):
        write_search_box(box, folder)
