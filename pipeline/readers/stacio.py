"""STAC files through pystac, read and written the way every other burnscan file is.

pystac reads and writes through a :class:`pystac.StacIO`. Its default one opens whatever an
href names, fetches ``http(s)://`` links, and writes in place. :class:`LocalStacIO` is the one
burnscan hands to pystac instead:

- **reads** only regular files on this disk (a named pipe would block for ever and a device
  stream for ever: :func:`~pipeline.readers.rasters.check_regular_file`), no larger than an item
  can be (:data:`~pipeline.readers.rasters.MAX_METADATA_BYTES`), and, given a ``root``, only
  inside it (:func:`~pipeline.names.path_inside`'s rule: links followed); an ``http(s)`` or any
  other URL href is refused, so a hand-edited link can never make a read reach the network;
- **writes** only through :func:`pipeline.outputs.write.write_text`: atomically and inside
  ``root``, in the layout :func:`~pipeline.outputs.write.write_json` gives (two-space indent,
  UTF-8 kept, one final newline).

Every failure is one :class:`~pipeline.errors.SceneError` line naming the file and the fix.
:func:`item_from_dict` turns an item's JSON into a :class:`pystac.Item` after checking the type
of every field pystac itself would trip over, so a malformed item never reaches pystac as a
traceback.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pystac

from pipeline.errors import PipelineError, SceneError
from pipeline.outputs.write import write_text
from pipeline.readers.rasters import MAX_METADATA_BYTES, check_regular_file, field_error, short

__all__ = ["LocalStacIO", "check_item_fields", "item_from_dict"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _local_path(href: str, what: str) -> Path:
    """The path an href names on this disk; any URL but ``file://`` is refused."""
    if href.startswith("file://"):
        return Path(href[len("file://"):])
    if _URL.match(href):
        raise SceneError(f"{href}: {what} is not on this disk; burnscan reads STAC files from local paths only, never the "
                         f"network: download it first (burnscan fetch) or point the link at the local file")
    return Path(href)


class LocalStacIO(pystac.StacIO):
    """A :class:`pystac.StacIO` for local files only, checked on read and written atomically.

    Parameters
    ----------
    root:
        The folder every file read or written must lie in (the catalogue's folder, a fetched
        item's folder); ``None`` reads anywhere on this disk and refuses every write.
    what:
        What the files are, for messages (``"STAC item"``, ``"catalogue"``).
    fix:
        What to do about a file that cannot be read, for messages.
    """

    def __init__(self, *, root: Path | None = None, what: str = "STAC file", fix: str = "re-download it") -> None:
        super().__init__()
        self.root = Path(root) if root is not None else None
        self.what = what
        self.fix = fix

    def _inside(self, path: Path) -> Path:
        if self.root is not None:
            try:
                inside = path.resolve().is_relative_to(self.root.resolve())
            except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL
                inside = False
            if not inside:
                raise SceneError(f"{path}: {self.what} file lies outside {self.root}, where it belongs (a link in it points "
                                 f"elsewhere); {self.fix}")
        return path

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        """The file's text, after checking it is a regular local file of a plausible size."""
        path = self._inside(_local_path(str(os.fspath(source)), f"{self.what} file"))
        check_regular_file(path)
        size = path.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise SceneError(f"{path}: {self.what} file is {size / 1e6:.0f} MB, a STAC file is tens of kB; {self.fix}")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SceneError(f"{path}: not a valid {self.what} ({short(exc)}); {self.fix}") from None
        except OSError as exc:
            raise SceneError(f"{path}: {self.what} file cannot be read ({exc.strerror or exc}); {self.fix}") from None

    def read_json(self, source: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The file as a JSON object; anything else (invalid JSON, a list, nesting too deep) is one line."""
        text = self.read_text(source)
        path = str(os.fspath(source))
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise SceneError(f"{path}: not a valid {self.what} ({short(exc)}); {self.fix}") from None
        if not isinstance(doc, dict):
            raise SceneError(f"{path}: not a {self.what} (a JSON object is expected); {self.fix}")
        return doc

    def stac_object_from_dict(self, d: dict[str, Any], href: Any = None, root: pystac.Catalog | None = None,
                              preserve_dict: bool = True) -> pystac.STACObject:
        """pystac's reading of a linked object (a catalogue's item), its failures made one line.

        Only STAC 1.x is read: for older items pystac reads their collection through its default
        StacIO, which would open any path or URL the item names, past every check here.
        """
        where = str(os.fspath(href)) if href is not None else f"a {self.what}"
        version = d.get("stac_version")
        if not isinstance(version, str) or not re.match(r"1\.\d+\.\d+", version):
            raise SceneError(f"{where}: STAC version {version!r} is not one burnscan reads (1.x); {self.fix}")
        if d.get("type") == "Feature":
            check_item_fields(d, where, fix=self.fix)
        try:
            return super().stac_object_from_dict(d, href=href, root=root, preserve_dict=preserve_dict)
        except PipelineError:
            raise
        except Exception as exc:  # pystac raises KeyError, TypeError, ValueError, STACError... for what it cannot read
            raise SceneError(f"{where}: not a valid {self.what} ({type(exc).__name__}: {short(exc)}); {self.fix}") from None

    def json_dumps(self, json_dict: dict[str, Any], *args: Any, **kwargs: Any) -> str:
        """The layout of :func:`~pipeline.outputs.write.write_json`, so every JSON file burnscan writes reads alike."""
        return json.dumps(json_dict, indent=2, ensure_ascii=False) + "\n"

    def write_text(self, dest: Any, txt: str, *args: Any, **kwargs: Any) -> None:
        """Write atomically inside ``root`` (see :mod:`pipeline.outputs.write`); never to a URL."""
        path = _local_path(str(os.fspath(dest)), f"{self.what} file")
        if self.root is None:  # a reading StacIO: pystac must never write where no folder was given
            raise SceneError(f"{path}: burnscan writes STAC files only into the folder they belong in; this one was opened "
                             f"for reading")
        write_text(path, txt, root=self.root)


_ITEM_FIELDS: dict[str, tuple[type, str]] = {
    # field -> (JSON type pystac needs, what the message says); geometry and bbox may also be null
    "properties": (dict, "an object"),
    "assets": (dict, "an object"),
    "geometry": (dict, "a GeoJSON geometry object"),
    "bbox": (list, "a list of numbers"),
    "stac_extensions": (list, "a list of extension URLs"),
    "collection": (str, "a string (a collection id)"),
}


def check_item_fields(doc: dict[str, Any], path: Path | str, *, fix: str) -> None:
    """Refuse, in one :func:`~pipeline.readers.rasters.field_error` line, an item field pystac would trip over.

    Checked: the fields of ``_ITEM_FIELDS`` of their JSON type, the id a string, every asset an
    object with a string ``href`` (when it has one), ``properties.datetime`` a string.
    """
    for name, (kind, expected) in _ITEM_FIELDS.items():
        if doc.get(name) is not None and not isinstance(doc[name], kind):
            raise field_error(path, name, doc[name], expected, fix)
    if "id" in doc and not isinstance(doc["id"], str):
        raise field_error(path, "id", doc["id"], "a string", fix)
    props, assets = doc.get("properties") or {}, doc.get("assets") or {}
    for key, asset in assets.items():
        if not isinstance(asset, dict):
            raise field_error(path, f"assets.{key}", asset, "an object", fix)
        if not isinstance(asset.get("href", ""), str):
            raise field_error(path, f"assets.{key}.href", asset["href"], "a string (a path or URL)", fix)
    if props.get("datetime") is not None and not isinstance(props["datetime"], str):
        raise field_error(path, "properties.datetime", props["datetime"], "an ISO 8601 string", fix)


def item_from_dict(doc: dict[str, Any], path: Path | str, *, fix: str = "re-download the STAC item") -> pystac.Item:
    """A :class:`pystac.Item` from an item's JSON object, every field pystac reads checked first.

    See :func:`check_item_fields` for what is refused. Tolerated as before pystac read the
    items: no ``stac_version`` (read as the current one) and an asset without ``href`` (an
    empty one: the reader then looks for the band's file beside the item). The item's
    ``links`` are not read: a local item stands alone, and a link could only send a reader
    elsewhere. Whatever pystac still refuses is one line too.
    """
    check_item_fields(doc, path, fix=fix)
    props, assets = doc.get("properties") or {}, doc.get("assets") or {}
    body = {k: v for k, v in doc.items() if k != "links"}
    body.setdefault("stac_version", pystac.get_stac_version())
    body["properties"] = dict(props)
    body["assets"] = {key: {"href": "", **asset} for key, asset in assets.items()}
    try:
        return pystac.Item.from_dict(body, href=str(path), migrate=False, preserve_dict=False)
    except Exception as exc:  # pystac raises KeyError, TypeError, ValueError, STACError... for what it cannot read
        raise SceneError(f"{path}: not a valid STAC item ({type(exc).__name__}: {short(exc)}); {fix}") from None

