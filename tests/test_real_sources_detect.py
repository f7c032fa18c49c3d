"""Each real single-date scene through `burnscan add` and `burnscan detect`, paired with a built later scene.

The real fixtures are single dates. Each is registered as it is, then a second scene is built
from it (a copy of its files, dated later, with a square of its ground turned to char: NIR
0.06 and SWIR 2.19 um 0.18, the values of a real Sentinel-2 grass-fire scar) and registered
too. The run must find that square and nothing else: real pixels, real metadata, real quality
masks, a known answer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pipeline.readers.rasters import sha256_file

from factories import run_cli as _cli, write_square_aoi as _aoi

SQUARE_M = 600.0


def _char_square(path: Path, out: Path, lon: float, lat: float, values: float) -> None:
    """Copy a one-band or multi-band raster, writing ``values`` (DN) in a square centred on lon/lat."""
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
        x, y = rasterio.warp.transform("EPSG:4326", src.crs, [lon], [lat])
        row, col = src.index(x[0], y[0])
        half = max(1, int(round(SQUARE_M / 2 / abs(src.transform.a))))
        region = (slice(None), slice(row - half, row + half), slice(col - half, col + half))
        data[region] = np.where(data[region] > 0, np.asarray(values).reshape(-1, 1, 1), 0)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)


def _detect(capsys, tmp_path, aoi_dir, name, *sets):
    code, out, err = _cli(capsys, "detect", name, "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir),
                          "--out", str(tmp_path / "out"), "--no-figures", *(a for s in sets for a in ("--set", s)))
    assert code == 0, err
    assert "using the scene catalogue" in err
    run = Path(out.strip().splitlines()[-1].split("outputs: ")[1])
    return json.loads((run / "report.json").read_text())


@pytest.mark.slow
def test_real_sentinel2_item_and_a_built_later_scene(shared_data, tmp_path, capsys):
    source = shared_data / "real" / "rio-tiler-pds-fixtures" / "sentinel2_l2a_29RKH_20200219"
    lon, lat = -11.45, 24.80
    later = tmp_path / "later"
    later.mkdir()
    for band, dn in (("B04", 500), ("B08", 600), ("B11", 1600), ("B12", 1800)):
        _char_square(source / f"{band}.tif", later / f"{band}.tif", lon, lat, dn)
    shutil.copy(source / "SCL.tif", later / "SCL.tif")
    item = json.loads((source / "S2A_29RKH_20200219_0_L2A.json").read_text())
    item["id"] = "S2A_29RKH_20200224_0_L2A_BUILT"
    item["properties"]["datetime"] = "2020-02-24T11:34:25Z"
    (later / "item.json").write_text(json.dumps(item))
    aoi_dir = _aoi(tmp_path / "aoi", "sahara", lon, lat, 2500.0, "Africa/El_Aaiun")
    for path in (source / "S2A_29RKH_20200219_0_L2A.json", later / "item.json"):
        code, out, err = _cli(capsys, "add", "sahara", str(path), "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
        assert code == 0 and "added: sentinel2-" in out, err
    report = _detect(capsys, tmp_path, aoi_dir, "sahara", "resolution_m=100", "margin_m=500")
    assert report["index"] == "nbr" and not report["simulated"]
    area = report["totals"]["area_ha"]
    print(f"Sentinel-2 item + built later scene: {report['totals']['n_polygons']} polygon(s), {area:.2f} ha")  # pytest -rP
    assert report["totals"]["n_polygons"] == 1 and 0.7 * 36 <= area <= 1.3 * 36, area  # a 600 m square is 36 ha
    assert report["scenes"][1]["scene_id"] == "S2A_29RKH_20200224_0_L2A_BUILT"
    # One file per band: the scene table gives each band file's SHA-256 (it showed none), as hashed in the manifest
    table = (tmp_path / "out" / "sahara" / "latest" / "report.md").read_text().split("## Scenes", 1)[1]
    nir = sha256_file(later / "B08.tif")
    assert f"nir `{nir}`" in table and f"red `{sha256_file(later / 'B04.tif')}`" in table
    assert nir in (tmp_path / "out" / "sahara" / "latest" / "report.html").read_text()


@pytest.mark.slow
def test_real_planetscope_scene_and_a_built_later_scene(shared_data, tmp_path, capsys):
    source = shared_data / "real" / "planetscope-deering-alaska"
    scene_id = "20160909_213104_0e19"
    lon, lat = -162.7810, 66.0653  # inside the clipped footprint (most of the rectangle is no data)
    later = tmp_path / "later"
    later.mkdir()
    new_id = "20160912_213104_0e19"
    _char_square(source / f"{scene_id}_3B_AnalyticMS_SR_clip.tif", later / f"{new_id}_3B_AnalyticMS_SR_clip.tif", lon, lat,
                 [400, 400, 500, 600])
    shutil.copy(source / f"{scene_id}_3B_AnalyticMS_DN_udm_clip.tif", later / f"{new_id}_3B_AnalyticMS_DN_udm_clip.tif")
    meta = json.loads((source / f"{scene_id}_metadata.json").read_text())
    meta["id"], meta["properties"]["acquired"] = new_id, "2016-09-12T21:31:04Z"
    (later / f"{new_id}_metadata.json").write_text(json.dumps(meta))
    aoi_dir = _aoi(tmp_path / "aoi", "deering", lon, lat, 500.0, "America/Nome")
    code, out, err = _cli(capsys, "add", "deering", str(source), str(later), "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 0 and out.count("added: planet-") == 2, err
    report = _detect(capsys, tmp_path, aoi_dir, "deering")
    assert report["index"] == "nir" and report["scenes"][0]["satellite_id"] == "0e19"
    area = report["totals"]["area_ha"]
    print(f"PlanetScope Deering + built later scene: {report['totals']['n_polygons']} polygon(s), {area:.2f} ha")  # pytest -rP
    assert report["totals"]["n_polygons"] == 1 and 0.8 * 36 <= area <= 1.2 * 36, area


@pytest.mark.slow
def test_real_landsat_scene_under_cloud_is_reported_as_unusable(shared_data, tmp_path, capsys):
    source = shared_data / "real" / "rio-tiler-pds-fixtures" / "landsat8_c2l2_001062_20201031"
    product = "LC08_L2SP_001062_20201031_20201106_02_T2"
    later = tmp_path / "later"
    later.mkdir()
    later_product = product.replace("20201031_20201106", "20201116_20201122")
    for f in source.iterdir():
        shutil.copy(f, later / f.name.replace(product, later_product))
    for band, dn in (("SR_B4", 9500), ("SR_B5", 9400), ("SR_B7", 13800)):  # char (see the module docstring) under the cloud
        # A verbatim copy would be the same bytes under two dates, which `add` refuses.
        _char_square(source / f"{product}_{band}.TIF", later / f"{later_product}_{band}.TIF", -65.2, -2.9, dn)
    mtl = later / f"{later_product}_MTL.json"
    mtl.write_text(mtl.read_text().replace('"DATE_ACQUIRED": "2020-10-31"', '"DATE_ACQUIRED": "2020-11-16"'))
    aoi_dir = _aoi(tmp_path / "aoi", "amazonas", -65.2, -2.9, 9000.0, "America/Manaus")
    code, out, err = _cli(capsys, "add", "amazonas", str(source), str(later), "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 0 and out.count("added: landsat-") == 2, err
    code, out, _ = _cli(capsys, "scenes", "amazonas", "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert "clear 0%" in out
    code, out, err = _cli(capsys, "detect", "amazonas", "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir),
                          "--out", str(tmp_path / "out"), "--set", "resolution_m=100", "--set", "margin_m=0", "--no-figures")
    assert code == 4 and err.strip().splitlines()[-1].startswith("burnscan: error:") and "add clear scenes" in err


def test_real_naip_digital_numbers_are_refused_naming_the_file_and_the_products_to_use(shared_data, tmp_path, capsys):
    """NAIP's 8-bit bands are uncalibrated digital numbers: read as reflectance x 10000 they would
    be darker than any ground and report nothing burned. The refusal names a product that works."""
    folder = shared_data / "real" / "naip-rgbn-multidate"
    aoi_dir = _aoi(tmp_path / "aoi", "potholes", -99.155, 47.02, 1500.0, "America/Chicago")
    code, out, err = _cli(capsys, "detect", "potholes", "--aoi-dir", str(aoi_dir), "--scenes", str(folder),
                          "--bands", "red,green,blue,nir", "--time-from-name", "--out", str(tmp_path / "out"))
    lines = err.strip().splitlines()
    assert code != 0 and out == "" and "Traceback" not in err
    assert lines[-1].startswith(f"burnscan: error: {folder}/m_4709963_se_14_1_2009") and "digital numbers" in lines[-1]
    assert "surface-reflectance product" in lines[-1] and "Sentinel-2 L2A" in lines[-1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("report.json"))
