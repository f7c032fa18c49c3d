"""Landsat 4-9 Collection 2 Level-2: ``*_SR_B*.TIF`` bands, ``*_QA_PIXEL.TIF`` and the MTL.

Facts that decide the reading (USGS, Landsat Collection 2 Level-2 Science Product Guide):

- Surface reflectance = DN x 2.75e-05 - 0.2 (the MTL's ``REFLECTANCE_MULT_BAND_n`` and
  ``REFLECTANCE_ADD_BAND_n`` are read when present); DN 0 is fill.
- Band numbers differ by instrument: OLI (Landsat 8, 9) has blue in B2 ... SWIR 2 in B7;
  TM and ETM+ (Landsat 4, 5, 7) have blue in B1, NIR in B4, SWIR 1 in B5, SWIR 2 in B7.
- ``QA_PIXEL`` bits: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow,
  6 clear, 7 water. A pixel shows the ground when it is not fill and none of bits 1-5 is set.
- The acquisition time is ``DATE_ACQUIRED`` + ``SCENE_CENTER_TIME`` (UTC).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import SceneError
from pipeline.grid import Grid
from pipeline.readers.rasters import MAX_METADATA_BYTES, short, check_regular_file, check_time, field_error, field_number, file_footprint, pixel_size_m, read_band, sha256_file
from pipeline.model import SceneRecord
from pipeline.model import SceneInfo

__all__ = ["LandsatScene", "find", "qa_pixel_clear"]

_OLI = {"blue": 2, "green": 3, "red": 4, "nir": 5, "swir16": 6, "swir22": 7}
_TM = {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir16": 5, "swir22": 7}
_NOT_GROUND_BITS = 0b111110  # dilated cloud, cirrus, cloud, cloud shadow, snow
_REQUIRED = ("red", "nir")
_MTL_FIX = "re-download the product's MTL file from USGS"


def qa_pixel_clear(qa: np.ndarray) -> np.ndarray:
    """True where ``QA_PIXEL`` shows the ground: not fill (bit 0), no cloud, cirrus, shadow or snow (bits 1-5).

    >>> qa_pixel_clear(np.array([1, 21824, 21762, 22280, 23826, 0])).tolist()  # fill, clear, dilated, cloud, shadow, no flag
    [False, True, False, False, False, True]
    """
    finite = np.isfinite(qa)
    bits = np.where(finite, qa, 1).astype(np.int64)
    return finite & (bits & 1 == 0) & (bits & _NOT_GROUND_BITS == 0)


def _mtl(path: Path) -> dict[str, Any]:
    """The MTL as one flat dict (JSON layout, or the key = value text layout)."""
    check_regular_file(path)
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise SceneError(f"{path}: metadata file is {path.stat().st_size / 1e6:.0f} MB, an MTL is tens of kB; replace it")
    text = path.read_text(encoding="utf-8", errors="replace")
    flat: dict[str, Any] = {}
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise SceneError(f"{path}: MTL is not valid JSON ({short(exc)}); re-download it") from None

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value) if isinstance(value, dict) else flat.setdefault(key, value)

        walk(doc)
    else:
        for line in text.splitlines():
            if "=" in line:
                key, value = (part.strip() for part in line.split("=", 1))
                flat.setdefault(key, value.strip('"'))
    return flat


@dataclass(frozen=True)
class LandsatScene:
    """One Collection 2 Level-2 scene."""

    scene_id: str
    mtl: Path
    bands: dict[str, Path]
    qa_pixel: Path | None
    meta: dict[str, Any]

    @property
    def acquired(self) -> datetime:
        date, clock = self.meta.get("DATE_ACQUIRED"), self.meta.get("SCENE_CENTER_TIME", "00:00:00Z")
        if not date:
            raise SceneError(f"{self.mtl}: no DATE_ACQUIRED in the MTL; re-download the product's MTL file")
        for name, value in (("DATE_ACQUIRED", date), ("SCENE_CENTER_TIME", clock)):
            if not isinstance(value, str):
                raise field_error(self.mtl, name, value, "a string", _MTL_FIX)
        clock = re.sub(r"(\.\d{6})\d*", r"\1", clock.rstrip("Z"))  # USGS writes 7 decimals of seconds
        try:
            when = datetime.fromisoformat(f"{date}T{clock}").replace(tzinfo=timezone.utc)
        except ValueError:
            raise SceneError(f"{self.mtl}: acquisition time {date} {clock} is not readable; fix the MTL") from None
        return check_time(when, sensor=self.spacecraft or "landsat", where=self.mtl)

    @property
    def time_of_day_known(self) -> bool:
        """False for an MTL without ``SCENE_CENTER_TIME``: its date stands at 00:00 UTC, a time nobody observed."""
        return "SCENE_CENTER_TIME" in self.meta

    @property
    def spacecraft(self) -> str:
        """``SPACECRAFT_ID`` (``LANDSAT_8``...), empty when the MTL has none."""
        value = self.meta.get("SPACECRAFT_ID", "")
        if not isinstance(value, str):
            raise field_error(self.mtl, "SPACECRAFT_ID", value, "a string such as LANDSAT_8", _MTL_FIX)
        return value

    def _number(self, key: str, default: float | None) -> float | None:
        """A numeric MTL value (written as text in both layouts), ``default`` when absent."""
        return default if key not in self.meta else field_number(self.mtl, key, self.meta[key], _MTL_FIX)

    def _scaling(self, name: str, number: int) -> tuple[float, float]:
        mult = self._number(f"REFLECTANCE_MULT_BAND_{number}", 2.75e-05)
        add = self._number(f"REFLECTANCE_ADD_BAND_{number}", -0.2)
        return mult, add

    def _files(self) -> dict[str, Path]:
        files = dict(self.bands)
        if self.qa_pixel is not None:
            files["qa_pixel"] = self.qa_pixel
        files["mtl"] = self.mtl
        return files

    @property
    def sensor(self) -> str:
        instrument = self.meta.get("SENSOR_ID", "")
        if not isinstance(instrument, str):
            raise field_error(self.mtl, "SENSOR_ID", instrument, "a string such as OLI_TIRS", _MTL_FIX)
        return f"{(self.spacecraft or 'LANDSAT').replace('_', ' ').title()} {instrument}".strip()

    def describe(self) -> SceneInfo:
        keep = {k.lower(): self.meta[k] for k in ("CLOUD_COVER", "WRS_PATH", "WRS_ROW", "LANDSAT_PRODUCT_ID") if k in self.meta}
        return SceneInfo(scene_id=self.scene_id, kind="landsat", acquired=self.acquired, sensor=self.sensor,
                         satellite_id=self.spacecraft or "unknown",
                         footprint=file_footprint(self.bands.get("red") or next(iter(self.bands.values()))),
                         files=self._files(), bands=tuple(self.bands), properties=keep,
                         time_of_day_known=self.time_of_day_known,
                         pixel_m={name: pixel_size_m(path) for name, path in self.bands.items()})

    def load(self, grid: Grid) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
        numbers = _OLI if self.spacecraft.upper() in ("LANDSAT_8", "LANDSAT_9") else _TM
        stack = []
        for name, path in self.bands.items():
            dn = read_band(path, grid)
            dn[dn <= 0] = np.nan  # fill
            mult, add = self._scaling(name, numbers[name])
            stack.append(dn * mult + add)
        reflectance = np.stack(stack).astype(np.float32)
        clear = np.all(np.isfinite(reflectance), axis=0)
        if self.qa_pixel is not None:
            clear &= qa_pixel_clear(read_band(self.qa_pixel, grid, categorical=True))
        files = self._files()
        record = SceneRecord(
            scene_id=self.scene_id, acquired=self.acquired, satellite_id=self.spacecraft or "unknown",
            sensor=self.sensor, simulated=False, bands=tuple(self.bands), files={k: str(p) for k, p in files.items()},
            sha256={k: sha256_file(p) for k, p in files.items()},
            sun_elevation=self._number("SUN_ELEVATION", None), sun_azimuth=self._number("SUN_AZIMUTH", None),
            time_of_day_known=self.time_of_day_known,
        )
        return record, reflectance, clear


def _scene(mtl_path: Path) -> LandsatScene | None:
    product = mtl_path.name.rsplit("_MTL", 1)[0]
    meta = _mtl(mtl_path)
    if not isinstance(meta.get("SPACECRAFT_ID", ""), str):
        raise field_error(mtl_path, "SPACECRAFT_ID", meta["SPACECRAFT_ID"], "a string such as LANDSAT_8", _MTL_FIX)
    spacecraft = meta.get("SPACECRAFT_ID", "").upper()
    if not spacecraft.startswith("LANDSAT") and not product.startswith(("LC0", "LE0", "LT0")):
        return None
    numbers = _OLI if spacecraft in ("LANDSAT_8", "LANDSAT_9") or product.startswith(("LC08", "LC09")) else _TM
    folder = mtl_path.parent
    bands = {}
    for name, number in numbers.items():
        matches = sorted(folder.glob(f"{product}_SR_B{number}.TIF")) + sorted(folder.glob(f"{product}_SR_B{number}.tif"))
        if matches:
            bands[name] = matches[0]
    if not bands:
        return None
    missing = [b for b in _REQUIRED if b not in bands]
    if missing:
        raise SceneError(f"{mtl_path}: no {', '.join(missing)} band file ({product}_SR_B*.TIF) beside the MTL; download the SR bands")
    qa = next(iter(sorted(folder.glob(f"{product}_QA_PIXEL.TIF")) + sorted(folder.glob(f"{product}_QA_PIXEL.tif"))), None)
    return LandsatScene(scene_id=product, mtl=mtl_path, bands=bands, qa_pixel=qa, meta=meta)


def find(path: Path, **_: Any) -> list[LandsatScene]:
    """Landsat C2 L2 scenes in ``path`` (a folder, or an MTL file)."""
    path = Path(path)
    if path.is_file():
        mtls = [path] if re.search(r"_MTL\.(json|txt)$", path.name, re.IGNORECASE) else []
    elif path.is_dir():
        mtls = sorted(p for p in path.rglob("*_MTL.*") if p.suffix.lower() in (".json", ".txt"))
        # one MTL per product: prefer the JSON when both are delivered
        by_product: dict[str, Path] = {}
        for p in mtls:
            key = str(p.parent / p.name.rsplit("_MTL", 1)[0])
            if key not in by_product or p.suffix.lower() == ".json":
                by_product[key] = p
        mtls = list(by_product.values())
    else:
        return []
    return [scene for p in mtls if (scene := _scene(p)) is not None]
