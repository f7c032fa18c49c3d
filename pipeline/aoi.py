"""The AOI registry: one GeoJSON file per place in ``aoi/``.

An AOI file is a GeoJSON ``Feature`` in longitude/latitude (EPSG:4326) whose properties
say where the location comes from and how sure it is, what was reported there, and
optionally which parameters differ from the defaults for this place. Names are checked
before any path is built from them, so an AOI name can never reach outside the registry.

A file is checked as a whole when it is read, before any work: its size and nesting, its
geometry (a valid polygon in lon/lat, at least a hectare, not across the antimeridian,
within reach of one UTM zone, a bounding box under the size limit), and every property
burnscan reads, by type (:data:`PROPERTY_KINDS`), the time zone against the IANA
database and the parameters through :func:`pipeline.config.check_parameters`. A mistake in
an AOI file is then one line at the start of a run, not a traceback after minutes of work.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from numbers import Real
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, available_timezones

import numpy as np
from pyproj import Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
import shapely

from pipeline.config import check_parameters
from pipeline.errors import AoiError, json_kind
from pipeline.grid import Grid, grid_for_bounds
from pipeline.names import AOI_NAME_PATTERN as _NAME_PATTERN, aoi_name

__all__ = ["candidate_aoi_feature", "Aoi", "AOI_DIR", "validate_aoi_name", "load_aoi", "list_aois", "utm_crs_for",
           "aoi_from_feature", "check_timezone", "UTC_NAMES", "MAX_ZONE_FROM_SUN_H", "PROPERTY_KINDS", "MAX_AOI_AREA_KM2", "MIN_AOI_AREA_M2"]

AOI_DIR = Path(__file__).resolve().parent.parent / "aoi"
"""Where the registry lives: ``aoi/`` at the top of the project."""

# Larger than a commune-wide search box, smaller than a region: an AOI past this is
# almost certainly a mistake in the coordinates, and would cost hours to process. It bounds
# the AOI's bounding box, not its polygon: the grid a run allocates covers the whole box, so
# two small parts 1500 km apart are a continent of pixels.
MAX_AOI_AREA_KM2 = 2500.0

# A hamlet of a few compounds covers about a hectare; below that an AOI is a mistake (a
# point typed twice, metres read as degrees) and leaves no background to measure noise on.
MIN_AOI_AREA_M2 = 10_000.0

# An AOI file is a few kB; a finely drawn search area or settlement outline a few hundred.
# Past this the file is not an AOI, and reading it would be the first thing to go wrong.
_MAX_FILE_BYTES = 10_000_000

# A MultiPolygon inside a property nests seven levels deep; a file nested far deeper is
# broken or hostile, and deep nesting exhausts the recursion of every JSON reader after us.
_MAX_DEPTH = 32

# UTM keeps its scale error under ~0.1 % within 3 degrees of the zone's central meridian and
# ~0.5 % (1 % in area) at 6 degrees: an AOI reaching further east or west than 6 degrees from
# its zone's meridian, or wider than a zone, would have its hectares misstated.
_MAX_DEGREES_FROM_MERIDIAN = 6.0
_MAX_LON_SPAN = 6.0
_UTM_LATITUDES = (-80.0, 84.0)  # the UTM system's own limits; the poles use UPS


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
    def local_zone(self) -> str | None:
        """The time zone of local times, or ``None`` when the file names none or names UTC: times are then said in
        UTC alone, never labelled local."""
        name = self.properties.get("timezone")
        return None if name is None or name in UTC_NAMES else str(name)

    @property
    def display_name(self) -> str:
        """Short human name for reports and figures."""
        return str(self.properties.get("display_name", self.name))

    @property
    def location_uncertain(self) -> bool:
        """True where the village location is only approximate."""
        return bool(self.properties.get("location_uncertain", False))

    @property
    def takes_the_demo(self) -> bool:
        """Whether a run without scenes may use the SIMULATED demo here: an AOI of the project's registry, a simulated
        AOI, or one whose file asks for it (``"simulated_demo": true``). Anyone else's AOI without scenes is refused: a
        Sahel village simulated at their place would be a finding about nothing, however labelled."""
        if self.properties.get("simulated_demo") is True or self.properties.get("simulated") is True:
            return True
        return self.path is not None and Path(self.path).resolve().parent == AOI_DIR.resolve()

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
        For a bad name, a missing, unreadable or oversized file, JSON that does not parse or
        nests absurdly deep, and every fault :func:`aoi_from_feature` finds.
    ParameterError
        For ``parameters`` out of range or of the wrong kind (the message names the file).
    """
    validate_aoi_name(name)
    path = Path(directory) / f"{name}.geojson"
    _check_aoi_file(path, name, directory)
    size = path.stat().st_size
    if size > _MAX_FILE_BYTES:
        raise AoiError(f"{path}: file is {size / 1e6:.0f} MB, an AOI file is a few kB (limit {_MAX_FILE_BYTES / 1e6:.0f} MB); "
                       f"write one GeoJSON Feature with the AOI polygon, or restore the file from git")
    try:
        feature = json.loads(path.read_text(encoding="utf-8-sig"))  # a Windows editor's byte-order mark is no content
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AoiError(f"{path}: not valid GeoJSON ({exc}); fix the file or restore it from git") from None
    except RecursionError:
        raise AoiError(f"{path}: JSON nested too deeply to be an AOI file; write one GeoJSON Feature, "
                       f"or restore the file from git") from None
    except OSError as exc:
        raise AoiError(f"{path}: cannot be read ({exc.strerror or exc}); fix its permissions or restore it from git") from None
    return aoi_from_feature(name, feature, path=path)


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


def _check_aoi_file(path: Path, name: str, directory: Path) -> None:
    """Refuse a missing AOI file with the known names, and one that is there but no regular file with what it is.

    The registry lists every ``*.geojson`` name, so a link to /dev/zero was called missing while
    listed among the known AOIs; and read, a device would never end.
    """
    fix = f"replace it with a GeoJSON Feature file named {name}.geojson, or restore it from git"
    link = f" (a link to {os.readlink(path)})" if path.is_symlink() else ""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if link:
            raise AoiError(f"{path}: the AOI file is a link to a file that does not exist{link}; {fix}") from None
        known = ", ".join(list_aois(directory)) or "none"
        raise AoiError(f"{path}: no such AOI; known AOIs: {known}; add a GeoJSON Feature file named {name}.geojson") from None
    except OSError as exc:
        raise AoiError(f"{path}: the AOI file exists but cannot be examined ({exc.strerror or exc}){link}; "
                       f"fix its permissions, or {fix}") from None
    if not stat.S_ISREG(mode):
        kind = next((text for test, text in _KINDS if test(mode)), "not a file")
        raise AoiError(f"{path}: the AOI file exists but is {kind}{link}, not a regular file; {fix}")


def _as_one_feature(data: Any, where: str) -> Any:
    """An AOI file as its one Feature: a bare polygon geometry (as AOI outlines are often shared) is
    that geometry without properties, a FeatureCollection of one Feature is that Feature; a
    collection of several places is refused, since one AOI file is one place."""
    if not isinstance(data, dict):
        return data
    if data.get("type") in ("Polygon", "MultiPolygon"):
        return {"type": "Feature", "geometry": data, "properties": {}}
    if data.get("type") == "FeatureCollection" and isinstance(data.get("features"), list):
        features = data["features"]
        if len(features) == 1:
            return features[0]
        raise AoiError(f"{where}: a FeatureCollection of {len(features)} features, where an AOI file is one place; "
                       f"write each place's Feature to its own file in the AOI folder")
    return data


def aoi_from_feature(name: str, feature: Any, *, path: Path | None = None) -> Aoi:
    """Build an :class:`Aoi` from a parsed GeoJSON Feature (checks as :func:`load_aoi`).

    Raises
    ------
    AoiError
        For a Feature that is not one, nested absurdly deep, a geometry that is not a valid
        polygon in lon/lat of at least :data:`MIN_AOI_AREA_M2`, crosses the antimeridian, is
        too wide for one UTM zone or has a bounding box over :data:`MAX_AOI_AREA_KM2`, and for
        properties that are not an object or hold a known property of the wrong type.
    ParameterError
        For ``parameters`` that :func:`pipeline.config.check_parameters` refuses (the message
        names the file).
    """
    where = str(path) if path else f"AOI {name!r}"
    _check_depth(feature, where)
    feature = _as_one_feature(feature, where)
    if not isinstance(feature, dict) or feature.get("type") != "Feature" or not feature.get("geometry"):
        raise AoiError(f"{where}: expected a GeoJSON Feature with a geometry; write one Feature per AOI file")
    geometry = _lonlat_polygon(feature["geometry"], where, "geometry")
    raw = feature.get("properties")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise AoiError(f"{where}: properties are {json_kind(raw)}, not an object; write them as "
                       f'{{"display_name": "...", "timezone": "Africa/Bamako", ...}}')
    properties = dict(raw)
    for key, check in PROPERTY_KINDS.items():
        if key in properties:
            check(properties[key], f"{where}: property {key!r}")
    if isinstance(properties.get("parameters"), dict):
        check_parameters(properties["parameters"], source=f"AOI file {path}" if path else f"AOI {name!r}")
    if "timezone" in properties:
        _check_zone_fits(properties["timezone"], geometry, where)
    aoi = Aoi(name=name, geometry=geometry, properties=properties, path=path)
    area_m2 = aoi.projected().area
    if area_m2 < MIN_AOI_AREA_M2:
        raise AoiError(f"{where}: polygon covers {area_m2:.0f} m2, less than {MIN_AOI_AREA_M2 / 1e4:.0f} ha; "
                       f"draw an AOI around the whole village (at least 100 x 100 m), in lon/lat degrees")
    left, bottom, right, top = aoi.projected().bounds
    box_km2 = (right - left) * (top - bottom) / 1e6
    if box_km2 > MAX_AOI_AREA_KM2:
        raise AoiError(
            f"{where}: AOI's bounding box covers {box_km2:.0f} km2 (limit {MAX_AOI_AREA_KM2:.0f}; a run allocates the whole box); "
            f"draw a tighter AOI around the village, one AOI per place, or use its search_area with `burnscan search`"
        )
    _check_zone_reach(geometry, aoi.utm_crs, where, "AOI")
    if properties.get("search_area"):
        area = shape(properties["search_area"])
        if not area.intersects(geometry):  # the place is somewhere in its search area: apart, one of them is wrong
            apart_km = Aoi(name, area).projected(aoi.utm_crs).distance(aoi.projected()) / 1e3
            raise AoiError(f"{where}: search_area lies {apart_km:.0f} km from the AOI's polygon, which it should contain; "
                           f"check that both are in lon/lat order (longitude first) and drawn around the same place")
        _check_zone_reach(area, aoi.utm_crs, where, "search_area")
        left, bottom, right, top = Aoi(name, area).projected(aoi.utm_crs).bounds
        box_km2 = (right - left) * (top - bottom) / 1e6
        if box_km2 > MAX_AOI_AREA_KM2:
            raise AoiError(f"{where}: search_area's bounding box covers {box_km2:.0f} km2 (limit {MAX_AOI_AREA_KM2:.0f}); "
                           f"draw it around the commune or district the place is known to be in")
    return aoi


def _check_depth(document: Any, where: str) -> None:
    """Refuse JSON nested deeper than :data:`_MAX_DEPTH` (walked without recursion)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise AoiError(f"{where}: JSON nested more than {_MAX_DEPTH} levels deep, which no AOI file needs; "
                           f"write one GeoJSON Feature, or restore the file from git")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _lonlat_polygon(raw: Any, where: str, what: str) -> BaseGeometry:
    """A valid Polygon or MultiPolygon in lon/lat degrees that does not cross the antimeridian."""
    odd = _not_finite(raw.get("coordinates") if isinstance(raw, dict) else None)
    if odd is not None:  # refused before shapely, which warns on NaN and inf, then builds a shape anyway
        raise AoiError(f"{where}: {what} has a coordinate that is {odd} (not a number of degrees); "
                       f"write every position as [lon, lat] in degrees")
    try:
        geometry = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed input
        raise AoiError(f"{where}: {what} cannot be read ({exc}); give a Polygon in lon/lat") from None
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise AoiError(f"{where}: {what} is a {geometry.geom_type}; an AOI must be a Polygon in lon/lat")
    if geometry.is_empty:
        raise AoiError(f"{where}: {what} polygon is empty; draw the place as a Polygon in lon/lat")
    if not geometry.is_valid:
        from shapely.validation import explain_validity

        raise AoiError(f"{where}: {what} polygon is not valid ({explain_validity(geometry)}); "
                       f"redraw it as a simple polygon (rings that do not cross, parts that do not overlap)")
    lon0, lat0, lon1, lat1 = geometry.bounds
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise AoiError(f"{where}: {what} coordinates {geometry.bounds} are not lon/lat degrees; use EPSG:4326 order (lon, lat)")
    # GeoJSON cannot say which way round a ring crossing +-180 goes: shapely reads it as going
    # the long way, around the world, and the UTM zone of that shape is on the other side of it.
    # Handling it would mean shifting longitudes in every reader and writer that speaks lon/lat
    # (outputs, footprints, STAC searches); RFC 7946 (3.1.9) asks for such shapes to be split.
    crossing = lon1 - lon0 > 180 or any(abs(b[0] - a[0]) > 180 for ring in _rings(geometry)
                                         for a, b in zip(ring.coords[:-1], ring.coords[1:]))
    if crossing:
        # GeoJSON cannot tell a ring across 180 degrees from one drawn the long way round (a whole-world box): both said.
        raise AoiError(f"{where}: {what} crosses the antimeridian or spans more than half the world (longitudes {lon0:g} to "
                       f"{lon1:g}); split an AOI across 180 degrees into one AOI on each side, or draw it around the place")
    if lat0 < _UTM_LATITUDES[0] or lat1 > _UTM_LATITUDES[1]:
        raise AoiError(f"{where}: {what} reaches latitude {lat0 if lat0 < _UTM_LATITUDES[0] else lat1:g}, outside the UTM "
                       f"zones ({_UTM_LATITUDES[0]:g} to {_UTM_LATITUDES[1]:g}) burnscan measures in; draw it inside them")
    return geometry


def _not_finite(coordinates: Any) -> float | None:
    """The first NaN or infinite number in nested GeoJSON coordinates (Python's json reads NaN and Infinity), else None."""
    stack = [coordinates]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, float) and not math.isfinite(value):
            return value
    return None


def _rings(geometry: BaseGeometry) -> list:
    polygons = list(geometry.geoms) if geometry.geom_type == "MultiPolygon" else [geometry]
    return [ring for p in polygons for ring in (p.exterior, *p.interiors)]


def _check_zone_reach(geometry: BaseGeometry, crs: str, where: str, what: str) -> None:
    """Refuse a shape wider than a UTM zone or reaching far past the zone of ``crs``."""
    lon0, _, lon1, _ = geometry.bounds
    meridian = (int(crs.split(":")[1]) % 100) * 6.0 - 183.0
    furthest = max(abs(lon0 - meridian), abs(lon1 - meridian))
    if lon1 - lon0 > _MAX_LON_SPAN or furthest > _MAX_DEGREES_FROM_MERIDIAN:
        raise AoiError(f"{where}: {what} spans longitudes {lon0:g} to {lon1:g}, {furthest:.1f} degrees from the central "
                       f"meridian of its UTM zone ({crs}); areas would be misstated past {_MAX_DEGREES_FROM_MERIDIAN:g}: "
                       f"draw one AOI per place, each within {_MAX_LON_SPAN:g} degrees of longitude")


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # Not places: "localtime" is whatever machine runs the code, "Factory" means "unset".
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")


def check_timezone(name: Any, where: str = "timezone") -> str:
    """Return ``name`` if it is an IANA time zone name of a place, else raise :class:`AoiError`.

    A name is checked against the tz database before anything reads it, and never as a path:
    ``../../etc/passwd`` or ``/etc/localtime`` are refused by their shape alone.

    >>> check_timezone("Africa/Bamako")
    'Africa/Bamako'
    """
    fix = "give the IANA name of the place's zone, e.g. 'Africa/Bamako' or 'UTC'"
    if not isinstance(name, str) or not _ZONE_NAME.fullmatch(name) or len(name) > 64:
        raise AoiError(f"{where}: {str(name)[:80]!r} is not a time zone name; {fix}")
    known = _zone_names()
    if known and name not in known:
        raise AoiError(f"{where}: {name!r} is not a time zone of the IANA database; {fix}")
    try:
        ZoneInfo(name)
    except Exception:  # not found, a folder of zones, a damaged file: all mean "not a zone"
        raise AoiError(f"{where}: {name!r} is not a time zone of the IANA database; {fix}") from None
    return name


UTC_NAMES = frozenset({"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu", "GMT", "Etc/GMT",
                       "GMT0", "GMT+0", "GMT-0", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich"})
"""Zone names that mean "times in UTC", not a place's clock: no local time is claimed under them."""

MAX_ZONE_FROM_SUN_H = 4.0
"""Hours a place's clock may run from the solar time at its longitude. Civil zones stay within about three
(western China on Beijing time, Spain and Galicia on Central European summer time); a zone further off is
another place's (Asia/Kolkata typed for California), and would put every local date in the report on
another day."""


def _check_zone_fits(name: str, geometry: BaseGeometry, where: str) -> None:
    """Refuse a zone whose clock runs more than :data:`MAX_ZONE_FROM_SUN_H` from the AOI's solar time
    (longitude / 15 h), winter or summer; wrapped across the date line (Kiribati's +14 at 157 W is 0.5 h off)."""
    if name in UTC_NAMES:
        return
    zone, lon = ZoneInfo(name), float(geometry.centroid.x)
    offsets = [datetime(2024, month, 15, 12, tzinfo=timezone.utc).astimezone(zone).utcoffset().total_seconds() / 3600
               for month in (1, 7)]
    gaps = [abs((h - lon / 15 + 12) % 24 - 12) for h in offsets]
    if min(gaps) > MAX_ZONE_FROM_SUN_H:
        hours = offsets[int(np.argmin(gaps))]
        raise AoiError(f"{where}: property 'timezone' is {name!r} (UTC{_hours(hours)}), {min(gaps):.1f} h from the solar time at "
                       f"the AOI's longitude {lon:.2f} (about UTC{_hours(lon / 15)}); give the zone of the place itself "
                       f"(an IANA name such as 'Africa/Bamako'), or 'UTC' for times in UTC alone")


def _hours(hours: float) -> str:
    minutes = round(hours * 60)
    h, m = divmod(abs(minutes), 60)
    return f"{'-' if minutes < 0 else '+'}{h:02d}:{m:02d}"


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise AoiError(f"{where} is {json_kind(value)}; write it as text in quotes")


def _flag(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise AoiError(f"{where} is {json_kind(value)}; write true or false")


def _number(low: float, high: float) -> Callable[[Any, str], None]:
    def check(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not low <= value <= high:
            raise AoiError(f"{where} is {value!r}; write a number from {low:g} to {high:g}")
    return check


def _object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise AoiError(f"{where} is {json_kind(value)}, not an object; write it as {{\"name\": value, ...}}")


def _events(value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise AoiError(f"{where} is {json_kind(value)}; write a list of objects with \"date\", \"reported\" and \"source\"")
    for i, event in enumerate(value):
        for key in ("date", "reported", "source"):
            if key in event and not isinstance(event[key], str):
                raise AoiError(f"{where}[{i}].{key} is {json_kind(event[key])}; write it as text in quotes")
        if "date" in event and not _calendar_date(event["date"]):
            raise AoiError(f"{where}[{i}].date is {event['date']!r}, which is no day of the calendar; "
                           "write the reported date as YYYY-MM-DD (e.g. \"2024-01-27\")")


# An event date is copied into every report as the date the attack was reported: a day that
# does not exist (a typo such as 2024-02-30) would be evidence of nothing. Text that is not
# date-shaped ("late January 2024") is kept as written.
_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})(?:-(\d{1,2}))?(?=$|[T ])")


def _calendar_date(text: str) -> bool:
    """False when ``text`` is shaped as a date (``YYYY-MM-DD``, ``YYYY-MM``) but names no real day or month."""
    match = _ISO_DAY.match(text.strip())
    if match is None:
        return True
    year, month, day = int(match[1]), int(match[2]), int(match[3] or 1)
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _band_map(value: Any, where: str) -> None:
    if isinstance(value, str) or (isinstance(value, list) and all(v is None or isinstance(v, str) for v in value)):
        return
    raise AoiError(f"{where} is {json_kind(value)}; write the band names in file order, e.g. \"blue,green,red,nir\"")


def _timezone(value: Any, where: str) -> None:
    check_timezone(value, where)


def _geometry(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise AoiError(f"{where} is {json_kind(value)}; write a GeoJSON Polygon in lon/lat")
    _lonlat_polygon(value, where, "geometry")


PROPERTY_KINDS: dict[str, Callable[[Any, str], None]] = {
    **{key: _text for key in ("name", "display_name", "country", "region", "cercle", "location_confidence",
                              "location_source", "location_note", "search_area_note")},
    "timezone": _timezone,
    "location_uncertain": _flag,
    "simulated": _flag,
    "simulated_demo": _flag,
    "point_lat": _number(-90.0, 90.0),
    "point_lon": _number(-180.0, 180.0),
    "aoi_size_m": _number(100.0, 50_000.0),  # a hectare's side to a square at the area limit
    "events": _events,
    "parameters": _object,
    "search_area": _geometry,
    "settlement": _geometry,
    "band_map": _band_map,
}
"""The properties burnscan reads, each with its check (a property not listed is kept as written)."""


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
