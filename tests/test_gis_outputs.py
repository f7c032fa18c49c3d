"""What a GIS user opens from a run: COGs with QGIS styles, a dated and coloured KML, a STAC item.

Known answers come from the run's own arrays (``outcome.detection``) and polygons: the rasters
must hold exactly what the analysis computed, the KML's times the polygons' dates, the STAC
item every output of the folder.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, shape

from factories import copy_small_run, run_cli

KML = {"k": "http://www.opengis.net/kml/2.2"}


def _is_cog(path: Path) -> None:
    """GDAL's own word that the file is a COG, with the tiles and overviews that make it one."""
    with rasterio.open(path) as src:
        assert src.driver == "GTiff" and src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", path
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256), path
        assert src.overviews(1), f"{path}: no overviews"
        assert src.nodata is not None, f"{path}: no nodata value"


# --- the writer ------------------------------------------------------------------------------


def test_write_cog_writes_a_cloud_optimised_geotiff_atomically_inside_its_root(tmp_path):
    from pipeline.errors import OutputError
    from pipeline.grid import Grid
    from pipeline.outputs.write import write_cog
    from rasterio.transform import from_origin

    grid = Grid("EPSG:32630", from_origin(400000.0, 1530000.0, 3.0, 3.0), 600, 520)
    values = np.linspace(-1, 1, 600 * 520, dtype=np.float32).reshape(520, 600)
    values[:10] = np.nan
    path = write_cog(tmp_path / "run" / "c.tif", values, grid, root=tmp_path / "run", nodata=float("nan"),
                     band_names=["NBR change to 2024-01-28T10:38:00Z"], tags={"INDEX": "NBR"})
    _is_cog(path)
    with rasterio.open(path) as src:
        assert src.descriptions == ("NBR change to 2024-01-28T10:38:00Z",) and src.tags()["INDEX"] == "NBR"
        assert src.crs.to_epsg() == 32630 and src.transform == grid.transform
        np.testing.assert_array_equal(src.read(1), values)  # lossless, NaN where it was NaN
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.tif"]  # no staging or side file left
    with pytest.raises(OutputError, match="outside"):
        write_cog(tmp_path / "elsewhere.tif", values, grid, root=tmp_path / "run")


def test_write_cog_without_gdals_cog_driver_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    import pipeline.outputs.write as write
    from pipeline.errors import OutputError
    from pipeline.grid import Grid
    from rasterio.transform import from_origin

    monkeypatch.setattr(write, "_has_cog_driver", lambda: False)  # as under a GDAL older than 3.1
    grid = Grid("EPSG:32630", from_origin(400000.0, 1530000.0, 3.0, 3.0), 8, 8)
    with pytest.raises(OutputError, match="no COG driver") as err:
        write.write_cog(tmp_path / "c.tif", np.zeros((8, 8), np.int16), grid, root=tmp_path, nodata=-1)
    assert "\n" not in str(err.value) and not list(tmp_path.iterdir())


# --- the run's rasters -------------------------------------------------------------------------


def test_every_raster_of_a_run_is_a_styled_cog_listed_and_hashed_in_the_manifest(small_run):
    run = small_run.run_dir
    tifs = sorted((run / "gis").glob("*.tif"))
    records, usable = small_run.outcome.detection.all_records, small_run.outcome.detection.records
    # one change raster per usable scene after the first, the first-seen raster, one composite per usable scene
    assert len(tifs) == (len(usable) - 1) + 1 + len(usable) and len(records) >= 2
    manifest = json.loads((run / "manifest.json").read_text())
    listed = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    for tif in tifs:
        _is_cog(tif)
        assert tif.name.endswith("_SIMULATED.tif")
        with rasterio.open(tif) as src:
            assert src.tags()["SIMULATED"].startswith("SIMULATED DATA")
        for path in (tif, tif.with_suffix(".qml")):
            name = path.relative_to(run).as_posix()
            assert listed[name] == hashlib.sha256(path.read_bytes()).hexdigest(), name


def test_change_rasters_hold_each_dates_index_change_with_its_date_and_thresholds(small_run):
    det = small_run.outcome.detection
    run = small_run.run_dir
    for t in range(1, len(det.records)):
        rec = det.records[t]
        path = run / "gis" / f"change_{det.index_name.upper()}_{rec.acquired:%Y%m%dT%H%MZ}_SIMULATED.tif"
        with rasterio.open(path) as src:
            assert src.dtypes == ("float32",) and np.isnan(src.nodata)
            assert rec.acquired_utc in src.descriptions[0] and det.index_name.upper() in src.descriptions[0]
            np.testing.assert_array_equal(src.read(1), det.change["delta"].isel(time=t).values.astype(np.float32))
            assert src.crs == rasterio.crs.CRS.from_user_input(det.grid.crs) and src.transform == det.grid.transform
            tags = src.tags()
        style = ET.parse(path.with_suffix(".qml")).getroot()
        renderer = style.find("pipe/rasterrenderer")
        assert renderer.get("type") == "singlebandpseudocolor"
        items = renderer.findall(".//colorrampshader/item")
        values = [float(i.get("value")) for i in items]
        assert values == sorted(values) and len(values) >= 3
        if det.thresholds[t] is not None:
            assert float(tags["SEED_THRESHOLD"]) == pytest.approx(det.thresholds[t].seed_threshold, rel=1e-5)
            labels = {i.get("label").split()[-2]: float(i.get("value")) for i in items if "threshold" in i.get("label")}
            assert labels["seed"] == pytest.approx(det.thresholds[t].seed_threshold, rel=1e-5)
            assert labels["grow"] == pytest.approx(det.thresholds[t].grow_threshold, rel=1e-5)


def test_first_seen_raster_dates_every_burned_pixel_with_its_scene_and_styles_each_date(small_run):
    det = small_run.outcome.detection
    run = small_run.run_dir
    polygons = gpd.read_file(run / "burns_SIMULATED.geojson")
    with rasterio.open(run / "gis" / "first_seen_SIMULATED.tif") as src:
        assert src.dtypes == ("int16",) and src.nodata == -1
        values, tags = src.read(1), src.tags()
    usable = det.dates["first_seen"].values
    # usable-scene indices in the analysis, scene indices of the report in the raster (as the polygons count)
    expected = np.where(usable >= 0, np.array([det.all_records.index(r) for r in det.records])[np.maximum(usable, 0)], -1)
    np.testing.assert_array_equal(values, expected)
    assert set(np.unique(values[values >= 0])) == set(polygons["first_seen_index"])
    for i, rec in enumerate(det.all_records):
        assert tags[f"FIRST_SEEN_{i}"] == f"{rec.acquired_utc} {rec.scene_id}"
    palette = ET.parse(run / "gis" / "first_seen_SIMULATED.qml").getroot().find("pipe/rasterrenderer")
    assert palette.get("type") == "paletted"
    entries = {int(e.get("value")): e.get("label") for e in palette.findall("colorPalette/paletteEntry")}
    assert entries == {i: f"{det.all_records[i].acquired:%Y-%m-%d %H:%M} UTC ({det.all_records[i].scene_id})"
                       for i in set(polygons["first_seen_index"])}


def test_composites_are_the_infrared_scenes_on_one_stretch_with_unobserved_pixels_as_nodata(small_run):
    det = small_run.outcome.detection
    run = small_run.run_dir
    for j, rec in enumerate(det.records):
        path = run / "gis" / f"{rec.acquired:%Y%m%dT%H%MZ}_cir_SIMULATED.tif"
        with rasterio.open(path) as src:
            assert src.count == 3 and src.dtypes == ("uint8",) * 3 and src.nodata == 0
            assert "NIR" in src.descriptions[0] and src.tags()["SCENE_ID"] == rec.scene_id
            rgb = src.read()
        clear = det.stack["clear"].isel(time=j).values
        nir = det.stack["reflectance"].isel(time=j).sel(band="nir").values
        observed = clear & np.isfinite(nir)
        assert (rgb[:, ~observed] == 0).all() and (rgb[:, observed] >= 1).all()
        # brighter NIR, brighter red channel: the composite is the scene's NIR, not another band
        assert np.corrcoef(rgb[0][observed].astype(float), nir[observed])[0, 1] > 0.9
        assert ET.parse(path.with_suffix(".qml")).getroot().find("pipe/rasterrenderer").get("type") == "multibandcolor"


def test_a_changed_raster_fails_verify(small_run, tmp_path, capsys):
    copy = copy_small_run(small_run, tmp_path)
    target = copy.run_dir / "gis" / "first_seen_SIMULATED.tif"
    # A pixel re-dated in place (GDAL guards a COG's layout; told to let it go, the file stays a valid GeoTIFF).
    with rasterio.open(target, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        band = dst.read(1)
        band[0, 0] = 1 if band[0, 0] != 1 else 2
        dst.write(band, 1)
    code, out, _ = run_cli(capsys, "verify", copy.run_dir)
    assert code == 8 and f"changed: {target}" in out.splitlines()


# --- KML -------------------------------------------------------------------------------------


def test_kml_dates_each_placemark_by_its_polygon_and_colours_it_by_date(small_run):
    run = small_run.run_dir
    records = small_run.outcome.detection.all_records
    polygons = gpd.read_file(run / "burns_SIMULATED.geojson")
    doc = ET.parse(run / "burns_SIMULATED.kml").getroot().find("k:Document", KML)
    assert "TimeSpan begins" in doc.find("k:description", KML).text  # the time semantics are stated
    styles = {s.get("id"): s for s in doc.findall("k:Style", KML)}
    dates = sorted(set(polygons["first_seen_index"]))
    assert len(styles) == len(dates) > 1  # one style per date, no more
    colours = {styles[f"first_seen_{records[i].acquired:%Y%m%dT%H%MZ}"].find("k:PolyStyle/k:color", KML).text for i in dates}
    assert len(colours) == len(dates)  # each date its own colour
    legend = doc.find("k:Folder/k:description", KML).text
    assert all(records[i].acquired_utc in legend for i in dates)
    marks = doc.findall("k:Folder/k:Placemark", KML)
    assert len(marks) == len(polygons)
    for mark, row in zip(marks, polygons.itertuples()):
        assert mark.find("k:name", KML).text == f"SIMULATED {row.polygon_id}"
        first, before = records[row.first_seen_index], records[row.last_clear_index]
        assert mark.find("k:TimeSpan/k:begin", KML).text == first.acquired_utc
        assert mark.find("k:TimeSpan/k:end", KML) is None  # once seen, a burn stays on Google Earth's time slider
        assert mark.find("k:styleUrl", KML).text == f"#first_seen_{first.acquired:%Y%m%dT%H%MZ}"
        data = {d.get("name"): d.find("k:value", KML).text for d in mark.findall("k:ExtendedData/k:Data", KML)}
        assert data["first_seen"] == first.acquired_utc and data["last_clear_before"] == before.acquired_utc
        assert row.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ") == first.acquired_utc  # the polygon's own date
        for ring in mark.findall(".//k:outerBoundaryIs/k:LinearRing/k:coordinates", KML):
            corners = [Point(*(float(v) for v in p.split(","))) for p in ring.text.split()]
            assert all(row.geometry.buffer(1e-6).contains(c) for c in corners)  # the polygon's outline, in lon/lat


def test_simulated_polygons_say_so_in_every_feature_and_layer_not_only_in_the_file_name(small_run):
    """A feature copied into another layer leaves its file name behind: its attribute and the layer's description stay."""
    import pyogrio

    run = small_run.outcome.run_dir
    gpkg, geojson = run / "burns_SIMULATED.gpkg", run / "burns_SIMULATED.geojson"
    layers = [name for name, _ in pyogrio.list_layers(gpkg)]
    assert {"all", "extent"} <= set(layers)
    for layer in layers:
        frame = gpd.read_file(gpkg, layer=layer)
        assert len(frame) and frame["simulated"].eq(True).all(), layer
        assert pyogrio.read_info(gpkg, layer=layer)["layer_metadata"]["DESCRIPTION"].startswith("SIMULATED DATA"), layer
    assert gpd.read_file(geojson)["simulated"].eq(True).all()
    assert json.loads(geojson.read_text())["description"].startswith("SIMULATED DATA")


def test_kml_of_a_polygon_with_a_hole_and_parts_keeps_them(tmp_path):
    from datetime import datetime, timezone

    from shapely.geometry import MultiPolygon, Polygon

    from pipeline.model import SceneRecord
    from pipeline.outputs.kml import kml_document

    recs = [SceneRecord(f"s{i}", datetime(2024, 1, 26 + i, 10, 38, tzinfo=timezone.utc), "x", "PlanetScope", False, ("nir",))
            for i in range(3)]
    holed = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)], [[(0.4, 0.4), (0.6, 0.4), (0.6, 0.6)]])
    two = MultiPolygon([Polygon([(2, 2), (3, 2), (3, 3)]), Polygon([(4, 4), (5, 4), (5, 5)])])
    frame = gpd.GeoDataFrame({"polygon_id": ["a", "b"], "first_seen": ["t1", "t2"], "last_clear_before": ["t0", "t1"],
                              "first_seen_index": [1, 2], "last_clear_index": [0, -1], "area_ha": [1.0, 2.0],
                              "setting": ["settlement"] * 2, "confirmed": [True, False]}, geometry=[holed, two], crs="EPSG:4326")
    root = ET.fromstring(kml_document(frame, records=recs, simulated=False))
    marks = root.findall(".//k:Placemark", KML)
    assert len(marks[0].findall(".//k:innerBoundaryIs", KML)) == 1
    assert len(marks[1].findall("k:MultiGeometry/k:Polygon", KML)) == 2
    assert "SIMULATED" not in ET.tostring(root, encoding="unicode")
    data = {d.get("name"): d.find("k:value", KML).text for d in marks[1].findall("k:ExtendedData/k:Data", KML)}
    assert not data["last_clear_before"] and data["first_seen"] == "2024-01-28T10:38:00Z"  # no clear scene before it


# --- STAC ------------------------------------------------------------------------------------


def test_stac_item_describes_every_output_with_relative_hrefs_that_resolve(small_run):
    import pystac

    run = small_run.run_dir
    item = pystac.Item.from_file(str(run / "item.json"))
    manifest = json.loads((run / "manifest.json").read_text())
    outputs = {o["path"] for o in manifest["outputs"]} - {"item.json"}
    assert {a.href.removeprefix("./") for a in item.assets.values()} == outputs  # every output, nothing else
    for asset in item.assets.values():
        assert not Path(asset.href).is_absolute() and "://" not in asset.href
        assert Path(asset.get_absolute_href()).is_file(), asset.href
    cogs = [a for a in item.assets.values() if a.href.endswith(".tif")]
    assert cogs and all(a.media_type == pystac.MediaType.COG for a in cogs)
    assert {tuple(a.roles) for a in cogs} == {("data",), ("visual",)}
    assert item.assets["burns_SIMULATED.gpkg"].media_type == pystac.MediaType.GEOPACKAGE
    assert "report" in item.assets["report.html"].roles
    records = small_run.outcome.detection.all_records
    assert item.properties["start_datetime"] == records[0].acquired_utc
    assert item.properties["end_datetime"] == records[-1].acquired_utc and item.datetime is None
    assert item.properties["burnscan:simulated"] is True and "SIMULATED" in item.properties["title"]
    aoi = json.loads((small_run.aoi_dir / "testvillage.geojson").read_text())
    assert shape(item.geometry).equals(shape(aoi["geometry"]))
    assert item.id == manifest["run_id"] and item.properties["burnscan:commit"] == manifest["code"]["commit"]
    params = json.dumps(manifest["parameters"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert item.properties["burnscan:parameters_sha256"] == hashlib.sha256(params.encode()).hexdigest()
    # nothing to follow, least of all on the network (pystac adds the self link of the file it read)
    assert json.loads((run / "item.json").read_text())["links"] == [] and [ln.rel for ln in item.links] == ["self"]
