"""Any GeoTIFF with a band map: the way many shared pre/post pairs and exports come.

The band map names each band in file order (``None`` or ``-`` skips one, e.g. a stored NDVI), each
name once and from the canonical names (:data:`pipeline.config.BAND_NAMES`), checked where it is given;
values are divided by ``scale``: 10000 for integer files (most surface-reflectance exports), and for
floating-point files whose values run into the hundreds or thousands; 1 for floating-point files
that already hold reflectance (their values under 2: an export from Earth Engine or SNAP). A file that
states its own scale and offset (GDAL's per-band metadata, reflectance = stored x scale + offset: a
Sentinel-2 export with its +1000 offset, a Landsat Level-2 export) is read with those instead. Values
that are not reflectance on either scale (an 8-bit display rendering, values darker than any
ground at 1/10000, complex numbers) are refused, naming the file: read anyway, they would make
every scene "clear" and unburned.

The acquisition time is never guessed. It comes from the caller (``--acquired``; its source
``acquired-option``), else from the file's ``ACQUIRED`` tag (``metadata``; never from ``TIFFTAG_DATETIME``,
which the TIFF standard makes the time the file was written, with no zone), else, only when the caller asks for
it (``--time-from-name``), from a
``YYYYMMDD`` date in the file name (``file-name``): a date alone, its time of day unknown, which
every report line and caption then says. A tag that cannot be read as a time is refused, not passed over. Exports are often named after an event's date (a
fire's alarm date), not the acquisition's, which is why a name is never read unasked.

A scene's id is the file name and the first 12 hex digits of the file's SHA-256: one file is
one scene whatever time it is given, and two exports sharing a name and a date (the pre- and
post-fire composites of one fire) stay two scenes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rasterio
from rasterio.windows import Window

from pipeline.config import BAND_NAMES
from pipeline.errors import ParameterError, SceneError
from pipeline.grid import Grid
from pipeline.model import SceneInfo, SceneRecord
from pipeline.readers.rasters import (stated_time, EXPORT_REFLECTANCE, REQUIRED_BANDS, UNREADABLE, check_numeric, check_overlap, check_regular_file,
                                      check_time, file_footprint, open_raster, pixel_size_m, sha256_file, short, read_reflectance)
from pipeline.stages.plausibility import implausible_stored, rescaled_rendering
from pipeline.names import derived_name

__all__ = ["GeoTiffScene", "DECLARED_SENSORS", "TIME_SOURCES", "band_map", "parse_band_map"]

DECLARED_SENSORS = {"planet": "PlanetScope (declared)", "sentinel2": "Sentinel-2 (declared)", "landsat": "Landsat (declared)"}
"""The sensor a plain GeoTIFF is recorded with when the user names its provider (``--provider``): what the
figures credit ("Imagery (c) Planet Labs PBC", "Contains modified Copernicus Sentinel data", USGS); "declared"
because the file itself does not say so."""

TIME_SOURCES = ("metadata", "acquired-option", "file-name")
"""Where a scene's acquisition time came from, as the catalogue records it (``burnscan:time_source``)."""


def parse_band_map(text: str) -> list[str | None]:
    """``"blue,green,red,nir,-,swir22"`` -> names in file order, ``None`` for skipped bands.

    >>> parse_band_map("blue, green,red,nir,-")
    ['blue', 'green', 'red', 'nir', None]
    """
    names = [part.strip().lower() for part in text.split(",")]
    return [None if name in _SKIPS else name for name in names]


_SKIPS = ("", "-", "none", "skip")
"""What a band map may write for a band it skips."""


def band_map(value: str | Sequence[str | None], *, where: str = "--bands") -> list[str | None]:
    """A band map (text, or a list as an AOI file may hold it) read and checked; ``where`` names its origin.

    Checked where it is given (``--bands``, an AOI file's ``band_map``), before any file is read: a
    repeated name would make two bands one label of the stack and an unknown one would be carried
    silently, found deep in a run or never.

    >>> band_map("blue,green,red,nir,-,swir22")
    ['blue', 'green', 'red', 'nir', None, 'swir22']
    """
    names = parse_band_map(value if isinstance(value, str) else ",".join("-" if v is None else str(v) for v in value))
    known = ", ".join(BAND_NAMES)
    if not any(names):
        raise ParameterError(f"{where} {_shown(value)} is empty (it names no band); name the file's bands in order "
                             f"from {known}, e.g. blue,green,red,nir ('-' skips a band)")
    for name in names:
        if name is not None and name not in BAND_NAMES:
            raise ParameterError(f"{where} {_shown(value)}: {name!r} is not a band name; use one of {known} "
                                 f"('-' skips a band)")
    for name in dict.fromkeys(n for n in names if n):
        places = [str(i + 1) for i, n in enumerate(names) if n == name]
        if len(places) > 1:
            raise ParameterError(f"{where} {_shown(value)}: {name!r} names bands {' and '.join(places)}; name each band "
                                 f"once, from {known} ('-' skips a band)")
    return names


def _shown(value: str | Sequence[str | None]) -> str:
    """The band map as the user wrote it, quoted (a list joined as text)."""
    return repr(value if isinstance(value, str) else ",".join("-" if v is None else str(v) for v in value))


def _name_date(path: Path) -> datetime | None:
    """The ``YYYYMMDD`` date in a file name (00:00 UTC of that day), ``None`` when there is none."""
    match = re.search(r"(?<!\d)(19|20)(\d{2})(\d{2})(\d{2})(?!\d)", path.name)
    if match:
        try:
            return datetime.strptime("".join(match.groups()), "%Y%m%d").replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return None


def _tag_time(path: Path) -> tuple[datetime, str, bool] | None:
    """The time the file's own tags state, which tag, and whether it states the time of day; ``None`` when none does
    (one that cannot be read is refused). A tag giving a date alone (an annual or monthly composite, an export
    that kept only the day) is that date with its time of day unknown, and said so wherever it is printed."""
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            tags = src.tags()
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    if "ACQUIRED" in tags:
        day = re.fullmatch(r"\s*(\d{4})-(\d{2})-(\d{2})\s*", str(tags["ACQUIRED"]))
        if day:
            try:
                return datetime(*(int(g) for g in day.groups()), tzinfo=timezone.utc), "tag ACQUIRED, a date alone", False
            except ValueError:
                pass  # no such day: refused below with the rest
        try:
            when = stated_time(tags["ACQUIRED"])
        except ValueError as exc:
            # the file states a time nobody can read: passing over it would report no tag, or date the scene by another
            raise SceneError(f"{path}: tag ACQUIRED is {tags['ACQUIRED']!r}, which cannot be read as a UTC time (it {exc}); "
                             f"write it as 2024-01-28T10:38:00Z, or give the time with --acquired 2024-01-28T10:38Z") from None
        return when, "tag ACQUIRED", True
    return None


def _written_time(path: Path) -> str | None:
    """The file's ``TIFFTAG_DATETIME``, which the TIFF standard makes the time the file was written, with no zone: an
    export's date, not the acquisition's (some providers put the acquisition's UTC time there, nothing says which)."""
    try:
        with open_raster(path) as src:
            return src.tags().get("TIFFTAG_DATETIME")
    except UNREADABLE:
        return None


def _unknown_time(path: Path, in_folder: bool = False) -> SceneError:
    """The refusal of a GeoTIFF without a time, with the fix that fits: ``--acquired`` for one file, a tag for each
    file of a folder (one ``--acquired`` for every file would make them one acquisition, which the stack refuses)."""
    named = _name_date(path)
    also = (f", or --time-from-name to take the date in its name ({named:%Y-%m-%d}) with the time of day unknown"
            if named else "")
    written = _written_time(path)
    example = "2024-01-28T10:38:00Z"
    if written:
        try:
            example = datetime.strptime(written, "%Y:%m:%d %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            pass
        why = (f"no ACQUIRED tag; its TIFFTAG_DATETIME {written!r} is when the file was written, by the TIFF standard, and "
               f"states no zone")
        given = "if it is the acquisition's UTC time, "
    else:
        why, given = "no ACQUIRED tag in the file", f"the scene's UTC time, e.g. {example}: "
    if in_folder:
        fix = (f"each file of a folder needs a time of its own: {given}write it into the file with gdal_edit.py -mo "
               f"ACQUIRED={example} {path}{also} (--acquired gives one time to every file: it is for a single file)")
    else:
        fix = f"{given}give it with --acquired {example}{also}"
    return SceneError(f"{path}: acquisition time unknown ({why}); {fix}")


@dataclass(frozen=True)
class GeoTiffScene:
    """A plain GeoTIFF, the names of its bands and, when known from outside the file, its time."""

    path: Path
    bands: tuple[str | None, ...] | list[str | None]
    acquired: datetime | None = None
    scale: float | None = None
    """Divisor turning stored values into reflectance; ``None``: :func:`stored_scale` reads it from the file."""
    time_from_name: bool = False
    """Take the ``YYYYMMDD`` date of the file name when the file states no time (``--time-from-name``)."""
    time_source: str | None = None
    """Where ``acquired`` came from when it was recorded earlier (the catalogue's ``burnscan:time_source``)."""
    time_of_day_known: bool = True
    """False when ``acquired`` is a date alone (recorded from a file name)."""
    provider: str | None = None
    """Who delivered the file when the user says so (``--provider``: a key of :data:`DECLARED_SENSORS`); a plain
    GeoTIFF does not record it, and the figures' imagery credit follows it."""
    name: str | None = None
    """The scene id it was registered under (a catalogue written before ids carried the file's hash)."""
    in_folder: bool = False
    """One of several GeoTIFFs of a folder: each needs a time of its own, which ``--acquired`` cannot give."""

    @cached_property
    def scene_id(self) -> str:
        """File name (made safe as a file name) and 12 hex digits of the file's SHA-256: the file's bytes, not its
        time, are the scene (two exports of one fire share a name and a date)."""
        if self.name is not None:
            return self.name
        return f"{derived_name(Path(self.path).stem)}-{sha256_file(Path(self.path))[:12]}"

    def _time(self) -> tuple[datetime, str, bool]:
        """``(time, source, time of day known)``, checked: not in the future, not before Landsat 1."""
        path = Path(self.path)
        if self.acquired is not None:
            source = self.time_source or "acquired-option"
            return check_time(self.acquired, sensor="geotiff", where=f"{path} (time given)"), source, self.time_of_day_known
        tagged = _tag_time(path)
        if tagged is not None:
            return check_time(tagged[0], sensor="geotiff", where=f"{path} ({tagged[1]})"), "metadata", tagged[2]
        named = _name_date(path) if self.time_from_name else None
        if named is not None:
            return check_time(named, sensor="geotiff", where=f"{path} (date in the file name)"), "file-name", False
        if self.time_from_name:
            raise SceneError(f"{path}: --time-from-name, but the file name holds no YYYYMMDD date; give the time with "
                             f"--acquired 2024-01-28T10:38Z")
        raise _unknown_time(path, self.in_folder)

    def describe(self) -> SceneInfo:
        when, source, known = self._time()
        return SceneInfo(scene_id=self.scene_id, kind="geotiff", acquired=when.astimezone(timezone.utc), sensor=self.sensor,
                         satellite_id="unknown", footprint=file_footprint(Path(self.path)), files={"reflectance": Path(self.path)},
                         bands=tuple(b for b in self.bands if b), properties={"band_map": list(self.bands), "scale": self.divisor, **self.stated_scaling},
                         time_source=source, time_of_day_known=known,
                         pixel_m=dict.fromkeys((b for b in self.bands if b), pixel_size_m(Path(self.path))))

    def load(self, grid: Grid) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
        when, source, known = self._time()
        return load_geotiff(Path(self.path), bands=list(self.bands), grid=grid, acquired=when, scene_id=self.scene_id, scale=self.divisor,
                            sensor=self.sensor, time_source=source, time_of_day_known=known)

    @cached_property
    def divisor(self) -> float:
        """The scale given, else the one the file's values show (:func:`stored_scale`)."""
        return self.scale if self.scale is not None else stored_scale(Path(self.path), self.bands)

    @cached_property
    def stated_scaling(self) -> dict[str, list[float]]:
        """The scale and offset the file states for its named bands (:func:`declared_scaling`), for the catalogue."""
        path = Path(self.path)
        try:
            with open_raster(path) as src:
                named = [i + 1 for i, name in enumerate(self.bands) if name and i < src.count]
                declared = declared_scaling(src, named, path)
        except UNREADABLE as exc:
            raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
        return {} if declared is None else {"stated_scale": declared[0].tolist(), "stated_offset": declared[1].tolist()}

    @property
    def sensor(self) -> str:
        """``unknown``, or the sensor the user declared the file comes from, marked as declared."""
        return DECLARED_SENSORS[self.provider] if self.provider else "unknown"


_REFLECTANCE_AT_MOST = 2.0
"""Stored values whose 99th percentile stays under this are reflectance already (bright ground, cloud and
snow read up to about 1.2); scaled exports store ten thousand times as much."""


def stored_scale(path: Path, bands: tuple[str | None, ...] | list[str | None]) -> float:
    """10000, or 1 for a floating-point file whose named bands already hold reflectance.

    Integer files store reflectance times 10000; floating-point files store either. Read on a
    sample of the file (:func:`_sample`): the 99th percentile of the named bands' finite values tells the two apart,
    where dividing reflectance by 10000 would read a whole scene as a constant fill value. Values
    that cannot be reflectance x 10000 either (:func:`pipeline.stages.plausibility.implausible_stored`:
    an 8-bit rendering, digital numbers darker than any ground) are refused here, so that
    ``burnscan add`` refuses them as ``detect`` does. A file that states its own scale and offset
    (:func:`declared_scaling`) is read with them, and 1 is returned: nothing is left to divide.
    """
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            check_numeric(src, path)
            dtype = src.dtypes[0]
            named = [i + 1 for i, name in enumerate(bands) if name and i < src.count] or list(range(1, src.count + 1))
            sample = _sample(src, named)
            declared = declared_scaling(src, named, path)
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    values = np.ma.filled(sample.astype(np.float64), np.nan)
    fill = _undeclared_float_fill(values)
    if fill is not None:
        raise SceneError(f"{path}: {fill[1]:.0%} of its sampled values read {fill[0]:g}, a fill the file does not declare as "
                         f"nodata (no ground reflects that); declare it (gdal_edit.py -a_nodata {fill[0]!r} FILE) and run again")
    if declared is not None:
        _check_declared(path, values * declared[0][:, None] + declared[1][:, None], declared,
                        [bands[i - 1] if i <= len(bands) else None for i in named])
        return 1.0
    finite = values[np.isfinite(values)]
    if np.issubdtype(np.dtype(dtype), np.floating) and finite.size and float(np.percentile(np.abs(finite), 99)) < _REFLECTANCE_AT_MOST:
        problem = rescaled_rendering(finite)
        if problem:
            raise SceneError(f"{path}: {problem}; {EXPORT_REFLECTANCE}")
        return 1.0
    problem = implausible_stored(values, dtype=dtype, bands=[bands[i - 1] if i <= len(bands) else None for i in named])
    if problem:
        raise SceneError(f"{path}: {problem}; {EXPORT_REFLECTANCE}")
    return 10000.0


def declared_scaling(src: rasterio.io.DatasetReader, bands: list[int], path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(scale, offset)`` of ``bands`` (1-based) as the file states them, reflectance = stored x scale + offset;
    ``None`` where every band states the identity (GDAL's default: nothing stated).

    An exporter that stores reflectance x 10000 + 1000 (Sentinel-2 since processing baseline 04.00) or
    (reflectance + 0.2) / 2.75e-5 (Landsat Collection 2 Level-2) says so here; divided by 10000 instead,
    every reflectance would be read 0.1 or more too bright, which flattens every index.
    """
    scales = np.array([src.scales[b - 1] for b in bands], dtype=np.float64)
    offsets = np.array([src.offsets[b - 1] for b in bands], dtype=np.float64)
    if np.all(scales == 1.0) and np.all(offsets == 0.0):
        return None
    if not (np.all(np.isfinite(scales)) and np.all(np.isfinite(offsets)) and np.all(scales > 0)):
        raise SceneError(f"{path}: states a scale of {_listed(scales)} and an offset of {_listed(offsets)}, which cannot turn its values "
                         f"into reflectance; correct them (gdal_edit.py -scale S -offset O) or remove them (-scale 1 -offset 0)")
    return scales, offsets


_NO_MEASUREMENT = 1e30
"""Values at least this large in magnitude are a floating-point fill (ArcGIS's and many tools' -3.4028235e38), not
a measurement on any scale."""


def _undeclared_float_fill(values: np.ndarray) -> tuple[float, float] | None:
    """``(value, share)`` of the commonest value of ``values`` beyond :data:`_NO_MEASUREMENT`, or ``None``.

    Read as stored, such a fill makes the file's scale look like ten thousand and its reflectance a
    percentage: the refusal then named the wrong cause and the wrong fix."""
    huge = values[np.isfinite(values) & (np.abs(values) >= _NO_MEASUREMENT)]
    if huge.size == 0:
        return None
    common, count = np.unique(huge, return_counts=True)
    return float(common[count.argmax()]), huge.size / max(int(np.isfinite(values).sum()), 1)


def _listed(values: np.ndarray) -> str:
    return ", ".join(f"{v:g}" for v in dict.fromkeys(values.tolist()))


def _check_declared(path: Path, reflectance: np.ndarray, declared: tuple[np.ndarray, np.ndarray],
                    bands: list[str | None]) -> None:
    """Refuse a stated scale and offset that do not give surface reflectance (a file whose tags were left from
    another product), naming them: read anyway, they would make every scene "clear" and unburned."""
    finite = reflectance[np.isfinite(reflectance)]
    if finite.size and float(np.percentile(np.abs(finite), 99)) >= _REFLECTANCE_AT_MOST:
        problem = f"reflectance up to {float(np.percentile(finite, 99)):.3g}, beyond any ground"
    else:
        problem = implausible_stored(reflectance * 10000.0, dtype="float64", bands=bands)
    if problem:
        raise SceneError(f"{path}: states a scale of {_listed(declared[0])} and an offset of {_listed(declared[1])}, which give "
                         f"{problem}; correct them (gdal_edit.py -scale S -offset O), or remove them (-scale 1 -offset 0) "
                         f"if the values are reflectance x 10000")


def _sample(src: rasterio.io.DatasetReader, bands: list[int]) -> np.ma.MaskedArray:
    """At most 512 x 512 pixels of ``bands``, spread over the file, as ``(band, n)``.

    Nine windows on a 3 x 3 lattice, not the whole file read at a lower resolution: without
    overviews, that decodes every block (0.3 s for a 2048 px file, growing with its area), where the
    windows decode nine blocks or so whatever the file's size.
    """
    side = min(170, src.width, src.height)
    rows = np.linspace(0, src.height - side, 3).astype(int)
    cols = np.linspace(0, src.width - side, 3).astype(int)
    windows = [src.read(bands, window=Window(c, r, side, side), masked=True).reshape(len(bands), -1) for r in rows for c in cols]
    return np.ma.concatenate(windows, axis=1)


def find(path: Path, *, bands: Any = None, acquired: datetime | None = None, time_from_name: bool = False,
         time_source: str | None = None, time_of_day_known: bool = True, name: str | None = None,
         provider: str | None = None, **_: Any) -> list[GeoTiffScene]:
    """With a band map: a plain GeoTIFF, or each GeoTIFF directly in a folder (one scene each, in name
    order, all with that band map); nothing otherwise (options: see :class:`GeoTiffScene`).

    A folder's files each need their own time (a tag, or the date in the name with ``time_from_name``):
    one ``acquired`` for all of them would make them one acquisition, which the stack refuses.
    """
    path = Path(path)
    if not bands:
        return []
    names = band_map(bands, where=f"{path}: band map")
    if provider is not None and provider not in DECLARED_SENSORS:
        raise SceneError(f"{path}: provider {provider!r} is not one of {', '.join(DECLARED_SENSORS)}; give one of them, or none")
    options = dict(acquired=acquired, time_from_name=time_from_name, time_source=time_source,
                   time_of_day_known=time_of_day_known, provider=provider)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff") and not p.name.startswith("."))
        return [GeoTiffScene(p, bands=names, in_folder=len(files) > 1, **options) for p in files]
    if not path.is_file() or path.suffix.lower() not in (".tif", ".tiff"):
        return []
    return [GeoTiffScene(path, bands=names, name=name, **options)]


def load_geotiff(
    path: Path,
    *,
    bands: list[str | None],
    grid: Grid,
    acquired: datetime,
    scene_id: str | None = None,
    scale: float = 10000.0,
    sensor: str = "unknown",
    time_source: str = "acquired-option",
    time_of_day_known: bool = True,
) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
    """Read any multi-band GeoTIFF with a band map onto ``grid``.

    Parameters
    ----------
    bands:
        Name of each band in file order (``None`` skips a band, e.g. a stored NDVI).
    acquired:
        Acquisition time (UTC) when the file does not carry one.
    scale:
        Divisor turning stored values into reflectance (10000 for most L2 products); a file that states its own
        scale and offset (:func:`declared_scaling`) is read with those instead.
    time_source, time_of_day_known:
        Where ``acquired`` came from, and whether it is more than a date (see :data:`TIME_SOURCES`).

    Pixels equal to the nodata tag, NaN or infinite are not observed (several real
    products mark missing pixels with NaN and no nodata tag).
    """
    path = Path(path)
    acquired = check_time(acquired, sensor=sensor, where=path)
    check_regular_file(path)
    try:
        with open_raster(path) as src:
            check_overlap(src, grid, path)
            if len(bands) != src.count:
                raise SceneError(f"{path}: band map names {len(bands)} bands but the file has {src.count}; give one name per band")
            wanted = [name for name in bands if name]
            missing = [b for b in REQUIRED_BANDS if b not in wanted]
            if missing:
                raise SceneError(f"{path}: band map lacks {', '.join(missing)}; name the file's NIR, red and green bands")
            wanted_bands = [i for i, name in enumerate(bands) if name]
            declared = declared_scaling(src, [i + 1 for i in wanted_bands], path)
            reflectance, valid = read_reflectance(src, grid, wanted_bands, 1.0 if declared is not None else scale)
            if declared is not None:  # the file's own scale and offset, not a divisor guessed from its values
                reflectance = (reflectance * declared[0][:, None, None].astype(np.float32)
                               + declared[1][:, None, None].astype(np.float32))
            # burnscan's simulator tags every file it writes; exported or renamed, a simulated scene stays one
            simulated = str(src.tags().get("SIMULATED", "no")).strip().lower() in ("yes", "true", "1")
    except UNREADABLE as exc:
        raise SceneError(f"{path}: cannot be read as a raster ({short(exc)}); re-download or replace the file") from None
    record = SceneRecord(
        scene_id=scene_id or path.stem,
        acquired=acquired.astimezone(timezone.utc),
        satellite_id="unknown",
        sensor=sensor,
        simulated=simulated,
        bands=tuple(b for b in bands if b),
        files={"reflectance": str(path)},
        sha256={"reflectance": sha256_file(path)},
        time_source=time_source,
        time_of_day_known=time_of_day_known,
    )
    return record, reflectance, valid
