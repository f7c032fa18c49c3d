"""The scene catalogue as an investigator meets it: where a scene's time comes from, one file one scene,
``burnscan scenes`` list / show / remove, and a catalogue damaged by hand.

A plain GeoTIFF's time is never guessed from its name; a date taken from a name on request says
"time of day unknown" wherever the scene's time is printed; two exports sharing a name and a date
stay two files; a scene is removed from the catalogue without touching its files, and the
catalogue stays readable whatever moment the removal is stopped at.
"""

from __future__ import annotations

import json
import os
from html import unescape
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.text
import numpy as np
import pytest
import rasterio
import xarray as xr
from pyproj import Transformer

from pipeline.aoi import load_aoi
from pipeline.model import SceneRecord
from pipeline.outputs import figures as figs
from pipeline.readers import catalogue as cat
from pipeline.readers.rasters import sha256_file
from factories import run_cli, savanna_ground, write_scene, write_square_aoi
from smallaoi import AOI_NAME, write_small_aoi

pytestmark = pytest.mark.slow  # each test registers real GeoTIFFs (a clear share measured per scene) or draws figures: over 1 s

BANDS = "blue,green,red,nir"
TIME_OF_DAY_UNKNOWN = "(time of day unknown)"  # what follows a date-only scene's date wherever it is printed


def _export(path: Path, aoi_dir: Path, seed: int, *, burned: bool = False, half: int = 10) -> Path:
    """A plain 4-band GeoTIFF export over the small AOI (no time in its tags), as shared pairs come; ``burned``: with a
    square of char ``2 half`` pixels a side (60 m) in its middle."""
    grid = load_aoi(AOI_NAME, aoi_dir).analysis_grid(3.0).buffered(20)
    ground = np.tile(savanna_ground(seed), (1, 3, 3))[:, :grid.height, :grid.width]
    if burned:
        middle = (slice(grid.height // 2 - half, grid.height // 2 + half), slice(grid.width // 2 - half, grid.width // 2 + half))
        ground[(slice(None), *middle)] = np.array([0.04, 0.04, 0.05, 0.06])[:, None, None]
    data = np.clip(ground * 10000, 1, 65535).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=4, dtype="uint16", nodata=0,
                       crs=grid.crs, transform=grid.transform) as dst:
        dst.write(data)
    return path


@pytest.fixture
def area(tmp_path):
    """``(run, aoi_dir, data)``: the small AOI, an empty data folder, and ``run(*argv)`` with both given."""
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    data = tmp_path / "elsewhere" / "d"  # not ./data: every message must follow --data

    def run(capsys, *argv: str):
        return run_cli(capsys, *argv, "--data", str(data), "--aoi-dir", str(aoi_dir))

    return run, aoi_dir, data


def _one_error_line(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("burnscan: error: "), err
    assert "Traceback" not in err and "STACError" not in err and all(n in lines[0] for n in needles), err
    return lines[0]


def test_a_geotiff_without_a_stated_time_is_refused_not_dated_from_its_name(area, capsys, tmp_path):
    run, aoi_dir, data = area
    export = _export(tmp_path / "in" / "village_20240128.tif", aoi_dir, 2)
    code, out, err = run(capsys, "add", AOI_NAME, str(export), "--bands", BANDS)
    assert code == 4 and out == ""
    _one_error_line(err, str(export), "time unknown", "--acquired 2024-01-28T10:38:00Z", "--time-from-name")
    assert not cat.catalogue_dir(data, AOI_NAME).exists() or not cat.catalogue_entries(data, AOI_NAME)


def test_a_date_from_the_name_is_asked_for_and_says_time_of_day_unknown(area, capsys, tmp_path):
    run, aoi_dir, data = area
    export = _export(tmp_path / "in" / "village_20240128.tif", aoi_dir, 2)
    code, out, err = run(capsys, "add", AOI_NAME, str(export), "--bands", BANDS, "--time-from-name")
    assert code == 0, err
    item_id = out.split("added: ")[1].strip()
    code, out, err = run(capsys, "scenes", AOI_NAME)
    assert code == 0 and f"2024-01-28 {TIME_OF_DAY_UNKNOWN}" in out and "00:00" not in out, out
    code, out, err = run(capsys, "scenes", AOI_NAME, "--json")
    listed = json.loads(out)
    assert code == 0 and [s["id"] for s in listed] == [item_id]
    assert listed[0]["time_source"] == "file-name" and listed[0]["time_of_day_known"] is False
    code, out, err = run(capsys, "scenes", "show", AOI_NAME, item_id)
    assert code == 0 and TIME_OF_DAY_UNKNOWN in out and "file name" in out and sha256_file(export) in out, out
    item = json.loads((cat.catalogue_dir(data, AOI_NAME) / "items" / f"{item_id}.json").read_text())
    assert item["properties"]["burnscan:time_source"] == "file-name" and item["properties"]["burnscan:time_of_day_known"] is False


def test_every_time_source_is_recorded(area, capsys, tmp_path):
    run, aoi_dir, data = area
    given = _export(tmp_path / "in" / "given.tif", aoi_dir, 3)
    assert run(capsys, "add", AOI_NAME, str(given), "--bands", BANDS, "--acquired", "2024-01-30T10:38Z")[0] == 0
    tagged = _export(tmp_path / "in" / "tagged.tif", aoi_dir, 4)
    with rasterio.open(tagged, "r+") as dst:
        dst.update_tags(ACQUIRED="2024-02-02T10:41:00Z")
    assert run(capsys, "add", AOI_NAME, str(tagged), "--bands", BANDS)[0] == 0
    code, out, err = run(capsys, "scenes", AOI_NAME, "--json")
    sources = {Path(s["files"]["reflectance"]).name: (s["time_source"], s["time_of_day_known"], s["acquired_utc"])
               for s in json.loads(out)}
    assert sources == {"given.tif": ("acquired-option", True, "2024-01-30T10:38:00Z"),
                       "tagged.tif": ("metadata", True, "2024-02-02T10:41:00Z")}


def test_two_exports_sharing_a_name_and_a_date_are_two_scenes(area, capsys, tmp_path):
    """CAL FIRE-style pairs: pre_fire/X_20240128.tif and post_fire/X_20240128.tif, named after the event."""
    run, aoi_dir, data = area
    pre = _export(tmp_path / "pre_fire" / "FIRE_20240128.tif", aoi_dir, 2)
    post = _export(tmp_path / "post_fire" / "FIRE_20240128.tif", aoi_dir, 3)
    code, out, err = run(capsys, "add", AOI_NAME, str(pre), str(post), "--bands", BANDS, "--time-from-name")
    line = _one_error_line(err, str(post), "--acquired")
    assert code == 4 and "already registered" not in line and "remove" not in line  # nothing was registered
    assert not cat.catalogue_dir(data, AOI_NAME).exists() or not cat.catalogue_entries(data, AOI_NAME)
    for path, when in ((pre, "2024-01-20T10:38Z"), (post, "2024-02-05T10:38Z")):
        code, out, err = run(capsys, "add", AOI_NAME, str(path), "--bands", BANDS, "--acquired", when)
        assert code == 0 and out == f"added: geotiff-FIRE_20240128-{sha256_file(path)[:12]}\n", err
    assert len(cat.catalogue_entries(data, AOI_NAME)) == 2


def test_one_file_registered_under_a_second_time_is_refused_naming_the_scene_to_remove(area, capsys, tmp_path):
    run, aoi_dir, data = area
    export = _export(tmp_path / "in" / "export.tif", aoi_dir, 2)
    code, out, _ = run(capsys, "add", AOI_NAME, str(export), "--bands", BANDS, "--acquired", "2024-01-28T10:38Z")
    item_id = out.split("added: ")[1].strip()
    for other in ("2024-01-29T10:38Z", "2024-01-28T10:38Z"):
        copy = tmp_path / "copy" / other.replace(":", "")[:13] / "export.tif"  # the same bytes under another path too
        copy.parent.mkdir(parents=True)
        copy.write_bytes(export.read_bytes())
        for path in (export, copy):
            code, out, err = run(capsys, "add", AOI_NAME, str(path), "--bands", BANDS, "--acquired", other)
            if other == "2024-01-28T10:38Z":  # the same file at the same time: the same scene, already there
                assert code == 0 and out == f"already registered: {item_id}\n", err
                continue
            assert code == 4
            _one_error_line(err, str(path), item_id, f"burnscan scenes remove {AOI_NAME} {item_id}")
    assert [e.item_id for e in cat.catalogue_entries(data, AOI_NAME)] == [item_id]


def test_a_scene_id_registered_with_other_bytes_names_the_catalogue_under_data(capsys, tmp_path):
    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(500200.0, 1500100.0)
    aoi_dir = write_square_aoi(tmp_path / "aoi", "square", lon, lat, 150.0, "Africa/Abidjan")
    data = tmp_path / "elsewhere" / "d"
    common = ["--data", str(data), "--aoi-dir", str(aoi_dir)]
    write_scene(tmp_path / "first", "20240128_103800_0a0a", value=3000)
    write_scene(tmp_path / "second", "20240128_103800_0a0a", value=3100)  # a re-delivery: same Planet id, other pixels
    assert run_cli(capsys, "add", "square", str(tmp_path / "first"), *common)[0] == 0
    code, out, err = run_cli(capsys, "add", "square", str(tmp_path / "second"), *common)
    item = cat.catalogue_dir(data, "square") / "items" / "planet-20240128_103800_0a0a.json"
    assert code == 4
    _one_error_line(err, "already registered", str(item), "burnscan scenes remove square planet-20240128_103800_0a0a")


def _two_scenes(run, capsys, aoi_dir: Path, tmp_path: Path) -> tuple[list[Path], list[str]]:
    paths, ids = [], []
    for seed, when in ((2, "2024-01-26T10:38Z"), (3, "2024-01-30T10:38Z")):
        path = _export(tmp_path / "in" / f"export_{seed}.tif", aoi_dir, seed)
        code, out, err = run(capsys, "add", AOI_NAME, str(path), "--bands", BANDS, "--acquired", when)
        assert code == 0, err
        paths.append(path)
        ids.append(out.split("added: ")[1].strip())
    return paths, ids


def test_scenes_remove_takes_one_scene_out_and_keeps_its_files(area, capsys, tmp_path):
    run, aoi_dir, data = area
    paths, ids = _two_scenes(run, capsys, aoi_dir, tmp_path)
    kept = {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths}
    code, out, err = run(capsys, "scenes", "remove", AOI_NAME, ids[0])
    assert code == 0 and ids[0] in out, err
    assert [e.item_id for e in cat.catalogue_entries(data, AOI_NAME)] == [ids[1]]
    assert not (cat.catalogue_dir(data, AOI_NAME) / "items" / f"{ids[0]}.json").exists()
    assert {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths} == kept  # inputs never touched
    code, out, err = run(capsys, "scenes", "remove", AOI_NAME, ids[0])
    assert code == 4
    _one_error_line(err, ids[0], str(cat.catalogue_dir(data, AOI_NAME)), f"burnscan scenes {AOI_NAME}")
    code, out, err = run(capsys, "scenes", "show", AOI_NAME, ids[0])
    assert code == 4
    _one_error_line(err, ids[0], f"burnscan scenes {AOI_NAME}")
    code, out, err = run(capsys, "add", AOI_NAME, str(paths[0]), "--bands", BANDS, "--acquired", "2024-01-27T10:38Z")
    assert code == 0 and out == f"added: {ids[0]}\n", err  # registered again, here under its corrected time
    assert [e.acquired.day for e in cat.catalogue_entries(data, AOI_NAME)] == [27, 30]


@pytest.mark.parametrize("stop_at", ["catalogue written", "item file deleted"])
def test_a_removal_stopped_midway_leaves_a_readable_catalogue(area, capsys, tmp_path, monkeypatch, stop_at):
    run, aoi_dir, data = area
    paths, ids = _two_scenes(run, capsys, aoi_dir, tmp_path)
    folder = cat.catalogue_dir(data, AOI_NAME)

    class Killed(BaseException):
        """Stands for the process being killed at that point."""

    if stop_at == "catalogue written":  # killed while writing catalog.json: the items were written, the catalogue not
        real = cat.LocalStacIO.write_text

        def write_text(self, dest, txt, *args, **kwargs):
            if str(dest).endswith("catalog.json"):
                raise Killed
            return real(self, dest, txt, *args, **kwargs)

        monkeypatch.setattr(cat.LocalStacIO, "write_text", write_text)
        expected = ids
    else:  # killed after the catalogue was written, before the item file was deleted
        def unlink(self, *args, **kwargs):
            raise Killed

        monkeypatch.setattr(Path, "unlink", unlink)
        expected = ids[1:]
    with pytest.raises(Killed):
        cat.remove_scene(load_aoi(AOI_NAME, aoi_dir), ids[0], data_root=data)
    monkeypatch.undo()
    assert [e.item_id for e in cat.catalogue_entries(data, AOI_NAME)] == expected
    assert len(cat.catalogue_sources(data, AOI_NAME)) == len(expected)
    code, out, err = run(capsys, "scenes", AOI_NAME)
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == expected, err
    if stop_at == "item file deleted":  # a file no catalogue lists: adding the scene again simply writes it anew
        code, out, err = run(capsys, "add", AOI_NAME, str(paths[0]), "--bands", BANDS, "--acquired", "2024-01-26T10:38Z")
        assert code == 0 and out == f"added: {ids[0]}\n", err
    assert (folder / "catalog.json").is_file()


@pytest.mark.parametrize("damage", ["deleted", "corrupted"])
def test_an_item_file_deleted_or_damaged_by_hand_is_one_line_and_removable(area, capsys, tmp_path, damage):
    run, aoi_dir, data = area
    paths, ids = _two_scenes(run, capsys, aoi_dir, tmp_path)
    item = cat.catalogue_dir(data, AOI_NAME) / "items" / f"{ids[0]}.json"
    if damage == "deleted":
        item.unlink()
    else:
        item.write_text(item.read_text()[:200])
    for argv in (("scenes", AOI_NAME), ("scenes", "show", AOI_NAME, ids[1]), ("detect", AOI_NAME, "--out", str(tmp_path / "out"))):
        code, out, err = run(capsys, *argv)
        assert code == 4, err
        _one_error_line(err, str(item), f"burnscan scenes remove {AOI_NAME} {ids[0]}")
    code, out, err = run(capsys, "scenes", "remove", AOI_NAME, ids[0])
    assert code == 0, err
    code, out, err = run(capsys, "scenes", AOI_NAME)
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ids[1:], err
    assert all(p.is_file() for p in paths)


def test_scenes_of_an_aoi_are_still_listed_the_old_way(area, capsys, tmp_path):
    run, aoi_dir, data = area
    _, ids = _two_scenes(run, capsys, aoi_dir, tmp_path)
    for argv in (("scenes", AOI_NAME), ("scenes", "list", AOI_NAME)):
        code, out, err = run(capsys, *argv)
        assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ids, err


def test_a_date_only_scene_says_so_in_report_lines_and_figure_captions():
    from pipeline.outputs.report import scene_time

    known = SceneRecord("pre", datetime(2024, 1, 20, 10, 38, tzinfo=timezone.utc), "x", "y", False, ("red",))
    dated = SceneRecord("post", datetime(2024, 1, 28, tzinfo=timezone.utc), "x", "y", False, ("red",), time_source="file-name",
                        time_of_day_known=False)
    assert scene_time(dated, "Africa/Bamako") == f"2024-01-28 {TIME_OF_DAY_UNKNOWN}"
    assert scene_time(known, "Africa/Bamako") == "2024-01-20 10:38 UTC (10:38 local, UTC+00:00)"
    # a figure's panel label and the timeline's tick labels
    scene = xr.DataArray(np.full((3, 8, 8), 0.2, np.float32), dims=("band", "y", "x"),
                         coords={"band": ["nir", "red", "green"], "y": np.arange(8.0, 0, -1), "x": np.arange(8.0)})
    before = scene.assign_attrs(acquired=known.acquired_utc, scene_id="pre")
    after = scene.assign_attrs(acquired=dated.acquired_utc, scene_id="post", time_of_day_known=False)
    pair = figs.before_after_figure(before, after, title="t", caption="c", simulated=False, tz_name="Africa/Bamako")
    timeline = figs.timeline_figure([known.acquired, dated.acquired], settlement_ha=[0, 1], other_ha=[0, 0],
                                    clear_fraction=[1, 1], usable=[True, True], title="t", caption="c", simulated=False,
                                    tz_name="Africa/Bamako", time_of_day_known=[True, False])
    for figure, unknown in ((pair, f"2024-01-28 {TIME_OF_DAY_UNKNOWN}"), (timeline, "time unknown")):
        texts = " | ".join(t.get_text() for t in figure.findobj(matplotlib.text.Text))
        assert unknown in texts and "2024-01-28 00:00" not in texts and "28 Jan 00:00" not in texts, texts


def test_a_run_on_a_date_only_scene_says_time_of_day_unknown_in_every_report(area, capsys, tmp_path):
    run, aoi_dir, data = area
    pre = _export(tmp_path / "in" / "village_20240120.tif", aoi_dir, 2)
    post = _export(tmp_path / "in" / "village_post.tif", aoi_dir, 3, burned=True)
    assert run(capsys, "add", AOI_NAME, str(pre), "--bands", BANDS, "--time-from-name")[0] == 0
    assert run(capsys, "add", AOI_NAME, str(post), "--bands", BANDS, "--acquired", "2024-01-30T10:38Z")[0] == 0
    code, out, err = run(capsys, "detect", AOI_NAME, "--out", str(tmp_path / "out"), "--no-figures")
    assert code == 0, err
    folder = Path(out.strip().splitlines()[-1].split("outputs: ")[1])
    report = json.loads((folder / "report.json").read_text())
    pre_scene = next(s for s in report["scenes"] if s["time_source"] == "file-name")
    assert pre_scene["acquired"] == f"2024-01-20 {TIME_OF_DAY_UNKNOWN}" and pre_scene["time_of_day_known"] is False
    for text in (report["summary"], report["readings"][0]["statement"], out, (folder / "report.md").read_text(),
                 (folder / "report.html").read_text()):
        assert TIME_OF_DAY_UNKNOWN in text and "2024-01-20 00:00" not in text
    # the map too: the bracket's start is that date, never a midnight nobody observed
    kml = next(folder.glob("burns*.kml")).read_text()
    assert report["totals"]["n_polygons"] > 0 and "2024-01-20T00:00" not in kml
    assert "not visible on the clear scene of 2024-01-20 (time of day unknown)" in kml
    assert "<value>2024-01-20</value>" in kml
    geojson = json.loads(next(folder.glob("burns*.geojson")).read_text())
    assert {f["properties"]["last_clear_before"] for f in geojson["features"]} == {"2024-01-20"}
    assert {f["properties"]["first_seen"] for f in geojson["features"]} == {"2024-01-30T10:38:00Z"}
    assert "2024-01-20T00:00" not in next(folder.glob("burns*.geojson")).read_text()
    with rasterio.open(next((folder / "gis").glob("first_seen*.tif"))) as src:
        tags = src.tags()
    assert tags["FIRST_SEEN_0"].startswith("2024-01-20 ") and tags["FIRST_SEEN_1"].startswith("2024-01-30T10:38:00Z ")


def test_a_landsat_mtl_without_a_scene_centre_time_is_a_date_only_scene(tmp_path):
    from pipeline.readers.recognise import recognise
    from pipeline.grid import grid_for_bounds
    from factories import write_landsat_folder

    attributes = {"SPACECRAFT_ID": "LANDSAT_5", "SENSOR_ID": "TM", "DATE_ACQUIRED": "1987-01-16"}
    for clock, known in ((None, False), ("10:21:12.5Z", True)):
        folder = tmp_path / str(known)
        scene = recognise(write_landsat_folder(folder, {"LANDSAT_METADATA_FILE": {"IMAGE_ATTRIBUTES": {
            **attributes, **({"SCENE_CENTER_TIME": clock} if clock else {})}}}))[0]
        record, _, _ = scene.load(grid_for_bounds((500060, 1529640, 500540, 1529940), "EPSG:32630", 30.0))
        assert scene.describe().time_of_day_known is known and record.time_of_day_known is known
        assert record.time_source == "metadata"


def _pair_run(area, capsys, tmp_path: Path, first: str, second: str, *, burned_first: bool = False, half: int = 10):
    """Two exports of the small AOI registered with the times ``first`` and ``second`` (``--acquired``), one of them
    burned (the second, or the first with ``burned_first``), then ``detect``: its exit code, stdout and stderr."""
    run, aoi_dir, _ = area
    plain = _export(tmp_path / "in" / "plain.tif", aoi_dir, 1)
    burned = _export(tmp_path / "in" / "burned.tif", aoi_dir, 2, burned=True, half=half)
    for path, when in zip((burned, plain) if burned_first else (plain, burned), (first, second)):
        assert run(capsys, "add", AOI_NAME, str(path), "--bands", BANDS, "--acquired", when)[0] == 0
    return run(capsys, "detect", AOI_NAME, "--out", str(tmp_path / "out"), "--no-figures")


def test_a_scene_dated_when_the_sun_was_below_the_horizon_is_refused(area, capsys, tmp_path):
    """Reflectance is sunlight: a scene "acquired" at 02:00 local is a wrong time (a local time given as UTC, most
    often), and every bracket dated from it would be wrong too. It was read, and the report dated burns by it."""
    _, aoi_dir, _ = area
    after = tmp_path / "in" / "burned.tif"
    code, out, err = _pair_run(area, capsys, tmp_path, "2024-01-27T10:38Z", "2024-01-28T02:00Z")
    assert code == 4 and not list((tmp_path / "out" / AOI_NAME).glob("2*"))
    errors = [line for line in err.splitlines() if line.startswith("burnscan: error: ")]  # after the progress lines
    assert len(errors) == 1 and "Traceback" not in err
    assert all(n in errors[0] for n in (str(after), "acquired 2024-01-28T02:00:00Z (as given with --acquired)",
                                        "below the horizon", "in UTC (not local time)")), errors
    # A simulated scene's time is the simulator's: the demo at 10:38 UTC on an AOI of one's own far to the east runs
    from pipeline.preflight import refuse_night_scenes

    night = SceneRecord(scene_id="d1", acquired=datetime(2024, 1, 28, 2, 0, tzinfo=timezone.utc), satellite_id="SIM-1",
                        sensor="PS2", simulated=True, bands=("red", "nir"))
    refuse_night_scenes([night], load_aoi(AOI_NAME, aoi_dir))


def test_a_finding_whose_every_polygon_is_low_is_headlined_as_a_lead(area, capsys, tmp_path):
    """Two four-band scenes, a burn on the second: seen once, nothing else behind it, so low. The headline stated its
    area as burned, as it did for pure noise; it now says that every polygon is low, a lead to check, not a finding."""
    code, out, err = _pair_run(area, capsys, tmp_path, "2024-01-27T10:38Z", "2024-01-28T10:38Z")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / AOI_NAME / "latest" / "report.json").read_text())
    tiers = {p["properties"]["tier"] for p in json.loads(
        next((tmp_path / "out" / AOI_NAME / "latest").glob("burns*.geojson")).read_text())["features"]}
    assert tiers == {"low"} and report["totals"]["n_polygons"] >= 1
    assert all("moved the other way" not in r["statement"] for r in report["readings"])  # in its order: not said
    assert "every one at low confidence" in report["summary"] and "a lead to check on a later clear scene, not a finding" \
        in report["summary"]
    md = (tmp_path / "out" / AOI_NAME / "latest" / "report.md").read_text()
    assert "without an NBR drop a strong darkening is also what an unflagged cloud shadow gives" in md
    # Both times were typed: the Scenes table of both pages marks them, and says what to check them against
    html = unescape((tmp_path / "out" / AOI_NAME / "latest" / "report.html").read_text())
    for page in (md, html):
        assert page.count("(given with --acquired)") == 2
        assert "The time of 2 scene(s) was given with --acquired, not read from the scene's metadata" in page


def test_a_burn_read_with_its_two_scenes_in_the_wrong_order_is_said(area, capsys, tmp_path):
    """Dates given the wrong way round turn a burn into ground that healed: 0.00 ha burned and no word of it, because
    the note on change against a burn waited for a tenth of the AOI. A patch of over a hectare, more than was found
    burned, is now said; the same pair in its order is not."""
    code, out, err = _pair_run(area, capsys, tmp_path, "2024-01-27T10:38Z", "2024-01-28T10:38Z", burned_first=True,
                               half=25)  # 150 m: 2.25 ha of char, on the first scene
    assert code == 0, err
    report = json.loads((tmp_path / "out" / AOI_NAME / "latest" / "report.json").read_text())
    assert report["totals"]["n_polygons"] == 0
    said = report["readings"][-1]["statement"]
    assert "moved the other way from a burn" in said and "the two scenes in the wrong order (check their times)" in said
    assert 2.0 <= report["scenes"][-1]["against_burn_patch_ha"] <= 2.6
