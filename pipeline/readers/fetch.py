"""Fetch Sentinel-2 L2A scenes of an AOI from a public STAC API, reading only the AOI window.

A full Sentinel-2 tile is about a gigabyte; a village AOI needs a few hundred kilobytes of it.
The assets are cloud-optimised GeoTIFFs, so each band is opened over HTTP (GDAL range reads)
and only the window around the AOI is copied, at its native resolution (10 m bands stay 10 m,
20 m bands 20 m), into ``<out>/<item id>/<asset>.tif``. Beside them goes the item itself, its
hrefs pointing at the local files, which :mod:`pipeline.readers.sentinel2` reads like any item. The API
chooses the item id, so it is checked as a file name (:func:`pipeline.names.path_inside`) before
anything is read or written: an id that is not one plain name is refused, never renamed.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timezone
from pathlib import Path

import pystac
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from shapely.geometry.base import BaseGeometry

from pipeline.errors import SceneError, import_extra
from pipeline.readers.rasters import UNREADABLE, short, sha256_file
from pipeline.names import path_inside
from pipeline.outputs.write import atomic_path
from pipeline.readers.stacio import LocalStacIO

__all__ = ["EARTH_SEARCH", "download_window", "fetch", "search_sentinel2"]

logger = logging.getLogger(__name__)

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
# Earth Search v1 asset keys, and the older keys mapped onto them.
_ASSETS = ("blue", "green", "red", "nir", "swir16", "swir22", "scl")
_OLD_KEYS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22", "SCL": "scl"}


def search_sentinel2(api_url: str, bbox: tuple[float, float, float, float], start: date, end: date, *,
                     collection: str = "sentinel-2-l2a", max_cloud: float | None = None, limit: int = 100) -> list[pystac.Item]:
    """Items of ``collection`` over ``bbox`` (lon/lat) between ``start`` and ``end``, in time order."""
    # Only searching needs pystac-client (the fetch extra): outside the try below, so that its absence is
    # said as the fix instead of as a failed search.
    import_extra("pystac_client", package="pystac-client", extra="fetch", needed_by="burnscan fetch")
    from pystac_client import Client

    try:
        client = Client.open(api_url)
        search = client.search(collections=[collection], bbox=list(bbox), datetime=f"{start.isoformat()}/{end.isoformat()}",
                               query={"eo:cloud_cover": {"lt": max_cloud}} if max_cloud is not None else None, max_items=limit)
        items = list(search.items())
    except Exception as exc:  # pystac-client and requests raise many types for an unreachable or failing API
        raise SceneError(f"{api_url}: STAC search failed ({type(exc).__name__}: {short(exc)}); check the network or the --api URL") from None
    return sorted(items, key=lambda item: item.datetime or datetime.min.replace(tzinfo=timezone.utc))


def _asset_key(key: str) -> str | None:
    return key if key in _ASSETS else _OLD_KEYS.get(key)


def _window(src: rasterio.io.DatasetReader, bbox_lonlat: tuple[float, float, float, float], margin_m: float, href: str) -> Window:
    left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, *bbox_lonlat, densify_pts=21)
    wanted = from_bounds(left - margin_m, bottom - margin_m, right + margin_m, top + margin_m, transform=src.transform)
    col0, row0 = math.floor(wanted.col_off), math.floor(wanted.row_off)
    col1, row1 = math.ceil(wanted.col_off + wanted.width), math.ceil(wanted.row_off + wanted.height)
    col0, row0, col1, row1 = max(col0, 0), max(row0, 0), min(col1, src.width), min(row1, src.height)
    if col1 <= col0 or row1 <= row0:
        raise SceneError(f"{href}: asset does not cover the AOI; pick items whose footprint contains it")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _copy_window(href: str, bbox_lonlat, target: Path, margin_m: float, tags: dict[str, str], *, root: Path) -> bool:
    """Copy the AOI window of ``href`` to ``target``; False when ``target`` already holds exactly it."""
    try:
        with rasterio.open(href) as src:
            window = _window(src, bbox_lonlat, margin_m, href)
            transform = src.window_transform(window)
            if target.is_file():
                with rasterio.open(target) as done:
                    if done.transform == transform and (done.width, done.height) == (int(window.width), int(window.height)):
                        return False
            data = src.read(window=window)
            profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1], "count": data.shape[0],
                       "dtype": data.dtype.name, "crs": src.crs, "transform": transform, "nodata": src.nodata,
                       "compress": "deflate", "tiled": data.shape[1] >= 16 and data.shape[2] >= 16,
                       **({"blockxsize": 16, "blockysize": 16} if data.shape[1] >= 16 and data.shape[2] >= 16 else {})}
    except UNREADABLE as exc:
        raise SceneError(f"{href}: asset cannot be read ({short(exc)}); check the network or the item") from None
    with atomic_path(target, root=root) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            dst.update_tags(**tags)
    return True


def download_window(item: pystac.Item, bbox_lonlat: tuple[float, float, float, float], out_dir: Path, *,
                    assets: tuple[str, ...] = _ASSETS, margin_m: float = 300.0) -> Path:
    """Copy the AOI window of each wanted asset of ``item``; write the local item; return its path.

    Raises
    ------
    SceneError
        When the item's id cannot be a folder name (checked before anything is read or written).
    """
    folder = path_inside(Path(out_dir), item.id, what="STAC item id", source=item.get_self_href() or "STAC item")
    local: dict[str, pystac.Asset] = {}
    window_of: dict[str, str] = {}
    changed = False
    for key, asset in item.assets.items():
        name = _asset_key(key)
        if name is None or name not in assets or name in local:
            continue
        bands = asset.extra_fields.get("raster:bands") or []
        if not isinstance(bands, list) or not all(isinstance(b, dict) for b in bands):  # the API's item, before any read
            raise SceneError(f"{item.get_self_href() or item.id}: asset {key} has raster:bands {str(bands)[:60]!r}, not a list of "
                             f"objects; check the --api catalogue")
        tags = {k: str(bands[0][k]) for k in ("scale", "offset") if bands and k in bands[0]}
        target = folder / f"{name}.tif"
        changed |= _copy_window(asset.href, bbox_lonlat, target, margin_m, tags, root=folder)
        entry = asset.clone()
        entry.href = target.name  # beside the item: the folder can be moved whole
        entry.extra_fields["burnscan:sha256"] = sha256_file(target)
        local[name] = entry
        window_of[name] = asset.href
    if "red" not in local or "nir" not in local:
        raise SceneError(f"{item.get_self_href() or item.id}: item has no red and NIR assets; is it a Sentinel-2 L2A item?")
    item_path = folder / f"{item.id}.json"
    if changed or not item_path.is_file():
        copy = item.clone()
        copy.clear_links()  # the API's links would send a reader back to the network
        copy.assets = {}
        for name, entry in local.items():
            copy.add_asset(name, entry)
        copy.properties["burnscan:window_of"] = window_of
        copy.properties["burnscan:fetched_utc"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        copy.save_object(include_self_link=False, dest_href=str(item_path), stac_io=LocalStacIO(root=folder, what="STAC item"))
    return item_path


def fetch(api_url: str, aoi_geometry: BaseGeometry, start: date, end: date, out_dir: Path, *,
          max_cloud: float | None = None) -> list[Path]:
    """Search, then copy the AOI window of every item found; return the local item files."""
    bbox = tuple(float(v) for v in aoi_geometry.bounds)
    items = search_sentinel2(api_url, bbox, start, end, max_cloud=max_cloud)
    logger.info(f"{len(items)} Sentinel-2 L2A item(s) over the AOI between {start} and {end} at {api_url}")
    paths = []
    for item in items:
        paths.append(download_window(item, bbox, out_dir))
        cloud = item.properties.get("eo:cloud_cover")
        logger.info(f"  {item.id} ({item.datetime:%Y-%m-%d %H:%M} UTC, cloud {cloud if cloud is not None else 'n/a'} %) -> {paths[-1].parent}")
    return paths
