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

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import SceneError
from pipeline.grid import Grid
from pipeline.readers.rasters import MAX_METADATA_BYTES, stated_time, short, check_regular_file, check_time, field_error, field_number, in_system_folder, is_regular_file, metadata_footprint, pixel_size_m, read_band, sha256_file
from pipeline.model import SceneRecord
from pipeline.names import derived_name, safe_name
from pipeline.model import SceneInfo
from pipeline.readers.stacio import LocalStacIO, item_from_dict

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
    """The item file as a JSON object, read like every STAC file (local, regular, of an item's size)."""
    return LocalStacIO(what="STAC item", fix="re-download it").read_json(path)


def _local(href: str, item_dir: Path, fallback: str) -> Path | None:
    """A local file for an asset href: the path itself, else a file of that name (or the band's) beside the item."""
    if not re.match(r"^[a-z][a-z0-9+.-]*://", href):
        candidate = Path(href) if Path(href).is_absolute() else item_dir / href
        if is_regular_file(candidate) and not in_system_folder(candidate):
            return candidate
    for name in (Path(href.split("?")[0]).name, f"{fallback}.tif", f"{fallback}.TIF", f"{fallback}.jp2"):
        if name and is_regular_file(item_dir / name):
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
    time_source: str = "metadata"
    """``file-name`` for band files whose time is read from the product name they carry (no MTD_MSIL2A.xml)."""

    def _files(self) -> dict[str, Path]:
        files = dict(self.bands)
        if self.scl is not None:
            files["scl"] = self.scl
        if self.metadata is not None:
            files["metadata"] = self.metadata
        return files

    def describe(self) -> SceneInfo:
        footprint, fallback = metadata_footprint(self.properties.get("_geometry"),
                                                 self.bands.get("red") or next(iter(self.bands.values())))
        keep = {k: v for k, v in self.properties.items() if not k.startswith("_")}
        return SceneInfo(scene_id=self.scene_id, kind="sentinel2", acquired=self.acquired, sensor=f"{self.platform} MSI",
                         satellite_id=self.platform, footprint=footprint, files=self._files(), bands=tuple(self.bands),
                         properties=keep | {"scale": self.scaling[0], "offset": self.scaling[1]}
                         | ({"footprint": fallback} if fallback else {}),
                         pixel_m={name: pixel_size_m(path) for name, path in self.bands.items()}, time_source=self.time_source)

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
            time_source=self.time_source, band_pixel_m={name: pixel_size_m(path) for name, path in self.bands.items()},
        )
        return record, reflectance, clear


def _time(text: Any, where: Path, platform: str) -> datetime:
    try:
        when = stated_time(text)
    except ValueError as exc:
        raise SceneError(f"{where}: acquisition time {text!r} {exc}; fix the metadata") from None
    return check_time(when, sensor=platform, where=where).astimezone(timezone.utc)


_ITEM_FIX = "re-download the STAC item"


def _stated_scaling(path: Path, key: str, asset: dict[str, Any]) -> None:
    """Check an asset's ``raster:bands``: a list of objects whose scale and offset are numbers."""
    bands = asset.get("raster:bands")
    if bands is None:
        return
    if not isinstance(bands, list) or not all(isinstance(b, dict) for b in bands):
        raise field_error(path, f"assets.{key}.raster:bands", bands, "a list of objects", _ITEM_FIX)
    for i, band in enumerate(bands):
        for name in ("scale", "offset"):
            if name in band:
                field_number(path, f"assets.{key}.raster:bands[{i}].{name}", band[name], _ITEM_FIX)


def _from_item(path: Path, *, given: bool = False) -> Sentinel2Scene | None:
    """The scene of a STAC item; ``None`` for JSON that is not a Sentinel-2 item.

    Every field read is checked for its type. A malformed item is refused in one line when it
    was ``given`` by name or says it is STAC (``stac_version``); other JSON met while walking a
    folder (a GeoJSON outline, say) is passed over.
    """
    doc = _read_json(path)
    if doc.get("type") != "Feature":
        return None
    props, assets = doc.get("properties"), doc.get("assets")
    if not isinstance(props, dict):
        if given or "stac_version" in doc:
            raise field_error(path, "properties", props, "an object", _ITEM_FIX)
        return None
    platform = props.get("platform", "")
    if not isinstance(platform, str):
        raise field_error(path, "properties.platform", platform, "a string", _ITEM_FIX)
    if not (platform.lower().startswith("sentinel-2") or "s2:processing_baseline" in props):
        return None
    if not isinstance(assets, dict):
        raise field_error(path, "assets", assets, "an object", _ITEM_FIX)
    if not props.get("datetime"):
        raise SceneError(f"{path}: STAC item has no datetime; re-download the item")
    if not isinstance(props["datetime"], str):
        raise field_error(path, "properties.datetime", props["datetime"], "an ISO 8601 string", _ITEM_FIX)
    # The provider's id is evidence: kept as given, refused when it could not name a file (it names
    # catalogue items); an item without one is named after its file, made safe.
    item_id = safe_name(doc["id"], what="STAC item id", source=path) if doc.get("id") else derived_name(path.stem)
    if doc.get("geometry") is not None and not isinstance(doc["geometry"], dict):
        raise field_error(path, "geometry", doc["geometry"], "a GeoJSON geometry object", _ITEM_FIX)
    acquired = _time(props["datetime"], path, platform or "sentinel-2")  # ours, not pystac's parse: times stay as they were
    item = item_from_dict({**doc, "id": item_id}, path, fix=_ITEM_FIX)  # every asset an object with a string href
    props, assets = item.properties, item.assets
    for name in ("boa_add_offset", "view:sun_elevation", "view:sun_azimuth"):
        if props.get(name) is not None:
            props[name] = field_number(path, f"properties.{name}", props[name], _ITEM_FIX)
    bands: dict[str, Path] = {}
    scaling = None
    for name, keys in _BANDS.items():
        key = next((k for k in keys if k in assets), None)
        if key is None:
            continue
        asset = assets[key].extra_fields  # raster:bands and the other fields pystac keeps as given
        _stated_scaling(path, key, asset)
        local = _local(assets[key].href, path.parent, keys[1])
        if local is None:
            if name in _REQUIRED:
                raise SceneError(f"{path}: asset {key} ({assets[key].href or None}) is not on this disk; "
                                 f"fetch it (burnscan fetch) or put {keys[1]}.tif beside the item")
            continue  # an optional band that was not downloaded
        bands[name] = local
        scaling = scaling or reflectance_scaling(props, asset)
    missing = [name for name in _REQUIRED if name not in bands]
    if missing:  # no asset under any of the band's keys: nothing to read a burn index from
        raise SceneError(f"{path}: STAC item has no {' or '.join(missing)} asset (keys {', '.join(_BANDS[m][0] for m in missing)} "
                         f"or {', '.join(_BANDS[m][1] for m in missing)}); re-download the item from its catalogue")
    scl_key = next((k for k in _SCL_KEYS if k in assets), None)
    scl = _local(assets[scl_key].href, path.parent, "SCL") if scl_key else None
    keep = ("eo:cloud_cover", "s2:processing_baseline", "view:sun_elevation", "view:sun_azimuth", "s2:product_uri", "grid:code")
    return Sentinel2Scene(scene_id=item_id, acquired=acquired,
                          platform=platform or "sentinel-2", bands=bands, scl=scl, scaling=scaling or (1e-4, 0.0), metadata=path,
                          properties={k: props[k] for k in keep if k in props} | {"_geometry": item.geometry})


_BAND_FILE = re.compile(r"(?:^|_)(B0[2348]|B1[12]|SCL)(?:_\d+m)?\.(?:tif|tiff|jp2)$", re.IGNORECASE)


def _from_band_files(folder: Path) -> Sentinel2Scene | None:
    files = {m.group(1).upper(): p for p in sorted(folder.iterdir()) if p.is_file() and (m := _BAND_FILE.search(p.name))}
    return _from_files(folder, files, next(iter(sorted(folder.glob("MTD_MSIL2A*.xml"))), None))


def _safe_roots(path: Path) -> list[Path]:
    """The ``.SAFE`` products at or under ``path``: ESA's own folder, its ``MTD_MSIL2A.xml`` at the root."""
    candidates = [path, *sorted(p for p in path.rglob("*") if p.is_dir() and p.name.upper().endswith(".SAFE"))]
    return [p for p in candidates if (p / "MTD_MSIL2A.xml").is_file() and (p / "GRANULE").is_dir()]


def _from_safe(root: Path) -> Sentinel2Scene:
    """One L2A ``.SAFE`` product: the band files of its granule at each band's finest resolution (R10m, then R20m,
    then R60m: SWIR and the scene classification are 20 m only), the time, offset and baseline of its root's
    ``MTD_MSIL2A.xml``."""
    granules = sorted(p for p in (root / "GRANULE").glob("*/IMG_DATA") if p.is_dir())
    if len(granules) != 1:
        raise SceneError(f"{root}: a Sentinel-2 .SAFE product with {len(granules)} granules (GRANULE/*/IMG_DATA); give a "
                         f"product of one granule, as ESA delivers L2A, or its STAC item")
    files: dict[str, Path] = {}
    for resolution in ("R10m", "R20m", "R60m"):
        folder = granules[0] / resolution
        if folder.is_dir():
            for file in sorted(folder.iterdir()):
                if file.is_file() and (m := _BAND_FILE.search(file.name)):
                    files.setdefault(m.group(1).upper(), file)
    scene = _from_files(root, files, root / "MTD_MSIL2A.xml")
    if scene is None:
        raise SceneError(f"{root}: a Sentinel-2 .SAFE product without its B04 and B08 band files in "
                         f"GRANULE/*/IMG_DATA/R10m; re-download the product")
    return scene


def _from_files(folder: Path, files: dict[str, Path], metadata: Path | None) -> Sentinel2Scene | None:
    """A scene of the band files ``files`` (by band key) in or under ``folder``, timed by ``metadata`` (an
    ``MTD_MSIL2A.xml``) or by the sensing time in their names."""
    if "B04" not in files or "B08" not in files:
        return None
    props: dict[str, Any] = {}
    acquired = None
    if metadata is not None:
        check_regular_file(metadata)
        if metadata.stat().st_size > MAX_METADATA_BYTES:
            raise SceneError(f"{metadata}: metadata file is too large to be an MTD_MSIL2A.xml; replace it")
        try:
            root = ET.parse(metadata).getroot()
        except ET.ParseError as exc:
            raise SceneError(f"{metadata}: not valid XML ({short(exc)}); re-download the product") from None
        start = None
        for element in root.iter():
            tag, text = element.tag.rsplit("}", 1)[-1], (element.text or "").strip()
            if tag == "PRODUCT_START_TIME" and text:
                start = text
            elif tag == "PROCESSING_BASELINE" and text:
                props["s2:processing_baseline"] = text
            elif tag == "BOA_ADD_OFFSET" and text:
                props["boa_add_offset"] = field_number(metadata, "BOA_ADD_OFFSET", text, "re-download the product's MTD_MSIL2A.xml")
            elif tag == "SPACECRAFT_NAME" and text:
                props["platform"] = text.lower()
        if start is not None:  # read after the platform, which says how old the product can be
            acquired = _time(start, metadata, props.get("platform", "sentinel-2"))
    time_source = "metadata"
    if acquired is None:
        time_source = "file-name"
        match = next((m for p in files.values() if (m := re.search(r"(20\d{6}T\d{6})", p.name))), None)
        if match is None:
            raise SceneError(f"{folder}: Sentinel-2 band files without an acquisition time (no MTD_MSIL2A.xml, no date in the "
                             f"names); put the product's MTD_MSIL2A.xml or STAC item beside them")
        try:
            named = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S")
        except ValueError:
            raise SceneError(f"{folder}: date {match.group(1)} in the band file names is not a date; rename the files or put "
                             f"the product's MTD_MSIL2A.xml beside them") from None
        acquired = check_time(named, sensor=props.get("platform", "sentinel-2"), where=folder)
    bands = {name: files[keys[1]] for name, keys in _BANDS.items() if keys[1] in files}
    # Band files named by ESA's convention carry the datatake's sensing time to the second: the product's
    # own naming, not a guess, but recorded as read from a name.
    return Sentinel2Scene(scene_id=f"S2-{derived_name(folder.name)}-{acquired:%Y%m%dT%H%M%S}", acquired=acquired,
                          platform=str(props.pop("platform", "sentinel-2")), bands=bands, scl=files.get("SCL"),
                          scaling=reflectance_scaling(props), metadata=metadata, properties=props,
                          time_source=time_source)


def find(path: Path, **_: Any) -> list[Sentinel2Scene]:
    """Sentinel-2 L2A scenes in ``path``: STAC item JSON files, or one folder of band files."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".json":
        scene = _from_item(path, given=True)
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
    safes = _safe_roots(path)
    if safes:  # read as products, never their R10m folder alone (which lacks the SWIR, the scene classification and the offset)
        return [_from_safe(root) for root in safes]
    found = [s for folder in [path, *sorted(p for p in path.rglob("*") if p.is_dir())] if (s := _from_band_files(folder))]
    return found
