"""Loading scenes: a real PlanetScope delivery, and bad input that must fail in one clear line."""

from __future__ import annotations


import numpy as np
import pytest
import rasterio

from pipeline.errors import SceneError
from pipeline.grid import Grid
from pipeline.readers.recognise import load_sources, recognise
from pipeline.readers.rasters import sha256_file
from factories import GRID, load_scenes as _load, one_line as _one_line, write_scene as _write_scene


def test_good_scenes_load_in_time_order_with_hashes(tmp_path):
    _write_scene(tmp_path, "b", acquired="2024-01-28T10:38:00Z", value=2000)
    _write_scene(tmp_path, "a", acquired="2024-01-27T10:38:00Z", value=3000)
    stack, records = _load(tmp_path)
    assert [r.scene_id for r in records] == ["a", "b"]
    assert stack.reflectance.shape == (2, 4) + GRID.shape
    assert float(stack.reflectance[0, 3, 50, 50]) == pytest.approx(0.3)
    assert records[0].sha256["reflectance"] == sha256_file(tmp_path / "a_3B_AnalyticMS_SR.tif")
    assert bool(stack.clear.all())


def test_not_a_raster(tmp_path):
    _write_scene(tmp_path, "a")
    (tmp_path / "a_3B_AnalyticMS_SR.tif").write_text("this is not a GeoTIFF")
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_AnalyticMS_SR.tif", "cannot be read")


def test_truncated_tiff(tmp_path):
    path = _write_scene(tmp_path, "a")
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_AnalyticMS_SR.tif")


def test_missing_nir_band(tmp_path):
    _write_scene(tmp_path, "a", bands=3)
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_AnalyticMS_SR.tif", "3 bands")


def test_scene_outside_the_aoi(tmp_path):
    _write_scene(tmp_path, "a", origin=(600000.0, 1600000.0))
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "does not overlap the AOI")


def test_scene_without_crs(tmp_path):
    _write_scene(tmp_path, "a", crs=None)
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "no CRS")


def test_scene_without_acquisition_time(tmp_path):
    _write_scene(tmp_path, "a", acquired=None)
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "no acquisition time", "metadata")


def test_two_scenes_with_the_same_time(tmp_path):
    _write_scene(tmp_path, "a")
    _write_scene(tmp_path, "b")
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "same acquisition time", "remove the duplicate")


def test_empty_folder(tmp_path):
    with pytest.raises(SceneError) as err:
        recognise(tmp_path)
    _one_line(err, "no scene recognised")


def test_real_planetscope_delivery_loads(shared_data):
    """A real PS2 4-band SR clip with its legacy UDM and metadata (Deering, Alaska, 2016-09-09)."""
    folder = shared_data / "real" / "planetscope-deering-alaska"
    before = {p.name: sha256_file(p) for p in folder.iterdir()}
    sources = recognise(folder)
    assert len(sources) == 1 and sources[0].files.udm is not None and sources[0].files.metadata is not None
    with rasterio.open(sources[0].files.reflectance) as src:
        grid = Grid(str(src.crs), src.transform, src.width, src.height)
    stack, records = load_sources(sources, grid)
    record = records[0]
    assert record.acquired_utc == "2016-09-09T21:31:04Z" and record.sensor == "PS2" and record.satellite_id == "0e19"
    assert record.bands == ("blue", "green", "red", "nir")
    nir = stack.reflectance.sel(band="nir").values[0]
    # SOURCE.md: 73.5 % of the rectangle is nodata; valid NIR median 1967 (x 10000)
    assert np.isnan(nir).mean() == pytest.approx(0.735, abs=0.01)
    assert np.nanmedian(nir) == pytest.approx(0.1967, abs=0.002)
    assert stack.clear.values[0].sum() == np.isfinite(nir).sum()
    assert {p.name: sha256_file(p) for p in folder.iterdir()} == before  # inputs never modified
