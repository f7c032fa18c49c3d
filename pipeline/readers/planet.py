"""Planet PlanetScope deliveries, as downloaded: a folder or a zip of scenes.

A scene is ``*_AnalyticMS_SR*.tif`` (surface reflectance x 10000, 4-band Dove or 8-band
SuperDove), with its ``*_udm2*.tif`` (or the older one-band ``*_udm*.tif``) and its
``*_metadata.json`` (or the older ``*_metadata*.xml``), which dates it (else the SR file's own
``ACQUIRED`` tag: :func:`read_metadata`); the pixel reading itself is
:func:`pipeline.readers.planet.load_planet`. A zip is never read in place: it is unpacked once, into the
AOI's data folder, after every member has been checked (no absolute path, no ``..``, no link,
no device, no encryption, a compression method Python reads, names the file system can hold,
no duplicate, a sane unpacked size in all and per member), so a hostile archive cannot write
outside that folder nor fill the disk; a zip without a Planet scene is not kept.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from rasterio.enums import Resampling

from pipeline.errors import OutputError, PipelineError, SceneError, json_kind
from pipeline.grid import Grid
from pipeline.model import SceneFiles, SceneInfo, SceneRecord
from pipeline.readers.rasters import (stated_time, MAX_METADATA_BYTES, REFLECTANCE_SCALE, REQUIRED_BANDS, UNREADABLE, band_names, check_overlap,
                                      check_regular_file, check_time, field_error, field_number, metadata_footprint,
                                      open_raster, pixel_size_m, read_quality_mask, sha256_file, short, warp_to_grid)
from pipeline.names import derived_name
from pipeline.outputs.write import remove_folder, remove_stale_staging, staging_folder

__all__ = ["PlanetScene", "find", "safe_unzip"]

_MAX_UNPACKED_BYTES = 50 * 10**9  # a large Planet order; a bomb claims far more
# Deflate rarely beats 1:20 on imagery (Planet's GeoTIFFs are compressed already); 1:100 is an
# archive built to explode, or one so unusual that unpacking it by hand is the safer way. The
# ratio is judged per member above 10 MB and over the whole archive above 100 MB: small files
# (metadata, a constant test mask) may compress far better without filling any disk.
_MAX_RATIO = 100
_RATIO_FLOOR_MEMBER = 10 * 10**6
_RATIO_FLOOR_TOTAL = 100 * 10**6
_FREE_MARGIN_BYTES = 100 * 10**6  # leave the disk room for the run that follows
_MAX_COMPONENT_BYTES = 255  # NAME_MAX of Linux and macOS file systems
_MAX_PATH_BYTES = 1024  # well under PATH_MAX (4096) once the data folder is in front
# UDM2 band order (Planet): clear, snow, shadow, light haze, heavy haze, cloud, confidence, udm.
_UDM2_CLEAR, _UDM2_SNOW, _UDM2_SHADOW, _UDM2_LIGHT_HAZE, _UDM2_HEAVY_HAZE, _UDM2_CLOUD = 0, 1, 2, 3, 4, 5
_MARKER = ".burnscan-unzipped"


def _header(path: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    """The canonical band names and the tags of an SR GeoTIFF, from its header alone (every band shares one pixel)."""
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            return band_names(src, path), src.tags()
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None


@dataclass(frozen=True)
class PlanetScene:
    """One PlanetScope scene of a delivery folder."""

    files: SceneFiles

    @property
    def scene_id(self) -> str:
        return self.files.scene_id

    def describe(self) -> SceneInfo:
        """Time, satellite and footprint from the metadata (the time from the GeoTIFF's tag, the footprint from the
        GeoTIFF, when absent)."""
        names, tags = _header(self.files.reflectance)
        props = read_metadata(self.files, tags)  # checks the file and the type of every field used here
        geometry = None
        if self.files.metadata is not None:
            doc = json.loads(self.files.metadata.read_text(encoding="utf-8"))
            geometry = doc.get("geometry") if isinstance(doc, dict) else None
        footprint, fallback = metadata_footprint(geometry, self.files.reflectance)
        keep = ("cloud_cover", "gsd", "item_type", "instrument", "sun_elevation", "sun_azimuth", "view_angle", "quality_category")
        return SceneInfo(
            scene_id=self.scene_id, kind="planet", acquired=props["acquired"],
            sensor=str(props.get("instrument", "PlanetScope")), satellite_id=str(props.get("satellite_id", "unknown")),
            footprint=footprint, files=self.files.paths(), bands=(),
            properties={k: props[k] for k in keep if k in props} | {"simulated": props["simulated"]}
            | ({"footprint": fallback} if fallback else {}),
            pixel_m=dict.fromkeys(names, pixel_size_m(self.files.reflectance)),
        )

    def load(self, grid: Grid) -> tuple[SceneRecord, Any, Any]:
        return load_planet(self.files, grid)


def find(path: Path, *, extract_to: Path | None = None, unpacked: list[Path] | None = None, **_: Any) -> list[PlanetScene]:
    """Planet scenes in a folder, a single SR GeoTIFF, or a zip (unpacked under ``extract_to``).

    A zip unpacked by this call is appended to ``unpacked``, so that a caller who fails later
    can remove it again; one that holds no Planet scene is removed at once, and said so.
    """
    path = Path(path)
    if path.is_dir():
        return [PlanetScene(files) for files in planet_scenes_in(path)]
    if path.is_file() and "_AnalyticMS_SR" in path.name and path.suffix.lower() in (".tif", ".tiff"):
        return [PlanetScene(files) for files in planet_scenes_in(path.parent) if files.reflectance == path]
    if path.is_file() and path.suffix.lower() == ".zip":
        if extract_to is None:
            raise SceneError(f"{path}: a zip delivery is unpacked when it is added; run `burnscan add AOI {path}` first")
        fresh: list[Path] = []
        folder = safe_unzip(path, Path(extract_to), unpacked=fresh)
        if unpacked is not None:
            unpacked.extend(fresh)  # before looking inside: a failure there must still find it
        scenes = [PlanetScene(files) for files in planet_scenes_in(folder)]
        if not scenes and fresh:
            remove_folder(folder, root=Path(extract_to))
            if unpacked is not None:
                unpacked.remove(folder)
            raise SceneError(f"{path}: the zip holds no Planet scene (*_AnalyticMS_SR*.tif), so what it unpacked was "
                             f"removed again; check that it is a Planet delivery, or unpack it and add the folder")
        return scenes
    return []


def _readable_methods() -> set[int]:
    """Compression methods this Python can unpack (bzip2 and LZMA depend on how it was built)."""
    methods = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
    for method, module in ((zipfile.ZIP_BZIP2, "bz2"), (zipfile.ZIP_LZMA, "lzma")):
        try:
            __import__(module)
        except ImportError:
            continue
        methods.add(method)
    return methods


_REFUSE = "refusing to unpack it, get the delivery from Planet again"


def _member_problem(info: zipfile.ZipInfo) -> tuple[str, str] | None:
    """Why a zip member must not be unpacked, judged on its own, and the fix; or None."""
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    mode = info.external_attr >> 16
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path", _REFUSE
    if ".." in pure.parts:
        return "climbs out of the folder with '..'", _REFUSE
    if any(ord(c) < 32 for c in name):  # NUL included
        return "has a NUL or control character in its name", _REFUSE
    if stat.S_ISLNK(mode):
        return "is a symbolic link", _REFUSE
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # zips made on Windows carry no type bits
        return "is not a regular file", _REFUSE
    if info.flag_bits & 0x1:
        return ("is encrypted (burnscan reads no passwords)",
                "download the delivery without encryption, or unpack it yourself and add the folder")
    if info.compress_type not in _readable_methods():
        method = zipfile.compressor_names.get(info.compress_type, f"method {info.compress_type}")
        return (f"is compressed with {method}, which Python cannot unpack",
                f"re-pack the zip with plain deflate, or unpack it with a tool that reads {method} (7-Zip) and add the folder")
    encoded = os.fsencode(name)
    if len(encoded) > _MAX_PATH_BYTES or any(len(os.fsencode(part)) > _MAX_COMPONENT_BYTES for part in pure.parts):
        return (f"has a name too long for the file system ({len(encoded)} bytes; at most {_MAX_COMPONENT_BYTES} "
                f"per folder or file name and {_MAX_PATH_BYTES} in all)", "unpack it yourself with shorter names and add the folder")
    if info.file_size > _RATIO_FLOOR_MEMBER and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
        return f"unpacks to {info.file_size / 1e6:.0f} MB from {info.compress_size / 1e3:.0f} kB (a zip bomb)", _REFUSE
    return None


def _shown(name: str) -> str:
    """A member name as messages show it: repr, cut short (a hostile name can be kilobytes long)."""
    text = repr(name)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]} ({len(name)} characters)"


def _free_bytes(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def _check_members(zip_path: Path, members: list[zipfile.ZipInfo], into: Path) -> None:
    """Refuse the archive, before anything is written, for any member or for what they add up to."""
    total, seen = 0, set()
    free = _free_bytes(into)
    archive_bytes = max(zip_path.stat().st_size, 1)
    for info in members:
        problem = _member_problem(info)
        if problem:
            why, fix = problem
            raise SceneError(f"{zip_path}: member {_shown(info.filename)} {why}; {fix}")
        key = PurePosixPath(info.filename.replace("\\", "/")).as_posix().rstrip("/")
        if key in seen:
            raise SceneError(f"{zip_path}: member {_shown(info.filename)} appears twice; {_REFUSE}")
        seen.add(key)
        total += info.file_size  # a running total: many members each too small to alarm add up to a bomb
        if total > _MAX_UNPACKED_BYTES:
            raise SceneError(f"{zip_path}: unpacks to over {total / 1e9:.0f} GB, beyond any delivery; check the file")
        if total > _RATIO_FLOOR_TOTAL and total > _MAX_RATIO * archive_bytes:
            raise SceneError(f"{zip_path}: its members unpack to {total / 1e6:.0f} MB and more from a "
                             f"{archive_bytes / 1e6:.1f} MB zip (a zip bomb split over members); refusing to unpack it, "
                             f"get the delivery from Planet again or unpack it yourself")
        if total + _FREE_MARGIN_BYTES > free:
            raise OutputError(f"{zip_path}: unpacks to {total / 1e9:.2f} GB and more, but {into} has only {free / 1e9:.2f} GB "
                              f"free; free disk space or add the zip with another --data folder")


def _unpack_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, zip_path: Path) -> None:
    """Write one member, counting the bytes: never more than its header declares (headers can lie)."""
    written = 0
    with archive.open(info) as source, open(destination, "xb") as sink:
        while True:
            chunk = source.read(1 << 20)
            if not chunk:
                break
            written += len(chunk)
            if written > info.file_size:
                raise SceneError(f"{zip_path}: member {info.filename!r} holds more than the {info.file_size} bytes its "
                                 f"header declares (a zip built to mislead); refusing to unpack it, re-download the delivery")
            sink.write(chunk)


def safe_unzip(zip_path: Path, into: Path, *, unpacked: list[Path] | None = None) -> Path:
    """Unpack ``zip_path`` into ``into/<zip name>/`` after checking every member; return that folder.

    Before anything is written every member is checked (path, type, encryption, compression
    method, name length, duplicates) and the declared sizes are added up against ratios, a
    ceiling and the free disk space; while unpacking, each member is cut off at its declared
    size. All or nothing: the archive is unpacked into a locked staging folder beside the
    target (removed on failure, and by the next unpack if this process is killed) and renamed
    into place. Unpacking the same zip again returns the existing folder (its SHA-256 is
    recorded in a marker file). A folder unpacked by this call is appended to ``unpacked``.

    Raises
    ------
    SceneError
        For a damaged or hostile archive (one line naming the zip and the member).
    OutputError
        When the disk lacks the space, or the folder cannot be written.
    """
    zip_path, into = Path(zip_path), Path(into)
    remove_stale_staging(into)  # left by an unpack that was killed
    digest = sha256_file(zip_path)
    # The folder is named after the user's file: made safe, the same every time.
    target = into / derived_name(zip_path.stem)
    marker = target / _MARKER
    if marker.is_file():
        if marker.read_text(encoding="utf-8").strip() == digest:
            return target
        raise SceneError(f"{zip_path}: {target} already holds a different zip of the same name; rename the zip or remove that folder")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SceneError(f"{zip_path}: not a readable zip ({exc}); re-download the delivery") from None
    with archive:
        members = archive.infolist()
        _check_members(zip_path, members, into)
        with staging_folder(into, target.name, root=into) as staging:
            info = None
            try:
                for info in members:
                    destination = staging.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                    if not destination.resolve().is_relative_to(staging.resolve()):
                        raise SceneError(f"{zip_path}: member {info.filename!r} escapes the folder; refusing to unpack it")
                    if info.is_dir():
                        destination.mkdir(parents=True, exist_ok=True)
                        continue
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    _unpack_member(archive, info, destination, zip_path)
                (staging / _MARKER).write_text(digest + "\n", encoding="utf-8")
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise SceneError(f"{zip_path}: damaged zip ({exc}); re-download the delivery") from None
            except PipelineError:
                raise
            except OSError as exc:
                where = f"member {info.filename!r}" if info is not None else "the zip"
                if exc.errno == errno.ENOSPC:
                    raise OutputError(f"{zip_path}: disk full while unpacking {where} into {into}; free disk space") from None
                raise SceneError(f"{zip_path}: {where} cannot be unpacked ({exc.strerror or exc}); "
                                 f"unpack the zip yourself and add the folder") from None
            try:
                os.rename(staging, target)
            except OSError as exc:
                if marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest:
                    return target  # a concurrent command unpacked the same zip first
                raise OutputError(f"{zip_path}: unpacked but could not be moved to {target} ({exc.strerror or exc}); "
                                  f"remove {target} if it is left over, and add the zip again") from None
    if unpacked is not None:
        unpacked.append(target)
    return target


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


def read_metadata(files: SceneFiles, tags: dict[str, str]) -> dict:
    """Acquisition properties from the metadata JSON (or the older XML); the time, when it gives none, from the SR
    GeoTIFF's ``ACQUIRED`` tag (``tags``).

    A metadata file that gives no time (none beside the scene, a JSON that is no object or lacks ``acquired``) leaves
    the tag to date the scene; without one either, the error names the metadata file and what it lacks.
    """
    props: dict = {}
    lacks = ""  # what the metadata file lacks when it gives no time
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
        if isinstance(doc, dict):
            props = _planet_properties(files.metadata, doc)
            lacks = "has no 'acquired'" if props.get("acquired") is None else f"gives 'acquired' as {props['acquired']!r}"
        else:
            lacks = f"is {json_kind(doc)}, not an object with 'acquired'"
    elif files.metadata_xml is not None:
        props = _xml_metadata(files.metadata_xml)
        lacks = "has no acquisitionDateTime"
    metadata = files.metadata or files.metadata_xml
    if props.get("acquired"):
        acquired, where = props["acquired"], metadata or files.reflectance
        fix = "fix the metadata"
    elif tags.get("ACQUIRED"):
        acquired, where = tags["ACQUIRED"], f"{files.reflectance} (tag ACQUIRED)"
        fix = "write it as 2024-01-28T10:38:00Z, or put the scene's *_metadata.json beside it"
    elif metadata is not None:
        raise SceneError(f"{metadata}: no acquisition time: the metadata {lacks}, and {files.reflectance.name} has no "
                         f"ACQUIRED tag; re-download the scene's metadata from the provider")
    else:
        raise SceneError(f"{files.reflectance}: no acquisition time: no *_metadata.json beside it and no ACQUIRED tag "
                         f"in it; put the scene's *_metadata.json beside it")
    try:
        when = stated_time(acquired)
    except ValueError as exc:
        raise SceneError(f"{where}: acquisition time {acquired!r} {exc}, so it cannot be read as a UTC time; "
                         f"{fix}") from None
    # Planet states times in UTC; a time before the first Dove or in the future is no acquisition.
    props["acquired"] = check_time(when, sensor="planetscope", where=where).astimezone(timezone.utc)
    simulated = str(props.get("simulated", tags.get("SIMULATED", "no"))).lower() in ("true", "yes", "1")
    props["simulated"] = simulated
    return props


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


def _load_one(files: SceneFiles, grid: Grid) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], dict]:
    """Reflectance (band, y, x) float32 with NaN for no data, clear mask and metadata."""
    path = files.reflectance
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            check_overlap(src, grid, path)
            names = band_names(src, path)
            missing = [b for b in REQUIRED_BANDS if b not in names]
            if missing:
                raise SceneError(f"{path}: missing band(s) {', '.join(missing)} (has {', '.join(names)}); use a delivery with NIR, red and green")
            nodata = src.nodata if src.nodata is not None else 0
            raw = warp_to_grid(src, grid, Resampling.bilinear, nodata).astype(np.float32)
            tags = src.tags()
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    valid = np.all((raw != nodata) & np.isfinite(raw), axis=0)  # float deliveries can carry NaN or Inf
    reflectance = np.where(valid[None], raw / REFLECTANCE_SCALE, np.nan).astype(np.float32)
    clear = valid.copy()
    if files.udm2 is not None:
        udm = read_quality_mask(files.udm2, grid, scene=path)
        if udm.shape[0] < 6:
            raise SceneError(f"{files.udm2}: {udm.shape[0]} bands, a UDM2 has 8; give the *_udm2.tif of the scene")
        flagged = (udm[_UDM2_SNOW] > 0) | (udm[_UDM2_SHADOW] > 0) | (udm[_UDM2_HEAVY_HAZE] > 0) | (udm[_UDM2_CLOUD] > 0)
        # Planet's classes are exclusive: a light-haze pixel has clear = 0, yet its ground is
        # seen (normalisation absorbs the haze), so it counts as observed.
        seen = (udm[_UDM2_CLEAR] > 0) | (udm[_UDM2_LIGHT_HAZE] > 0)
        clear &= seen & ~flagged
    elif files.udm is not None:
        clear &= read_quality_mask(files.udm, grid, scene=path)[0] == 0
    props = read_metadata(files, tags)
    return reflectance, clear, names, props


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
        band_pixel_m=_native_pixels(props.get("native_resolution_m"), names, files.metadata or files.reflectance),
    )
    return record, reflectance, clear


def _native_pixels(value: Any, names: tuple[str, ...], where: Path) -> dict[str, float]:
    """The metadata's ``native_resolution_m`` (band -> metres), for the bands the file has; ``{}`` without one.

    A delivery that resampled some bands onto a finer grid says so there (burnscan's simulated
    Sentinel-2-like scenes: SWIR integrated on 20 m pixels, written on the 10 m grid).
    """
    if value is None:
        return {}
    fix = "give a mapping of band name to metres, e.g. {\"swir22\": 20}, or remove it"
    if not isinstance(value, dict):
        raise field_error(where, "native_resolution_m", value, "a mapping of band to metres", fix)
    out = {}
    for band, metres in value.items():
        if isinstance(metres, bool) or not isinstance(metres, (int, float)) or not math.isfinite(metres) or metres <= 0:
            raise field_error(where, "native_resolution_m", value, "positive metres for every band", fix)
        if band in names:
            out[str(band)] = float(metres)
    return out


_PLANET_TEXT_FIELDS = ("acquired", "satellite_id", "instrument")


_PLANET_NUMBER_FIELDS = ("sun_elevation", "sun_azimuth")
