"""burnscan search: the SIMULATED search box scored against its truth, outputs and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio

from pipeline.aoi import AOI_DIR
from pipeline.cli import main
from pipeline.errors import AoiError
from pipeline.readers.rasters import sha256_file
from pipeline.search import lat_lon_text, run_search
from pipeline.sim.search_box import search_box_scenes

_BOX_M = 2500.0  # the smallest box (833 x 833 px) keeps the test short; the default 6 km box has the same sites, scaled


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    outcome = run_search("ogota", out_root=root / "out", data_root=root / "data", max_cards=4,
                         simulated_box=search_box_scenes(_BOX_M))
    return root, outcome


@pytest.mark.slow
def test_every_burned_village_is_found_ranked_above_every_fire_and_dated(searched):
    _, outcome = searched
    score = outcome.score
    assert outcome.simulated and score is not None
    assert len(score["villages"]) == 3 and len(score["fires"]) >= 6
    assert score["all_villages_found"], score["villages"]
    assert score["villages_above_fires"], (score["villages"], score["fires"])
    assert score["no_unburned_village"], score["unburned_listed"]
    assert score["dated_right"] == 3
    assert all(f["ranks"] for f in score["fires"] if f["kind"] == "bush_fire")  # fires are found, and ranked lower
    top = outcome.clusters.head(3)
    assert (top["kind"] == "settlement-like").all()


@pytest.mark.slow
def test_the_village_under_the_cloud_keeps_its_honest_bracket(searched):
    _, outcome = searched
    sites = gpd.read_file(next(Path(outcome.detection.all_records[0].files["reflectance"]).parent.glob("sites_SIMULATED.geojson")))
    under_cloud = sites[(sites["kind"] == "village_burned") & (sites["first_visible_index"] == 4)].to_crs(outcome.clusters.crs)
    hit = outcome.clusters[outcome.clusters.intersects(under_cloud.geometry.iloc[0])].iloc[0]
    assert hit["first_seen"].startswith("2024-02-01") and hit["last_clear_before"].startswith("2024-01-28")


@pytest.mark.slow
def test_outputs_are_labelled_simulated_hashed_and_carry_cards(searched):
    _, outcome = searched
    run = outcome.run_dir
    assert run.parent.name == "search" and not run.name.endswith(".partial")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["simulated"] and manifest["kind"] == "search" and len(manifest["inputs"]) == 5
    for entry in manifest["outputs"]:
        assert "SIMULATED" in entry["path"], entry["path"]
        assert sha256_file(run / entry["path"]) == entry["sha256"]
    cards = sorted((run / "cards").glob("*.png"))
    assert len(cards) == 4 and cards[0].name.startswith("rank01_")
    text = (run / "search_SIMULATED.md").read_text()
    assert "SIMULATED DATA" in text and "every burned village found: True" in text
    # the box lies inside the calibration window: analysed once, whole; the second search below chunks it
    assert "planned, none run: the scenes lie inside the calibration window" in text
    assert json.loads((run / "search_SIMULATED.json").read_text())["analysed_whole"] is True
    frame = gpd.read_file(run / "clusters_SIMULATED.geojson")
    assert list(frame["rank"]) == sorted(frame["rank"]) and frame["simulated"].all()
    assert json.loads((run / "clusters_SIMULATED.geojson").read_text())["description"].startswith("SIMULATED DATA")
    for layer in ("polygons", "clusters"):  # every feature says so, whatever layer it is later copied into
        assert gpd.read_file(run / "burns_SIMULATED.gpkg", layer=layer)["simulated"].eq(True).all(), layer


@pytest.mark.slow
def test_a_search_is_sealed_like_a_village_run(searched, capsys, tmp_path):
    import shutil

    root, outcome = searched
    run = outcome.run_dir
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["manifest_version"] == 1 and manifest["finished_utc"] and manifest["overrides"] == {}
    # the search's line is in the AOI's one run log, beside the village runs'
    log = root / "out" / "ogota" / "runs.log"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    mine = [r for r in lines if r["run_id"] == run.name]
    assert len(mine) == 1 and mine[0]["kind"] == "search" and mine[0]["manifest_sha256"] == outcome.manifest_sha256
    code = main(["verify", str(run)])
    out = capsys.readouterr().out
    assert code == 0, out
    # a card dropped into a copy of the search is reported
    copy = tmp_path / "ogota" / "search" / run.name
    shutil.copytree(run, copy)
    shutil.copy2(next(copy.glob("cards/*.png")), copy / "cards" / "rank00_extra_SIMULATED.png")
    code = main(["verify", str(copy), "--log", str(log)])
    out = capsys.readouterr().out
    assert code == 8 and f"unlisted: {copy / 'cards' / 'rank00_extra_SIMULATED.png'}" in out


@pytest.mark.slow
def test_a_second_search_reuses_the_box_and_never_overwrites_the_first(searched, capsys):
    root, first = searched
    box_folders = list((root / "data" / "ogota").glob("search-box-SIMULATED*"))
    stamp = (box_folders[0] / "search_box_SIMULATED.json").stat().st_mtime_ns
    code = main(["search", "ogota", "--out", str(root / "out"), "--data", str(root / "data"), "--cards", "0",
                 "--box-size", str(_BOX_M)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("SIMULATED DATA") and "ranked above every bush or field fire True" in out
    assert len(list((root / "data" / "ogota").glob("search-box-SIMULATED*"))) == 1
    assert (box_folders[0] / "search_box_SIMULATED.json").stat().st_mtime_ns == stamp
    runs = [p for p in (root / "out" / "ogota" / "search").iterdir() if p.is_dir() and not p.is_symlink()]  # not latest
    assert len(runs) == 2 and first.run_dir in runs
    # The same scenes and parameters: the same clusters, in the same order. (That chunks give what one
    # whole window gives is held in test_chunked.py, on a box small enough to cut into many chunks.)
    second = sorted(set(runs) - {first.run_dir})[0]
    again, before = (gpd.read_file(run / "clusters_SIMULATED.geojson") for run in (second, first.run_dir))
    assert list(again["kind"]) == list(before["kind"]) == list(first.clusters["kind"])
    assert again["burned_ha"].tolist() == before["burned_ha"].tolist()


def test_an_aoi_without_search_area_is_refused_in_one_line(tmp_path, capsys):
    aoi_dir = tmp_path / "aoi"
    aoi_dir.mkdir()
    feature = json.loads((AOI_DIR / "ogota.geojson").read_text())
    del feature["properties"]["search_area"]
    (aoi_dir / "nosearch.geojson").write_text(json.dumps({**feature, "properties": {**feature["properties"], "name": "nosearch"}}))
    with pytest.raises(AoiError, match="no search_area"):
        run_search("nosearch", out_root=tmp_path / "out", data_root=tmp_path / "data", aoi_dir=aoi_dir)
    code = main(["search", "nosearch", "--aoi-dir", str(aoi_dir), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1 and "no search_area" in err and "add a lon/lat GeoJSON polygon" in err


def test_someone_elses_aoi_without_scenes_is_refused_not_searched_in_the_simulated_box(tmp_path, capsys):
    """As detect's demo: a simulated box at the user's own search area would be a search of nothing, however labelled."""
    aoi_dir = tmp_path / "aoi"
    aoi_dir.mkdir()
    feature = json.loads((AOI_DIR / "ogota.geojson").read_text())
    (aoi_dir / "mine.geojson").write_text(json.dumps({**feature, "properties": {**feature["properties"], "name": "mine"}}))
    code = main(["search", "mine", "--aoi-dir", str(aoi_dir), "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 4 and err.count("\n") == 1 and "no scenes to search; give --scenes DIR" in err and "simulated_demo" in err
    assert not (tmp_path / "data").exists()  # no box simulated


@pytest.mark.slow
def test_coordinates_are_written_with_hemispheres():
    assert lat_lon_text(13.82373, -3.80354) == "13.82373 N, 3.80354 W"
    assert lat_lon_text(-1.5, 36.25) == "1.50000 S, 36.25000 E"


@pytest.mark.slow
def test_the_demo_village_scenes_searched_give_the_village_first(small_run, tmp_path):
    """Demo scenes covering a small part of the search area: the rest is skipped, the village is ranked first.

    The session's small AOI lies inside Ogota's search area, so its demo scenes (read only) stand
    for a delivery over one village of it.
    """
    folder = small_run.outcome.demo_folder
    outcome = run_search("ogota", out_root=tmp_path / "out", data_root=tmp_path / "data", scenes_dir=folder,
                         max_cards=1)
    top = outcome.clusters.iloc[0]
    settlement = gpd.read_file(folder / "settlement_SIMULATED.geojson").to_crs(outcome.clusters.crs)
    assert top["kind"] == "settlement-like" and top.geometry.intersects(settlement.geometry.iloc[0])
    assert top["first_seen"].startswith("2024-01-28") and top["last_clear_before"].startswith("2024-01-27")
    assert outcome.simulated and outcome.score is None  # no truth sites: scored by the demo's own bench, not here
    assert outcome.detection.chunks > 100  # the whole search area was planned; chunks without scenes skipped


@pytest.mark.slow
def test_scenes_outside_the_search_area_are_refused_naming_the_folder(small_run, tmp_path, capsys):
    """Scenes of Mali searched for an AOI whose search area is Paris: refused before any work."""
    aoi_dir = tmp_path / "aoi"
    aoi_dir.mkdir()
    feature = json.loads((AOI_DIR / "ogota.geojson").read_text())
    lon, lat, d = 2.35, 48.85, 0.02
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]
    props = {**feature["properties"], "name": "paris", "timezone": "Europe/Paris",
             "search_area": {"type": "Polygon", "coordinates": [ring]}}
    (aoi_dir / "paris.geojson").write_text(json.dumps({**feature, "properties": props,
                                                       "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    mali = small_run.outcome.demo_folder
    code = main(["search", "paris", "--aoi-dir", str(aoi_dir), "--scenes", str(mali), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 4 and err.count("\n") == 1
    assert "no scene overlaps the area" in err and str(mali) in err
    assert not (tmp_path / "out" / "paris" / "search").exists()


@pytest.mark.slow
def test_each_settlement_like_cluster_gets_an_aoi_file_that_detect_runs_on(searched):
    """The investigator's next step: copy the candidate into aoi/ and run detect on the same scenes."""
    from pipeline.aoi import load_aoi
    from pipeline.run import run_detect

    root, outcome = searched
    folder = outcome.run_dir / "aoi_candidates_SIMULATED"
    settlement_like = outcome.clusters[outcome.clusters["kind"] == "settlement-like"]
    names = sorted(p.stem for p in folder.glob("*.geojson"))
    assert names == [f"ogota-sim-c{r:02d}" for r in sorted(settlement_like["rank"])]
    first = load_aoi(names[0], folder)
    top = settlement_like.iloc[0]
    assert first.projected(outcome.clusters.crs).contains(top.geometry.centroid)
    assert first.properties["simulated"] and first.properties["location_confidence"] == "candidate"
    assert "SIMULATED" in first.display_name and outcome.run_dir.name in first.properties["location_source"]
    scenes = Path(outcome.detection.all_records[0].files["reflectance"]).parent
    run = run_detect(names[0], out_root=root / "out", data_root=root / "data", scenes_dir=scenes, aoi_dir=folder,
                     make_figures=False)
    found = run.detection.polygons.to_crs(outcome.clusters.crs)
    in_village = found[found.intersects(top.geometry)]
    assert run.report["simulated"] and len(in_village) >= 0.9 * top["n_patches"]
    assert set(in_village["first_seen"].str[:10]) == {top["first_seen"][:10]}  # the same reading, run on its own


def test_plain_geotiffs_are_searched_with_the_band_map_of_the_aoi_file(tmp_path, capsys):
    """search has no --bands: it said "a GeoTIFF with --bands" and could read no plain GeoTIFF. It reads them with the
    AOI file's band_map; and scenes its cards cannot show (no green) are refused before any chunk, not after all."""
    from factories import PAIR_AOI, timed_geotiff_pair

    aoi_file, exports = timed_geotiff_pair(tmp_path)
    feature = json.loads(aoi_file.read_text())
    feature["properties"]["search_area"] = feature["geometry"]
    aoi_file.write_text(json.dumps(feature))
    args = ["search", PAIR_AOI, "--aoi-dir", str(aoi_file.parent), "--scenes", str(exports), "--out", str(tmp_path / "out")]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 4 and "band_map" in err and "--bands" not in err
    feature["properties"]["band_map"] = "blue,-,red,nir"
    aoi_file.write_text(json.dumps(feature))
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 4 and "has no green band" in err and "--cards 0" in err
    assert not (tmp_path / "out" / PAIR_AOI / "search").exists()


def test_a_scene_dated_at_night_is_refused_before_any_chunk(tmp_path, capsys):
    """search read the scenes' times only to date the burns: a local time written as UTC (02:00 at the place) was
    searched and its burns dated by it. It is refused from the metadata, before any chunk, as detect refuses it."""
    from factories import PAIR_AOI, timed_geotiff_pair

    aoi_file, exports = timed_geotiff_pair(tmp_path, band_map="blue,green,red,nir")
    feature = json.loads(aoi_file.read_text())
    feature["properties"]["search_area"] = feature["geometry"]
    aoi_file.write_text(json.dumps(feature))
    late = sorted(exports.glob("*.tif"))[-1]
    with rasterio.open(late, "r+") as dst:
        dst.update_tags(ACQUIRED="2024-01-28T02:00:00Z")
    code = main(["search", PAIR_AOI, "--aoi-dir", str(aoi_file.parent), "--scenes", str(exports),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4 and len([line for line in err if line.startswith("burnscan: error:")]) == 1
    assert str(late) in err[-1] and "below the horizon" in err[-1] and "in UTC (not local time)" in err[-1]
    assert not (tmp_path / "out" / PAIR_AOI / "search").exists()
