"""The rasters of a detect run, as a GIS user opens them: Cloud-Optimised GeoTIFFs with their QGIS styles.

Written into the run folder's ``gis/`` folder, on the AOI's analysis grid (its CRS, the
reference scene's frame), each with a ``.qml`` style of the same name that QGIS applies when
the file is opened:

- ``change_<INDEX>_<time>.tif``: per acquisition compared, the burn-index change against each
  pixel's last clear observation (float32, positive = more burned, NaN = not observed), the
  band described with the date and the index, the thresholds of that date in its tags; styled
  as a colour ramp with the grow and seed thresholds marked.
- ``first_seen.tif``: per pixel, the index of the scene on which it was first seen burned
  (int16, in the order of the report's scenes, as the polygons' ``first_seen_index``; -1 =
  nodata, never seen burned). The tags ``FIRST_SEEN_<value>`` map each value to its UTC time
  (its date alone where only the date is known) and scene id; the style names each class by its
  date, in the colours of the KML.
- ``<time>_cir.tif``: each usable scene as the figures show it, the false-colour infrared
  composite (R = NIR, G = red, B = green) as uint8 RGB, on one stretch shared by every scene
  of the run (2nd-98th percentile of their observed pixels), so that a colour change between
  two dates is a change of ground; 0 = nodata (not observed), observed values 1-255.

Composed from the :class:`pipeline.model.Detection`'s arrays (:class:`RasterInputs`, the part of it they use); written through
:func:`pipeline.outputs.write.write_cog` (atomic, inside the run folder). Simulated runs carry
``_SIMULATED`` in every name and a ``SIMULATED`` tag in every file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.grid import Grid
from pipeline.model import Detection, SceneRecord, record_positions
from pipeline.outputs.composites import false_colour, joint_stretch
from pipeline.outputs.gis_styles import change_style, date_colour, first_seen_style, rgb_style
from pipeline.outputs.write import write_cog, write_text
from pipeline.stages.threshold import ThresholdInfo

__all__ = ["GIS_FOLDER", "FIRST_SEEN_NODATA", "COMPOSITE_NODATA", "RasterInputs", "write_rasters"]

GIS_FOLDER = "gis"
"""The run folder's sub-folder for the rasters and their styles."""

FIRST_SEEN_NODATA = -1
"""``first_seen.tif``'s value where no burn was seen (the analysis' own "none")."""

COMPOSITE_NODATA = 0
"""The composites' value where the scene did not observe the ground (cloud, shadow, outside the scene)."""

_SIMULATED_TAG = "SIMULATED DATA - not evidence about a real place"


@dataclass(frozen=True)
class RasterInputs:
    """Everything the rasters are made from, and nothing else: what :func:`write_rasters` reads, and so what a kept
    copy of them is looked up by (:mod:`pipeline.outputs.figure_cache`)."""

    delta: xr.DataArray
    records: list[SceneRecord]
    all_records: list[SceneRecord]
    thresholds: list[ThresholdInfo | None]
    index_name: str
    grid: Grid
    first_seen: xr.DataArray
    reflectance: xr.DataArray
    clear: xr.DataArray
    simulated: bool

    @classmethod
    def of(cls, detection: Detection, *, simulated: bool) -> RasterInputs:
        return cls(detection.change["delta"], detection.records, detection.all_records, detection.thresholds,
                   detection.index_name, detection.grid, detection.dates["first_seen"], detection.stack["reflectance"],
                   detection.stack["clear"], simulated)


def write_rasters(folder: Path, inputs: RasterInputs) -> list[str]:
    """Write the change, first-seen and composite COGs with their styles into ``<folder>/gis/``; return their paths in ``folder``.

    ``folder`` is the (``.partial``) run folder; ``inputs`` is :meth:`RasterInputs.of` the run's analysis. Simulated
    scenes make every file say so, in its name and its tags.
    """
    suffix = "_SIMULATED" if inputs.simulated else ""
    common = {"SIMULATED": _SIMULATED_TAG} if inputs.simulated else {}
    gis = Path(folder) / GIS_FOLDER
    written = _change(gis, inputs, suffix, common) + _first_seen(gis, inputs, suffix, common)
    written += _composites(gis, inputs, suffix, common)
    return [path.relative_to(folder).as_posix() for path in written]


def _with_style(path: Path, style: str, folder: Path) -> list[Path]:
    """The raster's ``.qml`` beside it, where QGIS looks for it."""
    write_text(path.with_suffix(".qml"), style, root=folder)
    return [path, path.with_suffix(".qml")]


def _change(gis: Path, inputs: RasterInputs, suffix: str, common: dict[str, str]) -> list[Path]:
    index, grid, written = inputs.index_name.upper(), inputs.grid, []
    delta = inputs.delta
    for t in range(1, len(inputs.records)):  # the first scene has nothing before it to change from
        rec, info = inputs.records[t], inputs.thresholds[t]
        band = np.asarray(delta.isel(time=t).values, dtype=np.float32)
        tags = {**common, "INDEX": index, "SCENE_ID": rec.scene_id, "ACQUIRED_UTC": rec.stated_utc,
                "MEANING": (f"change of {index} between each pixel's last clear observation and this scene, oriented "
                            f"so that positive = more burned; NaN = not observed")}
        if info is not None:
            tags |= {"BACKGROUND": f"{info.background:.6g}", "NOISE_SIGMA": f"{info.noise_sigma:.6g}",
                     "SEED_THRESHOLD": f"{info.seed_threshold:.6g}", "GROW_THRESHOLD": f"{info.grow_threshold:.6g}"}
        path = gis / f"change_{index}_{rec.acquired:%Y%m%dT%H%MZ}{suffix}.tif"
        write_cog(path, band, grid, root=gis.parent, nodata=float("nan"), tags=tags,
                  band_names=[f"{index} change to {rec.stated_utc} ({rec.scene_id}); positive = more burned"])
        written += _with_style(path, change_style(_ramp(band, info)), gis.parent)
    return written


def _ramp(band: np.ndarray, info: ThresholdInfo | None) -> list[tuple[float, str, str]]:
    """Blue for recovery, white for no change, yellow to dark red through the grow and seed thresholds."""
    finite = np.abs(band[np.isfinite(band)])
    top = float(np.percentile(finite, 99.5)) if finite.size else 0.0
    if info is None:
        top = max(top, 0.05)
        return [(-top, "#2c7bb6", f"{-top:+.3f} (less burned)"), (0.0, "#f7f7f7", "0 (no change)"),
                (top, "#7f0000", f"{top:+.3f} (more burned)")]
    grow, seed = float(info.grow_threshold), float(info.seed_threshold)
    top = max(top, seed * 1.5, 0.05)
    base = min(float(info.background), grow / 2)
    stops = [(-top, "#2c7bb6", f"{-top:+.3f} (less burned)"), (base, "#f7f7f7", f"{base:+.3f} (background)"),
             (grow, "#fee08b", f"{grow:+.3f} grow threshold"), (seed, "#f46d43", f"{seed:+.3f} seed threshold"),
             (top, "#7f0000", f"{top:+.3f} (more burned)")]
    # A ramp must rise: a stop at or below the one before it (thresholds of an odd date) is left out.
    rising = [stops[0]]
    for stop in stops[1:]:
        if stop[0] > rising[-1][0]:
            rising.append(stop)
    return rising


def _first_seen(gis: Path, inputs: RasterInputs, suffix: str, common: dict[str, str]) -> list[Path]:
    records, all_records = inputs.records, inputs.all_records
    to_all = record_positions(records, all_records)  # the report's (and the polygons') scene order
    usable = np.asarray(inputs.first_seen.values)
    value = np.full(usable.shape, FIRST_SEEN_NODATA, dtype=np.int16)
    seen = usable >= 0
    value[seen] = to_all[usable[seen]]
    tags = {**common, "MEANING": ("index of the scene on which the pixel was first seen burned, in the order of "
                                  "report.json's scenes; -1 (nodata) = never seen burned")}
    classes = []
    for i, rec in enumerate(all_records):
        tags[f"FIRST_SEEN_{i}"] = f"{rec.stated_utc} {rec.scene_id}"
        if np.any(value == i):
            classes.append((i, date_colour(i), f"{rec.acquired:%Y-%m-%d %H:%M} UTC ({rec.scene_id})"))
    path = gis / f"first_seen{suffix}.tif"
    write_cog(path, value, inputs.grid, root=gis.parent, nodata=FIRST_SEEN_NODATA, tags=tags, resampling="nearest",
              band_names=["first seen burned: scene index (see the FIRST_SEEN_<value> tags)"])
    return _with_style(path, first_seen_style(classes), gis.parent)


def _composites(gis: Path, inputs: RasterInputs, suffix: str, common: dict[str, str]) -> list[Path]:
    reflectance, clear, written = inputs.reflectance, inputs.clear, []
    if not all(b in reflectance.band.values for b in ("nir", "red", "green")):
        return written  # no infrared composite without those bands (the figures show none either)
    scenes = [reflectance.isel(time=j).where(clear.isel(time=j)) for j in range(len(inputs.records))]
    stretch = joint_stretch(*scenes)
    tags = {**common, "COMPOSITE": "false-colour infrared: red = NIR, green = red, blue = green",
            "STRETCH": "; ".join(f"{name} {lo:.4f}-{hi:.4f} reflectance -> 1-255"
                                 for name, (lo, hi) in zip(("NIR", "red", "green"), stretch)),
            "NODATA": f"{COMPOSITE_NODATA} = not observed (cloud, shadow or outside the scene)"}
    for j, rec in enumerate(inputs.records):
        rgb, _ = false_colour(scenes[j], stretch=stretch)  # (y, x, 3) in 0..1, not observed grey
        observed = np.isfinite(scenes[j].sel(band=["nir", "red", "green"]).transpose("band", "y", "x").values).all(axis=0)
        planes = (1 + np.rint(np.moveaxis(rgb, -1, 0) * 254)).astype(np.uint8)
        planes[:, ~observed] = COMPOSITE_NODATA
        path = gis / f"{rec.acquired:%Y%m%dT%H%MZ}_cir{suffix}.tif"
        write_cog(path, planes, inputs.grid, root=gis.parent, nodata=COMPOSITE_NODATA,
                  tags={**tags, "SCENE_ID": rec.scene_id, "ACQUIRED_UTC": rec.stated_utc},
                  band_names=[f"NIR ({rec.scene_id})", f"red ({rec.scene_id})", f"green ({rec.scene_id})"])
        written += _with_style(path, rgb_style(low=1, high=255), gis.parent)
    return written
