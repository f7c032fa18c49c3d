"""The command line, in process: exit codes, one-line errors, nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", ["../ogota", "/etc/passwd", "Ogota", "og ota", "ogota;rm"])
def test_bad_aoi_name_is_one_line_error_and_writes_nothing(capsys, tmp_path, name):
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, "detect", name, "--out", str(out), "--data", str(tmp_path / "data"))
    assert code == 3
    assert stderr.count("\n") == 1 and stderr.startswith("burnscan: error:") and "not allowed" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("length", [65, 200])
def test_aoi_name_over_the_limit_says_the_limit(capsys, tmp_path, length):
    """Every character is allowed: naming the characters would send the user looking for a wrong one."""
    code, stdout, stderr = _run(capsys, "detect", "a" * length, "--out", str(tmp_path / "out"))
    assert code == 3 and stderr.count("\n") == 1 and stderr.startswith("burnscan: error:")
    assert "64-character limit" in stderr and "shorter name" in stderr and "lowercase" not in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["detect", "ogota"], ["add-fires", "ogota", "fires.csv"], ["scenes", "ogota"]])
@pytest.mark.parametrize("under", [False, True])
def test_data_option_on_a_file_says_it_is_a_file(capsys, tmp_path, command, under):
    blocker = tmp_path / "data.txt"
    blocker.write_text("not a folder")
    given = blocker / "sub" if under else blocker
    code, _, stderr = _run(capsys, *command, "--data", str(given), "--out", str(tmp_path / "out")) if command[0] == "detect" \
        else _run(capsys, *command, "--data", str(given))
    assert code == 5 and stderr.count("\n") == 1 and stderr.startswith("burnscan: error: --data"), stderr
    assert str(given) in stderr and "is a file, not a folder" in stderr and "give a folder" in stderr
    assert "disk space" not in stderr and blocker.read_text() == "not a folder"


def test_unknown_aoi_names_known_ones(capsys, tmp_path):
    code, _, stderr = _run(capsys, "detect", "atlantis", "--out", str(tmp_path / "out"))
    assert code == 3 and "known AOIs:" in stderr and "ogota" in stderr
    assert not (tmp_path / "out").exists()


def test_bad_parameter_is_one_line_error(capsys, tmp_path):
    code, _, stderr = _run(capsys, "detect", "ogota", "--set", "noise_k=-2", "--out", str(tmp_path / "out"))
    assert code == 5 and stderr.count("\n") == 1 and "noise_k" in stderr


def test_missing_scene_folder_is_one_line_error(capsys, tmp_path):
    code, _, stderr = _run(capsys, "detect", "ogota", "--scenes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    errors = [line for line in stderr.splitlines() if line.startswith("burnscan: error:")]
    assert code == 4 and len(errors) == 1 and "nowhere" in errors[0] and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_malformed_set_is_a_usage_error(capsys):
    code, _, stderr = _run(capsys, "detect", "ogota", "--set", "noise_k")
    assert code == 2 and "name=value" in stderr


def test_aois_lists_the_registry(capsys):
    code, stdout, _ = _run(capsys, "aois")
    assert code == 0
    assert "ogota\tOgota" in stdout and "(location uncertain)" in stdout
    assert len(stdout.strip().splitlines()) >= 7


def test_aois_lists_the_folder_detect_is_given(capsys, tmp_path):
    """The AOI-name error points to `burnscan aois`: it lists the folder given with --aoi-dir, as detect reads it."""
    from smallaoi import AOI_NAME, write_small_aoi

    folder = write_small_aoi(tmp_path / "mine")
    code, stdout, _ = _run(capsys, "aois", "--aoi-dir", str(folder))
    assert code == 0 and stdout.startswith(f"{AOI_NAME}\t") and len(stdout.strip().splitlines()) == 1
    code, _, stderr = _run(capsys, "aois", "--aoi-dir", str(tmp_path / "none"))
    assert code == 3 and stderr.count("\n") == 1 and f"{tmp_path / 'none'}: no such AOI folder" in stderr


def test_aois_lists_every_file_and_names_each_broken_one(capsys, tmp_path):
    """One broken AOI file stopped the listing where it stood, hiding every file after it."""
    from smallaoi import AOI_NAME, write_small_aoi

    folder = write_small_aoi(tmp_path / "mine")
    (folder / "aaa.geojson").write_text("{not json")
    (folder / "zzz.geojson").write_text((folder / f"{AOI_NAME}.geojson").read_text())
    code, stdout, stderr = _run(capsys, "aois", "--aoi-dir", str(folder))
    lines = stdout.strip().splitlines()
    assert code == 3 and [line.split("\t")[0] for line in lines] == ["aaa", AOI_NAME, "zzz"]
    assert lines[0].startswith("aaa\tcannot be read: ") and str(folder / "aaa.geojson") in lines[0]
    assert stderr.count("\n") == 1 and "1 of 3 AOI file(s) cannot be read (aaa)" in stderr


def test_bench_names_an_unknown_case_before_running_any(capsys, tmp_path):
    code, _, stderr = _run(capsys, "bench", "--case", "demo", "--case", "nonfire", "--out", str(tmp_path / "b"),
                           "--data", str(tmp_path / "d"))
    assert code != 0 and stderr.count("\n") == 1 and "--case nonfire" in stderr and "wet_soil" in stderr
    assert not (tmp_path / "d").exists()


def _footprints_geojson(path: Path, lon: float, lat: float, n: int = 5) -> Path:

    d = 0.00005  # about 5 m
    features = [{"type": "Feature", "properties": {"osm_id": f"w{i}"},
                 "geometry": {"type": "Polygon", "coordinates": [[[lon + i * 3 * d, lat], [lon + i * 3 * d + d, lat],
                                                                   [lon + i * 3 * d + d, lat + d], [lon + i * 3 * d, lat + d],
                                                                   [lon + i * 3 * d, lat]]]}} for i in range(n)]
    features.append({"type": "Feature", "properties": {"osm_id": "n1"}, "geometry": {"type": "Point", "coordinates": [lon, lat]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def test_add_buildings_keeps_the_layer_and_never_overwrites_silently(capsys, tmp_path):
    from pipeline.readers.rasters import sha256_file

    data = tmp_path / "data"
    src = _footprints_geojson(tmp_path / "osm.geojson", -3.78, 13.82)
    code, out, _ = _run(capsys, "add-buildings", "ogota", str(src), "--data", str(data))
    kept = data / "ogota" / "buildings.gpkg"
    assert code == 0 and kept.is_file() and "5 footprint(s) over the AOI kept, 1 non-polygon feature(s) ignored" in out
    before = sha256_file(kept)
    code, _, err = _run(capsys, "add-buildings", "ogota", str(src), "--data", str(data))
    assert code == 5 and "--replace" in err and err.count("\n") == 1 and sha256_file(kept) == before
    code, _, _ = _run(capsys, "add-buildings", "ogota", str(src), "--data", str(data), "--replace")
    assert code == 0 and len(list((data / "ogota").glob("buildings.replaced-*.gpkg"))) == 1


def test_add_buildings_refuses_a_layer_elsewhere_or_not_vector(capsys, tmp_path):
    data = tmp_path / "data"
    far = _footprints_geojson(tmp_path / "far.geojson", 2.35, 48.85)  # Paris
    code, _, err = _run(capsys, "add-buildings", "ogota", str(far), "--data", str(data))
    assert code == 4 and "no building footprint lies over the AOI" in err and err.count("\n") == 1
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"\x00not a geopackage" * 10)
    code, _, err = _run(capsys, "add-buildings", "ogota", str(junk), "--data", str(data))
    assert code == 4 and "junk.gpkg" in err and err.count("\n") == 1
    # A table of coordinates (it was an internal error), and points where outlines belong
    table = tmp_path / "buildings.csv"
    table.write_text("latitude,longitude,height\n13.82,-3.78,3\n")
    code, _, err = _run(capsys, "add-buildings", "ogota", str(table), "--data", str(data))
    assert code == 4 and err.count("\n") == 1 and "buildings.csv: a table without geometry (columns: latitude, longitude" in err
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [-3.78, 13.82]}}]}))
    code, _, err = _run(capsys, "add-buildings", "ogota", str(points), "--data", str(data))
    assert code == 4 and err.count("\n") == 1 and "1 feature(s), none a polygon (Point)" in err
    assert not (data / "ogota" / "buildings.gpkg").exists()


def test_add_buildings_refuses_to_guess_among_several_layers(capsys, tmp_path):
    """pyogrio would warn and read the first layer: the roads could be kept as buildings."""
    import geopandas as gpd

    data = tmp_path / "data"
    buildings = gpd.read_file(_footprints_geojson(tmp_path / "osm.geojson", -3.78, 13.82))
    gpkg = tmp_path / "export.gpkg"
    buildings.iloc[:1].to_file(gpkg, layer="roads", engine="pyogrio")  # the first layer is not the footprints
    buildings.to_file(gpkg, layer="buildings", engine="pyogrio")
    code, out, err = _run(capsys, "add-buildings", "ogota", str(gpkg), "--data", str(data))
    assert code == 4 and out == "" and err.count("\n") == 1, err
    assert "export.gpkg: holds 2 layers (roads, buildings)" in err and "--layer NAME" in err
    code, _, err = _run(capsys, "add-buildings", "ogota", str(gpkg), "--data", str(data), "--layer", "houses")
    assert code == 4 and err.count("\n") == 1 and "no layer 'houses'" in err and "roads, buildings" in err
    assert not (data / "ogota" / "buildings.gpkg").exists()
    code, out, err = _run(capsys, "add-buildings", "ogota", str(gpkg), "--data", str(data), "--layer", "buildings")
    assert code == 0 and err == "" and "5 footprint(s) over the AOI kept" in out


def test_add_buildings_repairs_a_bow_tie_and_says_so(capsys, tmp_path):
    """OpenStreetMap holds outlines drawn with two corners swapped: the building is real, its outline repairable."""
    import geopandas as gpd

    src = _footprints_geojson(tmp_path / "osm.geojson", -3.78, 13.82)
    layer = json.loads(src.read_text())
    d, lon, lat = 0.0001, -3.78, 13.821
    layer["features"].append({"type": "Feature", "properties": {"osm_id": "bow"}, "geometry": {"type": "Polygon", "coordinates": [
        [[lon, lat], [lon + d, lat + d], [lon + d, lat], [lon, lat + d], [lon, lat]]]}})  # crossing at its centre
    src.write_text(json.dumps(layer))
    code, out, err = _run(capsys, "add-buildings", "ogota", str(src), "--data", str(tmp_path / "data"))
    assert code == 0 and err == "", err
    assert "6 footprint(s) over the AOI kept, 1 invalid outline(s) repaired" in out
    kept = gpd.read_file(tmp_path / "data" / "ogota" / "buildings.gpkg").set_index("structure_id").to_crs("EPSG:32630")
    assert kept.geometry.is_valid.all()
    # Known answer: a bow tie is two triangles, each a quarter of its box (shapely's signed area of the raw ring is 0).
    box_area = kept.loc["w0"].geometry.area * 4  # w0 is a square of half the bow tie's side
    assert kept.loc["bow"].geometry.area == pytest.approx(box_area / 2, rel=0.01)


def test_a_settlement_outline_of_several_layers_is_refused_naming_them(tmp_path):
    import geopandas as gpd

    from pipeline.errors import SceneError
    from pipeline.readers.vectors import read_outline

    outline = gpd.read_file(_footprints_geojson(tmp_path / "osm.geojson", -3.78, 13.82)).iloc[:2]
    gpkg = tmp_path / "outline.gpkg"
    for name in ("village", "fields"):
        outline.to_file(gpkg, layer=name, engine="pyogrio")
    with pytest.raises(SceneError, match=r"outline.gpkg: holds 2 layers \(village, fields\); export the outline layer alone"):
        read_outline(gpkg, "EPSG:32630")


def test_add_fires_checks_the_archive_and_keeps_it_once(capsys, tmp_path):
    from pipeline.readers.rasters import sha256_file

    data = tmp_path / "data"
    header = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight"
    src = tmp_path / "firms.csv"
    src.write_text(f"{header}\n13.82,-3.78,330,0.4,0.4,2024-01-28,112,N20,VIIRS,n,2.0NRT,290,3.4,N\n13.82,abc\n", encoding="utf-8")
    code, out, _ = _run(capsys, "add-fires", "ogota", str(src), "--data", str(data))
    kept = data / "ogota" / "fires" / "firms.csv"
    assert code == 0 and kept.read_bytes() == src.read_bytes()
    assert "1 detection(s), 2024-01-28 01:12" in out and "1 malformed row(s) skipped" in out
    other = tmp_path / "other" / "firms.csv"
    other.parent.mkdir()
    other.write_text(f"{header}\n", encoding="utf-8")
    code, _, err = _run(capsys, "add-fires", "ogota", str(other), "--data", str(data))
    assert code == 5 and "rename" in err and sha256_file(kept) == sha256_file(src)
    code, _, err = _run(capsys, "add-fires", "ogota", str(tmp_path / "osm.csv"), "--data", str(data))
    assert code == 4 and err.count("\n") == 1
    # An archive of another area (Paris, for a village in Mali) would say "no fire detected" of every burn
    paris = tmp_path / "paris.csv"
    paris.write_text(f"{header}\n48.85,2.35,330,0.4,0.4,2024-01-28,112,N20,VIIRS,n,2.0NRT,290,3.4,N\n", encoding="utf-8")
    code, _, err = _run(capsys, "add-fires", "ogota", str(paris), "--data", str(data))
    assert code == 4 and err.count("\n") == 1 and "none of its 1 detection(s) lies within 100 km of the AOI ogota" in err
    assert not (data / "ogota" / "fires" / "paris.csv").exists()


def test_simulated_layers_never_become_evidence_about_a_real_place(capsys, tmp_path):
    """A footprint layer or fire archive the simulator wrote (its name, or a ``simulated`` attribute on every feature
    of a renamed copy) was kept for a real AOI and counted 81 burned structures and a corroborating "fire" in a
    report of real scenes that said simulated = false."""
    from datetime import datetime, timezone

    import geopandas as gpd

    from pipeline.model import SceneRecord
    from pipeline.run import _refuse_simulated_layers

    data = tmp_path / "data"
    src = _footprints_geojson(tmp_path / "buildings_SIMULATED.geojson", -3.78, 13.82)
    code, _, err = _run(capsys, "add-buildings", "ogota", str(src), "--data", str(data))
    assert code == 4 and err.count("\n") == 1 and "a SIMULATED footprint layer" in err and str(src) in err
    renamed = tmp_path / "buildings.gpkg"
    gpd.read_file(src).assign(simulated=True).to_file(renamed)
    code, _, err = _run(capsys, "add-buildings", "ogota", str(renamed), "--data", str(data))
    assert code == 4 and err.count("\n") == 1 and "a SIMULATED footprint layer" in err
    fires = tmp_path / "fires_viirs_SIMULATED.csv"
    fires.write_text("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,"
                     "bright_ti5,frp,daynight\n13.82,-3.78,330,0.4,0.4,2024-01-28,112,N20,VIIRS,n,2.0NRT,290,3.4,N\n")
    code, _, err = _run(capsys, "add-fires", "ogota", str(fires), "--data", str(data))
    assert code == 4 and err.count("\n") == 1 and "a SIMULATED fire archive" in err
    assert not (data / "ogota").exists()
    _run(capsys, "add-buildings", "ogota", str(_footprints_geojson(tmp_path / "osm.geojson", -3.78, 13.82)),
                      "--data", str(data))
    assert (data / "ogota" / "buildings.gpkg").is_file()

    # Put beside real scenes by hand, a run refuses them; beside simulated scenes they are the demo's own
    def records(simulated):
        return [SceneRecord(scene_id="a", acquired=datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc), satellite_id="x",
                            sensor="PS2", simulated=simulated, bands=("red", "nir"))]
    with pytest.raises(Exception, match="a SIMULATED layer beside real scenes") as refused:
        _refuse_simulated_layers(records(False), [None, None, fires], False)
    assert str(refused.value).startswith(str(fires))
    with pytest.raises(Exception, match="a SIMULATED layer beside real scenes"):
        _refuse_simulated_layers(records(False), [None, renamed], True)
    _refuse_simulated_layers(records(True), [None, src, fires], True)
    _refuse_simulated_layers(records(False), [None, data / "ogota" / "buildings.gpkg"], False)


_VIIRS_HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,"
                 "bright_ti5,frp,daynight,type")


def test_add_fires_refuses_an_archive_with_no_valid_row(capsys, tmp_path):
    """Kept, an archive of bad rows would read as "no fire seen" in every run."""
    data = tmp_path / "data"
    src = tmp_path / "firms.csv"
    src.write_text(f"{_VIIRS_HEADER}\n999,999,318.6,0.41,0.37,2024-02-30,112,N20,VIIRS,n,2.0NRT,281.4,3.4,N,0\n"
                   "13.82,-3.78,318.6,0.41,0.37,2024-02-30,112,N20,VIIRS,n,2.0NRT,281.4,3.4,N,0\n"
                   "nan,-3.78,318.6,0.41,0.37,2024-01-28,112,N20,VIIRS,n,2.0NRT,281.4,3.4,N,0\n"
                   "13.82,-3.78,318.6,0.41,0.37,2999-01-28,112,N20,VIIRS,n,2.0NRT,281.4,3.4,N,0\n13.82,-3.78\n",
                   encoding="utf-8")
    code, out, err = _run(capsys, "add-fires", "ogota", str(src), "--data", str(data))
    assert code == 4 and out == "" and err.count("\n") == 1 and err.startswith("burnscan: error:"), err
    assert str(src) in err and "5 row(s)" in err and "row 1 after the header: latitude" in err and "download" in err
    assert not (data / "ogota" / "fires").exists()


def test_add_fires_warns_of_skipped_rows_in_one_line(capsys, tmp_path):
    data = tmp_path / "data"
    src = tmp_path / "firms.csv"
    src.write_text(f"{_VIIRS_HEADER}\n13.82,-3.78,318.6,0.41,0.37,2024-01-28,112,N20,VIIRS,n,2.0NRT,281.4,3.4,N,0\n"
                   "13.82,-3.78,318.6,0.41,0.37,2024-02-30,112,N20,VIIRS,n,2.0NRT,281.4,3.4,N,0\n13.82\n", encoding="utf-8")
    code, out, err = _run(capsys, "add-fires", "ogota", str(src), "--data", str(data))
    assert code == 0 and "1 detection(s)" in out and (data / "ogota" / "fires" / "firms.csv").is_file()
    assert err.count("\n") == 1 and str(src) in err and "2 malformed row(s) skipped" in err, err
    assert "row 2 after the header: acq_date not a YYYY-MM-DD date" in err


def test_add_fires_keeps_a_header_only_archive(capsys, tmp_path):
    """A FIRMS download of a quiet area and season has a header and no detection: no fire, not a fault."""
    src = tmp_path / "firms.csv"
    src.write_text(f"{_VIIRS_HEADER}\n", encoding="utf-8")
    code, out, err = _run(capsys, "add-fires", "ogota", str(src), "--data", str(tmp_path / "data"))
    assert code == 0 and out.startswith("0 detection(s)") and err == ""


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a Linux /proc, where nobody (root included) can make folders")
def test_output_folder_refusing_folders_fails_before_any_work(capsys, tmp_path):
    code, _, stderr = _run(capsys, "detect", "ogota", "--out", "/proc/burnscan-out", "--data", str(tmp_path / "data"))
    assert code == 6 and stderr.count("\n") == 1 and "choose a writable --out" in stderr
    assert not (tmp_path / "data").exists()  # refused before the demo scenes were made


def test_someone_elses_aoi_without_scenes_is_refused_not_run_on_the_simulated_demo(capsys, tmp_path):
    """A Sahel village simulated at the user's own place would be a finding about nothing, however labelled: their AOI
    without scenes is told how to give them; the demo runs on the project's AOIs and on files that ask for it."""
    import json

    from pipeline.aoi import load_aoi
    from smallaoi import AOI_NAME, write_small_aoi

    folder = write_small_aoi(tmp_path / "mine")
    assert load_aoi(AOI_NAME, folder).takes_the_demo and load_aoi("ogota").takes_the_demo
    path = folder / f"{AOI_NAME}.geojson"
    feature = json.loads(path.read_text())
    del feature["properties"]["simulated_demo"]
    path.write_text(json.dumps(feature))
    assert not load_aoi(AOI_NAME, folder).takes_the_demo
    code, _, stderr = _run(capsys, "detect", AOI_NAME, "--aoi-dir", str(folder), "--out", str(tmp_path / "out"),
                           "--data", str(tmp_path / "data"))
    assert code == 4 and stderr.count("\n") == 1 and f"{path}: no scenes given and none registered" in stderr
    assert f"burnscan add {AOI_NAME} PATH" in stderr and "--scenes DIR" in stderr and "simulated_demo" in stderr
    assert not (tmp_path / "data").exists()  # no demo made


def test_an_output_folder_that_is_a_dangling_link_fails_before_any_work(capsys, tmp_path):
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    code, _, stderr = _run(capsys, "detect", "ogota", "--out", str(out), "--data", str(tmp_path / "data"))
    assert code == 6 and stderr.count("\n") == 1 and f"{out} is a symbolic link to {tmp_path / 'gone'}, which does not exist" in stderr
    assert not (tmp_path / "data").exists()  # refused before the demo scenes were made


@pytest.mark.parametrize("flags, kept", [((), True), (("--recompute",), False)])
def test_recompute_reuses_nothing_kept_from_earlier_runs(capsys, tmp_path, monkeypatch, flags, kept):
    import pipeline.run

    asked: list[dict] = []

    def run_detect(aoi, **options):  # what the command asks of a run, not the run
        asked.append(options)
        raise SystemExit(0)

    monkeypatch.setattr(pipeline.run, "run_detect", run_detect)
    with pytest.raises(SystemExit):
        main(["detect", "ogota", "--out", str(tmp_path / "out"), *flags])
    assert asked and asked[0]["keep_alignment"] is kept and asked[0]["keep_figures"] is kept


def _one_error(code: int, stderr: str, *needles: str) -> str:
    """A refusal as a user sees it: a non-zero exit and one ``burnscan: error:`` line holding every needle."""
    lines = stderr.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("burnscan: error:") and "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _export(folder: Path, bands: int = 4, **tags: str) -> Path:
    """``folder/export.tif``: a plain GeoTIFF over the small test AOI, with no time in its tags unless given, as
    shared exports come."""
    import numpy as np
    import rasterio

    from pipeline.aoi import load_aoi
    from factories import savanna_ground
    from smallaoi import AOI_NAME, write_small_aoi

    folder.mkdir(parents=True, exist_ok=True)
    grid = load_aoi(AOI_NAME, write_small_aoi(folder.parent / "export_aoi")).analysis_grid(3.0).buffered(20)
    ground = np.clip(savanna_ground(1)[:, :grid.height, :grid.width] * 10000, 1, 65535).astype(np.uint16)
    data = np.concatenate([ground, ground[:1]])[:bands]  # a fifth band stands for a stored index the map skips
    path = folder / "export.tif"
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=bands, dtype="uint16",
                       nodata=0, crs=grid.crs, transform=grid.transform) as dst:
        dst.write(data)
        dst.update_tags(**tags)
    return path


BAD_BAND_MAPS = [
    ("red,red,green,nir", ["'red' names bands 1 and 2", "name each band once", "swir16"]),
    ("foo,green,red,nir", ["'foo' is not a band name", "blue, green, red, nir, swir16, swir22"]),
    ("", ["is empty", "names no band"]),
    ("-,-", ["is empty", "names no band"]),
]


@pytest.mark.parametrize("bands, needles", BAD_BAND_MAPS)
def test_detect_refuses_a_bad_band_map_before_reading_a_scene(capsys, tmp_path, bands, needles):
    """A repeated name crashed deep in the run (an internal error); an unknown one was kept silently; an empty
    map was reported as a folder holding no scene."""
    scenes = _export(tmp_path / "scenes").parent
    code, stdout, stderr = _run(capsys, "detect", "ogota", "--scenes", str(scenes), "--bands", bands,
                                "--out", str(tmp_path / "out"), "--no-figures")
    _one_error(code, stderr, "--bands", *needles)
    assert code == 5 and stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("bands, needles", BAD_BAND_MAPS)
def test_add_refuses_a_bad_band_map_and_registers_nothing(capsys, tmp_path, bands, needles):
    from smallaoi import AOI_NAME, write_small_aoi

    aoi_dir, data = write_small_aoi(tmp_path / "aoi"), tmp_path / "data"
    code, _, stderr = _run(capsys, "add", AOI_NAME, str(_export(tmp_path / "in")), "--bands", bands,
                           "--acquired", "2024-01-28T10:38:00Z", "--data", str(data), "--aoi-dir", str(aoi_dir))
    _one_error(code, stderr, "--bands", *needles)
    assert not data.exists()


def test_add_refuses_a_bad_band_map_in_the_aoi_file_naming_the_file(capsys, tmp_path):
    from smallaoi import AOI_NAME, write_small_aoi

    aoi_dir, data = write_small_aoi(tmp_path / "aoi"), tmp_path / "data"
    aoi_file = aoi_dir / f"{AOI_NAME}.geojson"
    feature = json.loads(aoi_file.read_text())
    feature["properties"]["band_map"] = ["nir", "green", "red", "nir"]
    aoi_file.write_text(json.dumps(feature))
    code, _, stderr = _run(capsys, "add", AOI_NAME, str(_export(tmp_path / "in")), "--acquired", "2024-01-28T10:38:00Z",
                           "--data", str(data), "--aoi-dir", str(aoi_dir))
    _one_error(code, stderr, str(aoi_file), "band_map", "'nir' names bands 1 and 4")
    assert not data.exists()


@pytest.mark.parametrize("bands", ["blue,green,red,nir,-", "blue,green,red,nir,", "Blue, GREEN,red,nir,skip"])
def test_a_skipped_band_still_reads(capsys, tmp_path, bands):
    """'-' (or an empty slot, or 'skip') leaves a band unread, e.g. a stored NDVI: the check must not refuse it."""
    from smallaoi import AOI_NAME, write_small_aoi

    aoi_dir, data = write_small_aoi(tmp_path / "aoi"), tmp_path / "data"
    code, stdout, stderr = _run(capsys, "add", AOI_NAME, str(_export(tmp_path / "in", bands=5)), "--bands", bands,
                                "--acquired", "2024-01-28T10:38:00Z", "--data", str(data), "--aoi-dir", str(aoi_dir))
    assert code == 0 and "burnscan: error" not in stderr and "export" in stdout, stderr


@pytest.mark.parametrize("value", ["2024-02-30T10:38:00Z", "yesterday"])
def test_add_names_an_unreadable_acquired_tag_and_its_value(capsys, tmp_path, value):
    """The tag is there: "no ACQUIRED tag in the file" sent the user looking for a tag they had written."""
    from smallaoi import AOI_NAME, write_small_aoi

    aoi_dir, export = write_small_aoi(tmp_path / "aoi"), _export(tmp_path / "in", ACQUIRED=value)
    code, _, stderr = _run(capsys, "add", AOI_NAME, str(export), "--bands", "blue,green,red,nir",
                           "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    line = _one_error(code, stderr, str(export), f"tag ACQUIRED is {value!r}", "cannot be read as a UTC time",
                      "2024-01-28T10:38:00Z", "--acquired")
    assert "no ACQUIRED tag" not in line


def test_detect_names_a_planet_metadata_json_that_gives_no_time(capsys, tmp_path):
    """A `[]` metadata JSON was blamed on the GeoTIFF, with the advice to put the JSON it already had beside it."""
    from factories import write_scene

    scenes = tmp_path / "scenes"
    tif = write_scene(scenes, "a", acquired=None)
    (scenes / "a_metadata.json").write_text("[]")
    code, _, stderr = _run(capsys, "-q", "detect", "ogota", "--scenes", str(scenes), "--out", str(tmp_path / "out"), "--no-figures")
    line = _one_error(code, stderr, f"{scenes / 'a_metadata.json'}: no acquisition time", "is a list, not an object",
                      "no ACQUIRED tag", "re-download")
    assert f"{tif}:" not in line


def test_detect_reads_plain_geotiffs_with_the_band_map_of_the_aoi_file(capsys, tmp_path):
    """``band_map`` in the AOI file named the bands for `add` only: `detect --scenes` with the same files found no scene."""
    from factories import PAIR_AOI, timed_geotiff_pair

    aoi_file, exports = timed_geotiff_pair(tmp_path, band_map="blue,green,red,nir")
    code, out, err = _run(capsys, "detect", PAIR_AOI, "--aoi-dir", str(aoi_file.parent), "--scenes", str(exports),
                          "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"), "--no-figures")
    assert code == 0, err
    manifest = json.loads((tmp_path / "out" / PAIR_AOI / "latest" / "manifest.json").read_text())
    assert "blue,green,red,nir" in json.dumps(manifest)  # recorded, so that a re-run reads the files the same way


def test_two_deliveries_of_one_acquisition_are_told_apart_from_two_scenes_needing_their_times(capsys, tmp_path):
    """A Planet scene's time comes from its metadata, which --acquired does not override: an edited copy registered
    beside its original was told to "give each its own acquisition time with --acquired", which changes nothing."""
    from factories import write_scene
    from smallaoi import AOI_NAME, write_small_aoi

    aoi_dir, data = write_small_aoi(tmp_path / "aoi"), tmp_path / "data"
    origin = (415699.7 - 300.0, 1527956.4 + 300.0)  # over the small AOI
    original = write_scene(tmp_path / "a", "20240128_103800_1234", origin=origin)
    copy = write_scene(tmp_path / "b", "20240128_103800_5678", origin=origin, value=3001)  # renamed, re-encoded
    code, _, err = _run(capsys, "add", AOI_NAME, str(original), "--data", str(data), "--aoi-dir", str(aoi_dir))
    assert code == 0, err
    code, _, err = _run(capsys, "add", AOI_NAME, str(copy), "--data", str(data), "--aoi-dir", str(aoi_dir))
    assert code == 4 and err.count("\n") == 1 and "two scenes at one time cannot be put in order" in err
    assert "the same acquisition delivered twice (a copy, or an edited copy): register one of them" in err
    assert "--acquired" not in err
