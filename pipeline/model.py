"""The data types the flow passes between readers, stages and outputs.

Readers make :class:`SceneFiles`, :class:`SceneInfo` and :class:`SceneRecord`; the flow
(:mod:`pipeline.run`) makes :class:`Calibration` and :class:`Detection`. They live here,
apart from any module that reads or writes, so that every side can name them without
importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:  # types only: the stages do not depend on this module, nor this one on them
    import geopandas as gpd
    import xarray as xr

    from pipeline.grid import Grid
    from pipeline.stages.coregister import ShiftEstimate
    from pipeline.stages.normalise import BandFit
    from pipeline.stages.threshold import ThresholdInfo

__all__ = ["SceneFiles", "SceneRecord", "SceneInfo", "Calibration", "Detection", "reflectance_digests", "file_with_digest",
           "record_positions"]


@dataclass(frozen=True)
class SceneFiles:
    """The files of one delivered scene."""

    scene_id: str
    reflectance: Path
    udm2: Path | None = None
    metadata: Path | None = None
    udm: Path | None = None
    """Legacy one-band unusable-data mask (0 = usable), used when there is no UDM2."""
    metadata_xml: Path | None = None
    """Older deliveries' ``*_metadata*.xml``: read for the acquisition time when there is no JSON."""

    def paths(self) -> dict[str, Path]:
        """Every file of the scene, by role."""
        roles = {"reflectance": self.reflectance, "udm2": self.udm2, "udm": self.udm, "metadata": self.metadata,
                 "metadata_xml": self.metadata_xml}
        return {role: path for role, path in roles.items() if path is not None}


@dataclass(frozen=True)
class SceneRecord:
    """What a report needs to cite a scene: identity, time, sensor and file hashes."""

    scene_id: str
    acquired: datetime
    satellite_id: str
    sensor: str
    simulated: bool
    bands: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    sun_elevation: float | None = None
    sun_azimuth: float | None = None
    time_source: str = "metadata"
    """Where ``acquired`` came from: ``metadata`` (the product's own), ``acquired-option`` (given by the
    investigator), ``file-name`` (the date in a file name, asked for with ``--time-from-name``)."""
    time_of_day_known: bool = True
    """False when only the date is known (``acquired`` then stands at 00:00 UTC of it): every printed
    time of the scene says "time of day unknown" (:func:`pipeline.outputs.report.scene_time`)."""
    band_pixel_m: dict[str, float] = field(default_factory=dict)
    """Native pixel in metres of each band, where the product says its bands differ (Sentinel-2: 10 m
    visible and NIR, 20 m SWIR, even when delivered resampled); empty where every band has the file's pixel."""

    @property
    def acquired_utc(self) -> str:
        """ISO time in UTC with a ``Z``."""
        return self.acquired.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def stated_utc(self) -> str:
        """The time as the outputs state it: :attr:`acquired_utc`, or the date alone where only the date is known
        (ISO 8601 and KML read it as the day), never a midnight nobody observed."""
        return self.acquired_utc if self.time_of_day_known else self.acquired.astimezone(timezone.utc).strftime("%Y-%m-%d")


# File roles that are not reflectance: masks and metadata may repeat across scenes (a copied
# UDM, an all-clear SCL); reflectance bytes cannot.
_NOT_REFLECTANCE = frozenset({"udm2", "udm", "metadata", "metadata_xml", "scl", "qa_pixel", "mtl"})


def reflectance_digests(sha256: dict[str, str]) -> set[str]:
    """The SHA-256 of a scene's reflectance files (by role, as in :attr:`SceneRecord.sha256`).

    One set of reflectance bytes is one acquisition: the same digest under two scene ids or two
    times is a copy registered twice, which would be compared with itself.

    >>> sorted(reflectance_digests({"reflectance": "ab", "udm2": "cd", "metadata": "ef"}))
    ['ab']
    """
    return set(reflectance_files(sha256).values())


def reflectance_files(sha256: dict[str, str]) -> dict[str, str]:
    """The SHA-256 of a scene's reflectance files by role: one file (``reflectance``) or one per band (Sentinel-2, Landsat).

    >>> reflectance_files({"red": "ab", "nir": "cd", "scl": "ef"})
    {'red': 'ab', 'nir': 'cd'}
    """
    return {role: digest for role, digest in sha256.items() if role not in _NOT_REFLECTANCE and isinstance(digest, str) and digest}


SKY_MASK_ROLES = frozenset({"udm2", "udm", "scl", "qa_pixel"})
"""File roles that flag a scene's cloud and cloud shadow: Planet's UDM2 (or older UDM), Sentinel-2's
scene classification, Landsat's pixel quality band."""


def has_sky_mask(record: SceneRecord) -> bool:
    """Whether the scene came with its product's own cloud mask (a plain GeoTIFF does not).

    >>> has_sky_mask(SceneRecord("a", datetime(2024, 1, 1), "x", "PS2", False, (), files={"reflectance": "a.tif", "udm2": "u.tif"}))
    True
    """
    return mask_among(record.files)


def mask_among(files: dict[str, str] | Any) -> bool:
    """Whether a scene's files, by role (a record's or a catalogue entry's), hold a cloud mask."""
    return any(role in SKY_MASK_ROLES for role in files)


_MASK_NAMES = {"udm2": "UDM2", "udm": "UDM", "scl": "SCL", "qa_pixel": "QA_PIXEL"}


def cloud_mask_words(record: SceneRecord, n_scenes: int, *, screenable: bool = True) -> str:
    """What flagged the scene's cloud and shadow, for a report: the product's own mask, burnscan's
    screening (:mod:`pipeline.stages.sky`), or nothing when fewer than three scenes were given or
    the scene lacks a band the screening needs (``screenable``).

    >>> plain = SceneRecord("a", datetime(2024, 1, 1), "x", "unknown", False, (), files={"reflectance": "a.tif"})
    >>> cloud_mask_words(plain, 4)
    'none delivered: screened by burnscan where three scenes saw the ground'
    >>> cloud_mask_words(plain, 2)
    'none delivered, none found: two scenes cannot tell a cloud from a change'
    >>> cloud_mask_words(plain, 4, screenable=False)
    'none delivered, none found: no blue, green, red and NIR to tell a cloud by'
    """
    delivered = [_MASK_NAMES[role] for role in record.files if role in SKY_MASK_ROLES]
    if delivered:
        return f"{delivered[0]} (delivered)"
    if n_scenes < 3:
        return "none delivered, none found: two scenes cannot tell a cloud from a change"
    if not screenable:
        return "none delivered, none found: no blue, green, red and NIR to tell a cloud by"
    return "none delivered: screened by burnscan where three scenes saw the ground"


def file_with_digest(record: SceneRecord, digest: str) -> str:
    """The file of ``record`` whose SHA-256 is ``digest``."""
    return next((record.files.get(role, record.scene_id) for role, d in record.sha256.items() if d == digest), record.scene_id)


def record_positions(records: list[SceneRecord], among: list[SceneRecord]) -> np.ndarray:
    """Index into ``among`` of each of ``records``: the analysis counts usable scenes only,
    reports cite every scene given."""
    where = {r.scene_id: i for i, r in enumerate(among)}
    return np.array([where[r.scene_id] for r in records], dtype=int)


@dataclass(frozen=True)
class SceneInfo:
    """What a catalogue records about a scene, read from metadata only."""

    scene_id: str
    kind: str
    """``planet``, ``sentinel2``, ``landsat`` or ``geotiff``."""
    acquired: datetime
    """Acquisition time, timezone-aware UTC."""
    sensor: str
    satellite_id: str
    footprint: BaseGeometry
    """Outline of the scene's data in lon/lat (EPSG:4326)."""
    files: dict[str, Path]
    """Every file the scene reads, by role (``reflectance``, ``udm2``, ``B04``, ``qa_pixel``...)."""
    bands: tuple[str, ...]
    properties: dict[str, Any] = field(default_factory=dict)
    """Source-specific facts worth keeping (cloud cover, processing baseline, scale...)."""
    time_source: str = "metadata"
    """Where ``acquired`` came from (see :attr:`SceneRecord.time_source`)."""
    time_of_day_known: bool = True
    """False when only the date is known (see :attr:`SceneRecord.time_of_day_known`)."""
    pixel_m: dict[str, float] = field(default_factory=dict)
    """Native pixel size in metres of each canonical band, read from the files' headers (Sentinel-2:
    10 m visible and NIR, 20 m SWIR); the analysis grid follows the coarsest band the burn index reads."""


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
    refused: tuple[str | None, ...] = ()
    """Per scene given: why its numbers cannot be ground (:mod:`pipeline.stages.plausibility`), else ``None``."""
    spectral_fits: tuple[tuple[BandFit, ...], ...] = ()
    """Per usable scene, per band: the fits onto the clearest scene that the per-pixel spectral reading
    (burned fraction, non-fire tests) applies where the index reads the scenes as delivered (calibrated
    SWIR products); empty where that reading uses the scenes as ``fits`` left them."""
    band_noise: tuple[dict[str, list] | None, ...] = ()
    """Per usable scene: each band's background drift and noise that the burned fraction is fitted with
    (:func:`pipeline.stages.fraction.fit_noise`), so that every chunk fits as the whole scene would; empty or
    ``None`` for a scene: each chunk measures its own."""


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
    transients: gpd.GeoDataFrame | None = None
    """Marks seen on one date and gone on the next clear scene, set aside from the burns
    (:func:`pipeline.stages.polygons.transient_polygons`; indexed into ``records``); ``None``
    for a chunk of a large area, where they are not listed."""
    nonfire: gpd.GeoDataFrame | None = None
    """Changes the spectral test found not fire-like (leaf drop, harvest, wet soil, shadow, cloud), set
    aside from the burns (:func:`pipeline.stages.polygons.nonfire_polygons`; indexed into
    ``records``); ``None`` for a chunk of a large area, where they are not listed."""
    burned_fraction: xr.DataArray | None = None
    """(y, x) burned share of each burned pixel on its first date, and of the ring of mixed pixels
    around the burns (:mod:`pipeline.stages.fraction`), NaN elsewhere or where it could not be
    fitted; ``None`` when no band could be unmixed."""
    kept_work: str = ""
    """What the analysis read from the kept work of earlier runs of the same pixels instead of computing it, in words
    ("" for nothing): the report's provenance says it, and ``burnscan rerun`` recomputes it."""
