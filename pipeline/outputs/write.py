"""Write outputs without ever losing or half-writing one, and never outside their place.

This is the only module that writes files. Every writer takes the folder its file belongs in
(``root``: the run folder, the AOI's data folder, the catalogue...) and refuses, before a
byte is written, a path that resolves outside it, symbolic links among its folders followed:
a name taken from an input (a STAC item's id, a zip member) can never choose where a file
lands. Names that become paths are checked first in :mod:`pipeline.names`; this is the
last guard.

A run writes into ``out/<aoi>/<run-id>.partial/`` and the folder is renamed to
``out/<aoi>/<run-id>/`` only when everything is in it; a run that fails leaves the
``.partial`` folder (named in the error) and no file under a final name. Every file is
first written in a hidden staging folder beside it and moved into place with an atomic
rename. Run ids carry the UTC second plus a random suffix and folders are created
exclusively, so two runs started in the same second never share a folder. ``latest``
is a relative symbolic link to the newest complete run folder (``latest -> <run-id>``),
replaced atomically when a run completes (a new link under a temporary name, then renamed
over the old one), so that it always points at a complete run, even when two runs finish at
once. Where the file system cannot hold a link, it is a small text file holding the run id;
:func:`latest_run_dir` reads either.

Staging folders (``.<name>.<random>.burnscan-staging``) hold an exclusive ``flock`` for as
long as their process works in them. The kernel releases it when the process ends, even
killed with ``kill -9``, so whoever stages next in the same folder can tell a folder left by
a dead process (lock free: removed) from one a concurrent command is filling (lock held:
kept). ``.partial`` run folders are never removed: they are left on purpose, for inspection.

Shared state that commands read, change and write back (the scene catalogue, the footprint
layer, the fire archives, review decisions) is changed under :func:`exclusive_lock`, so two
commands never both read the old state and the last one to write drops the other's change.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import geopandas as gpd
import numpy as np
import rasterio

from pipeline.errors import OutputError, ParameterError, PipelineError
from pipeline.grid import Grid
from pipeline.names import derived_name, safe_name

if TYPE_CHECKING:  # for annotations only: matplotlib's figure module is slow to import, and most writers never draw
    from matplotlib.figure import Figure


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()

__all__ = [
    "PNG_COMPRESS_LEVEL",
    "check_output_folder",
    "new_run_dir",
    "finish_run_dir",
    "latest_run_dir",
    "named_run_dir",
    "atomic_path",
    "exclusive_lock",
    "staging_folder",
    "remove_stale_staging",
    "remove_folder",
    "copy_file",
    "write_bytes",
    "write_json",
    "write_text",
    "write_geotiff",
    "write_cog",
    "write_vector",
    "save_figure",
    "save_figures",
    "append_line",
    "write_new",
]

STAGING_SUFFIX = ".burnscan-staging"
"""How every staging folder's name ends (after a leading dot), so stale ones can be found."""

_LOCK_TIMEOUT_S = 600.0  # an `add` of many scenes holds the catalogue for minutes; longer is a stuck command
_LOCK_TIMEOUT_MAX_S = 86400.0  # a day: past it, a command waits for one that will never finish
_LOCK_POLL_S = 0.1


def _check_inside(path: Path, root: Path, *, folder: bool = False) -> None:
    """Raise :class:`OutputError` unless ``path`` resolves (links followed) inside ``root``.

    A file must lie strictly inside ``root``; a ``folder`` may be ``root`` itself.
    """
    if "\0" in str(path) or "\0" in str(root):  # the operating system would stop at it: never a usable path
        raise OutputError(f"{str(path)!r}: a path with a NUL character cannot be written; fix the name at its source")
    try:
        base = Path(root).resolve()
        resolved = Path(path).resolve()
    except RuntimeError:  # pathlib's word for a loop of symbolic links
        raise OutputError(f"{path}: a symbolic link on the way loops back on itself; remove the link") from None
    if resolved.is_relative_to(base) and (folder or resolved != base):
        return
    raise OutputError(f"{path}: resolves to {resolved}, outside {root}, where it belongs; refusing to write there "
                      f"(a name taken from an input climbs out of the folder, or a symbolic link points elsewhere): "
                      f"fix the name at its source or remove the link")


@contextmanager
def exclusive_lock(path: Path, *, timeout: float | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of ``path`` (a file or folder of shared state) for the block.

    The lock is an ``flock`` on ``.<name>.lock`` beside ``path``; it is released when the block
    ends and by the kernel if the process dies, so a killed command never leaves it held.
    A command that finds it held waits, up to ``timeout`` seconds (default 600, or
    ``BURNSCAN_LOCK_TIMEOUT``), then fails in one line. The lock file itself stays: removing
    it would let a third command lock a new file while the second still holds the old one.

    Raises
    ------
    OutputError
        When the lock cannot be created, or another command holds it past ``timeout``.
    """
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    if timeout is None:
        setting = os.environ.get("BURNSCAN_LOCK_TIMEOUT", "")
        try:
            timeout = float(setting) if setting else _LOCK_TIMEOUT_S
        except ValueError:
            timeout = math.nan
        if not 0 <= timeout <= _LOCK_TIMEOUT_MAX_S:  # NaN and infinity too: a command must end
            raise ParameterError(f"BURNSCAN_LOCK_TIMEOUT={setting!r} is not a number of seconds from 0 to "
                                 f"{_LOCK_TIMEOUT_MAX_S:.0f}; set it to e.g. 600 or unset it") from None
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except PermissionError:  # made by a colleague: reading is enough to lock it
            fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise OutputError(f"{lock}: cannot create the lock ({exc.strerror or exc}); fix the permissions of "
                          f"{lock.parent}") from None
    try:
        deadline, said = time.monotonic() + timeout, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:  # a command waiting in silence looks hung
                    logging.getLogger(__name__).warning(f"{path}: another burnscan command is updating it; waiting up to {timeout:.0f} s for it")
                    said = True
                if time.monotonic() >= deadline:
                    raise OutputError(f"{path}: another burnscan command is updating it (its lock {lock} was held for "
                                      f"over {timeout:.0f} s); wait for that command to finish, then run this one again") from None
                time.sleep(_LOCK_POLL_S)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _is_staging(name: str) -> bool:
    return name.startswith(".") and name.endswith(STAGING_SUFFIX)


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging folders in ``parent`` whose process is gone; return them.

    A folder whose lock is held belongs to a live command and is kept. Only names of the
    staging pattern are looked at, and links are never followed: nothing else is touched.
    """
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(parent) if _is_staging(e.name)]
    except OSError:
        return removed  # no folder yet, or not readable: nothing of ours can be there
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone meanwhile, or a link or file that merely has the name
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live command is staging there
            try:
                if os.path.samestat(os.fstat(fd), os.stat(entry.path, follow_symlinks=False)):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(Path(entry.path))
            except OSError:
                continue
        finally:
            os.close(fd)
    return removed


def _new_staging(parent: Path, label: str) -> tuple[Path, int]:
    """A fresh staging folder in ``parent`` and the open descriptor that holds its lock."""
    for _ in range(10):
        folder = Path(tempfile.mkdtemp(prefix=f".{label}.", suffix=STAGING_SUFFIX, dir=parent))
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue  # another command's clean-up took it before its lock was held (figures saved in parallel): take another
        # Blocking: only another command's clean-up can hold the lock of a folder this new, and
        # only while it removes it, in the instant between mkdtemp and here.
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(folder, follow_symlinks=False)):
                os.chmod(folder, 0o777 & ~_UMASK)  # shared like every output, not owner-only like mkdtemp's
                return folder, fd
        except FileNotFoundError:
            pass  # that clean-up removed it: take another
        os.close(fd)
    raise OutputError(f"{parent}: could not create a staging folder (removed as soon as created); "
                      f"check that no other program empties {parent}")


@contextmanager
def staging_folder(parent: Path, label: str, *, root: Path) -> Iterator[Path]:
    """Yield a new hidden folder in ``parent``, locked for the block and removed after it.

    Stale staging folders of dead processes in ``parent`` are removed first. The block may
    rename the folder into place (the lock follows it and ends with the block); otherwise
    whatever is in it is removed. ``parent`` must lie inside ``root``.

    Raises
    ------
    OutputError
        When ``parent`` is outside ``root`` or the folder cannot be created.
    """
    parent = Path(parent)
    _check_inside(parent, root, folder=True)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _check_inside(parent, root, folder=True)  # again, now that every folder exists: a link among them is followed
        remove_stale_staging(parent)
        folder, fd = _new_staging(parent, derived_name(label)[:80])
    except PipelineError:
        raise
    except OSError as exc:
        raise OutputError(f"{parent}: cannot create a folder there ({exc.strerror or exc}); "
                          f"free disk space or fix permissions") from None
    try:
        yield folder
    finally:
        try:
            if os.path.samestat(os.fstat(fd), os.stat(folder, follow_symlinks=False)):
                shutil.rmtree(folder, ignore_errors=True)  # also drops any side files a driver left
        except OSError:
            pass  # renamed into place by the block, or already gone
        finally:
            os.close(fd)


def remove_folder(folder: Path, *, root: Path) -> None:
    """Remove ``folder`` and everything in it, if it lies inside ``root`` (never root itself)."""
    folder = Path(folder)
    _check_inside(folder, root)
    if folder.is_symlink():
        folder.unlink()
    else:
        shutil.rmtree(folder, ignore_errors=True)


def _link_new(tmp_path: Path, final: Path) -> None:
    """Move ``tmp_path`` to ``final`` only if no file has that name (raises FileExistsError)."""
    try:
        os.link(tmp_path, final)  # atomic, and fails if the name is taken
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # A file system without hard links: reserve the name exclusively, then fill it.
        os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp_path, final)


@contextmanager
def atomic_path(final: Path, *, root: Path, exclusive: bool = False, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path for ``final``; move it onto ``final`` if the block succeeds.

    ``final`` must resolve inside ``root`` (links among its folders followed), checked before
    anything is written and again before the move. The temporary file has the final file's
    name inside a private staging folder beside it, because some formats record their own
    file name (GeoJSON's ``name``) and some drivers check the suffix (GeoPackage): the bytes
    must not depend on the temporary name. With ``exclusive`` an existing ``final`` is never
    replaced: the move fails instead. ``mode`` sets the file's permissions from its creation
    (a private key is never readable by others, not even for a moment); by default outputs
    are shared as the umask allows.

    Raises
    ------
    OutputError
        When ``final`` lies outside ``root``, exists already (``exclusive``), or cannot be written.
    """
    final = Path(final)
    _check_inside(final, root)
    try:
        with staging_folder(final.parent, final.name, root=root) as staging:
            tmp_path = staging / final.name
            wanted = 0o666 & ~_UMASK if mode is None else mode  # outputs are meant to be shared, not owner-only
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, wanted)
            try:
                os.fchmod(fd, wanted)  # the umask must not narrow or widen what is asked
            finally:
                os.close(fd)
            yield tmp_path
            _check_inside(final, root)  # a link put in place while the block ran is refused too
            if not exclusive:
                os.replace(tmp_path, final)
            else:
                try:
                    _link_new(tmp_path, final)
                except FileExistsError:
                    raise OutputError(f"{final}: already exists and is never written over; remove it or choose "
                                      f"another name") from None
    except PipelineError:
        raise
    except OSError as exc:
        raise OutputError(f"{final}: could not be written ({exc.strerror or exc}); free disk space or fix permissions") from None


def check_output_folder(folder: Path) -> Path:
    """Check, leaving nothing behind, that ``folder`` exists or can be created and written in."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # makedirs would fail on it with "File exists", after minutes of work
            raise OutputError(f"{folder}: cannot create the output folder ({existing} is a symbolic link to "
                              f"{os.readlink(existing)}, which does not exist); create that folder or choose another --out")
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{folder}: cannot create the output folder ({existing} is a file); choose a writable --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: cannot create the output folder or write in it (permission denied on {existing}); "
                          f"choose a writable --out")
    # Permission bits do not tell everything (root is let through, /proc and read-only mounts
    # refuse anyway): make and remove an empty folder where the run folder would go.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".burnscan-check-", dir=existing))
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the output folder ({exc.strerror or exc} in {existing}); "
                          f"choose a writable --out") from None
    return folder


def new_run_dir(out_root: Path, aoi_name: str, *, now: datetime | None = None) -> tuple[str, Path]:
    """Create a fresh, exclusive ``<out_root>/<aoi>/<run-id>.partial`` folder."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    parent = Path(out_root) / safe_name(aoi_name, what="AOI name", error=OutputError)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{parent}: cannot create the output folder ({exc.strerror}); choose a writable --out") from None
    for _ in range(20):
        run_id = f"{stamp}-{secrets.token_hex(3)}"
        partial = parent / f"{run_id}.partial"
        if (parent / run_id).exists():
            continue
        try:
            partial.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{partial}: cannot create the run folder ({exc.strerror}); choose a writable --out") from None
        return run_id, partial
    raise OutputError(f"{parent}: could not find a free run id; remove stale *.partial folders")


def finish_run_dir(partial: Path) -> Path:
    """Rename a complete ``.partial`` run folder to its final name and point ``latest`` at it."""
    final = partial.with_name(partial.name.removesuffix(".partial"))
    try:
        os.rename(partial, final)
    except OSError as exc:
        raise OutputError(f"{partial}: run is complete but could not be renamed ({exc.strerror}); rename it by hand") from None
    _point_latest(final)
    return final


LATEST = "latest"
"""The name, in ``<out>/<aoi>/``, of the link (or text file) that names the newest complete run."""


def _point_latest(final: Path) -> None:
    """Point ``<out>/<aoi>/latest`` at the complete run folder ``final``, atomically.

    A relative link, so that the output tree can be moved or copied whole. A new link is made
    under a unique temporary name and renamed over ``latest``: a rename is atomic, so a reader
    (or a second run finishing at the same moment) sees the old complete run or the new one,
    never a missing or half-written ``latest``. A file system without symbolic links (some
    network and FAT mounts) gets the text file instead.
    """
    parent = final.parent
    _check_inside(final, parent)
    tmp = parent / f".{LATEST}.{secrets.token_hex(6)}.tmp"
    try:
        os.symlink(final.name, tmp)
    except OSError:  # no links here (EPERM, EOPNOTSUPP...): the run id as text, written atomically
        write_text(parent / LATEST, final.name + "\n", root=parent)
        return
    try:
        os.replace(tmp, parent / LATEST)
    except OSError as exc:  # e.g. a folder copied in its place: the run is complete and sealed all the same
        try:
            os.unlink(tmp)
        except OSError:
            pass
        logging.getLogger(__name__).warning(
            f"{parent / LATEST}: could not point at the new run ({exc.strerror or exc}); the run {final} is complete: "
            f"give it by name, and remove {parent / LATEST} so that the next run can replace it")


def latest_run_dir(aoi_folder: Path) -> Path | None:
    """The run folder ``<out>/<aoi>/latest`` names (a link, or a text file holding a run id); None if there is none.

    Either form must name one run folder of ``aoi_folder`` by its plain name: a link or a
    text that leads anywhere else (``../../etc``, an absolute path) is refused, never followed.

    Raises
    ------
    OutputError
        When ``latest`` names something other than a run folder beside it.
    """
    latest = Path(aoi_folder) / LATEST
    try:
        if latest.is_symlink():
            named, what = os.readlink(latest), "run id the link points to"
        elif latest.is_file():
            named, what = latest.read_text(encoding="utf-8").strip(), "run id"
        else:
            return None
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"{latest}: cannot be read ({exc}); remove it and give the run folder by name") from None
    run_dir = latest.parent / safe_name(named, what=what, source=latest, error=OutputError)
    if not run_dir.is_dir():
        raise OutputError(f"{latest}: names {named!r}, which is not a run folder beside it; remove {latest} and give "
                          f"the run folder by name")
    return run_dir


def named_run_dir(path: Path) -> Path:
    """The run folder a command was given: ``path`` itself, or for ``<out>/<aoi>/latest`` the run it names now.

    Read once, when the command starts: a re-run moves ``latest`` to the new run, and must still
    compare with the run it was given. Either form of ``latest`` (link or text file) is accepted.
    """
    path = Path(path)
    if path.name == LATEST and (path.is_symlink() or path.is_file()):
        return latest_run_dir(path.parent) or path
    return path


def write_text(path: Path, text: str, *, root: Path) -> Path:
    """Write UTF-8 text atomically, inside ``root``."""
    with atomic_path(path, root=root) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: Path, data: bytes, *, root: Path) -> Path:
    """Write bytes atomically, inside ``root``."""
    with atomic_path(path, root=root) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def copy_file(source: Path, target: Path, *, root: Path, exclusive: bool = False) -> Path:
    """Copy ``source`` to ``target`` (inside ``root``) atomically, keeping its modification time.

    With ``exclusive`` an existing ``target`` is never replaced (:class:`OutputError`).
    """
    with atomic_path(target, root=root, exclusive=exclusive) as tmp:
        shutil.copy2(source, tmp)
    return Path(target)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, datetime)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path: Path, data: Any, *, root: Path) -> Path:
    """Write JSON atomically inside ``root``, keys in insertion order, numpy scalars converted."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable) + "\n", root=root)


def write_geotiff(
    path: Path,
    array: np.ndarray,
    grid: Grid,
    *,
    root: Path,
    nodata: float | int | None = None,
    band_names: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a ``(band, y, x)`` or ``(y, x)`` array on ``grid`` as a tiled, compressed GeoTIFF inside ``root``."""
    data = array[None] if array.ndim == 2 else array
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with atomic_path(path, root=root) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            if band_names:
                for i, name in enumerate(band_names, start=1):
                    dst.set_band_description(i, name)
            if tags:
                dst.update_tags(**tags)
    return Path(path)


@lru_cache(maxsize=1)
def _has_cog_driver() -> bool:
    with rasterio.Env() as env:
        return "COG" in env.drivers()


def write_cog(
    path: Path,
    array: np.ndarray,
    grid: Grid,
    *,
    root: Path,
    nodata: float | int | None = None,
    band_names: list[str] | None = None,
    band_tags: list[dict[str, str]] | None = None,
    tags: dict[str, str] | None = None,
    resampling: str = "average",
) -> Path:
    """Write a ``(band, y, x)`` or ``(y, x)`` array on ``grid`` as a Cloud-Optimised GeoTIFF inside ``root``.

    GDAL's COG driver (GDAL >= 3.1) lays out tiles, overviews and the header so that a GIS or a
    web viewer reads only the part it shows; it only copies a finished dataset, so the array is
    first written to an in-memory GeoTIFF with its descriptions and tags, then copied. Deflate
    with the predictor that suits the type keeps it lossless and small.
    ``resampling`` builds the overviews: ``average`` for measurements, ``nearest`` for
    categories (a date index must never be averaged into another date).
    """
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as copy_dataset

    if not _has_cog_driver():
        raise OutputError(f"{path}: this GDAL ({rasterio.__gdal_version__}) has no COG driver (GDAL 3.1 or later has it); "
                          f"install burnscan's pinned packages (make) to write Cloud-Optimised GeoTIFFs")
    data = array[None] if array.ndim == 2 else array
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": data.shape[0],
               "dtype": data.dtype.name, "crs": grid.crs, "transform": grid.transform, "nodata": nodata}
    with atomic_path(path, root=root) as tmp, MemoryFile() as memory:
        with memory.open(**profile) as mem:
            mem.write(data)
            for i, name in enumerate(band_names or [], start=1):
                mem.set_band_description(i, name)
            for i, band in enumerate(band_tags or [], start=1):
                mem.update_tags(i, **band)
            if tags:
                mem.update_tags(**tags)
            # PREDICTOR=YES: floating-point prediction for floats, horizontal differencing for integers.
            # Overviews down to one block: a village AOI gets one or two levels, a few ms each.
            # Deflate level 1: half the time of the default 6 for files under 1 % larger (measured on
            # the demo's change and composite rasters, whose sensor noise compresses little either way).
            copy_dataset(mem, tmp, driver="COG", compress="deflate", level=1, predictor="YES", blocksize=256,
                         overview_resampling=resampling)
    return Path(path)


def write_vector(path: Path, frames: dict[str, gpd.GeoDataFrame], *, root: Path, driver: str = "GPKG",
                 description: str | None = None) -> Path:
    """Write one or more layers (GeoPackage) or one frame (GeoJSON) atomically, inside ``root``.

    ``description`` is written as every layer's description (GeoPackage) or the file's (GeoJSON), which a GIS
    shows with the layer's properties.
    """
    with atomic_path(path, root=root) as tmp:
        tmp.unlink()  # the vector driver creates the file itself
        for layer, frame in frames.items():
            kwargs: dict[str, Any] = {"layer": layer} if driver == "GPKG" else {}
            if description is not None:
                kwargs["layer_options"] = {"DESCRIPTION": description}
            frame.to_file(tmp, driver=driver, engine="pyogrio", append=driver == "GPKG" and tmp.exists(), **kwargs)
    return Path(path)


# Metadata keys that would carry a time stamp or a version string into the file's bytes.
PNG_COMPRESS_LEVEL = 1  # lossless all the same; level 6 (the default) took 4 of a demo run's 23 s for 15 % smaller files
_FIGURE_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def save_figure(path: Path, figure: Figure, *, root: Path, dpi: int | None = None) -> Path:
    """Save a matplotlib figure atomically inside ``root`` as PNG or PDF (by suffix), without time stamps in it.

    PNG is at the figure's own resolution (300 dpi for the pipeline's figures) unless ``dpi``
    is given; PDF keeps text and outlines as vectors for print.
    """
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in _FIGURE_METADATA:
        raise ValueError(f"{path}: figures are saved as .png or .pdf, not {fmt or 'no suffix'!r}")
    with atomic_path(path, root=root) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi or figure.dpi, metadata=_FIGURE_METADATA[fmt],
                       **({"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}} if fmt == "png" else {}))
    return Path(path)



def save_figures(items: list[tuple[Path, Figure]], *, root: Path, workers: int | None = None) -> list[Path]:
    """Save many figures at once, rendered on every core (:func:`pipeline.cores.fork_map`).

    Rendering and PNG encoding are a large part of a village run and each figure is
    independent; the bytes written are those :func:`save_figure` writes one by one.
    """
    from pipeline.cores import fork_map

    return fork_map(lambda i: save_figure(*items[i], root=root), len(items), workers=workers)


def append_line(path: Path, make_line: Callable[[bytes], str], *, root: Path) -> str:
    """Append one line to an append-only log, built from the log as it stands, under a lock.

    ``make_line`` receives the file's current bytes (empty for a new log) and returns the line
    to add, without its newline. The exclusive ``flock`` is held from reading to writing, so
    two runs finishing together chain their lines one after the other, never both onto the
    same previous line; ``O_APPEND`` never writes over what is there, and the line is fsynced
    before the lock is released, so a log line exists on disk before the run is called done.

    Returns
    -------
    str
        The line written.
    """
    path = Path(path)
    _check_inside(path, root)
    try:
        new = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise OutputError(f"{path}: cannot open the log ({exc.strerror or exc}); free disk space or fix permissions") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "rb") as reader:
            current = reader.read()
        line = make_line(current)
        if "\n" in line:  # a second line would break the one-record-per-line chain
            raise ValueError(f"{path}: a log record must be one line")
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
        if new:  # the log's name must survive a crash as well as its line
            parent = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(parent)
            finally:
                os.close(parent)
    except OSError as exc:
        raise OutputError(f"{path}: could not append to the log ({exc.strerror or exc}); free disk space or fix permissions") from None
    finally:
        os.close(fd)  # closing releases the lock
    return line


def write_new(path: Path, data: bytes, *, root: Path, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` with ``mode``, refusing to replace any existing file.

    For files that must never be overwritten silently (a private key: losing it loses the
    means to sign, replacing it breaks every signature checked with its public half). The
    bytes go to a temporary file created with ``mode`` from the start (a private key is never
    readable by others, not even for a moment), and are linked to the final name, which fails
    if that name exists: creation and refusal are one atomic step (:func:`atomic_path` with
    ``exclusive``).
    """
    with atomic_path(path, root=root, exclusive=True, mode=mode) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)
