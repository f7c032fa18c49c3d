"""Burned-area polygons: one per connected patch of pixels first seen on the same date.

Areas are computed in a Lambert azimuthal equal-area projection centred on the grid, not
in UTM (whose scale error reaches 0.1-0.2 % of area), so hectares in a report are as
exact as the pixel edges allow. Each polygon's bracket start is the *earliest* last
clear observation among its pixels: where part of a burn was under cloud, the stated
interval widens rather than claiming more precision than the imagery gives. A polygon is
``confirmed`` when a later clear observation still shows it (char persists; a shadow
does not); a burn on the last scene cannot be confirmed yet, and says so. Each polygon carries
the verdict of the spectral test (:mod:`pipeline.stages.spectral`) on its pixels; the changes
that test set aside are outlined apart (:func:`nonfire_polygons`), never as burns.

A patch that spans several compounds is split along the walls the before-scene shows between
them (:mod:`pipeline.stages.split`); each piece is a polygon, and ``patch_id`` names the
connected patch it came from (one polygon per patch where no wall was seen). Where cloud hid
part of a burn on the day it was first seen, that part is first seen later and is a polygon of
its own, with its own (wider) bracket; ``site_id`` groups it with the burn it continues
(:func:`burn_sites`), so a count of sites follows burned places. Outlines are
traced 4-connected: pixels that touch only at a corner become parts of a MultiPolygon that
touch at a point, never one ring that crosses itself, so every outline is a valid OGC
geometry whose area is exactly its pixels'.

Beside the outline's area, ``burned_fraction_ha`` is the area that burned inside it: the sum
of its pixels' burned shares (:mod:`pipeline.stages.fraction`) times their area, with its 1
sigma ``burned_fraction_sigma_ha``. The outline counts a pixel whole once it is called burned;
the fractions count what burned of it (a rim pixel a third burned, a courtyard left standing),
over the outline's pixels and the ring of mixed pixels around it that the rim cut left out.
"""

from __future__ import annotations

import numpy as np
import geopandas as gpd
import xarray as xr
from pyproj import CRS, Transformer
from rasterio.features import shapes
from scipy import ndimage
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from pipeline.errors import RunError
from pipeline.grid import Grid
from pipeline.stages.spectral import NOT_TESTED, REASONS, TEST_NAMES, spectral_verdict
from pipeline.stages.split import split_patches
from pipeline.stages.threshold import largest_label_beside

__all__ = ["equal_area_crs", "burn_polygons", "describe_polygons", "empty_polygons", "polygon_settings",
           "transient_polygons", "nonfire_polygons", "pixel_outlines", "burn_sites", "POLYGON_COLUMNS", "TRANSIENT_COLUMNS",
           "NONFIRE_COLUMNS"]

_EIGHT = np.ones((3, 3), dtype=bool)

POLYGON_COLUMNS = [
    "polygon_id",
    "first_seen",
    "last_clear_before",
    "first_seen_index",
    "last_clear_index",
    "area_m2",
    "area_ha",
    "burned_fraction_ha",
    "burned_fraction_sigma_ha",
    "n_pixels",
    "mean_index_change",
    "index",
    "setting",
    "confirmed",
    "patch_id",
    "site_id",
    "spectral_test",
    "spectral_reason",
]

TRANSIENT_COLUMNS = ["transient_id", "seen", "gone_on", "seen_index", "gone_index", "area_m2", "area_ha", "n_pixels",
                     "lon", "lat"]

NONFIRE_COLUMNS = ["nonfire_id", "seen", "seen_index", "area_m2", "area_ha", "n_pixels", "spectral_test",
                   "spectral_reason", "lon", "lat"]


def equal_area_crs(grid: Grid) -> CRS:
    """Lambert azimuthal equal-area CRS centred on the middle of ``grid``."""
    left, bottom, right, top = grid.bounds
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform((left + right) / 2, (bottom + top) / 2)
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs")


def polygon_settings(geometries: gpd.GeoSeries, settlement: BaseGeometry | None) -> list[str]:
    """``settlement`` where at least half a polygon lies in the built-up area, else ``outside``
    (``unknown`` without an outline): one rule for whole scenes and chunked areas."""
    if settlement is None or settlement.is_empty:
        return ["unknown"] * len(geometries)
    inside = geometries.intersection(settlement).area / geometries.area.clip(lower=1e-9)
    return ["settlement" if share >= 0.5 else "outside" for share in inside]


def _iso(times: list[str], index: int) -> str | None:
    return times[index] if index >= 0 else None


def _patches_by_date(dated: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Label the 8-connected patches of each date of ``dated`` (a date index per pixel, -1 none), numbered 1..n
    date after date; return the labels and each patch's date. Patches of two dates that touch stay apart."""
    components = np.zeros(dated.shape, dtype=np.int32)
    component_date: list[int] = []
    for t in sorted(int(v) for v in np.unique(dated) if v >= 0):
        labels, n = ndimage.label(dated == t, structure=_EIGHT)
        components[labels > 0] = labels[labels > 0] + len(component_date)
        component_date.extend([t] * n)
    return components, component_date


def pixel_outlines(labels: np.ndarray, ids: np.ndarray, grid: Grid) -> list[BaseGeometry]:
    """Outline of each label of ``ids``, valid and with exactly its pixels' area.

    Traced 4-connected: GDAL's 8-connected tracing joins pixels that touch at a corner into
    one ring touching itself, an invalid OGC polygon that QGIS and PostGIS refuse or
    mis-measure. The 4-connected pieces of a label are united (parts meeting at a point stay
    a valid MultiPolygon); a ring GDAL still pinches (a hole touching the outer ring at a
    corner) is repaired only if the repair keeps the area to a millionth of a pixel.
    """
    pieces: dict[int, list] = {}
    for geom, value in shapes(labels, mask=labels > 0, transform=grid.transform, connectivity=4):
        pieces.setdefault(int(value), []).append(shape(geom))
    outlines = []
    for i in ids:
        outline = unary_union(pieces[int(i)])
        if not outline.is_valid:
            repaired = shapely.make_valid(outline, method="structure")
            if abs(repaired.area - outline.area) > 1e-6 * grid.pixel_area_m2:
                raise RunError(f"burn outline {int(i)} could not be made a valid polygon without changing its area; "
                               f"please report this with the run folder")
            outline = repaired
        outlines.append(outline)
    return outlines


def burn_polygons(
    dates: xr.Dataset,
    *,
    grid: Grid,
    times: list[str],
    index_name: str,
    settlement: BaseGeometry | None = None,
    before: np.ndarray | None = None,
    wall_contrast: float = 0.1,
    min_core_px: int = 1,
) -> gpd.GeoDataFrame:
    """Vectorise the dated burn raster into polygons in ``grid.crs``.

    Parameters
    ----------
    dates:
        Output of :func:`pipeline.stages.dating.date_burns` on ``grid``.
    grid:
        The grid the rasters lie on (CRS and transform).
    times:
        ISO UTC time of every scene, indexed like ``first_seen``.
    index_name:
        Name of the burn index, recorded on each polygon.
    settlement:
        Built-up area in ``grid.crs``. A polygon is ``setting="settlement"`` when at least
        half of it lies inside, else ``"outside"`` (field and bush fires are common around
        Sahel villages and must be reported apart); ``"unknown"`` without an outline.
    before:
        ``(time, y, x)`` brightness of the scene before each date
        (:func:`pipeline.stages.split.before_brightness`); a patch is split along the walls it
        shows. ``None``: no patch is split.
    wall_contrast, min_core_px:
        As :func:`pipeline.stages.split.split_patches`.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`POLYGON_COLUMNS` and geometry, sorted by date then id.
    """
    first_seen = dates["first_seen"].values
    last_clear = dates["last_clear_before"].values
    delta = dates["delta_at_first"].values
    patches, patch_date = _patches_by_date(first_seen)
    if not patch_date:
        return empty_polygons(grid.crs)
    if before is None:
        components, patch_of = patches, np.arange(1, len(patch_date) + 1)
    else:
        # Each date's patches are split on that date's before-scene; the pieces keep the date's order.
        patch_dates = np.concatenate([[-1], patch_date])[patches]
        wall_seen = np.where(patch_dates >= 0, np.take_along_axis(
            before, np.clip(patch_dates, 0, None)[None].astype(np.intp), axis=0)[0], np.nan)
        components, patch_of = split_patches(patches, wall_seen, delta, wall_contrast=wall_contrast,
                                             min_core_px=min_core_px)
    component_date = [patch_date[p - 1] for p in patch_of]
    n_comp = len(component_date)
    ids = np.arange(1, n_comp + 1)
    n_pixels = _sum_by_label(np.ones_like(components), components, ids)
    mean_change = _sum_by_label(np.nan_to_num(delta), components, ids) / n_pixels  # ndimage.mean's sum / count
    earliest_clear = _min_by_label(last_clear, components, ids)
    confirmed = _sum_by_label(dates["confirmed"].values.astype(float), components, ids) / n_pixels >= 0.5
    codes = dates["spectral"].values if "spectral" in dates else np.full(components.shape, NOT_TESTED, np.int8)
    verdicts = [spectral_verdict(codes[sl][components[sl] == i])
                for i, sl in enumerate(ndimage.find_objects(components), start=1)]
    shares = _fraction_sums(dates, components, ids, np.array(component_date, dtype=int))
    geometries = pixel_outlines(components, ids, grid)
    frame = gpd.GeoDataFrame(
        {
            "first_seen_index": np.array(component_date, dtype=int),
            "last_clear_index": earliest_clear.astype(int),
            "n_pixels": n_pixels.astype(int),
            "mean_index_change": np.round(mean_change.astype(float), 4),
            "confirmed": confirmed.astype(bool),
            "patch_id": np.asarray(patch_of, dtype=int),
            "spectral_test": [v[0] for v in verdicts],
            "spectral_reason": [v[1] for v in verdicts],
            **shares,
        },
        geometry=geometries,
        crs=grid.crs,
    )
    frame["index"] = index_name
    return describe_polygons(frame, grid=grid, times=times, settlement=settlement)


_FRACTION_SUMS = ("_fraction_px", "_fraction_var_px", "_fraction_endmember_px")


def _fraction_sums(dates: xr.Dataset, components: np.ndarray, ids: np.ndarray,
                   component_date: np.ndarray) -> dict[str, np.ndarray]:
    """Per patch, in pixels: the sum of the burned shares, of their noise variances and of their
    end-member sigmas (the three add differently: see :func:`pipeline.stages.fraction.area_with_sigma`).
    Without shares (no band to unmix) each pixel counts whole, with an unknown uncertainty.

    The ring of unburned pixels around a patch holds its mixed rim: each ring pixel's share on the
    patch's date (``component_date``) goes to it, to the highest label where it touches two patches
    of that date, so a pixel between burns of two dates gives each its own part (``ring_fraction``).
    """
    if "burned_fraction" not in dates:
        n = _sum_by_label(np.ones_like(components), components, ids)
        return dict(zip(_FRACTION_SUMS, (n, np.full(len(ids), np.nan), np.full(len(ids), np.nan))))
    # Only the patches' pixels and their rings are read, each in the grid's order: every sum adds the same
    # numbers in the same order as a sum over the whole grid, so it is the same float to the last bit.
    where = np.flatnonzero(components)
    label = components.ravel()[where]
    share = dates["burned_fraction"].values.ravel()[where]
    fitted = np.isfinite(share)
    # A burned pixel whose share could not be fitted (its before-state unseen) counts whole and adds no spread.
    values = (np.where(fitted, share, 1.0),
              np.where(fitted, np.square(np.nan_to_num(dates["fraction_sigma_noise"].values.ravel()[where])), 0.0),
              np.where(fitted, np.nan_to_num(dates["fraction_sigma_endmember"].values.ravel()[where]), 0.0))
    size = int(ids.max(initial=0)) + 1
    sums = [np.bincount(label, weights=v, minlength=size)[ids].astype(float) for v in values]
    rings = (dates["ring_fraction"].values, dates["ring_fraction_sigma_noise"].values,
             dates["ring_fraction_sigma_endmember"].values)
    date_of = np.full(size, -1)
    date_of[ids] = component_date
    for t in np.unique(component_date):
        of_date = np.zeros(components.shape, dtype=bool)
        of_date.ravel()[where[date_of[label] == t]] = True
        # The ring: pixels beside a patch of the date, outside every patch of it, with a share on the date.
        near = np.flatnonzero(ndimage.binary_dilation(of_date, structure=_EIGHT) & ~of_date & np.isfinite(rings[0][t]))
        if not near.size:
            continue
        own = np.where(date_of == t, np.arange(size), 0)  # a label of another date is no owner here
        owner = largest_label_beside(components, near, relabel=own)
        ring_values = (rings[0][t].ravel()[near], np.square(np.nan_to_num(rings[1][t].ravel()[near])),
                       np.nan_to_num(rings[2][t].ravel()[near]))
        for total, v in zip(sums, ring_values):
            total += np.bincount(owner, weights=np.nan_to_num(v), minlength=size)[ids]
    return dict(zip(_FRACTION_SUMS, sums))


def _min_by_label(values: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``ndimage.minimum(values, labels, ids)`` for labels that all have pixels, over the labelled pixels alone."""
    labelled = labels > 0
    out = np.full(int(ids.max(initial=0)) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, labels[labelled], values[labelled].astype(np.int64))
    return out[ids]


def _sum_by_label(values: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``ndimage.sum_labels(values, labels, ids)``, bit for bit (the same additions, in the same order), over the
    labelled pixels alone: a chunk's burns are a few percent of it."""
    labelled = labels > 0
    return np.bincount(labels[labelled], weights=values[labelled], minlength=int(ids.max(initial=0)) + 1)[ids].astype(float)


def _fraction_areas(frame: gpd.GeoDataFrame, areas_m2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Burned-fraction area and its 1 sigma (ha) of each outline. A pixel's area is its outline's
    equal-area area over its pixel count, so the two areas share one projection."""
    if "burned_fraction_ha" in frame and not set(_FRACTION_SUMS) <= set(frame.columns):
        return frame["burned_fraction_ha"].to_numpy(float), frame["burned_fraction_sigma_ha"].to_numpy(float)
    if not set(_FRACTION_SUMS) <= set(frame.columns):
        return areas_m2 / 1e4, np.full(len(frame), np.nan)
    pixel_ha = areas_m2 / np.maximum(frame["n_pixels"].to_numpy(float), 1.0) / 1e4
    area = frame["_fraction_px"].to_numpy(float) * pixel_ha
    sigma = np.hypot(np.sqrt(frame["_fraction_var_px"].to_numpy(float)), frame["_fraction_endmember_px"].to_numpy(float))
    return area, sigma * pixel_ha


def empty_polygons(crs: str) -> gpd.GeoDataFrame:
    """A polygon table with no rows and every column."""
    return gpd.GeoDataFrame(columns=POLYGON_COLUMNS + ["geometry"], geometry="geometry", crs=crs)


def describe_polygons(frame: gpd.GeoDataFrame, *, grid: Grid, times: list[str],
                      settlement: BaseGeometry | None = None) -> gpd.GeoDataFrame:
    """Area, dates, setting and stable id of each outline, sorted by date then id.

    ``frame`` holds the geometry and the pixel figures (``first_seen_index``,
    ``last_clear_index``, ``n_pixels``, ``mean_index_change``, ``confirmed``, ``index``,
    ``spectral_test`` and ``spectral_reason``: "not tested" where absent), either the per-pixel
    sums of the burned shares (from :func:`burn_polygons`) or the burned-fraction area already
    in hectares (polygons merged across chunk edges), and ``patch_id``, any key shared by the
    polygons split from one connected patch; whole scenes and polygons merged across chunk
    edges are described by this one rule. The key becomes the patch's stable id, made like a
    polygon's from its date and the centre of the whole patch (``P20240127-E415120-N1527940``):
    equal for every polygon split from it.
    """
    frame = frame.copy()
    if "spectral_test" not in frame:
        frame["spectral_test"], frame["spectral_reason"] = TEST_NAMES[NOT_TESTED], REASONS[NOT_TESTED]
    if "patch_id" not in frame:  # a table from before patches were split: each polygon its own patch
        frame["patch_id"] = np.arange(len(frame))
    whole = frame.dissolve(by="patch_id", aggfunc={"first_seen_index": "first"}) if len(frame) else frame
    patch_names = {
        key: f"P{times[int(row.first_seen_index)][:10].replace('-', '')}-E{int(round(c.x, -1))}-N{int(round(c.y, -1))}"
        for key, row, c in zip(whole.index, whole.itertuples(), whole.geometry.centroid)
    }
    frame["patch_id"] = [patch_names[k] for k in frame["patch_id"]]
    areas = frame.geometry.to_crs(equal_area_crs(grid)).area.to_numpy()
    frame["area_m2"] = np.round(areas, 1)
    frame["area_ha"] = np.round(areas / 1e4, 4)
    fraction_ha, fraction_sigma_ha = _fraction_areas(frame, areas)
    frame["burned_fraction_ha"] = np.round(fraction_ha, 4)
    frame["burned_fraction_sigma_ha"] = np.round(fraction_sigma_ha, 4)
    frame["first_seen"] = [_iso(times, i) for i in frame["first_seen_index"]]
    frame["last_clear_before"] = [_iso(times, i) for i in frame["last_clear_index"]]
    frame["setting"] = polygon_settings(frame.geometry, settlement)
    centroids = frame.geometry.centroid
    frame["polygon_id"] = [
        f"{times[t][:10].replace('-', '')}-E{int(round(c.x, -1))}-N{int(round(c.y, -1))}"
        for t, c in zip(frame["first_seen_index"], centroids)
    ]
    frame = frame.sort_values(["first_seen_index", "polygon_id"]).reset_index(drop=True)
    frame["site_id"] = burn_sites(frame)
    return gpd.GeoDataFrame(frame[POLYGON_COLUMNS + ["geometry"]], geometry="geometry", crs=grid.crs)




def burn_sites(frame: gpd.GeoDataFrame) -> list[str]:
    """The burned site of each polygon: a polygon that touches an earlier date's polygon and was not
    seen clear on that polygon's date (its ``last_clear_index`` comes before the other's
    ``first_seen_index``) may be the rest of the same burn, hidden by cloud on the day; it joins that
    polygon's site. Each polygon joins at most one earlier polygon (the one it shares the most
    edge with), so compounds split along walls on one date stay apart. A site is named after its
    first polygon (``S`` + its ``polygon_id``).

    ``frame`` is sorted by date (as :func:`describe_polygons` leaves it); the dates and
    brackets of the polygons themselves are untouched: a site only says which of them a
    reader should count as one burned place.
    """
    sites = [f"S{p}" for p in frame["polygon_id"]]
    if len(frame) < 2:
        return sites
    first = frame["first_seen_index"].to_numpy(int)
    last_clear = frame["last_clear_index"].to_numpy(int)
    geometry = frame.geometry.reset_index(drop=True)
    later, earlier = geometry.sindex.query(geometry, predicate="intersects")
    candidates: dict[int, list[int]] = {}
    for b, a in zip(later.tolist(), earlier.tolist()):
        if first[a] < first[b] and last_clear[b] < first[a]:
            candidates.setdefault(b, []).append(a)
    for b in sorted(candidates, key=lambda i: (first[i], i)):
        options = sorted(candidates[b])
        edge = [geometry[a].boundary.intersection(geometry[b].boundary).length for a in options]
        a = options[int(np.argmax(edge))]  # the first of equals: the earliest in the sorted table
        sites[b] = sites[a]
    return sites


def transient_polygons(dates: xr.Dataset, *, grid: Grid, times: list[str]) -> gpd.GeoDataFrame:
    """The marks seen once and gone on the next clear scene, as polygons: never burns, always listed.

    A cloud shadow, smoke or a patch of wet soil darkens the ground like char, then is gone on
    the next clear scene; :func:`pipeline.stages.dating.date_burns` drops such a patch from the
    burns and keeps where it was (``transient_seen``, ``transient_gone``). An investigator
    must still be able to see what was set aside and look at it, so each patch is one row:
    when it was seen, the clear scene on which it was gone, its area and its position.

    Parameters
    ----------
    dates:
        Output of :func:`pipeline.stages.dating.date_burns` on ``grid``.
    grid:
        The grid the rasters lie on.
    times:
        ISO UTC time of every scene, indexed like ``transient_seen``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`TRANSIENT_COLUMNS` (``gone_index`` -1 and ``gone_on`` ``None`` where no
        pixel of the patch was seen clear again; ``lon``, ``lat`` a point inside the patch)
        and geometry in ``grid.crs``, sorted by date then id.
    """
    if "transient_seen" not in dates:
        return gpd.GeoDataFrame(columns=TRANSIENT_COLUMNS + ["geometry"], geometry="geometry", crs=grid.crs)
    seen = dates["transient_seen"].values
    gone = dates["transient_gone"].values
    components, component_date = _patches_by_date(seen)
    if not component_date:
        return gpd.GeoDataFrame(columns=TRANSIENT_COLUMNS + ["geometry"], geometry="geometry", crs=grid.crs)
    ids = np.arange(1, len(component_date) + 1)
    n_pixels = ndimage.sum_labels(np.ones_like(components), components, ids)
    # The earliest clear scene on which any of its pixels was seen again: "gone on the next clear scene".
    never = np.iinfo(np.int16).max
    earliest_gone = ndimage.minimum(np.where(gone >= 0, gone, never), components, ids).astype(int)
    earliest_gone[earliest_gone == never] = -1
    geometries = gpd.GeoSeries(pixel_outlines(components, ids, grid), crs=grid.crs)
    areas = geometries.to_crs(equal_area_crs(grid)).area.to_numpy()
    inside = geometries.representative_point()
    lonlat = inside.to_crs("EPSG:4326")
    frame = gpd.GeoDataFrame({
        "transient_id": [f"T{times[t][:10].replace('-', '')}-E{int(round(p.x, -1))}-N{int(round(p.y, -1))}"
                         for t, p in zip(component_date, inside)],
        "seen": [_iso(times, t) for t in component_date],
        "gone_on": [_iso(times, int(g)) for g in earliest_gone],
        "seen_index": np.array(component_date, dtype=int),
        "gone_index": earliest_gone,
        "area_m2": np.round(areas, 1),
        "area_ha": np.round(areas / 1e4, 4),
        "n_pixels": n_pixels.astype(int),
        "lon": np.round(lonlat.x.to_numpy(), 6),
        "lat": np.round(lonlat.y.to_numpy(), 6),
    }, geometry=geometries, crs=grid.crs)
    return frame.sort_values(["seen_index", "transient_id"]).reset_index(drop=True)


def nonfire_polygons(dates: xr.Dataset, *, grid: Grid, times: list[str]) -> gpd.GeoDataFrame:
    """The changes the spectral test found not fire-like, as polygons: never burns, always listed.

    Leaf drop, a harvest, wet soil or a shadow drop the NIR as char does, but the other bands
    say otherwise (:mod:`pipeline.stages.spectral`); :func:`pipeline.stages.dating.date_burns`
    leaves such pixels out of the burns and keeps where and when they were seen
    (``nonfire_seen``, ``nonfire_code``). Each patch of one date and one reason is one row, so
    that an investigator can see what was set aside and why.

    Parameters
    ----------
    dates:
        Output of :func:`pipeline.stages.dating.date_burns` on ``grid``.
    grid:
        The grid the rasters lie on.
    times:
        ISO UTC time of every scene, indexed like ``nonfire_seen``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`NONFIRE_COLUMNS` (``spectral_test`` "not fire-like", ``spectral_reason``
        the sentence of its code; ``lon``, ``lat`` a point inside the patch) and geometry in
        ``grid.crs``, sorted by date then id.
    """
    empty = gpd.GeoDataFrame(columns=NONFIRE_COLUMNS + ["geometry"], geometry="geometry", crs=grid.crs)
    if "nonfire_seen" not in dates:
        return empty
    seen = dates["nonfire_seen"].values
    code = dates["nonfire_code"].values
    # One patch per date and reason: leaf drop beside a wet field are two findings, not one.
    keyed = np.where(seen >= 0, seen.astype(np.int32) * 8 + code, -1)
    components, component_key = _patches_by_date(keyed)
    if not component_key:
        return empty
    ids = np.arange(1, len(component_key) + 1)
    n_pixels = ndimage.sum_labels(np.ones_like(components), components, ids)
    geometries = gpd.GeoSeries(pixel_outlines(components, ids, grid), crs=grid.crs)
    areas = geometries.to_crs(equal_area_crs(grid)).area.to_numpy()
    inside = geometries.representative_point()
    lonlat = inside.to_crs("EPSG:4326")
    seen_index = [k // 8 for k in component_key]
    frame = gpd.GeoDataFrame({
        "nonfire_id": [f"N{times[t][:10].replace('-', '')}-E{int(round(p.x, -1))}-N{int(round(p.y, -1))}"
                       for t, p in zip(seen_index, inside)],
        "seen": [_iso(times, t) for t in seen_index],
        "seen_index": np.array(seen_index, dtype=int),
        "area_m2": np.round(areas, 1),
        "area_ha": np.round(areas / 1e4, 4),
        "n_pixels": n_pixels.astype(int),
        "spectral_test": [TEST_NAMES[k % 8] for k in component_key],
        "spectral_reason": [REASONS[k % 8] for k in component_key],
        "lon": np.round(lonlat.x.to_numpy(), 6),
        "lat": np.round(lonlat.y.to_numpy(), 6),
    }, geometry=geometries, crs=grid.crs)
    return frame.sort_values(["seen_index", "nonfire_id"]).reset_index(drop=True)
