"""Active fires: FIRMS CSVs read with known answers, bad rows counted, and burns corroborated."""

from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import box

from pipeline.errors import ParameterError, SceneError
from pipeline.readers.firms import FIRE_COLUMNS, FireTable, read_fire_csv
from pipeline.stages.corroborate import MATCH_COLUMNS, corroborate

VIIRS_HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,"
                "confidence,version,bright_ti5,frp,daynight")
MODIS_HEADER = ("latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,"
                "confidence,version,bright_t31,frp,daynight,type")


def viirs(lat="12.5", lon="-1.5", date="2024-01-27", time="130", sat="N", conf="n", frp="3.2", dn="N",
          instrument="VIIRS") -> str:
    return f"{lat},{lon},330.1,0.39,0.36,{date},{time},{sat},{instrument},{conf},2.0NRT,290.2,{frp},{dn}"


def modis(lat="12.5", lon="-1.5", date="2024-01-27", time="1030", sat="T", conf="50", frp="12.0", dn="D",
          instrument="MODIS") -> str:
    return f"{lat},{lon},320.4,1.0,1.0,{date},{time},{sat},{instrument},{conf},6.1NRT,295.3,{frp},{dn},0"


def write(tmp_path, name, *lines, text=None):
    path = tmp_path / name
    path.write_text(text if text is not None else "\n".join(lines) + "\n", encoding="utf-8")
    return path


def utc(text):
    return pd.Timestamp(text, tz="UTC")


# --- reading ----------------------------------------------------------------------------


def test_viirs_file_parses_times_satellites_and_confidences(tmp_path):
    path = write(tmp_path, "fire_archive_SV-C2.csv", VIIRS_HEADER,
                 viirs(time="45", sat="N", conf="l", frp="1.5", dn="N"),
                 viirs(time="1330", sat="1", conf="n", dn="D"),
                 viirs(time="0001", sat="N21", conf="h"),
                 viirs(time="12:05", sat="2", conf="nominal"),
                 viirs(time="7", sat="N20", conf="HIGH"))
    table = read_fire_csv(path)
    d = table.detections
    assert isinstance(table, FireTable) and table.path == path
    assert table.skipped == 0 and table.skipped_reasons == {}
    assert list(d.columns) == FIRE_COLUMNS
    assert d["detection_id"].tolist() == [f"fire_archive_SV-C2:{n}" for n in range(1, 6)]
    assert d["acquired_utc"].tolist() == [utc("2024-01-27 00:45"), utc("2024-01-27 13:30"), utc("2024-01-27 00:01"),
                                          utc("2024-01-27 12:05"), utc("2024-01-27 00:07")]
    assert str(d["acquired_utc"].dt.tz) == "UTC"
    assert d["satellite"].tolist() == ["Suomi NPP", "NOAA-20", "NOAA-21", "NOAA-21", "NOAA-20"]
    assert d["instrument"].tolist() == ["VIIRS"] * 5
    assert d["confidence"].tolist() == ["low", "nominal", "high", "nominal", "high"]
    assert d["confidence_raw"].tolist() == ["l", "n", "h", "nominal", "HIGH"]
    assert d["frp"].tolist() == [1.5, 3.2, 3.2, 3.2, 3.2]
    assert d["daynight"].tolist() == ["N", "D", "N", "N", "N"]
    assert d["latitude"].tolist() == [12.5] * 5 and d["longitude"].tolist() == [-1.5] * 5


def test_modis_file_gets_the_user_guide_confidence_classes(tmp_path):
    confidences = ["0", "29", "30", "79", "79.9", "80", "100"]
    satellites = ["T", "A", "Terra", "Aqua", "aqua", "T", "A"]
    path = write(tmp_path, "modis.csv", MODIS_HEADER,
                 *(modis(conf=c, sat=s, time=t) for c, s, t in zip(confidences, satellites,
                                                                    ["1030", "1330", "2230", "130", "5", "0", "2359"])))
    d = read_fire_csv(path).detections
    assert d["confidence"].tolist() == ["low", "low", "nominal", "nominal", "nominal", "high", "high"]
    assert d["confidence_raw"].tolist() == confidences
    assert d["satellite"].tolist() == ["Terra", "Aqua", "Terra", "Aqua", "Aqua", "Terra", "Aqua"]
    assert d["instrument"].tolist() == ["MODIS"] * 7
    assert [t.strftime("%H:%M") for t in d["acquired_utc"]] == ["10:30", "13:30", "22:30", "01:30", "00:05", "00:00", "23:59"]
    assert d["frp"].tolist() == [12.0] * 7 and d["daynight"].tolist() == ["D"] * 7


def test_instrument_is_inferred_from_the_brightness_column_when_absent(tmp_path):
    viirs_path = write(tmp_path, "v.csv", "latitude,longitude,bright_ti4,acq_date,acq_time,confidence",
                       "12.5,-1.5,330,2024-01-27,130,h", "12.5,-1.5,330,2024-01-27,130,85")
    modis_path = write(tmp_path, "m.csv", "latitude,longitude,brightness,acq_date,acq_time,confidence",
                       "12.5,-1.5,330,2024-01-27,130,85", "12.5,-1.5,330,2024-01-27,130,h")
    v = read_fire_csv(viirs_path).detections
    m = read_fire_csv(modis_path).detections
    assert v["instrument"].tolist() == ["VIIRS", "VIIRS"] and m["instrument"].tolist() == ["MODIS", "MODIS"]
    # A percentage is not a VIIRS class and a letter is not a MODIS percentage.
    assert v["confidence"].tolist() == ["high", None] and m["confidence"].tolist() == ["high", None]


def test_column_names_are_case_and_space_insensitive_and_a_bom_is_tolerated(tmp_path):
    header = " LATITUDE , Longitude ,Bright_TI4,ACQ_DATE , acq_time,Satellite,CONFIDENCE,FRP,DayNight"
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + header + "\n12.5,-1.5,330,2024-01-27,0130,N,h,2.5,n\n").encode("utf-8"))
    d = read_fire_csv(path).detections
    assert len(d) == 1
    row = d.iloc[0]
    assert (row["latitude"], row["acquired_utc"], row["satellite"], row["instrument"], row["confidence"],
            row["frp"], row["daynight"]) == (12.5, utc("2024-01-27 01:30"), "Suomi NPP", "VIIRS", "high", 2.5, "N")


def test_optional_columns_absent_are_none_or_nan(tmp_path):
    d = read_fire_csv(write(tmp_path, "bare.csv", "latitude,longitude,acq_date,acq_time",
                            "12.5,-1.5,2024-01-27,130")).detections
    assert list(d.columns) == FIRE_COLUMNS and len(d) == 1
    row = d.iloc[0]
    for name in ("satellite", "instrument", "confidence", "confidence_raw", "daynight"):
        assert row[name] is None, name
    assert math.isnan(row["frp"])


def test_unknown_confidence_or_satellite_keeps_the_row_without_counting_it(tmp_path):
    path = write(tmp_path, "odd.csv", VIIRS_HEADER, viirs(conf="x", sat="J3", frp="", dn=""),
                 viirs(conf="", frp="inf", dn="day"))
    table = read_fire_csv(path)
    d = table.detections
    assert table.skipped == 0 and len(d) == 2
    assert d["confidence"].tolist() == [None, None] and d["confidence_raw"].tolist() == ["x", ""]
    assert d["satellite"].tolist() == ["J3", "Suomi NPP"]  # unknown codes are kept as given
    assert d["frp"].isna().tolist() == [True, True]
    assert d["daynight"].tolist() == [None, None]
    m = read_fire_csv(write(tmp_path, "odd_modis.csv", MODIS_HEADER, modis(conf="150"), modis(conf="-1"))).detections
    assert m["confidence"].tolist() == [None, None] and m["confidence_raw"].tolist() == ["150", "-1"]


def test_malformed_rows_are_skipped_and_counted_by_reason(tmp_path):
    lines = [
        viirs(time="45"),                 # 1 good
        viirs(lat="abc"),                 # 2 latitude
        viirs(lon="200"),                 # 3 longitude
        viirs(date="2024-13-01"),         # 4 date
        viirs(time="2561"),               # 5 time: hour 25
        "12.5,-1.5,330.1,0.39",           # 6 too few fields
        viirs(lat="NaN"),                 # 7 latitude
        viirs(lon="inf"),                 # 8 longitude
        viirs(lat="91"),                  # 9 latitude
        viirs(time="12:60"),              # 10 time
        viirs(date="27/01/2024"),         # 11 date
        viirs() + ",extra",               # 12 too many fields
        viirs(lat="abc", date="bad"),     # 13 counted once, under its first fault
        viirs(time="1330", sat="1"),      # 14 good
        viirs() + ",,",                   # 15 good: trailing commas carry nothing
    ]
    table = read_fire_csv(write(tmp_path, "mixed.csv", VIIRS_HEADER, *lines))
    assert table.skipped_reasons == {
        "latitude not a number in -90..90": 4,
        "longitude not a number in -180..180": 2,
        "acq_date not a YYYY-MM-DD date": 2,
        "acq_time not an HHMM or HH:MM UTC time": 2,
        "row has too few fields": 1,
        "row has too many fields": 1,
    }
    assert table.skipped == 12
    d = table.detections
    assert d["detection_id"].tolist() == ["mixed:1", "mixed:14", "mixed:15"]
    assert d["acquired_utc"].tolist() == [utc("2024-01-27 00:45"), utc("2024-01-27 13:30"), utc("2024-01-27 01:30")]
    assert d["satellite"].tolist() == ["Suomi NPP", "NOAA-20", "Suomi NPP"]


def test_blank_lines_are_neither_detections_nor_faults_and_keep_the_numbering(tmp_path):
    path = write(tmp_path, "gaps.csv", text="\n" + VIIRS_HEADER + "\n" + viirs() + "\n\n" + viirs(time="2200") + "\n\n")
    table = read_fire_csv(path)
    assert table.skipped == 0
    assert table.detections["detection_id"].tolist() == ["gaps:1", "gaps:3"]


def test_a_header_only_download_is_an_empty_table_not_an_error(tmp_path):
    table = read_fire_csv(write(tmp_path, "quiet.csv", VIIRS_HEADER))
    assert table.skipped == 0 and len(table.detections) == 0
    assert list(table.detections.columns) == FIRE_COLUMNS


def _assert_one_line_naming(exc: SceneError, name: str, *words: str) -> str:
    message = str(exc)
    assert isinstance(exc, OSError)
    assert "\n" not in message and name in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("name, content, words", [
    ("empty.csv", b"", ["empty"]),
    ("blank.csv", b"\n  \n\n", ["empty"]),
    ("fires.zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)), ["not a text CSV", "unzip"]),
    ("latin.csv", "latitude,longitude,acq_date,acq_time,note\n12.5,-1.5,2024-01-27,130,caf\xe9\n".encode("latin-1"),
     ["not a text CSV", "UTF-8"]),
    ("huge_field.csv", b"latitude,longitude,acq_date,acq_time\n\"" + b"x" * 200_000 + b"\",1,2024-01-27,130\n",
     ["not a text CSV"]),
])
def test_unreadable_files_raise_one_line_scene_errors(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SceneError) as caught:
        read_fire_csv(path)
    _assert_one_line_naming(caught.value, name, *words)


def test_missing_file_raises_a_scene_error_naming_it(tmp_path):
    with pytest.raises(SceneError) as caught:
        read_fire_csv(tmp_path / "nowhere.csv")
    _assert_one_line_naming(caught.value, "nowhere.csv", "not found")


def test_missing_required_columns_are_listed_with_those_found(tmp_path):
    path = write(tmp_path, "nodate.csv", "latitude,longitude,bright_ti4,satellite", "12.5,-1.5,330,N")
    with pytest.raises(SceneError) as caught:
        read_fire_csv(path)
    message = _assert_one_line_naming(caught.value, "nodate.csv", "acq_date, acq_time missing")
    assert "found: latitude, longitude, bright_ti4, satellite" in message


def test_a_file_over_500_mb_is_refused_before_reading(tmp_path):
    path = tmp_path / "global_year.csv"
    with path.open("wb") as handle:
        handle.truncate(501 * 1024 * 1024)  # sparse: all NUL bytes, which would read as binary if opened
    with pytest.raises(SceneError) as caught:
        read_fire_csv(path)
    _assert_one_line_naming(caught.value, "global_year.csv", "500 MB", "split the download by date or area")


# --- corroborating ----------------------------------------------------------------------

CRS = "EPSG:32630"  # UTM 30N, around 12.6 N 3 W
TO_LONLAT = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
FIRST_SEEN, LAST_CLEAR = "2024-01-28T10:38:00Z", "2024-01-23T10:38:00Z"


def burns(*rows) -> gpd.GeoDataFrame:
    """Polygons from (id, (xmin, ymin, xmax, ymax), first_seen, last_clear_before)."""
    return gpd.GeoDataFrame({"polygon_id": [r[0] for r in rows], "first_seen": [r[2] for r in rows],
                             "last_clear_before": [r[3] for r in rows]},
                            geometry=[box(*r[1]) for r in rows], crs=CRS)


VILLAGE = (500000.0, 1400000.0, 500200.0, 1400200.0)  # a 200 m square


def fires(*points) -> pd.DataFrame:
    """Detections from (id, x, y, UTC time) in the polygons' CRS, as read_fire_csv gives them."""
    lon, lat = TO_LONLAT.transform([p[1] for p in points], [p[2] for p in points])
    return pd.DataFrame({"detection_id": [p[0] for p in points], "latitude": lat, "longitude": lon,
                         "acquired_utc": [utc(p[3]) for p in points], "satellite": "NOAA-20",
                         "instrument": "VIIRS", "confidence": "nominal", "frp": 4.0, "daynight": "N"})


def test_a_detection_inside_the_polygon_in_the_bracket_matches_at_distance_zero():
    out = corroborate(burns((7, VILLAGE, FIRST_SEEN, LAST_CLEAR)), fires(("v:1", 500100, 1400100, "2024-01-27T01:30Z")))
    assert list(out.columns) == MATCH_COLUMNS and len(out) == 1
    row = out.iloc[0]
    assert (row["polygon_id"], row["detection_id"], row["acquired_utc"]) == (7, "v:1", utc("2024-01-27T01:30"))
    assert row["distance_m"] == 0.0
    assert (row["satellite"], row["instrument"], row["confidence"], row["frp"], row["daynight"]) == \
        ("NOAA-20", "VIIRS", "nominal", 4.0, "N")


def test_distance_is_to_the_polygon_edge_and_limited_by_max_distance():
    night = "2024-01-27T01:30Z"
    detections = fires(("near", 500700, 1400100, night),     # 500 m east of the east edge
                       ("far", 502200, 1400100, night),      # 2 km east
                       ("corner", 500500, 1400500, night),   # 300 m east and north of the corner
                       ("mid", 501100, 1400100, night))      # 900 m: MODIS range, not VIIRS
    polygons = burns((1, VILLAGE, FIRST_SEEN, LAST_CLEAR))
    out = corroborate(polygons, detections)
    assert sorted(out["detection_id"]) == ["corner", "near"]
    distance = dict(zip(out["detection_id"], out["distance_m"]))
    assert distance["near"] == pytest.approx(500.0, abs=0.01)
    assert distance["corner"] == pytest.approx(math.hypot(300, 300), abs=0.01)
    wide = corroborate(polygons, detections, max_distance_m=1000)
    assert sorted(wide["detection_id"]) == ["corner", "mid", "near"]
    assert corroborate(polygons, detections, max_distance_m=450)["detection_id"].tolist() == ["corner"]


def test_only_detections_inside_the_time_bracket_match():
    inside = (500100, 1400100)
    detections = fires(("before", *inside, "2024-01-20T01:30Z"),
                       ("at_clear", *inside, "2024-01-23T10:38Z"),     # the clear scene saw no burn yet
                       ("just_after", *inside, "2024-01-23T10:39Z"),
                       ("at_first_seen", *inside, "2024-01-28T10:38Z"),  # the burn may be this very moment
                       ("after", *inside, "2024-01-28T10:39Z"))
    out = corroborate(burns((1, VILLAGE, FIRST_SEEN, LAST_CLEAR)), detections)
    assert out["detection_id"].tolist() == ["just_after", "at_first_seen"]


@pytest.mark.parametrize("no_clear", [None, "", float("nan")])
def test_without_a_last_clear_scene_the_bracket_is_open_at_the_start(no_clear):
    detections = fires(("old", 500100, 1400100, "2020-06-01T13:00Z"), ("late", 500100, 1400100, "2024-02-01T01:30Z"))
    out = corroborate(burns((1, VILLAGE, FIRST_SEEN, no_clear)), detections)
    assert out["detection_id"].tolist() == ["old"]


def test_matches_are_sorted_by_polygon_then_time_and_a_fire_can_match_two_polygons():
    east = (501400.0, 1400000.0, 501600.0, 1400200.0)
    polygons = burns(("b", east, FIRST_SEEN, LAST_CLEAR), ("a", VILLAGE, FIRST_SEEN, LAST_CLEAR))
    detections = fires(("late", 500800, 1400100, "2024-01-27T13:30Z"),  # between the two: 600 m from each
                       ("early", 500800, 1400100, "2024-01-25T01:30Z"),
                       ("east_only", 501500, 1400100, "2024-01-24T01:30Z"))  # inside b, 1.3 km from a
    out = corroborate(polygons, detections)
    assert list(zip(out["polygon_id"], out["detection_id"])) == [
        ("a", "early"), ("a", "late"), ("b", "east_only"), ("b", "early"), ("b", "late")]
    assert out["distance_m"].tolist() == pytest.approx([600.0, 600.0, 0.0, 600.0, 600.0], abs=0.01)


def test_a_read_file_corroborates_end_to_end(tmp_path):
    lon, lat = TO_LONLAT.transform(500100, 1400100)
    far_lon, far_lat = TO_LONLAT.transform(505000, 1400100)
    path = write(tmp_path, "firms.csv", VIIRS_HEADER,
                 viirs(lat=f"{lat:.5f}", lon=f"{lon:.5f}", date="2024-01-27", time="130", sat="1", conf="h", frp="7.5"),
                 viirs(lat=f"{far_lat:.5f}", lon=f"{far_lon:.5f}", date="2024-01-27", time="130"))
    out = corroborate(burns((3, VILLAGE, FIRST_SEEN, LAST_CLEAR)), read_fire_csv(path).detections)
    assert out[["polygon_id", "detection_id", "satellite", "confidence", "frp", "daynight"]].values.tolist() == \
        [[3, "firms:1", "NOAA-20", "high", 7.5, "N"]]
    assert out["acquired_utc"].tolist() == [utc("2024-01-27 01:30")]
    assert out["distance_m"].iloc[0] == 0.0  # 5 decimals of a degree are about 1 m: still inside


def test_nothing_to_match_gives_an_empty_frame_with_the_columns(tmp_path):
    polygons = burns((1, VILLAGE, FIRST_SEEN, LAST_CLEAR))
    detections = fires(("v:1", 500100, 1400100, "2024-01-27T01:30Z"))
    no_fires = read_fire_csv(write(tmp_path, "none.csv", VIIRS_HEADER)).detections
    cases = [corroborate(polygons.iloc[:0], detections), corroborate(polygons, no_fires),
             corroborate(polygons, fires(("far", 510000, 1400100, "2024-01-27T01:30Z")))]
    for out in cases:
        assert len(out) == 0 and list(out.columns) == MATCH_COLUMNS
        assert str(out["acquired_utc"].dtype).endswith("UTC]") and out["distance_m"].dtype == float


def test_a_detection_without_a_time_never_matches():
    detections = fires(("v:1", 500100, 1400100, "2024-01-27T01:30Z"), ("v:2", 500100, 1400100, "2024-01-27T01:30Z"))
    detections.loc[1, "acquired_utc"] = pd.NaT
    out = corroborate(burns((1, VILLAGE, FIRST_SEEN, LAST_CLEAR)), detections)
    assert out["detection_id"].tolist() == ["v:1"]


@pytest.mark.parametrize("bad", [0, -750.0, float("nan"), float("inf"), "750", True, None])
def test_a_bad_max_distance_is_a_parameter_error(bad):
    with pytest.raises(ParameterError) as caught:
        corroborate(burns((1, VILLAGE, FIRST_SEEN, LAST_CLEAR)), fires(("v:1", 500100, 1400100, "2024-01-27T01:30Z")),
                    max_distance_m=bad)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in message and "max_distance_m" in message


def test_polygons_in_degrees_or_without_a_crs_are_a_parameter_error():
    polygons = burns((1, VILLAGE, FIRST_SEEN, LAST_CLEAR))
    detections = fires(("v:1", 500100, 1400100, "2024-01-27T01:30Z"))
    with pytest.raises(ParameterError, match="EPSG:4326.*not projected in metres.*to_crs"):
        corroborate(polygons.to_crs("EPSG:4326"), detections)
    with pytest.raises(ParameterError, match="not set"):
        corroborate(polygons.set_crs(None, allow_override=True), detections)
    assert len(corroborate(polygons, detections)) == 1  # the same data in metres is fine


def test_a_polygon_time_that_is_not_iso_is_a_parameter_error_naming_the_polygon():
    detections = fires(("v:1", 500100, 1400100, "2024-01-27T01:30Z"))
    with pytest.raises(ParameterError, match=r"polygon 9: first_seen 'last tuesday'"):
        corroborate(burns((9, VILLAGE, "last tuesday", LAST_CLEAR)), detections)
    with pytest.raises(ParameterError, match="polygon 9: first_seen"):
        corroborate(burns((9, VILLAGE, None, LAST_CLEAR)), detections)


def test_corroborate_does_not_modify_its_inputs():
    polygons = burns((1, VILLAGE, FIRST_SEEN, LAST_CLEAR))
    detections = fires(("v:1", 500100, 1400100, "2024-01-27T01:30Z"))
    before = (polygons.copy(), detections.copy())
    corroborate(polygons, detections)
    pd.testing.assert_frame_equal(polygons, before[0])
    pd.testing.assert_frame_equal(detections, before[1])


# ---------------------------------------------------------------------------------------------
# a fires file found by a run


def _scenes_and_aoi(tmp_path):
    """Three Planet-style scenes and an AOI over them: enough for a run to reach its evidence layers."""
    from factories import write_scene, write_square_aoi

    scenes = tmp_path / "scenes"
    for day in (26, 27, 28):
        write_scene(scenes, f"202401{day}_103800_s", acquired=f"2024-01-{day}T10:38:00Z")
    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(500200.0, 1500100.0)
    return scenes, write_square_aoi(tmp_path / "aoi", "savanna", lon, lat, 120.0, "Africa/Bamako")


@pytest.mark.parametrize("where", ["beside the scenes", "kept by add-fires"])
def test_detect_refuses_a_fires_file_of_malformed_rows_only(tmp_path, capsys, where):
    """Read, it said "0 detections": as if no fire had been seen."""
    from factories import run_cli

    scenes, aoi_dir = _scenes_and_aoi(tmp_path)
    folder = scenes if where == "beside the scenes" else tmp_path / "data" / "savanna" / "fires"
    folder.mkdir(parents=True, exist_ok=True)
    bad = write(folder, "fires_viirs.csv", VIIRS_HEADER, viirs(lat="999"), viirs(date="2024-02-30"))
    code, _, err = run_cli(capsys, "detect", "savanna", "--scenes", scenes, "--aoi-dir", aoi_dir, "--out", tmp_path / "out",
                           "--data", tmp_path / "data", "--no-figures")
    assert code == SceneError.exit_code, err
    lines = err.strip().splitlines()
    assert [line for line in lines if line.startswith("burnscan: error:")] == lines[-1:] and "Traceback" not in err, err
    assert str(bad) in lines[-1] and "every data row is malformed (2 row(s)" in lines[-1] and "row 1 after the header" in lines[-1]
    assert "download the FIRMS archive CSV again" in lines[-1]


def test_a_run_says_once_that_a_fires_file_has_some_malformed_rows(tmp_path, caplog):
    from pipeline.evidence import find_layers
    from factories import GRID

    scenes, _ = _scenes_and_aoi(tmp_path)
    path = write(scenes, "fires_viirs.csv", VIIRS_HEADER, viirs(), viirs(date="2024-02-30"), viirs(lat="999"))
    with caplog.at_level("INFO"):
        layers = find_layers(scenes, tmp_path / "data" / "savanna", GRID)
    assert [len(t.detections) for t in layers.fire_tables] == [1]
    warned = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warned) == 1 and str(path) in warned[0] and "2 malformed row(s)" in warned[0], warned
    assert "row 2 after the header: acq_date" in warned[0]
