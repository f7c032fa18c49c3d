"""What a finding needs beyond hectares: burned structures, active-fire corroboration, confidence.

Gathers, for one run, the optional evidence layers of an AOI (building footprints,
active-fire archives), checks them against the burn polygons and gives every polygon its
confidence tier. Reading the layers happens here, at the edge; the checks themselves are
the pure functions of :mod:`pipeline.stages.structures`, :mod:`pipeline.stages.corroborate` and
:mod:`pipeline.stages.confidence`.

Where the layers are looked for: beside the scenes (``buildings*.gpkg`` /
``buildings*.geojson``, ``fires*.csv``), else in the AOI's data folder, where
``burnscan add-buildings`` and ``burnscan add-fires`` put them (``buildings.gpkg``,
``fires/*.csv``).
"""

from __future__ import annotations

import os

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.stages.confidence import confidence_tiers
from pipeline.config import Params
from pipeline.model import SceneRecord
from pipeline.readers.firms import FireTable, checked_fire_csv, first_skipped_row
from pipeline.stages.corroborate import corroborate
from pipeline.readers.vectors import read_footprints
from pipeline.readers.rasters import sha256_file
from pipeline.stages.structures import FootprintShift, structures_in_burns, texture_for_alignment

__all__ = ["Evidence", "Layers", "among", "find_layers", "count_structures", "gather_evidence", "footprint_files", "fire_files"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layers:
    """The evidence layers found for a run; the footprint layer read once, for every use."""

    footprints: gpd.GeoDataFrame | None = None
    """Footprints on the analysis grid's CRS and extent (``None``: the AOI has no layer)."""
    footprints_path: Path | None = None
    fire_paths: tuple[Path, ...] = ()
    fire_tables: tuple[FireTable, ...] = ()
    """The archives of ``fire_paths``, read and checked when found (empty: read when the evidence is gathered)."""


@dataclass(frozen=True)
class Evidence:
    """The evidence layers of a run and what they say."""

    polygons: gpd.GeoDataFrame
    """The burn polygons with ``n_structures``, ``n_fire_detections``, ``tier``, ``tier_reasons``."""
    structures: gpd.GeoDataFrame | None
    """Aligned footprints with their burned share, polygon and bracket; ``None`` without a layer."""
    fire_matches: pd.DataFrame | None
    """One row per detection matched to a polygon; ``None`` without an archive."""
    report: dict[str, Any]
    """JSON-able ``structures``, ``fires`` and ``confidence`` sections for the report."""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    """Files read (role, path, SHA-256), for the manifest."""


def footprint_files(scenes_dir: Path, data_dir: Path) -> list[Path]:
    """Building-footprint layers for the run: beside the scenes first, else the AOI's own."""
    beside = sorted(p for pattern in ("buildings*.gpkg", "buildings*.geojson") for p in Path(scenes_dir).glob(pattern)
                    if ".replaced-" not in p.name)  # layers set aside by add-buildings --replace
    if beside:
        return beside[:1]
    own = Path(data_dir) / "buildings.gpkg"
    return [own] if own.is_file() else []


def fire_files(scenes_dir: Path, data_dir: Path) -> list[Path]:
    """Active-fire archives for the run: every ``fires*.csv`` beside the scenes and under ``fires/``."""
    found = sorted(Path(scenes_dir).glob("fires*.csv")) + sorted((Path(data_dir) / "fires").glob("*.csv"))
    unique: dict[Path, Path] = {}
    for p in found:  # the scenes folder may be the data folder: list each file once, as found
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def among(paths: list[Path], only: Collection[Path] | None) -> list[Path]:
    """The ``paths`` that are among ``only`` (compared as absolute paths, as runs record them; None: all of them)."""
    if only is None:
        return list(paths)
    allowed = {os.path.abspath(p) for p in only}
    return [p for p in paths if os.path.abspath(p) in allowed]


def find_layers(scenes_dir: Path, data_dir: Path, grid: Any, *, only: Collection[Path] | None = None) -> Layers:
    """Find a run's footprint layer and fire archives, and read them (the footprints within ``grid``).

    ``only``: the files a re-run may read, its run's (None: every layer found); one added since is left out.
    """
    fires = tuple(among(fire_files(scenes_dir, data_dir), only))
    tables = _read_fire_files(fires)
    for path in among(footprint_files(scenes_dir, data_dir), only):
        return Layers(read_footprints(path, grid.crs, bounds=grid.bounds), path, fires, tables)
    return Layers(fire_paths=fires, fire_tables=tables)


def _read_fire_files(paths: tuple[Path, ...] | list[Path]) -> tuple[FireTable, ...]:
    """The fire archives of a run, before any work: one of malformed rows only is refused (read, it said
    "0 detections"), and each one with some malformed rows is said in one progress line naming the first.

    A progress line, not a warning: ``add-fires`` warned when the archive was kept, the report lists
    the skipped rows, and a quiet run (``-q``) prints results and errors only.
    """
    tables = tuple(checked_fire_csv(p, fix="download the FIRMS archive CSV again and put it in its place, or remove it")
                   for p in paths)
    for table in tables:
        if table.skipped:
            logger.info(f"{table.path}: {table.skipped} malformed row(s) skipped ({first_skipped_row(table)}); "
                        f"the {len(table.detections)} other detection(s) are read")
    return tables


def count_structures(footprints: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, *, detection: Any,
                     params: Params) -> tuple[gpd.GeoDataFrame, FootprintShift]:
    """Footprints aligned to the detection's earliest usable scene and tested against ``polygons``.

    The earliest scene comes before any burn, with roofs and walls intact. It is read as the
    normalised difference of its NIR and red where it has both (:func:`pipeline.stages.structures.texture_for_alignment`).
    Where its pixels are too coarse for the huts, the layer is placed on the detection's burned shares instead.
    """
    stack = detection.stack
    scene = stack["reflectance"].isel(time=0)
    reference = texture_for_alignment(scene, [str(b) for b in stack.band.values]).where(stack["clear"].isel(time=0))
    return structures_in_burns(footprints, reference, polygons, min_overlap=params.structure_min_overlap,
                               tolerance_m=params.structure_tolerance_px * detection.grid.resolution,
                               unaligned_m=params.footprint_unaligned_m, max_shift_m=params.footprint_max_shift_m,
                               burned_share=_burned_share(detection.dates))


def _burned_share(dates: Any) -> xr.DataArray | None:
    """Each pixel's burned share, whichever date burned it: the share of the burns (mask pixels) and of
    their mixed rims (the ring), the larger where both exist; ``None`` without shares."""
    if dates is None or "burned_fraction" not in getattr(dates, "data_vars", {}):
        return None
    share = dates["burned_fraction"].fillna(0.0)
    if "ring_fraction" in dates.data_vars:
        share = np.maximum(share, dates["ring_fraction"].fillna(0.0).max("time"))
    return share


def _when(record: SceneRecord, tz_name: str) -> str:
    from pipeline.outputs.report import scene_time

    return scene_time(record, tz_name)


def _structures_report(table: gpd.GeoDataFrame, shift: FootprintShift, path: Path, dropped: int, params: Params,
                       records: list, tz_name: str, pixel_m: float) -> dict[str, Any]:
    burned = table[table["burned"]]
    by_date = []
    for t, rec in enumerate(records):
        new = burned[burned["first_seen_index"] == t]
        if len(new):
            by_date.append({
                "scene_id": rec.scene_id, "acquired_utc": rec.acquired_utc, "new_burned": int(len(new)),
                "in_settlement": int((new["setting"] == "settlement").sum()),
                "statement": (f"{len(new)} structure(s) burned in polygons first visible on scene {rec.scene_id} "
                              f"({_when(rec, tz_name)})."),
            })
    staircase = params.structure_tolerance_px * pixel_m
    grown = float(table.attrs.get("tolerance_m", staircase))
    rule = (f"a structure counts as burned when at least {params.structure_min_overlap:.0%} of its footprint lies within "
            f"{grown:g} m of burn polygons")
    if grown > staircase:
        rule += (f" ({staircase:g} m for the polygons' pixel edges, and {grown - staircase:g} m because the layer's offset "
                 "against the scenes could not be measured: open footprints are typically that far off)")
    return {
        "file": str(path), "n_footprints": int(len(table)), "dropped_not_polygons": dropped,
        "n_burned": int(len(burned)), "rule": rule, "tolerance_m": round(grown, 3), "alignment": shift.as_dict(),
        "by_date": by_date,
        "statement": (f"{len(burned)} of the {len(table)} structures in the footprint layer are burned ({rule}); "
                      f"{shift.note}."),
    }


def _by_detection(matches: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for det_id, grp in matches.groupby("detection_id", sort=False):
        first = grp.iloc[0]
        out.append({"detection_id": det_id, "acquired_utc": str(first["acquired_utc"]), "satellite": first["satellite"],
                    "instrument": first["instrument"], "confidence": first["confidence"],
                    "frp": None if pd.isna(first["frp"]) else float(first["frp"]), "daynight": first["daynight"],
                    "n_polygons": int(len(grp)), "nearest_m": round(float(grp["distance_m"].min()), 1)})
    return sorted(out, key=lambda d: d["acquired_utc"])


def gather_evidence(
    polygons: gpd.GeoDataFrame,
    *,
    detection: Any,
    params: Params,
    layers: Layers,
    tz_name: str,
) -> Evidence:
    """Footprints, active fires and confidence tiers for the polygons of one detection.

    ``polygons`` index scenes into ``detection.all_records`` (as reports do); the per-scene
    quality of the detection is indexed by usable scene, and is looked up through the ids.
    """
    records = detection.all_records
    out = polygons.copy()
    report: dict[str, Any] = {"structures": None, "fires": None}
    inputs: list[dict[str, Any]] = []
    structures = None
    out["n_structures"] = 0
    if layers.footprints is not None:
        path = layers.footprints_path
        inputs.append({"role": "building_footprints", "path": str(path), "sha256": sha256_file(path)})
        counted = polygons[polygons["review"] != "rejected"] if "review" in polygons else polygons
        structures, shift = count_structures(layers.footprints, counted, detection=detection, params=params)
        per_polygon = structures[structures["burned"]].groupby("polygon_id").size()
        out["n_structures"] = [int(per_polygon.get(pid, 0)) for pid in out["polygon_id"]]
        report["structures"] = _structures_report(structures, shift, path, layers.footprints.attrs.get("dropped", 0),
                                                  params, records, tz_name, detection.grid.resolution)

    fire_matches = None
    if layers.fire_paths:
        read = len(layers.fire_tables) == len(layers.fire_paths)
        tables = list(layers.fire_tables if read else _read_fire_files(layers.fire_paths))
        inputs += [{"role": "active_fires", "path": str(t.path), "sha256": sha256_file(t.path)} for t in tables]
        detections = pd.concat([t.detections for t in tables], ignore_index=True)
        fire_matches = corroborate(polygons, detections, max_distance_m=params.fire_max_distance_m)
        matched = fire_matches.groupby("polygon_id").size() if len(fire_matches) else pd.Series(dtype=int)
        report["fires"] = {
            "files": [str(t.path) for t in tables], "n_detections": int(len(detections)),
            "skipped_rows": int(sum(t.skipped for t in tables)),
            "skipped_reasons": {k: v for t in tables for k, v in t.skipped_reasons.items()},
            "max_distance_m": params.fire_max_distance_m,
            "n_polygons_corroborated": int(len(matched)),
            "matches": [{k: (str(v) if k == "acquired_utc" else v) for k, v in m.items()}
                        for m in fire_matches.to_dict("records")],
            # A 375 m pixel cannot tell one compound from the next: the table lists detections.
            "detections_near_burns": _by_detection(fire_matches),
            "statement": (f"{len(matched)} of {len(polygons)} burn polygon(s) have an active-fire detection within "
                          f"{params.fire_max_distance_m:g} m inside their date bracket ({len(detections)} detection(s) read"
                          + (f", {sum(t.skipped for t in tables)} malformed row(s) skipped" if any(t.skipped for t in tables) else "")
                          + "). No detection is not evidence of no fire: overpasses are hours apart and thatch burns fast."),
        }

    used = {r.scene_id: j for j, r in enumerate(detection.records)}
    to_used = [used.get(r.scene_id, -1) for r in records]
    graded = out.assign(first_seen_index=[to_used[i] for i in out["first_seen_index"]],
                        last_clear_index=[to_used[i] if i >= 0 else -1 for i in out["last_clear_index"]])
    tiers = confidence_tiers(graded, thresholds=detection.thresholds, shifts=detection.shifts,
                             clear=detection.stack["clear"], scene_ids=[r.scene_id for r in detection.records],
                             strong_snr=params.strong_change_snr, fire_matches=fire_matches)
    for column in tiers.columns:
        out[column] = tiers[column].to_numpy()
    counts = {tier: int((out["tier"] == tier).sum()) for tier in ("high", "medium", "low", "rejected")} if len(out) else {}
    report["confidence"] = {
        "counts": counts,
        "area_ha": {tier: round(float(out.loc[out["tier"] == tier, "area_ha"].sum()), 4) for tier in counts},
        "rules": "docs/CONFIDENCE.md",
        "statement": ("Confidence: " + ", ".join(f"{n} polygon(s) {tier}" for tier, n in counts.items() if n) + "."
                      if counts else "No polygon to grade."),
    }
    return Evidence(polygons=out, structures=structures, fire_matches=fire_matches, report=report, inputs=inputs)
