"""Planet deliveries (folder, zip, XML metadata) and plain GeoTIFFs with a band map."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from pipeline.errors import SceneError
from pipeline.readers.geotiff import GeoTiffScene, parse_band_map
from pipeline.grid import grid_for_bounds
from pipeline.readers.planet import find, safe_unzip
from factories import GRID, one_line as _one_line, savanna_ground as _ground, write_scene as _write_scene

DEERING = "planetscope-deering-alaska"
DEERING_ID = "20160909_213104_0e19"


def _deering_grid():
    # 1.5 x 1.5 km inside the clipped scene (EPSG:32603), at its own 3 m
    return grid_for_bounds((599700, 7328300, 601200, 7329800), "EPSG:32603", 3.0)


def test_real_planetscope_scene_is_recognised_described_and_loaded(shared_data):
    folder = shared_data / "real" / DEERING
    scenes = find(folder)
    assert [s.scene_id for s in scenes] == [DEERING_ID]
    info = scenes[0].describe()
    assert info.acquired == datetime(2016, 9, 9, 21, 31, 4, 252895, tzinfo=timezone.utc)
    assert info.satellite_id == "0e19" and info.sensor == "PS2" and info.kind == "planet"
    assert set(info.files) == {"reflectance", "udm", "metadata"}  # the legacy UDM, as the delivery has no UDM2
    assert info.footprint.bounds[0] == pytest.approx(-163.37, abs=0.01)
    record, reflectance, clear = scenes[0].load(_deering_grid())
    assert record.bands == ("blue", "green", "red", "nir") and set(record.sha256) == set(info.files)
    assert clear.mean() > 0.5
    nir = np.nanmedian(reflectance[3][clear])
    assert 0.1 < nir < 0.3  # SOURCE.md: valid-pixel NIR median 1967 (x 10000)


def test_xml_metadata_gives_the_time_when_there_is_no_json(shared_data, tmp_path):
    source = shared_data / "real" / DEERING
    for name in (f"{DEERING_ID}_3B_AnalyticMS_SR_clip.tif", f"{DEERING_ID}_3B_AnalyticMS_metadata_clip.xml"):
        shutil.copy(source / name, tmp_path / name)
    scene = find(tmp_path)[0]
    assert scene.files.metadata is None and scene.files.metadata_xml is not None
    assert scene.describe().acquired == datetime(2016, 9, 9, 21, 31, 4, tzinfo=timezone.utc)


def _delivery_zip(tmp_path: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:
    scene_dir = tmp_path / "src"
    _write_scene(scene_dir, "20240128_103800_ab12")
    archive = tmp_path / "order_1234.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(scene_dir.iterdir()):
            zf.write(f, f"order_1234/PSScene/{f.name}")
        for info, data in extra:
            zf.writestr(info, data)
    return archive


def test_zip_delivery_is_unpacked_once_into_the_target(tmp_path):
    archive = _delivery_zip(tmp_path)
    before = archive.read_bytes()
    scenes = find(archive, extract_to=tmp_path / "deliveries")
    assert [s.scene_id for s in scenes] == ["20240128_103800_ab12"]
    folder = tmp_path / "deliveries" / "order_1234"
    assert scenes[0].files.reflectance.is_relative_to(folder)
    mtime = scenes[0].files.reflectance.stat().st_mtime_ns
    assert safe_unzip(archive, tmp_path / "deliveries") == folder  # again: the same folder, nothing rewritten
    assert scenes[0].files.reflectance.stat().st_mtime_ns == mtime
    assert archive.read_bytes() == before
    stack_record, _, clear = scenes[0].load(GRID)
    assert clear.any() and stack_record.acquired == datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc)


def _symlink_member() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("order_1234/PSScene/link.tif")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("member, needle", [
    ("../../escaped.txt", "'..'"),
    ("/tmp/burnscan-absolute.txt", "absolute path"),
    ("C:/evil.txt", "absolute path"),
    (_symlink_member(), "symbolic link"),
])
def test_hostile_zip_members_are_refused_and_nothing_is_written(tmp_path, member, needle):
    archive = _delivery_zip(tmp_path, [(member, b"/etc/passwd")])
    target = tmp_path / "deliveries"
    with pytest.raises(SceneError) as err:
        find(archive, extract_to=target)
    _one_line(err, "order_1234.zip", needle, "refusing")
    assert not target.exists() or not any(target.iterdir())
    assert not (tmp_path.parent / "escaped.txt").exists() and not Path("/tmp/burnscan-absolute.txt").exists()


@pytest.mark.slow
def test_zip_bomb_and_damaged_zip_are_refused(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.tif", b"\0" * 300_000_000)  # 300 MB of zeros deflate to ~300 kB
    with pytest.raises(SceneError) as err:
        safe_unzip(bomb, tmp_path / "out")
    _one_line(err, "bomb.zip", "zip bomb")
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(_delivery_zip(tmp_path).read_bytes()[:-200])
    with pytest.raises(SceneError) as err:
        safe_unzip(damaged, tmp_path / "out2")
    _one_line(err, "damaged.zip")
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


def test_a_zip_is_not_read_in_place(tmp_path):
    with pytest.raises(SceneError) as err:
        find(_delivery_zip(tmp_path))
    _one_line(err, "order_1234.zip", "burnscan add")


def test_band_map_and_plain_geotiff(shared_data):
    assert parse_band_map("B,G,R,NIR,-") == ["b", "g", "r", "nir", None]
    pre = shared_data / "real" / "s2-calfire-prepost" / "set_a" / "pre_fire" / "5_INCIDENT_20240715.tif"
    scene = GeoTiffScene(pre, bands=parse_band_map("blue,green,red,nir,swir22"), time_from_name=True)  # the name's date, asked for
    info = scene.describe()
    assert info.acquired == datetime(2024, 7, 15, tzinfo=timezone.utc)
    assert info.time_source == "file-name" and not info.time_of_day_known
    assert info.footprint.contains(info.footprint.centroid) and -120 < info.footprint.centroid.x < -119.5
    grid = grid_for_bounds((770000, 3960000, 771000, 3961000), "EPSG:32610", 20.0)
    lon_lat_grid = grid  # 5 INCIDENT lies in UTM 11N, not 10N: a grid there must not overlap
    with pytest.raises(SceneError) as err:
        scene.load(lon_lat_grid)
    _one_line(err, "5_INCIDENT_20240715.tif", "does not overlap")
    wrong = GeoTiffScene(pre, bands=parse_band_map("blue,green,red,nir"), time_from_name=True)
    from pipeline.readers.rasters import native_grid

    with pytest.raises(SceneError) as err:
        wrong.load(native_grid(pre, 20.0))
    _one_line(err, "5_INCIDENT_20240715.tif", "names 4 bands but the file has 5")


def test_plain_geotiff_without_a_time_asks_for_one(tmp_path):
    path = _write_scene(tmp_path, "scene")
    renamed = tmp_path / "export.tif"
    os.rename(path, renamed)
    with pytest.raises(SceneError) as err:
        GeoTiffScene(renamed, bands=["blue", "green", "red", "nir"]).describe()
    _one_line(err, "export.tif", "--acquired")


@pytest.mark.parametrize("dtype, stored, divisor", [
    ("float32", 0.3, 1.0),       # reflectance as Earth Engine or SNAP export it
    ("float32", 3000.0, 10000.0),  # reflectance times 10000, in floats
    ("uint16", 3000, 10000.0),   # the usual surface-reflectance export
])
def test_a_plain_geotiff_is_read_on_the_scale_its_values_show(tmp_path, dtype, stored, divisor):
    """A float file of reflectance divided by 10000 read as a constant fill value: every scene refused as "not ground"."""
    import rasterio
    from affine import Affine

    from pipeline.grid import Grid

    path = tmp_path / "export.tif"
    data = np.full((5, 200, 200), stored, dtype)
    data[:, :, :20] = np.nan if dtype == "float32" else 0  # no data, as such exports mark it
    data[4] = 0.5 if dtype == "float32" else 5000  # an NDVI band the band map skips
    data[4, :, :20] = np.nan if dtype == "float32" else 0
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=5, dtype=dtype, crs="EPSG:32630",
                       nodata=np.nan if dtype == "float32" else 0, transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
        dst.write(data)
    scene = GeoTiffScene(path, bands=parse_band_map("blue,green,red,nir,-"), acquired=datetime(2024, 1, 28, 10, 38))
    assert scene.divisor == divisor and scene.describe().properties["scale"] == divisor
    _, reflectance, clear = scene.load(Grid("EPSG:32630", Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0), 200, 200))  # the file's own
    assert clear.shape == (200, 200) and clear[:, 20:].all() and not clear[:, :20].any()
    assert np.allclose(reflectance[:, clear], 0.3)
    assert GeoTiffScene(path, bands=["blue", "green", "red", "nir", None], scale=100.0).divisor == 100.0  # given, not read


def _stored(kind: str, seed: int = 2) -> tuple[np.ndarray, str]:
    """A textured savanna (:func:`factories.savanna_ground`) stored as ``kind``, and its data type."""
    reflectance = _ground(seed)
    if kind == "8-bit":  # an "analytic 8-bit" or visual product: reflectance 0-0.4 stretched to 0-255
        return np.clip(reflectance / 0.4 * 255, 0, 255).astype(np.uint8), "uint8"
    if kind == "8-bit in 16":  # the same rendering saved as 16-bit
        return np.clip(reflectance / 0.4 * 255, 0, 255).astype(np.uint16), "uint16"
    if kind == "8-bit in float":
        return np.clip(reflectance / 0.4 * 255, 0, 255).astype(np.float32), "float32"
    if kind == "8-bit over 255":  # the rendering divided by 255 into floats 0-1, which read as reflectance
        return np.clip(reflectance / 0.4 * 255, 0, 255).astype(np.uint8).astype(np.float32) / 255, "float32"
    if kind == "dark":  # digital numbers at another gain (red 0.16 stored as 64), a few saturated at 4095
        stored = np.clip(reflectance * 400, 1, 4095).astype(np.uint16)
        stored[:, :2, :200:2] = 4095
        return stored, "uint16"
    if kind == "complex":  # reflectance x 10000 with a phase: the imaginary part is no band
        return (reflectance * 10000).astype(np.complex64) + 50j, "complex64"
    return np.clip(reflectance * 10000, 1, 65535).astype(np.uint16), "uint16"


def _export(path: Path, kind: str, seed: int = 2) -> Path:
    import rasterio

    data, dtype = _stored(kind, seed)
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=4, dtype=dtype, crs="EPSG:32630",
                       transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("kind, needle", [
    ("8-bit", "8-bit values (0-255): digital numbers or a display rendering"),
    ("8-bit in 16", "no value above 2"),
    ("8-bit in float", "no value above 2"),
    ("8-bit over 255", "every value a multiple of 1/255"),
    ("dark", "under 100: darker than any ground"),  # red stored at 64 (gain 400): its 99th percentile is about 83
    ("complex", "complex values (complex64)"),
])
def test_values_that_cannot_be_reflectance_are_refused_naming_the_file(tmp_path, kind, needle):
    """Read at 1/10000, an 8-bit rendering or dark digital numbers are darker than any ground and every
    scene reads clear and unburned; a complex file lost its imaginary part with a warning. Both are refused
    when the file is described (``burnscan add``) and loaded, naming the file and the export to make."""
    path = _export(tmp_path / "export.tif", kind)
    scene = GeoTiffScene(path, bands=parse_band_map("blue,green,red,nir"), acquired=datetime(2024, 1, 28, 10, 38))
    for step in (scene.describe, lambda: scene.load(GRID)):
        with pytest.raises(SceneError) as err:
            step()
        _one_line(err, "export.tif", needle, "16-bit integers (reflectance x 10000) or as floating-point reflectance")


def test_a_complex_file_on_the_grid_is_refused_before_any_cast(tmp_path):
    """A file on the grid is read, not warped: its cast to float dropped the imaginary part with a ComplexWarning."""
    from pipeline.grid import Grid
    from pipeline.readers.geotiff import load_geotiff

    path = _export(tmp_path / "export.tif", "complex")
    grid = Grid("EPSG:32630", Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0), 200, 200)
    with pytest.raises(SceneError) as err:
        load_geotiff(path, bands=["blue", "green", "red", "nir"], grid=grid, acquired=datetime(2024, 1, 28, 10, 38))
    _one_line(err, "export.tif", "complex values (complex64)")


@pytest.mark.parametrize("kind", ["16-bit", "float reflectance"])
def test_surface_reflectance_exports_still_read(tmp_path, kind):
    """The known answer back: the savanna's red band (0.16 on average) from a 16-bit or a float export."""
    import rasterio

    path = _export(tmp_path / "export.tif", "16-bit")
    if kind == "float reflectance":
        with rasterio.open(path) as src:
            profile, data = src.profile, src.read()
        path = tmp_path / "float.tif"
        with rasterio.open(path, "w", **{**profile, "dtype": "float32"}) as dst:
            dst.write(data.astype(np.float32) / 10000)
    scene = GeoTiffScene(path, bands=parse_band_map("blue,green,red,nir"), acquired=datetime(2024, 1, 28, 10, 38))
    assert scene.divisor == (10000.0 if kind == "16-bit" else 1.0)
    _, reflectance, clear = scene.load(GRID)
    assert clear.all() and abs(float(reflectance[2].mean()) - 0.16) < 0.005


@pytest.mark.parametrize("stored, scale, offset", [
    (lambda r: r * 10000 + 1000, 1e-4, -0.1),          # Sentinel-2 L2A since baseline 04.00, exported with its offset
    (lambda r: (r + 0.2) / 2.75e-5, 2.75e-5, -0.2),    # Landsat Collection 2 Level-2
    (lambda r: r * 5000, 2e-4, 0.0),                   # another gain, stated
])
def test_a_geotiff_that_states_its_scale_and_offset_is_read_with_them(tmp_path, stored, scale, offset):
    """Divided by 10000 instead, the Sentinel-2 export reads every reflectance 0.1 too bright (a fire's
    burned area fell by a quarter), and the Landsat one is refused with a fix it does not need."""
    import rasterio

    reflectance = _ground(2)
    path = tmp_path / "stated.tif"
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=4, dtype="uint16", crs="EPSG:32630",
                       transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
        dst.write(np.round(stored(reflectance)).astype(np.uint16))
        dst.scales, dst.offsets = (scale,) * 4, (offset,) * 4
    scene = GeoTiffScene(path, bands=parse_band_map("blue,green,red,nir"), acquired=datetime(2024, 1, 28, 10, 38))
    assert scene.describe().properties["stated_scale"] == [scale] * 4
    assert scene.describe().properties["stated_offset"] == [offset] * 4
    from pipeline.grid import Grid

    _, read, clear = scene.load(Grid("EPSG:32630", Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0), 200, 200))  # the file's own
    assert clear.all() and np.abs(read - reflectance).max() <= scale / 2 + 1e-6  # within the stored values' rounding


def test_a_stated_scale_that_gives_no_reflectance_is_refused_naming_it(tmp_path):
    """Tags left from another product (here reflectance x 10000 said to be reflectance plus 0.5) are named with the fix."""
    import rasterio

    path = _export(tmp_path / "export.tif", "16-bit")
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (1.0,) * 4, (0.5,) * 4
    scene = GeoTiffScene(path, bands=parse_band_map("blue,green,red,nir"), acquired=datetime(2024, 1, 28, 10, 38))
    for step in (scene.describe, lambda: scene.load(GRID)):
        with pytest.raises(SceneError) as err:
            step()
        _one_line(err, "export.tif", "states a scale of 1 and an offset of 0.5", "gdal_edit.py -scale S -offset O")


def _savanna_aoi(folder: Path) -> Path:
    """An AOI folder holding ``savanna``, 240 m square at the centre of :func:`_export`'s files."""
    from pyproj import Transformer

    from factories import write_square_aoi

    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(500200.0, 1500100.0)
    return write_square_aoi(folder, "savanna", lon, lat, 120.0, "Africa/Bamako")


@pytest.mark.parametrize("kind, needle", [("8-bit", "8-bit values (0-255): digital numbers or a display rendering"),
                                          ("complex", "complex values (complex64)")])
def test_detect_refuses_exports_that_are_not_reflectance_in_one_line(tmp_path, cli, kind, needle):
    """Three 8-bit exports ran to "0.00 ha burned" (a silent false negative), complex ones with their imaginary
    part dropped; now the command stops on one line naming the first file."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for k, day in enumerate((26, 27, 28)):
        _export(scenes / f"export_202401{day}.tif", kind, seed=k + 2)
    code, out, err = cli("-q", "detect", "savanna", "--scenes", scenes, "--bands", "blue,green,red,nir", "--time-from-name",
                         "--aoi-dir", _savanna_aoi(tmp_path / "aoi"), "--out", tmp_path / "out", "--data", tmp_path / "data",
                         "--no-figures")
    assert code != 0 and "burned" not in out
    assert len(err.splitlines()) == 1 and err.startswith("burnscan: error: "), err
    assert str(scenes / "export_20240126.tif") in err and needle in err and "16-bit integers" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("report.json"))


@pytest.mark.parametrize("kind, needle", [("16-bit", None), ("8-bit", "8-bit values (0-255)"),
                                          ("8-bit in 16", "8-bit values (0-255)"), ("complex", "complex values")])
def test_add_registers_reflectance_and_refuses_what_is_not(tmp_path, cli, kind, needle):
    """``burnscan add`` registered an 8-bit rendering that every later run then read as clear, unburned ground."""
    path = _export(tmp_path / "export.tif", kind)
    code, out, err = cli("-q", "add", "savanna", path, "--bands", "blue,green,red,nir", "--acquired", "2024-01-28T10:38:00Z",
                         "--aoi-dir", _savanna_aoi(tmp_path / "aoi"), "--data", tmp_path / "data")
    items = tmp_path / "data" / "savanna" / "catalog" / "items"
    if needle is None:
        assert code == 0 and out.startswith("added: "), err
        assert len(list(items.iterdir())) == 1
        return
    assert code != 0 and len(err.splitlines()) == 1 and err.startswith("burnscan: error: "), err
    assert str(path) in err and needle in err
    assert not items.exists() or not any(items.iterdir())


@pytest.mark.parametrize("tag, simulated", [({"SIMULATED": "yes"}, True), ({}, False)])
def test_a_simulated_scene_read_as_a_plain_geotiff_stays_simulated(tmp_path, tag, simulated):
    """The simulator tags every file it writes; read through --bands (renamed, exported), the scene is
    still labelled simulated, so its report can never read as evidence about a real place."""
    import rasterio
    from affine import Affine

    from pipeline.grid import Grid

    path = tmp_path / "export.tif"
    transform = Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)
    with rasterio.open(path, "w", driver="GTiff", width=50, height=50, count=4, dtype="uint16", crs="EPSG:32630",
                       nodata=0, transform=transform) as dst:
        dst.write(np.full((4, 50, 50), 3000, "uint16"))
        dst.update_tags(**tag)
    record, _, _ = GeoTiffScene(path, bands=["blue", "green", "red", "nir"], acquired=datetime(2024, 1, 28, 10, 38)).load(
        Grid("EPSG:32630", transform, 50, 50))
    assert record.simulated is simulated


def test_superdove_8_band_delivery_names_its_bands(tmp_path):
    _write_scene(tmp_path, "20240128_103800_24a1", bands=8)
    record, reflectance, clear = find(tmp_path)[0].load(GRID)
    assert record.bands == ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir")
    assert reflectance.shape[0] == 8 and clear.all() and np.allclose(reflectance[:, clear], 0.3)


def _tagged_export(folder: Path, **tags: str) -> Path:
    """A plain 4-band GeoTIFF whose only statement of time is ``tags``."""
    import rasterio
    from affine import Affine

    path = folder / "export.tif"
    with rasterio.open(path, "w", driver="GTiff", width=50, height=50, count=4, dtype="uint16", crs="EPSG:32630", nodata=0,
                       transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
        dst.write(np.full((4, 50, 50), 3000, "uint16"))
        dst.update_tags(**tags)
    return path


@pytest.mark.parametrize("tags, when", [
    ({"ACQUIRED": "2024-01-28T10:38:00Z"}, datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc)),
    ({"ACQUIRED": "2024-01-28T10:38:00Z", "TIFFTAG_DATETIME": "2024:03:02 16:00:00"}, datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc)),
])
def test_a_plain_geotiff_is_dated_by_its_tag(tmp_path, tags, when):
    info = GeoTiffScene(_tagged_export(tmp_path, **tags), bands=["blue", "green", "red", "nir"]).describe()
    assert info.acquired == when and info.time_source == "metadata"


def test_the_time_a_file_was_written_is_not_its_acquisition(tmp_path):
    """TIFFTAG_DATETIME is, by the TIFF standard, when the file was written, with no zone: it dated an export (a
    day or a month after the acquisition) as the scene, in UTC. It is named, with the fix if it is the acquisition's."""
    path = _tagged_export(tmp_path, TIFFTAG_DATETIME="2024:08:30 18:00:00")
    with pytest.raises(SceneError) as err:
        GeoTiffScene(path, bands=["blue", "green", "red", "nir"]).describe()
    _one_line(err, str(path), "acquisition time unknown", "TIFFTAG_DATETIME '2024:08:30 18:00:00' is when the file was written",
              "--acquired 2024-08-30T18:00:00Z")
    info = GeoTiffScene(path, bands=["blue", "green", "red", "nir"], acquired=datetime(2024, 8, 30, 18, 0, tzinfo=timezone.utc)).describe()
    assert info.acquired == datetime(2024, 8, 30, 18, 0, tzinfo=timezone.utc) and info.time_source == "acquired-option"


@pytest.mark.parametrize("tags, key, value", [
    ({"ACQUIRED": "2024-02-30T10:38:00Z"}, "ACQUIRED", "2024-02-30T10:38:00Z"),  # no 30 February
    ({"ACQUIRED": "yesterday"}, "ACQUIRED", "yesterday"),
    ({"ACQUIRED": "yesterday", "TIFFTAG_DATETIME": "2024:01:28 10:38:00"}, "ACQUIRED", "yesterday"),  # not dated by the other
])
def test_an_unreadable_time_tag_is_named_with_its_value(tmp_path, tags, key, value):
    """It was reported as "no ACQUIRED tag in the file", false: the tag is there and cannot be read."""
    path = _tagged_export(tmp_path, **tags)
    with pytest.raises(SceneError) as err:
        GeoTiffScene(path, bands=["blue", "green", "red", "nir"]).describe()
    _one_line(err, str(path), f"tag {key} is {value!r}", "cannot be read as a UTC time", "--acquired")
    assert "no ACQUIRED tag" not in str(err.value)


def test_an_undeclared_float_fill_is_named_with_the_nodata_to_declare(tmp_path):
    """ArcGIS's -3.4028235e38 left undeclared was refused as "reflectance in percent or an 8-bit rendering"."""
    import rasterio

    path = tmp_path / "export.tif"
    data = _ground(2).astype(np.float32)
    fill = np.finfo(np.float32).min
    data[:, :, :30] = fill
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=4, dtype="float32", crs="EPSG:32630",
                       transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
        dst.write(data)
    scene = GeoTiffScene(path, bands=parse_band_map("blue,green,red,nir"), acquired=datetime(2024, 1, 28, 10, 38))
    with pytest.raises(SceneError) as err:
        scene.describe()
    _one_line(err, "export.tif", "a fill the file does not declare as nodata", f"gdal_edit.py -a_nodata {float(fill)!r} FILE")
    with rasterio.open(path, "r+") as dst:
        dst.nodata = float(fill)
    from pipeline.grid import Grid

    own = Grid("EPSG:32630", Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0), 200, 200)
    _, _, clear = GeoTiffScene(path, bands=parse_band_map("blue,green,red,nir"), acquired=datetime(2024, 1, 28, 10, 38)).load(own)
    assert clear[:, 30:].all() and not clear[:, :30].any()  # declared, the fill is no data and the rest is read


def test_a_copy_of_a_scene_under_another_time_is_refused_not_counted_as_a_confirmation(tmp_path):
    """Re-encoded, or with a digit of noise, a copy's bytes differ, but it read as a second acquisition that
    "confirmed" the burn and raised its confidence. A scene with a burn on it, or another day's noise, is no copy."""
    import rasterio
    from rasterio.windows import Window

    from pipeline.grid import Grid
    from pipeline.readers.rasters import stack_scenes

    grid = Grid("EPSG:32630", Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0), 200, 200)
    ground = _ground(2)
    rng = np.random.default_rng(5)
    burned = ground.copy()
    burned[:, 80:120, 80:120] *= 0.3  # a burn: that scene is no copy of the first
    versions = {"pre": ground, "post": burned, "copy": burned + rng.integers(-1, 2, burned.shape) / 10000,
                "next": burned + rng.normal(0, 0.002, burned.shape)}  # another acquisition: the sensor's noise
    paths = {}
    for name, reflectance in versions.items():
        paths[name] = tmp_path / f"{name}.tif"
        with rasterio.open(paths[name], "w", driver="GTiff", width=200, height=200, count=4, dtype="uint16", crs="EPSG:32630",
                           transform=grid.transform) as dst:
            dst.write(np.clip(np.round(reflectance * 10000), 1, 65535).astype(np.uint16))

    def loaded(*names):
        return [GeoTiffScene(paths[n], bands=parse_band_map("blue,green,red,nir"), acquired=datetime(2024, 1, 27 + k, 10, 38))
                .load(grid) for k, n in enumerate(names)]

    paths["clipped"] = tmp_path / "clipped.tif"  # the copy one pixel smaller all round, at its place on the ground
    with rasterio.open(paths["post"]) as src, rasterio.open(paths["clipped"], "w", **{
            **src.profile, "width": 198, "height": 198, "transform": src.window_transform(Window(1, 1, 198, 198))}) as dst:
        dst.write(src.read(window=Window(1, 1, 198, 198)))
    stack, _ = stack_scenes(loaded("pre", "post", "next"), grid)
    assert stack.sizes["time"] == 3
    for copy in ("copy", "clipped"):
        with pytest.raises(SceneError) as err:
            stack_scenes(loaded("pre", "post", copy), grid)
        _one_line(err, f"{copy}.tif: the same pixels as", "post.tif", "cannot confirm it; remove the copy")


def test_one_file_with_its_bands_in_another_order_is_refused_naming_it(tmp_path, cli):
    """NIR and SWIR exchanged in one file of a pair passed every test of one scene alone and turned the burn into a
    greening (10 ha found of 132); a band that reads as another band of the other scene now stops the run. The report
    of a pair read right says which bands it read."""
    import rasterio

    from scipy import ndimage

    four = _ground(2)
    own = ndimage.gaussian_filter(np.random.default_rng(9).normal(0, 1, (200, 200)), 3)
    swir22 = four[3] + 0.03 * own / own.std()  # dry grass: as bright as the NIR, with a texture of its own too
    ground = np.concatenate([four, swir22[None]])
    rng = np.random.default_rng(8)
    burned = ground + rng.normal(0, 0.003, ground.shape)
    burned[:3, 85:115, 85:115] *= 0.5
    burned[3, 85:115, 85:115] *= 0.35
    burned[4, 85:115, 85:115] *= 0.9
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name, reflectance in (("pair_20240126.tif", ground), ("pair_20240128.tif", burned[[0, 1, 2, 4, 3]]),
                              ("right_20240128.tif", burned), ("both_20240126.tif", ground[[0, 1, 2, 4, 3]])):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=200, height=200, count=5, dtype="uint16", crs="EPSG:32630",
                           transform=Affine(3.0, 0, 499900.0, 0, -3.0, 1500400.0)) as dst:
            dst.write(np.clip(np.round(reflectance * 10000), 1, 65535).astype(np.uint16))
    aoi = _savanna_aoi(tmp_path / "aoi")
    for names, exchanged in ((("pair_20240126.tif", "pair_20240128.tif"), True), (("pair_20240126.tif", "right_20240128.tif"), False),
                             (("both_20240126.tif", "pair_20240128.tif"), None)):  # both files in the other order
        for f in scenes.iterdir():
            f.unlink()
        for k, name in enumerate(names):
            (scenes / f"s{k}_2024012{6 + 2 * k}.tif").write_bytes((tmp_path / name).read_bytes())
        out = tmp_path / f"out{exchanged}"
        code, text, err = cli("-q", "detect", "savanna", "--scenes", scenes, "--bands", "blue,green,red,nir,swir22", "--time-from-name",
                              "--aoi-dir", aoi, "--out", out, "--data", tmp_path / f"data{exchanged}", "--no-figures")
        assert exchanged is not None or "0.00 ha burned" in text, text  # what such a run finds: nothing
        if exchanged:
            assert code != 0 and len(err.splitlines()) == 1, err
            assert str(scenes / "s1_20240128.tif") in err and "its nir and swir22 read as the swir22 and nir of the other scene" in err, err
        else:
            assert code == 0, err
            report = next(out.rglob("report.md")).read_text()
            assert "Bands read from every scene, in file order (a band the map skips left out): blue, green, red, nir, swir22." in report
            # both files read in the other order: each passes alone, the burn reads as a greening, and the reading says so
            said = "the burn index moved the other way from a burn by more than twice a burn's change" in report
            assert said == (exchanged is None), report
