"""`burnscan fetch` against a STAC API and COG server on 127.0.0.1, built by the test (no network here).

The server answers what pystac-client and GDAL ask of Earth Search: the landing page with its
conformance classes, item search by bbox and datetime in pages of two (GET and POST), and the
band files with HTTP range requests. The code under test is the real call path.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from pipeline.readers import fetch as fetching
from pipeline.cli import main
from pipeline.errors import SceneError
from smallaoi import AOI_NAME, LAT, LON, write_small_aoi

pytestmark = pytest.mark.slow  # every test here serves a local STAC API with cloud-optimised GeoTIFFs built for it (seconds each)

PAGE = 2
ORIGIN = (410000.0, 1535000.0)  # UTM 30N, north-west of the test village
DAYS = ["2024-01-20", "2024-01-23", "2024-01-28", "2024-02-02", "2024-02-20"]  # the last is outside the search


def _cog(path: Path, value: int, res: float, size: int, varied: bool = True) -> None:
    data = np.full((size, size), value, np.uint16)
    if varied:  # known, position-dependent values, so a window can be checked against the source
        data += (np.arange(size * size).reshape(size, size) % 1000).astype(np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint16", nodata=0, crs="EPSG:32630",
                       transform=Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1]), tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate") as dst:
        dst.write(data, 1)


def _items(base: str) -> list[dict]:
    items = []
    for k, day in enumerate(DAYS):
        bbox = [-3.83, 13.76, -3.70, 13.88] if k != 1 else [10.0, 40.0, 10.1, 40.1]  # the second lies elsewhere
        assets = {name: {"href": f"{base}/cogs/{day}/{name}.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                         "raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}
                  for name in ("red", "green", "blue", "nir", "swir16", "swir22")}
        assets["scl"] = {"href": f"{base}/cogs/{day}/scl.tif", "type": "image/tiff"}
        items.append({"type": "Feature", "stac_version": "1.0.0", "id": f"S2A_30PVT_{day.replace('-', '')}_0_L2A", "bbox": bbox,
                      "geometry": {"type": "Polygon", "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]],
                                                                        [bbox[0], bbox[3]], [bbox[0], bbox[1]]]]},
                      "properties": {"datetime": f"{day}T10:58:21Z", "platform": "sentinel-2a", "eo:cloud_cover": 3.0,
                                     "s2:processing_baseline": "05.10"},
                      "collection": "sentinel-2-l2a", "assets": assets, "links": []})
    return items


class _Handler(BaseHTTPRequestHandler):
    root: Path
    base: str
    fail: bool = False
    searches: list = []

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _search(self, params: dict) -> None:
        self.searches.append(params)
        bbox = [float(v) for v in (params["bbox"].split(",") if isinstance(params.get("bbox"), str) else params["bbox"])]
        start, end = str(params["datetime"]).split("/")
        hits = [i for i in _items(self.base) if start[:10] <= i["properties"]["datetime"][:10] <= end[:10]
                and not (i["bbox"][2] < bbox[0] or i["bbox"][0] > bbox[2] or i["bbox"][3] < bbox[1] or i["bbox"][1] > bbox[3])]
        token = int(params.get("token", 0))
        page = hits[token:token + PAGE]
        links = []
        if token + PAGE < len(hits):
            if self.command == "POST":
                links.append({"rel": "next", "href": f"{self.base}/search", "method": "POST", "body": {**params, "token": token + PAGE}})
            else:
                links.append({"rel": "next", "href": f"{self.base}/search?bbox={','.join(map(str, bbox))}&datetime={params['datetime']}"
                                                     f"&collections=sentinel-2-l2a&token={token + PAGE}", "method": "GET"})
        self._json({"type": "FeatureCollection", "features": page, "links": links})

    def _file(self, head: bool) -> None:
        path = self.root / urlparse(self.path).path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            first = int(match.group(1))
            last = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
            data = data[first:last + 1]
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def do_HEAD(self) -> None:
        self._file(head=True)

    def do_GET(self) -> None:
        if self.fail:
            self.send_error(500)
            return
        url = urlparse(self.path)
        if url.path in ("/", ""):
            self._json({"type": "Catalog", "id": "test-api", "stac_version": "1.0.0", "description": "test STAC API",
                        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
                        "links": [{"rel": "self", "href": f"{self.base}/"}, {"rel": "root", "href": f"{self.base}/"},
                                  {"rel": "search", "href": f"{self.base}/search", "method": "GET", "type": "application/geo+json"},
                                  {"rel": "search", "href": f"{self.base}/search", "method": "POST", "type": "application/geo+json"}]})
        elif url.path == "/search":
            self._search({k: v[0] for k, v in parse_qs(url.query).items()})
        else:
            self._file(head=False)

    def do_POST(self) -> None:
        if self.fail:
            self.send_error(500)
            return
        length = int(self.headers.get("Content-Length", 0))
        self._search(json.loads(self.rfile.read(length) or b"{}"))


@pytest.fixture
def api(tmp_path, monkeypatch):
    """A STAC API and COG server on 127.0.0.1; yields (base URL, handler class)."""
    for key, value in (("GDAL_HTTP_MAX_RETRY", "0"), ("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"),
                       ("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".tif"), ("GDAL_HTTP_TIMEOUT", "10")):
        monkeypatch.setenv(key, value)
    for k, day in enumerate(DAYS):  # each date its own pixels: one file is never two acquisitions
        (tmp_path / "cogs" / day).mkdir(parents=True)
        for name in ("red", "green", "blue", "nir"):
            _cog(tmp_path / "cogs" / day / f"{name}.tif", 2000 + k, 10.0, 1000)  # 10 x 10 km at 10 m
        for name in ("swir16", "swir22"):
            _cog(tmp_path / "cogs" / day / f"{name}.tif", 2500 + k, 20.0, 500)
        _cog(tmp_path / "cogs" / day / "scl.tif", 4, 20.0, 500, varied=False)  # class 4: vegetation, ground seen
    handler = type("Handler", (_Handler,), {"root": tmp_path, "searches": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler.base, handler
    server.shutdown()
    server.server_close()


BBOX = (-3.786, 13.814, -3.774, 13.826)


def test_search_pages_through_matching_items_in_time_order(api):
    base, handler = api
    items = fetching.search_sentinel2(base, BBOX, date(2024, 1, 18), date(2024, 2, 5))
    assert [i.datetime.strftime("%Y-%m-%d") for i in items] == ["2024-01-20", "2024-01-28", "2024-02-02"]
    assert len(handler.searches) == 2  # three hits in pages of two


def test_download_reads_only_the_window_and_keeps_native_resolution(api, tmp_path):
    base, _ = api
    item = fetching.search_sentinel2(base, BBOX, date(2024, 1, 27), date(2024, 1, 29))[0]
    path = fetching.download_window(item, BBOX, tmp_path / "out", margin_m=300)
    local = pystac.Item.from_file(str(path))
    assert set(local.assets) == {"red", "green", "blue", "nir", "swir16", "swir22", "scl"}
    assert all(a.href == f"{k}.tif" for k, a in local.assets.items())
    with rasterio.open(path.parent / "red.tif") as red, rasterio.open(path.parent / "swir22.tif") as swir, \
            rasterio.open(tmp_path / "cogs" / "2024-01-28" / "red.tif") as full:
        assert red.res == (10.0, 10.0) and swir.res == (20.0, 20.0) and red.crs == full.crs
        assert red.width * red.height < 0.05 * full.width * full.height  # a window, not the tile
        row, col = full.index(red.transform.c + 5, red.transform.f - 5)
        assert np.array_equal(red.read(1), full.read(1, window=((row, row + red.height), (col, col + red.width))))
        assert red.tags()["offset"] == "-0.1"
        # the window covers the AOI and its margin
        from rasterio.warp import transform_bounds
        left, bottom, right, top = transform_bounds("EPSG:4326", red.crs, *BBOX)
        assert red.bounds.left <= left - 290 and red.bounds.top >= top + 290
    mtimes = {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()}
    assert fetching.download_window(item, BBOX, tmp_path / "out", margin_m=300) == path
    assert {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()} == mtimes  # nothing fetched or written again


def test_fetch_command_registers_the_windows_and_they_load(api, tmp_path, capsys):
    base, _ = api
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    code = main(["fetch", AOI_NAME, "--start", "2024-01-18", "--end", "2024-02-05", "--api", base,
                 "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("added: sentinel2-") == 3 and "3 Sentinel-2 L2A item(s)" in err
    from pipeline.readers.catalogue import catalogue_sources
    from pipeline.aoi import load_aoi

    sources = catalogue_sources(tmp_path / "data", AOI_NAME)
    record, reflectance, clear = sources[0].load(load_aoi(AOI_NAME, aoi_dir).analysis_grid(10.0))
    assert record.bands == ("blue", "green", "red", "nir", "swir16", "swir22") and clear.all()
    assert 0.09 < np.nanmin(reflectance[2]) and np.nanmax(reflectance[2]) < 0.2  # DN 2000..2999 x 1e-4 - 0.1


def test_failing_or_unreachable_api_is_one_line(api, tmp_path):
    base, handler = api
    handler.fail = True
    with pytest.raises(SceneError) as err:
        fetching.search_sentinel2(base, BBOX, date(2024, 1, 18), date(2024, 2, 5))
    assert base in str(err.value) and "\n" not in str(err.value) and "--api" in str(err.value)
    with pytest.raises(SceneError) as err:
        fetching.search_sentinel2("http://127.0.0.1:9", BBOX, date(2024, 1, 18), date(2024, 2, 5))
    assert "127.0.0.1:9" in str(err.value) and "\n" not in str(err.value)


def test_an_item_that_does_not_cover_the_aoi(api, tmp_path):
    base, _ = api
    elsewhere = [i for i in _items(base) if i["bbox"][0] == 10.0][0]
    item = pystac.Item.from_dict(elsewhere)
    with pytest.raises(SceneError) as err:
        fetching.download_window(item, (10.02, 40.02, 10.05, 40.05), tmp_path / "out")
    assert "does not cover the AOI" in str(err.value) and "\n" not in str(err.value)
    assert LAT and LON  # the small AOI's centre is what BBOX surrounds


@pytest.mark.parametrize("args, needle", [
    (["--start", "2024-02-05", "--end", "2024-01-18"], "--start 2024-02-05 is after --end 2024-01-18"),
    (["--start", "2024-01-18", "--end", "2024-02-05", "--api", "file:///etc/passwd"], "not an http(s) URL"),
    (["--start", "2024-01-18", "--end", "2024-02-05", "--api", "earth-search.aws.element84.com/v1"], "not an http(s) URL"),
])
def test_reversed_days_or_an_api_that_is_no_web_address_are_refused_before_any_search(api, tmp_path, capsys, args, needle):
    _, handler = api
    handler.fail = True  # a search would fail with another message
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    code = main(["fetch", AOI_NAME, *args, "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir)])
    out, err = capsys.readouterr()
    assert code != 0 and out == "" and err.count("\n") == 1 and needle in err and "STAC search failed" not in err
    assert not (tmp_path / "data").exists()
