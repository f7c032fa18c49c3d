"""The whole pipeline on a small simulated AOI: outputs, honesty labels, provenance, accuracy."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from pipeline.readers.rasters import sha256_file
from pipeline.run import run_detect
from pipeline.sim.demo import demo_scenes


@pytest.fixture
def small_run(small_run):
    """The session's small run (tests/conftest.py) as (root, AOI folder, outcome): read it, copy it to change it."""
    return small_run.root, small_run.aoi_dir, small_run.outcome


def test_run_folder_has_every_output(small_run):
    _, _, outcome = small_run
    run = outcome.run_dir
    names = {p.name for p in run.iterdir()}
    assert {"burns_SIMULATED.gpkg", "burns_SIMULATED.geojson", "report.md", "report.json", "manifest.json", "figures"} <= names
    assert not run.name.endswith(".partial")
    assert (run.parent / "latest").is_symlink() and (run.parent / "latest").resolve() == run.resolve()
    figures = sorted(p.name for p in (run / "figures").iterdir())
    assert "20240128T1038Z_before_after_SIMULATED.png" in figures and "20240201T1038Z_overlay_SIMULATED.png" in figures


def test_report_reads_date_by_date_and_says_simulated(small_run):
    _, _, outcome = small_run
    report = json.loads((outcome.run_dir / "report.json").read_text())
    assert report["simulated"] and report["title"].startswith("SIMULATED DATA")
    md = (outcome.run_dir / "report.md").read_text()
    assert md.startswith("# SIMULATED DATA") and "Nothing here is evidence" in md.splitlines()[2]
    by_date = {r["acquired_utc"][:10]: r for r in report["readings"]}
    assert by_date["2024-01-27"]["new_polygons"] == 0 and by_date["2024-01-31"]["new_polygons"] == 0
    jan28 = by_date["2024-01-28"]
    assert jan28["new_polygons"] > 0
    assert "not visible on the clear scene of 2024-01-27 10:38 UTC" in jan28["statement"]
    assert "First visible on scene 20240128_103800_sim_d2 (2024-01-28 10:38 UTC" in jan28["statement"]
    assert by_date["2024-02-01"]["new_polygons"] > 0
    # the 31 January cloud hides part of the village: some 1 February burns bracket back to 28 January
    starts = {b["last_clear_before_utc"][:10] for b in by_date["2024-02-01"]["brackets"]}
    assert "2024-01-31" in starts


def test_polygons_carry_dates_and_equal_area_hectares(small_run):
    _, _, outcome = small_run
    polys = gpd.read_file(outcome.run_dir / "burns_SIMULATED.geojson")
    assert polys.crs.to_epsg() == 4326
    first_seen = pd.to_datetime(polys["first_seen"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert set(first_seen) == {"2024-01-28T10:38:00Z", "2024-02-01T10:38:00Z"}
    assert {"first_seen", "last_clear_before", "area_m2", "area_ha", "mean_index_change", "polygon_id"} <= set(polys.columns)
    assert (polys["area_ha"] * 1e4 - polys["area_m2"]).abs().max() < 1.0
    assert polys["area_m2"].min() >= 50.0  # minimum mapping unit
    layers = gpd.list_layers(outcome.run_dir / "burns_SIMULATED.gpkg")["name"].tolist()
    assert layers[0] == "all" and "first_seen_20240128T1038Z" in layers and "first_seen_20240201T1038Z" in layers


def test_every_polygon_in_every_output_is_valid_and_names_its_patch(small_run):
    """QGIS and PostGIS refuse or mis-measure an invalid OGC polygon: none may be written, in any format."""
    import xml.etree.ElementTree as ET

    import pyogrio
    import shapely
    from shapely.geometry import Polygon

    _, _, outcome = small_run
    run = outcome.run_dir
    gpkg = run / "burns_SIMULATED.gpkg"
    layers = [str(name) for name, _ in pyogrio.list_layers(gpkg)]
    assert "all" in layers and "structures" in layers
    for layer in layers:
        frame = gpd.read_file(gpkg, layer=layer)
        assert shapely.is_valid(frame.geometry.to_numpy()).all(), f"invalid polygon in GeoPackage layer {layer}"
    polys = gpd.read_file(run / "burns_SIMULATED.geojson")
    assert len(polys) and shapely.is_valid(polys.geometry.to_numpy()).all()
    assert polys["patch_id"].str.match(r"P\d{8}-E\d+-N\d+$").all()
    kml = ET.parse(run / "burns_SIMULATED.kml").getroot()
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = kml.findall(".//k:Placemark", ns)
    assert len(marks) == len(polys)
    for mark in marks:
        parts = []
        for polygon in mark.findall(".//k:Polygon", ns):
            rings = [[tuple(float(v) for v in p.split(",")[:2]) for p in c.text.split()]
                     for c in polygon.findall(".//k:LinearRing/k:coordinates", ns)]
            parts.append(Polygon(rings[0], rings[1:]))
        outline = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        assert outline.is_valid, f"invalid KML outline {mark.find('k:name', ns).text}"
        data = {d.get("name"): d.find("k:value", ns).text for d in mark.findall(".//k:Data", ns)}
        assert data["patch_id"] in set(polys["patch_id"])
    patches = json.loads((run / "report.json").read_text())["patches"]
    assert patches["n_polygons"] == len(polys) and patches["n_patches"] == polys["patch_id"].nunique()
    assert f"{len(polys)} polygon(s) (split along walls) in {patches['n_patches']} connected" in (run / "report.md").read_text()


def test_manifest_hashes_match_inputs_and_outputs(small_run):
    _, _, outcome = small_run
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["simulated"] and len(manifest["inputs"]) == 5
    for scene in manifest["inputs"]:
        for f in scene["files"]:
            assert sha256_file(Path(f["path"])) == f["sha256"]
    for out in manifest["outputs"]:
        assert sha256_file(outcome.run_dir / out["path"]) == out["sha256"]
    assert manifest["parameters"]["noise_k"] > 0 and "numpy" in manifest["versions"]
    assert "commit" in manifest["code"]


def test_second_run_is_a_new_folder_and_inputs_are_untouched(small_run, tmp_path):
    root, aoi_dir, shared = small_run
    # the second run goes beside the first in a copy of the output folder (the session's run is shared)
    out = tmp_path / "out"
    shutil.copytree(root / "out", out, symlinks=True)  # `latest` stays a link, as `cp -r` keeps it
    first = replace(shared, run_dir=out / shared.run_dir.relative_to(root / "out"))
    inputs = {p: sha256_file(p) for p in first.demo_folder.iterdir()}
    first_report = (first.run_dir / "report.md").read_bytes()
    again = run_detect("testvillage", out_root=out, data_root=root / "data", aoi_dir=aoi_dir, make_figures=False, demo=demo_scenes)
    assert again.run_dir != first.run_dir and again.demo_folder == first.demo_folder
    assert (first.run_dir / "report.md").read_bytes() == first_report
    assert {p: sha256_file(p) for p in first.demo_folder.iterdir()} == inputs
    # deterministic: the same inputs and parameters give byte-identical polygons
    assert sha256_file(again.run_dir / "burns_SIMULATED.geojson") == sha256_file(first.run_dir / "burns_SIMULATED.geojson")


def test_verify_finds_a_tampered_output(small_run, capsys, tmp_path):
    import shutil

    from pipeline.cli import main

    _, _, outcome = small_run
    copy = tmp_path / "run"
    shutil.copytree(outcome.run_dir, copy)
    # a copy made without the AOI's run log is checked against the original log, given with --log
    log = str(outcome.run_dir.parent / "runs.log")
    assert main(["verify", str(copy), "--log", log]) == 0
    report = copy / "report.md"
    report.write_text(report.read_text().replace("burn mark", "burnt mark"))
    assert main(["verify", str(copy), "--log", log]) != 0
    out = capsys.readouterr().out
    assert f"changed: {report}" in out


def test_accuracy_on_the_small_demo_meets_the_foundation_targets(small_run):
    from pipeline.aoi import load_aoi
    from pipeline.bench.accuracy import simulated_case
    from pipeline.config import Params

    root, aoi_dir, _ = small_run
    rows = simulated_case("demo", load_aoi("testvillage", aoi_dir), data_root=root / "data", params=Params())
    ours = [r for r in rows if r["method"] == "burnscan"]
    for row in ours:
        assert row["dice"] >= 0.90, row
    total = ours[-1]
    assert total["date"] == "all" and total["dated_right"] == total["burns"] > 0 and total["missed"] == 0
    assert total["coreg_error_px"] <= 0.2
    # the naive fixed threshold, fooled by haze and satellite gains, does worse than burnscan
    naive = next(r for r in rows if r["method"] == "fixed_threshold" and r["date"] == "all")
    assert naive["dice"] < total["dice"]


def test_all_cloud_scene_is_unusable_and_widens_the_bracket(small_run):
    from pipeline.aoi import load_aoi
    from pipeline.config import Params
    from pipeline.readers.recognise import load_sources, recognise
    from pipeline.run import detect_burns

    _, aoi_dir, outcome = small_run
    aoi = load_aoi("testvillage", aoi_dir)
    params = Params(resolution_m=3.0)  # the demo's PlanetScope pixel, the grid the run chose
    analysis = aoi.analysis_grid(params.resolution_m)
    loaded = analysis.buffered(int(np.ceil(params.margin_m / params.resolution_m)))
    stack, records = load_sources(recognise(outcome.demo_folder), loaded)
    stack["clear"][1] = False  # 27 January entirely under cloud
    detection = detect_burns(stack, records, params=params, loaded_grid=loaded, analysis_grid=analysis)
    assert detection.quality[1]["usable"] is False and detection.quality[1]["clear_fraction"] == 0.0
    assert [r.scene_id for r in detection.records] == [records[i].scene_id for i in (0, 2, 3, 4)]
    first_jan28 = detection.polygons[detection.polygons["first_seen"] == "2024-01-28T10:38:00Z"]
    assert len(first_jan28) > 0
    # with 27 January unseen, the honest bracket for the attack starts at 26 January
    assert set(first_jan28["last_clear_before"]) == {"2024-01-26T10:38:00Z"}


def test_report_counts_burned_structures_per_date_near_the_simulated_truth(small_run):
    _, _, outcome = small_run
    report = json.loads((outcome.run_dir / "report.json").read_text())
    structures = report["structures"]
    assert structures["alignment"]["reliable"]  # the simulated layer sits 6 m off and is moved back
    # so its offset needs no allowance: half a 3 m pixel for the polygons' staircase edges alone
    assert structures["tolerance_m"] == 1.5 and "lies within 1.5 m of burn polygons" in structures["rule"]
    truth_file = outcome.demo_folder / "truth_burns_SIMULATED.gpkg"
    truth = gpd.read_file(truth_file, layer="structures")
    true_by_date = truth[truth["burned"]].groupby(truth["first_visible"].str[:10]).size().to_dict()
    found = {d["acquired_utc"][:10]: d["new_burned"] for d in structures["by_date"]}
    assert set(found) == set(true_by_date)
    for date, n_true in true_by_date.items():
        assert abs(found[date] - n_true) <= max(3, 0.1 * n_true), (date, found[date], n_true)
    jan28 = next(r for r in report["readings"] if r["acquired_utc"].startswith("2024-01-28"))
    assert f"{found['2024-01-28']} structure(s) burned" in jan28["statement"]
    layer = gpd.read_file(outcome.run_dir / "burns_SIMULATED.gpkg", layer="structures")
    assert int(layer["burned"].sum()) == structures["n_burned"]
    assert any(p.name.endswith("_structures_SIMULATED.png") for p in (outcome.run_dir / "figures").iterdir())


def test_fire_archive_corroborates_the_first_attack_only(small_run):
    _, _, outcome = small_run
    fires = json.loads((outcome.run_dir / "report.json").read_text())["fires"]
    assert fires["n_detections"] == 4 and fires["skipped_rows"] == 1
    near = fires["detections_near_burns"]
    assert near and all(d["acquired_utc"].startswith("2024-01-28 01:12") and d["satellite"] == "NOAA-20" for d in near)
    polys = gpd.read_file(outcome.run_dir / "burns_SIMULATED.geojson")
    second = polys[polys["first_seen"].astype(str).str.startswith("2024-02-01")]
    assert len(second) and (second["n_fire_detections"] == 0).all()  # the dawn return fell between overpasses


def test_every_polygon_has_a_confidence_tier_with_reasons(small_run):
    _, _, outcome = small_run
    polys = gpd.read_file(outcome.run_dir / "burns_SIMULATED.geojson")
    assert set(polys["tier"]) <= {"high", "medium", "low", "rejected"}
    assert polys["tier_reasons"].str.contains("noise sigmas above the background").all()
    last = polys[polys["first_seen"].astype(str).str.startswith("2024-02-01")]
    assert (last["tier"] != "high").all()  # nothing after the last scene can confirm them yet
    html = (outcome.run_dir / "report.html").read_text()
    assert "<h2>Confidence</h2>" in html and "<h2>Burned structures</h2>" in html and "<h2>Active-fire detections</h2>" in html


def test_manifest_hashes_the_evidence_layers(small_run):
    _, _, outcome = small_run
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    roles = {e["role"]: e for e in manifest["evidence_files"]}
    assert set(roles) == {"building_footprints", "active_fires"}
    for entry in roles.values():
        assert entry["sha256"] == sha256_file(Path(entry["path"]))


def test_without_a_drawn_outline_the_footprints_outline_the_settlement(small_run, tmp_path):
    import shutil

    root, aoi_dir, outcome = small_run
    scenes = tmp_path / "scenes"
    shutil.copytree(outcome.demo_folder, scenes)
    (scenes / "settlement_SIMULATED.geojson").unlink()
    again = run_detect("testvillage", out_root=tmp_path / "out", data_root=root / "data", aoi_dir=aoi_dir,
                       scenes_dir=scenes, make_figures=False)
    manifest = json.loads((again.run_dir / "manifest.json").read_text())
    assert manifest["settlement_file"]["path"].endswith("buildings_SIMULATED.gpkg")
    polys = gpd.read_file(again.run_dir / "burns_SIMULATED.geojson")
    assert (polys["setting"] == "settlement").mean() > 0.95  # every simulated burn is a compound


def test_an_aoi_with_a_hole_counts_only_the_burns_inside_it(small_run, tmp_path):
    """The grid covers the AOI's bounds; a burn is the AOI's only where a pixel's centre lies inside its outline.
    The same scenes analysed for the small AOI's square with a hole over the village's west half (the same bounds, so the
    same grid) date every pixel inside it as the square's run does, and nothing in the hole."""
    import shapely

    from pipeline.aoi import load_aoi
    from smallaoi import AOI_NAME

    root, aoi_dir, whole_run = small_run
    shutil.copytree(root / "data", tmp_path / "data")
    square = json.loads((aoi_dir / f"{AOI_NAME}.geojson").read_text())
    ring = square["geometry"]["coordinates"][0]
    lon0, lat0 = (ring[0][0] + ring[2][0]) / 2, (ring[0][1] + ring[2][1]) / 2
    dlon, dlat = 0.8 * (ring[2][0] - ring[0][0]) / 2, 0.8 * (ring[2][1] - ring[0][1]) / 2
    hole = [[lon0 - dlon, lat0 - dlat], [lon0 - dlon, lat0 + dlat], [lon0, lat0 + dlat], [lon0, lat0 - dlat], [lon0 - dlon, lat0 - dlat]]
    square["geometry"]["coordinates"] = [ring, hole]
    (tmp_path / "aoi").mkdir()
    (tmp_path / "aoi" / f"{AOI_NAME}.geojson").write_text(json.dumps(square))
    outcome = run_detect(AOI_NAME, out_root=tmp_path / "out", data_root=tmp_path / "data", aoi_dir=tmp_path / "aoi",
                         make_figures=False, demo=demo_scenes)
    whole, half = whole_run.detection, outcome.detection
    assert half.grid == whole.grid
    inside = half.grid.inside(load_aoi(AOI_NAME, tmp_path / "aoi").projected(half.grid.crs))
    assert 0.6 < inside.mean() < 0.75
    first_whole, first_half = whole.dates["first_seen"].values, half.dates["first_seen"].values
    assert (first_whole[~inside] >= 0).sum() > 50  # burns the square has in the hole ...
    assert (first_half[~inside] == -1).all()  # ... are none of the AOI's
    np.testing.assert_array_equal(first_half[inside], first_whole[inside])
    outline = load_aoi(AOI_NAME, tmp_path / "aoi").projected(half.polygons.crs)
    # pixels whose centre is inside: a polygon's edge pixels may reach past the outline by under a pixel
    reach = outline.buffer(half.grid.resolution)
    assert len(half.polygons) and all(shapely.is_valid(g) and reach.contains(g) for g in half.polygons.geometry)
    report = json.loads((outcome.run_dir / "report.json").read_text())
    pixel_ha = half.grid.pixel_area_m2 / 1e4
    assert report["totals"]["area_ha"] == pytest.approx((first_half >= 0).sum() * pixel_ha, rel=0.01)
    # each scene's clear share is the AOI's, its polygon's pixels, not the box's (the scenes' own cloud masks)
    from pipeline.config import Params
    from pipeline.readers.recognise import load_sources, recognise

    loaded = half.grid.buffered(int(np.ceil(Params().margin_m / half.grid.resolution)))
    from pipeline.stages.plausibility import mask_implausible

    stack, _ = load_sources(recognise(whole_run.demo_folder), loaded)
    stack = mask_implausible(stack)  # what the run counts as clear: impossible pixels are not
    row, col = half.grid.offset_in(loaded)
    clear = stack["clear"].values[:, row:row + half.grid.height, col:col + half.grid.width]
    assert [s["clear_fraction"] for s in report["scenes"]] == [round(float(c[inside].mean()), 4) for c in clear]
    # and the square's over its own pixels: a square drawn in lon/lat is no rectangle of the UTM grid, whose corners it misses
    square_inside = half.grid.inside(load_aoi(AOI_NAME, aoi_dir).projected(half.grid.crs))
    assert 0.98 < square_inside.mean() < 1.0
    assert [s["clear_fraction"] for s in whole_run.report["scenes"]] == [round(float(c[square_inside].mean()), 4) for c in clear]
