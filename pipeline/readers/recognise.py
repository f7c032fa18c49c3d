"""Where scenes come from: one reader per delivery format, one contract for all of them.

Investigators hold imagery in a few shapes: Planet deliveries (folder or zip), Sentinel-2
L2A (STAC item or plain band files), Landsat Collection 2 Level-2, and plain GeoTIFFs with a
band map. Each reader turns its shape into a :class:`SceneSource`, which can

- ``describe()`` itself without reading pixels (for the catalogue: time, sensor, footprint,
  every file it will read), and
- ``load(grid)`` itself onto an analysis grid as ``(SceneRecord, reflectance, clear)``:
  reflectance (band, y, x) float32 in 0..1 with NaN where not observed, ``clear`` (y, x)
  True where the ground was seen (valid, no cloud, shadow, snow). Band names are the
  canonical ones: ``blue, green, red, nir, swir16, swir22`` (plus sensor extras).

:func:`recognise` finds the sources in a path; :func:`load_sources` stacks them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import xarray as xr

from pipeline.errors import SceneError
from pipeline.grid import Grid
from pipeline.model import SceneRecord
from pipeline.progress import counted
from pipeline.readers import SceneSource
from pipeline.readers.rasters import in_system_folder, stack_scenes

__all__ = ["load_sources", "recognise"]

logger = logging.getLogger(__name__)


def load_sources(sources: list[SceneSource], grid: Grid) -> tuple[xr.Dataset, list[SceneRecord]]:
    """Load every source onto ``grid`` and stack them in time order (see :func:`pipeline.readers.rasters.stack_scenes`)."""
    if not sources:
        raise SceneError("no scene to load; add scenes to the AOI (burnscan add) or give --scenes")
    return stack_scenes([s.load(grid) for s in counted(sources, "scenes loaded", logger=logger, label=lambda s: s.scene_id)], grid)


def _shown_name(name: str) -> str:
    r"""A file name as its bytes, escaped where they are not UTF-8: ``x\xff\xfe.tif``."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def _not_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # Python keeps undecodable bytes of a name as lone surrogates
        return True
    return False


def _check_names(path: Path) -> None:
    """Refuse ``path``, or any file or folder under it, whose name is not valid UTF-8.

    GDAL, the catalogue and the manifest all take a name as UTF-8 text: such a name ended in
    a ``UnicodeEncodeError`` deep inside a reader. Refused here, before any reader walks the
    folder, it is one line naming the folder and the name, bytes escaped.
    """
    fix = "rename it with a UTF-8 name (e.g. mv it to a plain ASCII name)"
    if _not_utf8(str(path)):
        raise SceneError(f"{_shown_name(str(path))}: the name is not valid UTF-8; {fix}")
    if not path.is_dir():
        return
    for folder, dirs, files in os.walk(path):
        for name in sorted(dirs + files):
            if _not_utf8(name):
                kind = "folder" if name in dirs else "file"
                raise SceneError(f"{folder}: holds a {kind} whose name is not valid UTF-8 ({_shown_name(name)}); {fix}")


def recognise(path: Path, **options: Any) -> list[SceneSource]:
    """Every scene in ``path`` (a folder, a zip, a STAC item, a GeoTIFF), whatever its shape.

    ``options`` go to readers that need them: ``bands`` (a band map for plain GeoTIFFs),
    ``acquired`` (their acquisition time) and ``extract_to`` (where a zip is unpacked).
    """
    from pipeline.readers import geotiff
    from pipeline.readers import landsat
    from pipeline.readers import planet
    from pipeline.readers import sentinel2

    path = Path(path)
    if in_system_folder(path):
        raise SceneError(f"{path}: lies in /proc, /sys or /dev, the system's own files, not scenes; give a folder of scenes")
    if not path.exists():
        raise SceneError(f"{path}: no such file or folder; give the path of a scene, a delivery folder or a zip")
    _check_names(path)
    # A band map names a plain GeoTIFF's bands: a file given with one is read as one; a folder is
    # still a sensor's delivery first (a Planet folder's SR file must not lose its UDM2 and metadata),
    # and its GeoTIFFs one scene each only when no sensor reader knows it.
    sensors = (planet, sentinel2, landsat)
    readers = (sensors if not options.get("bands") else (geotiff, *sensors) if path.is_file() else (*sensors, geotiff))
    for reader in readers:
        found = reader.find(path, **options)
        if found:
            return list(found)
    linked = _linked_folders(path)
    hint = (f"; it holds {len(linked)} link(s) to a folder ({', '.join(linked[:3])}), which are not followed: give the "
            f"linked folder itself" if linked else "; check the path")
    raise SceneError(
        f"{path}: no scene recognised (Planet *_AnalyticMS_SR*.tif, Sentinel-2 STAC item or B*.tif band files, "
        f"Landsat *_SR_B*.TIF with MTL, or a GeoTIFF with --bands){hint}"
    )


def _linked_folders(path: Path) -> list[str]:
    """Names (relative to ``path``) of the links to folders under it: the walk does not follow them,
    so a folder of linked deliveries reads as empty."""
    if not path.is_dir():
        return []
    found = []
    for folder, dirs, _ in os.walk(path):
        found += [os.path.relpath(os.path.join(folder, d), path) for d in sorted(dirs) if os.path.islink(os.path.join(folder, d))]
    return found
