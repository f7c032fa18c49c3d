"""Sentinel-2 Level-2A: a STAC item with its band files, or a folder of plain band files.

Facts that decide the reading (ESA, Sentinel-2 L2A product specification):

- Reflectance is stored x 10000. From processing baseline 04.00 (products from 25 January
  2022) the digital numbers also carry ``BOA_ADD_OFFSET = -1000``: reflectance is
  ``(DN - 1000) / 10000``. Items that state ``raster:bands`` scale and offset are read with
  those; a harmonised item (``earthsearch:boa_offset_applied``) has no offset left. DN 0 is
  no data.
- The scene classification (SCL, 20 m) says which pixels show the ground. Dark area pixels
  (class 2) stay observed: burn scars are dark, and Sen2Cor puts some of them there.
- SWIR bands and SCL are 20 m: they are warped onto the analysis grid bilinearly (SCL by
  nearest neighbour) from their own georeferencing, pixel centre to pixel centre.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import shape

from .errors import SceneError
from .grid import Grid
from .load import _MAX_METADATA_BYTES, SceneRecord, _short, file_footprint, read_band, sha256_file
from .names import derived_name
from .sources import SceneInfo

__all__ = ["Sentinel2Scene", "find", "scl_clear", "reflectance_scaling"]

# Canonical band name -> (Earth Search v1 asset key, old asset key / band file name).
_BANDS = {"blue": ("blue", "B02"), "green": ("green", "B03"), "red": ("red", "B04"), "nir": ("nir", "B08"),
          "swir16": ("swir16", "B11"), "swir22": ("swir22", "B12")}
_SCL_KEYS = ("scl", "SCL")
_REQUIRED = ("red", "nir")  # what every burn index needs; the others are used when present
_SCL_OBSERVED = (2, 4, 5, 6, 7)  # dark area, vegetation, not vegetated, water, unclassified
_OFFSET_BASELINE = (4, 0)


def scl_clear(scl: np.ndarray) -> np.ndarray:
    """True where the L2A scene classification shows the ground.

    ====  =====================  ========
    SCL   class                  clear?
    ====  =====================  ========
    0     no data                no
    1     saturated / defective  no
    2     dark area pixels       yes (burn scars can be classed here)
    3     cloud shadow           no
    4, 5  vegetation, bare       yes
    6, 7  water, unclassified    yes
    8, 9  cloud medium / high    no
    10    thin cirrus            no
    11    snow or ice            no
    ====  =====================  ========

    >>> scl_clear(np.array([0, 2, 3, 4, 5, 8, 10, 11])).tolist()
    [False, True, False, True, True, False, False, False]
    """
    return np.isin(np.nan_to_num(scl, nan=0).astype(np.int64), _SCL_OBSERVED)


def _baseline(text: Any) -> tuple[int, int] | None:
    match = re.match(r"^\s*(\d+)\.(\d+)", str(text or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def reflectance_scaling(properties: dict[str, Any], asset: dict[str, Any] | None = None) -> tuple[float, float]:
    """``(scale, offset)`` with reflectance = DN * scale + offset, from what the item states.

    >>> reflectance_scaling({"s2:processing_baseline": "02.14"})
    (0.0001, 0.0)
    >>> reflectance_scaling({"s2:processing_baseline": "05.09"})
    (0.0001, -0.1)
    >>> reflectance_scaling({"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True})
    (0.0001, 0.0)
    """
    bands = (asset or {}).get("raster:bands") or []
    if bands and isinstance(bands[0], dict) and "scale" in bands[0]:
        return float(bands[0]["scale"]), float(bands[0].get("offset", 0.0))
    if properties.get("earthsearch:boa_offset_applied"):
        return 1e-4, 0.0
    baseline = _baseline(properties.get("s2:processing_baseline") or properties.get("processing_baseline"))
    if baseline is not None and baseline >= _OFFSET_BASELINE:
        return 1e-4, float(properties.get("boa_add_offset", -1000)) * 1e-4
    return 1e-4, 0.0


def _read_json(path: Path) -> dict:
    if path.stat().st_size > _MAX_METADATA_BYTES:
        raise SceneError(f"{path}: metadata file is {path.stat().st_size / 1e6:.0f} MB, an item is tens of kB; replace it")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SceneError(f"{path}: not a valid STAC item ({_short(exc)}); re-download it") from None
    if not isinstance(doc, dict):
        raise SceneError(f"{path}: not a STAC item (a JSON object is expected); re-download it")
    return doc


def _local(href: str, item_dir: Path, fallback: str) -> Path | None:
    """A local file for an asset href: the path itself, else a file of that name (or the band's) beside the item."""
    if not re.match(r"^[a-z][a-z0-9+.-]*://", href):
        candidate = Path(href) if Path(href).is_absolute() else item_dir / href
        if candidate.is_file():
            return candidate
    for name in (Path(href.split("?")[0]).name, f"{fallback}.tif", f"{fallback}.TIF", f"{fallback}.jp2"):
        if name and (item_dir / name).is_file():
            return item_dir / name
    return None


@dataclass(frozen=True)
class Sentinel2Scene:
    """One L2A scene: its band files, SCL, time and scaling."""

    scene_id: str
    acquired: datetime
    platform: str
    bands: dict[str, Path]
    scl: Path | None
    scaling: tuple[float, float]
    metadata: Path | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def _files(self) -> dict[str, Path]:
        files = dict(self.bands)
        if self.scl is not None:
            files["scl"] = self.scl
        if self.metadata is not None:
            files["metadata"] = self.metadata
        return files

    def describe(self) -> SceneInfo:
        geometry = self.properties.get("_geometry")
        footprint = shape(geometry) if geometry else file_footprint(self.bands.get("red") or next(iter(self.bands.values())))
        keep = {k: v for k, v in self.properties.items() if not k.startswith("_")}
        return SceneInfo(scene_id=self.scene_id, kind="sentinel2", acquired=self.acquired, sensor=f"{self.platform} MSI",
                         satellite_id=self.platform, footprint=footprint, files=self._files(), bands=tuple(self.bands),
                         properties=keep | {"scale": self.scaling[0], "offset": self.scaling[1]})

    def load(self, grid: Grid) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
        scale, offset = self.scaling
        stack = []
        for name, path in self.bands.items():
            dn = read_band(path, grid)
            dn[dn <= 0] = np.nan  # DN 0 is no data
            stack.append(dn * scale + offset)
        reflectance = np.stack(stack).astype(np.float32)
        clear = np.all(np.isfinite(reflectance), axis=0)
        if self.scl is not None:
            clear &= scl_clear(read_band(self.scl, grid, categorical=True))
        files = self._files()
        record = SceneRecord(
            scene_id=self.scene_id, acquired=self.acquired, satellite_id=self.platform, sensor=f"{self.platform} MSI",
            simulated=False, bands=tuple(self.bands), files={k: str(p) for k, p in files.items()},
            sha256={k: sha256_file(p) for k, p in files.items()},
            sun_elevation=self.properties.get("view:sun_elevation"), sun_azimuth=self.properties.get("view:sun_azimuth"),
        )
        return record, reflectance, clear


def _time(text: Any, where: Path) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise SceneError(f"{where}: acquisition time {text!r} is not ISO 8601; fix the metadata") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _from_item(path: Path) -> Sentinel2Scene | None:
    doc = _read_json(path)
    props, assets = doc.get("properties") or {}, doc.get("assets") or {}
    platform = str(props.get("platform", ""))
    if doc.get("type") != "Feature" or not (platform.lower().startswith("sentinel-2") or "s2:processing_baseline" in props):
        return None
    if not props.get("datetime"):
        raise SceneError(f"{path}: STAC item has no datetime; re-download the item")
    bands: dict[str, Path] = {}
    scaling = None
    for name, keys in _BANDS.items():
        key = next((k for k in keys if k in assets), None)
        if key is None:
            continue
        local = _local(str(assets[key].get("href", "")), path.parent, keys[1])
        if local is None:
            if name in _REQUIRED:
                raise SceneError(f"{path}: asset {key} ({assets[key].get('href')}) is not on this disk; "
                                 f"fetch it (burnscan fetch) or put {keys[1]}.tif beside the item")
            continue  # an optional band that was not downloaded
        bands[name] = local
        scaling = scaling or reflectance_scaling(props, assets[key])
    scl_key = next((k for k in _SCL_KEYS if k in assets), None)
    scl = _local(str(assets[scl_key].get("href", "")), path.parent, "SCL") if scl_key else None
    keep = ("eo:cloud_cover", "s2:processing_baseline", "view:sun_elevation", "view:sun_azimuth", "s2:product_uri", "grid:code")
    # The provider's id is kept as it is (checked where it becomes a file name); a name made from the file's is made safe.
    return Sentinel2Scene(scene_id=str(doc.get("id") or derived_name(path.stem)), acquired=_time(props["datetime"], path),
                          platform=platform or "sentinel-2", bands=bands, scl=scl, scaling=scaling or (1e-4, 0.0), metadata=path,
                          properties={k: props[k] for k in keep if k in props} | {"_geometry": doc.get("geometry")})


_BAND_FILE = re.compile(r"(?:^|_)(B0[2348]|B1[12]|SCL)(?:_\d+m)?\.(?:tif|tiff|jp2)$", re.IGNORECASE)


def _from_band_files(folder: Path) -> Sentinel2Scene | None:
    files = {m.group(1).upper(): p for p in sorted(folder.iterdir()) if p.is_file() and (m := _BAND_FILE.search(p.name))}
    if "B04" not in files or "B08" not in files:
        return None
    metadata = next(iter(sorted(folder.glob("MTD_MSIL2A*.xml"))), None)
    props: dict[str, Any] = {}
    acquired = None
    if metadata is not None:
        if metadata.stat().st_size > _MAX_METADATA_BYTES:
            raise SceneError(f"{metadata}: metadata file is too large to be an MTD_MSIL2A.xml; replace it")
        try:
            root = ET.parse(metadata).getroot()
        except ET.ParseError as exc:
            raise SceneError(f"{metadata}: not valid XML ({_short(exc)}); re-download the product") from None
        for element in root.iter():
            tag, text = element.tag.rsplit("}", 1)[-1], (element.text or "").strip()
            if tag == "PRODUCT_START_TIME" and text:
                acquired = _time(text, metadata)
            elif tag == "PROCESSING_BASELINE" and text:
                props["s2:processing_baseline"] = text
            elif tag == "BOA_ADD_OFFSET" and text:
                props["boa_add_offset"] = float(text)
            elif tag == "SPACECRAFT_NAME" and text:
                props["platform"] = text.lower()
    if acquired is None:
        match = next((m for p in files.values() if (m := re.search(r"(20\d{6}T\d{6})", p.name))), None)
        if match is None:
            raise SceneError(f"{folder}: Sentinel-2 band files without an acquisition time (no MTD_MSIL2A.xml, no date in the "
                             f"names); put the product's MTD_MSIL2A.xml or STAC item beside them")
        acquired = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    bands = {name: files[keys[1]] for name, keys in _BANDS.items() if keys[1] in files}
    return Sentinel2Scene(scene_id=f"S2-{derived_name(folder.name)}-{acquired:%Y%m%dT%H%M%S}", acquired=acquired,
                          platform=str(props.pop("platform", "sentinel-2")), bands=bands, scl=files.get("SCL"),
                          scaling=reflectance_scaling(props), metadata=metadata, properties=props)


def find(path: Path, **_: Any) -> list[Sentinel2Scene]:
    """Sentinel-2 L2A scenes in ``path``: STAC item JSON files, or one folder of band files."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".json":
        scene = _from_item(path)
        return [scene] if scene else []
    if not path.is_dir():
        return []
    scenes = []
    for item in sorted(path.rglob("*.json")):
        if item.name.endswith("_metadata.json") or item.name in ("catalog.json", "collection.json"):
            continue
        try:
            _read_json(item)
        except SceneError:
            continue  # some other file that is not an item; an item given by name is checked in full
        scene = _from_item(item)
        if scene is not None:
            scenes.append(scene)
    if scenes:
        return scenes
    found = [s for folder in [path, *sorted(p for p in path.rglob("*") if p.is_dir())] if (s := _from_band_files(folder))]
    return found
