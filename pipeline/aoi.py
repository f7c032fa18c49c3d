"""The AOI registry: one GeoJSON file per place in ``aoi/``.

An AOI file is a GeoJSON ``Feature`` in longitude/latitude (EPSG:4326) whose properties
say where the location comes from and how sure it is, what was reported there, and
optionally which parameters differ from the defaults for this place. Names are checked
before any path is built from them, so an AOI name can never reach outside the registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyproj import Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
import shapely

from .errors import AoiError
from .grid import Grid, grid_for_bounds
from .names import AOI_NAME_PATTERN as _NAME_PATTERN, aoi_name

__all__ = ["candidate_aoi_feature", "Aoi", "AOI_DIR", "validate_aoi_name", "load_aoi", "list_aois", "utm_crs_for"]

AOI_DIR = Path(__file__).resolve().parent.parent / "aoi"
"""Where the registry lives: ``aoi/`` at the top of the project."""

# Larger than a commune-wide search box, smaller than a region: an AOI past this is
# almost certainly a mistake in the coordinates, and would cost hours to process.
_MAX_AOI_AREA_KM2 = 2500.0


@dataclass(frozen=True)
class Aoi:
    """An area of interest.

    Attributes
    ----------
    name:
        Registry name (lowercase letters, digits, ``-``, ``_``).
    geometry:
        Polygon in longitude/latitude (EPSG:4326).
    properties:
        The GeoJSON properties as written in the file.
    path:
        The file it was read from (``None`` when built in code).
    """

    name: str
    geometry: BaseGeometry
    properties: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def display_name(self) -> str:
        """Short human name for reports and figures."""
        return str(self.properties.get("display_name", self.name))

    @property
    def location_uncertain(self) -> bool:
        """True where the village location is only approximate."""
        return bool(self.properties.get("location_uncertain", False))

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameter overrides this AOI file carries (may be empty)."""
        return dict(self.properties.get("parameters", {}))

    @property
    def utm_crs(self) -> str:
        """Authority string of the UTM zone holding the AOI centroid."""
        c = self.geometry.centroid
        return utm_crs_for(c.x, c.y)

    def projected(self, crs: str | None = None) -> BaseGeometry:
        """The AOI polygon in ``crs`` (default: its UTM zone)."""
        transformer = Transformer.from_crs("EPSG:4326", crs or self.utm_crs, always_xy=True)
        return shapely.transform(self.geometry, transformer.transform, interleaved=False)

    def analysis_grid(self, resolution: float) -> Grid:
        """Grid in the AOI's UTM zone covering the AOI bounds at ``resolution`` metres."""
        return grid_for_bounds(self.projected().bounds, self.utm_crs, resolution)


def utm_crs_for(lon: float, lat: float) -> str:
    """EPSG code of the WGS 84 UTM zone containing a point, e.g. ``"EPSG:32630"``.

    Examples
    --------
    >>> utm_crs_for(-3.78, 13.82)
    'EPSG:32630'
    """
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def validate_aoi_name(name: str) -> str:
    """Return ``name`` if it is a safe registry name, else raise :class:`AoiError`.

    Only lowercase ASCII letters, digits, ``-`` and ``_`` are allowed (no path
    separators, no dots, no spaces, no look-alike unicode), so that a name is never
    a path. The rule lives with every other name that becomes a path, in
    :func:`pipeline.names.aoi_name`.
    """
    return aoi_name(name)


def list_aois(directory: Path = AOI_DIR) -> list[str]:
    """Names of every AOI file in the registry, sorted."""
    return sorted(p.stem for p in Path(directory).glob("*.geojson") if _NAME_PATTERN.fullmatch(p.stem))


def load_aoi(name: str, directory: Path = AOI_DIR) -> Aoi:
    """Read and check ``<directory>/<name>.geojson``.

    Raises
    ------
    AoiError
        For a bad name, a missing file, unreadable JSON, a missing or non-polygonal
        geometry, an invalid or empty polygon, or an implausibly large area.
    """
    validate_aoi_name(name)
    path = Path(directory) / f"{name}.geojson"
    if not path.is_file():
        known = ", ".join(list_aois(directory)) or "none"
        raise AoiError(f"{path}: no such AOI; known AOIs: {known}; add a GeoJSON Feature file named {name}.geojson")
    try:
        feature = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AoiError(f"{path}: not valid GeoJSON ({exc}); fix the file or restore it from git") from None
    return aoi_from_feature(name, feature, path=path)


def aoi_from_feature(name: str, feature: Any, *, path: Path | None = None) -> Aoi:
    """Build an :class:`Aoi` from a parsed GeoJSON Feature (checks as :func:`load_aoi`)."""
    where = str(path) if path else f"AOI {name!r}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature" or not feature.get("geometry"):
        raise AoiError(f"{where}: expected a GeoJSON Feature with a geometry; write one Feature per AOI file")
    try:
        geometry = shape(feature["geometry"])
    except Exception as exc:  # shapely raises several types for malformed input
        raise AoiError(f"{where}: geometry cannot be read ({exc}); give a Polygon in lon/lat") from None
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise AoiError(f"{where}: geometry is a {geometry.geom_type}; an AOI must be a Polygon in lon/lat")
    if geometry.is_empty or not geometry.is_valid:
        raise AoiError(f"{where}: polygon is empty or self-intersecting; redraw it as a simple polygon")
    lon0, lat0, lon1, lat1 = geometry.bounds
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise AoiError(f"{where}: coordinates {geometry.bounds} are not lon/lat degrees; use EPSG:4326 order (lon, lat)")
    properties = dict(feature.get("properties") or {})
    aoi = Aoi(name=name, geometry=geometry, properties=properties, path=path)
    area_km2 = aoi.projected().area / 1e6
    if area_km2 <= 0.0:
        raise AoiError(f"{where}: polygon has zero area; draw an AOI of at least a few hectares")
    if area_km2 > _MAX_AOI_AREA_KM2:
        raise AoiError(
            f"{where}: AOI covers {area_km2:.0f} km2 (limit {_MAX_AOI_AREA_KM2:.0f}); "
            f"draw a tighter AOI around the village, or use its search_area with `burnscan search`"
        )
    return aoi


_PLACE_KEYS = ("country", "timezone", "region", "cercle", "events", "parameters")


def candidate_aoi_feature(parent: Aoi, name: str, centre_lonlat: tuple[float, float], *, side_m: float,
                          source: str, simulated: bool) -> dict[str, Any]:
    """A GeoJSON Feature for a new AOI around a place a search found, ready for ``aoi/``.

    The square of ``side_m`` is drawn in the UTM zone of the centre. The parent's place and
    events carry over; its location does not: the new file says where its location came from
    (``source``), that it is a candidate, and, when found on simulated scenes, that it is
    simulated and not a real place.
    """
    validate_aoi_name(name)
    lon, lat = centre_lonlat
    crs = utm_crs_for(lon, lat)
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x, y = to_utm.transform(lon, lat)
    half = side_m / 2
    ring = [to_lonlat.transform(cx, cy) for cx, cy in ((x - half, y - half), (x + half, y - half), (x + half, y + half),
                                                         (x - half, y + half), (x - half, y - half))]
    properties = {k: parent.properties[k] for k in _PLACE_KEYS if k in parent.properties}
    properties.update(
        name=name,
        display_name=f"{'SIMULATED ' if simulated else ''}candidate near {parent.display_name} ({lat:.5f}, {lon:.5f})",
        point_lat=round(lat, 6), point_lon=round(lon, 6), aoi_size_m=side_m,
        location_confidence="candidate", location_uncertain=True, location_source=source,
        location_note=("found on SIMULATED scenes: not a real place" if simulated
                       else "a burned-area cluster, not a confirmed village: check it on the imagery before relying on it"),
        simulated=simulated,
    )
    feature = {"type": "Feature", "properties": properties,
               "geometry": {"type": "Polygon", "coordinates": [[[round(a, 6), round(b, 6)] for a, b in ring]]}}
    aoi_from_feature(name, feature)  # the same checks as a file in aoi/
    return feature
