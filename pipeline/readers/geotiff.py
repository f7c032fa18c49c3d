"""Any GeoTIFF with a band map: the way many shared pre/post pairs and exports come.

The band map names each band in file order (``None`` or ``-`` skips one, e.g. a stored NDVI);
values are divided by ``scale`` (10000 for most surface-reflectance exports). The acquisition
time comes from the caller, else from the file's ``ACQUIRED`` or ``TIFFTAG_DATETIME`` tag, else
from a ``YYYYMMDD`` date in the file name (read as 00:00 UTC, and said so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from pipeline.errors import SceneError
from pipeline.grid import Grid
from pipeline.model import SceneInfo, SceneRecord
from pipeline.readers.rasters import (REQUIRED_BANDS, UNREADABLE, check_overlap, check_regular_file, check_time, file_footprint,
                                      pixel_size_m, sha256_file, short, warp_float)
from pipeline.names import derived_name

__all__ = ["GeoTiffScene", "parse_band_map"]


def parse_band_map(text: str) -> list[str | None]:
    """``"blue,green,red,nir,-,swir22"`` -> names in file order, ``None`` for skipped bands.

    >>> parse_band_map("blue, green,red,nir,-")
    ['blue', 'green', 'red', 'nir', None]
    """
    names = [part.strip().lower() for part in text.split(",")]
    return [None if name in ("", "-", "none", "skip") else name for name in names]


def _file_time(path: Path) -> tuple[datetime, str]:
    """Acquisition time of a plain GeoTIFF and where it was read from (checked: not in the future,
    not before Landsat 1)."""
    when, source = _stated_time(path)
    return check_time(when, sensor="geotiff", where=f"{path} ({source})"), source


def _stated_time(path: Path) -> tuple[datetime, str]:
    check_regular_file(path)
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    for key, fmt in (("ACQUIRED", None), ("TIFFTAG_DATETIME", "%Y:%m:%d %H:%M:%S")):
        if key in tags:
            try:
                when = datetime.strptime(tags[key], fmt) if fmt else datetime.fromisoformat(tags[key].replace("Z", "+00:00"))
            except ValueError:
                continue
            return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)), f"tag {key}"
    match = re.search(r"(?<!\d)(19|20)(\d{2})(\d{2})(\d{2})(?!\d)", path.name)
    if match:
        try:
            return datetime.strptime("".join(match.groups()), "%Y%m%d").replace(tzinfo=timezone.utc), "date in file name (time unknown)"
        except ValueError:
            pass
    raise SceneError(f"{path}: no acquisition time (no ACQUIRED tag, no date in the name); give it with --acquired")


@dataclass(frozen=True)
class GeoTiffScene:
    """A plain GeoTIFF and the names of its bands."""

    path: Path
    bands: tuple[str | None, ...] | list[str | None]
    acquired: datetime | None = None
    scale: float = 10000.0

    @property
    def scene_id(self) -> str:
        """File name (made safe as a file name) and acquisition time: exports of two dates often share a name."""
        return f"{derived_name(Path(self.path).stem)}-{self._time()[0].astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"

    def _time(self) -> tuple[datetime, str]:
        if self.acquired is not None:
            return check_time(self.acquired, sensor="geotiff", where=f"{self.path} (time given)"), "given"
        return _file_time(Path(self.path))

    def describe(self) -> SceneInfo:
        when, source = self._time()
        return SceneInfo(scene_id=self.scene_id, kind="geotiff", acquired=when.astimezone(timezone.utc), sensor="unknown",
                         satellite_id="unknown", footprint=file_footprint(Path(self.path)), files={"reflectance": Path(self.path)},
                         bands=tuple(b for b in self.bands if b), properties={"band_map": list(self.bands), "scale": self.scale,
                                                                               "time_from": source},
                         pixel_m=dict.fromkeys((b for b in self.bands if b), pixel_size_m(Path(self.path))))

    def load(self, grid: Grid) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
        when, _ = self._time()
        return load_geotiff(Path(self.path), bands=list(self.bands), grid=grid, acquired=when, scene_id=self.scene_id, scale=self.scale)


def find(path: Path, *, bands: Any = None, acquired: datetime | None = None, **_: Any) -> list[GeoTiffScene]:
    """With a band map: a plain GeoTIFF, or each GeoTIFF directly in a folder (one scene each, in name
    order, all with that band map); nothing otherwise.

    A folder's files each need their own time (a tag or a date in the name): one ``acquired`` for
    all of them would make them one acquisition, which the stack refuses.
    """
    path = Path(path)
    if not bands:
        return []
    band_map = parse_band_map(bands) if isinstance(bands, str) else list(bands)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff") and not p.name.startswith("."))
        return [GeoTiffScene(p, bands=band_map, acquired=acquired) for p in files]
    if not path.is_file() or path.suffix.lower() not in (".tif", ".tiff"):
        return []
    return [GeoTiffScene(path, bands=band_map, acquired=acquired)]


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
            check_overlap(src, grid, path)
            if len(bands) != src.count:
                raise SceneError(f"{path}: band map names {len(bands)} bands but the file has {src.count}; give one name per band")
            wanted = [name for name in bands if name]
            missing = [b for b in REQUIRED_BANDS if b not in wanted]
            if missing:
                raise SceneError(f"{path}: band map lacks {', '.join(missing)}; name the file's NIR, red and green bands")
            raw = warp_float(src, grid)
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
