"""The scene catalogue of an AOI: a STAC catalogue of every scene registered for it.

``burnscan add ogota PATH...`` recognises each scene (:func:`pipeline.readers.recognise.recognise`),
checks that it overlaps the AOI and loads it once onto the AOI to measure how much of the AOI
it shows clear; the catalogue then records the scene's time, where that time came from
(``burnscan:time_source``: the product's ``metadata``, the ``acquired-option``, or a
``file-name`` date asked for with ``--time-from-name``, then ``burnscan:time_of_day_known``
false), sensor, footprint, that clear fraction, and the SHA-256 of every file. Files stay where
they are (zips are unpacked once under ``<data>/<aoi>/deliveries/``); the catalogue points to
them and refuses a file whose bytes changed since it was added. One file is one scene: the same
reflectance bytes are never registered twice, under any id or time.

``burnscan scenes remove AOI ID`` takes a scene out of the catalogue (:func:`remove_scene`): the
catalogue is rewritten without it, then its item file is deleted; the scene's own files are never
touched. A catalogue whose item file was deleted or damaged by hand says which file and that
command in one line.

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
from typing import Any, Collection, Iterable

import pystac
from shapely.geometry import mapping

from pipeline.aoi import Aoi
from pipeline.errors import PipelineError, SceneError
from pipeline.model import SceneInfo, reflectance_digests
from pipeline.names import path_inside, safe_name
from pipeline.outputs.write import exclusive_lock, remove_folder
from pipeline.readers import SceneSource
from pipeline.readers.geotiff import DECLARED_SENSORS
from pipeline.readers.rasters import field_error, sha256_file
from pipeline.readers.recognise import recognise
from pipeline.readers.stacio import LocalStacIO

__all__ = ["CatalogueEntry", "add_scenes", "catalogue_dir", "catalogue_entries", "catalogue_entry", "catalogue_sources",
           "remove_scene"]

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
    time_source: str = "metadata"
    """Where ``acquired`` came from: ``metadata``, ``acquired-option`` or ``file-name``."""
    time_of_day_known: bool = True
    """False when only the date is known (a date in a file name)."""
    bands: tuple[str, ...] = ()
    footprint: dict[str, Any] | None = None
    """The scene's outline (GeoJSON geometry, lon/lat)."""
    added_utc: str = ""


def catalogue_dir(data_root: Path, aoi_name: str) -> Path:
    """Where an AOI's catalogue lives."""
    return Path(data_root) / aoi_name / "catalog"


def _item_id(info: SceneInfo) -> str:
    return f"{info.kind}-{info.scene_id}"


_FIX = "restore it from a copy"


def _stac_io(folder: Path, fix: str = _FIX, what: str = "catalogue") -> LocalStacIO:
    return LocalStacIO(root=folder, what=what, fix=fix)


def _remove_fix(aoi_name: str, item_id: str) -> str:
    return f"take the scene out of the catalogue with: burnscan scenes remove {aoi_name} {item_id} (its files are kept)"


def _item_links(folder: Path) -> list[tuple[str, str, Path | None]]:
    """``(item id, href, local path or None for a URL)`` of every item the catalogue lists, in its order.

    The id is the item file's name without ``.json``, as :func:`_write_catalogue` names it, so
    that an item whose file is gone can still be named (and removed).
    """
    catalog_file = folder / "catalog.json"
    doc = _stac_io(folder).read_json(catalog_file)
    links = doc.get("links", [])
    if doc.get("type") != "Catalog" or not isinstance(links, list):
        raise SceneError(f"{catalog_file}: not a STAC catalogue (type {doc.get('type')!r}, links a list); {_FIX}")
    out = []
    for link in links:
        if not isinstance(link, dict) or link.get("rel") != "item":
            continue
        href = link.get("href")
        if not isinstance(href, str) or not href:
            raise field_error(catalog_file, "links[].href", href, "the path of an item file", _FIX)
        local = None if ("://" in href and not href.startswith("file://")) else Path(href.removeprefix("file://"))
        name = href.rstrip("/").rsplit("/", 1)[-1]
        out.append((name[:-5] if name.endswith(".json") else name, href, None if local is None else folder / local))
    return out


def _read_items(folder: Path, *, skip: Iterable[str] = ()) -> dict[str, pystac.Item]:
    """Every item the catalogue lists (but those of ``skip``), read through :class:`LocalStacIO`.

    Every failure is one line naming the file: an item file deleted or damaged by hand says how
    to take its scene out of the catalogue (``burnscan scenes remove``).
    """
    catalog_file = folder / "catalog.json"
    if not (catalog_file.exists() or catalog_file.is_symlink()):  # a pipe or a dangling link is refused, not taken for none
        return {}
    aoi_name = folder.parent.name
    items: dict[str, pystac.Item] = {}
    for item_id, href, path in _item_links(folder):
        if item_id in skip:
            continue
        fix = f"restore it from a copy, or {_remove_fix(aoi_name, item_id)}"
        if path is not None and not (path.exists() or path.is_symlink()):
            raise SceneError(f"{path}: item file of the registered scene {item_id} is missing (listed in {catalog_file}); "
                             f"{fix}")
        io = _stac_io(folder, fix, "catalogue item")
        target = str(path) if path is not None else href
        try:
            item = io.stac_object_from_dict(io.read_json(target), href=target)
        except PipelineError:
            raise  # already one line naming the file (a pipe, a URL, an item outside the folder, a mistyped field)
        except Exception as exc:  # pystac raises many types for a damaged item
            raise SceneError(f"{target}: catalogue item cannot be read ({type(exc).__name__}: {exc}); {fix}") from None
        if not isinstance(item, pystac.Item):
            raise SceneError(f"{target}: not a STAC item (a {type(item).__name__}); {fix}")
        items[item.id] = item
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
                f"({when}), here as {item_id} ({info.acquired.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}); one file is one "
                f"acquisition: if that registration was wrong, {_remove_fix(aoi_name, other_id)}, then add it again"
            )


def _refuse_same_time(info: SceneInfo, main_file: Path, items: dict[str, pystac.Item], new: dict[str, pystac.Item],
                      aoi_name: str) -> None:
    """Refuse a second scene at a registered scene's very time: scenes are compared in time order, and two at
    one time have none (exports named after one event's date, read with --time-from-name, are the usual case)."""
    when = info.acquired.astimezone(timezone.utc)
    for other_id, other in {**items, **new}.items():
        if other.datetime == when:
            where = "registered" if other_id in items else "given before it in this command"
            shown = f"{when:%Y-%m-%d}, time of day unknown" if not info.time_of_day_known else f"{when:%Y-%m-%dT%H:%M:%SZ}"
            if info.time_source == "metadata":  # a Planet metadata file or an ACQUIRED tag: --acquired does not apply
                fix = ("its own metadata states that time, so it is the same acquisition delivered twice (a copy, or an "
                       "edited copy): register one of them")
            else:
                fix = ("give each file its own acquisition time with --acquired, one file per command (a date in a file "
                       "name may be an event's, not the acquisition's)")
            raise SceneError(f"{main_file}: its time ({shown}) is that of the scene {other_id} ({where}); two scenes at one "
                             f"time cannot be put in order: {fix}")


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
    given_time: list[Path] = []  # plain GeoTIFFs given the one --acquired time
    for path in paths:
        for source in recognise(Path(path), extract_to=extract_to, unpacked=unpacked, **options):
            info = source.describe()
            if info.time_source == "acquired-option":
                given_time.append(info.files["reflectance"])
                if len(given_time) > 1:
                    raise SceneError(f"{given_time[1]}: --acquired gives one time, here to {given_time[0]} too; two scenes "
                                     f"cannot share one acquisition time: add each GeoTIFF with its own --acquired")
            main_file = next(iter(info.files.values()))
            # The id becomes a file name: refuse an unsafe one before any work, naming the file it came from.
            safe_name(info.scene_id, what=f"{info.kind} scene id", source=info.files.get("metadata", main_file))
            if not info.footprint.intersects(aoi.geometry):
                raise SceneError(f"{main_file}: scene does not overlap the AOI {aoi.name}; pick scenes that cover it")
            hashes = {role: sha256_file(p) for role, p in info.files.items()}
            item_id = _item_id(info)
            if item_id in new:  # given twice in this command (a path and a folder holding it)
                if new[item_id].properties.get("burnscan:sha256") != hashes:
                    raise SceneError(f"{main_file}: two different scenes of this command have the id {item_id}; "
                                     f"add them one at a time")
                continue
            known = items.get(item_id)
            if known is not None:
                if known.properties.get("burnscan:sha256") != hashes:
                    raise SceneError(f"{main_file}: the scene {item_id} is already registered with different file contents "
                                     f"({folder / 'items' / f'{item_id}.json'}); if this one replaces it, "
                                     f"{_remove_fix(aoi.name, item_id)}, then add this one")
                if known.datetime != info.acquired.astimezone(timezone.utc):
                    raise SceneError(f"{main_file}: same bytes as the registered scene {item_id} "
                                     f"({known.datetime:%Y-%m-%dT%H:%M:%SZ}), here at {info.acquired:%Y-%m-%dT%H:%M:%SZ}; one file "
                                     f"is one acquisition: if that time was wrong, {_remove_fix(aoi.name, item_id)}, then add it again")
                outcome.append((item_id, "already registered"))
                continue
            _refuse_same_bytes(info, hashes, item_id, {**items, **new}, aoi.name)
            _refuse_same_time(info, main_file, items, new, aoi.name)
            clear, data = _clear_fractions(source, aoi)
            item = pystac.Item(
                id=item_id, geometry=mapping(info.footprint), bbox=list(info.footprint.bounds),
                datetime=info.acquired.astimezone(timezone.utc),
                properties={
                    "burnscan:kind": info.kind, "burnscan:scene_id": info.scene_id, "burnscan:sensor": info.sensor,
                    "burnscan:satellite_id": info.satellite_id, "burnscan:bands": list(info.bands),
                    "burnscan:aoi_clear_fraction": round(clear, 4), "burnscan:aoi_data_fraction": round(data, 4),
                    "burnscan:source": str(Path(path).resolve()), "burnscan:sha256": hashes,
                    "burnscan:time_source": info.time_source, "burnscan:time_of_day_known": info.time_of_day_known,
                    "burnscan:options": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in options.items()
                                         if k in ("bands", "acquired", "time_from_name", "provider") and v},
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
    fix = f"restore the item from a copy, or {_remove_fix(folder.parent.name, item.id)} and add the scene again"
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
    if (not isinstance(options.get("acquired", ""), str) or not isinstance(options.get("bands", ""), (str, list))
            or not (isinstance(options.get("provider", "planet"), str) and options.get("provider", "planet") in DECLARED_SENSORS)):
        raise field_error(where, "burnscan:options", options, "an object with 'acquired' an ISO time, 'bands' a band map and "
                          f"'provider' (when given) one of {', '.join(DECLARED_SENSORS)}", fix)
    for role, asset in item.assets.items():
        if not isinstance(asset.href, str):
            raise field_error(where, f"assets.{role}.href", asset.href, "a string (a path)", fix)
    if not item.id.startswith(f"{kind}-"):
        raise field_error(where, "id", item.id, f"'{kind}-' followed by the scene id", fix)
    # Items written before the time's source was recorded said it in burnscan:time_from (GeoTIFFs only).
    older = {"given": "acquired-option"}.get(p.get("burnscan:time_from"), "file-name" if str(p.get("burnscan:time_from", "")).startswith(
        "date in file name") else "metadata")
    time_source = field("burnscan:time_source", str, "one of metadata, acquired-option, file-name", older)
    if time_source not in ("metadata", "acquired-option", "file-name"):
        raise field_error(where, "burnscan:time_source", time_source, "one of metadata, acquired-option, file-name", fix)
    known = p.get("burnscan:time_of_day_known", time_source != "file-name")
    if not isinstance(known, bool):
        raise field_error(where, "burnscan:time_of_day_known", known, "true or false", fix)
    bands = field("burnscan:bands", list, "a list of band names", [])
    return CatalogueEntry(
        item_id=item.id, kind=kind, acquired=item.datetime, sensor=field("burnscan:sensor", str, "a string", "unknown"),
        satellite_id=field("burnscan:satellite_id", str, "a string", "unknown"),
        clear_fraction=float(field("burnscan:aoi_clear_fraction", (int, float), "a number", 0)),
        data_fraction=float(field("burnscan:aoi_data_fraction", (int, float), "a number", 0)),
        files={r: a.href for r, a in item.assets.items()}, sha256=dict(sha256),
        source=field("burnscan:source", str, "a string (the path the scene was added from)", required=True), options=dict(options),
        time_source=time_source, time_of_day_known=known, bands=tuple(str(b) for b in bands), footprint=item.geometry,
        added_utc=str(field("burnscan:added_utc", str, "a string (an ISO time)", "")),
    )


def catalogue_entries(data_root: Path, aoi_name: str) -> list[CatalogueEntry]:
    """The registered scenes of an AOI in time order (empty when it has no catalogue)."""
    folder = catalogue_dir(data_root, aoi_name)
    entries = [_entry(item, folder) for item in _read_items(folder).values()]
    return sorted(entries, key=lambda e: e.acquired)


def catalogue_entry(data_root: Path, aoi_name: str, item_id: str) -> CatalogueEntry:
    """One registered scene (``burnscan scenes show``); one line naming the catalogue when there is none by that id."""
    for entry in catalogue_entries(data_root, aoi_name):
        if entry.item_id == item_id:
            return entry
    raise SceneError(f"{catalogue_dir(data_root, aoi_name)}: no scene {item_id!r} registered for {aoi_name}; "
                     f"burnscan scenes {aoi_name} lists them")


def remove_scene(aoi: Aoi, item_id: str, *, data_root: Path) -> Path | None:
    """Take scene ``item_id`` out of the AOI's catalogue; return its item file's path (``None`` if it was already gone).

    Only the catalogue changes: the scene's own files (and a zip's unpacked delivery) are never
    touched. Under the catalogue's lock, the catalogue is written without the item (the other
    items first, then ``catalog.json``, each atomically), then the item file is deleted: a kill
    before the catalogue is replaced leaves it as it was, a kill after leaves only a file no
    catalogue lists. Works when the item file was deleted or damaged by hand.
    """
    folder = catalogue_dir(data_root, aoi.name)
    with exclusive_lock(folder):
        catalog_file = folder / "catalog.json"
        listed = [(i, p) for i, _, p in _item_links(folder)] if (catalog_file.exists() or catalog_file.is_symlink()) else []
        match = [p for i, p in listed if i == item_id]
        if not match:
            raise SceneError(f"{folder}: no scene {item_id!r} registered for {aoi.name}; burnscan scenes {aoi.name} lists them")
        _write_catalogue(folder, aoi, _read_items(folder, skip={item_id}))
        path = match[0]
        if path is None or not (path.exists() or path.is_symlink()):
            return None
        target = path_inside(folder / "items", f"{item_id}.json", what="catalogue item file", source=catalog_file)
        if target.parent.resolve() == path.parent.resolve():  # never delete a file a hand-edited link sent elsewhere
            target.unlink(missing_ok=True)
        return target


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
        if entry.kind == "geotiff":  # the catalogue holds its time, its source, and the id it was registered under
            options.update(acquired=entry.acquired, time_source=entry.time_source, time_of_day_known=entry.time_of_day_known,
                           name=scene_id)
        match = [s for s in recognise(Path(entry.source), extract_to=extract_to, **options) if s.scene_id == scene_id]
        if not match:
            raise SceneError(f"{entry.source}: registered scene {entry.item_id} is no longer found there; restore it")
        sources.append(match[0])
    return sources
