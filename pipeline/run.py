"""The flow, in one place: load, co-register, normalise, index, difference, threshold,
polygons, report.

:func:`detect_burns` is the whole analysis on arrays (no files); :func:`run_detect` is
the batch entry point that reads the AOI and its scenes, calls it, and writes the run.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import MutableMapping
from typing import Any, Callable, Collection, NamedTuple

import geopandas as gpd
import numpy as np
import pyproj
import xarray as xr
from scipy import ndimage
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from pipeline.aoi import AOI_DIR, Aoi, load_aoi
from pipeline.stages.change import consecutive_change
from pipeline.config import NATIVE, Params, resolve_params
from pipeline.stages.coregister import ShiftEstimate, apply_shifts, coregister
from pipeline.stages.dating import burn_level, date_burns
from pipeline.stages.spectral import NOT_TESTED
from pipeline.stages.fraction import coarser_than_grid, unmixing_bands
from pipeline.errors import OutputError, ParameterError, PipelineError, RunError, SceneError
from pipeline.evidence import among, find_layers, gather_evidence
from pipeline.grid import Grid
from pipeline.model import Calibration, Detection, SceneRecord, has_sky_mask, record_positions
from pipeline.stages.indices import burn_index, choose_index
from pipeline.readers.catalogue import catalogue_dir, catalogue_entries, catalogue_sources
from pipeline.readers.vectors import named_simulated, read_outline
from pipeline.readers.rasters import sha256_file
from pipeline.provenance.runlog import check_log_continues
from pipeline.provenance.manifest import APPLIED_REVIEWS_NAME, input_entry, recorded_overrides, run_folder_files, seal_manifest
from pipeline.stages.normalise import BandFit, apply_fits, clearest_scene, identity_fits, normalise, wants_normalisation
from pipeline.stages.perimeter import extent_dates, extent_polygons
from pipeline.stages.plausibility import bands_exchanged, judge_scenes, mask_implausible, nir_below_visible, off_scale
from pipeline.stages.sky import can_screen, sun_azimuth_for, unflagged_sky
from pipeline.stages.polygons import burn_polygons, nonfire_polygons, transient_polygons
from pipeline.stages.split import WALL_BANDS, before_brightness
from pipeline.preflight import refuse_night_scenes, check_coreg_band, check_detect_grid, scene_shape
from pipeline.progress import stage, timed
from pipeline.cores import Pending, fork_map, fork_soon
from pipeline.provenance.versions import code_version, git_state, package_versions
from pipeline.outputs.figure_cache import FigureCache
from pipeline.outputs.composites import composite_problem
from pipeline.outputs.run_folder import figure_jobs, raster_job, scene_jobs, with_drawn, write_findings, write_reports
from pipeline.outputs.report import build_report, with_evidence
from pipeline.outputs.review_page import scene_images, write_review_page
from pipeline.provenance.signing import load_private_key
from pipeline.review import apply_decisions, read_decisions, review_summary, reviews_path
from pipeline.readers.recognise import load_sources, recognise
from pipeline.resolution import DEMO_PIXEL_M, GridChoice, choose_resolution
from pipeline.stages.structures import settlement_from_footprints
from pipeline.stages.threshold import ThresholdInfo
from pipeline.outputs.write import check_output_folder, copy_file, finish_run_dir, new_run_dir, write_json
from pipeline.outputs.shift_cache import ShiftCache
from pipeline.outputs.kept_scenes import Aligned, keep_aligned, kept_aligned
from pipeline.outputs.kept_verdicts import Verdicts, keep_verdicts, kept_verdicts
from pipeline.outputs.run_rasters import RasterInputs
from pipeline.outputs.stac_item import ITEM_NAME, run_item

__all__ = ["Calibration", "Detection", "calibrate", "apply", "detect_burns", "run_detect", "RunOutcome"]

logger = logging.getLogger(__name__)



def detect_burns(
    stack: xr.Dataset,
    records: list[SceneRecord],
    *,
    params: Params,
    loaded_grid: Grid,
    analysis_grid: Grid,
    settlement: BaseGeometry | None = None,
    aoi_name: str = "AOI",
    shift_cache: MutableMapping[str, ShiftEstimate] | None = None,
    kept_scenes: FigureCache | None = None,
    on_normalised: Callable[[xr.Dataset], None] | None = None,
    outline: BaseGeometry | None = None,
) -> Detection:
    """The whole analysis of a loaded stack: :func:`calibrate` on it, then :func:`apply` to all of it.

    ``stack, records`` come from :func:`pipeline.readers.recognise.load_sources` on
    ``loaded_grid`` (the AOI's ``analysis_grid`` plus a margin); ``settlement`` is the
    built-up area in the grid's CRS, to tell settlement burns from field and bush fires.
    On the whole stack, the calibration pass has already computed every array ``apply``
    would (the same numbers: tests/test_house.py), so they are used as they are. ``aoi_name``
    is named in the command a user is told to run when fewer than two scenes are usable.
    ``shift_cache`` keeps shifts between runs of the same scenes (:class:`pipeline.outputs.shift_cache.ShiftCache`),
    ``kept_scenes`` the co-registered, normalised scenes themselves (:mod:`pipeline.outputs.kept_scenes`) and the
    scenes' plausibility verdicts (:mod:`pipeline.outputs.kept_verdicts`).
    ``on_normalised`` is given the normalised stack of the usable scenes (the Detection's ``stack``) as soon as
    it exists, so that a caller can start work that needs only the scenes (drawing them) while burns are dated.
    ``outline`` is the AOI itself in the grid's CRS: the grid covers its bounds, and a burn is one of the AOI's
    only on the pixels whose centre lies inside it (a triangle, a polygon with a hole, a multipolygon).
    """
    inside = analysis_grid.inside(outline) if outline is not None else None
    inside = None if inside is None or inside.all() else inside
    measured = _measure(stack, records, params=params, loaded_grid=loaded_grid, analysis_grid=analysis_grid,
                        aoi_name=aoi_name, shift_cache=shift_cache, kept=kept_scenes, on_normalised=on_normalised,
                        inside=inside)
    if inside is not None:
        measured = measured._replace(dates=_within(measured.dates, inside))
    return _detection(measured, records, params=params, analysis_grid=analysis_grid, settlement=settlement, window=None)


def _within(dates: xr.Dataset, inside: np.ndarray) -> xr.Dataset:
    """``dates`` of the pixels ``inside`` the AOI alone: outside it nothing is dated, passing or set aside.

    The analysis before this (co-registration, normalisation, thresholds, each date's rule) reads the
    whole grid, so the pixels inside are dated as they would be on any grid around them.
    """
    def blank(var: xr.DataArray) -> xr.DataArray:
        v = var.values
        fill = False if v.dtype == bool else NOT_TESTED if v.dtype == np.int8 else -1 if v.dtype.kind == "i" else np.nan
        return var.copy(data=np.where(inside, v, np.array(fill, dtype=v.dtype)))

    return dates.assign({name: blank(var) for name, var in dates.data_vars.items() if var.dims[-2:] == ("y", "x")})


def calibrate(stack: xr.Dataset, records: list[SceneRecord], *, params: Params, loaded_grid: Grid,
              analysis_grid: Grid) -> Calibration:
    """What is measured once on a whole scene stack and shared by every window of it.

    Which scenes are plausible and clear enough, their shifts onto the reference, their
    band fits, the noise of each date's change and of each band the burned fraction is fitted on. The noise depends on the burns of
    earlier dates, so the dating runs here once too; :func:`apply` then repeats it with
    the noise fixed, which gives the same numbers on the same stack.
    """
    return _measure(stack, records, params=params, loaded_grid=loaded_grid, analysis_grid=analysis_grid).calibration


def apply(stack: xr.Dataset, records: list[SceneRecord], calibration: Calibration, *, params: Params, loaded_grid: Grid,
          analysis_grid: Grid, settlement: BaseGeometry | None = None, window: Grid | None = None) -> Detection:
    """Every analysis stage on ``stack`` with the scene-wide ``calibration``.

    ``window``: when ``stack`` is one chunk of a large area with a halo around it
    (:mod:`pipeline.chunked`), the chunk itself inside ``analysis_grid``. Polygons are built
    for it alone, so that every pixel belongs to one chunk, and burned extents are left out.
    """
    refused = list(calibration.refused) or [None] * len(records)
    stack, clear_fraction = _observed(stack, records, refused, loaded_grid, analysis_grid)
    usable = np.array(calibration.usable)
    used, used_records = _usable(stack, records, usable, refused, clear_fraction, params)
    shifts, fits = list(calibration.shifts), [list(f) for f in calibration.fits]
    stage("co-registration applied: the scene-wide shifts", logger=logger)
    aligned = _crop(_unmatched_as_unseen(apply_shifts(used, shifts), shifts, params), loaded_grid, analysis_grid)
    stage("normalisation applied: the scene-wide fits", logger=logger)
    normalised = apply_fits(aligned, fits)
    spectral = apply_fits(normalised, [list(f) for f in calibration.spectral_fits]) if calibration.spectral_fits else None
    dated = _dated(normalised, params, analysis_grid, noise=list(calibration.noise), records=used_records, spectral=spectral,
                   band_noise=list(calibration.band_noise) or None)
    measured = _Measured(calibration, refused, clear_fraction, usable, used_records, shifts, fits, normalised, *dated)
    return _detection(measured, records, params=params, analysis_grid=analysis_grid, settlement=settlement, window=window)


class _Measured(NamedTuple):
    """Everything one pass over a stack computes, before polygons."""

    calibration: Calibration
    refused: list[str | None]
    clear_fraction: np.ndarray
    usable: np.ndarray
    used_records: list[SceneRecord]
    shifts: list[ShiftEstimate]
    fits: list[list[BandFit]]
    normalised: xr.Dataset
    index_name: str
    index: xr.DataArray
    change: xr.Dataset
    dates: xr.Dataset
    thresholds: list[ThresholdInfo | None]
    kept_work: str = ""
    """What this pass read from the kept work of earlier runs instead of computing it ("" for nothing)."""


def _measure(stack: xr.Dataset, records: list[SceneRecord], *, params: Params, loaded_grid: Grid,
             analysis_grid: Grid, aoi_name: str = "AOI",
             shift_cache: MutableMapping[str, ShiftEstimate] | None = None, kept: FigureCache | None = None,
             on_normalised: Callable[[xr.Dataset], None] | None = None, inside: np.ndarray | None = None) -> _Measured:
    """The calibration pass: every measurement, and the arrays it was measured on (``inside``: the analysis grid's
    pixels inside the AOI's polygon, over which each scene's clear share is taken; ``None``: all of them)."""
    # Garbage is never evidence: a scene whose numbers cannot be ground is not observed, with its
    # reason, before anything counts it as clear.
    in_aoi = _crop(stack, loaded_grid, analysis_grid)
    (refused, exchanged), verdicts_kept = _plausibility(in_aoi, kept)
    refused = [f"{_EXCHANGED}{exchanged[i]}; read as not observed" if i in exchanged else why for i, why in enumerate(refused)]
    maskless = sum(not has_sky_mask(r) for r in records)
    if maskless and can_screen([str(b) for b in stack.band.values], len(records)):
        stage(f"cloud screening: {maskless} of {len(records)} scenes came without a cloud mask", logger=logger)
    stack, clear_fraction = _observed(stack, records, refused, loaded_grid, analysis_grid, inside)
    usable = (clear_fraction >= params.min_clear_fraction) & np.array([r is None for r in refused])
    _refuse_misread(in_aoi, records, usable, exchanged)
    used, used_records = _usable(stack, records, usable, refused, clear_fraction, params, aoi_name=aoi_name)
    (normalised, shifts, fits), kept_work = _aligned(used, len(used_records), params=params, loaded_grid=loaded_grid,
                                                     analysis_grid=analysis_grid, shift_cache=shift_cache, kept=kept)
    kept_work = "; ".join(work for work in (verdicts_kept, kept_work) if work)
    if on_normalised is not None:
        on_normalised(normalised)
    framed, spectral_fits = _spectral_frame(normalised, params)
    index_name, index, change, dates, thresholds = _dated(normalised, params, analysis_grid, noise=None, records=used_records,
                                                          spectral=framed)
    calibration = Calibration(
        usable=tuple(bool(u) for u in usable),
        shifts=tuple(shifts),
        fits=tuple(tuple(f) for f in fits),
        noise=tuple(None if info is None else (info.background, info.noise_sigma) for info in thresholds),
        refused=tuple(refused),
        spectral_fits=tuple(tuple(f) for f in spectral_fits or ()),
        band_noise=tuple(dates.attrs.get("band_noise", ())),
    )
    return _Measured(calibration, list(refused), clear_fraction, usable, used_records, shifts, fits,
                     normalised, index_name, index, change, dates, thresholds, kept_work)


def _plausibility(in_aoi: xr.Dataset, kept: FigureCache | None) -> tuple[Verdicts, str]:
    """Each scene's plausibility verdict and its bands' exchange against the first plausible scene, as judged by an
    earlier run of the same pixels and code where ``kept`` has them (:mod:`pipeline.outputs.kept_verdicts`), else
    judged (and kept); and, in words for the report's provenance, whether they were read from an earlier run."""
    refl, clear = in_aoi["reflectance"].values, in_aoi["clear"].values
    bands = [str(b) for b in in_aoi.band.values]
    key = kept.key("plausibility verdicts", refl, clear, bands) if kept is not None else None  # the code: in the store's version
    found = kept_verdicts(kept, key, refl.shape[0]) if kept is not None and key is not None else None
    if found is not None:
        stage(f"plausibility: {refl.shape[0]} scenes as judged by an earlier run of the same pixels and code "
              f"(kept, checked by SHA-256)", logger=logger)
        return found, (f"plausibility verdicts read from {kept.where(key)}, kept by an earlier run of the same pixels "
                       f"and code (burnscan rerun judges them again)")
    stage(f"plausibility: judging {refl.shape[0]} scenes", logger=logger)
    refused = judge_scenes(refl, clear, bands=bands)
    verdicts = (refused, _exchanged_bands(in_aoi, refused))
    if kept is not None and key is not None:
        keep_verdicts(kept, key, verdicts)
    return verdicts, ""


def _aligned(used: xr.Dataset, n_used: int, *, params: Params, loaded_grid: Grid, analysis_grid: Grid,
             shift_cache: MutableMapping[str, ShiftEstimate] | None, kept: FigureCache | None) -> tuple[Aligned, str]:
    """The usable scenes co-registered and normalised, as kept from an earlier run of the same pixels, parameters and
    code where ``kept`` has them (:mod:`pipeline.outputs.kept_scenes`), else made (and kept); and what of that work
    was read from earlier runs, in words for the report's provenance ("" for nothing)."""
    key = kept.key(_align_and_normalise, used, params, loaded_grid, analysis_grid) if kept is not None else None
    found = kept_aligned(kept, key) if kept is not None and key is not None else None
    if found is not None:
        stage(f"co-registration and normalisation: {n_used} usable scenes as aligned by an earlier run of the same "
              f"pixels, parameters and code (kept, checked by SHA-256)", logger=logger)
        return found, (f"co-registered, normalised scenes read from {kept.where(key)}, kept by an earlier run of the "
                       f"same pixels, parameters and code (burnscan rerun recomputes them)")
    made = _align_and_normalise(used, n_used, params=params, loaded_grid=loaded_grid, analysis_grid=analysis_grid,
                                shift_cache=shift_cache)
    if kept is not None and key is not None:
        keep_aligned(kept, key, made)
        kept.prune()
    reused = made[0].attrs.get("shifts_reused", ())
    return made, (f"co-registration shifts of {len(reused)} scene(s) kept by an earlier run of the same pixels, each "
                  f"confirmed by a refinement step" if len(reused) else "")


def _align_and_normalise(used: xr.Dataset, n_used: int, *, params: Params, loaded_grid: Grid, analysis_grid: Grid,
                         shift_cache: MutableMapping[str, ShiftEstimate] | None) -> Aligned:
    """Each usable scene moved onto the reference and its bands fitted to it, cropped to the AOI."""
    stage(f"co-registration: {n_used} usable scenes onto usable scene {params.reference_scene + 1}", logger=logger)
    aligned, shifts = coregister(used, reference_index=params.reference_scene, band=params.coreg_band,
                                 max_shift_px=params.coreg_max_shift_px, known=shift_cache)
    reused = tuple(aligned.attrs.get("shifts_reused", ()))
    if reused:
        logger.info(f"co-registration: the shifts of {len(reused)} scene(s) reused from an earlier run of the same pixels "
                    f"and code, each confirmed by a refinement step: {', '.join(reused)}")
    aligned = _crop(_unmatched_as_unseen(aligned, shifts, params), loaded_grid, analysis_grid)
    if wants_normalisation([str(b) for b in aligned.band.values], params.normalisation):
        stage("normalisation: each band's gain and offset to the reference", logger=logger)
        normalised, fits = _onto_clearest(aligned, params.reference_scene, "normalisation: ",
                                          "each band's gain and offset to that one instead")
    else:
        stage(f"normalisation: none (normalisation={params.normalisation}, scenes as delivered)", logger=logger)
        normalised, fits = aligned, identity_fits(aligned)
    return normalised, list(shifts), [list(f) for f in fits]


def _detection(m: _Measured, records: list[SceneRecord], *, params: Params, analysis_grid: Grid,
               settlement: BaseGeometry | None, window: Grid | None) -> Detection:
    """Polygons (of the window alone, when there is one), burned extents and scene quality: the Detection."""
    times = [r.acquired_utc for r in m.used_records]
    dates = m.dates
    stage("polygons: burn marks and burned extents", logger=logger)
    if window is None:
        polygons = burn_polygons(dates, grid=analysis_grid, times=times, index_name=m.index_name, settlement=settlement,
                                 **_splitting(m, params, analysis_grid))
        first_seen = dates["first_seen"].values
        extent_first = extent_dates(first_seen, pixel_size_m=analysis_grid.resolution, close_radius_m=params.extent_close_m)
        extents = extent_polygons(extent_first, first_seen, grid=analysis_grid, times=times)
        transients = transient_polygons(dates, grid=analysis_grid, times=times)
        nonfire = nonfire_polygons(dates, grid=analysis_grid, times=times)
    else:
        split = _splitting(m, params, analysis_grid)
        row, col = window.offset_in(analysis_grid)
        if split["before"] is not None:
            split["before"] = split["before"][:, row:row + window.height, col:col + window.width]
        polygons = burn_polygons(_crop(dates, analysis_grid, window), grid=window, times=times, index_name=m.index_name,
                                 settlement=settlement, **split)
        extent_first = np.full(dates["first_seen"].shape, -1, dtype=np.int16)
        extents = gpd.GeoDataFrame(geometry=[], crs=analysis_grid.crs)
        transients = nonfire = None
    return Detection(
        stack=m.normalised, records=m.used_records, all_records=list(records),
        quality=_quality(records, m.usable, m.refused, m.clear_fraction, m.shifts, m.fits, m.thresholds, params,
                         spectral_fits=[list(f) for f in m.calibration.spectral_fits],
                         rises=_opposite_shares(m.change, burn_level(params, m.index_name)),
                         pixel_ha=analysis_grid.pixel_area_m2 / 1e4),
        shifts=m.shifts, fits=m.fits, index_name=m.index_name, index=m.index, change=m.change, dates=dates,
        thresholds=m.thresholds, polygons=polygons,
        extent_first=xr.DataArray(extent_first, dims=("y", "x"), coords={"y": dates.y, "x": dates.x}),
        extents=extents, grid=analysis_grid, calibration=m.calibration, transients=transients, nonfire=nonfire,
        burned_fraction=dates["burned_fraction"] if "burned_fraction" in dates else None,
        kept_work=m.kept_work,
    )


def _splitting(m: _Measured, params: Params, analysis_grid: Grid) -> dict[str, Any]:
    """What the polygon stage splits patches with: each date's before-scene, the wall contrast and the
    smallest piece (the minimum mapping unit, so that a piece split off is a burn in its own right)."""
    burned = bool((m.dates["first_seen"].values >= 0).any())  # nothing to split: skip reading every scene again
    walls = [b for b in m.normalised.band.values if str(b) in WALL_BANDS] or list(m.normalised.band.values)
    before = (before_brightness(m.normalised["reflectance"].sel(band=walls).values, m.change["last_clear"].values)
              if burned else None)
    min_core_px = max(1, int(np.ceil(params.min_area_m2 / analysis_grid.pixel_area_m2)))
    return {"before": before, "wall_contrast": params.split_wall_contrast, "min_core_px": min_core_px}


WRITER_GRACE_S = 60.0
"""How long a failed run lets a background child that writes into its folder finish (the GIS rasters take
about a second) before stopping it: its writes end cleanly, leaving no staging file behind."""


def _cancel(background: dict[str, Pending]) -> None:
    """Stop the background work of a failed run: the drawing at once, the writing once its files are whole."""
    for name, pending in background.items():
        pending.cancel(grace_s=WRITER_GRACE_S if name == "rasters" else 0.0)


def _crop(stack: xr.Dataset, outer: Grid, inner: Grid) -> xr.Dataset:
    row, col = inner.offset_in(outer)
    return stack.isel(y=slice(row, row + inner.height), x=slice(col, col + inner.width))


def _observed(stack: xr.Dataset, records: list[SceneRecord], refused: list[str | None], loaded_grid: Grid,
              analysis_grid: Grid, inside: np.ndarray | None = None) -> tuple[xr.Dataset, np.ndarray]:
    """The stack with impossible pixels (and refused scenes) not observed, nor the clouds and shadows
    of scenes delivered without a mask; and each scene's clear share of the AOI (of its polygon's pixels
    ``inside``, where the grid's box holds more than the AOI)."""
    stack = _sky_screened(mask_implausible(stack, refused=refused), records, loaded_grid)
    clear = _crop(stack, loaded_grid, analysis_grid)["clear"]
    if inside is not None:
        return stack, clear.values[:, inside].mean(axis=1)
    return stack, clear.mean(dim=("y", "x")).values


def _sky_screened(stack: xr.Dataset, records: list[SceneRecord], grid: Grid) -> xr.Dataset:
    """``stack`` with the clouds and cloud shadows of its scenes that came without a mask not observed
    (:func:`pipeline.stages.sky.unflagged_sky`); the sun is the scene's own, else computed for the
    grid's centre (:func:`pipeline.stages.sky.sun_azimuth_for`)."""
    unmasked = [not has_sky_mask(r) for r in records]
    if not any(unmasked):
        return stack
    x0, y0, x1, y1 = grid.bounds
    lon, lat = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform((x0 + x1) / 2, (y0 + y1) / 2)
    azimuth = [sun_azimuth_for(r.sun_azimuth, r.acquired.astimezone(timezone.utc).replace(tzinfo=None), lon, lat,
                               time_of_day_known=r.time_of_day_known) for r in records]
    clear = unflagged_sky(stack["reflectance"].values, stack["clear"].values, bands=[str(b) for b in stack.band.values],
                          pixel_m=grid.resolution, unmasked=unmasked, sun_azimuth=azimuth)
    out = stack.copy(deep=False)
    out["clear"] = (stack["clear"].dims, clear)
    out["clear"].attrs = stack["clear"].attrs
    return out


def _usable(stack: xr.Dataset, records: list[SceneRecord], usable: np.ndarray, refused: list[str | None],
            clear_fraction: np.ndarray, params: Params, *, aoi_name: str = "AOI") -> tuple[xr.Dataset, list[SceneRecord]]:
    """The usable scenes, or one line that says two are needed, which are usable, which not and why, and what to add."""
    if usable.sum() < 2:
        raise SceneError(_too_few_usable(records, usable, refused, clear_fraction, params, aoi_name=aoi_name))
    keep = np.flatnonzero(usable)
    if params.reference_scene >= len(keep):
        # Only now known: how many scenes are usable is judged on their pixels.
        raise ParameterError(f"parameter reference_scene={params.reference_scene} (given with --set or in the AOI file) counts "
                             f"the usable scenes from 0, and only {len(keep)} of the {len(records)} scenes are usable: set it "
                             f"to at most {len(keep) - 1}, or leave it out (0, the first usable scene)")
    return stack.isel(time=keep), [records[i] for i in keep]


_EXCHANGED = "its bands are not in the order of the first scene's: "


def _exchanged_bands(in_aoi: xr.Dataset, refused: list[str | None]) -> dict[int, str]:
    """Why each scene whose NIR or SWIR reads as another band of the first plausible scene (:func:`bands_exchanged`)
    is not observed, by its position: its burn would read as a greening."""
    bands = [str(b) for b in in_aoi.band.values]
    plausible = [i for i, why in enumerate(refused) if why is None]
    refl, clear = in_aoi["reflectance"].values, in_aoi["clear"].values
    found = {}
    for i in plausible[1:]:
        why = bands_exchanged(refl[i], refl[plausible[0]], clear[i] & clear[plausible[0]], bands=bands)
        if why is not None:
            found[i] = why
    return found


def _refuse_misread(in_aoi: xr.Dataset, records: list[SceneRecord], usable: np.ndarray,
                    exchanged: dict[int, str] | None = None) -> None:
    """One line naming the files that were misread, when without them fewer than two scenes are usable: values on
    another scale (the fix is another export) or an NIR band darker than the red or green (bands in another order than
    the one given: a file written in reverse, or a wrong ``--bands``). Not more scenes, the fix for cloud."""
    if usable.sum() >= 2:
        return
    bands = [str(b) for b in in_aoi.band.values]
    refl, clear = in_aoi["reflectance"].values, in_aoi["clear"].values

    def scale(i: int) -> str | None:
        # Landsat's scale (0.0000275, offset -0.2) is not 10000: say how its values were read.
        read_as = " after Landsat's scale and offset" if "landsat" in records[i].sensor.lower() else " after dividing by 10000"
        return off_scale(refl[i], clear[i], bands=bands, read_as=read_as)

    def order(i: int) -> str | None:
        return (exchanged or {}).get(i) or nir_below_visible(refl[i], clear[i], bands=bands)

    for diagnose, problem, fix in (
            (scale, "values are not surface reflectance x 10000",
             "export surface reflectance x 10000, or float reflectance (0-1), and run again"),
            (order, f"the bands do not read as {', '.join(bands)}",
             "give the file's band order with --bands (or fix its band descriptions), or leave out a scene of water or "
             "snow, and run again")):
        found = {int(i): why for i in np.flatnonzero(~usable) if (why := diagnose(int(i))) is not None}
        if not found or usable.sum() + len(found) < 2:
            continue  # fixing these would not give two scenes: the clouds are said too
        files = [_scene_file(records[i]) for i in found]
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        first = next(iter(found))
        raise SceneError(f"{shown}: {problem} ({records[first].scene_id}: {found[first]}); {fix}")


def _scene_file(record: SceneRecord) -> str:
    return record.files.get("reflectance") or next(iter(record.files.values()), record.scene_id)


def _too_few_usable(records: list[SceneRecord], usable: np.ndarray, refused: list[str | None], clear_fraction: np.ndarray,
                    params: Params, *, aoi_name: str) -> str:
    """Why nothing can be compared: a change is read between two clear scenes, a before and an after,
    so one usable scene (however clear) is no result; the line names each scene and what to add."""
    def scene(i: int) -> str:
        return f"{records[i].scene_id} of {records[i].acquired_utc}"

    good = [f"{scene(i)}, {clear_fraction[i]:.0%} clear" for i in np.flatnonzero(usable)]
    why = [f"{scene(i)}: " + (refused[i] or f"{clear_fraction[i]:.1%} clear, under min_clear_fraction "
                                            f"{params.min_clear_fraction:.0%}") for i in np.flatnonzero(~usable)]
    listed = "; ".join(why[:6]) + (f"; and {len(why) - 6} more" if len(why) > 6 else "")
    n = int(usable.sum())
    return (f"a burn is read as a change between two clear scenes, one before the event and one after, and only {n} of "
            f"{len(records)} scenes {'has' if n == 1 else 'have'} at least {params.min_clear_fraction:.0%} clear ground over "
            f"the AOI, so nothing was analysed (usable: {'; '.join(good) or 'none'}; not usable: {listed or 'none'}); add "
            f"clear scenes before and after the event with `burnscan add {aoi_name} PATH` (or into the --scenes folder) "
            f"and run again")


def _unmatched(shifts: list[ShiftEstimate], params: Params) -> list[int]:
    """The scenes whose ground matched the reference's neither as the scenes before them nor as those after them did:
    a change that came and went (wet soil, dense dust). A scene that matches less from a date on, as every scene after
    it does, shows a lasting change (a large burn): it is evidence, and the first to show it. A scene whose ground
    matched but whose shift could not be trusted is kept where its geolocation puts it, as the last scene is."""
    matched = [s.ground_matched or j == params.reference_scene for j, s in enumerate(shifts)]
    return [j for j in range(1, len(shifts) - 1)
            if not matched[j] and any(matched[:j]) and any(matched[j + 1:])]


def _unmatched_as_unseen(aligned: xr.Dataset, shifts: list[ShiftEstimate], params: Params) -> xr.Dataset:
    """A scene between two others whose ground cannot be matched to the reference (soil wet after
    rain, dense dust) would make every pixel look changed, then changed back: it is read like a
    cloudy scene, neither as evidence of burning nor as the "before" of the next."""
    inconsistent = _unmatched(shifts, params)
    if inconsistent:
        aligned["clear"].values[inconsistent] = False
    return aligned


def _spectral_frame(stack: xr.Dataset, params: Params) -> tuple[xr.Dataset | None, list[list[BandFit]] | None]:
    """``stack`` mapped onto the clearest scene, and each scene's band fits, for the per-pixel spectral
    reading of scenes the index reads as delivered; ``(None, None)`` where that reading uses ``stack`` as it is.

    Calibrated surface reflectance with SWIR (Sentinel-2, Landsat) is left as delivered for the
    index (``normalisation=auto``: fitting one date onto another across a season reads land change
    as radiometry, and the real fires' masks lose to it). The burned fraction, though, is unmixed
    against surface-reflectance end-members, and the non-fire tests compare bands between dates:
    both need the dates in one radiometric frame. Residual haze (harmattan dust that atmospheric
    correction leaves) lowers a scene's contrast and adds path radiance, a gain and an offset per
    band; the background removal takes out the offset only. So these readings see every scene
    mapped onto the clearest one, with the normalisation stage's own fits (stable pixels only).
    """
    bands = [str(b) for b in stack.band.values]
    if params.normalisation != "auto" or wants_normalisation(bands, "auto") or not unmixing_bands(bands):
        return None, None
    stage("spectral frame: each band's gain and offset to the reference, for the burned fraction and the non-fire "
          "tests only (the index reads the scenes as delivered)", logger=logger)
    framed, fits = _onto_clearest(stack, params.reference_scene, "spectral frame: ", "mapped onto that one instead")
    return framed, [list(f) for f in fits]


def _onto_clearest(stack: xr.Dataset, reference: int, prefix: str, instead: str) -> tuple[xr.Dataset, list[list[BandFit]]]:
    """``stack`` normalised onto usable scene ``reference``, or onto a clearer one where haze shows on it
    (:func:`pipeline.stages.normalise.clearest_scene`), which the log says in ``prefix ... instead`` words."""
    normalised, fits = normalise(stack, reference_index=reference)
    clearer = clearest_scene(fits, reference)
    if clearer != reference:
        stage(f"{prefix}usable scene {reference + 1} is hazier than usable scene {clearer + 1}; {instead}", logger=logger)
        normalised, fits = normalise(stack, reference_index=clearer)
    return normalised, fits


def _dated(normalised: xr.Dataset, params: Params, analysis_grid: Grid, *, noise: list | None,
           records: list[SceneRecord], spectral: xr.Dataset | None = None, band_noise: list | None = None):
    """Burn index, change between dates, and each pixel's first burned date with the thresholds used.

    ``spectral`` (:func:`_spectral_frame`): the scenes the per-pixel spectral reading reads instead of
    ``normalised`` (the index reads ``normalised``). ``noise`` and ``band_noise``: the change's and the
    burned fraction's noise per scene as the calibration measured them (``None``: measured here).
    """
    index_name = choose_index([str(b) for b in normalised.band.values], params.burn_index)
    stage(f"index: {index_name}", logger=logger)
    index = burn_index(normalised["reflectance"], index=index_name)
    stage("change: each date against each pixel's last clear observation", logger=logger)
    change = consecutive_change(index, normalised["clear"])
    post_nir = normalised["reflectance"].sel(band="nir", drop=True) if index_name in ("nir", "bai") else None
    # One stage, not two: each date's threshold leaves out the pixels earlier dates burned.
    stage(f"threshold and dating: {index.sizes['time']} dates in time order", logger=logger)
    coarse = _coarse_bands(records, analysis_grid.resolution)
    if coarse:
        stage(f"burned fraction: {', '.join(coarse)} left out of the fit (native pixels coarser than the "
              f"{analysis_grid.resolution:g} m grid: they do not measure its pixels)", logger=logger)
    dates, thresholds = date_burns(change, index=index, clear=normalised["clear"], post_nir=post_nir, params=params,
                                   pixel_area_m2=analysis_grid.pixel_area_m2, noise=noise,
                                   reflectance=(normalised if spectral is None else spectral)["reflectance"],
                                   sun=[(r.sun_elevation, r.sun_azimuth) for r in records], unmix_skip=coarse,
                                   band_noise=band_noise)
    dates.attrs["unmixing_left_out"] = list(coarse)
    return index_name, index, change, dates, thresholds


def _coarse_bands(records: list[SceneRecord], grid_m: float) -> list[str]:
    """The bands coarser than the grid in any scene, which the burned fraction is not fitted on."""
    native: dict[str, float] = {}
    for record in records:
        for band, metres in record.band_pixel_m.items():
            native[band] = max(native.get(band, 0.0), float(metres))
    return coarser_than_grid(native, grid_m)


def _opposite_shares(change: xr.Dataset, level: float) -> list[tuple[float, int] | None]:
    """Per analysed scene, the share of the pixels it observed whose index moved the other way from a burn by more
    than twice a burn's change ``level``, and the pixels of the largest 8-connected patch of them (``None`` for the
    first, which no change is read on).

    A burn read with the bands of both files given in another order (NIR and SWIR exchanged) shows as exactly
    that, and nothing else says so: every scene passes alone, and the run finds no burn. A season's greening
    shows the same, which is why this is said, not refused.
    """
    shares: list[tuple[float, int] | None] = []
    for delta in change["delta"].values:
        finite = np.isfinite(delta)
        if finite.sum() < 100:
            shares.append(None)
            continue
        with np.errstate(invalid="ignore"):
            against = delta <= -2 * level
        labels, n = ndimage.label(against, structure=np.ones((3, 3), bool))
        largest = int(np.bincount(labels.ravel())[1:].max()) if n else 0
        shares.append((float(against[finite].mean()), largest))
    return shares


_OPPOSITE_SAID = 0.10
"""Share of a scene's observed ground moving against a burn from which its reading says so."""
_OPPOSITE_PATCH_HA = 1.0
"""Area of one patch moving against a burn from which the reading says so, where it exceeds the burns it found: a
burn read with its two scenes in the wrong order looks exactly like that (a compound or two of a village is 0.1 ha)."""


def _quality(records: list[SceneRecord], usable: np.ndarray, refused: list[str | None], clear_fraction: np.ndarray,
             shifts: list[ShiftEstimate], fits: list[list[BandFit]], thresholds: list[ThresholdInfo | None],
             params: Params, spectral_fits: list[list[BandFit]] | None = None,
             rises: list[tuple[float, int] | None] | None = None, pixel_ha: float = 0.0) -> list[dict[str, Any]]:
    """Per scene given: clear share, usability with its reason, co-registration, normalisation, threshold,
    and the fits the burned fraction and the non-fire tests read it through, where those differ from
    the normalisation's (``spectral_frame``)."""
    inconsistent = _unmatched(shifts, params)
    quality: list[dict[str, Any]] = []
    used_pos = {int(k): j for j, k in enumerate(np.flatnonzero(usable))}
    for i in range(len(records)):
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
            if spectral_fits:
                entry["spectral_frame"] = [f.as_dict() for f in spectral_fits[j]]
            entry["threshold"] = thresholds[j].as_dict() if thresholds[j] else None
            entry["is_first_usable"] = j == 0
            if rises is not None and rises[j] is not None:
                share, largest_px = rises[j]
                if share >= _OPPOSITE_SAID:
                    entry["against_burn_share"] = round(share, 4)
                elif largest_px * pixel_ha >= _OPPOSITE_PATCH_HA:
                    entry["against_burn_patch_ha"] = round(largest_px * pixel_ha, 2)
        quality.append(entry)
    return quality


def _grid_entry(choice: GridChoice, grid: Grid) -> dict[str, Any]:
    """The analysis grid as a run records it: pixel, rule, reason, and the grid itself (a rerun of the
    same inputs chooses it again, and :func:`pipeline.provenance.compare.compare_runs` checks that it did)."""
    return {**choice.as_dict(), "statement": choice.statement(), "crs": grid.crs, "transform": list(grid.transform)[:6],
            "width": grid.width, "height": grid.height}


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


def _transients_with_positions(detection: Detection) -> gpd.GeoDataFrame | None:
    """The marks seen once and gone again, indexed into ``all_records`` like the polygons."""
    if detection.transients is None:
        return None
    to_all = record_positions(detection.records, detection.all_records)
    marks = detection.transients.copy()
    marks["seen_index"] = [int(to_all[i]) for i in marks["seen_index"]]
    marks["gone_index"] = [int(to_all[i]) if i >= 0 else -1 for i in marks["gone_index"]]
    return marks


def _nonfire_with_positions(detection: Detection) -> gpd.GeoDataFrame | None:
    """The changes the spectral test found not fire-like, indexed into ``all_records`` like the polygons."""
    if detection.nonfire is None:
        return None
    to_all = record_positions(detection.records, detection.all_records)
    changes = detection.nonfire.copy()
    changes["seen_index"] = [int(to_all[i]) for i in changes["seen_index"]]
    return changes


def _settlement_outline(aoi: Aoi, scenes_dir: Path, crs: str,
                        only: Collection[Path] | None = None) -> tuple[BaseGeometry | None, Path | None]:
    """The built-up area and the file it came from: a ``settlement*.geojson`` beside the scenes,
    else the AOI's ``settlement`` property (hashed with the AOI file). ``only``: the files a re-run may read."""
    files = among(sorted(scenes_dir.glob("settlement*.geojson")), only)
    if files:
        return read_outline(files[0], crs), files[0]
    if aoi.properties.get("settlement"):
        return Aoi(aoi.name, shape(aoi.properties["settlement"])).projected(crs), None
    return None, None


def _refuse_simulated_layers(records: list[SceneRecord], layers: list[Path | None], footprints_marked: bool) -> None:
    """Refuse a simulated outline, footprint layer or fire archive read with real scenes: its buildings and detections
    would stand in the report as evidence about a real place (a run of simulated scenes is labelled so throughout).

    ``layers``: the outline, the footprint layer, then the fire archives (None where there is none);
    ``footprints_marked``: the footprints' features say they are simulated, whatever the file's name."""
    if any(r.simulated for r in records):
        return
    for i, path in enumerate(layers):
        if path is not None and (named_simulated(path) or (footprints_marked and i == 1)):
            raise SceneError(f"{path}: a SIMULATED layer beside real scenes; its buildings, detections or outline would read as "
                             f"evidence about a real place: move it out of {path.parent}, or run on the simulated scenes it "
                             f"belongs to")


def _kept_reviews(reviews_file: Path, run_folder: Path) -> dict[str, Any]:
    """The manifest's entry for the review decisions a run applied, after copying them into its folder.

    ``burnscan review`` keeps writing the AOI's decisions after the run: the copy (hashed like every output) is what
    ``verify`` and ``rerun`` hold the recorded SHA-256 to then, so that a later review is not read as tampering."""
    kept = copy_file(reviews_file, run_folder / APPLIED_REVIEWS_NAME, root=run_folder)
    return input_entry(reviews_file, sha256_file(kept))


def _check_figure_bands(bands: Collection[str], *, where: str) -> None:
    """Refuse, before the analysis, scenes the figures cannot show: their infrared composite is NIR, red and green."""
    problem = composite_problem(bands, fix="give --no-figures, or scenes with it")
    if problem:
        raise SceneError(f"{where} {problem}")


def _grids(aoi: Aoi, params: Params) -> tuple[Grid, Grid]:
    """The AOI's analysis grid at ``params.resolution_m`` (metres) and the grid loaded around it (the margin)."""
    analysis_grid = aoi.analysis_grid(float(params.resolution_m))
    return analysis_grid, analysis_grid.buffered(int(np.ceil(params.margin_m / float(params.resolution_m))))


def recorded_scene_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options a scene folder was read with, as the manifest records them (a time as ISO 8601, a band map as text)."""
    recorded: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or value is False:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif key == "bands" and not isinstance(value, str):
            value = ",".join(name or "-" for name in value)
        recorded[key] = value
    return recorded


@timed()  # every stage line of the run says the seconds since it began
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
    demo: Callable[[Aoi, Params, Path], Path] | None = None,
    catalogue_items: Collection[str] | None = None,
    scene_options: dict[str, Any] | None = None,
    keep_alignment: bool = True,
    keep_figures: bool = True,
    layers: Collection[Path] | None = None,
) -> RunOutcome:
    """Detect and date burns for one AOI and write a complete run folder.

    Uses the scenes in ``scenes_dir`` when given, else the AOI's catalogue when it has scenes
    (``kind`` picks one sensor), else the SIMULATED scenes that ``demo(aoi, params, data_root)``
    returns a folder of (the command line passes :func:`pipeline.sim.demo.demo_scenes`); the log
    says which. Without scenes and without ``demo`` there is nothing to analyse. ``catalogue_items``
    limits the catalogue to those item ids: a re-run reads the scenes its run read, not those added since.
    ``scene_options`` go with ``scenes_dir`` to :func:`pipeline.readers.recognise.recognise` (``bands``: the band map of
    plain GeoTIFFs, ``acquired`` or ``time_from_name``: their time), the route ``burnscan add`` takes for them.
    With ``keep_alignment`` the co-registration shifts are kept in ``<out>/.cache/`` and a later run of the
    same pixels reuses them (:mod:`pipeline.outputs.shift_cache`): the same numbers, without the search;
    the co-registered, normalised scenes are kept there too, under a SHA-256 of the usable scenes' pixels,
    the parameters, the grids and the code (:mod:`pipeline.outputs.kept_scenes`), and read back, their
    bytes checked, instead of being aligned again; ``burnscan rerun`` turns it off, since a check must recompute. With ``keep_figures`` the figures, the
    review page's scenes and the GIS rasters are kept there too, under a SHA-256 of everything each is made
    from and with (:mod:`pipeline.outputs.figure_cache`), and copied, their bytes checked, instead of made
    again; ``burnscan rerun`` turns it off as well (``burnscan detect --recompute`` turns both off).
    The analysis grid follows the scenes' native pixel unless ``resolution_m`` is a number
    (:func:`pipeline.resolution.choose_resolution`); the report and manifest say which grid and why.
    Analysts' decisions in ``reviews_file`` (default ``<data>/<aoi>/reviews.json``) are
    applied to the polygons unless ``apply_reviews`` is False. ``layers``, for a re-run: the only outline,
    footprint and fire files it may read, those its run read (None: every one found beside the scenes and
    under ``<data>/<aoi>/``). The run ends by writing its
    manifest (:func:`pipeline.provenance.manifest.seal_manifest`): chained into ``<out>/<aoi>/runs.log``
    and, with ``sign_key`` (an Ed25519 private key file), signed.
    """
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    # Absolute from here on: the report and the manifest name the folders and files a run read, and a
    # relative name would depend on where the run was started (its re-run from elsewhere read differently).
    out_root, data_root, aoi_dir = (Path(os.path.abspath(p)) for p in (out_root, data_root, aoi_dir))
    scenes_dir = Path(os.path.abspath(scenes_dir)) if scenes_dir is not None else None
    reviews_file = Path(os.path.abspath(reviews_file)) if reviews_file is not None else None
    scene_options = {k: v for k, v in (scene_options or {}).items() if v is not None}
    # Everything the run needs is checked before any work, so that a mistake is one line now,
    # not a traceback after minutes: the signing key, the AOI file (time zone, size, properties),
    # the parameters, the output folder, the grid's size and memory, then the scenes' count and bands.
    key = load_private_key(sign_key) if sign_key is not None else None
    aoi = load_aoi(aoi_name, aoi_dir)
    requested = resolve_params(aoi.parameters, overrides, aoi_source=f"AOI file {aoi.path}")
    check_output_folder(Path(out_root) / aoi.name)  # before minutes of work, not after
    check_log_continues(Path(out_root) / aoi.name)  # a broken chain would leave this run unverifiable
    where = str(aoi.path or aoi.name)
    given = requested.resolution_m != NATIVE
    if given:  # the fewest scenes and bands: a grid that cannot fit is refused before the demo is drawn
        check_detect_grid(*_grids(aoi, requested), params=requested, where=where)
    demo_folder = None
    if scenes_dir is not None:
        stage(f"scenes from {scenes_dir}", logger=logger)
        sources, scenes_from = recognise(Path(scenes_dir), **scene_options), "folder"
    elif catalogue_items is not None or catalogue_entries(data_root, aoi.name):
        stage(f"using the scene catalogue of {aoi.name} ({catalogue_dir(data_root, aoi.name)})", logger=logger)
        sources, scenes_from = catalogue_sources(data_root, aoi.name, kind=kind, items=catalogue_items), "catalogue"
        scenes_dir = Path(data_root) / aoi.name
    elif demo is not None and aoi.takes_the_demo:
        demo_params = requested if given else replace(requested, resolution_m=DEMO_PIXEL_M)  # PlanetScope's pixel, simulated
        check_detect_grid(*_grids(aoi, demo_params), params=demo_params, where=where)
        stage(f"no scenes given and none registered: using the embedded SIMULATED demo for {aoi_name}", logger=logger)
        scenes_dir = demo_folder = demo(aoi, demo_params, Path(data_root))
        sources, scenes_from = recognise(demo_folder), "demo"
    else:  # no demo here (never on someone else's place): say what would have given one
        why = (" (the SIMULATED demo runs on the project's own AOIs, and on an AOI file that asks for it with "
               "\"simulated_demo\": true)") if demo is not None else ""
        raise SceneError(f"{where}: no scenes given and none registered in {catalogue_dir(data_root, aoi.name)}; add scenes "
                         f"with `burnscan add {aoi.name} PATH` or give --scenes DIR{why}")
    infos = [s.describe() for s in sources]  # metadata only: no pixel read yet
    grid_choice = choose_resolution(infos, requested)
    logger.info(grid_choice.statement())
    if grid_choice.rule == NATIVE and "mix native pixels" in grid_choice.reason:
        logger.warning(f"{where}: scenes of different native pixels in one series; {grid_choice.statement()}")
    # ``params`` is what every stage reads (the grid's metres); ``requested`` what the run was asked, as recorded.
    params = replace(requested, resolution_m=grid_choice.resolution_m)
    analysis_grid, loaded_grid = _grids(aoi, params)
    scenes, bands = scene_shape(infos)
    check_detect_grid(analysis_grid, loaded_grid, params=params, scenes=scenes, bands=bands, where=where)
    for info in infos:
        check_coreg_band(params, info.bands, where=f"{scenes_dir}: scene {info.scene_id}")
        if make_figures and info.bands:  # said now, not after minutes of analysis when the first figure is drawn
            _check_figure_bands(info.bands, where=f"{scenes_dir}: scene {info.scene_id}")
    # Work done by the other core while this one goes on, by what it makes: the review page's "scenes" (while the
    # burns are dated) and the GIS "rasters" (while the evidence is gathered); stopped if the run fails.
    background: dict[str, Pending] = {}
    try:
        stage(f"loading {len(sources)} scenes onto {loaded_grid.width} x {loaded_grid.height} px", logger=logger)
        stack, records = load_sources(sources, loaded_grid)
        refuse_night_scenes(records, aoi)
        check_coreg_band(params, [str(b) for b in stack.band.values], where=f"{scenes_dir}")
        if make_figures:  # a scene whose bands are known only once read (a Planet file names them inside)
            _check_figure_bands([str(b) for b in stack.band.values], where=f"{scenes_dir}")
        settlement, settlement_file = _settlement_outline(aoi, Path(scenes_dir), analysis_grid.crs, only=layers)
        found = find_layers(Path(scenes_dir), Path(data_root) / aoi.name, analysis_grid, only=layers)
        _refuse_simulated_layers(records, [settlement_file, found.footprints_path, *found.fire_paths],
                                 bool(found.footprints is not None and found.footprints.attrs.get("simulated")))
        if settlement is None and found.footprints is not None:  # no outline drawn: the footprints outline the built-up area
            settlement = settlement_from_footprints(found.footprints)
            settlement_file = found.footprints_path if settlement is not None else None
        stage(f"{len(records)} scenes loaded; co-registering, normalising, detecting", logger=logger)

        # Figures, the review page's scenes and the GIS rasters kept between runs, beside the runs like the shifts.
        kept = FigureCache(Path(out_root) / ".cache" / "figures") if keep_figures else None
        scenes_kept: list[bytes | None] = []

        def draw_scenes(normalised: xr.Dataset) -> None:  # needs only the normalised scenes
            found, draw = scene_jobs(scene_images(normalised, analysis_grid), kept=kept)
            scenes_kept[:] = found
            background["scenes"] = fork_soon(lambda t: draw[t](), len(draw))

        # Shifts and aligned scenes kept between runs of the same scenes, beside the runs (never inside one: a run
        # folder is sealed).
        detection = detect_burns(stack, records, params=params, loaded_grid=loaded_grid, analysis_grid=analysis_grid,
                                 settlement=settlement, aoi_name=aoi.name,
                                 shift_cache=ShiftCache(Path(out_root) / ".cache" / "coregistration") if keep_alignment else None,
                                 kept_scenes=FigureCache(Path(out_root) / ".cache" / "scenes") if keep_alignment else None,
                                 on_normalised=draw_scenes if make_figures else None, outline=aoi.projected(analysis_grid.crs))
    except BaseException as exc:
        _cancel(background)
        if isinstance(exc, MemoryError):  # the estimate above is rough: a run it let through may still not fit
            raise RunError(f"{where}: out of memory detecting on {loaded_grid.width} x {loaded_grid.height} px x "
                           f"{len(sources)} scenes (nothing was written); draw a tighter AOI, set a coarser resolution_m "
                           f"or a smaller margin_m, or scan wide areas with `burnscan search`") from exc
        raise

    try:
        run_id, partial = new_run_dir(Path(out_root), aoi.name)
    except BaseException:
        _cancel(background)
        raise
    try:
        simulated = any(r.simulated for r in records)
        reviews_file = Path(reviews_file) if reviews_file is not None else reviews_path(data_root, aoi.name)
        decisions = read_decisions(reviews_file) if apply_reviews else []
        polygons = apply_decisions(_polygons_with_positions(detection), decisions, simulated=simulated)
        # The GIS rasters (COGs, QGIS styles) need only the detection: written by the other core while this one
        # gathers the evidence and writes the findings.
        write_gis_rasters = raster_job(partial, RasterInputs.of(detection, simulated=simulated), kept=kept)
        background["rasters"] = fork_soon(lambda _: write_gis_rasters(), 1)
        tz_name = aoi.local_zone
        stage(f"{len(polygons)} burn polygon(s); checking structures, active fires and confidence", logger=logger)
        evidence = gather_evidence(polygons, detection=detection, params=params, layers=found, tz_name=tz_name)
        polygons = evidence.polygons
        provenance = {"run_id": run_id, **git_state(), "versions": package_versions(), "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "kept_work": detection.kept_work or "none: every scene aligned in this run"}
        report = build_report(
            aoi=aoi, records=records, quality=detection.quality, polygons=polygons,
            params=requested.as_dict(), provenance=provenance, index_name=detection.index_name, extents=detection.extents,
            transients=_transients_with_positions(detection), nonfire=_nonfire_with_positions(detection),
        )
        report["grid"] = _grid_entry(grid_choice, analysis_grid)
        report["review"] = review_summary(polygons)
        report = with_evidence(report, evidence.report)
        # No list of outputs is kept here: the manifest lists the folder's files as they are when it is
        # sealed, so nothing written into the run folder can be left out of it.
        write_findings(partial, polygons=polygons, extents=detection.extents, structures=evidence.structures, records=records,
                       simulated=simulated)
        screen_copies: dict[str, tuple[str, bytes]] = {}  # by figure path; none without figures
        made_here = False
        if make_figures:
            stage("drawing figures", logger=logger)
            # Imported here: matplotlib's figure machinery takes most of a second to load, and a run
            # without figures (or a command refused before it draws) never needs it.
            from pipeline.outputs.run_figures import figure_builders

            builders = figure_builders(detection, polygons, evidence.structures, aoi.projected(analysis_grid.crs), simulated,
                                       report["aoi"]["timezone"], width_mm=params.figure_width_mm)
            jobs = figure_jobs(partial, builders, simulated=simulated, kept=kept)
            drawing = [job for job in jobs if job.draws]
            # Every figure is independent: one pool on every core for those drawn; those kept are copied here.
            drawn = dict(zip((job.name for job in drawing), fork_map(lambda i: drawing[i].run(), len(drawing))))
            screen_copies = {job.name: drawn[job.name] if job.draws else job.run() for job in jobs}
            # The review page's scenes (`burnscan view`): kept, or drawn while the burns were dated.
            scene_pngs = with_drawn(scenes_kept, background["scenes"].result())
            made_here = bool(drawing) or None in scenes_kept
            # The review page: scenes and outlines in the grid itself, nothing fetched.
            write_review_page(partial, detection, polygons, aoi.projected(analysis_grid.crs), simulated=simulated,
                              tz_name=report["aoi"]["timezone"], title=report["title"], scene_pngs=scene_pngs)
        rasters_made = background["rasters"].result()[0]
        if kept is not None and (rasters_made or made_here):  # something new was kept
            kept.prune()
        stage("writing the report and the manifest", logger=logger)
        write_reports(partial, report, polygons=polygons, figures=screen_copies)
        # Last before the manifest: the STAC item lists every output written above as an asset.
        write_json(partial / ITEM_NAME, run_item(
            run_folder_files(partial), run_id=run_id, aoi_name=aoi.name, aoi_lonlat=aoi.geometry, records=records,
            simulated=simulated, parameters=requested.as_dict(), code=provenance, code_version=code_version(),
            index_name=detection.index_name), root=partial)
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
            "parameters": requested.as_dict(),
            "overrides": recorded_overrides(overrides),
            "grid": _grid_entry(grid_choice, analysis_grid),
            "scenes_from": scenes_from,
            "data_folder": str(Path(data_root) / aoi.name),  # where its catalogue and layers were looked for (rerun)
            "aoi_file": (input_entry(aoi.path, sha256_file(aoi.path)) if aoi.path else {"path": None, "sha256": None}),
            "settlement_file": input_entry(settlement_file, sha256_file(settlement_file)) if settlement_file else None,
            "reviews_file": _kept_reviews(reviews_file, partial) if apply_reviews and reviews_file.is_file() else None,
            "evidence_files": [input_entry(e["path"], e["sha256"], role=e["role"]) for e in evidence.inputs],
            "inputs": [
                {"scene_id": r.scene_id, "acquired_utc": r.acquired_utc, "sensor": r.sensor, "satellite_id": r.satellite_id,
                 "simulated": r.simulated, "files": [input_entry(r.files[role], r.sha256[role], role=role) for role in r.files]}
                for r in records
            ],
        }
        if scenes_from == "folder":  # recorded even when none was given: a re-run passes what is recorded, and records it again
            manifest["scene_options"] = recorded_scene_options(scene_options)
        digest = seal_manifest(partial, manifest, aoi_folder=Path(out_root) / aoi.name, sign_key=key)
    except BaseException as exc:
        _cancel(background)
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
        if isinstance(exc, KeyboardInterrupt):  # the command line names the folder left behind
            exc.partial_run = partial  # type: ignore[attr-defined]
        raise  # an interrupt or exit: not an error of the run
    run_dir = finish_run_dir(partial)
    stage(f"run complete: {run_dir}", logger=logger)
    return RunOutcome(run_dir=run_dir, detection=detection, report=report, demo_folder=demo_folder, manifest_sha256=digest)
