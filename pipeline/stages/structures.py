"""Burned structures: building footprints aligned to the scenes and tested against burn polygons.

Reports count homes, not hectares ("at least 150 homes burned"). Footprints come from open
datasets (OpenStreetMap, open building-footprint layers) traced on other imagery, so they
sit a few metres off the scenes: at 3 m pixels a 5 m offset moves a hut onto its
neighbour's yard. The layer is therefore co-registered to the reference scene first: the
footprints are rasterised as cover fractions on the analysis grid and phase-correlated with
the scene's high-passed texture, where roofs and yards make the village's pattern. The texture
is the normalised difference of the NIR and the red (:func:`texture_for_alignment`), not the
brightness: every hut casts a shadow, darker than any roof, and a brightness texture puts the
huts where their shadows lie (in a simulated village at a 48 degree sun, 3 m off, toward the
shadows). A shadow scales the bands by about one factor, which a ratio of two neighbouring
bands cancels, while thatch and swept earth differ in it (dry stems reflect more NIR per unit
of red than bare soil). Phase correlation is blind to the sign of the contrast, so it holds
whether roofs are darker or brighter than the yards. The offset is accepted only when two independent
halves of the village agree on it. Pixels coarser than the huts (Sentinel-2's 10 m) show no hut,
but they resolve the burned compounds around them: there the layer is placed on the burned
shares of the pixels instead, by the same correlation and the same check. Otherwise the
footprints are used as given and the report says so.

A structure counts as burned when at least ``min_overlap`` of its footprint lies inside the
burn polygons grown by ``tolerance_m``; its date bracket is that of the polygon covering
most of it. The tolerance is half a pixel by default: a polygon drawn from pixels has
staircase edges up to half a pixel inside the burn's true edge, and a hut straddling that
edge would otherwise be lost. Where the layer's offset could not be measured (a layer of a few
footprints has no pattern to match; coarse pixels and too few burns), the layer is off by
what it was traced off by, so the polygons are grown by that too (``unaligned_m``): on the
SIMULATED village at 10 m, a layer 5 m off used as given lost a quarter of the burned
structures at half a pixel.

Pure functions on arrays and GeoDataFrames; reading a footprint file is :mod:`pipeline.readers.vectors`' job.

References
----------
Brovelli, M. A. & Zamboni, G. (2018). A new method for the assessment of spatial accuracy and
completeness of OpenStreetMap building footprints. ISPRS Int. J. Geo-Inf. 7(8), 289.
Fan, H., Zipf, A., Fu, Q. & Neis, P. (2014). Quality assessment for building footprints data on
OpenStreetMap. Int. J. Geographical Information Science 28(4), 700-719.
Guizar-Sicairos, M., Thurman, S. T. & Fienup, J. R. (2008). Efficient subpixel image
registration algorithms. Optics Letters 33(2), 156-158.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from rasterio.features import rasterize
from rasterio.transform import from_origin
from scipy import ndimage
from shapely import affinity
from skimage.registration import phase_cross_correlation

from pipeline.errors import ParameterError

__all__ = ["FootprintShift", "texture_for_alignment", "footprint_offset", "shift_footprints", "burned_structures", "structures_in_burns",
           "settlement_from_footprints", "STRUCTURE_COLUMNS"]

STRUCTURE_COLUMNS = ["structure_id", "burned_fraction", "burned", "polygon_id", "first_seen", "last_clear_before",
                     "first_seen_index", "setting"]

_SUPERSAMPLE = 4  # sub-pixels per pixel side when rasterising footprints as cover fractions
_HIGHPASS_PX = 3.0  # Gaussian removed from both images: keeps roofs and walls, drops fields and haze
_AGREE_PX = 1.0  # the two halves of the village must agree within a pixel
_MIN_FOOTPRINTS = 20  # footprints a layer needs for its offset to be measured at all
_MIN_ON_BURNS = 10  # huts beside burns each half needs before the burns may place the layer
_BURNED_NEAR = 0.25  # burned share, within a pixel of a hut, that puts the hut beside a burn


@dataclass(frozen=True)
class FootprintShift:
    """Offset that moves the footprints onto the scene, and whether it can be trusted."""

    dx_m: float
    """Eastward shift applied to the footprints (metres)."""
    dy_m: float
    """Northward shift applied to the footprints (metres)."""
    reliable: bool
    """True when two halves of the village agreed within a pixel and the shift is within bounds."""
    halves_m: tuple[tuple[float, float], tuple[float, float]]
    """The (dx, dy) each half gave: the evidence behind ``reliable``."""
    note: str
    """One sentence for the report: what was done and why."""

    def as_dict(self) -> dict:
        """JSON-able copy for reports."""
        return {"dx_m": round(self.dx_m, 2), "dy_m": round(self.dy_m, 2), "reliable": self.reliable,
                "halves_m": [[round(v, 2) for v in h] for h in self.halves_m], "note": self.note}


def texture_for_alignment(scene: xr.DataArray, bands: list[str]) -> xr.DataArray:
    """``(y, x)`` image of ``scene`` (``(band, y, x)`` reflectance) to align footprints on: the normalised
    difference of NIR and red where both bands exist (shadows cancel), else the red, else the first band."""
    if "nir" in bands and "red" in bands:
        nir, red = scene.sel(band="nir", drop=True), scene.sel(band="red", drop=True)
        total = nir + red
        return ((nir - red) / total.where(total > 0)).astype(np.float32)
    return scene.sel(band="red", drop=True) if "red" in bands else scene.isel(band=0, drop=True)


def _cover(geoms, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fraction of each pixel of the (y, x) grid covered by ``geoms``."""
    res = float(abs(x[1] - x[0]))
    sub = res / _SUPERSAMPLE
    transform = from_origin(x[0] - res / 2, y[0] + res / 2, sub, sub)
    shape = (y.size * _SUPERSAMPLE, x.size * _SUPERSAMPLE)
    fine = rasterize(((g, 1) for g in geoms if g is not None and not g.is_empty), out_shape=shape,
                              transform=transform, fill=0, dtype="uint8")
    return fine.reshape(y.size, _SUPERSAMPLE, x.size, _SUPERSAMPLE).mean(axis=(1, 3))


def _highpass(image: np.ndarray) -> np.ndarray:
    observed = np.isfinite(image)
    filled = np.where(observed, image, np.nanmedian(image) if observed.any() else 0.0)
    out = filled - ndimage.gaussian_filter(filled, _HIGHPASS_PX)
    out[~observed] = 0.0
    return out


def _estimate(footprints: gpd.GeoSeries, reference: xr.DataArray, max_shift_px: int) -> tuple[float, float]:
    """(dx, dy) in metres that moves ``footprints`` onto the texture of ``reference``."""
    x, y = reference["x"].values, reference["y"].values
    res = float(abs(x[1] - x[0]))
    minx, miny, maxx, maxy = footprints.total_bounds
    pad = (max_shift_px + 4) * res
    cols = np.flatnonzero((x >= minx - pad) & (x <= maxx + pad))
    rows = np.flatnonzero((y >= miny - pad) & (y <= maxy + pad))
    if cols.size < 8 or rows.size < 8:
        return math.nan, math.nan
    window = reference.isel(x=slice(cols[0], cols[-1] + 1), y=slice(rows[0], rows[-1] + 1))
    cover = _cover(footprints, window["x"].values, window["y"].values)
    texture, pattern = _highpass(window.values.astype(np.float64)), _highpass(cover)
    if not (np.any(texture) and np.any(pattern)):  # a flat window (or no footprint in it): nothing to match
        return math.nan, math.nan
    shift, _, _ = phase_cross_correlation(texture, pattern, upsample_factor=10)
    # ``shift`` (rows, cols) moves the cover raster onto the scene; rows run south.
    sign = 1.0 if y[0] > y[-1] else -1.0
    return float(shift[1] * res), float(-shift[0] * res * sign)


def footprint_offset(footprints: gpd.GeoDataFrame, reference: xr.DataArray, *, max_shift_m: float = 30.0) -> FootprintShift:
    """Offset of a footprint layer against one scene, checked on two halves of the village.

    Parameters
    ----------
    footprints
        Building footprints in the scene's CRS.
    reference
        A texture image ``(y, x)`` (:func:`texture_for_alignment`) of a clear scene taken before the burns,
        on the analysis grid (NaN where not observed).
    max_shift_m
        Larger offsets are refused: they mean the layer belongs elsewhere or the estimate
        locked on something else (the default, ``Params.footprint_max_shift_m``, allows the
        layer's own offset plus the scene's geolocation error).

    Returns
    -------
    FootprintShift
        Zero and ``reliable=False`` when the estimate cannot be trusted.

    Examples
    --------
    Footprints traced 6 m east of their roofs come back with about -6 m east.
    """
    if not (math.isfinite(max_shift_m) and max_shift_m > 0):
        raise ParameterError(f"max_shift_m={max_shift_m!r}: pass a positive number of metres, e.g. 20")
    geoms = footprints.geometry[~footprints.geometry.is_empty & footprints.geometry.notna()]
    res = float(abs(reference["x"].values[1] - reference["x"].values[0]))
    max_px = int(math.ceil(max_shift_m / res))
    none = FootprintShift(0.0, 0.0, False, ((math.nan, math.nan), (math.nan, math.nan)), "")
    if len(geoms) < _MIN_FOOTPRINTS:
        return _with_note(none, f"only {len(geoms)} footprints: too few to measure their offset; used as given")
    cx = geoms.centroid.x
    west, east = geoms[cx <= cx.median()], geoms[cx > cx.median()]
    halves = (_estimate(west, reference, max_px), _estimate(east, reference, max_px))
    a, b = (np.asarray(h) for h in halves)
    mean = (a + b) / 2
    agree = bool(np.all(np.isfinite(mean)) and np.hypot(*(a - b)) <= _AGREE_PX * res)
    within = bool(np.all(np.isfinite(mean)) and np.hypot(*mean) <= max_shift_m)
    if not (agree and within):
        if not np.all(np.isfinite(mean)):
            why = "the scene shows no texture to match under the footprints"
        else:
            why = ("the two halves of the village disagree" if not agree else f"it exceeds {max_shift_m:g} m") + \
                f": {_fmt(a)} and {_fmt(b)}"
        return FootprintShift(0.0, 0.0, False, halves, f"footprint offset not measurable ({why}); footprints used as given")
    return FootprintShift(float(mean[0]), float(mean[1]), True, halves,
                          f"footprints moved {mean[0]:+.1f} m east, {mean[1]:+.1f} m north onto the reference scene "
                          f"(two halves of the village: {_fmt(a)} and {_fmt(b)})")


def _offset_on_burns(footprints: gpd.GeoDataFrame, burned_share: xr.DataArray, *, max_shift_m: float) -> FootprintShift:
    """The layer's offset measured on where the village burned, for pixels too coarse to show its huts.

    A 10 m pixel does not resolve a 5 m hut, so the scene's texture cannot place the layer, but
    the burned compounds, two or three pixels across, are resolved, and the burned share of each
    pixel (:mod:`pipeline.stages.fraction`) places a compound's edge to a fraction of a pixel. The
    burns lie where the huts stood, so the same phase correlation against the burned shares
    measures the layer's offset; on the SIMULATED village at 10 m (a layer about 12 m off the
    reference scene) it came within 1.4 m. One translation is fitted to hundreds of huts, and it
    is kept only when the two halves of the village agree and each half has
    :data:`_MIN_ON_BURNS` huts beside burns (a pixel within :data:`_BURNED_NEAR` burned), so that a
    lone burn cannot pull the layer onto itself.
    """
    share = burned_share.where(np.isfinite(burned_share), 0.0).clip(0.0, 1.0)
    geoms = footprints.geometry[~footprints.geometry.is_empty & footprints.geometry.notna()]
    centres = geoms.centroid
    x, y = share["x"].values, share["y"].values
    res = float(abs(x[1] - x[0])) if x.size > 1 else math.nan
    on_burns = np.zeros(len(geoms), dtype=bool)
    if len(geoms) and np.isfinite(res):
        col = np.floor((centres.x.to_numpy() - (x[0] - res / 2)) / res).astype(int)
        row = np.floor(((y[0] + res / 2) - centres.y.to_numpy()) / res).astype(int) if y[0] > y[-1] else \
            np.floor((centres.y.to_numpy() - (y[0] - res / 2)) / res).astype(int)
        inside = (row >= 0) & (row < y.size) & (col >= 0) & (col < x.size)
        near = ndimage.maximum_filter(share.values, size=3, mode="constant")  # the layer may be a pixel off
        on_burns[inside] = near[row[inside], col[inside]] >= _BURNED_NEAR
    cx = centres.x
    west = on_burns[(cx <= cx.median()).to_numpy()].sum() if len(geoms) else 0
    east = on_burns[(cx > cx.median()).to_numpy()].sum() if len(geoms) else 0
    if min(west, east) < _MIN_ON_BURNS:
        return FootprintShift(0.0, 0.0, False, ((math.nan, math.nan), (math.nan, math.nan)),
                              f"too few huts beside burns ({west} west, {east} east; {_MIN_ON_BURNS} needed in each half) "
                              "to measure it on the burns either")
    shift = footprint_offset(footprints, share, max_shift_m=max_shift_m)
    if not shift.reliable:
        return _with_note(shift, shift.note.replace("footprint offset not measurable", "nor on the burned shares")
                          .replace("; footprints used as given", ""))
    return _with_note(shift, f"{shift.note}, measured on the burned shares of its pixels (the scene's pixels are too "
                             "coarse for the huts' own texture)")


def _fmt(v: np.ndarray) -> str:
    return f"({v[0]:+.1f}, {v[1]:+.1f}) m"


def _with_note(shift: FootprintShift, note: str) -> FootprintShift:
    return FootprintShift(shift.dx_m, shift.dy_m, shift.reliable, shift.halves_m, note)


def shift_footprints(footprints: gpd.GeoDataFrame, shift: FootprintShift) -> gpd.GeoDataFrame:
    """The footprints moved by ``shift`` (a copy; the input is left as it is)."""
    out = footprints.copy()
    if shift.dx_m or shift.dy_m:
        out["geometry"] = [affinity.translate(g, shift.dx_m, shift.dy_m) for g in out.geometry]
    return out


def burned_structures(footprints: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, *, min_overlap: float = 0.5,
                      tolerance_m: float = 0.0) -> pd.DataFrame:
    """Each footprint's burned share and, when at least ``min_overlap``, the burn it belongs to.

    Parameters
    ----------
    footprints
        Aligned footprints with ``structure_id``, in the polygons' (metric) CRS.
    polygons
        Burn polygons with ``polygon_id``, ``first_seen``, ``last_clear_before``,
        ``first_seen_index`` and ``setting``.
    min_overlap
        The overlap rule: share of a footprint that must lie inside burn polygons for the
        structure to count as burned ("mostly inside" is 0.5).
    tolerance_m
        The polygons are grown by this much before the overlap is measured.

    Returns
    -------
    pandas.DataFrame
        One row per footprint, columns :data:`STRUCTURE_COLUMNS`; the date columns are those
        of the polygon covering most of the footprint (:func:`_covering_burn`), empty when not burned.
    """
    if not 0 < min_overlap <= 1:
        raise ParameterError(f"min_overlap={min_overlap!r}: pass a share of the footprint in (0, 1], e.g. 0.5")
    if not (math.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ParameterError(f"tolerance_m={tolerance_m!r}: pass a distance >= 0 in metres, e.g. half a pixel")
    polygons = polygons.reset_index(drop=True)  # positions, whatever the caller's index
    shapes = polygons.geometry.buffer(tolerance_m, join_style="mitre") if tolerance_m else polygons.geometry
    geoms = footprints.geometry.reset_index(drop=True)
    hits: dict[int, list[int]] = {}
    if len(polygons) and len(geoms):
        for fi, pi in zip(*shapes.sindex.query(geoms, predicate="intersects")):
            hits.setdefault(int(fi), []).append(int(pi))
    # Plain arrays, read once: a pandas row or GeoSeries lookup per footprint took most of the time of a village's
    # thousand footprints. The values are those the rows held (numpy scalars where the column is numeric).
    grown, own = shapes.to_numpy(), polygons.geometry.to_numpy()
    sites = polygons["site_id"].to_numpy() if "site_id" in polygons.columns else None
    columns = {name: polygons[name].to_numpy() for name in _BURN_COLUMNS if name in polygons.columns}
    rows = []
    for fi, (sid, geom) in enumerate(zip(footprints["structure_id"], geoms)):
        touching = hits.get(fi, [])
        area = geom.area if geom is not None else 0.0
        # Grown polygons can overlap one another: measure against their union, not their sum.
        covered = geom.intersection(shapely.union_all(grown[touching])).area if touching else 0.0
        fraction = covered / area if area > 0 else 0.0
        row = {"structure_id": sid, "burned_fraction": round(min(fraction, 1.0), 3), "burned": fraction >= min_overlap,
               "polygon_id": None, "first_seen": "", "last_clear_before": "", "first_seen_index": -1, "setting": ""}
        if row["burned"]:
            at = _covering_burn(geom, touching, grown, own, sites)
            row.update({name: columns[name][at] for name in _BURN_COLUMNS})
            row["first_seen_index"] = int(row["first_seen_index"])
        rows.append(row)
    return pd.DataFrame(rows, columns=STRUCTURE_COLUMNS)


_BURN_COLUMNS = ("polygon_id", "first_seen", "last_clear_before", "first_seen_index", "setting")
"""What a burned structure takes from the burn it belongs to."""


def _covering_burn(geom, touching: list[int], grown: np.ndarray, own: np.ndarray, sites: np.ndarray | None) -> int:
    """The burn a burned footprint belongs to: the one whose grown outline covers most of it.

    Grown outlines of neighbouring burns can cover a footprint equally (wholly, when the
    growth is wider than the gap between them). Among those, a burn that continues an earlier
    one where cloud hid it (the same ``site_id``) is the earlier one's: the place burned then.
    Burns of different sites are told apart by what their own pixels cover of the footprint,
    then by which lies nearer; a full tie goes to the earlier row.
    """
    covered = [geom.intersection(grown[pi]).area for pi in touching]
    best = max(covered)
    tied = sorted(pi for pi, c in zip(touching, covered) if c >= best - 1e-9 * max(best, 1.0))
    if len(tied) > 1 and sites is not None:
        first_of_site: dict = {}
        for pi in tied:  # one per site: its earliest row
            first_of_site.setdefault(sites[pi], pi)
        tied = list(first_of_site.values())
    if len(tied) == 1:
        return tied[0]
    return min(tied, key=lambda pi: (-geom.intersection(own[pi]).area, geom.distance(own[pi]), pi))


def structures_in_burns(footprints: gpd.GeoDataFrame, reference: xr.DataArray, polygons: gpd.GeoDataFrame, *,
                        min_overlap: float = 0.5, tolerance_m: float = 0.0, unaligned_m: float = 0.0,
                        max_shift_m: float = 30.0,
                        burned_share: xr.DataArray | None = None) -> tuple[gpd.GeoDataFrame, FootprintShift]:
    """Align ``footprints`` to ``reference``, then test each against ``polygons``.

    Returns the aligned footprints with the columns of :func:`burned_structures`, and the
    shift that was measured (and applied when reliable). Where the scene's texture cannot place
    the layer (pixels coarser than the huts), ``burned_share`` (``(y, x)``, each pixel's burned
    share, on the reference scene's grid) is tried instead (:func:`_offset_on_burns`). The polygons
    are grown by ``tolerance_m``, and by ``unaligned_m`` more when the shift could not be measured;
    the distance used is ``attrs["tolerance_m"]`` of the table.
    """
    if not (math.isfinite(unaligned_m) and unaligned_m >= 0):
        raise ParameterError(f"unaligned_m={unaligned_m!r}: pass a distance >= 0 in metres, e.g. 4")
    shift = footprint_offset(footprints, reference, max_shift_m=max_shift_m)
    counted = int((footprints.geometry.notna() & ~footprints.geometry.is_empty).sum())
    if not shift.reliable and burned_share is not None and counted >= _MIN_FOOTPRINTS:
        on_burns = _offset_on_burns(footprints, burned_share, max_shift_m=max_shift_m)
        texture_note = shift.note.replace("; footprints used as given", "")
        shift = on_burns if on_burns.reliable else _with_note(shift, f"{texture_note}; {on_burns.note}; footprints used as given")
    aligned = shift_footprints(footprints, shift)
    grown = tolerance_m + (0.0 if shift.reliable else unaligned_m)
    table = burned_structures(aligned, polygons, min_overlap=min_overlap, tolerance_m=grown)
    found = gpd.GeoDataFrame(table, geometry=aligned.geometry.to_numpy(), crs=aligned.crs)
    found.attrs["tolerance_m"] = grown
    return found, shift


def settlement_from_footprints(footprints: gpd.GeoDataFrame, *, join_m: float = 25.0, min_buildings: int = 5):
    """The built-up area a footprint layer outlines: buildings joined across gaps up to about
    ``2 * join_m`` (lanes, yards, small squares), holes filled; clusters of fewer than
    ``min_buildings`` (a lone field hut) are left out. ``None`` when nothing qualifies.

    Used to tell settlement burns from field and bush fires when an AOI has footprints but
    no drawn settlement outline.
    """
    geoms = [g for g in footprints.geometry if g is not None and not g.is_empty]
    if not geoms:
        return None
    grown = shapely.union_all([g.buffer(join_m) for g in geoms])
    parts = []
    for part in getattr(grown, "geoms", [grown]):
        inside = sum(1 for g in geoms if part.contains(g.representative_point()))
        if inside >= min_buildings:
            parts.append(shapely.Polygon(part.exterior).buffer(-join_m * 0.6))
    parts = [p for p in parts if not p.is_empty]
    return shapely.union_all(parts) if parts else None
