"""What the report counts and says: two scenes needed, review in the totals, marks that came and went, a mailable page.

A report is read by people who never see the code: its headline must count what the analysts
kept, say what it set aside and why, and say plainly when there was nothing to compare.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from matplotlib import image as mpimg
from pyproj import Transformer

from pipeline.config import Params
from pipeline.errors import SceneError
from pipeline.grid import grid_for_bounds
from pipeline.run import detect_burns
from pipeline.stages.change import consecutive_change
from pipeline.stages.dating import date_burns
from pipeline.stages.polygons import burn_polygons
from factories import GRID, load_scenes, one_line, run_cli, savanna_ground, write_square_aoi
from smallaoi import AOI_NAME

# ---------------------------------------------------------------------------------------------
# builders: a village AOI over Planet-style scenes with two burns and a shadow that comes and goes

VILLAGE = "honesty"
DAYS = ("2024-01-26", "2024-01-28", "2024-01-31", "2024-02-01")
# The AOI is the scene's pixels 60..140 both ways.
SHADOW = (slice(70, 90), slice(70, 90))  # 60 m x 60 m, dark on 28 January only
CHAR_A = (slice(105, 125), slice(80, 100))  # burned on 28 January, stays
CHAR_B = (slice(70, 90), slice(105, 125))  # burned on 28 January, stays


def _planet(folder: Path, scene_id: str, acquired: str, reflectance: np.ndarray) -> None:
    """A Planet-style scene (SR GeoTIFF x 10000 + metadata JSON), 600 m square around (500200, 1500100) UTM 30N."""
    with rasterio.open(folder / f"{scene_id}_3B_AnalyticMS_SR.tif", "w", driver="GTiff", width=200, height=200, count=4,
                       dtype="uint16", nodata=0, crs="EPSG:32630", transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
        dst.write(np.clip(reflectance * 10000, 1, 65535).astype(np.uint16))
    (folder / f"{scene_id}_metadata.json").write_text(json.dumps({"properties": {"acquired": acquired, "satellite_id": "x"}}))


def _village(root: Path) -> tuple[Path, Path]:
    """``(aoi_dir, scenes)``: the AOI file and four scenes; on the second, two burns (which stay) and an unflagged shadow
    (gone on the third)."""
    scenes = root / "scenes"
    scenes.mkdir(parents=True)
    for t, day in enumerate(DAYS):
        ground = savanna_ground(t + 2)
        if t >= 1:
            for char in (CHAR_A, CHAR_B):
                ground[:, char[0], char[1]] = np.array([0.04, 0.05, 0.06, 0.05])[:, None, None]
        if t == 1:
            ground[:, SHADOW[0], SHADOW[1]] *= 0.3
        _planet(scenes, f"{day.replace('-', '')}_103800_v{t}", f"{day}T10:38:00Z", ground)
    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(500200.0, 1500100.0)
    return write_square_aoi(root / "aoi", VILLAGE, lon, lat, 120.0, "Africa/Bamako"), scenes


def _detect(capsys, root: Path, aoi_dir: Path, scenes: Path) -> Path:
    code, out, err = run_cli(capsys, "detect", VILLAGE, "--scenes", str(scenes), "--aoi-dir", str(aoi_dir), "--out",
                             str(root / "out"), "--data", str(root / "data"), "--set", "margin_m=60", "--no-figures")
    assert code == 0, err
    return Path(out.strip().splitlines()[-1].split("outputs: ")[1])


@pytest.fixture(scope="module")
def village(tmp_path_factory):
    root = tmp_path_factory.mktemp("honesty")
    aoi_dir, scenes = _village(root)
    return root, aoi_dir, scenes


# ---------------------------------------------------------------------------------------------
# one usable scene is no result, and the message says so


@pytest.mark.slow
def test_one_registered_scene_is_told_that_two_clear_scenes_are_needed_and_what_to_add(small_run, tmp_path, capsys):
    demo = next(p for p in small_run.data_root.rglob("*_3B_AnalyticMS_SR_SIMULATED.tif")).parent
    scene_id = "20240126_103800_sim_d0"
    delivery = tmp_path / "delivery"
    delivery.mkdir()
    for path in demo.glob(f"{scene_id}_*"):
        shutil.copy(path, delivery / path.name)
    data = tmp_path / "data"
    code, _, err = run_cli(capsys, "add", AOI_NAME, str(delivery), "--data", str(data), "--aoi-dir", str(small_run.aoi_dir))
    assert code == 0 and "1 registered scene(s) with at least 2% clear ground" in err and "a run needs two" in err, err
    code, out, err = run_cli(capsys, "detect", AOI_NAME, "--data", str(data), "--aoi-dir", str(small_run.aoi_dir),
                             "--out", str(tmp_path / "out"), "--no-figures")
    last = err.strip().splitlines()[-1]
    assert code == SceneError.exit_code and last.startswith("burnscan: error:") and "Traceback" not in err
    assert "two clear scenes, one before the event and one after" in last  # the need, said plainly
    assert "only 1 of 1 scenes has" in last and "nothing was analysed" in last  # never read as a success
    assert f"usable: {scene_id}" in last and "not usable: none" in last
    assert f"`burnscan add {AOI_NAME} PATH`" in last
    assert not (tmp_path / "out" / AOI_NAME).exists() or not any((tmp_path / "out" / AOI_NAME).glob("2*"))


def test_one_usable_scene_among_several_names_the_usable_one_and_why_the_others_are_not(tmp_path):
    good = savanna_ground(2)
    _planet(tmp_path, "20240126_103800_good", "2024-01-26T10:38:00Z", good)
    _planet(tmp_path, "20240127_103800_flat", "2024-01-27T10:38:00Z", np.full((4, 200, 200), 0.3))
    stack, records = load_scenes(tmp_path)
    with pytest.raises(SceneError) as err:
        detect_burns(stack, records, params=Params(margin_m=0), loaded_grid=GRID, analysis_grid=GRID)
    one_line(err, "two clear scenes", "only 1 of 2 scenes has", "usable: 20240126_103800_good of 2024-01-26T10:38:00Z",
             "not usable: 20240127_103800_flat of 2024-01-27T10:38:00Z: ", "constant", "burnscan add AOI PATH")


# ---------------------------------------------------------------------------------------------
# marks seen once and gone on the next clear scene: listed, never counted


def test_the_dating_returns_the_marks_it_set_aside_and_they_become_listed_polygons():
    from pipeline.stages.polygons import transient_polygons  # here: the rest of the module runs where it is missing

    grid = grid_for_bounds((500000, 1500000, 500300, 1500300), "EPSG:32630", 3.0)
    nir = np.full((4, 100, 100), 0.30, np.float32)
    nir[1, 10:30, 10:30] = 0.10  # unflagged cloud shadow on scene 1, gone on scene 2
    nir[1:, 50:70, 50:70] = 0.05  # char from scene 1 on: it stays
    nir += np.random.default_rng(6).normal(0, 0.004, nir.shape).astype(np.float32)
    clear = np.ones_like(nir, bool)
    times = ["2024-01-27T10:38:00Z", "2024-01-28T10:38:00Z", "2024-01-31T10:38:00Z", "2024-02-01T10:38:00Z"]
    index = xr.DataArray(nir, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    clear_da = xr.DataArray(clear, dims=("time", "y", "x"))
    dates, _ = date_burns(consecutive_change(index, clear_da), index=index, clear=clear_da, post_nir=index, params=Params(),
                          pixel_area_m2=9.0)
    seen = dates["transient_seen"].values
    assert (seen[10:30, 10:30] == 1).mean() > 0.9 and (seen[50:70, 50:70] == -1).all() and (seen[80:, :] == -1).all()
    assert (dates["transient_gone"].values[seen == 1] == 2).all()
    assert not (dates["first_seen"].values[seen >= 0] >= 0).any()  # set aside, never dated as a burn
    marks = transient_polygons(dates, grid=grid, times=times)
    assert len(marks) == 1
    mark = marks.iloc[0]
    assert (mark.seen, mark.gone_on, mark.seen_index, mark.gone_index) == (times[1], times[2], 1, 2)
    assert mark.area_m2 == pytest.approx(400 * 9.0, rel=0.1)  # the 20 x 20 pixel shadow
    assert -3.1 < mark.lon < -2.9 and 13.5 < mark.lat < 13.6 and mark.transient_id.startswith("T20240128-")
    assert list(burn_polygons(dates, grid=grid, times=times, index_name="nir").first_seen_index) == [1]


@pytest.mark.slow
def test_a_shadow_seen_once_is_listed_in_its_own_section_and_not_counted(village, capsys):
    root, aoi_dir, scenes = village
    run = _detect(capsys, root, aoi_dir, scenes)
    report = json.loads((run / "report.json").read_text())
    gone = report["transients"]
    assert gone["n_marks"] == 1 and gone["area_ha"] == pytest.approx(0.36, rel=0.15)
    mark = gone["marks"][0]
    assert (mark["seen_utc"][:10], mark["gone_utc"][:10]) == ("2024-01-28", "2024-01-31")
    assert mark["seen_scene"] == "20240128_103800_v1" and mark["gone_scene"] == "20240131_103800_v2"
    assert -3.0 < mark["lon"] < -2.9 and 13.5 < mark["lat"] < 13.6
    burns = report["totals"]
    assert burns["n_polygons"] == 2 and burns["area_ha"] == pytest.approx(0.72, rel=0.15)  # the two burns alone
    assert "1 mark(s) (0.36 ha) seen once and gone on the next clear scene are listed apart, not counted" in report["summary"]
    md = (run / "report.md").read_text()
    section = md.split("## Seen once, gone on the next clear scene (not counted)")[1].split("\n## ")[0]
    assert mark["transient_id"] in section and "2024-01-28" in section and "20240131_103800_v2" in section
    assert f"{mark['lon']:.6f}" in section and f"{mark['lat']:.6f}" in section
    html = (run / "report.html").read_text()
    assert 'id="seen-once-gone-on-the-next-clear-scene-not-counted"' in html and mark["transient_id"] in html


# ---------------------------------------------------------------------------------------------
# analysts' rejections in every total


@pytest.mark.slow
def test_a_rejected_polygon_leaves_every_headline_total_and_is_said_apart(village, capsys):
    root, aoi_dir, scenes = village
    first = _detect(capsys, root, aoi_dir, scenes)
    polygons = json.loads((first / "report.json").read_text())
    assert polygons["totals"]["n_polygons"] == 2
    burns = json.loads(next(first.glob("burns*.geojson")).read_text())["features"]
    target = burns[0]["properties"]
    code, _, err = run_cli(capsys, "review", VILLAGE, target["polygon_id"], "--reject", "roof, not char", "--by", "A. Analyst",
                           "--run", str(first), "--out", str(root / "out"), "--data", str(root / "data"))
    assert code == 0, err
    again = _detect(capsys, root, aoi_dir, scenes)
    report = json.loads((again / "report.json").read_text())
    totals, before = report["totals"], polygons["totals"]
    kept = before["area_ha"] - target["area_ha"]
    assert totals["n_polygons"] == 1 and totals["area_ha"] == pytest.approx(kept, abs=1e-3)
    assert totals["rejected_by_review"] == {"n_polygons": 1, "area_ha": pytest.approx(target["area_ha"], abs=1e-4)}
    day = next(d for d in totals["by_date"] if d["acquired_utc"][:10] == "2024-01-28")
    assert (day["new_polygons"], day["rejected_polygons"]) == (1, 1)
    assert day["new_area_ha"] == pytest.approx(kept, abs=1e-3)
    said = f"in 1 polygon(s) (1 rejected by review, {target['area_ha']:.2f} ha, not counted)"
    # The headline is the sum of burned fractions; the pixels called burned are said beside it.
    assert said in report["summary"] and f"{kept:.2f} ha of pixels called burned" in report["summary"]
    reading = next(r for r in report["readings"] if r["acquired_utc"][:10] == "2024-01-28")
    assert "1 burn mark(s)" in reading["statement"] and "1 more rejected by review" in reading["statement"]
    assert report["review"]["machine_output"]["n_polygons"] == 2  # the machine output itself is kept
    md, html = (again / "report.md").read_text(), (again / "report.html").read_text()
    assert said in md and said in html and reading["statement"] in md
    assert f"| {target['polygon_id']} |" in md and "rejected" in md  # still listed, marked


def test_a_burned_fraction_far_below_the_pixels_is_quoted_as_a_range_not_as_one_figure_with_its_sigma():
    """On the real wildfires of the bench the fractions summed to a median 0.43 of the perimeters' area: a light burn
    is not the char they are measured against. "2.53 ha ± 0.36 ha" alone would state a precision that is not there."""
    import geopandas as gpd

    from pipeline.outputs.report import FRACTIONS_APART, burned_fraction_total

    def total(fraction_ha: float, pixels_ha: float) -> dict:
        return burned_fraction_total(gpd.GeoDataFrame({"area_ha": [pixels_ha / 2] * 2, "burned_fraction_ha": [fraction_ha / 2] * 2,
                                                       "burned_fraction_sigma_ha": [0.18, 0.18]}))

    apart = total(2.53, 11.25)
    assert apart["area"] == "2.53 ha ± 0.36 ha to 11.25 ha" and "quote both" in apart["basis"]
    assert apart["burned_fraction_ha"] == 2.53  # the numbers themselves are kept as they are
    close = total(10.13, 10.14)
    assert close["area"] == "10.13 ha ± 0.36 ha" and close["basis"] == " (sum of burned fractions; 10.14 ha of pixels called burned)"
    edge = total(FRACTIONS_APART * 10.0, 10.0)
    assert " to " not in edge["area"]  # at the share itself: one figure


# ---------------------------------------------------------------------------------------------
# a page that can be mailed


@pytest.mark.slow
def test_report_html_has_contents_and_screen_copies_linked_to_the_print_files(small_run):
    page = small_run.run_dir / "report.html"
    html = page.read_text(encoding="utf-8")
    size_mb = page.stat().st_size / 1e6
    assert size_mb < 5, f"report.html is {size_mb:.1f} MB"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "@import" not in html and "url(" not in html
    contents = html.split('<nav class="toc">')[1].split("</nav>")[0]
    anchors = re.findall(r'href="#([^"]+)"', contents)
    assert len(anchors) >= 8 and all(f'id="{a}"' in html for a in anchors)  # every entry leads somewhere
    for entry in ("Date by date", "Polygons", "Scenes and their quality", "Parameters", "Provenance"):
        assert entry in contents
    figures = sorted(p.name for p in (page.parent / "figures").glob("*.png"))
    embedded = re.findall(r'<a href="(figures/[^"]+\.png)"><img alt="[^"]+" src="data:(image/(?:png|jpeg));base64,([^"]+)"', html)
    assert sorted(Path(name).name for name, _, _ in embedded) == figures
    for name, mime, data in embedded:
        copy = mpimg.imread(io.BytesIO(base64.b64decode(data)), format=mime.split("/")[1])
        full = mpimg.imread(page.parent / name)
        assert max(copy.shape[:2]) <= 1200 and copy.shape[0] > 200 and np.std(copy) > 0.05  # smaller, and not blank
        assert abs(copy.shape[0] / copy.shape[1] - full.shape[0] / full.shape[1]) < 0.02  # the same picture
    pdfs = sorted(p.name for p in (page.parent / "figures").glob("*.pdf"))
    assert pdfs and all(f'href="figures/{p}"' in html for p in pdfs)  # print files linked beside their copies


def test_a_bracket_across_a_scene_at_another_hour_says_why_that_scene_did_not_date_the_burn():
    # Scene 1 was taken at 07:50 UTC: the dating left to scene 2 a mark whose shadow scene 1 could not tell from
    # char, so the bracket opens at scene 0. Its statement names scene 1 and why; a bracket that opens on scene 1
    # says nothing of the kind, and neither does one from scene 1 across scenes at the usual hour (its pixels
    # under cloud on them) nor one across an unusable scene.
    from datetime import datetime, timezone

    import geopandas as gpd
    from shapely.geometry import box

    from pipeline.model import SceneRecord
    from pipeline.outputs.report import _reading

    suns = ((47.6, 140.0), (14.4, 113.8), (48.0, 139.4), (48.2, 139.0))
    records = [SceneRecord(f"s{t}", datetime(2024, 1, 26 + t, 7 if t == 1 else 10, 50 if t == 1 else 38, tzinfo=timezone.utc),
                           "x", "PSB.SD", False, ("nir",), sun_elevation=e, sun_azimuth=a) for t, (e, a) in enumerate(suns)]
    polygons = gpd.GeoDataFrame({"first_seen_index": [2, 2, 3], "last_clear_index": [0, 1, 1], "area_ha": [0.02, 0.05, 0.03],
                                 "confirmed": [True, True, True]},
                                geometry=[box(0, 0, 1, 1), box(2, 2, 3, 3), box(4, 4, 5, 5)], crs="EPSG:32630")
    clear = {"clear_fraction": 1.0, "usable": True}
    entry = _reading(2, records[2], records, polygons, clear, "UTC", [True] * 4)
    across, after = entry["statement"].split("; 1 burn mark(s), 0.05 ha")
    assert "(s0); the scene of 2024-01-27 07:50 UTC" in across and "(s1, sun 14 degrees high) between them" in across
    assert "the sun elsewhere in the sky than at both ends (s0: sun 48 degrees high)" in across
    assert "shadows could explain" in across and "sun elsewhere" not in after
    assert [b.get("other_hour_between") for b in entry["brackets"]] == [["s1"], None]
    later = _reading(3, records[3], records, polygons, clear, "UTC", [True] * 4)
    assert "sun elsewhere" not in later["statement"] and later["brackets"][0].get("other_hour_between") is None
    unusable = _reading(2, records[2], records, polygons, clear, "UTC", [True, False, True, True])
    assert "sun elsewhere" not in unusable["statement"]


def test_a_bracket_of_more_than_a_season_says_how_long_it_is_and_what_else_changes_over_it():
    # A burn not visible on a scene of a year and a half before: the bracket is honest but long, and the report says
    # so with what else changes over such a span; a bracket of days says nothing of the kind.
    from datetime import datetime, timezone

    import geopandas as gpd
    from shapely.geometry import box

    from pipeline.model import SceneRecord
    from pipeline.outputs.report import _reading

    times = (datetime(2022, 7, 1, 10, 38), datetime(2024, 1, 26, 10, 38), datetime(2024, 1, 28, 10, 38))
    records = [SceneRecord(f"s{t}", when.replace(tzinfo=timezone.utc), "x", "PSB.SD", False, ("nir",))
               for t, when in enumerate(times)]
    polygons = gpd.GeoDataFrame({"first_seen_index": [1, 2], "last_clear_index": [0, 1], "area_ha": [0.02, 0.05],
                                 "confirmed": [True, True]}, geometry=[box(0, 0, 1, 1), box(2, 2, 3, 3)], crs="EPSG:32630")
    clear = {"clear_fraction": 1.0, "usable": True}
    long = _reading(1, records[1], records, polygons, clear, "UTC", [True] * 3)
    assert "(s0); the two scenes are 1.6 years apart: the mark may have come on any day between them" in long["statement"]
    assert "clearing, building" in long["statement"] and long["brackets"][0]["days"] == 574.0
    short = _reading(2, records[2], records, polygons, clear, "UTC", [True] * 3)
    assert "apart" not in short["statement"] and short["brackets"][0]["days"] == 2.0


def test_the_headline_span_ends_on_the_last_usable_scene(tmp_path, capsys):
    """A last scene that saw nothing (constant: refused) ended the headline's "Between ... and ..." as if it had."""
    aoi_dir, scenes = _village(tmp_path)
    _planet(scenes, "20240203_103800_flat", "2024-02-03T10:38:00Z", np.full((4, 200, 200), 0.3))
    report = json.loads((_detect(capsys, tmp_path, aoi_dir, scenes) / "report.json").read_text())
    assert report["scenes"][-1]["usable"] is False
    assert report["summary"].startswith("Between 2024-01-26 10:38 UTC") and "and 2024-02-01 10:38 UTC" in report["summary"]
    assert "2024-02-03" not in report["summary"]
