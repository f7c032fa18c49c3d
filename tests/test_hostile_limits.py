"""Hostile limits: AOI files, parameters, options and archives that would fail late, with a traceback, or
exhaust memory, refused first in one line that names the file or value and says the fix.

Runs go through the command line with a scene folder that does not exist: every check below must
happen before scenes are looked for, so a check that is missing shows as the missing-scenes error
(exit 4) instead of the refusal, in a second and without allocating anything. Cases that would
allocate gigabytes without their check run in a child process under an address-space cap.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyproj import Transformer

from pipeline.cli import main
from smallaoi import LAT, LON

NAME = "hostile"


# --------------------------------------------------------------------------- helpers
def _ring(lon: float, lat: float, half_m: float) -> list[list[float]]:
    dlat, dlon = half_m / 111_320.0, half_m / (111_320.0 * math.cos(math.radians(lat)))
    return [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat], [lon - dlon, lat + dlat],
            [lon - dlon, lat - dlat]]


def _square(half_m: float = 600.0, lon: float = LON, lat: float = LAT) -> dict:
    return {"type": "Polygon", "coordinates": [_ring(lon, lat, half_m)]}


def _feature(geometry: dict | None = None, **properties) -> dict:
    props = {"display_name": "Hostile (test)", "timezone": "Africa/Bamako", "location_confidence": "test",
             "location_source": "made up for the test"}
    props.update(properties)
    return {"type": "Feature", "properties": props, "geometry": geometry or _square()}


def _registry(tmp_path: Path, feature: dict | str) -> Path:
    folder = tmp_path / "aoi"
    folder.mkdir(exist_ok=True)
    text = feature if isinstance(feature, str) else json.dumps(feature)
    (folder / f"{NAME}.geojson").write_text(text, encoding="utf-8")
    return folder


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def _one_error(err: str, *needles: str) -> str:
    """The single ``burnscan: error:`` line of ``err``, checked to hold every needle."""
    lines = [line for line in err.splitlines() if line.startswith("burnscan: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _detect(capsys, tmp_path: Path, feature: dict | str | None, *options: str, name: str = NAME) -> tuple[int, str]:
    """``burnscan detect`` on an AOI file (or the registry's ``name``) with no scenes to find."""
    aoi_dir = ["--aoi-dir", str(_registry(tmp_path, feature))] if feature is not None else []
    code, err = _cli(capsys, "detect", name, *aoi_dir, "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"),
                     "--scenes", str(tmp_path / "no-scenes"), *options)
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()  # nothing made, nothing written
    return code, err


def _search(capsys, tmp_path: Path, *options: str) -> tuple[int, str]:
    return _cli(capsys, "search", "ogota", "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"),
                "--scenes", str(tmp_path / "no-scenes"), *options)


@pytest.fixture
def eight_gb(monkeypatch):
    """Plan memory as on an 8 GB machine, so that refusals do not depend on this one's memory."""
    try:
        import pipeline.preflight as preflight
    except ImportError:  # a checkout without the checks: nothing to fix, the test fails on its assertions
        return
    monkeypatch.setattr(preflight, "memory_budget", lambda: 8 * 1024**3)


# --------------------------------------------------------------------------- AOI files: time zone and size
@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../../etc/passwd", "/etc/localtime", "localtime", "America", 5])
def test_a_time_zone_that_is_not_an_iana_zone_is_refused_before_any_work(capsys, tmp_path, zone):
    code, err = _detect(capsys, tmp_path, _feature(timezone=zone))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "timezone", "IANA", "Africa/Bamako")


def test_a_one_metre_aoi_is_refused_at_load(capsys, tmp_path):
    code, err = _detect(capsys, tmp_path, _feature(_square(half_m=0.5)))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "1 m2", "1 ha", "draw an AOI around the whole village")


def test_a_grid_of_a_few_pixels_is_refused(capsys, tmp_path):
    # 1.4 ha passes the area rule, but at 20 m it is 7 x 7 pixels (snapped): nothing to measure the noise on.
    code, err = _detect(capsys, tmp_path, _feature(_square(half_m=60.0)), "--set", "resolution_m=20")
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "7 x 7 px", "resolution_m=20", "at least 10 x 10 px", "finer resolution_m")


def test_an_aoi_under_the_area_limit_but_too_large_to_hold_is_refused_with_size_limit_and_fix(capsys, tmp_path, eight_gb):
    geometry = _square(half_m=24_650.0)  # 49.3 km a side
    crs = "EPSG:32630"
    xs, ys = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(*zip(*geometry["coordinates"][0]))
    assert 2400 < (max(xs) - min(xs)) * (max(ys) - min(ys)) / 1e6 < 2500  # under the 2500 km2 AOI limit
    # A grid given (the native one is known only once the scenes' headers are read): refused before any scene is.
    code, err = _detect(capsys, tmp_path, _feature(geometry), "--set", "resolution_m=3")
    assert code == 5
    line = _one_error(err, f"{NAME}.geojson", "x 2 scenes x 3 bands", "GB at its peak", "limit 8.0 GB",
                      "tighter AOI", "coarser resolution_m", "burnscan search")
    assert "16536 x 16536 px" in line or "px (49." in line


def test_multipolygon_parts_far_apart_are_refused_by_their_bounding_box(capsys, tmp_path):
    # Two 1 km squares 1500 km apart north to south: 2 km2 of polygon, thousands of km2 of grid.
    parts = {"type": "MultiPolygon", "coordinates": [[_ring(LON, 5.0, 500.0)], [_ring(LON, 18.5, 500.0)]]}
    code, err = _detect(capsys, tmp_path, _feature(parts))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "bounding box covers", "limit 2500", "one AOI per place")


def test_multipolygon_parts_far_apart_east_west_are_refused_as_beyond_one_utm_zone(capsys, tmp_path):
    # On the equator (no meridian convergence) two small squares 6.5 degrees apart have a thin
    # bounding box under the area limit: too wide for one UTM zone all the same.
    parts = {"type": "MultiPolygon", "coordinates": [[_ring(0.5, 0.0, 100.0)], [_ring(7.0, 0.0, 100.0)]]}
    code, err = _detect(capsys, tmp_path, _feature(parts))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "UTM zone", "one AOI per place")


def test_a_multipolygon_reaching_far_past_its_utm_zone_is_refused(capsys, tmp_path):
    # A large part sets the zone (31, central meridian 3 E); a small one lies 8.7 degrees east of it.
    parts = {"type": "MultiPolygon", "coordinates": [[_ring(5.9, 0.0, 1500.0)], [_ring(11.7, 0.0, 50.0)]]}
    code, err = _detect(capsys, tmp_path, _feature(parts))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "degrees from the central meridian", "EPSG:32631")


@pytest.mark.parametrize("ring", [
    [[179.99, -17.0], [-179.99, -17.0], [-179.99, -16.98], [179.99, -16.98], [179.99, -17.0]],  # a ring across 180
    [[179.98, -17.0], [180.0, -17.0], [180.0, -16.98], [179.98, -16.98], [179.98, -17.0]],  # one half ...
])
def test_an_aoi_across_the_antimeridian_is_refused_with_the_fix(capsys, tmp_path, ring):
    geometry = {"type": "Polygon", "coordinates": [ring]}
    if ring[1][0] == 180.0:  # ... and the other half as a second part: a MultiPolygon across 180
        geometry = {"type": "MultiPolygon", "coordinates": [[ring], [[[-180.0, -17.0], [-179.98, -17.0], [-179.98, -16.98],
                                                                      [-180.0, -16.98], [-180.0, -17.0]]]]}
    code, err = _detect(capsys, tmp_path, _feature(geometry))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "antimeridian", "split an AOI across 180 degrees")


def test_a_whole_world_aoi_is_not_only_called_a_crossing_of_the_antimeridian(capsys, tmp_path):
    world = {"type": "Polygon", "coordinates": [[[-180.0, -60.0], [180.0, -60.0], [180.0, 60.0], [-180.0, 60.0], [-180.0, -60.0]]]}
    code, err = _detect(capsys, tmp_path, _feature(world))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "more than half the world", "draw it around the place")


def test_an_aoi_beyond_the_utm_latitudes_is_refused(capsys, tmp_path):
    code, err = _detect(capsys, tmp_path, _feature(_square(lat=85.0)))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "UTM", "84")


# --------------------------------------------------------------------------- AOI files: types, nesting, size
@pytest.mark.parametrize("properties", [["a", "list"], "text", 5])
def test_properties_that_are_not_an_object_are_one_line(capsys, tmp_path, properties):
    feature = _feature()
    feature["properties"] = properties
    code, err = _detect(capsys, tmp_path, feature)
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "properties are", "not an object")


@pytest.mark.parametrize("parameters", [[["noise_k", 5]], "noise_k=5", 5])
def test_parameters_that_are_not_an_object_are_one_line(capsys, tmp_path, parameters):
    code, err = _detect(capsys, tmp_path, _feature(parameters=parameters))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "property 'parameters'", "not an object")


@pytest.mark.parametrize("key, value, needle", [
    ("display_name", 5, "text in quotes"),
    ("location_uncertain", "yes", "true or false"),
    ("events", "attacked", "list of objects"),
    ("events", [{"date": 20240127, "reported": "x", "source": "y"}], "events'[0].date"),
    ("point_lat", 200, "from -90 to 90"),
    ("aoi_size_m", True, "a number from 100"),
    ("search_area", "the commune", "GeoJSON Polygon"),
    ("settlement", {"type": "Point", "coordinates": [LON, LAT]}, "Point"),
    ("band_map", 5, "band names"),
])
def test_a_known_property_of_the_wrong_type_is_named(capsys, tmp_path, key, value, needle):
    code, err = _detect(capsys, tmp_path, _feature(**{key: value}))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", key, needle)


@pytest.mark.parametrize("day", ["2024-02-30", "2023-02-29", "2024-13-01", "2024-00"])
def test_an_event_date_that_is_no_day_is_refused(capsys, tmp_path, day):
    """The event date is copied into every report as the day the attack was reported."""
    code, err = _detect(capsys, tmp_path, _feature(events=[{"date": day, "reported": "x", "source": "y"}]))
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "events'[0].date", repr(day), "YYYY-MM-DD")


@pytest.mark.parametrize("day", ["2024-02-29", "2024-01", "late January 2024"])
def test_an_event_date_of_the_calendar_or_in_words_is_kept(tmp_path, day):
    from pipeline.aoi import load_aoi

    aoi = load_aoi(NAME, _registry(tmp_path, _feature(events=[{"date": day, "reported": "x", "source": "y"}])))
    assert aoi.properties["events"][0]["date"] == day


@pytest.mark.parametrize("depth", [100_000, 200])
def test_json_nested_absurdly_deep_is_refused(capsys, tmp_path, depth):
    # 100000 levels break the JSON parser's recursion; 200 parse, and would break every writer after it.
    text = json.dumps(_feature()).replace('"display_name"', '"note": ' + "[" * depth + "]" * depth + ', "display_name"', 1)
    code, err = _detect(capsys, tmp_path, text)
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "nested", "GeoJSON Feature")


def test_an_aoi_file_far_too_large_is_refused_without_parsing(capsys, tmp_path):
    feature = _feature(note="x" * 11_000_000)
    code, err = _detect(capsys, tmp_path, feature)
    assert code == 3
    _one_error(err, f"{NAME}.geojson", "11 MB", "an AOI file is a few kB")


@pytest.mark.parametrize("parameters, needle", [
    ({"noise_k": True}, "is a boolean, not a number"),
    ({"noise_k": [4]}, "is a list, not a number"),
    ({"resolution_m": {"value": 3}}, "is an object, not a number"),
    ({"margin_m": 1e7}, "margin_m must be >= 0 and <= 2000"),
    ({"coreg_band": 4}, "is a number, not a name"),
])
def test_aoi_file_parameters_are_typed_and_ranged_naming_the_file(capsys, tmp_path, parameters, needle):
    code, err = _detect(capsys, tmp_path, _feature(parameters=parameters))
    assert code == 5
    _one_error(err, "from the AOI file", f"{NAME}.geojson", needle)


# --------------------------------------------------------------------------- --set values
@pytest.mark.parametrize("setting, needles", [
    ("resolution_m=0.05", ["resolution_m must be >= 0.3 and <= 100"]),
    ("margin_m=1e7", ["margin_m must be >= 0 and <= 2000"]),
    ("extent_close_m=1e9", ["extent_close_m must be >= 0 and <= 1000"]),
    ("margin_m=inf", ["not a finite number", "margin_m as a number >= 0 and <= 2000"]),
    ("max_post_nir=nan", ["not a finite number", "max_post_nir"]),
    ("coreg_band=foo", ["coreg_band must be one of", "red, nir, swir16, swir22", "rededge"]),
    ("max_hole_px=2.5", ["not a valid whole number"]),
    ("mixed_pixel_fraction=1", ["must be > 0 and < 1"]),
])
def test_set_values_out_of_range_or_not_finite_are_one_line(capsys, tmp_path, setting, needles):
    code, err = _detect(capsys, tmp_path, None, "--set", setting, name="ogota")
    assert code == 5
    _one_error(err, "from the command line", *needles)


def test_every_parameter_has_a_documented_range_holding_its_default():
    import ast
    import dataclasses

    import pipeline.config as config

    # The attribute docstring under each field of Params, read from the source.
    body = next(node for node in ast.parse(Path(config.__file__).read_text()).body
                if isinstance(node, ast.ClassDef) and node.name == "Params").body
    docs = {a.target.id: b.value.value for a, b in zip(body, body[1:])
            if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)}
    for f in dataclasses.fields(config.Params):
        assert "range" in f.metadata or "choices" in f.metadata, f.name
        assert config.parameter_range(f.name), f.name
        if "range" in f.metadata:
            assert "Range" in docs[f.name], f"{f.name}: its docstring does not justify its range"
    config.Params()  # every default lies inside its own range


def test_coreg_band_names_cover_every_reader():
    from pipeline.readers import landsat, rasters, sentinel2
    from pipeline.config import BAND_NAMES

    assert set(rasters._SUPERDOVE_8BAND) | set(rasters._PLANET_4BAND) <= set(BAND_NAMES)
    assert set(sentinel2._BANDS) | set(landsat._OLI) | set(landsat._TM) <= set(BAND_NAMES)


# --------------------------------------------------------------------------- command-line options
@pytest.mark.parametrize("option, value, needle", [
    ("--chunk", "0", "whole number from 64 to 8192"),
    ("--chunk", "100000", "whole number from 64 to 8192"),
    ("--workers", "-1", "whole number >= 1"),
    ("--cards", "-1", "whole number >= 0"),
    ("--box-size", "inf", "finite number from 2000 to 8000"),
    ("--box-size", "nan", "finite number from 2000 to 8000"),
    ("--box-size", "100", "finite number from 2000 to 8000"),
])
def test_search_options_out_of_range_are_one_line(capsys, tmp_path, option, value, needle):
    code, err = _search(capsys, tmp_path, option, value)
    assert code == 5
    _one_error(err, option, repr(value), needle)


def test_detect_workers_below_one_is_one_line(capsys, tmp_path):
    code, err = _detect(capsys, tmp_path, None, "--workers", "0", name="ogota")
    assert code == 5
    _one_error(err, "--workers", "whole number >= 1")


def test_run_search_checks_its_options_before_any_work(tmp_path):
    from pipeline.errors import ParameterError
    from pipeline.search import run_search
    from pipeline.sim.search_box import search_box_scenes

    for options, needle in (({"chunk_px": 0}, "chunk_px=0"), ({"workers": -1}, "workers=-1"),
                            ({"max_cards": -2}, "max_cards=-2")):
        with pytest.raises(ParameterError, match=needle):
            run_search("ogota", out_root=tmp_path / "out", data_root=tmp_path / "data", scenes_dir=tmp_path / "nowhere",
                       **options)
    with pytest.raises(ParameterError, match="box_size_m=inf"):  # the simulated box checks its side when it is asked for
        search_box_scenes(math.inf)
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_a_search_grid_of_billions_of_pixels_is_refused(capsys, tmp_path):
    code, err = _search(capsys, tmp_path, "--set", "resolution_m=0.3")
    assert code == 3
    _one_error(err, "ogota.geojson: search_area", "billion", "coarser resolution_m")


def test_search_chunks_too_large_for_memory_are_refused(capsys, tmp_path, eight_gb):
    # A grid given (the native one is known only once the scenes' headers are read): refused before any scene is.
    code, err = _search(capsys, tmp_path, "--chunk", "8192", "--workers", "64", "--set", "resolution_m=3")
    assert code == 5
    _one_error(err, "64 worker(s)", "8192 px chunk", "limit 8.0 GB", "lower --chunk or --workers")


def test_detect_all_refuses_bad_overrides_before_starting_a_cluster():
    from pipeline.batch import run_many
    from pipeline.errors import ParameterError

    # An unreachable scheduler: without the check the batch would wait on it, then fail for that.
    with pytest.raises(ParameterError, match="noise_k='inf' from the command line is not a finite number"):
        run_many(["ogota"], scheduler="tcp://127.0.0.1:9", overrides={"noise_k": "inf"})


# --------------------------------------------------------------------------- checks against the scenes, and after the run folder
def _planet_scenes(tmp_path: Path) -> tuple[Path, Path]:
    """Two small 4-band Planet scenes (UTM 30N) and an AOI file inside them; returns (aoi_dir, scenes)."""
    from factories import write_scene as _write_scene

    scenes = tmp_path / "scenes"
    for scene_id, day in (("a", "27"), ("b", "28")):
        _write_scene(scenes, scene_id, acquired=f"2024-01-{day}T10:38:00Z")
    to_lonlat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True)
    ring = [list(to_lonlat.transform(x, y)) for x, y in ((500050, 1499950), (500350, 1499950), (500350, 1500250),
                                                          (500050, 1500250), (500050, 1499950))]
    return _registry(tmp_path, _feature({"type": "Polygon", "coordinates": [ring]})), scenes


def _detect_scenes(capsys, tmp_path: Path, *options: str) -> tuple[int, str]:
    aoi_dir, scenes = _planet_scenes(tmp_path)
    return _cli(capsys, "detect", NAME, "--aoi-dir", str(aoi_dir), "--scenes", str(scenes), "--out", str(tmp_path / "out"),
                "--data", str(tmp_path / "data"), "--no-figures", "--set", "margin_m=60", *options)


def test_a_coreg_band_the_scenes_lack_is_refused_before_detection(capsys, tmp_path, monkeypatch):
    import pipeline.run

    def never(*args, **kwargs):
        raise AssertionError("detection started")

    monkeypatch.setattr(pipeline.run, "detect_burns", never)
    code, err = _detect_scenes(capsys, tmp_path, "--set", "coreg_band=swir16")
    assert code == 5
    _one_error(err, "coreg_band='swir16'", "blue, green, red, nir", "set coreg_band to one of them")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("failure, needles", [
    (MemoryError(), ["out of memory", "coarser resolution_m"]),
    (RuntimeError("an unforeseen case"), ["RuntimeError: an unforeseen case", "defect in burnscan"]),
])
def test_any_failure_after_the_run_folder_exists_is_one_line_naming_it(capsys, tmp_path, monkeypatch, failure, needles):
    import pipeline.run

    def fail(*args, **kwargs):
        raise failure

    # The stages are stubbed: what is tested is what happens once the .partial folder exists.
    monkeypatch.setattr(pipeline.run, "detect_burns", lambda *a, **k: SimpleNamespace())
    monkeypatch.setattr(pipeline.run, "_polygons_with_positions", fail)
    code, err = _detect_scenes(capsys, tmp_path)
    partial = [p for p in (tmp_path / "out" / NAME).iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1 and code == 9
    _one_error(err, str(partial[0]), "incomplete run left there", *needles)


def test_the_original_failure_stays_chained_for_the_log(tmp_path, monkeypatch):
    import pipeline.run
    from pipeline.errors import PipelineError

    aoi_dir, scenes = _planet_scenes(tmp_path)
    monkeypatch.setattr(pipeline.run, "detect_burns", lambda *a, **k: SimpleNamespace())
    monkeypatch.setattr(pipeline.run, "_polygons_with_positions", lambda d: [][1])
    with pytest.raises(PipelineError) as caught:
        pipeline.run.run_detect(NAME, aoi_dir=aoi_dir, scenes_dir=scenes, out_root=tmp_path / "out",
                                data_root=tmp_path / "data", make_figures=False, overrides={"margin_m": 60})
    assert isinstance(caught.value.__cause__, IndexError) and ".partial" in str(caught.value)


# --------------------------------------------------------------------------- fire archives
_VIIRS_HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,"
                 "bright_ti5,frp,daynight")


def _viirs(date: str, *, instrument: str = "VIIRS", time: str = "0130") -> str:
    return f"12.5,-1.5,330.1,0.39,0.36,{date},{time},N,{instrument},n,2.0NRT,290.2,3.2,N"


def test_fire_rows_dated_in_the_future_or_before_their_sensor_are_skipped_and_counted(tmp_path):
    from pipeline.readers.firms import read_fire_csv

    path = tmp_path / "fires.csv"
    path.write_text("\n".join([_VIIRS_HEADER, _viirs("2024-01-27"), _viirs("2099-01-27"), _viirs("2011-06-01"),
                               _viirs("1999-12-31", instrument="MODIS"), _viirs("2001-01-01", instrument="MODIS")]) + "\n")
    table = read_fire_csv(path)
    assert table.detections["detection_id"].tolist() == ["fires:1", "fires:5"]
    assert table.skipped_reasons == {"acquired in the future (over a day after the file was read)": 1,
                                     "acquired before its sensor flew (MODIS from 2000, VIIRS from 2012)": 2}


def test_a_day_of_slack_for_near_real_time_files(tmp_path):
    from datetime import datetime, timezone

    from pipeline.readers.firms import read_fire_csv

    path = tmp_path / "nrt.csv"
    path.write_text("\n".join([_VIIRS_HEADER, _viirs("2024-01-28", time="2300"), _viirs("2024-01-29", time="0100")]) + "\n")
    table = read_fire_csv(path, now=datetime(2024, 1, 28, 0, 30, tzinfo=timezone.utc))
    assert table.detections["detection_id"].tolist() == ["nrt:1"] and table.skipped == 1  # 22.5 h ahead; 24.5 h ahead


@pytest.mark.slow
def test_fast_and_record_by_record_readings_agree(tmp_path, monkeypatch):
    """Blocks read by the C parser and by the csv module give the same table, across block edges."""
    import random

    import pipeline.readers.firms as fires

    rnd = random.Random(20240127)
    good = {0: "12.5", 1: "-1.5", 5: "2024-01-27", 6: "130", 7: "N", 8: "VIIRS", 9: "n", 12: "3.2", 13: "D"}
    odd = {0: [" 12.5", "abc", "91", "NaN", "", "1e1"], 1: ["200", "inf", " -3 "],
           5: ["2024-1-7", "2024-13-01", "", "2099-01-01", "2011-06-01"], 6: ["45", "2561", "12:05", ""], 7: ["1", "J3", ""],
           8: ["MODIS", "", "viirs"], 9: ["h", "85", "", "x"], 12: ["", "inf", "x"], 13: ["n", "", "day"]}
    lines = [_VIIRS_HEADER]
    for _ in range(600):
        cells = [rnd.choice(odd[k]) if k in odd and rnd.random() < 0.08 else good.get(k, "1") for k in range(14)]
        shape = rnd.random()
        cells = (cells[:rnd.randint(1, 13)] if shape < 0.03 else cells + [""] * rnd.randint(1, 20) if shape < 0.06
                 else cells + ["extra"] if shape < 0.08 else cells)
        lines.append(rnd.choice(["", " , ,"]) if rnd.random() < 0.04 else ",".join(cells))
    path = tmp_path / "mixed.csv"
    path.write_bytes("\r\n".join(lines).encode())
    whole = fires.read_fire_csv(path)
    monkeypatch.setattr(fires, "_BLOCK_BYTES", 97)  # many blocks, edges everywhere
    blocks = fires.read_fire_csv(path)
    monkeypatch.setattr(fires, "_plain", lambda block: False)  # every block record by record
    records = fires.read_fire_csv(path)
    assert whole.skipped_reasons == blocks.skipped_reasons == records.skipped_reasons and len(whole.skipped_reasons) == 8
    for other in (blocks, records):
        assert whole.detections.astype(str).equals(other.detections.astype(str))
    assert len(whole.detections) > 100


_MEASURE = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from pipeline.readers.firms import read_fire_csv

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    table = read_fire_csv(Path(sys.argv[1]))
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # Linux: kilobytes
    print(len(table.detections), table.skipped, grown)
""")


def _capped(limit: int):
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return cap


@pytest.mark.slow
def test_a_120_mb_fire_archive_is_read_in_a_few_hundred_mb(tmp_path):
    """Peak memory reading a year-sized FIRMS download: a 120 MB file, 1.5 million detections.

    Measured as the growth of the child's peak resident set while it reads, past the libraries'
    own: 360 MB when last measured (275 MB traced by tracemalloc, which made the read three times
    slower; read_fire_csv kept every row as text before: 2.0 GB resident). The child runs under a
    1.5 GB address-space cap (this reader peaks at 0.9 GB of address space, the libraries
    included) so that a reader holding the whole file as text fails with MemoryError instead of
    taking the machine's memory.
    """
    rows = "".join(f"{12 + i * 0.00037:.5f},{-3 - i * 0.00041:.5f},{300 + i % 50:.2f},0.39,0.36,2024-01-{1 + i % 28:02d},"
                   f"{i % 24:02d}{(i * 13) % 60:02d},{'N1'[i % 2]},VIIRS,{'lnh'[i % 3]},2.0NRT,290.{i % 10},"
                   f"{(i % 97) / 10:.1f},{'DN'[i % 2]}\n" for i in range(1000)).encode()
    path = tmp_path / "fire_archive_SV-C2_year.csv"
    with path.open("wb") as handle:
        handle.write((_VIIRS_HEADER + "\n").encode())
        for _ in range(1500):
            handle.write(rows)
    assert 115e6 < path.stat().st_size < 125e6
    # The child reads with the package this test imported; one thread per library and few malloc
    # arenas, so that the cap measures the reader, not the machine's cores.
    import pipeline

    env = dict(os.environ, PYTHONPATH=str(Path(pipeline.__file__).resolve().parent.parent), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, preexec_fn=_capped(3 * 1024**3 // 2))
    assert done.returncode == 0, done.stderr[-1500:]
    kept, skipped, grown = (int(v) for v in done.stdout.split())
    assert kept == 1_500_000 and skipped == 0
    print(f"120 MB FIRMS CSV: peak resident memory grew {grown / 1e6:.0f} MB while reading")  # pytest -rP
    assert grown < 500e6, grown
