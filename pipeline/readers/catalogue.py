"""The scene catalogue of an AOI: a STAC catalogue of every scene registered for it.

``burnscan add ogota PATH...`` recognises each scene (:func:`pipeline.readers.recognise.recognise`),
checks that it overlaps the AOI and loads it once onto the AOI to measure how much of the AOI
it shows clear; the catalogue then records the scene's time, sensor, footprint, that clear
fraction, and the SHA-256 of every file. Files stay where they are (zips are unpacked once
under ``<data>/<aoi>/deliveries/``); the catalogue points to them and refuses a file whose
bytes changed since it was added.

Layout: ``<data>/<aoi>/catalog/catalog.json`` and one ``items/<id>.json`` per scene, plain
STAC 1.x read and written by pystac through :class:`~pipeline.readers.stacio.LocalStacIO`
(local files inside the catalogue's folder only, never a pipe, a device or a URL). Every file is written atomically, items before the catalogue
that lists them, so a crash mid-update leaves the catalogue as it was before the update. An
update holds the catalogue's lock from reading it to writing it back, so two ``add`` commands
at once both land. Item ids become file names: a provider's id that is not one plain name
(``../../x``, ``a/b/c``) is refused with the file it came from, never renamed, and nothing is
written. A command that fails after unpacking a zip removes what it unpacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Collection

import pystac
from shapely.geometry import mapping

from pipeline.aoi import Aoi
from pipeline.errors import PipelineError, SceneError
from pipeline.model import SceneInfo, reflectance_digests
from pipeline.names import path_inside, safe_name
from pipeline.outputs.write import exclusive_lock, remove_folder
from pipeline.readers import SceneSource
from pipeline.readers.rasters import field_error, sha256_file
from pipeline.readers.recognise import recognise
from pipeline.readers.stacio import LocalStacIO

__all__ = ["CatalogueEntry", "add_scenes", "catalogue_dir", "catalogue_entries", "catalogue_sources"]

_CHECK_RESOLUTION_M = 10.0  # the clear fraction over the AOI is a summary: 10 m is enough for it


@dataclass(frozen=True)
class CatalogueEntry:
    """One registered scene, as listed by ``burnscan scenes``."""

    item_id: str
    kind: str
    acquired: datetime
    sensor: str
    satellite_id: str
    clear_fraction: float
    """Share of the AOI seen clear (0..1)."""
    data_fraction: float
    """Share of the AOI the scene covers with data; clear_fraction / data_fraction is its usable share."""
    files: dict[str, str]
    sha256: dict[str, str]
    source: str
    options: dict[str, Any]


def catalogue_dir(data_root: Path, aoi_name: str) -> Path:
    """Where an AOI's catalogue lives."""
    return Path(data_root) / aoi_name / "catalog"


def _item_id(info: SceneInfo) -> str:
    return f"{info.kind}-{info.scene_id}"


_FIX = "restore it from a copy"


def _stac_io(folder: Path) -> LocalStacIO:
    return LocalStacIO(root=folder, what="catalogue", fix=_FIX)


def _read_items(folder: Path) -> dict[str, pystac.Item]:
    catalog_file = folder / "catalog.json"
    if not (catalog_file.exists() or catalog_file.is_symlink()):  # a pipe or a dangling link is refused, not taken for none
        return {}
    try:
        catalog = pystac.Catalog.from_file(str(catalog_file), stac_io=_stac_io(folder))
        items = {item.id: item for item in catalog.get_items()}
    except PipelineError:
        raise  # already one line naming the file (a pipe, a URL, an item outside the folder, a mistyped field)
    except Exception as exc:  # pystac raises many types for a damaged catalogue
        if isinstance(exc.__cause__, PipelineError):  # pystac wraps a linked item's error; ours already says it in one line
            raise exc.__cause__ from None
        raise SceneError(f"{catalog_file}: catalogue cannot be read ({type(exc).__name__}: {exc}); restore it from a copy") from None
    return items


def _write_catalogue(folder: Path, aoi: Aoi, items: dict[str, pystac.Item]) -> None:
    """Items first, then the catalogue that lists them (pystac's save order; each file atomically).

    Self-contained (relative links, no self links), so the folder can be moved or copied whole.
    Every item's file name is checked before anything is written.
    """
    catalog = pystac.Catalog(id=f"burnscan-{aoi.name}", description=f"Scenes registered for the AOI {aoi.display_name} ({aoi.name})",
                             catalog_type=pystac.CatalogType.SELF_CONTAINED)
    catalog.set_self_href(str(folder / "catalog.json"))
    for item_id in sorted(items):
        target = path_inside(folder / "items", f"{item_id}.json", what="catalogue item file", source=folder / "catalog.json")
        item = items[item_id].clone()
        item.clear_links()  # the links of the catalogue it was read from; add_item gives the new root and parent
        catalog.add_item(item)
        item.set_self_href(str(target))
    catalog.save(stac_io=_stac_io(folder))


def _clear_fractions(source: SceneSource, aoi: Aoi) -> tuple[float, float]:
    """Shares of the AOI the scene covers with data and sees clear."""
    import numpy as np

    grid = aoi.analysis_grid(_CHECK_RESOLUTION_M)
    _, reflectance, clear = source.load(grid)
    data = np.all(np.isfinite(reflectance), axis=0)
    return float(clear.mean()), float(data.mean())


def _refuse_same_bytes(info: SceneInfo, hashes: dict[str, str], item_id: str, items: dict[str, pystac.Item], aoi_name: str) -> None:
    """Refuse a scene whose reflectance bytes are already registered under another id or time.

    One file is one acquisition: the same bytes added again with another ``--acquired``, or
    copied under another name, would be compared with themselves and read as "no change".
    """
    mine = reflectance_digests(hashes)
    for other_id, other in items.items():
        recorded = other.properties.get("burnscan:sha256")
        shared = mine & reflectance_digests(recorded) if isinstance(recorded, dict) else set()
        if shared and other_id != item_id:
            role = next(r for r, d in hashes.items() if d in shared)
            when = other.datetime.strftime("%Y-%m-%dT%H:%M:%SZ") if other.datetime else "no time"
            raise SceneError(
                f"{info.files[role]}: same bytes (SHA-256 {next(iter(shared))[:16]}...) as the registered scene {other_id} "
                f"({when}), here as {item_id} ({info.acquired.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}); one file cannot "
                f"be two acquisitions: give each time its own scene, or remove data/{aoi_name}/catalog/items/{other_id}.json "
                f"if that registration was wrong"
            )


def add_scenes(aoi: Aoi, paths: list[Path], *, data_root: Path, **options: Any) -> list[tuple[str, str]]:
    """Register every scene found in ``paths``; return ``(item id, "added" | "already registered")``.

    Nothing is written unless every scene of every path is valid: a bad file stops the whole
    command with one line, the catalogue stays as it was, and the zips this command unpacked
    are removed again (never those an earlier command unpacked). The catalogue's lock is held
    throughout, so a concurrent ``add`` waits instead of overwriting this one's items.
    """
    folder = catalogue_dir(data_root, aoi.name)
    extract_to = Path(data_root) / aoi.name / "deliveries"
    unpacked: list[Path] = []
    with exclusive_lock(folder):
        try:
            return _add_locked(aoi, paths, folder, extract_to, unpacked, options)
        except BaseException:
            for done in unpacked:
                remove_folder(done, root=extract_to)
            raise


def _add_locked(aoi: Aoi, paths: list[Path], folder: Path, extract_to: Path, unpacked: list[Path],
                options: dict[str, Any]) -> list[tuple[str, str]]:
    items = _read_items(folder)
    outcome: list[tuple[str, str]] = []
    new: dict[str, pystac.Item] = {}
    for path in paths:
        for source in recognise(Path(path), extract_to=extract_to, unpacked=unpacked, **options):
            info = source.describe()
            main_file = next(iter(info.files.values()))
            # The id becomes a file name: refuse an unsafe one before any work, naming the file it came from.
            safe_name(info.scene_id, what=f"{info.kind} scene id", source=info.files.get("metadata", main_file))
            if not info.footprint.intersects(aoi.geometry):
                raise SceneError(f"{main_file}: scene does not overlap the AOI {aoi.name}; pick scenes that cover it")
            hashes = {role: sha256_file(p) for role, p in info.files.items()}
            item_id = _item_id(info)
            known = items.get(item_id) or new.get(item_id)
            if known is not None:
                if known.properties.get("burnscan:sha256") != hashes:
                    raise SceneError(f"{main_file}: scene {item_id} is already registered with different file contents; "
                                     f"remove data/{aoi.name}/catalog/items/{item_id}.json first if this one replaces it")
                outcome.append((item_id, "already registered"))
                continue
            _refuse_same_bytes(info, hashes, item_id, {**items, **new}, aoi.name)
            clear, data = _clear_fractions(source, aoi)
            item = pystac.Item(
                id=item_id, geometry=mapping(info.footprint), bbox=list(info.footprint.bounds),
                datetime=info.acquired.astimezone(timezone.utc),
                properties={
                    "burnscan:kind": info.kind, "burnscan:scene_id": info.scene_id, "burnscan:sensor": info.sensor,
                    "burnscan:satellite_id": info.satellite_id, "burnscan:bands": list(info.bands),
                    "burnscan:aoi_clear_fraction": round(clear, 4), "burnscan:aoi_data_fraction": round(data, 4),
                    "burnscan:source": str(Path(path).resolve()), "burnscan:sha256": hashes,
                    "burnscan:options": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in options.items()
                                         if k in ("bands", "acquired") and v is not None},
                    "burnscan:added_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    **{f"burnscan:{k}": v for k, v in info.properties.items()},
                },
            )
            for role, file_path in info.files.items():
                item.add_asset(role, pystac.Asset(href=str(Path(file_path).resolve()), roles=[role]))
            new[item_id] = item
            outcome.append((item_id, "added"))
    if new:
        _write_catalogue(folder, aoi, {**items, **new})
    return outcome


_KINDS = ("planet", "sentinel2", "landsat", "geotiff")


def _entry(item: pystac.Item, folder: Path) -> CatalogueEntry:
    """One item read back, every burnscan:* field checked for its type (a hand-edited or damaged
    item must stop the run in one line, not deep inside it)."""
    where = folder / "items" / f"{item.id}.json"
    fix = "restore the item from a copy, or remove it and add the scene again"
    p = item.properties

    def field(name: str, kind: type | tuple[type, ...], expected: str, default: Any = None, required: bool = False) -> Any:
        if name not in p:
            if required:
                raise SceneError(f"{where}: no {name} in the catalogue item; {fix}")
            return default
        value = p[name]
        if not isinstance(value, kind) or isinstance(value, bool):  # a boolean is no number, string or object here
            raise field_error(where, name, value, expected, fix)
        return value

    kind = field("burnscan:kind", str, "one of " + ", ".join(_KINDS), required=True)
    if kind not in _KINDS:
        raise field_error(where, "burnscan:kind", kind, "one of " + ", ".join(_KINDS), fix)
    if item.datetime is None:
        raise SceneError(f"{where}: catalogue item has no datetime; {fix}")
    sha256 = field("burnscan:sha256", dict, "an object of SHA-256 digests by file role", {})
    if not all(isinstance(v, str) for v in sha256.values()):
        raise field_error(where, "burnscan:sha256", sha256, "an object of SHA-256 digests by file role", fix)
    options = field("burnscan:options", dict, "an object", {})
    if not isinstance(options.get("acquired", ""), str) or not isinstance(options.get("bands", ""), (str, list)):
        raise field_error(where, "burnscan:options", options, "an object with 'acquired' an ISO time and 'bands' a band map", fix)
    for role, asset in item.assets.items():
        if not isinstance(asset.href, str):
            raise field_error(where, f"assets.{role}.href", asset.href, "a string (a path)", fix)
    if not item.id.startswith(f"{kind}-"):
        raise field_error(where, "id", item.id, f"'{kind}-' followed by the scene id", fix)
    return CatalogueEntry(
        item_id=item.id, kind=kind, acquired=item.datetime, sensor=field("burnscan:sensor", str, "a string", "unknown"),
        satellite_id=field("burnscan:satellite_id", str, "a string", "unknown"),
        clear_fraction=float(field("burnscan:aoi_clear_fraction", (int, float), "a number", 0)),
        data_fraction=float(field("burnscan:aoi_data_fraction", (int, float), "a number", 0)),
        files={r: a.href for r, a in item.assets.items()}, sha256=dict(sha256),
        source=field("burnscan:source", str, "a string (the path the scene was added from)", required=True), options=dict(options),
    )


def catalogue_entries(data_root: Path, aoi_name: str) -> list[CatalogueEntry]:
    """The registered scenes of an AOI in time order (empty when it has no catalogue)."""
    folder = catalogue_dir(data_root, aoi_name)
    entries = [_entry(item, folder) for item in _read_items(folder).values()]
    return sorted(entries, key=lambda e: e.acquired)


def catalogue_sources(data_root: Path, aoi_name: str, *, kind: str | None = None,
                      items: Collection[str] | None = None) -> list[SceneSource]:
    """The registered scenes as loadable sources, after checking every file's SHA-256.

    ``items``: only the scenes of these item ids (a re-run reads the scenes its run read, not
    those added since); one that is not registered any more is refused, naming it.
    """
    entries = catalogue_entries(data_root, aoi_name)
    if items is not None:
        gone = sorted(set(items) - {e.item_id for e in entries})
        if gone:
            raise SceneError(f"{catalogue_dir(data_root, aoi_name)}: scene {gone[0]} is no longer registered"
                             f"{f' ({len(gone) - 1} more)' if len(gone) > 1 else ''}; add it again with burnscan add")
        entries = [e for e in entries if e.item_id in set(items)]
    kinds = sorted({e.kind for e in entries})
    if kind is None and len(kinds) > 1:
        raise SceneError(f"{catalogue_dir(data_root, aoi_name)}: the catalogue holds {', '.join(kinds)} scenes; "
                         f"pick one sensor per run with --kind")
    sources: list[SceneSource] = []
    extract_to = Path(data_root) / aoi_name / "deliveries"
    for entry in entries:
        if kind is not None and entry.kind != kind:
            continue
        for role, href in entry.files.items():
            path = Path(href)
            if not path.exists():
                raise SceneError(f"{path}: registered scene file is missing; restore it or remove the item {entry.item_id}")
            if sha256_file(path) != entry.sha256.get(role):  # refuses a pipe or device put in the file's place
                raise SceneError(f"{path}: file changed since it was added (SHA-256 differs); restore the original")
        options = dict(entry.options)
        if "acquired" in options:
            try:
                options["acquired"] = datetime.fromisoformat(options["acquired"])
            except ValueError:
                raise SceneError(f"{catalogue_dir(data_root, aoi_name) / 'items' / entry.item_id}.json: burnscan:options "
                                 f"acquired {options['acquired']!r} is not an ISO time; restore the item from a copy") from None
        scene_id = entry.item_id.split("-", 1)[1]
        match = [s for s in recognise(Path(entry.source), extract_to=extract_to, **options) if s.scene_id == scene_id]
        if not match:
            raise SceneError(f"{entry.source}: registered scene {entry.item_id} is no longer found there; restore it")
        sources.append(match[0])
    return sources
