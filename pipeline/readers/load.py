"""Load scenes onto the analysis grid: the only module that reads pixels.

Each scene is a Planet-style delivery: a surface-reflectance GeoTIFF
(``*_AnalyticMS_SR*.tif``, reflectance x 10000, nodata 0), an optional UDM2 quality
mask (``*_udm2*.tif``) and an optional ``*_metadata*.json`` with the acquisition time.
Every scene is warped onto one grid (bilinear for reflectance, nearest for the mask),
so later stages compare the same ground pixel across dates. Files are opened read-only
and hashed, so the report can cite exactly what it read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from rasterio.enums import Resampling
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from pipeline.errors import SceneError
from pipeline.grid import Grid, grid_for_bounds
from pipeline.stages.plausibility import implausible_time, too_coarse

__all__ = ["SceneFiles", "SceneRecord", "discover_scenes", "planet_scenes_in", "load_planet", "load_stack", "stack_scenes", "load_geotiff", "native_grid",
           "read_band", "read_mask", "read_outline", "sha256_file", "memoised_hashes", "file_footprint", "metadata_footprint",
           "record_positions", "check_regular_file", "is_regular_file", "in_system_folder", "check_time", "field_error", "field_number", "reflectance_digests"]

# Everything GDAL or rasterio raise for a file they cannot read, open or warp.
UNREADABLE = (RasterioError, CPLE_BaseError)


def short(exc: BaseException) -> str:
    """The gist of a library error: GDAL and PROJ can quote a whole CRS definition."""
    text = " ".join(str(exc).split(" from '")[0].split())
    return text if len(text) <= 160 else text[:157] + "..."


_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def check_regular_file(path: Path) -> None:
    """Refuse anything but a regular file (or a link to one), without opening it.

    Opening a named pipe blocks until something writes to it, and a device can stream for
    ever: a scene, mask or metadata file named like one would hang the run. ``stat`` never
    blocks.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SceneError(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise SceneError(f"{path}: cannot be examined ({exc.strerror or exc}); check the path and its permissions") from None
    for test, kind in _NOT_REGULAR:
        if test(mode):
            raise SceneError(f"{path}: is {kind}, not a regular file; give the scene's file itself")
    if not stat.S_ISREG(mode):
        raise SceneError(f"{path}: is not a regular file; give the scene's file itself")


def is_regular_file(path: Path) -> bool:
    """True when ``path`` is a regular file (or a link to one); False for anything else, never raising.

    Paths written in a manifest or an item can be anything: a name too long for the file
    system, a loop of links, a NUL. Asking whether such a path is a file must answer "no",
    not end the run with an operating-system error.
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False


_SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


def in_system_folder(path: Path) -> bool:
    """True for a path in /proc, /sys or /dev (after links): the kernel's views of itself,
    where walking never ends and files are not what their size says."""
    resolved = Path(os.path.realpath(path))
    return any(resolved == root or resolved.is_relative_to(root) for root in _SYSTEM_FOLDERS)


def _shown(value: object) -> str:
    """A field's value for a message: its JSON kind and the start of its text."""
    kinds = {type(None): "null", bool: "a boolean", str: "a string", list: "a list", dict: "an object"}
    kind = kinds.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return kind if value is None else f"{kind} ({text if len(text) <= 40 else text[:37] + '...'})"


def field_error(path: Path, field: str, value: object, expected: str, fix: str) -> SceneError:
    """One line naming the file, the field, its value, what it should be and the fix."""
    return SceneError(f"{path}: field {field!r} is {_shown(value)}, expected {expected}; {fix}")


def field_number(path: Path, field: str, value: object, fix: str) -> float:
    """A numeric field (a JSON number or, as in MTL and XML files, a number written as text),
    finite; else :func:`field_error`. Booleans are not numbers here."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise field_error(path, field, value, "a finite number", fix)
    return number


def check_time(when: datetime, *, sensor: str, where: Path | str) -> datetime:
    """``when`` (UTC when naive) if ``sensor`` can have acquired it; else one line naming ``where``."""
    problem = implausible_time(when, sensor=sensor)
    if problem:
        raise SceneError(f"{where}: {problem}; fix the acquisition time in the metadata (or give the right one)")
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


# Planet's 4-band analytic order; 8-band SuperDove deliveries name their bands in the file.
_PLANET_4BAND = ("blue", "green", "red", "nir")
_SUPERDOVE_8BAND = ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir")
_REQUIRED_BANDS = ("green", "red", "nir")
_REFLECTANCE_SCALE = 10000.0
MAX_METADATA_BYTES = 10_000_000  # a Planet metadata JSON is a few kB; a STAC item tens of kB
_MAX_SIDE_PX = 200_000  # a Sentinel-2 tile is 10980 px, a PlanetScope strip some 25000
_MAX_BANDS = 64

# UDM2 band order (Planet): clear, snow, shadow, light haze, heavy haze, cloud, confidence, udm.
_UDM2_CLEAR, _UDM2_SNOW, _UDM2_SHADOW, _UDM2_LIGHT_HAZE, _UDM2_HEAVY_HAZE, _UDM2_CLOUD = 0, 1, 2, 3, 4, 5


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

    @property
    def acquired_utc(self) -> str:
        """ISO time in UTC with a ``Z``."""
        return self.acquired.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    return {digest for role, digest in sha256.items() if role not in _NOT_REFLECTANCE and isinstance(digest, str) and digest}


def _file_with(record: SceneRecord, digest: str) -> str:
    """The file of ``record`` whose SHA-256 is ``digest``."""
    return next((record.files.get(role, record.scene_id) for role, d in record.sha256.items() if d == digest), record.scene_id)


def record_positions(records: list[SceneRecord], among: list[SceneRecord]) -> np.ndarray:
    """Index into ``among`` of each of ``records``: the analysis counts usable scenes only,
    reports cite every scene given."""
    where = {r.scene_id: i for i, r in enumerate(among)}
    return np.array([where[r.scene_id] for r in records], dtype=int)


_HASH_MEMO = threading.local()
_KNOWN_HASHES: dict[tuple, str] = {}


@contextmanager
def memoised_hashes() -> Iterator[None]:
    """Within this block, a file unchanged since it was last hashed (same inode, size,
    modification and change times) is not read again.

    Chunks of a large scene each load every scene file; hashing hundreds of megabytes per
    chunk would cost more than the analysis. Outside the block (``verify``, ``add``) every
    hash reads the bytes.
    """
    before = getattr(_HASH_MEMO, "on", False)
    _HASH_MEMO.on = True
    try:
        yield
    finally:
        _HASH_MEMO.on = before


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (a pipe or device is refused, never opened)."""
    check_regular_file(path)
    key = None
    if getattr(_HASH_MEMO, "on", False):
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key in _KNOWN_HASHES:
            return _KNOWN_HASHES[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if key is not None:
        _KNOWN_HASHES[key] = digest.hexdigest()
    return digest.hexdigest()


def planet_scenes_in(folder: Path) -> list[SceneFiles]:
    """Planet-style scenes in ``folder`` (and its sub-folders, as deliveries nest them), each
    paired with its mask and metadata; empty when there are none."""
    scenes = []
    for path in sorted(Path(folder).rglob("*_AnalyticMS_SR*.tif")):
        here = path.parent
        scene_id = path.name.split("_3B_")[0] if "_3B_" in path.name else path.stem
        udm2 = sorted(here.glob(f"{scene_id}_3B_udm2*.tif"))
        legacy = [p for p in sorted(here.glob(f"{scene_id}_3B_*udm*.tif")) if "udm2" not in p.name]
        meta = sorted(here.glob(f"{scene_id}_metadata*.json"))
        xml = sorted(here.glob(f"{scene_id}_3B_*metadata*.xml"))
        scenes.append(SceneFiles(scene_id, path, udm2[0] if udm2 else None, meta[0] if meta else None,
                                 legacy[0] if legacy and not udm2 else None, xml[0] if xml and not meta else None))
    return scenes


def discover_scenes(folder: Path) -> list[SceneFiles]:
    """Find Planet-style scenes in ``folder`` and pair each with its mask and metadata."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SceneError(f"{folder}: scene folder not found; give a folder holding *_AnalyticMS_SR*.tif files")
    scenes = planet_scenes_in(folder)
    if not scenes:
        raise SceneError(f"{folder}: no *_AnalyticMS_SR*.tif scene in this folder; add scenes or run on the demo")
    return scenes


def read_metadata(files: SceneFiles, tags: dict[str, str]) -> dict:
    """Acquisition properties from the metadata JSON, else from the GeoTIFF tags."""
    props: dict = {}
    if files.metadata is not None:
        check_regular_file(files.metadata)
        size = files.metadata.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise SceneError(f"{files.metadata}: metadata file is {size / 1e6:.0f} MB, a scene's metadata is a few kB; "
                             f"replace it with the provider's *_metadata.json")
        try:
            doc = json.loads(files.metadata.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SceneError(f"{files.metadata}: metadata is not valid JSON ({short(exc)}); re-download it from the provider") from None
        except RecursionError:
            raise SceneError(f"{files.metadata}: metadata JSON is nested too deeply to be a scene's metadata; "
                             f"re-download it from the provider") from None
        props = _planet_properties(files.metadata, doc) if isinstance(doc, dict) else {}
    elif files.metadata_xml is not None:
        props = _xml_metadata(files.metadata_xml)
    acquired = props.get("acquired") or tags.get("ACQUIRED")
    if not acquired:
        raise SceneError(
            f"{files.reflectance}: no acquisition time (no 'acquired' in metadata JSON nor ACQUIRED tag); "
            f"put the scene's *_metadata.json beside it"
        )
    where = files.metadata or files.metadata_xml or files.reflectance
    try:
        when = datetime.fromisoformat(str(acquired).replace("Z", "+00:00"))
    except ValueError:
        raise SceneError(f"{where}: acquisition time {acquired!r} is not ISO 8601; fix the metadata") from None
    # Planet states times in UTC; a time before the first Dove or in the future is no acquisition.
    props["acquired"] = check_time(when, sensor="planetscope", where=where).astimezone(timezone.utc)
    simulated = str(props.get("simulated", tags.get("SIMULATED", "no"))).lower() in ("true", "yes", "1")
    props["simulated"] = simulated
    return props


_PLANET_TEXT_FIELDS = ("acquired", "satellite_id", "instrument")
_PLANET_NUMBER_FIELDS = ("sun_elevation", "sun_azimuth")


def _planet_properties(path: Path, doc: dict) -> dict:
    """The properties of a Planet metadata JSON, each field a reader uses checked for its type."""
    fix = "re-download the scene's *_metadata.json from the provider"
    props = doc.get("properties", doc)
    if not isinstance(props, dict):
        raise field_error(path, "properties", props, "an object", fix)
    props = dict(props)
    for name in _PLANET_TEXT_FIELDS:
        if props.get(name) is not None and not isinstance(props[name], str):
            raise field_error(path, name, props[name], "a string", fix)
    for name in _PLANET_NUMBER_FIELDS:
        if props.get(name) is not None:
            props[name] = field_number(path, name, props[name], fix)
    if "geometry" in doc and doc["geometry"] is not None and not isinstance(doc["geometry"], dict):
        raise field_error(path, "geometry", doc["geometry"], "a GeoJSON geometry object", fix)
    return props


def _xml_metadata(path: Path) -> dict:
    """Acquisition time and satellite from an older Planet ``*_metadata.xml`` (EO profile)."""
    import xml.etree.ElementTree as ET

    check_regular_file(path)
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise SceneError(f"{path}: metadata file is {path.stat().st_size / 1e6:.0f} MB, a scene's metadata is a few kB; replace it")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SceneError(f"{path}: metadata is not valid XML ({short(exc)}); re-download it from the provider") from None
    found: dict = {}
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        text = (element.text or "").strip()
        if tag in ("acquisitionDateTime", "acquisitionDate") and text and "acquired" not in found:
            found["acquired"] = text
        elif tag == "serialIdentifier" and text and "satellite_id" not in found:
            found["satellite_id"] = text
    return found


def _band_names(src: rasterio.io.DatasetReader, path: Path) -> tuple[str, ...]:
    """Band names from the file's descriptions, else Planet's delivery order."""
    described = tuple((d or "").strip().lower() for d in src.descriptions)
    if all(described):
        return described
    if src.count == 4:
        return _PLANET_4BAND
    if src.count == 8:
        return _SUPERDOVE_8BAND
    raise SceneError(
        f"{path}: {src.count} bands without band names; expected Planet 4-band (B, G, R, NIR) or "
        f"8-band SuperDove, or set band descriptions"
    )


def _warp(src: rasterio.io.DatasetReader, grid: Grid, resampling: Resampling, nodata: float | None) -> np.ndarray:
    """Read ``src`` resampled onto ``grid`` (all bands)."""
    with WarpedVRT(
        src,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=resampling,
        src_nodata=nodata,
        nodata=nodata,
    ) as vrt:
        return vrt.read()


def _check_overlap(src: rasterio.io.DatasetReader, grid: Grid, path: Path) -> None:
    if max(src.width, src.height) > _MAX_SIDE_PX or src.count > _MAX_BANDS:
        raise SceneError(f"{path}: header claims {src.width} x {src.height} pixels in {src.count} bands, beyond any "
                         f"satellite scene (a decompression bomb or a corrupt header); replace the file")
    if src.crs is None:
        raise SceneError(f"{path}: no CRS in the file; use a georeferenced delivery (GeoTIFF with its CRS)")
    try:
        left, bottom, right, top = transform_bounds(src.crs, grid.crs, *src.bounds)
    except Exception as exc:  # PROJ raises several types for impossible transforms
        crs_name = src.crs.to_string() if len(src.crs.to_string()) <= 60 else src.crs.to_string()[:57] + "..."
        reason = str(exc).split(" from ")[0][:120] or "no transformation"
        raise SceneError(f"{path}: CRS {crs_name} cannot be projected to {grid.crs} ({reason}); reproject the file to a known CRS") from None
    g_left, g_bottom, g_right, g_top = grid.bounds
    if right <= g_left or left >= g_right or top <= g_bottom or bottom >= g_top:
        raise SceneError(f"{path}: scene does not overlap the AOI; check the AOI or pick scenes that cover it")
    # The native pixel in the grid's metres (its bounds there over its size: works for files in degrees too).
    native_m = max((right - left) / src.width, (top - bottom) / src.height)
    coarse = too_coarse(native_m, grid.resolution)
    if coarse:
        raise SceneError(f"{path}: {coarse}; it cannot show a burned compound, use a finer product "
                         f"(PlanetScope 3 m, Sentinel-2 10-20 m, Landsat 30 m)")


def _read_mask(path: Path, grid: Grid) -> np.ndarray:
    """A quality mask on ``grid`` (nearest neighbour: classes must not be blended)."""
    check_regular_file(path)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:  # warped as if it lay on the grid, it would flag the wrong ground
                raise SceneError(f"{path}: quality mask has no CRS; use the mask as delivered with its scene (GeoTIFF with its CRS)")
            return _warp(src, grid, Resampling.nearest, None)
    except UNREADABLE as exc:
        raise SceneError(f"{path}: quality mask cannot be read ({short(exc)}); re-download it") from None


def _load_one(files: SceneFiles, grid: Grid) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], dict]:
    """Reflectance (band, y, x) float32 with NaN for no data, clear mask and metadata."""
    path = files.reflectance
    check_regular_file(path)
    try:
        with rasterio.open(path) as src:
            _check_overlap(src, grid, path)
            names = _band_names(src, path)
            missing = [b for b in _REQUIRED_BANDS if b not in names]
            if missing:
                raise SceneError(f"{path}: missing band(s) {', '.join(missing)} (has {', '.join(names)}); use a delivery with NIR, red and green")
            nodata = src.nodata if src.nodata is not None else 0
            raw = _warp(src, grid, Resampling.bilinear, nodata).astype(np.float32)
            tags = src.tags()
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    valid = np.all((raw != nodata) & np.isfinite(raw), axis=0)  # float deliveries can carry NaN or Inf
    reflectance = np.where(valid[None], raw / _REFLECTANCE_SCALE, np.nan).astype(np.float32)
    clear = valid.copy()
    if files.udm2 is not None:
        udm = _read_mask(files.udm2, grid)
        if udm.shape[0] < 6:
            raise SceneError(f"{files.udm2}: {udm.shape[0]} bands, a UDM2 has 8; give the *_udm2.tif of the scene")
        flagged = (udm[_UDM2_SNOW] > 0) | (udm[_UDM2_SHADOW] > 0) | (udm[_UDM2_HEAVY_HAZE] > 0) | (udm[_UDM2_CLOUD] > 0)
        # Planet's classes are exclusive: a light-haze pixel has clear = 0, yet its ground is
        # seen (normalisation absorbs the haze), so it counts as observed.
        seen = (udm[_UDM2_CLEAR] > 0) | (udm[_UDM2_LIGHT_HAZE] > 0)
        clear &= seen & ~flagged
    elif files.udm is not None:
        clear &= _read_mask(files.udm, grid)[0] == 0
    props = read_metadata(files, tags)
    return reflectance, clear, names, props


def load_stack(scenes: list[SceneFiles], grid: Grid) -> tuple[xr.Dataset, list[SceneRecord]]:
    """Load every scene onto ``grid`` as one time-ordered stack.

    Returns
    -------
    stack:
        ``reflectance`` (time, band, y, x) float32 reflectance, NaN where not observed;
        ``clear`` (time, y, x) bool, True where the ground was seen (valid, no cloud,
        shadow, snow or heavy haze). Coordinates ``time`` (UTC), ``scene_id``, ``band``,
        ``y``, ``x``; attributes ``crs`` and ``simulated``.
    records:
        One :class:`SceneRecord` per scene, in the same order.

    Raises
    ------
    SceneError
        For an unreadable file, a missing band, no overlap, no acquisition time, or two
        scenes with the same acquisition time.
    """
    return stack_scenes([load_planet(files, grid) for files in scenes], grid)


def load_planet(files: SceneFiles, grid: Grid) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
    """One Planet scene on ``grid``: its record (hashes of every file), reflectance and clear mask."""
    reflectance, clear, names, props = _load_one(files, grid)
    paths = files.paths()
    record = SceneRecord(
        scene_id=files.scene_id,
        acquired=props["acquired"],
        satellite_id=str(props.get("satellite_id", "unknown")),
        sensor=str(props.get("instrument", props.get("sensor", "PlanetScope"))),
        simulated=props["simulated"],
        bands=names,
        files={k: str(p) for k, p in paths.items()},
        sha256={k: sha256_file(p) for k, p in paths.items()},
        sun_elevation=props.get("sun_elevation"),
        sun_azimuth=props.get("sun_azimuth"),
    )
    return record, reflectance, clear


def stack_scenes(loaded: list[tuple[SceneRecord, np.ndarray, np.ndarray]], grid: Grid) -> tuple[xr.Dataset, list[SceneRecord]]:
    """Assemble ``(record, reflectance, clear)`` triples on ``grid`` into a time-ordered stack.

    Checks that times are distinct, that no reflectance file appears twice (a copy under
    another time) and that every scene has the same bands; see :func:`load_stack` for the
    layout.
    """
    if not loaded:
        raise SceneError("no scene to stack; give at least two scenes")
    loaded = sorted(loaded, key=lambda item: item[0].acquired)
    times = [r.acquired for r, _, _ in loaded]
    for earlier, later in zip(loaded, loaded[1:]):
        if earlier[0].acquired == later[0].acquired:
            raise SceneError(
                f"{later[0].files.get('reflectance', later[0].scene_id)}: same acquisition time as {earlier[0].scene_id}; "
                f"remove the duplicate scene"
            )
    first_with: dict[str, SceneRecord] = {}
    for record, _, _ in loaded:
        for digest in reflectance_digests(record.sha256):
            other = first_with.setdefault(digest, record)
            if other is not record:
                raise SceneError(
                    f"{_file_with(record, digest)}: same reflectance bytes (SHA-256 {digest[:16]}...) as {_file_with(other, digest)} "
                    f"of scene {other.scene_id}, under another time ({record.acquired_utc}, {other.acquired_utc}); one file "
                    f"cannot be two acquisitions: remove the copy"
                )
    bands = loaded[0][0].bands
    for record, _, _ in loaded:
        if record.bands != bands:
            raise SceneError(f"{record.files.get('reflectance', record.scene_id)}: bands {record.bands} differ from {bands}; load one sensor per run")
    records = [r for r, _, _ in loaded]
    stack = xr.Dataset(
        {
            "reflectance": (("time", "band", "y", "x"), np.stack([refl for _, refl, _ in loaded]).astype(np.float32)),
            "clear": (("time", "y", "x"), np.stack([clear for _, _, clear in loaded]).astype(bool)),
        },
        coords={
            "time": np.array([t.astimezone(timezone.utc).replace(tzinfo=None) for t in times], dtype="datetime64[ns]"),
            "scene_id": ("time", [r.scene_id for r in records]),
            "band": list(bands),
            "y": grid.y_coords(),
            "x": grid.x_coords(),
        },
        attrs={"crs": grid.crs, "simulated": int(any(r.simulated for r in records))},
    )
    return stack, records


def native_grid(path: Path, resolution: float | None = None) -> Grid:
    """A UTM grid covering ``path`` at ``resolution`` metres (default: its own pixel size in metres).

    Files in degrees (EPSG:4326) are put on the UTM zone of their centre, so that pixel
    areas and distances are metric.
    """
    from pipeline.aoi import utm_crs_for

    check_regular_file(path)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SceneError(f"{path}: no CRS in the file; use a georeferenced GeoTIFF")
            lon0, lat0, lon1, lat1 = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
            crs = utm_crs_for((lon0 + lon1) / 2, (lat0 + lat1) / 2)
            bounds = transform_bounds(src.crs, crs, *src.bounds)
            if resolution is None:
                resolution = (bounds[2] - bounds[0]) / src.width
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    res = float(round(resolution, 1))
    return grid_for_bounds(bounds, crs, res)


def load_geotiff(
    path: Path,
    *,
    bands: list[str | None],
    grid: Grid,
    acquired: datetime,
    scene_id: str | None = None,
    scale: float = 10000.0,
    sensor: str = "unknown",
) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
    """Read any multi-band GeoTIFF with a band map onto ``grid``.

    Parameters
    ----------
    bands:
        Name of each band in file order (``None`` skips a band, e.g. a stored NDVI).
    acquired:
        Acquisition time (UTC) when the file does not carry one.
    scale:
        Divisor turning stored values into reflectance (10000 for most L2 products).

    Pixels equal to the nodata tag, NaN or infinite are not observed (several real
    products mark missing pixels with NaN and no nodata tag).
    """
    path = Path(path)
    acquired = check_time(acquired, sensor=sensor, where=path)
    check_regular_file(path)
    try:
        with rasterio.open(path) as src:
            _check_overlap(src, grid, path)
            if len(bands) != src.count:
                raise SceneError(f"{path}: band map names {len(bands)} bands but the file has {src.count}; give one name per band")
            wanted = [name for name in bands if name]
            missing = [b for b in _REQUIRED_BANDS if b not in wanted]
            if missing:
                raise SceneError(f"{path}: band map lacks {', '.join(missing)}; name the file's NIR, red and green bands")
            raw = _warp_float(src, grid)
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    keep = [i for i, name in enumerate(bands) if name]
    data = raw[keep] / scale
    valid = np.all(np.isfinite(data), axis=0)
    reflectance = np.where(valid[None], data, np.nan).astype(np.float32)
    record = SceneRecord(
        scene_id=scene_id or path.stem,
        acquired=acquired.astimezone(timezone.utc),
        satellite_id="unknown",
        sensor=sensor,
        simulated=False,
        bands=tuple(b for b in bands if b),
        files={"reflectance": str(path)},
        sha256={"reflectance": sha256_file(path)},
    )
    return record, reflectance, valid


def _warp_float(src: rasterio.io.DatasetReader, grid: Grid) -> np.ndarray:
    """Bilinear warp to ``grid`` as float64, with nodata, NaN and outside all NaN."""
    with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                   resampling=Resampling.bilinear, src_nodata=src.nodata if src.nodata is not None else np.nan,
                   nodata=np.nan, dtype="float64") as vrt:
        return vrt.read()


def read_band(path: Path, grid: Grid, *, band: int = 1, categorical: bool = False) -> np.ndarray:
    """One band of a raster file on ``grid`` as float64, NaN where the file has no data.

    ``categorical`` bands (quality classes, bit masks) are resampled by nearest neighbour,
    never blended; reflectance bilinearly (a 20 m band lands on a 10 m grid pixel-centre to
    pixel-centre). Values are returned as stored (no scale or offset).
    """
    path = Path(path)
    check_regular_file(path)
    try:
        with rasterio.open(path) as src:
            _check_overlap(src, grid, path)
            if not 1 <= band <= src.count:
                raise SceneError(f"{path}: has {src.count} band(s), band {band} was asked for; check the file")
            with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                           resampling=Resampling.nearest if categorical else Resampling.bilinear,
                           src_nodata=src.nodata if src.nodata is not None else (None if categorical else np.nan),
                           nodata=np.nan, dtype="float64") as vrt:
                return vrt.read(band)
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None


def file_footprint(path: Path):
    """The lon/lat outline (shapely polygon) of a raster file's bounds, for catalogues."""
    from shapely.geometry import box

    path = Path(path)
    check_regular_file(path)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SceneError(f"{path}: no CRS in the file; use a georeferenced delivery (GeoTIFF with its CRS)")
            return box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21))
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None


def metadata_footprint(geometry: object, raster: Path) -> tuple[BaseGeometry, str | None]:
    """A scene's lon/lat outline from its metadata ``geometry``, else from ``raster``'s bounds.

    A metadata outline is used only when it is a valid, non-empty (multi)polygon inside
    lon/lat bounds; otherwise the raster's own footprint stands in, and the second value
    says why (for the catalogue item), so a wrong outline can neither decide the overlap
    with the AOI nor pass unnoticed (``None`` when the metadata outline is used or none was
    stated). ``geometry`` is checked to be an object or null by the reader beforehand.
    """
    from shapely.geometry import shape

    if geometry is None:
        return file_footprint(raster), None  # none stated: the raster's bounds are the outline
    try:
        outline = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        problem = f"the metadata geometry cannot be read ({short(exc)})"
    else:
        if outline.geom_type not in ("Polygon", "MultiPolygon"):
            problem = f"the metadata geometry is a {outline.geom_type}, not a polygon"
        elif outline.is_empty or not outline.is_valid:
            problem = "the metadata geometry is an empty or invalid polygon"
        elif not box(-180, -90, 180, 90).contains(outline):
            problem = "the metadata geometry lies outside lon/lat bounds"
        else:
            return outline, None
    return file_footprint(raster), f"from the raster's bounds: {problem}"


def read_mask(path: Path, grid: Grid) -> np.ndarray:
    """A reference 0/1 mask on ``grid`` (nearest neighbour), as bool."""
    return _read_mask(Path(path), grid)[0] > 0


def read_outline(path: Path, crs: str):
    """Union of the polygons of a vector file (GeoJSON, GeoPackage...), in ``crs``."""
    import geopandas as gpd

    check_regular_file(path)
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise SceneError(f"{path}: cannot be read as a vector file ({short(exc)}); give a GeoJSON of the settlement outline") from None
    if frame.crs is None:
        raise SceneError(f"{path}: outline has no CRS; save it as GeoJSON (lon/lat) or with its CRS")
    return frame.to_crs(crs).geometry.union_all()


_FOOTPRINT_ID_COLUMNS = ("structure_id", "building_id", "osm_id", "id", "full_plus_code")
_MAX_FOOTPRINTS = 2_000_000  # a whole country's layer: clip it to the search area first


def read_footprints(path: Path, crs: str, *, bounds: tuple[float, float, float, float] | None = None):
    """Building footprints of a vector file (GeoJSON, GeoPackage), polygons only, in ``crs``.

    Keeps an identifier the user can trace back (``structure_id``, ``osm_id``, ``id``... in
    that order of preference, else the row number) as ``structure_id``; points and lines
    are dropped and counted in ``attrs["dropped"]``; ``bounds`` (in ``crs``) keeps only the
    footprints that touch them.
    """
    import geopandas as gpd

    path = Path(path)
    check_regular_file(path)
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise SceneError(f"{path}: cannot be read as building footprints ({short(exc)}); "
                         "give a GeoJSON or GeoPackage of building polygons") from None
    if frame.crs is None:
        raise SceneError(f"{path}: footprints have no CRS; save them as GeoJSON (lon/lat) or with their CRS")
    if len(frame) > _MAX_FOOTPRINTS:
        raise SceneError(f"{path}: {len(frame)} footprints is more than {_MAX_FOOTPRINTS}; clip the layer to the AOI first")
    id_column = next((c for c in _FOOTPRINT_ID_COLUMNS if c in frame.columns), None)
    ids = frame[id_column].astype(str) if id_column else pd.Series([str(i) for i in range(len(frame))], index=frame.index)
    polygonal = frame.geometry.notna() & frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    out = gpd.GeoDataFrame({"structure_id": ids[polygonal].to_numpy()},
                           geometry=frame.geometry[polygonal].make_valid().to_numpy(), crs=frame.crs).to_crs(crs)
    out = out[~out.geometry.is_empty & (out.geometry.area > 0)]
    if bounds is not None:
        out = out[out.intersects(box(*bounds))]
    out = out.reset_index(drop=True)
    out.attrs["dropped"] = int((~polygonal).sum())
    if out["structure_id"].duplicated().any():
        raise SceneError(f"{path}: footprint ids in column {id_column!r} repeat; give each building its own id")
    return out
