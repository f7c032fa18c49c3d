"""Garbage is never evidence, and readers never trace back.

Each test builds one hostile input: a scene whose numbers cannot be ground (saturated,
constant, negative, kilometre pixels), a time the sensor cannot have, the same bytes under
two times, a metadata field of the wrong type, a pipe or a system folder where a scene is
expected. Each must end as a scene read as not observed *with its reason*, or as one line
naming the file and the fix, never as a clear observation or a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

import pipeline
from pipeline.readers import planet, sentinel2
from pipeline.config import Params
from pipeline.errors import SceneError
from pipeline.grid import grid_for_bounds
from pipeline.run import detect_burns
from pipeline.readers.recognise import recognise
from factories import (savanna_ground as _ground, GRID, load_scenes as _load, one_line as _one_line, run_cli as _cli, write_band as _band,
                       write_landsat_folder as _landsat_folder, write_s2_item as _s2_item, write_scene as _write_scene,
                       write_square_aoi as _aoi)
from smallaoi import AOI_NAME, write_small_aoi

# The first day of the year after next: in the future, and the same on every test worker collecting at another
# second (a time to the second would give the workers different test ids, which pytest-xdist refuses).
NEXT_YEAR = datetime(datetime.now(timezone.utc).year + 2, 1, 1, tzinfo=timezone.utc)
RUN = Params(margin_m=0)


# ---------------------------------------------------------------------------------------------
# builders


def _planet(folder: Path, scene_id: str, acquired: str, reflectance: np.ndarray | None = None, *, seed: int = 0,
            dtype: str = "uint16", res: float = 3.0, metadata: dict | None = None) -> Path:
    """A Planet-style scene (SR GeoTIFF x 10000 + metadata JSON) over ``factories.GRID``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = _ground(seed) if reflectance is None else reflectance
    stored = np.clip(data * 10000, 1, 65535).astype(np.uint16) if dtype == "uint16" else (data * 10000).astype(dtype)
    path = folder / f"{scene_id}_3B_AnalyticMS_SR.tif"
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=4, dtype=dtype,
                       nodata=0 if dtype == "uint16" else None, crs="EPSG:32630",
                       transform=Affine(res, 0, 499900.0, 0, -res, 1500400.0)) as dst:
        dst.write(stored)
    doc = metadata if metadata is not None else {"properties": {"acquired": acquired, "satellite_id": "x"}}
    (folder / f"{scene_id}_metadata.json").write_text(json.dumps(doc))
    return path


def _series(folder: Path, garbage: np.ndarray | None = None, *, dtype: str = "uint16", days: int = 3) -> Path:
    """``days`` good scenes (26, 27, 28 January...) and, when given, a garbage one on 29 January."""
    for k in range(days):
        _planet(folder, f"2024012{6 + k}_103800_good", f"2024-01-2{6 + k}T10:38:00Z", seed=k + 2)
    if garbage is not None:
        _planet(folder, "20240129_103800_junk", "2024-01-29T10:38:00Z", garbage, dtype=dtype)
    return folder


def _detect(folder: Path):
    stack, records = _load(folder)
    return detect_burns(stack, records, params=RUN, loaded_grid=GRID, analysis_grid=GRID)


def _detect_savanna(capsys, tmp_path: Path, scenes: Path, *options: str) -> tuple[int, str, str]:
    """``burnscan detect`` on ``scenes`` over a 120 m AOI at the scenes' centre, with ``options``, without figures."""
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(500200.0, 1500100.0)
    aoi_dir = _aoi(tmp_path / "aoi", "savanna", lon, lat, 120.0, "Africa/Bamako")  # the scenes' centre
    return _cli(capsys, "detect", "savanna", "--scenes", str(scenes), *options, "--aoi-dir", str(aoi_dir),
                "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"), "--no-figures")


def _refused(detection, scene_id: str) -> str:
    """The reason ``scene_id`` was read as not observed (fails when it was counted)."""
    i = [r.scene_id for r in detection.all_records].index(scene_id)
    quality = detection.quality[i]
    assert quality["usable"] is False and quality["clear_fraction"] == 0.0, quality
    assert scene_id not in [r.scene_id for r in detection.records]
    return quality["unusable_reason"]


def _in_child(argv: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``argv`` in a child Python with this checkout's package: a hang fails the test instead
    of hanging the suite."""
    env = dict(os.environ, PYTHONPATH=str(Path(pipeline.__file__).resolve().parent.parent))
    try:
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} still running after {timeout} s: it blocked on its input")


def _one_error_line(err: str, *needles: str) -> None:
    """The command ended on one error line (progress lines may come before it), no traceback."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and [line for line in lines if line.startswith("burnscan: error:")] == lines[-1:], err
    for needle in needles:
        assert needle in lines[-1], lines[-1]


# ---------------------------------------------------------------------------------------------
# 1. garbage read as evidence of absence


@pytest.mark.slow
def test_saturated_scene_is_not_observed_and_the_report_says_why(tmp_path, capsys):
    scenes = _series(tmp_path / "scenes", np.full((4, 200, 200), 6.5535))  # every DN at 65535
    code, out, err = _detect_savanna(capsys, tmp_path, scenes)
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1].split("outputs: ")[1])
    report = json.loads((run / "report.json").read_text())
    junk = next(r for r in report["readings"] if r["scene_id"] == "20240129_103800_junk")
    assert junk["usable"] is False and "not usable" in junk["statement"] and "above 1.2" in junk["statement"]
    assert "no new burn marks" not in junk["statement"]
    assert "above 1.2" in (run / "report.md").read_text() and "above 1.2" in (run / "report.html").read_text()


@pytest.mark.slow
def test_constant_scene_is_not_observed(tmp_path):
    detection = _detect(_series(tmp_path, np.full((4, 200, 200), 0.3)))
    assert "constant" in _refused(detection, "20240129_103800_junk")
    assert all(q["usable"] for q, r in zip(detection.quality, detection.all_records) if "good" in r.scene_id)


@pytest.mark.slow
def test_negative_reflectance_scene_is_not_observed_but_small_offset_negatives_are(tmp_path):
    negative = _ground(9) - 0.35  # every band well below zero: a wrong offset
    detection = _detect(_series(tmp_path / "bad", negative, dtype="float32"))
    assert "below -0.05" in _refused(detection, "20240129_103800_junk")
    # Sentinel-2 and Landsat offsets leave a few small negatives on dark ground: still ground.
    dark = _ground(9)
    dark[:, :20] = -0.03
    kept = _detect(_series(tmp_path / "ok", dark, dtype="float32"))
    assert kept.quality[-1]["usable"] and kept.quality[-1]["clear_fraction"] > 0.9


@pytest.mark.slow
def test_a_scene_whose_bands_are_written_in_reverse_is_not_observed(tmp_path):
    """Its change would be read in the blue band as if it were the NIR: a wrong area, or none, with no other sign."""
    detection = _detect(_series(tmp_path, _ground(9)[::-1].copy()))
    reason = _refused(detection, "20240129_103800_junk")
    assert "nir band reads darker than its" in reason and "not in the order given" in reason
    assert all(q["usable"] for q, r in zip(detection.quality, detection.all_records) if "good" in r.scene_id)


def test_detect_names_the_file_whose_bands_are_in_another_order_and_the_fix(tmp_path, capsys):
    """A before/after pair with the after scene's red and NIR swapped: one line naming it, and --bands for a fix."""
    swapped = _ground(9)[[0, 1, 3, 2]].copy()
    scenes = _series(tmp_path / "scenes", swapped, days=1)
    code, _, err = _detect_savanna(capsys, tmp_path, scenes)
    assert code == SceneError.exit_code
    _one_error_line(err, "20240129_103800_junk_3B_AnalyticMS_SR.tif", "do not read as blue, green, red, nir",
                    "nir band reads darker than its red", "--bands")
    assert "add clear scenes" not in err  # no scene added fixes a band order
    assert not list((tmp_path / "out").glob("savanna/2*"))  # refused before a run folder was made


def test_a_reference_scene_past_the_usable_scenes_is_a_parameter_error_with_its_bound(tmp_path, capsys):
    """Known only once the scenes are judged, but a parameter all the same: its exit code, what it counts, its bound."""
    from pipeline.errors import ParameterError

    scenes = _series(tmp_path / "scenes", days=3)
    code, _, err = _detect_savanna(capsys, tmp_path, scenes, "--set", "reference_scene=99")
    assert code == ParameterError.exit_code
    _one_error_line(err, "reference_scene=99", "only 3 of the 3 scenes are usable", "at most 2")


def test_every_real_scene_reads_as_land_in_the_nir_and_one_written_in_reverse_does_not(shared_data):
    """No real scene of the shared data (burned scars included) is refused by the band-order test; the after scene
    of a real fire written in reverse is."""
    from pipeline.stages.plausibility import nir_below_visible

    s2 = shared_data / "real" / "s2-calfire-prepost" / "set_a"
    files = sorted((s2 / "pre_fire").glob("*.tif")) + sorted((s2 / "post_fire").glob("*.tif"))
    chile = sorted((shared_data / "real" / "landsat-chile-firescar").glob("Img*F_*.tif"))
    assert len(files) == 20 and len(chile) == 2
    for path in files + chile:
        with rasterio.open(path) as src:
            refl = src.read(list(range(1, 6)) if path in files else [1, 2, 3, 4, 6]).astype(np.float64)
        refl = refl / 10000 if np.nanmedian(refl) > 2 else refl
        clear = np.all(np.isfinite(refl), axis=0) & np.all(refl > 0, axis=0)
        bands = ["blue", "green", "red", "nir", "swir22"]
        assert nir_below_visible(refl, clear, bands=bands) is None, path.name
        if "post_fire" in str(path):
            assert "not in the order given" in nir_below_visible(refl[::-1], clear, bands=bands), path.name


@pytest.mark.slow
def test_impossible_pixels_are_not_observed(tmp_path):
    scenes = _series(tmp_path, days=3)
    hot = _ground(7)
    hot[:, 110:130, 110:130] = 6.5  # a saturated patch (DN 65000, 4 % of the AOI) in an otherwise good scene
    _planet(scenes, "20240129_103800_hot", "2024-01-29T10:38:00Z", hot)
    detection = _detect(scenes)
    assert detection.quality[-1]["usable"]  # the scene stays, its impossible pixels do not
    clear = detection.stack["clear"].isel(time=-1).values
    # The patch's file pixels 110:130 lie at x 500230..500290, y 1500010..1500070: inside them, 6 m in.
    x, y = detection.stack.x.values[None, :], detection.stack.y.values[:, None]
    inside = (x > 500236) & (x < 500284) & (y > 1500016) & (y < 1500064)
    assert inside.sum() > 200 and not clear[inside].any()
    assert clear[~inside].mean() > 0.9


@pytest.mark.slow
def test_kilometre_pixels_are_refused_at_read_time_and_landsat_and_sentinel2_pixels_are_not(tmp_path):
    coarse = _ground(3)[:, :2, :2]  # 2 x 2 pixels of 3 km cover the whole AOI
    _planet(tmp_path / "coarse", "20240128_103800_big", "2024-01-28T10:38:00Z", coarse, res=3000.0)
    with pytest.raises(SceneError) as err:
        _load(tmp_path / "coarse")
    _one_line(err, "20240128_103800_big_3B_AnalyticMS_SR.tif", "native pixels of 3000 m", "finer product")
    # Landsat's 30 m and Sentinel-2's 20 m on the default 3 m grid keep loading.
    for res in (30.0, 20.0):
        _planet(tmp_path / f"r{res:g}", "20240128_103800_ok", "2024-01-28T10:38:00Z", _ground(3)[:, :40, :40], res=res)
        stack, _ = _load(tmp_path / f"r{res:g}")
        assert stack["clear"].values.all()


def _rotate_about_centre(path: Path, degrees: float) -> None:
    """The same ground delivered on a grid turned by ``degrees`` about the file's centre (not north-up)."""
    from rasterio.warp import reproject

    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    centre = profile["transform"] @ (profile["width"] / 2, profile["height"] / 2)
    turned = Affine.rotation(degrees, pivot=centre) @ profile["transform"]
    out = np.zeros_like(data)
    reproject(data, out, src_transform=profile["transform"], src_crs=profile["crs"], src_nodata=0,
              dst_transform=turned, dst_crs=profile["crs"], dst_nodata=0, resampling=rasterio.enums.Resampling.cubic)
    with rasterio.open(path, "w", **{**profile, "transform": turned}) as dst:
        dst.write(out)


@pytest.mark.slow
def test_a_rotated_scene_is_measured_along_its_pixels_and_detected_on(tmp_path, capsys):
    """A geotransform turned by 6 degrees: its bounding box is 10 % wider than its pixels. The native grid
    was read from that box (3.3 m), and a 3.3 m grid did not find itself inside its own margin (floating
    point): an internal error. Now the pixel is 3 m, and the scene is warped onto the grid like any other."""
    from pipeline.readers.rasters import pixel_size_m

    scenes = _series(tmp_path / "scenes")
    turned = scenes / "20240127_103800_good_3B_AnalyticMS_SR.tif"
    _rotate_about_centre(turned, 6.0)
    assert pixel_size_m(turned) == 3.0 and pixel_size_m(scenes / "20240126_103800_good_3B_AnalyticMS_SR.tif") == 3.0
    code, out, err = _detect_savanna(capsys, tmp_path, scenes)
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1].split("outputs: ")[1])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["grid"]["resolution_m"] == 3.0
    readings = {r["scene_id"]: r for r in json.loads((run / "report.json").read_text())["readings"]}
    assert readings["20240127_103800_good"]["usable"] is True


@pytest.mark.slow
def test_a_run_of_plain_geotiffs_with_a_band_map_reruns_identically(tmp_path, capsys):
    """`detect --scenes DIR --bands MAP --time-from-name` recorded nothing of how it read its files, so its re-run
    found "no scene recognised". The manifest now keeps those options and the re-run reads the files so again;
    a GeoTIFF added to the folder since would be read too, so it is refused, named."""
    from pyproj import Transformer

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for k in range(3):
        with rasterio.open(scenes / f"export_2024012{6 + k}.tif", "w", driver="GTiff", width=200, height=200, count=4,
                           dtype="uint16", nodata=0, crs="EPSG:32630", transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
            dst.write(np.clip(_ground(k + 2) * 10000, 1, 65535).astype(np.uint16))
    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(500200.0, 1500100.0)
    aoi_dir = _aoi(tmp_path / "aoi", "savanna", lon, lat, 120.0, "Africa/Bamako")
    code, out, err = _cli(capsys, "detect", "savanna", "--scenes", str(scenes), "--bands", "blue,green,red,nir",
                          "--time-from-name", "--aoi-dir", str(aoi_dir), "--out", str(tmp_path / "out"),
                          "--data", str(tmp_path / "data"), "--no-figures")
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1].split("outputs: ")[1])
    assert json.loads((run / "manifest.json").read_text())["scene_options"] == {"bands": "blue,green,red,nir",
                                                                                "time_from_name": True}
    code, out, err = _cli(capsys, "rerun", str(run))
    assert code == 0, err
    assert "every compared output is identical" in out
    shutil.copy(scenes / "export_20240128.tif", scenes / "export_20240129.tif")
    code, _, err = _cli(capsys, "rerun", str(run))
    assert code != 0
    _one_error_line(err, str(scenes / "export_20240129.tif"), "was not an input of the run")


@pytest.mark.parametrize("res", [0.3, 3.3, 4.7, 7.7])
def test_a_grid_of_any_pixel_size_finds_itself_inside_its_margin(res):
    from pipeline.grid import Grid

    grid = grid_for_bounds((413829.9, 1529000.0, 414829.9, 1529817.3), "EPSG:32630", res)
    for margin in (1, 17, 59):
        assert grid.offset_in(grid.buffered(margin)) == (margin, margin)
    half_off = Grid(grid.crs, grid.transform @ Affine.translation(0.5, 0.0), grid.width, grid.height)
    with pytest.raises(ValueError, match="whole pixels"):
        half_off.offset_in(grid.buffered(3))


@pytest.mark.slow
def test_fewer_than_two_usable_scenes_names_the_refused_ones_and_why(tmp_path):
    _series(tmp_path, np.full((4, 200, 200), 0.3), days=1)
    stack, records = _load(tmp_path)
    with pytest.raises(SceneError) as err:
        detect_burns(stack, records, params=RUN, loaded_grid=GRID, analysis_grid=GRID)
    _one_line(err, "1 of 2 scenes", "add clear scenes", "20240129_103800_junk", "constant")


@pytest.mark.slow
def test_chunked_runs_keep_the_calibration_refusal(tmp_path):
    from pipeline.chunked import detect_chunked
    from pipeline.grid import Grid

    for k, data in enumerate((_ground(2), _ground(3), np.full((4, 200, 200), 0.3))):
        with rasterio.open(tmp_path / f"s{k}.tif", "w", driver="GTiff", width=200, height=200, count=4, dtype="uint16",
                           nodata=0, crs="EPSG:32630", transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
            dst.write(np.clip(data * 10000, 1, 65535).astype(np.uint16))
    sources = [recognise(tmp_path / f"s{k}.tif", bands="blue,green,red,nir", acquired=datetime(2024, 1, 26 + k, 10, 38))[0]
               for k in range(3)]
    grid = Grid("EPSG:32630", Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0), 200, 200)
    result = detect_chunked(sources, grid, params=Params(), chunk_px=64, halo_px=8, calibration_px=200, scheduler="sync")
    assert result.calibration.usable == (True, True, False)
    assert "constant" in result.calibration_detection.quality[2]["unusable_reason"]


# ---------------------------------------------------------------------------------------------
# 1. times the sensor cannot have


@pytest.mark.parametrize("acquired, needle", [(NEXT_YEAR.strftime("%Y-%m-%dT%H:%M:%SZ"), "in the future"),
                                              ("0001-01-01T00:00:00+05:00", "before PlanetScope existed"),
                                              ("2009-06-01T10:00:00Z", "before PlanetScope existed")])
def test_planet_time_in_the_future_or_before_the_first_dove(tmp_path, acquired, needle):
    _write_scene(tmp_path, "a", acquired=acquired)
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_metadata.json", needle, "fix the acquisition time")


@pytest.mark.parametrize("when, needle", [(NEXT_YEAR.strftime("%Y-%m-%dT%H:%M:%SZ"), "in the future"),
                                          ("2014-06-01T10:58:21Z", "before Sentinel-2B existed")])
def test_stac_item_time_in_the_future_or_before_launch(tmp_path, when, needle):
    item = _s2_item(tmp_path, baseline="02.14")
    doc = json.loads(item.read_text())
    doc["properties"]["datetime"] = when
    item.write_text(json.dumps(doc))
    with pytest.raises(SceneError) as err:
        sentinel2.find(item)
    _one_line(err, "item.json", needle)


def test_landsat_mtl_time_before_its_spacecraft_flew(tmp_path):
    mtl = {"LANDSAT_METADATA_FILE": {"IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_5", "SENSOR_ID": "TM",
                                                          "DATE_ACQUIRED": "1980-01-16", "SCENE_CENTER_TIME": "10:21:12Z"}}}
    scene = recognise(_landsat_folder(tmp_path, mtl))[0]
    with pytest.raises(SceneError) as err:
        scene.describe()
    _one_line(err, "_MTL.json", "before Landsat 5 existed", "1984-03-01")


def test_geotiff_acquired_tag_in_the_future(tmp_path):
    path = _write_scene(tmp_path, "export", acquired=None)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(ACQUIRED=NEXT_YEAR.strftime("%Y-%m-%dT%H:%M:%SZ"))
    scene = recognise(path, bands="blue,green,red,nir")[0]
    with pytest.raises(SceneError) as err:
        scene.describe()
    _one_line(err, "export_3B_AnalyticMS_SR.tif", "tag ACQUIRED", "in the future")


@pytest.mark.parametrize("acquired, needle", [(NEXT_YEAR.strftime("%Y-%m-%dT%H:%M:%SZ"), "in the future"),
                                              ("1970-05-01T00:00:00Z", "before Landsat 1 existed"),
                                              ("0001-01-01T00:00:00Z", "before Landsat 1 existed")])
def test_add_refuses_an_impossible_acquired_time(tmp_path, capsys, acquired, needle):
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    path = _write_scene(tmp_path / "in", "export", acquired=None)
    code, out, err = _cli(capsys, "add", AOI_NAME, str(path), "--bands", "blue,green,red,nir", "--acquired", acquired,
                          "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 5, err
    _one_error_line(err, "--acquired", needle)
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------------------------
# 1. the same bytes under two times


def _aoi_scene(tmp_path: Path, name: str = "export.tif") -> tuple[Path, Path]:
    """A small AOI and a textured GeoTIFF over it."""
    from pipeline.aoi import load_aoi

    aoi_dir = write_small_aoi(tmp_path / "aoi")
    grid = load_aoi(AOI_NAME, aoi_dir).analysis_grid(3.0).buffered(20)
    data = np.clip(_ground(2)[:, :grid.height, :grid.width] * 10000, 1, 65535).astype(np.uint16)
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "in" / name
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=4, dtype="uint16",
                       nodata=0, crs=grid.crs, transform=grid.transform) as dst:
        dst.write(data)
    return aoi_dir, path


@pytest.mark.slow
def test_add_refuses_one_geotiff_under_two_times(tmp_path, capsys):
    aoi_dir, path = _aoi_scene(tmp_path)
    common = ["--bands", "blue,green,red,nir", "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir)]
    code, out, err = _cli(capsys, "add", AOI_NAME, str(path), "--acquired", "2024-01-27T10:38:00Z", *common)
    assert code == 0, err
    items = sorted((tmp_path / "data" / AOI_NAME / "catalog" / "items").iterdir())
    code, out, err = _cli(capsys, "add", AOI_NAME, str(path), "--acquired", "2024-01-28T10:38:00Z", *common)
    assert code == 4
    registered = items[0].stem  # a GeoTIFF's id is its name and bytes: the same file under another time has the same id
    _one_error_line(err, "export.tif", "same bytes", registered, "2024-01-27T10:38:00Z", "2024-01-28T10:38:00Z",
                    f"burnscan scenes remove {AOI_NAME} {registered}")
    assert sorted((tmp_path / "data" / AOI_NAME / "catalog" / "items").iterdir()) == items


def test_add_refuses_a_copy_under_another_name(tmp_path, capsys):
    aoi_dir, path = _aoi_scene(tmp_path)
    shutil.copy(path, path.with_name("copy_20240128.tif"))
    common = ["--bands", "blue,green,red,nir", "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir)]
    code, out, err = _cli(capsys, "add", AOI_NAME, str(path), "--acquired", "2024-01-27T10:38:00Z", *common)
    assert code == 0, err
    registered = out.strip().removeprefix("added: ")
    code, out, err = _cli(capsys, "add", AOI_NAME, str(path.with_name("copy_20240128.tif")), "--time-from-name", *common)
    assert code == 4
    _one_error_line(err, "copy_20240128.tif", "same bytes", registered, f"burnscan scenes remove {AOI_NAME} {registered}")


def test_stacking_refuses_the_same_reflectance_bytes_twice(tmp_path):
    _series(tmp_path, days=2)
    source = tmp_path / "20240127_103800_good_3B_AnalyticMS_SR.tif"
    shutil.copy(source, tmp_path / "20240130_103800_copy_3B_AnalyticMS_SR.tif")
    (tmp_path / "20240130_103800_copy_metadata.json").write_text(json.dumps({"properties": {"acquired": "2024-01-30T10:38:00Z"}}))
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "20240130_103800_copy_3B_AnalyticMS_SR.tif", "same reflectance bytes", "20240127_103800_good", "remove the copy")


# ---------------------------------------------------------------------------------------------
# 2. mistyped fields: one line, never a traceback


def _item(tmp_path: Path, change) -> Path:
    path = _s2_item(tmp_path, baseline="05.10")
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("field, value", [("properties", ["datetime", "2024-01-28"]), ("properties", "sentinel-2b"),
                                          ("properties", None), ("assets", "B04.tif"), ("assets", ["B04.tif"])])
def test_stac_item_with_properties_or_assets_of_the_wrong_type(tmp_path, field, value):
    path = _item(tmp_path, lambda doc: doc.update({field: value}))
    with pytest.raises(SceneError) as err:
        recognise(path)
    _one_line(err, "item.json", f"field '{field}'", "re-download")


@pytest.mark.parametrize("change, needle", [
    (lambda doc: doc["assets"].update(red="B04.tif"), "assets.red"),
    (lambda doc: doc["assets"]["nir"].update(href=["B08.tif"]), "assets.nir.href"),
    (lambda doc: doc["assets"]["red"].update({"raster:bands": [{"scale": "0.0001", "offset": "minus"}]}),
     "raster:bands[0].offset"),
    (lambda doc: doc["assets"]["nir"].update({"raster:bands": [{"scale": None, "offset": -0.1}]}), "raster:bands[0].scale"),
    (lambda doc: doc["assets"]["red"].update({"raster:bands": {"scale": 0.0001}}), "assets.red.raster:bands"),
    (lambda doc: doc["properties"].update(datetime=20240128), "properties.datetime"),
    (lambda doc: doc.update(id="../../../evil"), "STAC item id '../../../evil'"),
])
def test_stac_asset_fields_of_the_wrong_type(tmp_path, change, needle):
    path = _item(tmp_path, change)
    with pytest.raises(SceneError) as err:
        sentinel2.find(path)
    _one_line(err, "item.json", needle)


@pytest.mark.parametrize("doc, needle", [
    ({"properties": "acquired=2024-01-28"}, "field 'properties'"),
    ({"properties": [["acquired", "2024-01-28T10:38:00Z"]]}, "field 'properties'"),
    ({"properties": {"acquired": 20240128}}, "field 'acquired'"),
    ({"properties": {"acquired": "2024-01-28T10:38:00Z", "sun_elevation": "high"}}, "field 'sun_elevation'"),
    ({"properties": {"acquired": "2024-01-28T10:38:00Z"}, "geometry": "POLYGON((0 0, 1 0, 1 1, 0 0))"}, "field 'geometry'"),
])
def test_planet_metadata_fields_of_the_wrong_type(tmp_path, doc, needle):
    _write_scene(tmp_path, "a", acquired=None)
    (tmp_path / "a_metadata.json").write_text(json.dumps(doc))
    with pytest.raises(SceneError) as err:
        planet.find(tmp_path)[0].describe()
    _one_line(err, "a_metadata.json", needle)


@pytest.mark.parametrize("key, value", [("REFLECTANCE_MULT_BAND_3", "2.75E-05x"), ("REFLECTANCE_ADD_BAND_4", ["-0.2"]),
                                        ("SUN_ELEVATION", "sunny")])
def test_landsat_mtl_values_that_are_not_numbers(tmp_path, key, value):
    attributes = {"SPACECRAFT_ID": "LANDSAT_5", "SENSOR_ID": "TM", "DATE_ACQUIRED": "1987-01-16", "SCENE_CENTER_TIME": "10:21:12Z"}
    mtl = {"LANDSAT_METADATA_FILE": {"IMAGE_ATTRIBUTES": attributes, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS": {key: value}}}
    scene = recognise(_landsat_folder(tmp_path, mtl))[0]
    with pytest.raises(SceneError) as err:
        scene.load(grid_for_bounds((500060, 1529640, 500540, 1529940), "EPSG:32630", 30.0))
    _one_line(err, "_MTL.json", key, "finite number")


def test_sentinel2_mtd_offset_that_is_not_a_number(tmp_path):
    for name in ("B02", "B03", "B04", "B08"):
        _band(tmp_path / f"T30PVT_20240128T105821_{name}_10m.tif", 1500, res=10, size=40)
    (tmp_path / "MTD_MSIL2A.xml").write_text(
        "<root><PRODUCT_START_TIME>2024-01-28T10:58:21.024Z</PRODUCT_START_TIME><PROCESSING_BASELINE>05.10</PROCESSING_BASELINE>"
        "<BOA_ADD_OFFSET band_id='0'>minus one thousand</BOA_ADD_OFFSET><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME></root>")
    with pytest.raises(SceneError) as err:
        recognise(tmp_path)
    _one_line(err, "MTD_MSIL2A.xml", "BOA_ADD_OFFSET", "minus one thousand")


def test_a_sentinel2_safe_product_is_read_as_one_product(tmp_path):
    """ESA's own folder: MTD_MSIL2A.xml at the product's root, the bands in GRANULE/*/IMG_DATA/R10m and R20m (SWIR and
    the scene classification are 20 m only). Its R10m folder was read alone: no SWIR, no cloud mask, no offset (the
    reflectance 0.1 too bright on a product of baseline 04.00 or later), the time taken from the file names."""
    safe = tmp_path / "S2B_MSIL2A_20240128T105821_N0510_R094_T30PVT_20240128T130000.SAFE"
    image = safe / "GRANULE" / "L2A_T30PVT_A035000_20240128T105821" / "IMG_DATA"
    (image / "R10m").mkdir(parents=True)
    (image / "R20m").mkdir()
    for name in ("B02", "B03", "B04", "B08"):
        _band(image / "R10m" / f"T30PVT_20240128T105821_{name}_10m.tif", 1500, res=10, size=40)
    for name in ("B11", "B12", "SCL"):
        _band(image / "R20m" / f"T30PVT_20240128T105821_{name}_20m.tif", 4 if name == "SCL" else 2500, res=20, size=20)
    (safe / "MTD_MSIL2A.xml").write_text(
        "<root><PRODUCT_START_TIME>2024-01-28T10:58:21.024Z</PRODUCT_START_TIME><PROCESSING_BASELINE>05.10</PROCESSING_BASELINE>"
        "<BOA_ADD_OFFSET band_id='0'>-1000</BOA_ADD_OFFSET><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME></root>")
    for given in (safe, tmp_path):  # the product itself, or the folder it was downloaded to
        scenes = recognise(given)
        assert len(scenes) == 1
        info = scenes[0].describe()
        assert set(info.bands) >= {"blue", "green", "red", "nir", "swir16", "swir22"}, info.bands
        assert info.time_source == "metadata" and info.acquired.isoformat().startswith("2024-01-28T10:58:21")
        assert info.files["swir22"].parent.name == "R20m" and info.files["red"].parent.name == "R10m"
        assert "scl" in info.files and info.files["metadata"] == safe / "MTD_MSIL2A.xml"
        record, reflectance, _ = scenes[0].load(grid_for_bounds((500000, 1529600, 500400, 1530000), "EPSG:32630", 10.0))
        red = reflectance[record.bands.index("red")]
        assert np.nanmedian(red) == pytest.approx(0.05, abs=1e-6)  # 1500 x 1e-4 - 0.1: the offset applied


def _registered(tmp_path: Path, capsys) -> tuple[Path, Path, list[str]]:
    aoi_dir, path = _aoi_scene(tmp_path)
    common = ["--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir)]
    code, _, err = _cli(capsys, "add", AOI_NAME, str(path), "--bands", "blue,green,red,nir", "--acquired", "2024-01-27T10:38:00Z",
                        *common)
    assert code == 0, err
    item = next((tmp_path / "data" / AOI_NAME / "catalog" / "items").iterdir())
    return aoi_dir, item, common


@pytest.mark.parametrize("change, needle", [
    (lambda p: p.pop("burnscan:kind"), "no burnscan:kind"),
    (lambda p: p.update({"burnscan:kind": ["geotiff"]}), "burnscan:kind"),
    (lambda p: p.update({"burnscan:sha256": "abc"}), "burnscan:sha256"),
    (lambda p: p.update({"burnscan:aoi_clear_fraction": "most"}), "burnscan:aoi_clear_fraction"),
    (lambda p: p.update({"burnscan:source": 12}), "burnscan:source"),
    (lambda p: p.update({"burnscan:options": {"acquired": 5}}), "burnscan:options"),
])
def test_catalogue_items_with_missing_or_mistyped_fields(tmp_path, capsys, change, needle):
    aoi_dir, item, common = _registered(tmp_path, capsys)
    doc = json.loads(item.read_text())
    change(doc["properties"])
    item.write_text(json.dumps(doc))
    code, out, err = _cli(capsys, "scenes", AOI_NAME, *common)
    assert code == 4
    _one_error_line(err, item.name, needle)


# ---------------------------------------------------------------------------------------------
# 3. pipes, system folders, masks without a CRS, outlines that are not outlines


@pytest.mark.slow
def test_a_pipe_named_like_a_scene_is_refused_not_waited_on(tmp_path):
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    os.mkfifo(scenes / "x_3B_AnalyticMS_SR.tif")
    (scenes / "x_metadata.json").write_text(json.dumps({"properties": {"acquired": "2024-01-28T10:38:00Z"}}))
    done = _in_child(["-m", "pipeline.cli", "detect", AOI_NAME, "--scenes", str(scenes), "--aoi-dir", str(aoi_dir),
                      "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"), "--no-figures"])
    assert done.returncode == 4
    _one_error_line(done.stderr, "x_3B_AnalyticMS_SR.tif", "named pipe", "not a regular file")


@pytest.mark.slow
def test_a_pipe_named_like_metadata_is_refused_at_add(tmp_path):
    aoi_dir, path = _aoi_scene(tmp_path, "20240128_103800_ab12_3B_AnalyticMS_SR.tif")
    os.mkfifo(path.parent / "20240128_103800_ab12_metadata.json")
    done = _in_child(["-m", "pipeline.cli", "add", AOI_NAME, str(path.parent), "--aoi-dir", str(aoi_dir),
                      "--data", str(tmp_path / "data")])
    assert done.returncode == 4
    _one_error_line(done.stderr, "20240128_103800_ab12_metadata.json", "named pipe")


@pytest.mark.slow
def test_hashing_a_pipe_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "pipe.tif")
    done = _in_child(["-c", f"from pipeline.readers.rasters import sha256_file; sha256_file({str(tmp_path / 'pipe.tif')!r})"], timeout=60)
    assert done.returncode != 0 and "SceneError" in done.stderr and "named pipe" in done.stderr


@pytest.mark.parametrize("where", ["/proc", "/sys/kernel", "/dev"])
@pytest.mark.slow
def test_system_folders_are_not_walked(tmp_path, where):
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    done = _in_child(["-m", "pipeline.cli", "detect", AOI_NAME, "--scenes", where, "--aoi-dir", str(aoi_dir),
                      "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"), "--no-figures"], timeout=60)
    assert done.returncode == 4
    _one_error_line(done.stderr, where, "/proc, /sys or /dev")


def test_a_quality_mask_without_a_crs_is_refused(tmp_path):
    _write_scene(tmp_path, "a")
    with rasterio.open(tmp_path / "a_3B_udm2.tif", "w", driver="GTiff", width=200, height=200, count=8, dtype="uint8",
                       transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:  # placed, but in no CRS
        dst.write(np.ones((8, 200, 200), np.uint8))
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_udm2.tif", "no CRS")


@pytest.mark.parametrize("placed_by", ["gcps", "rpcs"])
def test_a_scene_placed_by_control_points_or_rpcs_only_is_refused_with_the_command_that_grids_it(tmp_path, capsys, placed_by):
    """Georeferenced, but on no grid: warped without its maker's terrain model it would be placed by guesswork."""
    from rasterio.control import GroundControlPoint
    from rasterio.rpc import RPC

    path = tmp_path / "in" / "scene.tif"
    path.parent.mkdir()
    gcps = ([GroundControlPoint(row=r, col=c, x=499900.0 + 3 * c, y=1500400.0 - 3 * r) for r in (0, 200) for c in (0, 200)],
            rasterio.crs.CRS.from_epsg(32630))
    rpcs = RPC(height_off=300, height_scale=500, lat_off=13.56, lat_scale=0.05, line_den_coeff=[1] + [0] * 19,
               line_num_coeff=[0, 0, -1] + [0] * 17, line_off=100, line_scale=100, long_off=-3.0, long_scale=0.05,
               samp_den_coeff=[1] + [0] * 19, samp_num_coeff=[0, 1] + [0] * 18, samp_off=100, samp_scale=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # placed below, once open
        with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=4, dtype="uint16", nodata=0) as dst:
            dst.write(np.clip(_ground(2) * 10000, 1, 65535).astype(np.uint16))
            if placed_by == "gcps":
                dst.gcps = gcps
            else:
                dst.rpcs = rpcs
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    code, _, err = _cli(capsys, "add", AOI_NAME, str(path), "--bands", "blue,green,red,nir", "--acquired",
                        "2024-01-28T10:38Z", "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code != 0
    if placed_by == "gcps":
        _one_error_line(err, str(path), "placed by 4 ground control points", f"gdalwarp -r cubic -t_srs EPSG:32630 {path}")
    else:
        _one_error_line(err, str(path), "rational polynomial coefficients (not orthorectified)", "gdalwarp -rpc")


@pytest.mark.parametrize("crs", [None, "EPSG:32630"])
def test_a_geotiff_without_a_geotransform_is_one_line_without_rasterio_warning(tmp_path, capsys, crs):
    """rasterio warns (two lines) and hands back an identity transform: the reader refuses the file itself."""
    path = tmp_path / "in" / "plain.tif"
    path.parent.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # written unplaced on purpose
        with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=4, dtype="uint16", nodata=0, crs=crs) as dst:
            dst.write(np.clip(_ground(2) * 10000, 1, 65535).astype(np.uint16))
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    code, _, err = _cli(capsys, "add", AOI_NAME, str(path), "--bands", "blue,green,red,nir", "--acquired",
                        "2024-01-28T10:38Z", "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == SceneError.exit_code
    _one_error_line(err, str(path), "no geotransform", "georeferenced delivery")


@pytest.mark.parametrize("geometry, needle", [
    ({"type": "Polygon", "coordinates": [[[-3.79, 13.81], [-3.77, 13.83], [-3.77, 13.81], [-3.79, 13.83], [-3.79, 13.81]]]},
     "invalid polygon"),  # a bow tie
    ({"type": "Point", "coordinates": [-3.78, 13.82]}, "a Point, not a polygon"),
    ({"type": "Polygon", "coordinates": [[[500000, 1500000], [500300, 1500000], [500300, 1500300], [500000, 1500000]]]},
     "outside lon/lat bounds"),  # metres where degrees belong
])
def test_an_unusable_metadata_footprint_falls_back_to_the_raster_and_says_so(tmp_path, geometry, needle):
    _write_scene(tmp_path, "a", acquired=None)
    (tmp_path / "a_metadata.json").write_text(json.dumps({"properties": {"acquired": "2024-01-28T10:38:00Z"},
                                                          "geometry": geometry}))
    info = planet.find(tmp_path)[0].describe()
    assert info.footprint.is_valid and info.footprint.geom_type == "Polygon"
    assert info.footprint.bounds[0] == pytest.approx(-3.0, abs=0.2)  # the raster's bounds (UTM 30N, near 13.5 N)
    assert info.properties["footprint"].startswith("from the raster's bounds") and needle in info.properties["footprint"]


# Found by `make fuzz` on STAC items (mutated structure): each was a traceback.

def test_an_href_too_long_for_the_file_system_is_not_a_local_file(tmp_path):
    path = _item(tmp_path, lambda doc: doc["assets"]["nir"].update(href="x" * 5000))
    scene = sentinel2.find(path)[0]  # the band file beside the item, named after the band, is still found
    assert scene.bands["nir"].name == "B08.tif"
    path = _item(tmp_path, lambda doc: [doc["assets"]["nir"].update(href="x" * 5000), (tmp_path / "B08.tif").unlink()])
    with pytest.raises(SceneError) as err:
        sentinel2.find(path)
    _one_line(err, "item.json", "asset nir", "not on this disk")


def test_an_item_without_red_or_nir_assets_is_one_line(tmp_path):
    path = _item(tmp_path, lambda doc: [doc["assets"].pop("red"), doc["assets"].pop("nir")])
    with pytest.raises(SceneError) as err:
        recognise(path)
    _one_line(err, "item.json", "no red or nir asset", "re-download")


def _udm2(path: Path, origin: tuple[float, float]) -> None:
    """An all-clear 8-band UDM2 of 200 x 200 pixels of 3 m with its top-left corner at ``origin``."""
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=8, dtype="uint8", crs="EPSG:32630",
                       transform=Affine(3.0, 0, origin[0], 0, -3.0, origin[1])) as dst:
        dst.write(np.concatenate([np.ones((1, 200, 200), np.uint8), np.zeros((7, 200, 200), np.uint8)]))


@pytest.mark.parametrize("origin", [(599900.0, 1600400.0), (499900.0 + 300.0, 1500400.0)], ids=["far", "half"])
def test_a_quality_mask_that_does_not_cover_its_scene_is_refused(tmp_path, origin):
    """Another scene's UDM2 beside a scene read its ground as all cloud: a clear scene silently dropped."""
    _write_scene(tmp_path, "a")
    _udm2(tmp_path / "a_3B_udm2.tif", origin)
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_udm2.tif", "does not cover its scene", "use the mask delivered with the scene")


def test_a_quality_mask_on_its_scene_pixels_is_read(tmp_path):
    _write_scene(tmp_path, "a")
    _udm2(tmp_path / "a_3B_udm2.tif", (499900.0, 1500400.0))
    stack, _ = _load(tmp_path)
    assert bool(stack["clear"].values.all())


def test_detect_refuses_a_scene_beside_another_scenes_quality_mask(tmp_path, capsys):
    scenes = _series(tmp_path / "scenes")
    _udm2(scenes / "20240127_103800_good_3B_udm2.tif", (599900.0, 1600400.0))  # 100 km away
    code, _, err = _detect_savanna(capsys, tmp_path, scenes)
    assert code == SceneError.exit_code
    _one_error_line(err, "20240127_103800_good_3B_udm2.tif", "does not cover its scene", "use the mask delivered with the scene")


def _stretched(seed: int) -> np.ndarray:
    """Ground stored as a 16-bit display stretch (0-65535), read as reflectance x 10000."""
    ground = _ground(seed)
    return (ground - ground.min()) / (ground.max() - ground.min()) * 6.5535


@pytest.mark.parametrize("scale", ["16-bit stretch", "negative int16"])
def test_detect_names_the_files_stored_at_another_scale_and_the_fix(tmp_path, capsys, scale):
    """Every scene at another scale was refused as "too few clear scenes", naming scene ids, with "add clear
    scenes" for a fix: no scene added fixes a scale."""
    scenes = tmp_path / "scenes"
    for k in range(3):
        if scale == "16-bit stretch":
            _planet(scenes, f"2024012{6 + k}_103800_s", f"2024-01-2{6 + k}T10:38:00Z", _stretched(k + 2))
        else:
            _planet(scenes, f"2024012{6 + k}_103800_s", f"2024-01-2{6 + k}T10:38:00Z", _ground(k + 2) - 0.5, dtype="int16")
    code, _, err = _detect_savanna(capsys, tmp_path, scenes)
    assert code == SceneError.exit_code
    _one_error_line(err, "20240126_103800_s_3B_AnalyticMS_SR.tif", "20240128_103800_s_3B_AnalyticMS_SR.tif",
                    "not surface reflectance x 10000", "after dividing by 10000", "median",
                    "export surface reflectance x 10000, or float reflectance")
    assert "add clear scenes" not in err


def test_an_undeclared_fill_value_is_named_as_one_with_the_nodata_fix(tmp_path, capsys):
    """-9999 over half of every scene, no nodata declared: it was refused as "a wrong offset or scale"."""
    scenes = tmp_path / "scenes"
    for k in range(3):
        ground = _ground(k + 2)
        ground[:, :, :100] = -0.9999  # stored -9999
        _planet(scenes, f"2024012{6 + k}_103800_s", f"2024-01-2{6 + k}T10:38:00Z", ground, dtype="int16")
    code, _, err = _detect_savanna(capsys, tmp_path, scenes)
    assert code == SceneError.exit_code
    _one_error_line(err, "20240126_103800_s_3B_AnalyticMS_SR.tif", "read one value, -0.9999 after dividing by 10000",
                    "does not declare as nodata", "gdal_edit.py -a_nodata")


def test_percent_reflectance_is_named_as_such(tmp_path):
    from pipeline.stages.plausibility import implausible_stored

    percent = np.random.default_rng(0).uniform(5, 45, (3, 2000))
    assert "reflectance in percent (0-100)" in implausible_stored(percent, dtype="float32", bands=["green", "red", "nir"])
    assert "display rendering" in implausible_stored(percent * 5, dtype="uint16", bands=["green", "red", "nir"])


def test_a_folder_of_linked_deliveries_says_the_links_are_not_followed(small_run, tmp_path):
    """Links to folders are not walked (a loop, or a path out of the folder given); a folder that holds
    only such links must say so, not just "no scene recognised"."""
    from pipeline.errors import SceneError
    from pipeline.readers.recognise import recognise

    scenes = tmp_path / "scenes"
    (scenes / "january").mkdir(parents=True)
    os.symlink(small_run.outcome.demo_folder, scenes / "january" / "planet")
    with pytest.raises(SceneError) as refused:
        recognise(scenes)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{scenes}: no scene recognised")
    assert "1 link(s) to a folder (january/planet), which are not followed: give the linked folder itself" in message
    assert recognise(scenes / "january" / "planet")  # the linked folder itself is read
    (scenes / "january" / "planet").unlink()
    with pytest.raises(SceneError, match="; check the path$"):
        recognise(scenes)


def test_zero_fill_of_a_file_without_declared_nodata_is_not_observed_not_a_burn(tmp_path, capsys):
    """``gdalwarp`` without ``-dstnodata`` and masked exports fill with 0 and declare nothing: 0 in every band is
    no ground (darker than char), so those pixels are not observed, and only the real burn is found."""
    from factories import PAIR_AOI, PAIR_BANDS, PAIR_TIMES, write_geotiff_pair

    aoi_dir, paths = write_geotiff_pair(tmp_path)
    with rasterio.open(paths[1]) as src:
        profile, pixels = src.profile, src.read()
    pixels[:, :, :90] = 0  # the western 270 m of the AOI and its margin: fill
    profile.pop("nodata")
    with rasterio.open(paths[1], "w", **profile) as dst:
        dst.write(pixels)
    for path, when in zip(paths, PAIR_TIMES):
        code, _, err = _cli(capsys, "add", PAIR_AOI, str(path), "--bands", PAIR_BANDS, "--acquired", when,
                            "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
        assert code == 0, err
    code, out, err = _cli(capsys, "detect", PAIR_AOI, "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir),
                          "--out", str(tmp_path / "out"), "--no-figures")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / PAIR_AOI / "latest" / "report.json").read_text())
    assert report["totals"]["n_polygons"] == 1
    assert report["totals"]["area_ha"] == pytest.approx(0.36, abs=0.05)  # the 60 m square alone
    assert report["scenes"][1]["clear_fraction"] < 0.9


@pytest.mark.parametrize("acquired, needle", [("2024-08-30", "gives a date but no time of day"),
                                              ("2024-08-30T10:38", "states no time zone")])
def test_add_refuses_a_time_without_its_time_of_day_or_zone(tmp_path, capsys, acquired, needle):
    """A date alone became a midnight reported as known (the local day before, west of Greenwich); a time
    without its zone an hour guessed as UTC. Said in one line, with how to give a date alone."""
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    path = _write_scene(tmp_path / "in", "export", acquired=None)
    code, _, err = _cli(capsys, "add", AOI_NAME, str(path), "--bands", "blue,green,red,nir", "--acquired", acquired,
                        "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 5, err
    _one_error_line(err, "--acquired", needle, "2024-01-28T10:38:00Z")
    assert ("--time-from-name" in err) == (needle.startswith("gives a date"))
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("tag, needle", [("2024-08-30T10:38:00", "no time zone"), ("2024-02-30", "not ISO 8601")])
def test_a_plain_geotiff_whose_acquired_tag_lacks_its_zone_or_is_no_day_is_refused_naming_it(tmp_path, capsys, tag, needle):
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    path = _write_scene(tmp_path / "in", "export", acquired=None)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(ACQUIRED=tag)
    code, _, err = _cli(capsys, "add", AOI_NAME, str(path), "--bands", "blue,green,red,nir",
                        "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code != 0, err
    _one_error_line(err, str(path), "tag ACQUIRED", needle, "--acquired")


def test_a_plain_geotiff_whose_acquired_tag_is_a_date_alone_is_that_date_with_its_time_of_day_unknown(tmp_path, capsys):
    """An annual or monthly composite, or an export that kept only the day, says its date and no time: it is
    registered as that date, and every listing says the time of day is unknown (never a midnight)."""
    from pyproj import Transformer
    from smallaoi import LAT, LON

    aoi_dir = write_small_aoi(tmp_path / "aoi")
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32630", always_xy=True).transform(LON, LAT)
    path = _write_scene(tmp_path / "in", "export", acquired=None, origin=(round(x) - 300.0, round(y) + 300.0))
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(ACQUIRED="2024-08-30")
    code, _, err = _cli(capsys, "add", AOI_NAME, str(path), "--bands", "blue,green,red,nir",
                        "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 0, err
    code, out, err = _cli(capsys, "scenes", AOI_NAME, "--json", "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["time_of_day_known"] is False and entry["time_source"] == "metadata"
    assert "2024-08-30" in entry["acquired"] and "00:00" not in entry["acquired"]


def test_scenes_without_a_green_band_are_refused_before_the_analysis_when_figures_are_asked(tmp_path, capsys):
    """A Sentinel-2 delivery of red, NIR and SWIR alone: the figures' infrared composite needs green. The run said
    so only when the first figure was drawn, after the analysis, leaving a .partial folder."""
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    from smallaoi import LAT, LON
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32630", always_xy=True).transform(LON, LAT)
    origin = (round(x) - 1000.0, round(y) + 1000.0)
    for k, day in enumerate(("20240127", "20240129")):
        folder = tmp_path / "scenes" / day
        folder.mkdir(parents=True)
        for name, res, size in (("B04", 10, 200), ("B08", 10, 200), ("B11", 20, 100), ("B12", 20, 100)):
            texture = np.random.default_rng(k).normal(0, 150, (size, size))  # ground, not a constant fill
            _band(folder / f"T30PVT_{day}T105821_{name}_{res}m.tif", (1500 if name != "B08" else 3000) + texture, res=res,
                  size=size, origin=origin)
    args = ["detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--scenes", str(tmp_path / "scenes"), "--data", str(tmp_path / "data")]
    code, out, err = _cli(capsys, *args, "--out", str(tmp_path / "out"))
    assert code == 4 and out == ""
    _one_error_line(err, str(tmp_path / "scenes"), "no green band", "--no-figures")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.partial"))
    code, out, err = _cli(capsys, *args, "--out", str(tmp_path / "out2"), "--no-figures")
    assert code == 0, err


@pytest.mark.parametrize("crs, units_per_m", [
    ("EPSG:32630", 1.0), ("EPSG:3857", 2.0),  # Web Mercator's scale at 60 degrees north: 1 / cos 60
    ("+proj=laea +lat_0=60 +lon_0=2.9 +datum=WGS84 +units=m", 1.0),
    ("+proj=tmerc +lon_0=-3 +k=0.9996 +x_0=500000 +datum=WGS84 +units=us-ft", 1.0 / 0.3048006),
], ids=["next_utm_zone", "web_mercator", "equal_area", "us_feet"])
def test_a_20_m_pixel_stored_in_another_crs_measures_20_m(tmp_path, crs, units_per_m):
    """A 20 m pixel warped into the next UTM zone, Web Mercator (true scale at the file's latitude), an equal-area
    CRS or a CRS in US feet: the box around the file measured 21-23 m, and the grid came out coarser with a
    warning that the scenes mix native pixels. Measured along the file's own pixel at its centre: 20 m."""
    from rasterio.warp import transform as warp_points

    from pipeline.readers.rasters import pixel_size_m

    x, y = warp_points("EPSG:4326", crs, [2.9], [60.0])  # in UTM zone 31, 5.9 degrees east of zone 30's meridian
    step = 20.0 * units_per_m
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=50, height=50, count=1, dtype="uint16", crs=crs,
                       transform=Affine(step, 0, x[0] - 25 * step, 0, -step, y[0] + 25 * step)) as dst:
        dst.write(np.full((1, 50, 50), 1000, np.uint16))
    assert pixel_size_m(path) == 20.0
