"""Active-fire detections that corroborate a burn polygon: near it, inside its date bracket.

A FIRMS detection (VIIRS 375 m, MODIS 1 km) is not a burn map; it is a hot pixel at a time.
One within reach of a polygon (the sensor's footprint plus its geolocation error), seen
after the polygon's last clear scene and no later than its first-seen scene, is independent
evidence that the mark is a fire and when it burned. Pure function on tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from pipeline.errors import ParameterError

__all__ = ["corroborate", "MATCH_COLUMNS"]


MATCH_COLUMNS = ["polygon_id", "detection_id", "acquired_utc", "satellite", "instrument",
                 "confidence", "frp", "daynight", "distance_m"]


def _empty_matches() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="datetime64[ns, UTC]" if name == "acquired_utc" else
                                         float if name in ("frp", "distance_m") else object)
                         for name in MATCH_COLUMNS})


def _utc_times(polygons: gpd.GeoDataFrame, name: str, *, may_be_empty: bool) -> pd.Series:
    """A polygon time column as UTC timestamps (NaT where empty and allowed)."""
    text = polygons[name].astype(object).fillna("").astype(str).str.strip()
    parsed = pd.to_datetime(text.where(text != ""), utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna() & ((text != "") | (not may_be_empty))
    if bad.any():
        first = bad.to_numpy().argmax()
        raise ParameterError(f"polygon {polygons['polygon_id'].iloc[first]}: {name} {text.iloc[first]!r} is not an ISO UTC "
                             "time; write it like 2024-01-28T10:38:00Z")
    return parsed


def corroborate(polygons: gpd.GeoDataFrame, detections: pd.DataFrame, *,
                max_distance_m: float = 750.0) -> pd.DataFrame:
    """Pair burned-area polygons with the active-fire detections that fit them in space and time.

    A detection fits a polygon when its point lies within ``max_distance_m`` of the polygon
    (0 inside it) and it was acquired inside the polygon's burn bracket,
    ``last_clear_before < acquired_utc <= first_seen``. An empty ``last_clear_before`` (no
    clear scene before the burn) leaves the bracket open at the start.

    Why 750 m: a detection's latitude and longitude are the centre of the pixel that saw the
    fire, and the fire may be anywhere in that pixel. VIIRS I-band pixels are 375 m at nadir
    and grow to about 800 m at the swath edge (Schroeder et al. 2014), so a fire can lie some
    550 m from the point (half an edge pixel's diagonal); 750 m adds a margin for geolocation
    error. MODIS pixels are 1 km at nadir (Giglio et al. 2016): pass ``max_distance_m=1000``
    or more for MODIS-only archives, knowing that wider also matches more unrelated fires.

    Parameters
    ----------
    polygons
        Burned areas in a projected CRS in metres, with ``polygon_id``, ``first_seen`` and
        ``last_clear_before`` (ISO UTC strings such as ``"2024-01-28T10:38:00Z"``).
    detections
        Active fires as ``read_fire_csv`` returns them (``detection_id``, ``latitude``,
        ``longitude`` in EPSG:4326, ``acquired_utc``; the other columns are carried along).
    max_distance_m
        Largest distance in metres between a detection point and the polygon.

    Returns
    -------
    pandas.DataFrame
        One row per (polygon, detection) match, columns ``MATCH_COLUMNS``, sorted by
        ``polygon_id`` then ``acquired_utc``; empty (same columns) when nothing matches.

    Raises
    ------
    ParameterError
        ``max_distance_m`` is not a positive finite number, a column is missing, a polygon
        time is not ISO, or the polygons have no CRS or one not projected in metres.

    References
    ----------
    Schroeder, W., Oliva, P., Giglio, L. & Csiszar, I. A. (2014). The New VIIRS 375 m active
    fire detection data product: algorithm description and initial assessment. Remote
    Sensing of Environment 143, 85-96.
    Giglio, L., Schroeder, W. & Justice, C. O. (2016). The collection 6 MODIS active fire
    detection algorithm and fire products. Remote Sensing of Environment 178, 31-41.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> burns = gpd.GeoDataFrame({"polygon_id": [1], "first_seen": ["2024-01-28T10:38:00Z"],
    ...                           "last_clear_before": ["2024-01-23T10:38:00Z"]},
    ...                          geometry=[box(500000, 1400000, 500200, 1400200)], crs="EPSG:32630")
    >>> lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(500100, 1400100)
    >>> fires = pd.DataFrame({"detection_id": ["viirs:1"], "latitude": [lat], "longitude": [lon],
    ...                       "acquired_utc": [pd.Timestamp("2024-01-27T01:30Z")]})
    >>> corroborate(burns, fires)[["polygon_id", "detection_id", "distance_m"]].values.tolist()
    [[1, 'viirs:1', 0.0]]
    """
    if (isinstance(max_distance_m, bool) or not isinstance(max_distance_m, Real)
            or not math.isfinite(max_distance_m) or max_distance_m <= 0):
        raise ParameterError(f"max_distance_m={max_distance_m!r}: not a positive finite distance; "
                             "pass metres, e.g. 750 for VIIRS or 1000 for MODIS")
    for what, frame, needed in (("polygons", polygons, ["polygon_id", "first_seen", "last_clear_before"]),
                                ("detections", detections, ["detection_id", "latitude", "longitude", "acquired_utc"])):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ParameterError(f"{what}: column(s) {', '.join(missing)} missing; "
                                 f"pass {'burned-area polygons' if what == 'polygons' else 'read_fire_csv detections'}")
    if len(polygons) == 0 or len(detections) == 0:
        return _empty_matches()
    crs = polygons.crs
    if crs is None or not crs.is_projected or {a.unit_name for a in crs.axis_info} != {"metre"}:
        raise ParameterError(f"polygons: CRS {crs.to_string() if crs else 'not set'} is not projected in metres, "
                             "so distances would be meaningless; reproject them with polygons.to_crs(<UTM zone>)")

    # Compared as naive UTC datetime64, where NaT is never before or after anything.
    first_seen = _utc_times(polygons, "first_seen", may_be_empty=False).dt.tz_convert(None).to_numpy()
    last_clear = _utc_times(polygons, "last_clear_before", may_be_empty=True).dt.tz_convert(None).to_numpy()
    acquired = pd.to_datetime(detections["acquired_utc"], utc=True, errors="coerce").dt.tz_convert(None).to_numpy()
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(
        detections["longitude"].to_numpy(float), detections["latitude"].to_numpy(float))
    points = shapely.points(x, y)
    geometries = np.asarray(polygons.geometry.array, dtype=object)
    # The tree finds the near pairs without measuring every polygon against every fire.
    poly, det = shapely.STRtree(points).query(geometries, predicate="dwithin", distance=max_distance_m)
    distance = shapely.distance(geometries[poly], points[det])
    when = acquired[det]
    after_clear = np.isnat(last_clear[poly]) | (last_clear[poly] < when)
    keep = (distance <= max_distance_m) & after_clear & (when <= first_seen[poly])
    if not keep.any():
        return _empty_matches()
    poly, det = poly[keep], det[keep]
    carried = detections.iloc[det].reset_index(drop=True)
    matches = pd.DataFrame({
        "polygon_id": polygons["polygon_id"].iloc[poly].to_numpy(),
        "detection_id": _objects(carried["detection_id"]),
        "acquired_utc": pd.to_datetime(carried["acquired_utc"], utc=True),
        **{name: _objects(carried[name]) if name in carried else _objects([None] * len(carried))
           for name in ("satellite", "instrument", "confidence", "daynight")},
        "frp": carried["frp"].to_numpy(float) if "frp" in carried else np.full(len(carried), np.nan),
        "distance_m": distance[keep],
    }, columns=MATCH_COLUMNS)
    return matches.sort_values(["polygon_id", "acquired_utc", "detection_id"], kind="stable").reset_index(drop=True)


def _objects(values: Iterable[object]) -> pd.Series:
    """Text as an object column, so that a missing value stays None (pandas 3 would make it NaN)."""
    return pd.Series(list(values), dtype=object)
