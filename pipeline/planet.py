"""Planet PlanetScope deliveries, as downloaded: a folder or a zip of scenes.

A scene is ``*_AnalyticMS_SR*.tif`` (surface reflectance x 10000, 4-band Dove or 8-band
SuperDove), with its ``*_udm2*.tif`` (or the older one-band ``*_udm*.tif``) and its
``*_metadata.json`` (or the older ``*_metadata*.xml``); the pixel reading itself is
:func:`pipeline.load.load_planet`. A zip is never read in place: it is unpacked once, into the
AOI's data folder, after every member has been checked (no absolute path, no ``..``, no link,
no device, a sane unpacked size), so a hostile archive cannot write outside that folder.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import SceneError
from .grid import Grid
from .load import SceneFiles, SceneRecord, load_planet, metadata_footprint, planet_scenes_in, sha256_file
from .sources import SceneInfo

__all__ = ["PlanetScene", "find", "safe_unzip"]

_MAX_UNPACKED_BYTES = 50 * 10**9  # a large Planet order; a bomb claims far more
_MAX_RATIO = 1000  # deflate rarely beats 1:20 on imagery; 1:1000 is an archive built to explode
_MARKER = ".burnscan-unzipped"


@dataclass(frozen=True)
class PlanetScene:
    """One PlanetScope scene of a delivery folder."""

    files: SceneFiles

    @property
    def scene_id(self) -> str:
        return self.files.scene_id

    def describe(self) -> SceneInfo:
        """Time, satellite and footprint from the metadata (the footprint from the GeoTIFF when absent)."""
        from .load import _read_metadata  # the one parser of Planet metadata

        props = _read_metadata(self.files, {})  # checks the file and the type of every field used here
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
        )

    def load(self, grid: Grid) -> tuple[SceneRecord, Any, Any]:
        return load_planet(self.files, grid)


def find(path: Path, *, extract_to: Path | None = None, **_: Any) -> list[PlanetScene]:
    """Planet scenes in a folder, a single SR GeoTIFF, or a zip (unpacked under ``extract_to``)."""
    path = Path(path)
    if path.is_dir():
        return [PlanetScene(files) for files in planet_scenes_in(path)]
    if path.is_file() and "_AnalyticMS_SR" in path.name and path.suffix.lower() in (".tif", ".tiff"):
        return [PlanetScene(files) for files in planet_scenes_in(path.parent) if files.reflectance == path]
    if path.is_file() and path.suffix.lower() == ".zip":
        if extract_to is None:
            raise SceneError(f"{path}: a zip delivery is unpacked when it is added; run `burnscan add AOI {path}` first")
        return [PlanetScene(files) for files in planet_scenes_in(safe_unzip(path, Path(extract_to)))]
    return []


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be unpacked, or None."""
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    mode = info.external_attr >> 16
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in pure.parts:
        return "climbs out of the folder with '..'"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # zips made on Windows carry no type bits
        return "is not a regular file"
    if info.file_size > _MAX_RATIO * max(info.compress_size, 1) and info.file_size > 10**8:
        return f"unpacks to {info.file_size / 1e9:.1f} GB from {info.compress_size / 1e6:.1f} MB (a zip bomb)"
    return None


def safe_unzip(zip_path: Path, into: Path) -> Path:
    """Unpack ``zip_path`` into ``into/<zip name>/`` after checking every member; return that folder.

    All or nothing: the archive is unpacked into a temporary folder beside the target and
    renamed into place, so a failure leaves nothing half unpacked. Unpacking the same zip
    again returns the existing folder (its SHA-256 is recorded in a marker file).
    """
    zip_path, into = Path(zip_path), Path(into)
    digest = sha256_file(zip_path)
    target = into / zip_path.stem
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
        for info in members:
            problem = _member_problem(info)
            if problem:
                raise SceneError(f"{zip_path}: member {info.filename!r} {problem}; refusing to unpack it, get the delivery from Planet again")
        total = sum(i.file_size for i in members)
        if total > _MAX_UNPACKED_BYTES:
            raise SceneError(f"{zip_path}: unpacks to {total / 1e9:.0f} GB, beyond any delivery; check the file")
        into.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{zip_path.stem}.", suffix=".partial", dir=into))
        try:
            for info in members:
                destination = staging.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if not destination.resolve().is_relative_to(staging.resolve()):
                    raise SceneError(f"{zip_path}: member {info.filename!r} escapes the folder; refusing to unpack it")
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(destination, "xb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
            (staging / _MARKER).write_text(digest + "\n", encoding="utf-8")
            os.rename(staging, target)
        except zipfile.BadZipFile as exc:
            raise SceneError(f"{zip_path}: damaged zip ({exc}); re-download the delivery") from None
        except FileExistsError:
            raise SceneError(f"{zip_path}: member {info.filename!r} appears twice; re-download the delivery") from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target
