"""The AOI registry, parameter resolution and atomic outputs."""

from __future__ import annotations

import csv
import json
import os

import pytest

from pipeline.aoi import AOI_DIR, aoi_from_feature, list_aois, load_aoi, utm_crs_for, validate_aoi_name
from pipeline.config import Params, resolve_params
from pipeline.errors import AoiError, OutputError, ParameterError
from pipeline.outputs.write import atomic_path, finish_run_dir, new_run_dir, write_text

REPORTED = {"ogota", "ouembe", "kalala", "boura", "kamona", "balle", "ogossagou"}


def test_registry_holds_every_reported_place():
    assert REPORTED <= set(list_aois())


@pytest.mark.parametrize("name", sorted(REPORTED))
def test_each_aoi_loads_with_provenance(name):
    aoi = load_aoi(name)
    props = aoi.properties
    for key in ("display_name", "region", "location_confidence", "location_source", "events", "timezone"):
        assert props.get(key), f"{name} lacks {key}"
    assert all({"date", "reported", "source"} <= set(e) for e in props["events"])
    grid = aoi.analysis_grid(3.0)
    side = 3000 if aoi.location_uncertain else 2000
    # a lon/lat square is slightly rotated in UTM (meridian convergence): its bounds grow by < 2 %
    assert abs(grid.width * 3.0 - side) <= 0.02 * side and abs(grid.height * 3.0 - side) <= 0.02 * side


def test_uncertain_locations_carry_search_area():
    for name in ("ogota", "ouembe"):
        aoi = load_aoi(name)
        assert aoi.location_uncertain and aoi.properties["location_confidence"] == "low"
        assert aoi.properties["search_area"]["type"] == "Polygon"


def test_coordinates_match_the_shared_village_list(shared_data):
    with open(shared_data / "villages.csv", encoding="utf-8") as handle:
        rows = {r["name"].lower(): r for r in csv.DictReader(handle)}
    for name in REPORTED:
        aoi = load_aoi(name)
        centre = aoi.geometry.centroid
        assert centre.y == pytest.approx(float(rows[name]["lat"]), abs=1e-4)
        assert centre.x == pytest.approx(float(rows[name]["lon"]), abs=1e-4)
        assert aoi.properties["location_confidence"] == rows[name]["confidence"]


@pytest.mark.parametrize("bad", ["../etc/passwd", "ogota/..", "Ogota", "og ota", "", ".hidden", "ogota.geojson", "оgota", "a" * 80, "ogota\n"])
def test_bad_aoi_names_are_refused(bad):
    with pytest.raises(AoiError, match="not allowed"):
        validate_aoi_name(bad)


def test_missing_aoi_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(AoiError) as err:
        load_aoi("atlantis", tmp_path)
    assert "atlantis.geojson" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "feature, message",
    [
        ({"type": "Feature", "properties": {}}, "geometry"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}}, "Point"),
        ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
         r"not valid \(Self-intersection\[0.5 0.5\]\)"),
        ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[-3.8, 13.8], [-3.7, 13.8], [-3.6, 13.8], [-3.8, 13.8]]]}},
         "not valid"),  # a ring with no area
        ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}}, "polygon is empty"),
        ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[-10, 0], [10, 0], [10, 20], [-10, 20], [-10, 0]]]}}, "km2"),
        ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[500000, 1500000], [500100, 1500000], [500100, 1500100], [500000, 1500000]]]}}, "lon/lat"),
    ],
)
def test_bad_aoi_geometry_is_refused(feature, message):
    with pytest.raises(AoiError, match=message):
        aoi_from_feature("x", feature)


def test_a_bare_polygon_or_a_collection_of_one_feature_is_an_aoi_and_one_of_several_places_is_refused(tmp_path):
    """AOI outlines are often shared as a bare geometry or a FeatureCollection of one Feature: each is read as
    that one place (without properties, a bare geometry). A collection of several places is not one AOI."""
    feature = json.loads((AOI_DIR / "ogota.geojson").read_text())
    bare = aoi_from_feature("x", feature["geometry"])
    assert bare.geometry.equals(load_aoi("ogota").geometry) and bare.properties == {}
    assert aoi_from_feature("x", {"type": "FeatureCollection", "features": [feature]}).properties == feature["properties"]
    (tmp_path / "two.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [feature, feature]}))
    with pytest.raises(AoiError) as err:
        load_aoi("two", tmp_path)
    line = str(err.value)
    assert "two.geojson" in line and "FeatureCollection of 2 features" in line and "its own file" in line and "\n" not in line


def test_the_real_darfur_outline_is_read_and_refused_for_its_size_with_the_fix(shared_data, tmp_path):
    """A real monitoring project's AOI (a bare polygon, 7 100 km2 of Darfur): read as given, refused as a whole
    region a village run cannot hold, in one line naming the file and what to draw instead."""
    source = shared_data / "real" / "aoi-darfur" / "darfur.json"
    if not source.is_file():
        pytest.skip(f"{source} not present")
    (tmp_path / "darfur.geojson").write_bytes(source.read_bytes())
    with pytest.raises(AoiError) as err:
        load_aoi("darfur", tmp_path)
    line = str(err.value)
    assert "darfur.geojson" in line and "km2 (limit" in line and "draw a tighter AOI around the village" in line


def test_a_search_area_apart_from_its_polygon_is_refused_saying_how_far():
    """Latitude and longitude swapped in the polygon only: the place would be searched for 2776 km away."""
    feature = json.loads((AOI_DIR / "ogota.geojson").read_text())
    ring = feature["geometry"]["coordinates"][0]
    feature["geometry"]["coordinates"] = [[[lat, lon] for lon, lat in ring]]
    with pytest.raises(AoiError, match=r"search_area lies 2776 km from the AOI's polygon.*longitude first"):
        aoi_from_feature("ogota", feature)


def test_utm_zone():
    assert utm_crs_for(-3.78, 13.82) == "EPSG:32630"
    assert utm_crs_for(0.26, 15.82) == "EPSG:32631"
    assert utm_crs_for(-70.0, -33.0) == "EPSG:32719"


def test_parameter_precedence_default_file_command_line():
    assert resolve_params().noise_k == Params().noise_k
    assert resolve_params({"noise_k": 4}).noise_k == 4.0
    assert resolve_params({"noise_k": 4}, {"noise_k": "7.5"}).noise_k == 7.5
    assert resolve_params(None, {"burn_index": "bai"}).burn_index == "bai"


@pytest.mark.parametrize("overrides, message", [({"noise": 3}, "unknown parameter"), ({"noise_k": "abc"}, "not a valid"),
                                                ({"noise_k": -1}, "noise_k"), ({"burn_index": "evi"}, "burn_index")])
def test_bad_parameters_are_refused(overrides, message):
    with pytest.raises(ParameterError, match=message):
        resolve_params(None, overrides)


def test_run_dirs_never_collide_and_complete_atomically(tmp_path):
    ids = {new_run_dir(tmp_path, "ogota")[0] for _ in range(50)}
    assert len(ids) == 50
    run_id, partial = new_run_dir(tmp_path, "ogota")
    write_text(partial / "report.md", "x", root=partial)
    final = finish_run_dir(partial)
    assert final.name == run_id and (final / "report.md").read_text() == "x"
    assert os.readlink(tmp_path / "ogota" / "latest") == run_id  # a relative link to the run folder


def test_failed_write_leaves_no_file_under_final_name(tmp_path):
    target = tmp_path / "report.json"
    write_text(target, "old", root=tmp_path)
    with pytest.raises(RuntimeError):
        with atomic_path(target, root=tmp_path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; permissions cannot be tested")
def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="writable"):
            new_run_dir(tmp_path, "ogota")
    finally:
        tmp_path.chmod(0o700)


def test_a_candidate_aoi_from_a_search_is_a_valid_aoi_that_says_where_it_came_from():
    from pipeline.aoi import aoi_from_feature, candidate_aoi_feature, load_aoi
    from pipeline.errors import AoiError

    parent = load_aoi("ogota")
    feature = candidate_aoi_feature(parent, "ogota-c01", (-3.8, 13.83), side_m=3000.0, source="search run X", simulated=False)
    aoi = aoi_from_feature("ogota-c01", feature)
    assert abs(aoi.projected().area - 9e6) < 9e6 * 1e-3  # a 3 x 3 km square in its UTM zone
    assert aoi.properties["location_source"] == "search run X" and aoi.properties["timezone"] == "Africa/Bamako"
    assert "search_area" not in aoi.properties and aoi.properties["location_confidence"] == "candidate"
    assert not aoi.properties["simulated"] and "SIMULATED" not in aoi.display_name
    with pytest.raises(AoiError, match="not allowed"):
        candidate_aoi_feature(parent, "../ogota", (-3.8, 13.83), side_m=3000.0, source="x", simulated=True)


@pytest.mark.parametrize("where", ["geometry", "search_area"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_an_aoi_coordinate_that_is_not_a_number_is_one_line_naming_the_file(tmp_path, capsys, where, value):
    """Python's json reads NaN and Infinity; shapely would warn (two more lines on stderr) before the refusal."""
    from pipeline.cli import main

    feature = json.loads((AOI_DIR / "ogota.geojson").read_text())
    polygon = feature["geometry"] if where == "geometry" else feature["properties"]["search_area"]
    polygon["coordinates"][0][1][0] = value
    (tmp_path / "ogota.geojson").write_text(json.dumps(feature))
    code = main(["scenes", "ogota", "--aoi-dir", str(tmp_path), "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == AoiError.exit_code and err.count("\n") == 1, err
    assert str(tmp_path / "ogota.geojson") in err and f"coordinate that is {value}" in err and "[lon, lat]" in err


def _square_at(lon: float, lat: float, **properties) -> dict:
    d = 0.005
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": properties}


@pytest.mark.parametrize("zone, lon, lat", [
    ("Asia/Kolkata", -119.8, 37.3),      # another place's zone typed for California: local dates a day off
    ("America/Los_Angeles", -3.6, 14.4),  # California's for Mali
    ("Etc/GMT-8", -3.6, 14.4),          # a fixed offset, far off too
])
def test_a_time_zone_of_another_place_is_refused_in_one_line(zone, lon, lat):
    with pytest.raises(AoiError) as err:
        aoi_from_feature("odd", _square_at(lon, lat, timezone=zone))
    text = str(err.value)
    assert "\n" not in text and repr(zone) in text and "solar time" in text and "give the zone of the place" in text


@pytest.mark.parametrize("zone, lon, lat", [
    ("Africa/Bamako", -3.6, 14.4),
    ("America/Los_Angeles", -119.8, 37.3),
    ("Asia/Shanghai", 75.99, 39.47),       # Kashgar on Beijing time: 2.9 h from its sun, a real clock
    ("Europe/Madrid", -8.5, 42.9),         # Galicia on Central European summer time
    ("Pacific/Kiritimati", -157.4, 1.9),   # UTC+14 at 157 W: half an hour from the sun across the date line
    ("UTC", -119.8, 37.3),                 # times in UTC alone, chosen
])
def test_a_place_s_own_time_zone_is_accepted(zone, lon, lat):
    assert aoi_from_feature("ok", _square_at(lon, lat, timezone=zone)).properties["timezone"] == zone


def test_without_a_local_zone_times_are_said_in_utc_and_never_labelled_local():
    """An AOI without a zone (or with UTC) had its UTC times printed as "18:00 local, UTC+00:00" in California."""
    from datetime import datetime, timezone

    import numpy as np
    import xarray as xr

    from pipeline.outputs.figures import _when
    from pipeline.outputs.report import format_time

    when = datetime(2024, 8, 30, 18, 0, tzinfo=timezone.utc)
    scene = xr.DataArray(np.zeros((2, 2)), attrs={"acquired": "2024-08-30T18:00:00Z", "scene_id": "b"})
    for properties in ({}, {"timezone": "UTC"}, {"timezone": "Etc/UTC"}):
        zone = aoi_from_feature("ca", _square_at(-119.8, 37.3, **properties)).local_zone
        assert zone is None
        assert format_time(when, zone) == _when(scene, zone) == "2024-08-30 18:00 UTC"
    zone = aoi_from_feature("ca", _square_at(-119.8, 37.3, timezone="America/Los_Angeles")).local_zone
    assert format_time(when, zone) == "2024-08-30 18:00 UTC (11:00 local, UTC-07:00)"


def test_an_aoi_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Windows editors write one; it was refused as "not valid GeoJSON (Unexpected UTF-8 BOM)"."""
    feature = _square_at(-3.6, 14.4, display_name="Ogota, copy", timezone="Africa/Bamako")
    (tmp_path / "ogotacopy.geojson").write_bytes(b"\xef\xbb\xbf" + json.dumps(feature).encode("utf-8"))
    assert load_aoi("ogotacopy", tmp_path).display_name == "Ogota, copy"
