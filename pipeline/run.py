"""The flow, in one place: load, co-register, normalise, index, difference, threshold,
polygons, report.

:func:`detect_burns` is the whole analysis on arrays (no files); :func:`run_detect` is
the batch entry point that reads the AOI and its scenes, calls it, and writes the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import xarray as xr
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from pipeline.aoi import AOI_DIR, Aoi, load_aoi
from pipeline.stages.change import consecutive_change
from pipeline.config import Params, resolve_params
from pipeline.stages.coregister import ShiftEstimate, apply_shifts, coregister
from pipeline.stages.dating import date_burns
from pipeline.sim.demo import ensure_demo_scenes
from pipeline.errors import OutputError, PipelineError, RunError, SceneError
from pipeline.evidence import find_layers, gather_evidence
from pipeline.grid import Grid
from pipeline.stages.indices import burn_index, choose_index
from pipeline.readers.catalogue import catalogue_dir, catalogue_entries, catalogue_sources
from pipeline.readers.load import SceneRecord, read_outline, record_positions, sha256_file
from pipeline.provenance.manifest import input_entry, recorded_overrides, seal_manifest
from pipeline.stages.normalise import BandFit, apply_fits, identity_fits, normalise, wants_normalisation
from pipeline.stages.perimeter import extent_dates, extent_polygons
from pipeline.stages.plausibility import judge_scenes, mask_implausible
from pipeline.stages.polygons import burn_polygons, kml_placemarks
from pipeline.preflight import check_coreg_band, check_detect_grid, scene_shape
from pipeline.provenance.versions import git_state, package_versions
from pipeline.outputs.html_report import render_html
from pipeline.outputs.report import build_report, render_markdown, with_evidence
from pipeline.provenance.signing import load_private_key
from pipeline.review import apply_decisions, read_decisions, review_summary, reviews_path
from pipeline.readers.sources import load_sources, recognise
from pipeline.stages.structures import settlement_from_footprints
from pipeline.stages.threshold import ThresholdInfo
from pipeline.outputs import figures as figs
from pipeline.outputs.write import check_output_folder, finish_run_dir, new_run_dir, save_figures, write_json, write_text, write_vector

__all__ = ["Calibration", "Detection", "detect_burns", "run_detect", "RunOutcome"]

logger = logging.getLogger(__name__)

IMAGERY_CREDIT_SIMULATED = "Imagery: SIMULATED by burnscan (PlanetScope-like), not a real acquisition"


@dataclass(frozen=True)
class Calibration:
    """What is measured once on a whole scene and then applied to every chunk of it.

    A large scene is analysed chunk by chunk; each chunk must use the scene's usable-scene
    choice, shifts, band fits and change noise, or neighbouring chunks would disagree.
    """

    usable: tuple[bool, ...]
    """Per scene given: clear enough over the area to be analysed."""
    shifts: tuple[ShiftEstimate, ...]
    """Per usable scene."""
    fits: tuple[tuple[BandFit, ...], ...]
    """Per usable scene, per band."""
    noise: tuple[tuple[float, float] | None, ...]
    """Per usable scene: background and noise sigma of its change (``None``: nothing compared)."""


@dataclass(frozen=True)
class Detection:
    """Everything the analysis produced, for reports, figures, notebooks and benchmarks."""

    stack: xr.Dataset
    """Co-registered, normalised scenes on the analysis grid (usable scenes only)."""
    records: list[SceneRecord]
    """Records of the usable scenes, in the order of ``stack``."""
    all_records: list[SceneRecord]
    """Every scene given, usable or not."""
    quality: list[dict[str, Any]]
    """Per scene of ``all_records``: clear fraction, usability, co-registration, normalisation."""
    shifts: list[ShiftEstimate]
    fits: list[list[BandFit]]
    index_name: str
    index: xr.DataArray
    change: xr.Dataset
    dates: xr.Dataset
    thresholds: list[ThresholdInfo | None]
    polygons: gpd.GeoDataFrame
    extent_first: xr.DataArray
    """(y, x) scene index from which the burned extent encloses a pixel (-1: never)."""
    extents: gpd.GeoDataFrame
    """Burned extents (:mod:`pipeline.stages.perimeter`) as of each date."""
    grid: Grid
    calibration: Calibration
    """The scene-wide measurements behind this detection, to apply to other chunks."""


def _crop(stack: xr.Dataset, outer: Grid, inner: Grid) -> xr.Dataset:
    row, col = inner.offset_in(outer)
    return stack.isel(y=slice(row, row + inner.height), x=slice(col, col + inner.width))


def detect_burns(
    stack: xr.Dataset,
    records: list[SceneRecord],
    *,
    params: Params,
    loaded_grid: Grid,
    analysis_grid: Grid,
    settlement: BaseGeometry | None = None,
    calibration: Calibration | None = None,
    core: Grid | None = None,
) -> Detection:
    """Run every analysis stage on a loaded stack.

    Parameters
    ----------
    stack, records:
        Output of :func:`pipeline.readers.load.load_stack` on ``loaded_grid``.
    params:
        Resolved parameters.
    loaded_grid:
        The grid the stack was loaded on (the analysis grid plus a margin).
    analysis_grid:
        The AOI's grid; results are cropped to it after co-registration.
    settlement:
        Built-up area in the grid's CRS, to tell settlement burns from field and bush fires.
    calibration:
        Measured beforehand on the whole scene when ``stack`` is one chunk of it
        (:mod:`pipeline.chunked`): used instead of measuring here.
    core:
        When ``stack`` is a chunk with a halo around it (:mod:`pipeline.chunked`): the chunk
        itself, inside ``analysis_grid``. Polygons are built for it alone, so that every
        pixel belongs to one chunk, and burned extents are left out.
    """
    # Garbage is never evidence: a scene whose numbers cannot be ground is not observed, with its
    # reason, before anything counts it as clear. A chunk keeps the calibration's choice, so that
    # every chunk agrees; impossible pixels are masked in each, as they are pixel by pixel.
    refused: list[str | None] = [None] * len(records)
    if calibration is None:
        in_aoi = _crop(stack, loaded_grid, analysis_grid)
        refused = judge_scenes(in_aoi["reflectance"].values, in_aoi["clear"].values, bands=[str(b) for b in stack.band.values])
    stack = mask_implausible(stack, refused=refused)
    in_aoi = _crop(stack, loaded_grid, analysis_grid)
    clear_fraction = in_aoi["clear"].mean(dim=("y", "x")).values
    if calibration is None:
        usable = (clear_fraction >= params.min_clear_fraction) & np.array([r is None for r in refused])
    else:
        usable = np.array(calibration.usable)
    if usable.sum() < 2:
        why = [f"{records[i].scene_id} ({refused[i] or f'{clear_fraction[i]:.1%} clear'})" for i in np.flatnonzero(~usable)]
        raise SceneError(
            f"{int(usable.sum())} of {len(records)} scenes have at least {params.min_clear_fraction:.0%} clear ground over the AOI; "
            f"add clear scenes before and after the event (not usable: {'; '.join(why[:6])}"
            f"{f'; and {len(why) - 6} more' if len(why) > 6 else ''})"
        )
    keep = np.flatnonzero(usable)
    used = stack.isel(time=keep)
    used_records = [records[i] for i in keep]
    if params.reference_scene >= len(keep):
        raise PipelineError(f"parameter reference_scene={params.reference_scene} but only {len(keep)} usable scenes; lower it")

    if calibration is None:
        aligned, shifts = coregister(used, reference_index=params.reference_scene, band=params.coreg_band,
                                     max_shift_px=params.coreg_max_shift_px)
    else:
        shifts = list(calibration.shifts)
        aligned = apply_shifts(used, shifts)
    # A scene between two others whose ground cannot be matched to the reference (soil wet
    # after rain, dense dust) would make every pixel look changed, then changed back: it is
    # read like a cloudy scene, neither as evidence of burning nor as the "before" of the next.
    inconsistent = [j for j in range(1, len(keep) - 1) if not shifts[j].reliable and j != params.reference_scene]
    if inconsistent:
        aligned["clear"].values[inconsistent] = False
    aligned = _crop(aligned, loaded_grid, analysis_grid)
    bands = [str(b) for b in aligned.band.values]
    if calibration is not None:
        fits = [list(f) for f in calibration.fits]
        normalised = apply_fits(aligned, fits)
    elif wants_normalisation(bands, params.normalisation):
        normalised, fits = normalise(aligned, reference_index=params.reference_scene)
    else:
        normalised, fits = aligned, identity_fits(aligned)
    index_name = choose_index(bands, params.burn_index)
    index = burn_index(normalised["reflectance"], index=index_name)
    change = consecutive_change(index, normalised["clear"])
    post_nir = normalised["reflectance"].sel(band="nir", drop=True) if index_name in ("nir", "bai") else None
    dates, thresholds = date_burns(
        change, index=index, clear=normalised["clear"], post_nir=post_nir, params=params, pixel_area_m2=analysis_grid.pixel_area_m2,
        noise=None if calibration is None else list(calibration.noise),
    )
    times = [r.acquired_utc for r in used_records]
    if core is None:
        polygons = burn_polygons(dates, grid=analysis_grid, times=times, index_name=index_name, settlement=settlement)
        first_seen = dates["first_seen"].values
        extent_first = extent_dates(first_seen, pixel_size_m=analysis_grid.resolution, close_radius_m=params.extent_close_m)
        extents = extent_polygons(extent_first, first_seen, grid=analysis_grid, times=times)
    else:
        polygons = burn_polygons(_crop(dates, analysis_grid, core), grid=core, times=times, index_name=index_name,
                                 settlement=settlement)
        extent_first = np.full(dates["first_seen"].shape, -1, dtype=np.int16)
        extents = gpd.GeoDataFrame(geometry=[], crs=analysis_grid.crs)

    quality: list[dict[str, Any]] = []
    used_pos = {int(k): j for j, k in enumerate(keep)}
    for i, record in enumerate(records):
        entry: dict[str, Any] = {"clear_fraction": round(float(clear_fraction[i]), 4), "usable": bool(usable[i])}
        if refused[i]:
            entry["unusable_reason"] = refused[i]
        if i in used_pos:
            j = used_pos[i]
            if j in inconsistent:
                entry["usable"] = False
                entry["unusable_reason"] = (
                    f"its ground does not match the reference (correlation {shifts[j].correlation:.2f}): "
                    f"wet soil, dense haze or a miscalibrated scene; read as not observed"
                )
            entry["coregistration"] = shifts[j].as_dict()
            entry["normalisation"] = [f.as_dict() for f in fits[j]]
            entry["threshold"] = thresholds[j].as_dict() if thresholds[j] else None
            entry["is_first_usable"] = j == 0
        quality.append(entry)
    return Detection(
        stack=normalised,
        records=used_records,
        all_records=list(records),
        quality=quality,
        shifts=shifts,
        fits=fits,
        index_name=index_name,
        index=index,
        change=change,
        dates=dates,
        thresholds=thresholds,
        polygons=polygons,
        extent_first=xr.DataArray(extent_first, dims=("y", "x"), coords={"y": dates.y, "x": dates.x}),
        extents=extents,
        grid=analysis_grid,
        calibration=Calibration(
            usable=tuple(bool(u) for u in usable),
            shifts=tuple(shifts),
            fits=tuple(tuple(f) for f in fits),
            noise=tuple(None if info is None else (info.background, info.noise_sigma) for info in thresholds),
        ),
    )


@dataclass(frozen=True)
class RunOutcome:
    """Where a run wrote, and what it found."""

    run_dir: Path
    detection: Detection
    report: dict[str, Any]
    demo_folder: Path | None
    manifest_sha256: str = ""
    """SHA-256 of the run's manifest, as chained in ``<out>/<aoi>/runs.log``: keep it to check the run later."""


def _polygons_with_positions(detection: Detection) -> gpd.GeoDataFrame:
    """Polygons indexed into ``all_records`` (reports cite every scene, usable or not)."""
    to_all = record_positions(detection.records, detection.all_records)
    polys = detection.polygons.copy()
    polys["first_seen_index"] = [int(to_all[i]) for i in polys["first_seen_index"]]
    polys["last_clear_index"] = [int(to_all[i]) if i >= 0 else -1 for i in polys["last_clear_index"]]
    return polys


def _zoom(stack: xr.Dataset, bounds: np.ndarray, grid: Grid, *, pad_m: float = 150.0, min_side_m: float = 600.0) -> xr.Dataset:
    """The part of ``stack`` around ``bounds`` (left, bottom, right, top), padded and at least ``min_side_m`` wide."""
    left, bottom, right, top = (float(v) for v in bounds)
    cx, cy = (left + right) / 2, (bottom + top) / 2
    half = max(right - left + 2 * pad_m, top - bottom + 2 * pad_m, min_side_m) / 2
    g_left, g_bottom, g_right, g_top = grid.bounds
    return stack.sel(x=slice(max(cx - half, g_left), min(cx + half, g_right)), y=slice(min(cy + half, g_top), max(cy - half, g_bottom)))


def _figures(detection: Detection, aoi_outline: Any, credit: str, simulated: bool, tz_name: str) -> dict[str, Any]:
    """Before/after pairs and overlays, one per date with new burns or a clear reading."""
    from pipeline.outputs.report import format_time

    out: dict[str, Any] = {}
    stack, polys = detection.stack, detection.polygons
    if len(polys):
        # The AOI is kilometres wide and compounds are metres: overview once, then zoom on the burns.
        last = len(detection.records) - 1
        last_rec = detection.records[last]
        out["overview.png"] = figs.overlay_figure(
            stack["reflectance"].isel(time=last).assign_attrs(
                acquired=last_rec.acquired_utc, scene_id=last_rec.scene_id, satellite_id=last_rec.satellite_id, crs=detection.grid.crs),
            polygons_new=polys, after_clear=stack["clear"].isel(time=last), aoi_outline=aoi_outline, simulated=simulated,
            tz_name=tz_name, when="all dates",
            title=f"All burn marks found, {detection.records[0].acquired:%Y-%m-%d} to {last_rec.acquired:%Y-%m-%d}",
            caption=f"Overview of the AOI on {last_rec.scene_id} ({format_time(last_rec.acquired, tz_name)}); "
                    f"{len(polys)} burn polygon(s), {polys['area_ha'].sum():.2f} ha, all dates. {credit}.",
        )
        stack = _zoom(stack, polys.total_bounds, detection.grid)
    for t in range(1, len(detection.records)):
        before_rec, after_rec = detection.records[t - 1], detection.records[t]
        before, after = (
            stack["reflectance"].isel(time=i).assign_attrs(
                acquired=rec.acquired_utc, scene_id=rec.scene_id, satellite_id=rec.satellite_id, crs=detection.grid.crs
            )
            for i, rec in ((t - 1, before_rec), (t, after_rec))
        )
        new = polys[polys["first_seen_index"] == t]
        earlier = polys[polys["first_seen_index"] < t]
        caption = (
            f"Before: {before_rec.scene_id}, {format_time(before_rec.acquired, tz_name)}. "
            f"After: {after_rec.scene_id}, {format_time(after_rec.acquired, tz_name)}. "
            f"False-colour infrared (NIR, red, green): vegetation red, burns dark; same stretch on both. "
            f"{len(new)} new burn polygon(s), {new['area_ha'].sum():.2f} ha. {credit}."
        )
        stamp = after_rec.acquired.strftime("%Y%m%dT%H%MZ")
        before_clear, after_clear = stack["clear"].isel(time=t - 1), stack["clear"].isel(time=t)
        # One stretch for the pair and the overlay, from observed ground only (cloud would wash it out).
        stretch = figs.joint_stretch(before.where(before_clear), after.where(after_clear))
        common = dict(caption=caption, simulated=simulated, aoi_outline=aoi_outline, stretch=stretch, tz_name=tz_name)
        out[f"{stamp}_before_after.png"] = figs.before_after_figure(
            before, after,
            before_clear=before_clear, after_clear=after_clear,
            title=f"Before / after, {after_rec.acquired:%Y-%m-%d}", **common,
        )
        if all(b in stack.band.values for b in figs.NATURAL_BANDS):
            natural = figs.joint_stretch(before.where(before_clear), after.where(after_clear), bands=figs.NATURAL_BANDS)
            out[f"{stamp}_before_after_natural.png"] = figs.before_after_figure(
                before, after, before_clear=before_clear, after_clear=after_clear, bands=figs.NATURAL_BANDS,
                title=f"Before / after in natural colour, {after_rec.acquired:%Y-%m-%d}",
                **(common | {"stretch": natural, "caption": caption.replace(
                    "False-colour infrared (NIR, red, green): vegetation red, burns dark", "Natural colour (red, green, blue)")}),
            )
        # The same pair again with the burns outlined on the after scene: the plain pair lets a
        # reader judge the ground without the machine's lines in the way.
        out[f"{stamp}_overlay.png"] = figs.before_after_figure(
            before, after, before_clear=before_clear, after_clear=after_clear, polygons_new=new, polygons_earlier=earlier,
            title=f"Burn marks first visible on {after_rec.acquired:%Y-%m-%d %H:%M} UTC", **common,
        )
        info = detection.thresholds[t]
        if info is not None and len(new):
            out[f"{stamp}_change.png"] = figs.change_map_figure(
                detection.change["delta"].isel(time=t).assign_attrs(crs=detection.grid.crs),
                seed_threshold=info.seed_threshold, grow_threshold=info.grow_threshold, background=info.background,
                index_name=detection.index_name, polygons_new=new, aoi_outline=aoi_outline, simulated=simulated,
                title=f"Burn-index change to {after_rec.acquired:%Y-%m-%d %H:%M} UTC, with the thresholds used",
                caption=(f"Change of {detection.index_name.upper()} between each pixel's last clear observation and "
                         f"{after_rec.scene_id} ({format_time(after_rec.acquired, tz_name)}); grey: not observed. Seeds of the "
                         f"burn mask exceed 'seed', burns grow down to 'grow' (background {info.background:+.3f}, noise "
                         f"{info.noise_sigma:.3f}). Outlined: new burn polygons. {credit}."),
            )
    return out


def _structure_figures(detection: Detection, structures: gpd.GeoDataFrame, aoi_outline: Any, credit: str,
                       simulated: bool, tz_name: str) -> dict[str, Any]:
    """Per date with burned structures: the after scene with them outlined, zoomed on the village."""
    from pipeline.outputs.report import format_time

    burned = structures[structures["burned"]]
    out: dict[str, Any] = {}
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
            acquired=rec.acquired_utc, scene_id=rec.scene_id, satellite_id=rec.satellite_id, crs=detection.grid.crs)
        out[f"{rec.acquired:%Y%m%dT%H%MZ}_structures.png"] = figs.overlay_figure(
            after, polygons_new=new.assign(polygon_id=None), polygons_earlier=burned[burned["first_seen_index"] < t],
            after_clear=stack["clear"].isel(time=j), aoi_outline=aoi_outline, simulated=simulated, tz_name=tz_name,
            noun="structure", title=f"Structures burned, first visible on {rec.acquired:%Y-%m-%d %H:%M} UTC",
            caption=(f"Building footprints (aligned to the scenes) burned in polygons first visible on {rec.scene_id} "
                     f"({format_time(rec.acquired, tz_name)}): {len(new)} new, {int((burned['first_seen_index'] < t).sum())} "
                     f"earlier. {credit}."),
        )
    return out


def _timeline(detection: Detection, polygons: gpd.GeoDataFrame, simulated: bool, tz_name: str) -> Any:
    """New burned area per acquisition, settlement and other burns apart, with each scene's clear share."""
    from pipeline.outputs.report import format_time

    records = detection.all_records
    by = {s: [float(polygons.loc[(polygons["first_seen_index"] == i) & (polygons["setting"] == s), "area_ha"].sum())
              if len(polygons) else 0.0 for i in range(len(records))] for s in ("settlement", "outside", "unknown")}
    return figs.timeline_figure(
        [r.acquired for r in records], settlement_ha=by["settlement"],
        other_ha=[o + u for o, u in zip(by["outside"], by["unknown"])],
        clear_fraction=[q["clear_fraction"] for q in detection.quality], usable=[bool(q["usable"]) for q in detection.quality],
        title="Burned area first seen on each acquisition", simulated=simulated, tz_name=tz_name,
        caption=(f"From {records[0].scene_id} ({format_time(records[0].acquired, tz_name)}) to {records[-1].scene_id} "
                 f"({format_time(records[-1].acquired, tz_name)}). A bar is the area first visible on that scene; "
                 f"no bar on a cloudy or unusable scene means not seen, not unburned."),
    )


def _settlement_outline(aoi: Aoi, scenes_dir: Path, crs: str) -> tuple[BaseGeometry | None, Path | None]:
    """The built-up area and the file it came from: a ``settlement*.geojson`` beside the scenes,
    else the AOI's ``settlement`` property (hashed with the AOI file)."""
    files = sorted(scenes_dir.glob("settlement*.geojson"))
    if files:
        return read_outline(files[0], crs), files[0]
    if aoi.properties.get("settlement"):
        return Aoi(aoi.name, shape(aoi.properties["settlement"])).projected(crs), None
    return None, None


def run_detect(
    aoi_name: str,
    *,
    out_root: Path = Path("out"),
    data_root: Path = Path("data"),
    overrides: dict[str, Any] | None = None,
    scenes_dir: Path | None = None,
    aoi_dir: Path = AOI_DIR,
    make_figures: bool = True,
    kind: str | None = None,
    reviews_file: Path | None = None,
    apply_reviews: bool = True,
    sign_key: Path | None = None,
) -> RunOutcome:
    """Detect and date burns for one AOI and write a complete run folder.

    Uses the scenes in ``scenes_dir`` when given, else the AOI's catalogue when it has scenes
    (``kind`` picks one sensor), else the embedded simulated demo; the log says which.
    Analysts' decisions in ``reviews_file`` (default ``<data>/<aoi>/reviews.json``) are
    applied to the polygons unless ``apply_reviews`` is False. The run ends by writing its
    manifest (:func:`pipeline.provenance.manifest.seal_manifest`): chained into ``<out>/<aoi>/runs.log``
    and, with ``sign_key`` (an Ed25519 private key file), signed.
    """
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    # Everything the run needs is checked before any work, so that a mistake is one line now,
    # not a traceback after minutes: the signing key, the AOI file (time zone, size, properties),
    # the parameters, the output folder, the grid's size and memory, then the scenes' count and bands.
    key = load_private_key(sign_key) if sign_key is not None else None
    aoi = load_aoi(aoi_name, aoi_dir)
    params = resolve_params(aoi.parameters, overrides, aoi_source=f"AOI file {aoi.path}")
    check_output_folder(Path(out_root) / aoi.name)  # before minutes of work, not after
    analysis_grid = aoi.analysis_grid(params.resolution_m)
    margin_px = int(np.ceil(params.margin_m / params.resolution_m))
    loaded_grid = analysis_grid.buffered(margin_px)
    where = str(aoi.path or aoi.name)
    check_detect_grid(analysis_grid, loaded_grid, params=params, where=where)  # the fewest scenes and bands: before the demo
    demo_folder = None
    if scenes_dir is not None:
        logger.info(f"loading scenes from {scenes_dir}")
        sources, scenes_from = recognise(Path(scenes_dir)), "folder"
    elif catalogue_entries(data_root, aoi.name):
        logger.info(f"using the scene catalogue of {aoi.name} ({catalogue_dir(data_root, aoi.name)})")
        sources, scenes_from = catalogue_sources(data_root, aoi.name, kind=kind), "catalogue"
        scenes_dir = Path(data_root) / aoi.name
    else:
        logger.info(f"no scenes given and none registered: using the embedded SIMULATED demo for {aoi_name}")
        demo = ensure_demo_scenes(aoi, Path(data_root), resolution=params.resolution_m, margin_m=params.margin_m)
        scenes_dir = demo_folder = demo.folder
        sources, scenes_from = recognise(demo.folder), "demo"
    infos = [s.describe() for s in sources]  # metadata only: no pixel read yet
    scenes, bands = scene_shape(infos)
    check_detect_grid(analysis_grid, loaded_grid, params=params, scenes=scenes, bands=bands, where=where)
    for info in infos:
        check_coreg_band(params, info.bands, where=f"{scenes_dir}: scene {info.scene_id}")
    try:
        stack, records = load_sources(sources, loaded_grid)
        check_coreg_band(params, [str(b) for b in stack.band.values], where=f"{scenes_dir}")
        settlement, settlement_file = _settlement_outline(aoi, Path(scenes_dir), analysis_grid.crs)
        layers = find_layers(Path(scenes_dir), Path(data_root) / aoi.name, analysis_grid)
        if settlement is None and layers.footprints is not None:  # no outline drawn: the footprints outline the built-up area
            settlement = settlement_from_footprints(layers.footprints)
            settlement_file = layers.footprints_path if settlement is not None else None
        logger.info(f"{len(records)} scenes loaded; co-registering, normalising, detecting")
        detection = detect_burns(stack, records, params=params, loaded_grid=loaded_grid, analysis_grid=analysis_grid,
                                 settlement=settlement)
    except MemoryError as exc:  # the estimate above is rough: a run it let through may still not fit
        raise RunError(f"{where}: out of memory detecting on {loaded_grid.width} x {loaded_grid.height} px x {len(sources)} "
                       f"scenes (nothing was written); draw a tighter AOI, set a coarser resolution_m or a smaller "
                       f"margin_m, or scan wide areas with `burnscan search`") from exc

    run_id, partial = new_run_dir(Path(out_root), aoi.name)
    try:
        simulated = any(r.simulated for r in records)
        suffix = "_SIMULATED" if simulated else ""
        reviews_file = Path(reviews_file) if reviews_file is not None else reviews_path(data_root, aoi.name)
        decisions = read_decisions(reviews_file) if apply_reviews else []
        polygons = apply_decisions(_polygons_with_positions(detection), decisions, simulated=simulated)
        tz_name = str(aoi.properties.get("timezone", "UTC"))
        logger.info(f"{len(polygons)} burn polygon(s); checking structures, active fires and confidence")
        evidence = gather_evidence(polygons, detection=detection, params=params, layers=layers, tz_name=tz_name)
        polygons = evidence.polygons
        provenance = {"run_id": run_id, **git_state(), "versions": package_versions(), "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ")}
        report = build_report(
            aoi=aoi, records=records, quality=detection.quality, polygons=polygons,
            params=params.as_dict(), provenance=provenance, index_name=detection.index_name, extents=detection.extents,
        )
        report["review"] = review_summary(polygons)
        report = with_evidence(report, evidence.report)
        polygons_4326 = polygons.to_crs("EPSG:4326")
        gpkg_layers = {"all": polygons}
        if len(detection.extents):
            gpkg_layers["extent"] = detection.extents
        if evidence.structures is not None:
            gpkg_layers["structures"] = evidence.structures
        for t, rec in enumerate(records):
            chosen = polygons[polygons["first_seen_index"] == t]
            if len(chosen):
                gpkg_layers[f"first_seen_{rec.acquired:%Y%m%dT%H%MZ}"] = chosen
        # No list of outputs is kept here: the manifest lists the folder's files as they are when it is
        # sealed, so nothing written into the run folder can be left out of it.
        write_vector(partial / f"burns{suffix}.gpkg", gpkg_layers, root=partial)
        write_vector(partial / f"burns{suffix}.geojson", {"burns": polygons_4326}, driver="GeoJSON", root=partial)
        write_vector(partial / f"burns{suffix}.kml", {"burns": kml_placemarks(polygons_4326, simulated=simulated)}, driver="KML",
                     root=partial)
        figure_names: list[str] = []
        if make_figures:
            logger.info("drawing figures")
            credit = IMAGERY_CREDIT_SIMULATED if simulated else "Imagery: see scene ids; credit the provider"
            aoi_outline = aoi.projected(analysis_grid.crs)
            figures = _figures(detection, aoi_outline, credit, simulated, report["aoi"]["timezone"])
            figures["timeline.png"] = _timeline(detection, polygons, simulated, report["aoi"]["timezone"])
            if evidence.structures is not None:
                figures.update(_structure_figures(detection, evidence.structures, aoi_outline, credit, simulated, tz_name))
            to_save = []
            for name, fig in figures.items():
                fname = name.replace(".png", f"{suffix}.png")
                to_save.append((partial / "figures" / fname, fig))
                if name == "timeline.png" or name.endswith(("_overlay.png", "_structures.png")):
                    # In PDF too, for print, where vectors help: outlines and charts stay sharp at any
                    # size (a plain scene pair is pixels either way, so it stays PNG only).
                    to_save.append((partial / "figures" / fname.replace(".png", ".pdf"), fig))
                figure_names.append(f"figures/{fname}")
            save_figures(to_save, root=partial)
        logger.info("writing the report and the manifest")
        write_json(partial / "report.json", report, root=partial)
        write_text(partial / "report.md", render_markdown(report, figures=figure_names, polygons=polygons), root=partial)
        pngs = {name: (partial / name).read_bytes() for name in figure_names}
        write_text(partial / "report.html", render_html(report, figures=pngs, polygons=polygons), root=partial)
        finished = datetime.now(timezone.utc)
        manifest = {
            "kind": "detect",
            "run_id": run_id,
            "aoi": aoi.name,
            "simulated": simulated,
            "started_utc": provenance["started_utc"],
            "finished_utc": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(time.perf_counter() - clock, 2),
            "code": git_state(),
            "versions": package_versions(),
            "parameters": params.as_dict(),
            "overrides": recorded_overrides(overrides),
            "scenes_from": scenes_from,
            "aoi_file": (input_entry(aoi.path, sha256_file(aoi.path)) if aoi.path else {"path": None, "sha256": None}),
            "settlement_file": input_entry(settlement_file, sha256_file(settlement_file)) if settlement_file else None,
            "reviews_file": (input_entry(reviews_file, sha256_file(reviews_file))
                             if apply_reviews and reviews_file.is_file() else None),
            "evidence_files": [input_entry(e["path"], e["sha256"], role=e["role"]) for e in evidence.inputs],
            "inputs": [
                {"scene_id": r.scene_id, "acquired_utc": r.acquired_utc, "sensor": r.sensor, "satellite_id": r.satellite_id,
                 "simulated": r.simulated, "files": [input_entry(r.files[role], r.sha256[role], role=role) for role in r.files]}
                for r in records
            ],
        }
        digest = seal_manifest(partial, manifest, aoi_folder=Path(out_root) / aoi.name, sign_key=key)
    except BaseException as exc:
        if isinstance(exc, PipelineError):
            raise type(exc)(f"{exc} (incomplete run left in {partial})") from None
        if isinstance(exc, OSError):  # a disk or file-system failure outside the atomic writers
            raise OutputError(f"{exc.filename or partial}: {exc.strerror or exc}; free disk space or fix permissions "
                              f"(incomplete run left in {partial})") from None
        if isinstance(exc, MemoryError):
            raise RunError(f"{partial}: out of memory while writing the run (incomplete run left there); draw a tighter "
                           f"AOI, set a coarser resolution_m, or run with --no-figures") from exc
        if isinstance(exc, Exception):  # a defect: one line naming the folder; the traceback stays chained for the log
            raise RunError(f"{partial}: the run stopped on {type(exc).__name__}: {str(exc)[:200]} (incomplete run left "
                           f"there); this is a defect in burnscan: report it with the command and the log") from exc
        raise  # an interrupt or exit: not an error of the run
    run_dir = finish_run_dir(partial)
    return RunOutcome(run_dir=run_dir, detection=detection, report=report, demo_folder=demo_folder, manifest_sha256=digest)
