"""Sentinel-2 L2A and Landsat C2 L2 readers: real fixtures, built fixtures for what no real file shows, bad input."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from pipeline.readers import landsat, sentinel2
from pipeline.errors import SceneError
from pipeline.grid import grid_for_bounds
from pipeline.readers.recognise import recognise
from factories import (one_line as _one_line, write_band as _band, write_landsat_folder as _landsat_folder,
                       write_s2_item as _s2_item)

FIXTURES = "rio-tiler-pds-fixtures"

GRID = grid_for_bounds((500000, 1529600, 500400, 1530000), "EPSG:32630", 10.0)


@pytest.mark.parametrize("baseline, expected", [("02.14", 0.15), ("04.00", 0.05), ("05.10", 0.05)])
def test_boa_offset_follows_the_processing_baseline(tmp_path, baseline, expected):
    scene = sentinel2.find(_s2_item(tmp_path, baseline=baseline))[0]
    record, reflectance, clear = scene.load(GRID)
    assert record.bands == ("blue", "green", "red", "nir", "swir16", "swir22")
    assert np.allclose(reflectance[:, clear], expected) and clear.all()
    assert record.acquired == datetime(2024, 1, 28, 10, 58, 21, tzinfo=timezone.utc) and record.satellite_id == "sentinel-2b"
    assert set(record.sha256) == {"blue", "green", "red", "nir", "swir16", "swir22", "scl", "metadata"}


def test_stated_scale_and_offset_win_and_harmonised_items_keep_theirs(tmp_path):
    stated = sentinel2.reflectance_scaling({"s2:processing_baseline": "05.10"}, {"raster:bands": [{"scale": 0.0001, "offset": -0.1}]})
    assert stated == (0.0001, -0.1)
    scene = sentinel2.find(_s2_item(tmp_path, baseline="05.10", extra={"earthsearch:boa_offset_applied": True}))[0]
    assert np.allclose(scene.load(GRID)[1], 0.15)


@pytest.mark.parametrize("scl, clear", [(2, True), (4, True), (3, False), (8, False), (9, False), (10, False), (11, False), (0, False)])
def test_scl_classes_decide_what_is_seen(tmp_path, scl, clear):
    scene = sentinel2.find(_s2_item(tmp_path, baseline="02.14", scl=scl))[0]
    assert scene.load(GRID)[2].all() == clear and scene.load(GRID)[2].any() == clear


def test_a_20m_band_lands_centred_on_the_10m_grid(tmp_path):
    data = np.full((20, 20), 1000, np.uint16)
    data[10, 10] = 9000  # one bright 20 m pixel: its centre is at x = 500210, y = 1529790
    path = _band(tmp_path / "B12.tif", data, res=20, size=20)
    from pipeline.readers.rasters import read_band

    on10 = read_band(path, GRID)
    rows, cols = np.nonzero(on10 > 5000)
    # bilinear resampling spreads it over the 10 m pixels around that centre, symmetrically
    centre_y = GRID.transform.f - (rows.mean() + 0.5) * 10
    centre_x = GRID.transform.c + (cols.mean() + 0.5) * 10
    assert (centre_x, centre_y) == pytest.approx((500210.0, 1529790.0), abs=0.01)


def test_real_sentinel2_item_with_local_band_files(shared_data):
    folder = shared_data / "real" / FIXTURES / "sentinel2_l2a_29RKH_20200219"
    scenes = recognise(folder)
    assert [s.scene_id for s in scenes] == ["S2A_29RKH_20200219_0_L2A"]
    info = scenes[0].describe()
    assert info.acquired == datetime(2020, 2, 19, 11, 34, 25, 405000, tzinfo=timezone.utc)
    assert info.bands == ("red", "nir", "swir16", "swir22")  # B02, B03 were left out of the fixture
    assert info.properties["s2:processing_baseline"] == "02.14" and info.properties["offset"] == 0.0
    grid = grid_for_bounds((260000, 2700000, 280000, 2720000), "EPSG:32629", 100.0)
    record, reflectance, clear = scenes[0].load(grid)
    assert clear.mean() > 0.9  # 4 % cloud over the tile
    red = np.nanmedian(reflectance[0][clear])
    assert 0.1 < red < 0.6  # desert (SOURCE.md: B04 951..7818 x 10000)
    assert np.isfinite(reflectance[3][clear]).all()  # the 20 m SWIR 2 filled the 100 m grid


def test_real_landsat_scene_cloud_is_masked(shared_data):
    folder = shared_data / "real" / FIXTURES / "landsat8_c2l2_001062_20201031"
    scenes = recognise(folder)
    assert [s.scene_id for s in scenes] == ["LC08_L2SP_001062_20201031_20201106_02_T2"]
    info = scenes[0].describe()
    assert info.acquired == datetime(2020, 10, 31, 14, 31, 47, 808399, tzinfo=timezone.utc)
    assert info.sensor == "Landsat 8 OLI_TIRS" and info.bands == ("red", "nir", "swir22")
    grid = grid_for_bounds((143685, -436215, 371115, -204285), "EPSG:32620", 600.0)
    record, reflectance, clear = scenes[0].load(grid)
    assert record.sun_elevation == pytest.approx(64.45, abs=0.01)
    data = np.isfinite(reflectance).all(axis=0)
    assert data.mean() > 0.5 and clear.sum() < 0.001 * data.sum()  # 99.94 % cloud: nothing clear to speak of
    assert np.nanmax(reflectance) < 1.7 and np.nanmin(reflectance) >= -0.2  # the C2 scale and offset were applied


def test_qa_pixel_bits():
    qa = np.array([0b1000000, 0b1, 0b10, 0b100, 0b1000, 0b10000, 0b100000, 0b10000000], dtype=float)
    assert landsat.qa_pixel_clear(qa).tolist() == [True, False, False, False, False, False, False, True]


def test_landsat5_band_numbers_and_scaling(tmp_path):
    mtl = {"LANDSAT_METADATA_FILE": {"IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_5", "SENSOR_ID": "TM",
                                                          "DATE_ACQUIRED": "1987-01-16", "SCENE_CENTER_TIME": "10:21:12.5Z"}}}
    scene = recognise(_landsat_folder(tmp_path, mtl))[0]
    grid = grid_for_bounds((500060, 1529640, 500540, 1529940), "EPSG:32630", 30.0)  # inside the 600 m square
    record, reflectance, clear = scene.load(grid)
    assert record.bands == ("blue", "green", "red", "nir", "swir16", "swir22")
    # TM: NIR is B4 (DN 11999) and SWIR 2 is B7 (DN 14999); reflectance = DN x 2.75e-5 - 0.2
    assert reflectance[3][clear].mean() == pytest.approx(11999 * 2.75e-5 - 0.2, abs=1e-5)
    assert reflectance[5][clear].mean() == pytest.approx(14999 * 2.75e-5 - 0.2, abs=1e-5)
    assert record.acquired == datetime(1987, 1, 16, 10, 21, 12, 500000, tzinfo=timezone.utc) and clear.all()


def test_bad_sentinel2_and_landsat_input(tmp_path):
    item = _s2_item(tmp_path / "a", baseline="02.14")
    item.write_text("{not json")
    with pytest.raises(SceneError) as err:
        sentinel2.find(item)
    _one_line(err, "item.json", "not a valid STAC item")
    item = _s2_item(tmp_path / "b", baseline="02.14")
    doc = json.loads(item.read_text())
    del doc["properties"]["datetime"]
    item.write_text(json.dumps(doc))
    with pytest.raises(SceneError) as err:
        sentinel2.find(item)
    _one_line(err, "item.json", "no datetime")
    item = _s2_item(tmp_path / "c", baseline="02.14")
    (tmp_path / "c" / "B08.tif").unlink()
    with pytest.raises(SceneError) as err:
        sentinel2.find(item)
    _one_line(err, "item.json", "asset nir", "not on this disk")
    item = _s2_item(tmp_path / "d", baseline="02.14")
    (tmp_path / "d" / "B04.tif").write_text("not a raster")
    with pytest.raises(SceneError) as err:
        sentinel2.find(item)[0].load(GRID)
    _one_line(err, "B04.tif", "cannot be read")
    folder = _landsat_folder(tmp_path / "e", {"LANDSAT_METADATA_FILE": {"IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_5"}}})
    with pytest.raises(SceneError) as err:
        recognise(folder)[0].describe()
    _one_line(err, "_MTL.json", "DATE_ACQUIRED")
    folder = _landsat_folder(tmp_path / "f", '{"LANDSAT_METADATA_FILE": ' + " " * 11_000_000 + "}")
    with pytest.raises(SceneError) as err:
        recognise(folder)
    _one_line(err, "_MTL.json", "MB")
