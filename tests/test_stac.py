"""STAC files read and written through pystac and burnscan's own StacIO.

The scene catalogue of an older burnscan still reads, lists and loads; a catalogue whose files
are pipes, too large, outside its folder or on the network is one line, and nothing is read
from the network; a STAC item field pystac cannot take is one line, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from pipeline.aoi import load_aoi
from pipeline.cli import main
from pipeline.errors import SceneError
from pipeline.readers import catalogue as cat
from pipeline.readers import sentinel2
from pipeline.readers.rasters import sha256_file
from smallaoi import AOI_NAME, write_small_aoi
from factories import savanna_ground as _ground, write_s2_item as _s2_item

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "catalogue_v1"
FIXTURE_ROOT = "/tmp/burnscan-old-catalogue"  # where the fixture's scenes were when it was written (see its README)
OLD_IDS = ["geotiff-export_a-20240127T103800Z", "geotiff-export_b-20240130T103800Z"]
REPO = Path(__file__).resolve().parent.parent


def _exports(base: Path, aoi_dir: Path, days: dict[str, int]) -> None:
    """The GeoTIFF exports of the fixture, byte for byte (the same ground and noise seeds)."""
    grid = load_aoi(AOI_NAME, aoi_dir).analysis_grid(3.0).buffered(20)
    (base / "in").mkdir(exist_ok=True)
    for name, seed in days.items():
        data = np.clip(_ground(seed)[:, :grid.height, :grid.width] * 10000, 1, 65535).astype(np.uint16)
        with rasterio.open(base / "in" / name, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=4,
                           dtype="uint16", nodata=0, crs=grid.crs, transform=grid.transform) as dst:
            dst.write(data)


def _old_catalogue(tmp_path: Path, *, with_files: bool = False) -> tuple[Path, Path]:
    """The fixture catalogue under ``tmp_path/data``, its paths moved to ``tmp_path``; returns (aoi dir, catalogue)."""
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    if with_files:
        _exports(tmp_path, aoi_dir, {"export_a.tif": 2, "export_b.tif": 3})
    folder = cat.catalogue_dir(tmp_path / "data", AOI_NAME)
    for source in sorted(FIXTURE.rglob("*.json")):
        target = folder / source.relative_to(FIXTURE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text(encoding="utf-8").replace(FIXTURE_ROOT, str(tmp_path)), encoding="utf-8")
    return aoi_dir, folder


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("burnscan: error: "), err
    assert "Traceback" not in err and all(n in lines[0] for n in needles), err


def test_a_catalogue_written_before_pystac_wrote_it_still_reads_lists_loads_and_grows(tmp_path, capsys):
    aoi_dir, folder = _old_catalogue(tmp_path, with_files=True)
    common = ["--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir)]
    entries = cat.catalogue_entries(tmp_path / "data", AOI_NAME)
    assert [e.item_id for e in entries] == OLD_IDS and [e.acquired.day for e in entries] == [27, 30]
    assert entries[0].sha256["reflectance"].startswith("d535cfe6ad20e148") and entries[0].clear_fraction == pytest.approx(0.1975)
    assert len(cat.catalogue_sources(tmp_path / "data", AOI_NAME)) == 2  # every recorded SHA-256 still matches its file
    code, out, err = _cli(capsys, "scenes", AOI_NAME, *common)
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == OLD_IDS, err

    _exports(tmp_path, aoi_dir, {"export_c.tif": 4})
    code, out, err = _cli(capsys, "add", AOI_NAME, str(tmp_path / "in" / "export_c.tif"), "--bands", "blue,green,red,nir",
                          "--acquired", "2024-02-02T10:38:00Z", *common)
    new_id = f"geotiff-export_c-{sha256_file(tmp_path / 'in' / 'export_c.tif')[:12]}"  # a GeoTIFF's id: its name and bytes
    assert code == 0 and f"added: {new_id}" in out, err
    for item_id in OLD_IDS:  # the old items are rewritten by pystac with the same content
        old = json.loads((FIXTURE / "items" / f"{item_id}.json").read_text().replace(FIXTURE_ROOT, str(tmp_path)))
        new = json.loads((folder / "items" / f"{item_id}.json").read_text())
        assert {k: v for k, v in new.items() if k != "links"} == {k: v for k, v in old.items() if k != "links"}
        assert {(link["rel"], link["href"]) for link in new["links"]} == {("root", "../catalog.json"), ("parent", "../catalog.json")}
    catalog = pystac.Catalog.from_file(str(folder / "catalog.json"))
    assert sorted(i.id for i in catalog.get_items()) == [*OLD_IDS, new_id]
    assert len(cat.catalogue_sources(tmp_path / "data", AOI_NAME)) == 3


class _Recorder(BaseHTTPRequestHandler):
    """Serves a valid catalogue item and collection to whoever asks, and records that they asked."""

    requests: list

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        item = json.loads((FIXTURE / "items" / f"{OLD_IDS[0]}.json").read_text())
        body = json.dumps(item if self.path.endswith("item.json") else
                          {"type": "Collection", "id": "c", "stac_version": "0.8.0", "description": "c", "license": "x",
                           "extent": {}, "links": [], "properties": {"burnscan:kind": "geotiff"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder():
    handler = type("Handler", (_Recorder,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    server.shutdown()
    server.server_close()


def _link_item(folder: Path, href: str) -> None:
    catalog = json.loads((folder / "catalog.json").read_text())
    catalog["links"].append({"rel": "item", "href": href, "type": "application/geo+json"})
    (folder / "catalog.json").write_text(json.dumps(catalog))


def test_a_catalogue_item_on_the_network_is_refused_without_a_request(tmp_path, capsys, recorder):
    base, requests = recorder
    aoi_dir, folder = _old_catalogue(tmp_path)
    _link_item(folder, f"{base}/item.json")
    code, out, err = _cli(capsys, "scenes", AOI_NAME, "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 4 and requests == []
    _one_error_line(err, f"{base}/item.json", "not on this disk", "never the network")


def test_an_old_stac_item_whose_collection_is_on_the_network_is_refused_without_a_request(tmp_path, capsys, recorder):
    base, requests = recorder
    aoi_dir, folder = _old_catalogue(tmp_path)
    item = folder / "items" / f"{OLD_IDS[0]}.json"
    doc = json.loads(item.read_text())
    doc["stac_version"] = "0.8.0"  # pystac merges the collection's properties into items this old, read from its link
    doc["links"].append({"rel": "collection", "href": f"{base}/collection.json"})
    item.write_text(json.dumps(doc))
    code, out, err = _cli(capsys, "scenes", AOI_NAME, "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 4 and requests == []
    _one_error_line(err, item.name, "STAC version '0.8.0'", "restore it from a copy")


def test_a_catalogue_item_outside_the_catalogue_folder_is_refused(tmp_path, capsys):
    aoi_dir, folder = _old_catalogue(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(folder / "items" / f"{OLD_IDS[1]}.json", elsewhere / "x.json")
    catalog = json.loads((folder / "catalog.json").read_text())
    catalog["links"] = [link for link in catalog["links"] if OLD_IDS[1] not in link["href"]]
    (folder / "catalog.json").write_text(json.dumps(catalog))
    _link_item(folder, "../../../elsewhere/x.json")
    code, out, err = _cli(capsys, "scenes", AOI_NAME, "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 4
    _one_error_line(err, "x.json", f"outside {folder}")


def test_an_oversized_catalogue_item_is_refused(tmp_path, capsys):
    aoi_dir, folder = _old_catalogue(tmp_path)
    item = folder / "items" / f"{OLD_IDS[0]}.json"
    doc = json.loads(item.read_text())
    doc["properties"]["padding"] = "x" * 11_000_000
    item.write_text(json.dumps(doc))
    code, out, err = _cli(capsys, "scenes", AOI_NAME, "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
    assert code == 4
    _one_error_line(err, item.name, "11 MB", "restore it from a copy")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["catalog.json", f"items/{OLD_IDS[0]}.json"])
def test_a_pipe_in_place_of_a_catalogue_file_is_refused_not_waited_on(tmp_path, name):
    aoi_dir, folder = _old_catalogue(tmp_path)
    (folder / name).unlink()
    os.mkfifo(folder / name)
    try:
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", "scenes", AOI_NAME, "--data", str(tmp_path / "data"),
                               "--aoi-dir", str(aoi_dir)], capture_output=True, text=True, timeout=60, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    except subprocess.TimeoutExpired:
        pytest.fail(f"burnscan scenes waited on the pipe {name}")
    assert done.returncode == 4
    _one_error_line(done.stderr, Path(name).name, "named pipe")
    assert (folder / name).exists() and not (folder / name).is_file()  # left as it was, never written over


def test_a_stac_item_asset_pystac_cannot_take_is_one_line(tmp_path):
    path = _s2_item(tmp_path, baseline="05.10")
    doc = json.loads(path.read_text())
    doc["assets"]["thumbnail"] = "preview.png"  # not an object: pystac's Asset.from_dict would fail on it
    path.write_text(json.dumps(doc))
    with pytest.raises(SceneError) as err:
        sentinel2.find(path)
    assert "\n" not in str(err.value) and "item.json" in str(err.value) and "assets.thumbnail" in str(err.value)


def test_a_fetched_item_with_mistyped_raster_bands_is_one_line_and_writes_nothing(tmp_path):
    from pipeline.readers.fetch import download_window
    from pyproj import Transformer

    from factories import write_band
    from smallaoi import LAT, LON

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32630", always_xy=True).transform(LON, LAT)

    cogs = tmp_path / "cogs"
    cogs.mkdir()
    assets = {name: pystac.Asset(href=str(write_band(cogs / f"{name}.tif", 2000, res=10.0, size=60, origin=(x - 300.0, y + 300.0))),
                                 extra_fields={"raster:bands": {"scale": 0.0001}})  # an object where a list belongs
              for name in ("red", "nir")}
    item = pystac.Item(id="S2B_30PVT_20240128_0_L2A", geometry=None, bbox=None,
                       datetime=pystac.utils.str_to_datetime("2024-01-28T10:58:21Z"), properties={}, assets=assets)
    d = 0.001
    with pytest.raises(SceneError) as err:
        download_window(item, (LON - d, LAT - d, LON + d, LAT + d), tmp_path / "sentinel2")
    assert "\n" not in str(err.value) and "raster:bands" in str(err.value) and "--api" in str(err.value)
    assert not (tmp_path / "sentinel2").exists() or not any((tmp_path / "sentinel2").rglob("*.tif"))
