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


def test_a_tiff_damaged_inside_its_pixels_says_what_gdal_could_not_read(tmp_path):
    """rasterio's own words ("Read failed. See previous exception for details.") point to nothing the user sees."""
    path = _write_scene(tmp_path, "a")
    with rasterio.open(path) as src:
        profile, pixels = src.profile, src.read()
    with rasterio.open(path, "w", **{**profile, "compress": "deflate", "tiled": True, "blockxsize": 64, "blockysize": 64}) as dst:
        dst.write(pixels)
    data = bytearray(path.read_bytes())
    data[len(data) // 3:len(data) // 3 + 2000] = b"\xff" * 2000  # the header and directory intact, some tiles garbage
    path.write_bytes(bytes(data))
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "a_3B_AnalyticMS_SR.tif", "cannot be read as a raster", "band 1", "re-download or replace the file")
    assert "See previous exception" not in str(err.value)


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


@pytest.mark.parametrize("later", ["2024-01-28T10:38:00Z", "2024-01-28T10:38:00.4Z"])
def test_two_scenes_with_the_same_time(tmp_path, later):
    """The same time, or the same to the second the record keeps: a bracket of no length, whose order no record tells."""
    _write_scene(tmp_path, "a", value=3000)
    _write_scene(tmp_path, "b", acquired=later, value=3100)
    with pytest.raises(SceneError) as err:
        _load(tmp_path)
    _one_line(err, "same acquisition time", "remove the duplicate", "b_3B_AnalyticMS_SR.tif")


def test_two_scenes_a_second_apart_are_two_observations(tmp_path):
    _write_scene(tmp_path, "a", value=3000)
    _write_scene(tmp_path, "b", acquired="2024-01-28T10:38:01Z", value=3100)
    stack, records = _load(tmp_path)
    assert [r.scene_id for r in records] == ["a", "b"]


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


def _planet_tagged(folder, *, tag: str | None, metadata: str | None):
    """A Planet-style scene whose SR GeoTIFF carries ``tag`` as ACQUIRED, with ``metadata`` as its JSON (none if None)."""
    path = _write_scene(folder, "a", acquired=None)
    if tag is not None:
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(ACQUIRED=tag)
    if metadata is not None:
        (folder / "a_metadata.json").write_text(metadata)
    return path


@pytest.mark.parametrize("metadata", [None, "[]", '{"properties": {"satellite_id": "x"}}', '{"properties": {"acquired": null}}'])
def test_planet_scene_without_a_time_in_its_metadata_is_dated_by_its_tag(tmp_path, metadata):
    """Describing a scene (what `burnscan add` and `detect --scenes` do first) never read the tags, and refused
    the scene for want of a time its GeoTIFF states."""
    from datetime import datetime, timezone

    _planet_tagged(tmp_path, tag="2024-01-28T10:38:00Z", metadata=metadata)
    (source,) = recognise(tmp_path)
    assert source.describe().acquired == datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc)
    _, records = load_sources([source], GRID)
    assert records[0].acquired == datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc)


@pytest.mark.parametrize("metadata, named, needles", [
    ("[]", "a_metadata.json", ["is a list, not an object with 'acquired'", "no ACQUIRED tag", "re-download"]),
    ('{"properties": {"satellite_id": "x"}}', "a_metadata.json", ["has no 'acquired'", "no ACQUIRED tag", "re-download"]),
    (None, "a_3B_AnalyticMS_SR.tif", ["no *_metadata.json beside it", "no ACQUIRED tag", "put the scene's *_metadata.json"]),
])
def test_planet_scene_without_any_time_names_the_file_at_fault(tmp_path, metadata, named, needles):
    """A broken JSON beside the scene was blamed on the GeoTIFF, with the advice to put a JSON beside it."""
    _planet_tagged(tmp_path, tag=None, metadata=metadata)
    for step in (lambda: recognise(tmp_path)[0].describe(), lambda: _load(tmp_path)):
        with pytest.raises(SceneError) as err:
            step()
        _one_line(err, "no acquisition time", *needles)
        assert str(err.value).startswith(f"{tmp_path / named}: ")


def test_planet_scene_with_an_unreadable_tag_names_the_tag(tmp_path):
    _planet_tagged(tmp_path, tag="2024-02-30T10:38:00Z", metadata=None)
    with pytest.raises(SceneError) as err:
        recognise(tmp_path)[0].describe()
    _one_line(err, "a_3B_AnalyticMS_SR.tif (tag ACQUIRED)", "'2024-02-30T10:38:00Z'", "cannot be read as a UTC time")
