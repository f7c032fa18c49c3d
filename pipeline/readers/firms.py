"""Active-fire detections (NASA FIRMS archive CSVs) as independent evidence of a burn's time.

The imagery dates a burn only to a bracket: after the last clear scene, by the first scene
that shows it. A thermal detection by VIIRS or MODIS inside that bracket and near the burned
polygon corroborates it from a different sensor, and often narrows it to the hour. The
overpasses are few: an evening attack may be caught by a night pass around 01:30 local time,
or missed entirely. So a match is evidence, and the absence of one is not evidence of no
fire: thatch roofs can burn out between two overpasses, and cloud or smoke hide the ground.

``read_fire_csv`` reads one FIRMS download (VIIRS 375 m or MODIS columns) and skips the rows
it cannot trust, counting them by reason; :func:`pipeline.stages.corroborate.corroborate` pairs
detections with polygons.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import SceneError

__all__ = ["FireTable", "read_fire_csv", "checked_fire_csv", "first_skipped_row", "FIRE_COLUMNS"]

FIRE_COLUMNS = ["detection_id", "latitude", "longitude", "acquired_utc", "satellite", "instrument",
                "confidence", "confidence_raw", "frp", "daynight"]
"""Columns of ``FireTable.detections``, in order."""

"""Columns of the frame ``corroborate`` returns, in order."""

_REQUIRED = ["latitude", "longitude", "acq_date", "acq_time"]
_OPTIONAL = ["satellite", "instrument", "confidence", "frp", "daynight"]
# A global year of VIIRS detections is a few GB; past this the rows alone would not fit
# comfortably in memory, and no village needs more than its region and season.
_MAX_MB = 500
_SATELLITES = {"N": "Suomi NPP", "NPP": "Suomi NPP", "SUOMI NPP": "Suomi NPP",
               "1": "NOAA-20", "N20": "NOAA-20", "NOAA-20": "NOAA-20",
               "2": "NOAA-21", "N21": "NOAA-21", "NOAA-21": "NOAA-21",
               "T": "Terra", "TERRA": "Terra", "A": "Aqua", "AQUA": "Aqua"}
_VIIRS_CLASSES = {"l": "low", "low": "low", "n": "nominal", "nominal": "nominal", "h": "high", "high": "high"}
_TIME = re.compile(r"(\d{1,2}):(\d{2})|(\d{1,4})")
_TOO_FEW, _TOO_MANY = "row has too few fields", "row has too many fields"
_BAD_LAT, _BAD_LON = "latitude not a number in -90..90", "longitude not a number in -180..180"
_BAD_DATE, _BAD_TIME = "acq_date not a YYYY-MM-DD date", "acq_time not an HHMM or HH:MM UTC time"
_FUTURE = "acquired in the future (over a day after the file was read)"
_TOO_EARLY = "acquired before its sensor flew (MODIS from 2000, VIIRS from 2012)"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_NAIVE = datetime(1970, 1, 1)
# A day of slack for the future: FIRMS near-real-time files are read the day they are made, and
# a clock or a time zone may be a few hours off; past a day the date is wrong, not early.
_FUTURE_SLACK_MIN = 24 * 60
# No detection predates its sensor: Terra's MODIS first saw fires in 2000 (FIRMS' MODIS archive
# starts in November 2000), Suomi NPP's VIIRS in 2012 (launched late 2011). A row dated earlier
# has a wrong date. An unknown instrument gets the earlier, MODIS bound.
_FIRST_MINUTE = {name: int((datetime(year, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds() // 60)
                 for name, year in (("MODIS", 2000), ("VIIRS", 2012))}


@dataclass(frozen=True)
class FireTable:
    """The detections of one FIRMS file, and what was left out of it."""

    detections: pd.DataFrame
    """One row per kept detection, columns ``FIRE_COLUMNS``."""
    skipped: int
    """Number of data rows left out because a field could not be trusted."""
    skipped_reasons: dict[str, int]
    """Reason -> number of rows skipped for it (a row counts once, under its first fault)."""
    path: Path
    """The file the detections were read from."""
    first_skipped: tuple[int, str] | None = None
    """The first row left out (1-based data row after the header, as in ``detection_id``) and why."""


# The file is read in blocks of about this size ending at a line end: memory follows the block and the
# kept detections, never the file.
_BLOCK_BYTES = 4 * 1024 * 1024
# A quoted field running past this without closing is not a FIRMS file (the csv module refuses
# fields over 128 kB anyway): refused rather than held whole.
_MAX_PENDING_BYTES = 4 * _BLOCK_BYTES
# ASCII bytes str.strip() removes, with the comma: a line of only these is blank, as the csv
# module reads it (every field empty once stripped).
_BLANK_BYTES = np.zeros(256, dtype=bool)
_BLANK_BYTES[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 44]] = True


def _blocks(handle, path: Path):
    """The rest of a binary file in blocks of about ``_BLOCK_BYTES`` that end at a line end outside quotes.

    A record never spans two blocks, so each block can be parsed on its own.
    """
    pending = b""
    while True:
        chunk = handle.read(_BLOCK_BYTES)
        data = pending + chunk
        if not chunk:
            if data:
                yield data
            return
        if b'"' not in data:
            cut = data.rfind(b"\n") + 1
        else:  # a line end counts only where the quotes before it are balanced
            arr = np.frombuffer(data, dtype=np.uint8)
            quotes = np.cumsum(arr == 34)
            ends = np.flatnonzero(arr == 10)
            ends = ends[quotes[ends] % 2 == 0]
            cut = int(ends[-1]) + 1 if len(ends) else 0
        if cut:
            yield data[:cut]
        pending = data[cut:]
        if len(pending) > _MAX_PENDING_BYTES:
            raise SceneError(f"{path}: not a text CSV file (a record runs on for over {_MAX_PENDING_BYTES // 2**20} MB, "
                             "an unclosed quote?); pass the FIRMS archive CSV as downloaded")


def _plain(block: bytes) -> bool:
    """True when a block can be split on commas and line ends alone: ASCII, no quotes, no NUL, no lone CR."""
    return (b'"' not in block and b"\x00" not in block and block.isascii()
            and block.count(b"\r") == block.count(b"\r\n"))


def _plain_rows(block: bytes, width: int, used: list[int], numeric: list[int]) -> tuple[pd.DataFrame, np.ndarray, Counter, int, tuple[int, str] | None] | None:
    """Fields of the well-formed rows of a plain block (C parser), their line positions, faults, lines, first fault.

    Field counts and blank lines come from the bytes (numpy), the fields from pandas' C parser,
    which reads ``numeric`` columns straight into floats and keeps one Python string per distinct
    value of the others: a million rows cost a few million small objects, not tens of millions. ``None`` when the parser and the line count
    disagree (the caller then reads the block with the csv module).
    """
    arr = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(arr))
    starts = np.concatenate(([0], ends[:-1] + 1))
    commas = np.flatnonzero(arr == 44)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    # Any byte other than a space or a comma from a line's start to the next line's start (an
    # empty line's segment holds only its own line end, which is blank too).
    blank = ~np.logical_or.reduceat(~_BLANK_BYTES[arr], starts)
    faults: Counter = Counter()
    over = np.flatnonzero(~blank & (fields > width))
    trailing = np.zeros(len(ends), dtype=bool)
    for i in over:  # trailing commas carry nothing: a rare row, looked at on its own
        tail = block[starts[i]:ends[i]].split(b",", width)[-1]
        trailing[i] = not tail.translate(None, b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f,")
    few = ~blank & (fields < width)
    many = ~blank & (fields > width) & ~trailing
    faults[_TOO_FEW] += int(few.sum())
    faults[_TOO_MANY] += int(many.sum())
    bad = np.flatnonzero(few | many)
    first = (int(bad[0]), _TOO_FEW if few[bad[0]] else _TOO_MANY) if len(bad) else None
    good = np.flatnonzero(~blank & ~few & ~many)
    if not len(good):
        return pd.DataFrame(columns=used, dtype=object), good, +faults, len(ends), first
    options = dict(header=None, names=range(int(fields.max())), usecols=used, skip_blank_lines=False, engine="c",
                   encoding="ascii")
    try:  # numbers parsed in C: no string per coordinate (the same parser pd.to_numeric uses)
        frame = pd.read_csv(io.BytesIO(block), dtype={i: (float if i in numeric else str) for i in used},
                            keep_default_na=False, na_values={i: [""] for i in numeric}, **options)
    except ValueError:  # a value that is not a number somewhere in the block: read it all as text
        frame = pd.read_csv(io.BytesIO(block), dtype=str, na_filter=False, **options)
    if len(frame) != len(ends):
        return None
    return frame.iloc[good].reset_index(drop=True), good, +faults, len(ends), first


def _csv_rows(block: bytes, width: int, used: list[int]) -> tuple[pd.DataFrame, np.ndarray, Counter, int, tuple[int, str] | None]:
    """As :func:`_plain_rows`, record by record with the csv module (quotes, non-ASCII text)."""
    faults: Counter = Counter()
    first: tuple[int, str] | None = None
    cells: list[list[str]] = []
    positions: list[int] = []
    n = -1
    for n, row in enumerate(csv.reader(io.StringIO(block.decode("utf-8"), newline=""))):
        if not any(c.strip() for c in row):
            continue  # a blank line is not a detection, nor a fault
        if len(row) > width and not any(c.strip() for c in row[width:]):
            row = row[:width]  # trailing commas carry nothing
        if len(row) != width:
            reason = _TOO_FEW if len(row) < width else _TOO_MANY
            faults[reason] += 1
            first = first or (n, reason)
            continue
        positions.append(n)
        cells.append([row[i] for i in used])
    return pd.DataFrame(cells, columns=used, dtype=object), np.array(positions, dtype=np.int64), faults, n + 1, first


def _lookup(column: pd.Series, convert) -> np.ndarray:
    """``convert`` applied to each distinct value of a text column once, spread back to the rows."""
    uniques = pd.unique(column.to_numpy(dtype=object))
    values = np.empty(len(uniques), dtype=object)
    values[:] = [convert(u) for u in uniques]
    return values[pd.Index(uniques).get_indexer(column.to_numpy(dtype=object))]


def _pair_lookup(first: np.ndarray, second: np.ndarray, convert) -> np.ndarray:
    """``convert(a, b)`` once per distinct pair of two columns, spread back to the rows."""
    a, b = pd.unique(first), pd.unique(second)
    table = np.empty((len(a), len(b)), dtype=object)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i, j] = convert(x, y)
    return table[pd.Index(a).get_indexer(first), pd.Index(b).get_indexer(second)]


def _date_minutes(text: str) -> float:
    """Minutes since 1970-01-01 of a ``YYYY-MM-DD`` date (leading zeros optional); NaN if invalid."""
    try:
        return float((datetime.strptime(text.strip(), "%Y-%m-%d") - _EPOCH_NAIVE).days * 1440)
    except ValueError:
        return math.nan


def _checked(raw: pd.DataFrame, header: list[str], latest: float) -> tuple[dict[str, np.ndarray], np.ndarray, Counter, tuple[int, str] | None]:
    """Typed columns of the rows whose fields can be trusted, which rows those are, why the others are not,
    and the first of those (its index in ``raw``) with its reason."""
    n = len(raw)
    col = {name: raw[name] if name in raw else pd.Series([""] * n, dtype=object) for name in _REQUIRED + _OPTIONAL}
    lat = pd.to_numeric(col["latitude"], errors="coerce").to_numpy(dtype=float)  # spaces allowed around numbers
    lon = pd.to_numeric(col["longitude"], errors="coerce").to_numpy(dtype=float)
    day = _lookup(col["acq_date"], _date_minutes).astype(float)
    minute = _lookup(col["acq_time"], _minutes).astype(float)
    # The brightness column names the sensor when the instrument column was left out.
    inferred = "VIIRS" if "bright_ti4" in header else "MODIS" if "brightness" in header else None
    instrument = _lookup(col["instrument"], lambda v: (v.strip().upper() if v.strip().upper() in ("VIIRS", "MODIS")
                                                        else v.strip()) or inferred)
    when = day + minute
    first = np.where(instrument == "VIIRS", _FIRST_MINUTE["VIIRS"], _FIRST_MINUTE["MODIS"])
    with np.errstate(invalid="ignore"):  # NaN fails every comparison, so a non-finite value counts as a bad one
        checks = [(~((lat >= -90) & (lat <= 90)), _BAD_LAT), (~((lon >= -180) & (lon <= 180)), _BAD_LON),
                  (np.isnan(day), _BAD_DATE), (np.isnan(minute), _BAD_TIME),
                  (when > latest, _FUTURE), (when < first, _TOO_EARLY)]
    reason = np.select([c for c, _ in checks], [r for _, r in checks], default="")
    faults = Counter(reason[reason != ""].tolist())
    good = reason == ""
    bad = np.flatnonzero(~good)
    first = (int(bad[0]), str(reason[bad[0]])) if len(bad) else None
    frp = pd.to_numeric(col["frp"][good], errors="coerce").to_numpy(dtype=float)
    has_confidence = "confidence" in header
    columns = {
        "latitude": lat[good], "longitude": lon[good], "minutes": when[good].astype(np.int64),
        "satellite": _lookup(col["satellite"][good], lambda v: _SATELLITES.get(v.strip().upper(), v.strip() or None)),
        "instrument": instrument[good],
        "confidence": (_pair_lookup(col["confidence"][good].to_numpy(dtype=object), instrument[good], _confidence)
                       if has_confidence else np.full(int(good.sum()), None, dtype=object)),
        "confidence_raw": (col["confidence"][good].to_numpy(dtype=object) if has_confidence
                           else np.full(int(good.sum()), None, dtype=object)),
        "frp": np.where(np.isfinite(frp), frp, np.nan),
        "daynight": _lookup(col["daynight"][good], lambda v: v.strip().upper() if v.strip().upper() in ("D", "N") else None),
    }
    return columns, good, faults, first


def _scan(path: Path, now: datetime) -> tuple[dict[str, np.ndarray], Counter, tuple[int, str] | None]:
    """Every row of a FIRMS CSV, checked block by block into typed columns; faults counted by reason,
    and the first faulty row (1-based data row after the header) with its reason.

    The rows are never all held as text: a year of VIIRS detections is a million rows, and a
    list of lists of strings costs some twenty times the file's size.
    """
    if not path.is_file():
        raise SceneError(f"{path}: active-fire file not found; check the path or download the CSV from FIRMS")
    size = path.stat().st_size
    if size > _MAX_MB * 1024 * 1024:
        raise SceneError(f"{path}: file is {size / 1024 ** 2:.0f} MB, over the {_MAX_MB} MB limit; "
                         "split the download by date or area")
    with path.open("rb") as head:
        if b"\x00" in head.read(8192):
            raise SceneError(f"{path}: not a text CSV file (binary content); unzip the FIRMS download and pass the .csv inside")
    faults: Counter = Counter()
    first_fault: tuple[int, str] | None = None
    parts: list[dict[str, np.ndarray]] = []
    latest = (now.astimezone(timezone.utc) - _EPOCH).total_seconds() // 60 + _FUTURE_SLACK_MIN
    try:
        with path.open("rb") as handle:
            header = None
            while header is None:
                line = handle.readline()
                if not line:
                    raise SceneError(f"{path}: file is empty; download the archive again")
                row = next(csv.reader([line.decode("utf-8-sig" if handle.tell() == len(line) else "utf-8")]), [])
                header = [c.strip().lower() for c in row] if any(c.strip() for c in row) else None
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                found = ", ".join(h[:30] for h in header[:20]) + (", ..." if len(header) > 20 else "")
                raise SceneError(f"{path}: required column(s) {', '.join(missing)} missing (found: {found}); "
                                 "pass a FIRMS archive CSV of VIIRS or MODIS detections")
            names = [c for c in _REQUIRED + _OPTIONAL if c in header]
            used = [header.index(c) for c in names]
            numeric = [header.index(c) for c in ("latitude", "longitude", "frp") if c in header]
            width = len(header)
            lines = 0
            for block in _blocks(handle, path):
                rows = _plain_rows(block, width, used, numeric) if _plain(block) else None
                raw, positions, block_faults, n, first = rows if rows is not None else _csv_rows(block, width, used)
                raw.columns = names
                columns, good, checked_faults, first_checked = _checked(raw, header, latest)
                if first_checked is not None:  # an index into the block's well-formed rows: to its row in the block
                    first_checked = (int(positions[first_checked[0]]), first_checked[1])
                found = [f for f in (first, first_checked) if f is not None]
                if first_fault is None and found:  # blocks come in file order: the first with a fault holds the first
                    row, reason = min(found)
                    first_fault = (row + lines + 1, reason)
                ids = np.empty(int(good.sum()), dtype=object)
                ids[:] = [f"{path.stem}:{n}" for n in (positions[good] + lines + 1).tolist()]
                columns["detection_id"] = ids
                parts.append(columns)
                faults.update(block_faults)
                faults.update(checked_faults)
                lines += n
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SceneError(f"{path}: not a text CSV file ({type(exc).__name__}: {exc}); "
                         "pass the FIRMS archive CSV, saved as UTF-8") from None
    kinds = {"minutes": np.int64, "latitude": np.float64, "longitude": np.float64, "frp": np.float64}
    keys = [name for name in FIRE_COLUMNS if name != "acquired_utc"] + ["minutes"]
    # Column by column, each block's part dropped once copied: the parts and the whole are never
    # both held in full.
    return {key: np.concatenate([part.pop(key) for part in parts]) if parts else np.empty(0, dtype=kinds.get(key, object))
            for key in keys}, faults, first_fault


def _minutes(text: str) -> float:
    """Minutes after midnight UTC of ``HHMM`` (leading zeros optional) or ``HH:MM``; NaN if invalid."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return math.nan
    # An integer time, as some FIRMS files and spreadsheets write it: "45" is 00:45, "130" 01:30.
    digits = match[3].zfill(4) if match[3] else match[1].zfill(2) + match[2]
    hour, minute = int(digits[:2]), int(digits[2:])
    return float(hour * 60 + minute) if hour < 24 and minute < 60 else math.nan


def _confidence(raw: str | None, instrument: str | None) -> str | None:
    """The FIRMS class of a confidence: VIIRS letters, or MODIS percent (guide: <30, 30-79, >=80)."""
    text = (raw or "").strip().lower()
    if instrument != "MODIS" and text in _VIIRS_CLASSES:
        return _VIIRS_CLASSES[text]
    if instrument != "VIIRS":
        try:
            value = float(text)
        except ValueError:
            return None
        if 0 <= value <= 100:
            return "low" if value < 30 else "nominal" if value < 80 else "high"
    return None


def read_fire_csv(path: Path, *, now: datetime | None = None) -> FireTable:
    """Read a FIRMS active-fire archive CSV (VIIRS 375 m or MODIS) into one table.

    Rows whose position, date or time cannot be trusted are skipped and counted by reason,
    because one bad line of a year-long download should not hide the rest: so are rows dated
    more than a day after ``now`` or before their sensor flew (MODIS 2000, VIIRS 2012). A
    confidence that is neither a VIIRS class nor a MODIS percentage keeps its row, with
    ``confidence`` None and the raw value in ``confidence_raw``.

    The file is read in blocks of 8 MB, each checked and reduced to typed columns before the
    next, so memory follows the kept detections (some 200 bytes each), not the text of the file.

    Parameters
    ----------
    path
        The CSV as downloaded from FIRMS (column names in any case; a UTF-8 BOM is fine).
    now
        The time rows are checked against (default: the current UTC time).

    Returns
    -------
    FireTable
        ``detections`` with ``FIRE_COLUMNS``; ``detection_id`` is ``"<file stem>:<n>"`` with
        ``n`` the 1-based data line after the header. ``acquired_utc`` is tz-aware UTC.

    Raises
    ------
    SceneError
        The file is missing, empty, binary, over 500 MB, or lacks latitude, longitude,
        acq_date or acq_time.

    References
    ----------
    Giglio, L. (2015). MODIS Collection 6 Active Fire Product User's Guide, Revision A.
    University of Maryland (the confidence classes: low < 30 %, nominal < 80 %, high).
    Schroeder, W. & Giglio, L. VIIRS 375 m & 750 m Active Fire Products: Product User's
    Guide. NASA VIIRS Land SIPS (the l/n/h confidence classes and attribute fields).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "viirs.csv"
    ...     _ = path.write_text("latitude,longitude,acq_date,acq_time,satellite,confidence\\n"
    ...                         "12.5,-1.5,2024-01-27,130,N,h\\n")
    ...     table = read_fire_csv(path)
    >>> table.detections.loc[0, ["detection_id", "satellite", "confidence"]].tolist()
    ['viirs:1', 'Suomi NPP', 'high']
    >>> str(table.detections.loc[0, "acquired_utc"])
    '2024-01-27 01:30:00+00:00'
    """
    path = Path(path)
    columns, faults, first_skipped = _scan(path, now or datetime.now(timezone.utc))
    columns["acquired_utc"] = pd.Series(pd.to_datetime(columns.pop("minutes"), unit="m", utc=True))
    # Text stays an object column, so that a missing value stays None (pandas 3 would infer a
    # string column and make it NaN).
    detections = pd.DataFrame({name: pd.Series(values, dtype=object) if values.dtype == object else values
                               for name, values in ((n, columns.pop(n)) for n in FIRE_COLUMNS)},
                              columns=FIRE_COLUMNS, copy=False)  # no consolidated copy of every column
    return FireTable(detections=detections, skipped=sum(faults.values()), skipped_reasons=dict(faults), path=path,
                     first_skipped=first_skipped)


def first_skipped_row(table: FireTable) -> str:
    """The first row ``table`` left out and why, as messages say it."""
    row, why = table.first_skipped or (0, "unknown")
    return f"the first, row {row} after the header: {why}"


def checked_fire_csv(path: Path, *, fix: str, now: datetime | None = None) -> FireTable:
    """:func:`read_fire_csv`, refusing a file whose every data row is malformed (``fix`` ends the message).

    Kept or read, such a file would say "0 detections", as if no fire had been seen; a header
    alone is a file with no detection, and is read.
    """
    table = read_fire_csv(path, now=now)
    if table.skipped and not len(table.detections):
        raise SceneError(f"{path}: every data row is malformed ({table.skipped} row(s); {first_skipped_row(table)}); {fix}")
    return table
