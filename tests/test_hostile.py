"""Hostile and broken scene files: one clear line naming the file, or a scene read honestly as unobserved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from pipeline.errors import PipelineError, SceneError
from factories import load_scenes as _load, one_line as _one_line, write_scene as _write_scene

ORIGIN = Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)


def _float_scene(folder: Path, data: np.ndarray, crs=CRS.from_epsg(32630), transform=ORIGIN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "a_3B_AnalyticMS_SR.tif"
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=str(data.dtype), crs=crs, transform=transform) as dst:
        dst.write(data)
    (folder / "a_metadata.json").write_text(json.dumps({"properties": {"acquired": "2024-01-28T10:38:00Z"}}))
    return path


def test_zero_byte_raster(tmp_path):
    _write_scene(tmp_path, "a").write_bytes(b"")
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_AnalyticMS_SR.tif", "cannot be read")


def test_header_claiming_absurd_dimensions_is_refused_before_reading(tmp_path):
    path = _write_scene(tmp_path, "a")
    # A sparse tiled GeoTIFF of 250000 x 250000 pixels: about a megabyte on disk, 500 GB if decoded.
    with rasterio.open(path, "w", driver="GTiff", width=250_000, height=250_000, count=4, dtype="uint16", nodata=0,
                       crs="EPSG:32630", transform=ORIGIN, tiled=True, blockxsize=1024, blockysize=1024, sparse_ok=True):
        pass
    assert path.stat().st_size < 10_000_000
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_AnalyticMS_SR.tif", "250000 x 250000", "replace the file")


@pytest.mark.slow
def test_nan_and_inf_pixels_are_not_observed(tmp_path):
    data = np.full((4, 200, 200), 3000.0, np.float32)
    data[:, :, :50] = np.nan
    data[:, :, 50:100] = np.inf
    _float_scene(tmp_path, data)
    stack, _ = _load(tmp_path)
    refl, clear = stack["reflectance"].values[0], stack["clear"].values[0]
    assert np.isfinite(refl[:, clear]).all()  # nothing non-finite is called clear
    assert not np.isinf(refl).any()
    assert 0 < clear.mean() < 1 and np.allclose(refl[:, clear], 0.3)


def test_all_nodata_scenes_end_in_one_line_asking_for_clear_scenes(tmp_path):
    from pipeline.config import Params
    from pipeline.run import detect_burns
    from factories import GRID

    for k, day in enumerate(("27", "28")):
        _write_scene(tmp_path, f"s{k}", value=0, acquired=f"2024-01-{day}T10:38:00Z")
    stack, records = _load(tmp_path)
    assert not stack["clear"].values.any()
    with pytest.raises(SceneError) as err:
        detect_burns(stack, records, params=Params(margin_m=0), loaded_grid=GRID, analysis_grid=GRID)
    _one_line(err, "0 of 2 scenes", "add clear scenes")


def test_crs_that_cannot_be_projected(tmp_path):
    local = CRS.from_wkt('LOCAL_CS["site grid",LOCAL_DATUM["x",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]')
    _float_scene(tmp_path, np.full((4, 50, 50), 3000, np.uint16), crs=local)
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_AnalyticMS_SR.tif", "cannot be projected", "reproject", "a local CRS", "cannot be placed on the Earth")
    assert len(str(err.value)) < 400


LOCAL = CRS.from_wkt('LOCAL_CS["x",UNIT["metre",1],AXIS["E",EAST],AXIS["N",NORTH]]')


@pytest.mark.parametrize("reader", ["file_footprint", "pixel_size_m", "native_grid"])
def test_a_local_crs_is_named_as_such_by_every_reader_that_places_a_file(tmp_path, reader):
    """Found by an outside audit: these said "cannot be read as a raster ...; re-download", the wrong problem and fix."""
    from pipeline.readers import rasters

    path = _float_scene(tmp_path, np.full((4, 50, 50), 3000, np.uint16), crs=LOCAL)
    with pytest.raises(SceneError) as err:
        getattr(rasters, reader)(path)
    _one_line(err, str(path), "a local CRS", "cannot be placed on the Earth", "georeference", "reproject")
    assert "re-download" not in str(err.value)


def test_detect_on_a_scene_in_a_local_crs_says_so_in_one_line(tmp_path, capsys):
    from factories import run_cli
    from smallaoi import AOI_NAME, write_small_aoi

    path = _float_scene(tmp_path / "scenes", np.full((4, 50, 50), 3000, np.uint16), crs=LOCAL)
    code, out, err = run_cli(capsys, "detect", AOI_NAME, "--scenes", tmp_path / "scenes", "--aoi-dir", write_small_aoi(tmp_path / "aoi"),
                             "--out", tmp_path / "out", "--data", tmp_path / "data", "--no-figures")
    errors = [line for line in err.splitlines() if line.startswith("burnscan: error:")]
    assert code == 4 and "Traceback" not in err and errors == err.strip().splitlines()[-1:], err
    assert str(path) in errors[0] and "a local CRS" in errors[0] and "georeference" in errors[0]


def test_a_south_up_scene_loads_as_its_north_up_original(tmp_path):
    """Found by an outside audit: a south-up scene covering the AOI was refused as not overlapping it."""
    data = np.random.default_rng(7).integers(1, 9000, (4, 200, 200)).astype(np.uint16)
    _float_scene(tmp_path / "north", data)
    _float_scene(tmp_path / "south", data[:, ::-1, :], transform=Affine(3.0, 0, 499900.0, 0, 3.0, 1500400.0 - 600.0))
    north, _ = _load(tmp_path / "north")
    south, _ = _load(tmp_path / "south")
    np.testing.assert_array_equal(south["reflectance"].values, north["reflectance"].values)
    np.testing.assert_array_equal(south["clear"].values, north["clear"].values)


@pytest.mark.parametrize("text, needle", [
    ('{"properties": {"acq', "not valid JSON"),
    ("[1, 2, 3]", "no acquisition time"),
    ('{"properties": {"acquired": "yesterday"}}', "not ISO 8601"),
    ('\xff\xfe not utf-8', "not valid JSON"),
    ("[" * 100_000, "nested too deeply"),  # found by make fuzz: the parser's recursion limit
])
def test_malformed_metadata(tmp_path, text, needle):
    _write_scene(tmp_path, "a")
    (tmp_path / "a_metadata.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, needle)


def test_enormous_metadata_is_refused_without_parsing(tmp_path):
    _write_scene(tmp_path, "a")
    with open(tmp_path / "a_metadata.json", "w") as handle:
        handle.write('{"properties": {"acquired": "2024-01-28T10:38:00Z", "pad": "')
        handle.seek(50_000_000)
        handle.write('"}}')
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_metadata.json", "50 MB")


def test_library_messages_are_kept_to_one_line():
    assert str(SceneError("x.tif: bad (PROJ said\nthis\n\tand that); fix it")) == "x.tif: bad (PROJ said this and that); fix it"
    assert isinstance(SceneError("x"), OSError) and isinstance(SceneError("x"), PipelineError)


def test_inputs_are_never_modified(tmp_path):
    for k, day in enumerate(("27", "28")):
        _write_scene(tmp_path, f"s{k}", acquired=f"2024-01-{day}T10:38:00Z")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    _load(tmp_path)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before


def test_quality_mask_in_a_crs_that_cannot_be_projected(tmp_path):
    """Found by ``make fuzz``: a UDM2 whose CRS was damaged raised a raw GDAL error."""
    _write_scene(tmp_path, "a")
    local = CRS.from_wkt('LOCAL_CS["site grid",LOCAL_DATUM["x",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]')
    with rasterio.open(tmp_path / "a_3B_udm2.tif", "w", driver="GTiff", width=200, height=200, count=8, dtype="uint8",
                       crs=local, transform=ORIGIN) as dst:
        dst.write(np.ones((8, 200, 200), np.uint8))
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_udm2.tif", "quality mask cannot be read", "re-download")
    assert len(str(err.value)) < 300


def test_output_folder_that_cannot_be_written_fails_before_any_work(tmp_path, capsys):
    from pipeline.cli import main
    from smallaoi import AOI_NAME, write_small_aoi

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    code = main(["detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--out", str(blocker / "out"), "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 6 and err.count("\n") == 1 and "not-a-folder" in err and "writable --out" in err
    assert not (tmp_path / "data").exists()  # refused before the demo scenes were even made
    assert blocker.read_text() == "a file where the output folder should be"
