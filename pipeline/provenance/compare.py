"""Comparing two runs: two runs of the same inputs and parameters must give the same findings.

Only what names or times a run may differ. The helpers below say what is set aside, so a
court can be told exactly which bytes were not compared and why.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipeline.provenance.manifest import read_manifest
from pipeline.readers.rasters import sha256_file

__all__ = ["RUN_SPECIFIC_FIELDS", "comparable_report", "json_differences", "OutputComparison", "RunComparison", "compare_runs"]


RUN_SPECIFIC_FIELDS = frozenset({"run_id", "started_utc", "finished_utc", "seconds", "commit", "dirty", "kept_work"})
"""Fields that name or time one run. ``kept_work`` says what a run read from the work kept by earlier runs of the same
pixels, parameters and code (the aligned scenes, the shifts): the findings must be the same either way, which is what
a comparison with ``burnscan rerun`` (which reads nothing kept) checks."""


# The same fields (and the code version, which is the commit in words) as a run's STAC item names them.
_STAC_RUN_FIELDS = frozenset({f"burnscan:{f}" for f in RUN_SPECIFIC_FIELDS | {"code_version"}})


_RUN_LINE = re.compile(r"^(?:%s): " % "|".join(sorted(RUN_SPECIFIC_FIELDS)))


# The same fields as rows of report.html's provenance table.
_RUN_ROW = re.compile(r"<tr><td>(?:%s)</td><td>[^<]*</td></tr>" % "|".join(sorted(RUN_SPECIFIC_FIELDS)))


# GDAL stamps the time of writing into these GeoPackage columns; every other cell is data.
_GPKG_TIME_COLUMNS = {"gpkg_contents": "last_change", "gpkg_metadata_reference": "timestamp"}


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


_MAX_LISTED = 6


def comparable_report(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without the :data:`RUN_SPECIFIC_FIELDS`, at its top level and in ``provenance``.

    Package versions are kept: a different GDAL or scikit-image may move a pixel, so a
    re-run under other versions is not the same computation.

    Examples
    --------
    >>> comparable_report({"summary": "2 ha", "provenance": {"run_id": "x", "commit": "abc", "versions": {"numpy": "2.4"}}})
    {'summary': '2 ha', 'provenance': {'versions': {'numpy': '2.4'}}}
    """
    out = {k: v for k, v in report.items() if k not in RUN_SPECIFIC_FIELDS}
    if isinstance(out.get("provenance"), dict):
        out["provenance"] = {k: v for k, v in out["provenance"].items() if k not in RUN_SPECIFIC_FIELDS}
    if out.get("type") == "Feature" and "stac_version" in out and isinstance(out.get("properties"), dict):
        # The run's STAC item (item.json): its id is the run id, and its burnscan: properties name the run and code.
        out.pop("id", None)
        out["properties"] = {k: v for k, v in out["properties"].items() if k not in _STAC_RUN_FIELDS}
    return out


def _same_scalar(a: Any, b: Any) -> bool:
    if type(a) is not type(b):  # 1 and 1.0 and True print differently in JSON
        return False
    if isinstance(a, float) and a != a and b != b:  # NaN is written as NaN by both runs
        return True
    return a == b


def json_differences(a: Any, b: Any, *, where: str = "") -> list[str]:
    """Paths at which two parsed JSON documents differ, in document order (empty when equal).

    Examples
    --------
    >>> json_differences({"a": [1, 2], "b": 1, "n": {"x": 0.5}}, {"a": [1, 3], "c": 1, "n": {"x": 0.5}})
    ['a[1]', 'b', 'c']
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in [*a, *(k for k in b if k not in a)]:
            path = f"{where}.{key}" if where else str(key)
            out += json_differences(a[key], b[key], where=path) if key in a and key in b else [path]
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where or '(document)'} ({len(a)} vs {len(b)} items)"]
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in json_differences(x, y, where=f"{where}[{i}]")]
    return [] if _same_scalar(a, b) else [where or "(document)"]


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def _png_without_times(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """PNG chunks, less ``tIME`` and text chunks whose keyword names a time or date; None if not a PNG."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    chunks, i = [], len(_PNG_SIGNATURE)
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i : i + 8])
        payload = data[i + 8 : i + 8 + length]
        i += 12 + length  # length, type, payload, CRC
        keyword = payload.split(b"\0", 1)[0].lower() if kind in (b"tEXt", b"zTXt", b"iTXt") else b""
        if kind == b"tIME" or b"time" in keyword or b"date" in keyword:
            continue
        chunks.append((kind, payload))
    return chunks


def _gpkg_content(path: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    """Schema and every row of every table of a GeoPackage, write times blanked (opened read-only)."""
    from contextlib import closing

    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    tables: dict[str, tuple[list[str], list[tuple]]] = {}
    with closing(sqlite3.connect(uri, uri=True)) as db:
        schema = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        tables["(schema)"] = (["type", "name", "tbl_name", "sql"], schema)
        for kind, name, _, sql in schema:
            # An R-tree is a virtual table; its shadow tables hold its rows and are compared.
            if kind != "table" or name.startswith("sqlite_") or (sql or "").upper().startswith("CREATE VIRTUAL"):
                continue
            cursor = db.execute('SELECT * FROM "%s"' % name.replace('"', '""'))
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            blank = _GPKG_TIME_COLUMNS.get(name)
            if blank in columns:
                j = columns.index(blank)
                rows = [row[:j] + (None,) + row[j + 1 :] for row in rows]
            tables[name] = (columns, rows)
    return tables


@dataclass(frozen=True)
class OutputComparison:
    """How one output of a run compares with the same output of another run."""

    path: str
    """Path inside the run folder, as listed in ``manifest.json``."""
    identical: bool
    """True when the content is the same (``how`` says what was set aside)."""
    how: str
    """What was compared and, when they differ, where."""

    def line(self) -> str:
        """``identical: <path> (<how>)`` or ``differs: <path> (<how>)``."""
        return f"{'identical' if self.identical else 'differs'}: {self.path} ({self.how})"


@dataclass(frozen=True)
class RunComparison:
    """The outputs of two runs, compared one by one."""

    original: Path
    """The run compared against."""
    other: Path
    """The re-run (or second run)."""
    outputs: list[OutputComparison]
    """One entry per output of either run, plus ``manifest.json`` (inputs, parameters, AOI file)."""
    notes: list[str] = field(default_factory=list)
    """Facts that bear on the comparison without being outputs (code state, outputs changed since)."""

    @property
    def identical(self) -> bool:
        """True when every compared output is identical."""
        return all(o.identical for o in self.outputs)

    @property
    def differing(self) -> list[OutputComparison]:
        """The outputs that differ."""
        return [o for o in self.outputs if not o.identical]


_TEXT_SUFFIXES = frozenset({".json", ".md", ".html", ".geojson", ".kml", ".qml", ".txt", ".csv"})


def _as_recorded(data: bytes, moved: Mapping[str, str]) -> bytes:
    """``data`` with each moved input's path (``moved``: path read -> path recorded) written as the run recorded it.

    Every form a path takes in the outputs is replaced, raw, JSON-escaped and HTML-escaped, in
    one pass, so that a recorded path that contains a moved one is not replaced twice.

    Examples
    --------
    >>> _as_recorded(b'{"path": "/b/s.tif"} and /b/s.tif', {"/b/s.tif": "/a/s.tif"})
    b'{"path": "/a/s.tif"} and /a/s.tif'
    """
    if not moved:
        return data
    forms = (lambda s: s, lambda s: json.dumps(s)[1:-1], lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
             html.escape, lambda s: html.escape(s, quote=False))
    table = {form(new).encode("utf-8"): form(old).encode("utf-8") for new, old in moved.items() for form in forms}
    pattern = re.compile(b"|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)))
    return pattern.sub(lambda m: table[m.group(0)], data)


def _compare_output(name: str, a: Path, b: Path, moved: Mapping[str, str] | None = None) -> OutputComparison:
    """Compare one output file of two runs by its kind; ``moved`` maps input paths ``b`` read to those ``a`` recorded."""
    for path in (a, b):
        if not path.is_file():
            return OutputComparison(name, False, f"missing: {path}")
    data_a, data_b = a.read_bytes(), b.read_bytes()
    suffix = a.suffix.lower()
    if moved and suffix in _TEXT_SUFFIXES:
        data_b = _as_recorded(data_b, moved)
    if suffix == ".json" and name != "manifest.json":
        try:
            differences = json_differences(comparable_report(json.loads(data_a)), comparable_report(json.loads(data_b)))
        except (ValueError, AttributeError):
            differences = ["(not a JSON object)"] if data_a != data_b else []
        if differences:
            return OutputComparison(name, False, f"differs at {_listed(differences)}")
        return OutputComparison(name, True, "same content once run id, start time and git state are set aside")
    if data_a == data_b:
        return OutputComparison(name, True, "same bytes")
    if suffix == ".html":
        if _RUN_ROW.sub("", data_a.decode("utf-8", "replace")) == _RUN_ROW.sub("", data_b.decode("utf-8", "replace")):
            return OutputComparison(name, True, "same page once the run id, start time and git state rows are set aside")
        return OutputComparison(name, False, "page differs beyond the run id, start time and git state")
    if suffix == ".md":
        lines_a = [ln for ln in data_a.decode("utf-8", "replace").splitlines() if not _RUN_LINE.match(ln)]
        lines_b = [ln for ln in data_b.decode("utf-8", "replace").splitlines() if not _RUN_LINE.match(ln)]
        if lines_a == lines_b:
            return OutputComparison(name, True, "same text once the run id, start time and git state lines are set aside")
        first = next((i for i, (x, y) in enumerate(zip(lines_a, lines_b)) if x != y), min(len(lines_a), len(lines_b)))
        return OutputComparison(name, False, f"text differs from line {first + 1} (run id, times and git state set aside)")
    if suffix == ".gpkg":
        try:
            content_a, content_b = _gpkg_content(a), _gpkg_content(b)
        except sqlite3.Error as exc:
            return OutputComparison(name, False, f"bytes differ and the GeoPackage cannot be read ({exc})")
        tables = [t for t in [*content_a, *(t for t in content_b if t not in content_a)] if content_a.get(t) != content_b.get(t)]
        if tables:
            return OutputComparison(name, False, f"GeoPackage tables differ: {_listed(tables)}")
        return OutputComparison(name, True, "same layers, rows and geometries; only GeoPackage write times (last_change) differ")
    if suffix == ".png":
        chunks_a, chunks_b = _png_without_times(data_a), _png_without_times(data_b)
        if chunks_a is not None and chunks_a == chunks_b:
            return OutputComparison(name, True, "same image; only embedded time stamps differ")
        return OutputComparison(name, False, "image bytes differ")
    return OutputComparison(name, False, "bytes differ")


def compare_runs(original: Path, other: Path, *, moved: Mapping[str, str] | None = None) -> RunComparison:
    """Compare every output of two complete run folders, and the inputs and parameters they used.

    GeoJSON, GeoTIFF (the COGs), KML, QGIS styles and figures must be byte-identical (PNG
    ``tIME`` and time-stamp text chunks excepted, should a writer add them); a GeoPackage is
    compared table by table with GDAL's write times blanked; ``report.json`` / ``report.md``
    with the :data:`RUN_SPECIFIC_FIELDS` set aside, ``item.json`` with its id (the run id) and
    the ``burnscan:`` forms of those fields and of the code version set aside. ``manifest.json`` is compared on what the run
    was given: AOI, AOI file, scene files with their hashes, parameters.

    ``moved``: path ``other`` read an input at -> the path ``original`` recorded for it, for inputs
    found by their SHA-256 elsewhere (``burnscan rerun --inputs``). In the text outputs of
    ``other`` those paths are read as recorded, and a note says so; nothing else is set aside.
    """

    original, other = Path(original), Path(other)
    ma, mb = read_manifest(original), read_manifest(other)
    if moved:
        mb = json.loads(_as_recorded(json.dumps(mb).encode("utf-8"), moved))
    # versions are compared in report.json; how the scenes were found (a folder, the demo) is
    # not an input: the scene files and their hashes are, and they are compared.
    # overrides are how the parameters were reached (a re-run passes all of them), not what they are;
    # data_folder is where layers were looked for: the layers found are inputs (evidence_files) and compared.
    aside = RUN_SPECIFIC_FIELDS | {"code", "versions", "outputs", "scenes_from", "overrides", "data_folder"}
    def given_to(m: dict[str, Any]) -> dict[str, Any]:
        # No scene_options is none given: the demo and the catalogue take none, and a folder run given
        # none recorded none before they were always written (a re-run of the demo is a folder run).
        return {"scene_options": {}, **{k: v for k, v in m.items() if k not in aside}}

    given = json_differences(given_to(ma), given_to(mb))
    outputs = [
        OutputComparison("manifest.json", not given,
                         f"inputs, parameters and AOI file differ at {_listed(given)}" if given else "same AOI file, scene files, hashes and parameters")
    ]
    recorded_a = {o["path"]: o["sha256"] for o in ma.get("outputs", [])}
    recorded_b = {o["path"]: o["sha256"] for o in mb.get("outputs", [])}
    notes = []
    for name in [*recorded_a, *(n for n in recorded_b if n not in recorded_a)]:
        if name not in recorded_b:
            outputs.append(OutputComparison(name, False, f"not written by {other.name}"))
        elif name not in recorded_a:
            outputs.append(OutputComparison(name, False, f"written only by {other.name}"))
        else:
            outputs.append(_compare_output(name, original / name, other / name, moved))
            if (original / name).is_file() and sha256_file(original / name) != recorded_a[name]:
                notes.append(f"{original / name} no longer matches the SHA-256 in its manifest: it was changed after its run")
    if moved:
        notes.append(f"{len(moved)} input path(s) of {other.name} are not those {original.name} recorded: the files were found "
                     f"by their SHA-256 where they were moved to (or are the run's own copy of the review decisions it "
                     f"applied), and in manifest.json, report.json, report.md and report.html "
                     f"of {other.name} those paths were read as recorded ({_listed([f'{new} for {old}' for new, old in moved.items()])})")
    code_a, code_b = ma.get("code") or {}, mb.get("code") or {}
    if code_a != code_b:
        def said(code: dict[str, Any]) -> str:
            return f"{code.get('commit') or 'unknown commit'}{' with uncommitted changes' if code.get('dirty') else ''}"

        notes.append(f"code: {original.name} ran {said(code_a)}, {other.name} ran {said(code_b)}")
    return RunComparison(original=original, other=other, outputs=outputs, notes=notes)
