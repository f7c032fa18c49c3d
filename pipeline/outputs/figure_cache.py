"""Figures (and the review page's scenes and the GIS rasters) kept between runs, so that a re-run of the same
scenes does not draw them again.

Drawing is the largest part of a warm village run, and a figure depends only on what it is
drawn from: the arrays, polygons and words its builder holds, the code that draws it, and the
libraries and settings that render it. :func:`content_key` is a SHA-256 of all of that, read
from the builder itself (its function, arguments and closure, walked down to every array's
bytes), so nothing has to be listed by hand and nothing a builder holds can be left out: a
value the walk does not know how to read makes the figure uncacheable, and it is drawn.

Nothing is trusted blindly. An entry is kept under ``<folder>/<drawing version>/<key>/``: its
files (a figure's PNG, its PDF where there is one and its screen copy for the HTML report; a
scene's PNG; the rasters and their styles), and last ``entry.json`` with the SHA-256 of each.
An entry is used only when that file parses, names its own key, and every file's bytes hash
to what it lists; else the figure is drawn again. An entry that
cannot be written (disk full, folder not writable) costs the next run its drawing, never this
run. The folder is kept under :data:`MAX_BYTES`, the entries used longest ago removed first.

The store keeps any files under a key; :mod:`pipeline.outputs.kept_scenes` keeps a run's co-registered,
normalised scenes in a store of their own with it, and :mod:`pipeline.outputs.kept_verdicts` the scenes'
plausibility verdicts in the same one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import stat
import types
from collections.abc import Callable, Iterable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import OutputError
from pipeline.outputs.write import write_bytes, write_json

__all__ = ["FigureCache", "KeptFigure", "MAX_BYTES", "MAX_FILE_BYTES", "Uncacheable", "content_key", "drawing_version"]

logger = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024 * 1024
"""The kept figures' size limit: some thirty village runs' figures."""

_KEY = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"(?!entry\.json$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}")  # a plain file name in an entry's folder
MAX_FILE_BYTES = 256 * 1024 * 1024
"""The largest file an entry may hold: a 300 dpi figure is a few MB, a village's aligned scenes about a hundred."""
_ENTRY = "entry.json"
_MAX_DEPTH = 64
# The libraries whose versions change a figure's pixels or its PDF's bytes.
_RENDERING_PACKAGES = ("matplotlib", "numpy", "pillow", "xarray", "pandas", "geopandas", "shapely", "pyproj", "scipy")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


class Uncacheable(TypeError):
    """A builder holds a value :func:`content_key` cannot read: the figure is drawn, not looked up."""


@dataclasses.dataclass(frozen=True)
class KeptFigure:
    """A figure's files as kept: PNG bytes, PDF bytes (or ``None``), and its screen copy ``(mime, bytes)`` (``None``
    for a review page's scene, which is its own screen copy)."""

    png: bytes
    pdf: bytes | None
    screen: tuple[str, bytes] | None


@cache
def drawing_version() -> str:
    """SHA-256 of what draws a figure besides its inputs: burnscan's source, the rendering libraries, matplotlib's settings and font.

    All of burnscan's source, not only the drawing modules: a figure calls helpers across the
    package, and a change anywhere costs a redraw only. matplotlib's settings come from a user's
    ``matplotlibrc`` as well as from the code, and its font from the system, so both are in it.
    """
    import matplotlib
    from matplotlib import font_manager

    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_ROOT.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    versions = [f"python {platform.python_version()}"]
    for name in _RENDERING_PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    digest.update("\n".join(versions).encode())
    # Every setting but the backend: the figures are drawn on an explicit Agg canvas whichever is set, and reading
    # it through ``rcParams[...]`` makes matplotlib choose one first (importing pyplot: half a second of each run).
    settings = sorted((k, repr(v)) for k, v in dict.items(matplotlib.rcParams) if k != "backend")
    digest.update(repr(settings).encode())
    font = Path(font_manager.findfont(font_manager.FontProperties(family=matplotlib.rcParams["font.family"])))
    info = font.stat()
    digest.update(f"{font} {info.st_size} {info.st_mtime_ns}".encode())
    return digest.hexdigest()


def content_key(*parts: Any) -> str:
    """SHA-256 of ``parts``, read down to every array's bytes; :class:`Uncacheable` for a value it cannot read.

    Reads functions (code, defaults, closure), ``functools.partial`` and cached functions, numbers,
    strings, dates and times, containers, dataclasses, numpy arrays, xarray objects, pandas and
    geopandas frames, shapely geometries and CRSs. An array shared by several builders is hashed
    once per call.

    >>> import numpy as np
    >>> content_key(np.zeros(3), "a") == content_key(np.zeros(3), "a") != content_key(np.ones(3), "a")
    True
    """
    return _Reader().key(parts)


class _Reader:
    """One walk of :func:`content_key`: remembers each array's digest by its memory, shape and layout."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[Any, ...], bytes] = {}
        self.path: set[int] = set()  # objects being read, against cycles

    def key(self, parts: Iterable[Any]) -> str:
        digest = hashlib.sha256()
        for part in parts:
            self.feed(digest, part, 0)
        return digest.hexdigest()

    def feed(self, digest: Any, value: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise Uncacheable("nested too deep")
        tag = type(value).__module__ + "." + type(value).__qualname__
        digest.update(b"<" + tag.encode() + b">")
        if value is None or isinstance(value, (bool, int, float, complex, str, bytes, enum.Enum, Path,
                                               dt.date, dt.time, dt.timedelta, dt.tzinfo, range, slice)):
            digest.update(repr(value).encode() + b"\0")
            return
        if id(value) in self.path:
            raise Uncacheable(f"a cycle through a {tag}")
        self.path.add(id(value))
        try:
            self._container(digest, value, depth + 1)
        finally:
            self.path.discard(id(value))

    def _each(self, digest: Any, values: Iterable[Any], depth: int) -> None:
        count = 0
        for v in values:
            self.feed(digest, v, depth)
            count += 1
        digest.update(f"#{count}".encode())

    def _container(self, digest: Any, value: Any, depth: int) -> None:  # noqa: C901 (one case per kind of value)
        import pandas as pd
        import shapely
        import xarray as xr
        from affine import Affine
        from pyproj import CRS

        if isinstance(value, np.ndarray):
            digest.update(self._array(value))
        elif isinstance(value, np.generic):
            digest.update(value.dtype.str.encode() + value.tobytes())
        elif isinstance(value, (list, tuple)):
            self._each(digest, value, depth)
        elif isinstance(value, (set, frozenset)):  # iteration order follows the hash seed: read in a fixed order
            self._each(digest, sorted(content_key(v).encode() for v in value), depth)
        elif isinstance(value, dict):
            self._each(digest, (item for kv in value.items() for item in kv), depth)
        elif isinstance(value, xr.DataArray):
            self._each(digest, (value.name, value.dims, value.variable.values, self._coords(value), value.attrs), depth)
        elif isinstance(value, xr.Dataset):
            self._each(digest, ({k: value[k].variable.values for k in value.data_vars}, self._coords(value), value.attrs), depth)
        elif isinstance(value, pd.DataFrame):
            self._each(digest, (list(value.columns), value.index, [value[c] for c in value.columns], value.attrs), depth)
        elif isinstance(value, pd.Series):
            crs = getattr(value, "crs", None)
            values = shapely.to_wkb(np.asarray(value.array)) if value.dtype.name == "geometry" else value.to_numpy()
            self._each(digest, (value.name, str(value.dtype), crs, values), depth)
        elif isinstance(value, pd.Index):
            self._each(digest, (str(value.dtype), value.to_numpy()), depth)
        elif isinstance(value, pd.Timestamp):
            digest.update(repr(value).encode())
        elif isinstance(value, shapely.Geometry):
            digest.update(shapely.to_wkb(value))
        elif isinstance(value, Affine):
            self._each(digest, tuple(value)[:9], depth)
        elif isinstance(value, CRS):
            digest.update(value.to_wkt().encode())
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            self._each(digest, ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value)), depth)
        elif isinstance(value, functools.partial):
            self._each(digest, (value.func, value.args, value.keywords), depth)
        elif isinstance(value, types.MethodType):
            self._each(digest, (value.__func__, value.__self__), depth)
        elif isinstance(value, types.FunctionType):
            cells = tuple(c.cell_contents for c in value.__closure__ or ())
            self._each(digest, (value.__module__, value.__qualname__, self._code(value.__code__), value.__defaults__,
                                value.__kwdefaults__, cells), depth)
        elif hasattr(value, "__wrapped__") and hasattr(value, "cache_info"):  # functools.cache: the function it wraps
            self.feed(digest, value.__wrapped__, depth)
        elif isinstance(value, (types.BuiltinFunctionType, type)):
            digest.update(f"{value.__module__}.{value.__qualname__}".encode())
        else:
            raise Uncacheable(f"cannot read a {type(value).__qualname__}")

    def _array(self, array: np.ndarray) -> bytes:
        if array.dtype.hasobject:
            digest = hashlib.sha256(f"{array.shape}".encode())
            self._each(digest, array.ravel().tolist(), 1)
            return digest.digest()
        key = (array.__array_interface__["data"][0], array.shape, array.strides, array.dtype.str)
        if key not in self.arrays:
            digest = hashlib.sha256(f"{array.dtype.str} {array.shape}".encode())
            digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)  # dates too, which have no buffer
            self.arrays[key] = digest.digest()
        return self.arrays[key]

    @staticmethod
    def _coords(value: Any) -> dict[str, Any]:
        return {name: (coord.dims, coord.variable.values) for name, coord in value.coords.items()}

    def _code(self, code: types.CodeType) -> tuple[Any, ...]:
        consts = tuple(self._code(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
        return (code.co_code, consts, code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
                code.co_argcount, code.co_kwonlyargcount, code.co_flags)


class FigureCache:
    """Kept figures under ``folder/<drawing version>/<key>/`` (see the module's docstring)."""

    def __init__(self, folder: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.root = Path(folder)
        self.max_bytes = max_bytes

    def key(self, *parts: Any) -> str | None:
        """:func:`content_key` of ``parts`` and the drawing version; ``None`` when a part cannot be read."""
        return _key_or_none(_Reader(), parts, "kept work")

    def keys(self, figures: dict[str, tuple[bool, Callable[[], Any]]]) -> dict[str, str | None]:
        """The key of each figure file ``name: (with a PDF, builder)``; ``None`` for one whose builder cannot be read.

        One walk for them all: the scenes several figures share are hashed once.
        """
        reader = _Reader()
        return {name: _key_or_none(reader, (name, pdf, build), name) for name, (pdf, build) in figures.items()}

    def where(self, key: str) -> Path:
        """The folder of the entry kept under ``key``."""
        return self._folder(key)

    def _folder(self, key: str) -> Path:
        if not _KEY.fullmatch(key):  # a key is a SHA-256 in hex, never a path
            raise KeyError(key)
        return self.root / drawing_version()[:16] / key

    def get_files(self, key: str) -> dict[str, bytes] | None:
        """The files kept under ``key`` by name, each checked against its entry; ``None`` if there is none that checks."""
        found = self._get(key)
        return found[0] if found is not None else None

    def put_files(self, key: str, files: dict[str, bytes], meta: dict[str, Any] | None = None) -> None:
        """Keep ``files`` (plain file names) under ``key``, with ``meta`` (JSON) in its entry."""
        self._put(key, files, meta or {})

    def get_entry(self, key: str) -> tuple[dict[str, bytes], dict[str, Any]] | None:
        """The files kept under ``key``, each checked against its entry, and the entry's ``meta``; ``None`` if none checks."""
        return self._get(key)

    def get(self, key: str) -> KeptFigure | None:
        """The figure kept under ``key``, its bytes checked against its entry; ``None`` if there is none that checks."""
        found = self._get(key)
        if found is None:
            return None
        files, meta = found
        mime = meta.get("screen_mime")
        if set(files) - {"png", "pdf", "screen"} or "png" not in files or (mime is None) != ("screen" not in files) \
                or mime not in (None, "image/png", "image/jpeg"):
            logger.info(f"{self._folder(key)}: a kept figure that is not one; it is drawn again")
            return None
        return KeptFigure(files["png"], files.get("pdf"), (mime, files["screen"]) if mime is not None else None)

    def put(self, key: str, figure: KeptFigure) -> None:
        """Keep ``figure`` under ``key``."""
        files = {"png": figure.png, **({"pdf": figure.pdf} if figure.pdf is not None else {}),
                 **({"screen": figure.screen[1]} if figure.screen else {})}
        self._put(key, files, {"screen_mime": figure.screen[0] if figure.screen else None})

    def _get(self, key: str) -> tuple[dict[str, bytes], dict[str, Any]] | None:
        folder = self._folder(key)
        try:
            entry = json.loads(_read(folder / _ENTRY, 1024 * 1024).decode("utf-8"))
            if entry.get("key") != key:
                raise ValueError("the entry names another key")
            files = {}
            for name, digest in entry["files"].items():
                if not _NAME.fullmatch(name):
                    raise ValueError(f"{name!r} is not a kept file's name")
                data = _read(folder / name, MAX_FILE_BYTES)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ValueError(f"{name} does not hash to its entry")
                files[name] = data
            meta = entry["meta"]
            if not isinstance(meta, dict):
                raise ValueError("no meta")
            os.utime(folder / _ENTRY)  # used now: pruned last
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.info(f"{folder}: kept work that does not check ({exc}); it is made again")
            return None
        return files, meta

    def _put(self, key: str, files: dict[str, bytes], meta: dict[str, Any]) -> None:
        """The files first, the entry listing their hashes last: an entry never lists a file not yet written."""
        folder = self._folder(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                if not _NAME.fullmatch(name):
                    raise ValueError(f"{name!r} is not a plain file name")
                write_bytes(folder / name, data, root=self.root)
            write_json(folder / _ENTRY, {"key": key, "meta": meta,
                                         "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}},
                       root=self.root)
        except (OSError, OutputError, ValueError) as exc:
            logger.warning(f"{folder}: the work could not be kept ({exc}); the next run of these scenes makes it again")

    def prune(self) -> None:
        """Remove the entries used longest ago (older drawing versions first) until the folder is under its limit."""
        try:
            entries = []
            for folder in self.root.glob("*/*"):  # an entry a killed run left without its entry.json counts too
                if folder.is_symlink() or not folder.is_dir():
                    continue
                entry = folder / _ENTRY
                used = entry.lstat().st_mtime if entry.exists() else folder.lstat().st_mtime
                entries.append((used, sum(f.lstat().st_size for f in folder.iterdir()), folder))
            total = sum(size for _, size, _ in entries)
            current = drawing_version()[:16]
            for _, size, folder in sorted(entries, key=lambda e: (e[2].parent.name == current, e[0])):
                if total <= self.max_bytes:
                    break
                shutil.rmtree(folder, ignore_errors=True)
                total -= size
        except OSError as exc:
            logger.warning(f"{self.root}: kept work could not be pruned ({exc})")


def _key_or_none(reader: _Reader, parts: tuple[Any, ...], what: str) -> str | None:
    """The key of ``parts`` with the drawing version, or ``None`` (logged): what cannot be keyed is made, never guessed."""
    try:
        return reader.key((drawing_version(), *parts))
    except Uncacheable as exc:
        logger.debug(f"{what}: made, not looked up ({exc})")
    except Exception as exc:  # a value the walk misreads costs the work, never the run
        logger.warning(f"{what}: made, not looked up ({type(exc).__name__}: {exc}); this is a defect in burnscan")
    return None


def _read(path: Path, limit: int) -> bytes:
    """A regular file's bytes, up to ``limit``: a link, pipe or device in an entry's place is not one of ours."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        raise ValueError(f"{path.name} is not a kept file")
    return path.read_bytes()
