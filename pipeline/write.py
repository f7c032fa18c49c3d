"""Write outputs without ever losing or half-writing one: the only module that writes files.

A run writes into ``out/<aoi>/<run-id>.partial/`` and the folder is renamed to
``out/<aoi>/<run-id>/`` only when everything is in it; a run that fails leaves the
``.partial`` folder (named in the error) and no file under a final name. Every file is
first written to a temporary name in its folder and moved into place with an atomic
rename. Run ids carry the UTC second plus a random suffix and folders are created
exclusively, so two runs started in the same second never share a folder. ``latest``
is a small text file replaced only when a run completes.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import geopandas as gpd
import numpy as np
import rasterio
from matplotlib.figure import Figure

from .errors import OutputError
from .grid import Grid

def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()

__all__ = [
    "check_output_folder",
    "new_run_dir",
    "finish_run_dir",
    "atomic_path",
    "write_json",
    "write_text",
    "write_geotiff",
    "write_vector",
    "save_figure",
    "append_line",
    "write_new",
]


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` if the block succeeds.

    The temporary file has the final file's name inside a private temporary folder, because
    some formats record their own file name (GeoJSON's ``name``) and some drivers check the
    suffix (GeoPackage): the bytes must not depend on the temporary name.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp_path = staging / final.name
    tmp_path.touch()
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # outputs are meant to be shared, not owner-only
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except OSError as exc:
        raise OutputError(f"{final}: could not be written ({exc.strerror or exc}); free disk space or fix permissions") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # also drops any side files a driver left


def check_output_folder(folder: Path) -> Path:
    """Check, leaving nothing behind, that ``folder`` exists or can be created and written in."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
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
    parent = Path(out_root) / aoi_name
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
    write_text(final.parent / "latest", final.name + "\n")
    return final


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


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


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically, keys in insertion order, numpy scalars converted."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable) + "\n")


def write_geotiff(
    path: Path,
    array: np.ndarray,
    grid: Grid,
    *,
    nodata: float | int | None = None,
    band_names: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a ``(band, y, x)`` or ``(y, x)`` array on ``grid`` as a tiled, compressed GeoTIFF."""
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
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            if band_names:
                for i, name in enumerate(band_names, start=1):
                    dst.set_band_description(i, name)
            if tags:
                dst.update_tags(**tags)
    return Path(path)


def write_vector(path: Path, frames: dict[str, gpd.GeoDataFrame], *, driver: str = "GPKG") -> Path:
    """Write one or more layers (GeoPackage) or one frame (GeoJSON) atomically."""
    with atomic_path(path) as tmp:
        tmp.unlink()  # the vector driver creates the file itself
        for layer, frame in frames.items():
            kwargs = {"layer": layer} if driver == "GPKG" else {}
            frame.to_file(tmp, driver=driver, engine="pyogrio", append=driver == "GPKG" and tmp.exists(), **kwargs)
    return Path(path)


# Metadata keys that would carry a time stamp or a version string into the file's bytes.
_PNG_COMPRESS_LEVEL = 1  # lossless all the same; level 6 (the default) took 4 of a demo run's 23 s for 15 % smaller files
_FIGURE_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def save_figure(path: Path, figure: Figure, *, dpi: int | None = None) -> Path:
    """Save a matplotlib figure atomically as PNG or PDF (by suffix), without time stamps in it.

    PNG is at the figure's own resolution (300 dpi for the pipeline's figures) unless ``dpi``
    is given; PDF keeps text and outlines as vectors for print.
    """
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in _FIGURE_METADATA:
        raise ValueError(f"{path}: figures are saved as .png or .pdf, not {fmt or 'no suffix'!r}")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi or figure.dpi, metadata=_FIGURE_METADATA[fmt],
                       **({"pil_kwargs": {"compress_level": _PNG_COMPRESS_LEVEL}} if fmt == "png" else {}))
    return Path(path)



def save_figures(items: list[tuple[Path, Figure]], *, workers: int | None = None) -> list[Path]:
    """Save many figures at once, rendered on every core (:func:`pipeline.cores.fork_map`).

    Rendering and PNG encoding are a large part of a village run and each figure is
    independent; the bytes written are those :func:`save_figure` writes one by one.
    """
    from .cores import fork_map

    return fork_map(lambda i: save_figure(*items[i]), len(items), workers=workers)


def append_line(path: Path, make_line: Callable[[bytes], str]) -> str:
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
    try:
        new = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
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


def write_new(path: Path, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` with ``mode``, refusing to replace any existing file.

    For files that must never be overwritten silently (a private key: losing it loses the
    means to sign, replacing it breaks every signature checked with its public half). The
    bytes go to a temporary file created with ``mode`` from the start (a private key is never
    readable by others, not even for a moment), and are linked to the final name, which fails
    if that name exists: creation and refusal are one atomic step.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise OutputError(f"{path}: already exists; choose another path or move the existing file away first")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc}); choose a writable folder") from None
    tmp = staging / path.name
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)  # the umask must not widen or narrow what the caller asked for
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(f"{path}: already exists; choose another path or move the existing file away first") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc}); choose a writable folder") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
