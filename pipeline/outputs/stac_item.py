"""A run described as a STAC Item (``item.json``), so that catalogues and GIS tools can find its outputs.

The item's geometry is the AOI's outline in lon/lat, its time the span of the scenes (first to
last acquisition, UTC), and its assets every output of the run folder with its media type and
role: the report, the polygons (GeoPackage, GeoJSON, KML), the rasters (Cloud-Optimised
GeoTIFFs) with their QGIS styles, and the figures. Every href is relative to the item, so the
run folder can be moved or copied whole; nothing in it points at the network. Simulated runs
carry ``burnscan:simulated: true`` and SIMULATED in the title and description.

The properties that name or time one run (its id, the code's commit and version) are the
``burnscan:`` forms of :data:`pipeline.provenance.compare.RUN_SPECIFIC_FIELDS`, which a
comparison of two runs sets aside like those of ``report.json``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from pipeline.model import SceneRecord

__all__ = ["ITEM_NAME", "parameters_sha256", "run_item"]

ITEM_NAME = "item.json"

# Media types and roles by suffix (STAC best practices; GeoPackage's registered type; KML's IANA type).
_KINDS: dict[str, tuple[str, list[str]]] = {
    ".tif": (pystac.MediaType.COG, ["data"]),
    ".qml": ("application/xml", ["style"]),
    ".gpkg": (pystac.MediaType.GEOPACKAGE, ["data"]),
    ".geojson": (pystac.MediaType.GEOJSON, ["data"]),
    ".kml": ("application/vnd.google-earth.kml+xml", ["data"]),
    ".json": (pystac.MediaType.JSON, ["metadata"]),
    ".md": ("text/markdown", ["metadata"]),
    ".html": (pystac.MediaType.HTML, ["overview"]),
    ".png": (pystac.MediaType.PNG, ["overview"]),
    ".pdf": ("application/pdf", ["overview"]),
}


def parameters_sha256(parameters: dict[str, Any]) -> str:
    """SHA-256 of the resolved parameters as canonical JSON (sorted keys): equal hashes, equal parameters."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _asset(name: str) -> pystac.Asset:
    path = Path(name)
    media_type, roles = _KINDS.get(path.suffix.lower(), ("application/octet-stream", ["data"]))
    if path.suffix == ".tif" and "_cir" in path.stem:
        roles = ["visual"]  # a composite for looking at, not a measurement
    if path.name.startswith("report."):
        roles = ["metadata", "report"]
    return pystac.Asset(href=f"./{name}", media_type=str(media_type), roles=list(roles), title=_title(path))


def _title(path: Path) -> str:
    stem = path.stem.removesuffix("_SIMULATED")
    if path.suffix == ".qml":
        return f"QGIS style of {path.with_suffix('.tif').name}"
    if stem.startswith("change_"):
        return f"burn-index change to {stem.split('_')[-1]} (float32 COG)"
    if stem == "first_seen":
        return "scene on which each pixel was first seen burned (int16 COG)"
    if stem.endswith("_cir"):
        return f"false-colour infrared composite of {stem.removesuffix('_cir')} (uint8 RGB COG)"
    if stem.startswith("burns"):
        return f"burn polygons ({path.suffix.lstrip('.').upper()})"
    return path.name


def run_item(files: list[str], *, run_id: str, aoi_name: str, aoi_lonlat: BaseGeometry, records: list[SceneRecord],
             simulated: bool, parameters: dict[str, Any], code: dict[str, Any], code_version: str,
             index_name: str) -> dict[str, Any]:
    """The run's STAC Item as a dict (write it as ``item.json`` in the run folder).

    Parameters
    ----------
    files
        The run folder's files as '/'-separated paths inside it (each becomes an asset).
    aoi_lonlat
        The AOI's outline in lon/lat (the item's geometry).
    records
        Every scene of the run: the item's time span and its ``burnscan:scenes``.
    code
        The git state (``commit``, ``dirty``), :func:`pipeline.provenance.versions.git_state`.
    """
    times = sorted(r.acquired.astimezone(timezone.utc) for r in records)
    word = "SIMULATED " if simulated else ""
    properties: dict[str, Any] = {
        "title": f"{word}burnscan run of {aoi_name}, {times[0]:%Y-%m-%d} to {times[-1]:%Y-%m-%d}",
        "description": (("SIMULATED DATA - not evidence about a real place. " if simulated else "")
                        + f"Burns found and dated by burnscan on {len(records)} scene(s) of {aoi_name}, "
                        f"{times[0]:%Y-%m-%d} to {times[-1]:%Y-%m-%d}, with the {index_name.upper()} index."),
        "start_datetime": _iso(times[0]),
        "end_datetime": _iso(times[-1]),
        "burnscan:simulated": simulated,
        "burnscan:aoi": aoi_name,
        "burnscan:index": index_name,
        "burnscan:parameters_sha256": parameters_sha256(parameters),
        "burnscan:scenes": [{"id": r.scene_id, "datetime": r.acquired_utc, "sensor": r.sensor} for r in records],
        "burnscan:run_id": run_id,
        "burnscan:commit": code.get("commit"),
        "burnscan:dirty": code.get("dirty"),
        "burnscan:code_version": code_version,
    }
    item = pystac.Item(id=run_id, geometry=mapping(aoi_lonlat), bbox=list(aoi_lonlat.bounds), datetime=None,
                       properties=properties)
    for name in sorted(files):
        item.add_asset(name, _asset(name))
    return item.to_dict(include_self_link=False, transform_hrefs=False)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
