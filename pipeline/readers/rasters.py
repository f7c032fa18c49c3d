"""Raster primitives every scene reader shares: checked opens, hashes, times, warping onto a grid.

Each scene is a Planet-style delivery: a surface-reflectance GeoTIFF
(``*_AnalyticMS_SR*.tif``, reflectance x 10000, nodata 0), an optional UDM2 quality
mask (``*_udm2*.tif``) and an optional ``*_metadata*.json`` with the acquisition time.
Every scene is warped onto one grid (bilinear for reflectance, nearest for the mask),
so later stages compare the same ground pixel across dates. Files are opened read-only
and hashed, so the report can cite exactly what it read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import threading
import warnings
from contextlib import contextmanager

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import rasterio
from affine import Affine
import xarray as xr
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import CRSError, NotGeoreferencedWarning
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from pipeline.errors import PipelineError, SceneError
from pipeline.model import SceneRecord, file_with_digest, reflectance_digests
from pipeline.grid import Grid, grid_for_bounds
from pipeline.stages.plausibility import implausible_dtype, implausible_time, too_coarse

__all__ = ["stack_scenes", "native_grid", "read_band", "read_mask", "sha256_file", "memoised_hashes", "file_footprint",
           "metadata_footprint", "check_regular_file", "read_small_file", "is_regular_file", "in_system_folder", "check_time",
           "field_error", "field_number", "warp_to_grid", "warp_float", "read_reflectance", "read_quality_mask", "check_overlap", "check_numeric",
           "band_names", "pixel_size_m", "open_raster"]

# Everything GDAL or rasterio raise for a file they cannot read, open or warp.
UNREADABLE = (RasterioError, CPLE_BaseError)


def short(exc: BaseException) -> str:
    """The gist of a library error: GDAL and PROJ can quote a whole CRS definition, and rasterio's "Read failed. See
    previous exception for details." has GDAL's own words (which block of which band) in the error it was raised from."""
    if "See previous exception" in str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = " ".join(str(exc).split(" from '")[0].split())
    return text if len(text) <= 160 else text[:157] + "..."


def open_raster(path: Path) -> rasterio.io.DatasetReader:
    """``rasterio.open(path)`` for reading, refusing a file placed by nothing in one line naming it.

    rasterio warns (two lines on stderr) when a file has no geotransform, no control points and
    no RPCs, then hands back an identity transform that would put the scene at 0, 0 in pixel
    units. The warning is muted for the open alone and the file refused here instead.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
        src = rasterio.open(path)
    if src.transform.is_identity and not src.gcps[0] and src.rpcs is None:
        src.close()
        raise SceneError(f"{path}: no geotransform in the file (it is not placed on the Earth); use a georeferenced "
                         f"delivery (GeoTIFF with its CRS and geotransform)")
    return src


_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def check_regular_file(path: Path, *, error: type[PipelineError] = SceneError, fix: str = "give the scene's file itself") -> None:
    """Refuse anything but a regular file (or a link to one), without opening it.

    Opening a named pipe blocks until something writes to it, and a device can stream for
    ever: a scene, mask or metadata file named like one would hang the run. ``stat`` never
    blocks. ``error`` and ``fix`` suit the message to files other than scenes (a key, an outline).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise error(f"{path}: cannot be examined ({exc.strerror or exc}); check the path and its permissions") from None
    for test, kind in _NOT_REGULAR:
        if test(mode):
            raise error(f"{path}: is {kind}, not a regular file; {fix}")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: is not a regular file; {fix}")


def read_small_file(path: Path, limit: int, *, what: str, fix: str, error: type[PipelineError] = SceneError) -> bytes:
    """The bytes of a small file named on the command line (a key, an outline), at most ``limit`` of them.

    Read whole, /dev/zero or a file of gigabytes fills the memory before any check of its
    content: a pipe or device is refused unopened (:func:`check_regular_file`), a larger file by
    its size, and at most ``limit + 1`` bytes are read, in case it grows in the meantime.
    ``what`` names the file in messages ("public key"), ``fix`` says what to give instead.
    """
    check_regular_file(path, error=error, fix=fix)
    data = b""
    try:
        # O_NONBLOCK: a file swapped for a pipe after the check above must not block the open.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise error(f"{path}: is not a regular file; {fix}")
            size = info.st_size
            if size <= limit:
                data = handle.read(limit + 1)
    except OSError as exc:
        if isinstance(exc, PipelineError):
            raise
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}); {fix}") from None
    if size > limit or len(data) > limit:
        raise error(f"{path}: a {_bytes_shown(max(size, len(data)))} file, over the {_bytes_shown(limit)} limit for a {what}; {fix}")
    return data


def _bytes_shown(count: int) -> str:
    """A size for a message: ``1.5 GB``, ``64 kB``, ``12 bytes``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def is_regular_file(path: Path) -> bool:
    """True when ``path`` is a regular file (or a link to one); False for anything else, never raising.

    Paths written in a manifest or an item can be anything: a name too long for the file
    system, a loop of links, a NUL. Asking whether such a path is a file must answer "no",
    not end the run with an operating-system error.
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False


_SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


def in_system_folder(path: Path) -> bool:
    """True for a path in /proc, /sys or /dev (after links): the kernel's views of itself,
    where walking never ends and files are not what their size says."""
    resolved = Path(os.path.realpath(path))
    return any(resolved == root or resolved.is_relative_to(root) for root in _SYSTEM_FOLDERS)


def _shown(value: object) -> str:
    """A field's value for a message: its JSON kind and the start of its text."""
    kinds = {type(None): "null", bool: "a boolean", str: "a string", list: "a list", dict: "an object"}
    kind = kinds.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return kind if value is None else f"{kind} ({text if len(text) <= 40 else text[:37] + '...'})"


def field_error(path: Path, field: str, value: object, expected: str, fix: str) -> SceneError:
    """One line naming the file, the field, its value, what it should be and the fix."""
    return SceneError(f"{path}: field {field!r} is {_shown(value)}, expected {expected}; {fix}")


def field_number(path: Path, field: str, value: object, fix: str) -> float:
    """A numeric field (a JSON number or, as in MTL and XML files, a number written as text),
    finite; else :func:`field_error`. Booleans are not numbers here."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise field_error(path, field, value, "a finite number", fix)
    return number


def stated_time(text: Any) -> datetime:
    """An ISO 8601 acquisition time that states its time of day and its time zone, as an aware datetime.

    A date alone would become a midnight reported as known (the day before, in local time, west of
    Greenwich), and a time without its zone an hour guessed as UTC: both raise ``ValueError`` saying which.

    >>> stated_time("2024-01-28T10:38:00Z").isoformat()
    '2024-01-28T10:38:00+00:00'
    >>> stated_time("2024-01-28")
    Traceback (most recent call last):
    ValueError: gives a date but no time of day
    >>> stated_time("2016-12-31T23:59:60Z")
    Traceback (most recent call last):
    ValueError: is a leap second or an end-of-day 24:00, which cannot be stored; give the second before (23:59:59) or the next day's 00:00
    """
    raw = str(text).strip()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        if re.search(r"T(23:59:60|24:00(:00)?)", raw):  # valid ISO 8601, which no datetime library holds
            raise ValueError("is a leap second or an end-of-day 24:00, which cannot be stored; give the second before "
                             "(23:59:59) or the next day's 00:00") from None
        raise ValueError("is not ISO 8601") from None
    if len(raw) <= 10:  # YYYY-MM-DD (or YYYYMMDD): fromisoformat reads a date as its midnight
        raise ValueError("gives a date but no time of day")
    if when.tzinfo is None:
        raise ValueError("states no time zone")
    return when


def check_time(when: datetime, *, sensor: str, where: Path | str) -> datetime:
    """``when`` (UTC when naive) if ``sensor`` can have acquired it; else one line naming ``where``."""
    problem = implausible_time(when, sensor=sensor)
    if problem:
        raise SceneError(f"{where}: {problem}; fix the acquisition time in the metadata (or give the right one)")
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


# Planet's 4-band analytic order; 8-band SuperDove deliveries name their bands in the file.
_PLANET_4BAND = ("blue", "green", "red", "nir")
_SUPERDOVE_8BAND = ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir")
REQUIRED_BANDS = ("green", "red", "nir")
REFLECTANCE_SCALE = 10000.0
MAX_METADATA_BYTES = 10_000_000  # a Planet metadata JSON is a few kB; a STAC item tens of kB
_MAX_SIDE_PX = 200_000  # a Sentinel-2 tile is 10980 px, a PlanetScope strip some 25000
_MAX_BANDS = 64



_HASH_MEMO = threading.local()
_KNOWN_HASHES: dict[tuple, str] = {}


@contextmanager
def memoised_hashes() -> Iterator[None]:
    """Within this block, a file unchanged since it was last hashed (same inode, size,
    modification and change times) is not read again.

    Chunks of a large scene each load every scene file; hashing hundreds of megabytes per
    chunk would cost more than the analysis. Outside the block (``verify``, ``add``) every
    hash reads the bytes.
    """
    before = getattr(_HASH_MEMO, "on", False)
    _HASH_MEMO.on = True
    try:
        yield
    finally:
        _HASH_MEMO.on = before


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (a pipe or device is refused, never opened)."""
    check_regular_file(path)
    key = None
    if getattr(_HASH_MEMO, "on", False):
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key in _KNOWN_HASHES:
            return _KNOWN_HASHES[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if key is not None:
        _KNOWN_HASHES[key] = digest.hexdigest()
    return digest.hexdigest()


def band_names(src: rasterio.io.DatasetReader, path: Path) -> tuple[str, ...]:
    """Band names from the file's descriptions, else Planet's delivery order."""
    described = tuple((d or "").strip().lower() for d in src.descriptions)
    if all(described):
        return described
    if src.count == 4:
        return _PLANET_4BAND
    if src.count == 8:
        return _SUPERDOVE_8BAND
    raise SceneError(
        f"{path}: {src.count} bands without band names; expected Planet 4-band (B, G, R, NIR) or "
        f"8-band SuperDove, or set band descriptions"
    )


def _offset_on_grid(src: rasterio.io.DatasetReader, grid: Grid) -> tuple[int, int] | None:
    """``(row, col)`` of ``grid``'s first pixel among ``src``'s pixels, where ``src`` already lies on the grid: the same
    CRS and pixel, no rotation, pixel edges on the grid's, and nodata (or nothing) as its only mask. Else ``None``.

    Warping such a file onto the grid returns its own pixel values (each grid pixel centre falls on a source pixel
    centre), so a windowed read gives the same numbers for a fraction of the work.
    """
    a, g = src.transform, grid.transform
    if src.crs is None or a.b or a.d or g.b or g.d or a.a != g.a or a.e != g.e:
        return None
    if any(set(flags) - {MaskFlags.all_valid, MaskFlags.nodata} for flags in src.mask_flag_enums):
        return None  # an internal mask or alpha band: the warper reads it, a plain read would not
    try:
        if src.crs != CRS.from_user_input(grid.crs):
            return None
    except CRSError:
        return None
    col, row = (g.c - a.c) / a.a, (g.f - a.f) / a.e
    if abs(col - round(col)) > 1e-9 or abs(row - round(row)) > 1e-9:
        return None
    return int(round(row)), int(round(col))


def _read_on_grid(src: rasterio.io.DatasetReader, grid: Grid, offset: tuple[int, int], dtype: str,
                  fill: float) -> np.ndarray:
    """All bands of ``src`` (which lies on ``grid`` at ``offset``) on the grid, ``fill`` outside the file."""
    row, col = offset
    out = np.full((src.count, grid.height, grid.width), fill, dtype=dtype)
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + grid.height, src.height), min(col + grid.width, src.width)
    if bottom > top and right > left:
        window = Window(left, top, right - left, bottom - top)
        out[:, top - row:bottom - row, left - col:right - col] = src.read(window=window).astype(dtype)
    return out


@contextmanager
def _north_up(src: rasterio.io.DatasetReader) -> Iterator[rasterio.io.DatasetReader]:
    """``src`` itself, or for a file stored south-up or east-to-west (a positive y or negative x pixel
    size) a view of it on the same pixels stored north-up.

    GDAL warps such a file to the right place, but not to the same numbers: onto a grid whose
    pixels fall on the file's own, a bilinear warp of a south-up file blends neighbouring rows
    where the north-up file is read exactly. The view is a nearest-neighbour warp onto the file's
    own pixels in the usual order (an exact reordering), so the rest reads it as a north-up file.
    """
    t = src.transform
    if t.b or t.d or (t.a > 0 and t.e < 0):
        yield src
        return
    left, _, _, top = file_bounds(src)
    with WarpedVRT(src, crs=src.crs, transform=Affine(abs(t.a), 0.0, left, 0.0, -abs(t.e), top), width=src.width,
                   height=src.height, resampling=Resampling.nearest) as view:
        yield view


def warp_to_grid(src: rasterio.io.DatasetReader, grid: Grid, resampling: Resampling, nodata: float | None) -> np.ndarray:
    """Read ``src`` resampled onto ``grid`` (all bands); a file already on the grid is read, not warped."""
    with _north_up(src) as src:
        offset = _offset_on_grid(src, grid)
        if offset is not None and nodata is not None and (src.nodata is None or src.nodata == nodata):
            return _read_on_grid(src, grid, offset, src.dtypes[0], nodata)
        with WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=resampling,
            src_nodata=nodata,
            nodata=nodata,
        ) as vrt:
            return vrt.read()


def no_crs_error(src: rasterio.io.DatasetReader, path: Path) -> SceneError:
    """The error for a raster without a CRS and geotransform, saying what it has instead and how to grid it.

    A file placed by ground control points or by rational polynomial coefficients (a product not yet
    orthorectified) is georeferenced, but not on a grid: warped here without the terrain model its
    maker used, it would be placed by guesswork, so it is refused with the GDAL command that grids it.
    """
    points, points_crs = src.gcps
    if points and points_crs is not None:
        return SceneError(f"{path}: placed by {len(points)} ground control points, with no geotransform; put it on a grid "
                          f"first (gdalwarp -r cubic -t_srs {points_crs.to_string()} {path} gridded.tif) and use that file")
    if src.rpcs is not None:
        return SceneError(f"{path}: placed by rational polynomial coefficients (not orthorectified), with no geotransform; "
                          f"orthorectify it first (gdalwarp -rpc -r cubic -t_srs EPSG:<its UTM zone> {path} ortho.tif, "
                          f"with a DEM for the terrain) or use the provider's orthorectified product")
    return SceneError(f"{path}: no CRS in the file; use a georeferenced delivery (GeoTIFF with its CRS)")


EXPORT_REFLECTANCE = ("use the provider's surface-reflectance product (PlanetScope SR, Sentinel-2 L2A, Landsat Level-2), or export "
                      "surface reflectance as 16-bit integers (reflectance x 10000) or as floating-point reflectance")
"""The fix for a file whose values cannot be read as surface reflectance."""


def check_numeric(src: rasterio.io.DatasetReader, path: Path, *, fix: str = EXPORT_REFLECTANCE) -> None:
    """Refuse a raster whose values are not real numbers (complex, boolean), before anything casts them:
    a cast to float drops a complex value's imaginary part with only a warning."""
    for dtype in dict.fromkeys(src.dtypes):
        problem = implausible_dtype(dtype)
        if problem:
            raise SceneError(f"{path}: {problem}; {fix}")


def _bounds_in(src: rasterio.io.DatasetReader, crs: str | CRS, path: Path, *,
              densify_pts: int = 21) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of ``src`` in ``crs``; one line naming ``path`` when its CRS cannot get there.

    A local (engineering) CRS, a site grid in metres from an arbitrary origin, has no place on the
    Earth: PROJ finds no way to any other CRS, and the file is not broken but not georeferenced,
    so the fix is to georeference or reproject it, not to download it again.
    """
    try:
        return transform_bounds(src.crs, crs, *file_bounds(src), densify_pts=densify_pts)
    except Exception as exc:  # PROJ and GDAL raise several types for impossible transforms
        text = src.crs.to_string()
        crs_name = text if len(text) <= 60 else text[:57] + "..."
        if not (src.crs.is_geographic or src.crs.is_projected):
            raise SceneError(f"{path}: CRS {crs_name} is a local CRS, which cannot be placed on the Earth (cannot be "
                             f"projected to {crs}); georeference the file (gdal_translate -gcp, then gdalwarp -t_srs "
                             f"EPSG:<its UTM zone>) or reproject it to a known CRS") from None
        reason = short(exc).split(" from ")[0][:120] or "no transformation"
        raise SceneError(f"{path}: CRS {crs_name} cannot be projected to {crs} ({reason}); reproject the file to a known CRS") from None


def check_overlap(src: rasterio.io.DatasetReader, grid: Grid, path: Path) -> None:
    check_numeric(src, path)
    if max(src.width, src.height) > _MAX_SIDE_PX or src.count > _MAX_BANDS:
        raise SceneError(f"{path}: header claims {src.width} x {src.height} pixels in {src.count} bands, beyond any "
                         f"satellite scene (a decompression bomb or a corrupt header); replace the file")
    if src.crs is None:
        raise no_crs_error(src, path)
    left, bottom, right, top = _bounds_in(src, grid.crs, path)
    g_left, g_bottom, g_right, g_top = grid.bounds
    if right <= g_left or left >= g_right or top <= g_bottom or bottom >= g_top:
        raise SceneError(f"{path}: scene does not overlap the AOI; check the AOI or pick scenes that cover it")
    # The native pixel in the grid's metres (its bounds there over its size: works for files in degrees too).
    native_m = max((right - left) / src.width, (top - bottom) / src.height)
    coarse = too_coarse(native_m, grid.resolution)
    if coarse:
        raise SceneError(f"{path}: {coarse}; it cannot show a burned compound, use a finer product "
                         f"(PlanetScope 3 m, Sentinel-2 10-20 m, Landsat 30 m)")


MIN_MASK_COVER = 0.9
"""Share of its scene's footprint a quality mask must cover. Planet delivers the UDM2 on the
scene's own pixels (cover 1, clipped deliveries included); a mask covering less is another
scene's or a shifted one, and outside it the scene would read as all cloud."""


def read_quality_mask(path: Path, grid: Grid, *, scene: Path | None = None) -> np.ndarray:
    """A quality mask on ``grid`` (nearest neighbour: classes must not be blended).

    With ``scene`` (its reflectance file), a mask that does not cover that scene's footprint
    (:data:`MIN_MASK_COVER`) is refused: read anyway, it made a clear scene look cloudy.
    """
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            if src.crs is None:  # warped as if it lay on the grid, it would flag the wrong ground
                raise SceneError(f"{path}: quality mask has no CRS; use the mask as delivered with its scene (GeoTIFF with its CRS)")
            check_numeric(src, path, fix="use the mask as delivered with its scene")
            if scene is not None:
                _check_mask_covers(src, path, scene)
            return warp_to_grid(src, grid, Resampling.nearest, None)
    except UNREADABLE as exc:
        raise SceneError(f"{path}: quality mask cannot be read ({short(exc)}); re-download it") from None


def _check_mask_covers(mask: rasterio.io.DatasetReader, path: Path, scene: Path) -> None:
    """Refuse a quality mask covering under :data:`MIN_MASK_COVER` of ``scene``'s footprint (boxes in the scene's CRS)."""
    with rasterio.open(scene) as src:
        if src.crs is None:
            return  # the scene itself is refused for it (check_overlap)
        left, bottom, right, top = file_bounds(src)
        try:
            m_left, m_bottom, m_right, m_top = _bounds_in(mask, src.crs, path)
        except SceneError:
            return  # a CRS that cannot be projected: the warp that follows refuses the mask for it
    overlap = max(0.0, min(right, m_right) - max(left, m_left)) * max(0.0, min(top, m_top) - max(bottom, m_bottom))
    cover = overlap / max((right - left) * (top - bottom), 1e-12)
    if cover < MIN_MASK_COVER:
        how = "does not overlap it at all" if overlap == 0 else f"covers only {cover:.0%} of its footprint"
        raise SceneError(f"{path}: quality mask does not cover its scene {scene.name} (it {how}: another scene's mask, or "
                         f"a shifted one); use the mask delivered with the scene")


SAME_PIXEL = 2.5e-4
"""Reflectance within which two readings of a pixel are one reading: 2.5 digital numbers at 1/10000, under any
sensor's noise between two acquisitions (tens of numbers), over a re-encoding's rounding (half a number)."""
_SAME_SHARE = 0.99
_NO_CHANGE = 0.01  # reflectance: a copy differs nowhere by more (a burn darkens by ten times that)
_TEXTURE = 10 * SAME_PIXEL  # spread a scene's pixels need for their readings to identify it (any ground has tens of times more)
_COPY_SAMPLE = 100_000


def _refuse_copies(loaded: list[tuple[SceneRecord, np.ndarray, np.ndarray]]) -> None:
    """Refuse two scenes whose common clear pixels read the same in every band (:data:`SAME_PIXEL`) almost everywhere.

    Their bytes differ (re-encoded as integers, clipped a pixel smaller, a digit of noise added), so their digests
    do; but one acquisition given a second time "confirms" a burn on a later date, and raises its confidence.
    Judged on an even sample of the grid (two acquisitions differ everywhere by the sensor's noise alone).
    """
    if len(loaded) < 2:
        return
    from scipy import ndimage

    size = loaded[0][2].size
    pick = np.arange(0, size, max(1, size // _COPY_SAMPLE))

    def inner(refl: np.ndarray, clear: np.ndarray) -> np.ndarray:
        # Two pixels in from the edge of what a scene saw: a copy clipped smaller differs from its original only
        # where the resampling onto the grid read past its new edge.
        seen = clear & np.all(np.isfinite(refl), axis=0)
        return ndimage.binary_erosion(seen, iterations=2, border_value=1).reshape(-1)[pick]

    sampled = [(r, refl.reshape(refl.shape[0], -1)[:, pick], inner(refl, clear)) for r, refl, clear in loaded]
    for i, (first, a, seen_a) in enumerate(sampled):
        for later, b, seen_b in sampled[i + 1:]:
            with np.errstate(invalid="ignore"):
                both = seen_a & seen_b
                if both.sum() < 1000 or float(np.max(np.std(a[:, both], axis=1))) < _TEXTURE:
                    continue  # too few pixels, or ground too even to tell one acquisition from two
                apart = np.max(np.abs(a[:, both] - b[:, both]), axis=0)
                share = float(np.mean(apart <= SAME_PIXEL))
            if share >= _SAME_SHARE and float(apart.max()) <= _NO_CHANGE:  # nothing changed anywhere: no burn either
                raise SceneError(
                    f"{later.files.get('reflectance', later.scene_id)}: the same pixels as {first.files.get('reflectance', first.scene_id)} "
                    f"of scene {first.scene_id} ({share:.1%} of their common clear pixels within {SAME_PIXEL * 1e4:g}/10000 in every "
                    f"band), under another time ({later.acquired_utc}, {first.acquired_utc}): a copy of one acquisition (re-encoded, "
                    f"clipped or re-projected) cannot confirm it; remove the copy")


def stack_scenes(loaded: list[tuple[SceneRecord, np.ndarray, np.ndarray]], grid: Grid, *,
                 copies: bool = True) -> tuple[xr.Dataset, list[SceneRecord]]:
    """Assemble ``(record, reflectance, clear)`` triples on ``grid`` into a time-ordered stack.

    Checks that times are distinct, that no reflectance file appears twice (a copy under
    another time), with ``copies`` that no scene's pixels are another's (:func:`_refuse_copies`; a large
    area's chunks leave it to its calibration window, which holds every scene), and that every scene has the same bands; see :func:`pipeline.readers.recognise.load_sources` for the
    layout.
    """
    if not loaded:
        raise SceneError("no scene to stack; give at least two scenes")
    loaded = sorted(loaded, key=lambda item: item[0].acquired)
    times = [r.acquired for r, _, _ in loaded]
    for earlier, later in zip(loaded, loaded[1:]):
        # The record keeps times to the second: two scenes within one would be a bracket of no length, in no order.
        if (later[0].acquired - earlier[0].acquired).total_seconds() < 1.0:
            raise SceneError(
                f"{later[0].files.get('reflectance', later[0].scene_id)}: same acquisition time as {earlier[0].scene_id} "
                f"(to the second: {later[0].acquired_utc}); remove the duplicate scene, or mosaic two pieces of one "
                f"acquisition into one file"
            )
    first_with: dict[str, SceneRecord] = {}
    for record, _, _ in loaded:
        for digest in reflectance_digests(record.sha256):
            other = first_with.setdefault(digest, record)
            if other is not record:
                raise SceneError(
                    f"{file_with_digest(record, digest)}: same reflectance bytes (SHA-256 {digest[:16]}...) as {file_with_digest(other, digest)} "
                    f"of scene {other.scene_id}, under another time ({record.acquired_utc}, {other.acquired_utc}); one file "
                    f"cannot be two acquisitions: remove the copy"
                )
    bands = loaded[0][0].bands
    for record, _, _ in loaded:
        if record.bands != bands:
            raise SceneError(f"{record.files.get('reflectance', record.scene_id)}: bands {record.bands} differ from {bands}; load one sensor per run")
    if copies:
        _refuse_copies(loaded)
    records = [r for r, _, _ in loaded]
    stack = xr.Dataset(
        {
            "reflectance": (("time", "band", "y", "x"), np.stack([refl for _, refl, _ in loaded]).astype(np.float32)),
            "clear": (("time", "y", "x"), np.stack([clear for _, _, clear in loaded]).astype(bool)),
        },
        coords={
            "time": np.array([t.astimezone(timezone.utc).replace(tzinfo=None) for t in times], dtype="datetime64[ns]"),
            "scene_id": ("time", [r.scene_id for r in records]),
            "band": list(bands),
            "y": grid.y_coords(),
            "x": grid.x_coords(),
        },
        attrs={"crs": grid.crs, "simulated": int(any(r.simulated for r in records))},
    )
    return stack, records


def file_bounds(src: rasterio.io.DatasetReader) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a raster in its CRS: the box around its four corners.

    Computed here, not taken from rasterio's ``bounds``: for a south-up file (a positive y pixel
    size) those put the bottom above the top, and the file seemed to miss every AOI; for a rotated
    one rasterio multiplies affine transforms in a way affine deprecates.
    """
    xs, ys = zip(*(src.transform @ (c, r) for c in (0, src.width) for r in (0, src.height)))
    return min(xs), min(ys), max(xs), max(ys)


def _utm_bounds(src: rasterio.io.DatasetReader, path: Path) -> tuple[str, tuple[float, float, float, float]]:
    """The UTM zone of a file's centre and its bounds there: a file in degrees measured in metres."""
    from pipeline.aoi import utm_crs_for

    lon0, lat0, lon1, lat1 = _bounds_in(src, "EPSG:4326", path)
    crs = utm_crs_for((lon0 + lon1) / 2, (lat0 + lat1) / 2)
    return crs, _bounds_in(src, crs, path)


def native_grid(path: Path, resolution: float | None = None) -> Grid:
    """A UTM grid covering ``path`` at ``resolution`` metres (default: its own pixel size in metres).

    Files in degrees (EPSG:4326) are put on the UTM zone of their centre, so that pixel
    areas and distances are metric.
    """

    check_regular_file(path)
    try:
        with open_raster(path) as src:
            if src.crs is None:
                raise no_crs_error(src, path)
            crs, bounds = _utm_bounds(src, path)
            if resolution is None:
                resolution = (bounds[2] - bounds[0]) / src.width
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    res = float(round(resolution, 1))
    return grid_for_bounds(bounds, crs, res)


def warp_float(src: rasterio.io.DatasetReader, grid: Grid) -> np.ndarray:
    """Bilinear warp to ``grid`` as float64, with nodata, NaN and outside all NaN; a file already on the grid is read."""
    with _north_up(src) as src:
        offset = _offset_on_grid(src, grid)
        if offset is not None:
            out = _read_on_grid(src, grid, offset, "float64", np.nan)
            if src.nodata is not None and not np.isnan(src.nodata):
                out[out == src.nodata] = np.nan
            return out
        with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       resampling=Resampling.bilinear, src_nodata=src.nodata if src.nodata is not None else np.nan,
                       nodata=np.nan, dtype="float64") as vrt:
            return vrt.read()


_EXACT_IN_FLOAT32 = ("uint8", "int8", "uint16", "int16")
"""Stored integer types whose every value a float32 holds exactly."""


def read_reflectance(src: rasterio.io.DatasetReader, grid: Grid, bands: list[int], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``bands`` (0-based, file order) of ``src`` on ``grid`` as float32 reflectance (stored value / ``scale``),
    NaN where any of them is not observed (nodata, NaN, infinite, outside the file), and that observed mask.

    The numbers are :func:`warp_float`'s divided by ``scale`` in double and stored as float32. A file of
    8- or 16-bit integers already on the grid is divided in float32 instead, on the bands asked for only:
    the same float32 values (a quotient of two numbers a float32 holds exactly is rounded once either way,
    double having more than twice float32's precision), without a float64 copy of every band.
    """
    with _north_up(src) as view:
        offset = _offset_on_grid(view, grid)
        if offset is not None and view.dtypes[0] in _EXACT_IN_FLOAT32 and float(np.float32(scale)) == scale and scale > 0:
            return _integer_on_grid(view, grid, offset, bands, np.float32(scale))
    data = warp_float(src, grid)[bands] / scale
    valid = np.all(np.isfinite(data), axis=0)
    return np.where(valid[None], data, np.nan).astype(np.float32), valid


def _integer_on_grid(src: rasterio.io.DatasetReader, grid: Grid, offset: tuple[int, int], bands: list[int],
                     scale: np.float32) -> tuple[np.ndarray, np.ndarray]:
    row, col = offset
    out = np.full((len(bands), grid.height, grid.width), np.nan, dtype=np.float32)
    valid = np.zeros(grid.shape, dtype=bool)
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + grid.height, src.height), min(col + grid.width, src.width)
    if bottom > top and right > left:
        stored = src.read([b + 1 for b in bands], window=Window(left, top, right - left, bottom - top))
        inside = (slice(None), slice(top - row, bottom - row), slice(left - col, right - col))
        seen = np.ones(stored.shape[1:], dtype=bool) if src.nodata is None else ~np.any(stored == src.nodata, axis=0)
        part = np.divide(stored, scale, dtype=np.float32)
        part[:, ~seen] = np.nan
        out[inside], valid[inside[1:]] = part, seen
    return out, valid


def read_band(path: Path, grid: Grid, *, band: int = 1, categorical: bool = False) -> np.ndarray:
    """One band of a raster file on ``grid`` as float64, NaN where the file has no data.

    ``categorical`` bands (quality classes, bit masks) are resampled by nearest neighbour,
    never blended; reflectance bilinearly (a 20 m band lands on a 10 m grid pixel-centre to
    pixel-centre). Values are returned as stored (no scale or offset).
    """
    path = Path(path)
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            check_overlap(src, grid, path)
            if not 1 <= band <= src.count:
                raise SceneError(f"{path}: has {src.count} band(s), band {band} was asked for; check the file")
            with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                           resampling=Resampling.nearest if categorical else Resampling.bilinear,
                           src_nodata=src.nodata if src.nodata is not None else (None if categorical else np.nan),
                           nodata=np.nan, dtype="float64") as vrt:
                return vrt.read(band)
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None


def pixel_size_m(path: Path) -> float:
    """The ground size in metres of one native pixel of the raster at ``path``: its longer side,
    measured in the UTM zone of the file's centre (files in degrees too), to two significant figures.

    The analysis grid follows the coarsest band a burn index reads (:mod:`pipeline.resolution`);
    two significant figures turn a 0.00018 degree Sentinel-2 export (19.9 x 16.2 m at 36 degrees
    north) into its sensor's 20 m, not into a grid of 19.87 m. Every raster is measured along its own
    rows and columns at its centre: its bounding box would make a 3 m pixel turned by 6 degrees read
    3.3 m, and a 20 m pixel stored in the next UTM zone 23 m.
    """

    path = Path(path)
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            if src.crs is None:
                raise no_crs_error(src, path)
            metres = _centre_pixel_m(src, path)
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    return float(f"{metres:.2g}") if metres > 0 and math.isfinite(metres) else 0.0


def _centre_pixel_m(src: rasterio.io.DatasetReader, path: Path) -> float:
    """The longer side in metres of the raster's centre pixel, in the UTM zone of the file's centre: one step along
    its columns and one along its rows, whatever its CRS (another UTM zone, Web Mercator, an equal-area or a feet CRS,
    degrees) or its rotation. The box around the whole file would read a 20 m pixel of the next UTM zone as 23 m."""
    from pyproj import Transformer

    col, row = src.width / 2, src.height / 2
    xs, ys = zip(*(src.transform @ (col + dc, row + dr) for dc, dr in ((0, 0), (1, 0), (0, 1))))
    east, north = Transformer.from_crs(src.crs, _utm_bounds(src, path)[0], always_xy=True).transform(xs, ys)
    return max(math.hypot(east[k] - east[0], north[k] - north[0]) for k in (1, 2))


def file_footprint(path: Path):
    """The lon/lat outline (shapely polygon) of a raster file's bounds, for catalogues."""
    from shapely.geometry import box

    path = Path(path)
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            if src.crs is None:
                raise no_crs_error(src, path)
            return box(*_bounds_in(src, "EPSG:4326", path))
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None


def metadata_footprint(geometry: object, raster: Path) -> tuple[BaseGeometry, str | None]:
    """A scene's lon/lat outline from its metadata ``geometry``, else from ``raster``'s bounds.

    A metadata outline is used only when it is a valid, non-empty (multi)polygon inside
    lon/lat bounds; otherwise the raster's own footprint stands in, and the second value
    says why (for the catalogue item), so a wrong outline can neither decide the overlap
    with the AOI nor pass unnoticed (``None`` when the metadata outline is used or none was
    stated). ``geometry`` is checked to be an object or null by the reader beforehand.
    """
    from shapely.geometry import shape

    if geometry is None:
        return file_footprint(raster), None  # none stated: the raster's bounds are the outline
    try:
        outline = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        problem = f"the metadata geometry cannot be read ({short(exc)})"
    else:
        if outline.geom_type not in ("Polygon", "MultiPolygon"):
            problem = f"the metadata geometry is a {outline.geom_type}, not a polygon"
        elif outline.is_empty or not outline.is_valid:
            problem = "the metadata geometry is an empty or invalid polygon"
        elif not box(-180, -90, 180, 90).contains(outline):
            problem = "the metadata geometry lies outside lon/lat bounds"
        else:
            return outline, None
    return file_footprint(raster), f"from the raster's bounds: {problem}"


def read_mask(path: Path, grid: Grid) -> np.ndarray:
    """A reference 0/1 mask on ``grid`` (nearest neighbour), as bool."""
    return read_quality_mask(Path(path), grid)[0] > 0


