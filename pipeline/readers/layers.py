"""Evidence layers kept beside an AOI: building footprints and active-fire archives.

``burnscan add-buildings`` and ``burnscan add-fires`` check a file before keeping it (it
reads, it lies over the AOI, its rows parse) and store it under the AOI's data folder,
where every run finds it (:mod:`pipeline.evidence`). Files are written atomically; a layer
already kept is never overwritten silently: a new footprint layer replaces the old one only
when asked, and the old one is kept under a name of its own (time to the microsecond and a
random suffix, created exclusively, so no earlier layer is ever written over); a fire archive
of the same name but different content is refused, and so is one whose every row is malformed
(kept, it would read as "no fire seen"; a header alone is a file with no detection, and is kept).
Rows skipped from an archive that is kept are said in one warning line. Each change holds the layer's lock from
the check to the write, so two commands at once never both replace the same layer. A fire
archive is kept under its file name, made safe (:func:`pipeline.names.derived_name`) when
it holds spaces or other characters a file name should not.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.aoi import Aoi
from pipeline.errors import ParameterError, SceneError
from pipeline.readers.firms import checked_fire_csv, first_skipped_row
from pipeline.readers.vectors import named_simulated, read_footprints
from pipeline.readers.rasters import sha256_file
from pipeline.names import derived_name
from pipeline.outputs.write import copy_file, exclusive_lock, write_vector

__all__ = ["LayerAdded", "add_buildings", "add_fires"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerAdded:
    """What was kept, where, and what was noticed on the way."""

    path: Path
    sha256: str
    summary: str


def add_buildings(aoi: Aoi, source: Path, *, data_root: Path, replace: bool = False, layer: str | None = None) -> LayerAdded:
    """Keep the footprints of ``source`` (its ``layer`` if it holds several) that touch the AOI as ``<data>/<aoi>/buildings.gpkg``."""
    source = Path(source)
    crs = aoi.utm_crs
    area = aoi.projected(crs)
    footprints = read_footprints(source, crs, bounds=area.bounds, layer=layer)
    if footprints.attrs.get("simulated"):
        raise SceneError(f"{source}: a SIMULATED footprint layer (its name or its features say so); an AOI's layers are read by "
                         f"its runs on real scenes, where they would count burned structures that do not exist: give a real layer")
    footprints = footprints[footprints.intersects(area)]
    if not len(footprints):
        raise SceneError(f"{source}: no building footprint lies over the AOI {aoi.name}; "
                         "give a layer that covers it (check its CRS and extent)")
    root = Path(data_root) / aoi.name
    target = root / "buildings.gpkg"
    kept = footprints.to_crs("EPSG:4326").assign(source_file=source.name, source_sha256=sha256_file(source))
    with exclusive_lock(target):
        if target.exists():
            if not replace:
                raise ParameterError(f"{target}: the AOI already has a footprint layer; pass --replace to replace it "
                                     "(the old one is kept under a dated name)")
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
            copy_file(target, root / f"buildings.replaced-{stamp}-{secrets.token_hex(3)}.gpkg", root=root, exclusive=True)
        write_vector(target, {"buildings": kept}, root=root)
    dropped = footprints.attrs.get("dropped", 0)
    repaired = int(footprints["structure_id"].isin(footprints.attrs.get("repaired", [])).sum())
    return LayerAdded(target, sha256_file(target),
                      f"{len(kept)} footprint(s) over the AOI kept"
                      + (f", {repaired} invalid outline(s) repaired (self-intersecting rings, as in a bow tie, made valid)" if repaired else "")
                      + (f", {dropped} non-polygon feature(s) ignored" if dropped else ""))


FIRES_NEAR_KM = 100.0
"""An archive none of whose detections lies this close to the AOI is of another area (FIRMS downloads are cut to a
country or a box around the area asked for); an empty one is kept, a quiet area's."""


def _check_fires_near(detections: Any, aoi: Aoi, source: Path) -> None:
    """Refuse an archive of another area: kept, it would say "no fire detected" of every burn for the wrong reason."""
    if not len(detections):
        return
    centre = aoi.geometry.centroid
    lat, lon = np.radians(detections["latitude"].to_numpy(float)), np.radians(detections["longitude"].to_numpy(float))
    lat0, lon0 = np.radians(centre.y), np.radians(centre.x)
    cos_angle = np.sin(lat) * np.sin(lat0) + np.cos(lat) * np.cos(lat0) * np.cos(lon - lon0)
    nearest_km = float(np.degrees(np.arccos(np.clip(cos_angle, -1, 1))).min() * 111.195)
    if nearest_km > FIRES_NEAR_KM:
        raise SceneError(f"{source}: none of its {len(detections)} detection(s) lies within {FIRES_NEAR_KM:.0f} km of the AOI "
                         f"{aoi.name} (the nearest {nearest_km:.0f} km away): an archive of another area; download the "
                         f"FIRMS archive of the AOI's area and add that")


def add_fires(aoi: Aoi, source: Path, *, data_root: Path) -> LayerAdded:
    """Keep an active-fire archive CSV under ``<data>/<aoi>/fires/`` after checking that it parses."""
    source = Path(source)
    if named_simulated(source):
        raise SceneError(f"{source}: a SIMULATED fire archive (its name says so); an AOI's archives are read by its runs on real "
                         f"scenes, where its detections would corroborate burns: give a FIRMS archive")
    table = checked_fire_csv(source, fix="nothing was kept: download the FIRMS archive CSV again and add that")
    _check_fires_near(table.detections, aoi, source)
    first = first_skipped_row(table)
    folder = Path(data_root) / aoi.name / "fires"
    stem, suffix = (source.stem, source.suffix) if source.suffix.lower() == ".csv" else (source.name, ".csv")
    target = folder / f"{derived_name(stem)}{suffix}"
    digest = sha256_file(source)
    with exclusive_lock(folder):
        if target.exists():
            if sha256_file(target) == digest:
                return LayerAdded(target, digest, "already kept (same content)")
            raise ParameterError(f"{target}: another archive of that name is already kept; rename {source.name} and add it again")
        copy_file(source, target, root=folder, exclusive=True)
    if table.skipped:  # said once kept, not before a write that may still fail
        logger.warning(f"{source}: {table.skipped} malformed row(s) skipped ({first}); "
                       f"the {len(table.detections)} other detection(s) are kept")
    times = table.detections["acquired_utc"]
    span = f", {times.min():%Y-%m-%d %H:%M} to {times.max():%Y-%m-%d %H:%M} UTC" if len(times) else ""
    return LayerAdded(target, digest, f"{len(table.detections)} detection(s){span}"
                      + (f"; {table.skipped} malformed row(s) skipped: {table.skipped_reasons}" if table.skipped else ""))
