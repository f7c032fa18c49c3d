"""The figures of a detect run, with their captions: what a finding attaches.

Composed from already-computed arrays (:class:`pipeline.model.Detection`) by the drawing
functions of :mod:`pipeline.outputs.figures`: an overview, then per date the before/after
pair, the same pair with the burns outlined, the change map with its thresholds, the
structures burned, and a timeline. Every caption names its scenes and local times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any

import geopandas as gpd
import numpy as np
import xarray as xr

from pipeline.grid import Grid
from pipeline.model import Detection, SceneRecord, record_positions
from pipeline.outputs import figures as figs
from pipeline.outputs.report import scene_time

__all__ = ["IMAGERY_CREDIT_SIMULATED", "figure_builders", "imagery_credit", "provider", "run_figures"]

IMAGERY_CREDIT_SIMULATED = "Imagery: SIMULATED by burnscan, not a real acquisition"


def provider(record: SceneRecord) -> str:
    """Who delivered a scene: ``planet``, ``sentinel2``, ``landsat``, ``simulated`` or ``other``.

    Read from what the readers record: the sensor (Sentinel-2's reader writes "Sentinel-2A
    MSI", Landsat's "Landsat 8 OLI_TIRS", Planet's the instrument "PS2", "PS2.SD", "PSB.SD"
    or "PlanetScope") and Planet's usable-data mask among the files. A plain GeoTIFF has
    sensor "unknown" and is ``other``: its provider is not in the file.

    >>> from datetime import datetime, timezone
    >>> provider(SceneRecord("s", datetime(2024, 1, 1, tzinfo=timezone.utc), "2412", "PSB.SD", False, ("nir",)))
    'planet'
    """
    if record.simulated:
        return "simulated"
    sensor = record.sensor.strip().lower()
    if "sentinel" in sensor:
        return "sentinel2"
    if "landsat" in sensor:
        return "landsat"
    if sensor.startswith(("ps2", "psb", "planetscope", "planet")) or {"udm2", "udm"} & set(record.files):
        return "planet"
    return "other"


def _years(records: Sequence[SceneRecord]) -> str:
    return ", ".join(str(y) for y in sorted({r.acquired.year for r in records}))


def imagery_credit(records: Sequence[SceneRecord]) -> str:
    """The credit line a figure of these scenes carries, in each provider's own words.

    Planet's licence asks for "Imagery (c) <year> Planet Labs PBC", Copernicus for
    "Contains modified Copernicus Sentinel data <year>", USGS for "Landsat imagery courtesy
    of the U.S. Geological Survey"; the years are those of the acquisitions. A scene whose
    provider is not recorded (a plain GeoTIFF) is named by its scene id, and simulated
    scenes say SIMULATED, naming no provider.

    >>> from datetime import datetime, timezone
    >>> imagery_credit([SceneRecord("S2B_x", datetime(2024, 1, 5, tzinfo=timezone.utc), "Sentinel-2B",
    ...                             "Sentinel-2B MSI", False, ("nir",))])
    'Contains modified Copernicus Sentinel data 2024'
    """
    if any(r.simulated for r in records):
        return IMAGERY_CREDIT_SIMULATED
    by: dict[str, list[SceneRecord]] = {}
    for r in records:
        by.setdefault(provider(r), []).append(r)
    lines = []
    for name, recs in by.items():
        if name == "planet":
            lines.append(f"Imagery \u00a9 {_years(recs)} Planet Labs PBC")
        elif name == "sentinel2":
            lines.append(f"Contains modified Copernicus Sentinel data {_years(recs)}")
        elif name == "landsat":
            lines.append(f"Landsat imagery courtesy of the U.S. Geological Survey ({_years(recs)})")
        else:
            ids = ", ".join(dict.fromkeys(r.scene_id for r in recs))
            lines.append(f"Imagery: {ids} (provider not recorded in the file; credit it as its licence requires)")
    return "; ".join(lines)


def run_figures(detection: Detection, polygons: gpd.GeoDataFrame, structures: gpd.GeoDataFrame | None, aoi_outline: Any,
                simulated: bool, tz_name: str, *, width_mm: float = figs.FIGURE_WIDTH_MM) -> dict[str, Any]:
    """Every figure of a run by file name (``overview.png``, ``<time>_overlay.png``, ``timeline.png``...).

    Each caption credits the imagery of its own scenes (:func:`imagery_credit`); every
    figure is ``width_mm`` wide (``Params.figure_width_mm``).
    """
    builders = figure_builders(detection, polygons, structures, aoi_outline, simulated, tz_name, width_mm=width_mm)
    return {name: build() for name, build in builders.items()}


def figure_builders(detection: Detection, polygons: gpd.GeoDataFrame, structures: gpd.GeoDataFrame | None,
                    aoi_outline: Any, simulated: bool, tz_name: str, *,
                    width_mm: float = figs.FIGURE_WIDTH_MM) -> dict[str, Callable[[], Any]]:
    """:func:`run_figures`, each figure not yet drawn: a function of no argument that draws it.

    Which figures a run has is decided here, from the polygons; drawing each is most of the
    work, and the figures are independent, so they can be drawn on every core.
    """
    builders = _figures(detection, aoi_outline, simulated, tz_name, width_mm)
    # Only what the timeline shows, not the whole detection: a kept figure is looked up by what its builder holds.
    builders["timeline.png"] = partial(_timeline, detection.all_records, detection.quality, polygons, simulated, tz_name, width_mm)
    if structures is not None:
        builders.update(_structure_figures(detection, structures, aoi_outline, simulated, tz_name, width_mm))
    return builders


def _zoom(stack: xr.Dataset, bounds: np.ndarray, grid: Grid, *, pad_m: float = 150.0, min_side_m: float = 600.0) -> xr.Dataset:
    """The part of ``stack`` around ``bounds`` (left, bottom, right, top), padded and at least ``min_side_m`` wide."""
    left, bottom, right, top = (float(v) for v in bounds)
    cx, cy = (left + right) / 2, (bottom + top) / 2
    half = max(right - left + 2 * pad_m, top - bottom + 2 * pad_m, min_side_m) / 2
    g_left, g_bottom, g_right, g_top = grid.bounds
    return stack.sel(x=slice(max(cx - half, g_left), min(cx + half, g_right)), y=slice(min(cy + half, g_top), max(cy - half, g_bottom)))


def _figures(detection: Detection, aoi_outline: Any, simulated: bool, tz_name: str, width_mm: float) -> dict[str, Callable[[], Any]]:
    """Before/after pairs and overlays, one per date with new burns or a clear reading (not yet drawn)."""

    out: dict[str, Callable[[], Any]] = {}
    stack, polys = detection.stack, detection.polygons
    if len(polys):
        # The AOI is kilometres wide and compounds are metres: overview once, then zoom on the burns.
        last = len(detection.records) - 1
        last_rec = detection.records[last]
        out["overview.png"] = partial(
            figs.overlay_figure,
            stack["reflectance"].isel(time=last).assign_attrs(
                acquired=last_rec.acquired_utc, time_of_day_known=last_rec.time_of_day_known, scene_id=last_rec.scene_id,
                satellite_id=last_rec.satellite_id, crs=detection.grid.crs),
            polygons_new=polys, after_clear=stack["clear"].isel(time=last), aoi_outline=aoi_outline, simulated=simulated,
            tz_name=tz_name, when="all dates", locator=True, width_mm=width_mm,
            title=f"All burn marks found, {detection.records[0].acquired:%Y-%m-%d} to {last_rec.acquired:%Y-%m-%d}",  # dates only
            caption=f"Overview of the AOI on {last_rec.scene_id} ({scene_time(last_rec, tz_name)}); "
                    f"{len(polys)} burn polygon(s), {polys['area_ha'].sum():.2f} ha, all dates. Inset: the AOI on a 1-degree "
                    f"lon/lat graticule. {imagery_credit([last_rec])}.",
        )
        stack = _zoom(stack, polys.total_bounds, detection.grid)
    for t in range(1, len(detection.records)):
        out.update(_date_figures(detection, stack, t, aoi_outline, simulated, tz_name, width_mm))
    return out


def _date_figures(detection: Detection, stack: xr.Dataset, t: int, aoi_outline: Any, simulated: bool, tz_name: str,
                  width_mm: float) -> dict[str, Callable[[], Any]]:
    """The figures of date ``t``: the pair, in natural colour too, the pair with the burns outlined, the change map."""
    polys = detection.polygons
    before_rec, after_rec = detection.records[t - 1], detection.records[t]
    before, after = (
        stack["reflectance"].isel(time=i).assign_attrs(
            acquired=rec.acquired_utc, time_of_day_known=rec.time_of_day_known, scene_id=rec.scene_id,
            satellite_id=rec.satellite_id, crs=detection.grid.crs
        )
        for i, rec in ((t - 1, before_rec), (t, after_rec))
    )
    new = polys[polys["first_seen_index"] == t]
    earlier = polys[polys["first_seen_index"] < t]
    credit = imagery_credit([before_rec, after_rec])
    caption = (
        f"Before: {before_rec.scene_id}, {scene_time(before_rec, tz_name)}. "
        f"After: {after_rec.scene_id}, {scene_time(after_rec, tz_name)}. "
        f"False-colour infrared (NIR, red, green): vegetation red, burns dark; same stretch on both. "
        f"{len(new)} new burn polygon(s), {new['area_ha'].sum():.2f} ha. {credit}."
    )
    stamp = after_rec.acquired.strftime("%Y%m%dT%H%MZ")
    before_clear, after_clear = stack["clear"].isel(time=t - 1), stack["clear"].isel(time=t)

    # One stretch for the pair and the overlay, from observed ground only (cloud would wash it out); computed
    # where the first of those figures is drawn.
    @cache
    def stretch(bands: tuple[str, str, str] = figs.CIR_BANDS) -> figs.Stretch:
        return figs.joint_stretch(before.where(before_clear), after.where(after_clear), bands=bands)

    def pair(*, bands: tuple[str, str, str] = figs.CIR_BANDS, caption: str = caption, **kwargs: Any) -> Any:
        return figs.before_after_figure(before, after, before_clear=before_clear, after_clear=after_clear, bands=bands,
                                        caption=caption, simulated=simulated, aoi_outline=aoi_outline,
                                        stretch=stretch(bands), tz_name=tz_name, width_mm=width_mm, **kwargs)

    out: dict[str, Callable[[], Any]] = {
        f"{stamp}_before_after.png": partial(pair, title=f"Before / after, {after_rec.acquired:%Y-%m-%d}")}
    if all(b in stack.band.values for b in figs.NATURAL_BANDS):
        out[f"{stamp}_before_after_natural.png"] = partial(
            pair, bands=figs.NATURAL_BANDS, title=f"Before / after in natural colour, {after_rec.acquired:%Y-%m-%d}",
            caption=caption.replace("False-colour infrared (NIR, red, green): vegetation red, burns dark",
                                    "Natural colour (red, green, blue)"))
    # The same pair again with the burns outlined on the after scene: the plain pair lets a
    # reader judge the ground without the machine's lines in the way.
    out[f"{stamp}_overlay.png"] = partial(pair, polygons_new=new, polygons_earlier=earlier,
                                          title=f"Burn marks first visible on {scene_time(after_rec)}")
    info = detection.thresholds[t]
    if info is not None and len(new):
        out[f"{stamp}_change.png"] = partial(
            figs.change_map_figure,
            detection.change["delta"].isel(time=t).assign_attrs(crs=detection.grid.crs),
            seed_threshold=info.seed_threshold, grow_threshold=info.grow_threshold, background=info.background,
            index_name=detection.index_name, polygons_new=new, aoi_outline=aoi_outline, simulated=simulated, width_mm=width_mm,
            title=f"Burn-index change to {scene_time(after_rec)}, with the thresholds used",
            caption=(f"Change of {detection.index_name.upper()} between each pixel's last clear observation and "
                     f"{after_rec.scene_id} ({scene_time(after_rec, tz_name)}); grey: not observed. Seeds of the "
                     f"burn mask exceed 'seed', burns grow down to 'grow' (background {info.background:+.3f}, noise "
                     f"{info.noise_sigma:.3f}). Outlined: new burn polygons. {credit}."),
        )
    return out


def _structure_figures(detection: Detection, structures: gpd.GeoDataFrame, aoi_outline: Any,
                       simulated: bool, tz_name: str, width_mm: float) -> dict[str, Callable[[], Any]]:
    """Per date with burned structures: the after scene with them outlined, zoomed on the village (not yet drawn)."""

    burned = structures[structures["burned"]]
    out: dict[str, Callable[[], Any]] = {}
    if not len(burned):
        return out
    stack = _zoom(detection.stack, burned.total_bounds, detection.grid)
    to_all = record_positions(detection.records, detection.all_records)  # structures are indexed like the report
    for j, rec in enumerate(detection.records):
        t = int(to_all[j])
        new = burned[burned["first_seen_index"] == t]
        if not len(new):
            continue
        after = stack["reflectance"].isel(time=j).assign_attrs(
            acquired=rec.acquired_utc, time_of_day_known=rec.time_of_day_known, scene_id=rec.scene_id,
            satellite_id=rec.satellite_id, crs=detection.grid.crs)
        out[f"{rec.acquired:%Y%m%dT%H%MZ}_structures.png"] = partial(
            figs.overlay_figure, after, polygons_new=new.assign(polygon_id=None), polygons_earlier=burned[burned["first_seen_index"] < t],
            after_clear=stack["clear"].isel(time=j), aoi_outline=aoi_outline, simulated=simulated, tz_name=tz_name,
            noun="structure", width_mm=width_mm, title=f"Structures burned, first visible on {scene_time(rec)}",
            caption=(f"Building footprints (aligned to the scenes) burned in polygons first visible on {rec.scene_id} "
                     f"({scene_time(rec, tz_name)}): {len(new)} new, {int((burned['first_seen_index'] < t).sum())} "
                     f"earlier. {imagery_credit([rec])}."),
        )
    return out


def _timeline(records: list[SceneRecord], quality: list[dict[str, Any]], polygons: gpd.GeoDataFrame, simulated: bool,
              tz_name: str, width_mm: float) -> Any:
    """New burned area per acquisition, settlement and other burns apart, with each scene's clear share."""

    by = {s: [float(polygons.loc[(polygons["first_seen_index"] == i) & (polygons["setting"] == s), "area_ha"].sum())
              if len(polygons) else 0.0 for i in range(len(records))] for s in ("settlement", "outside", "unknown")}
    return figs.timeline_figure(
        [r.acquired for r in records], settlement_ha=by["settlement"],
        other_ha=[o + u for o, u in zip(by["outside"], by["unknown"])],
        clear_fraction=[q["clear_fraction"] for q in quality], usable=[bool(q["usable"]) for q in quality],
        title="Burned area first seen on each acquisition", simulated=simulated, tz_name=tz_name, width_mm=width_mm,
        time_of_day_known=[r.time_of_day_known for r in records],
        caption=(f"From {records[0].scene_id} ({scene_time(records[0], tz_name)}) to {records[-1].scene_id} "
                 f"({scene_time(records[-1], tz_name)}). A bar is the area first visible on that scene; "
                 f"no bar on a cloudy or unusable scene means not seen, not unburned."),
    )
