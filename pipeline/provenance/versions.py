"""Who and what produced a run: code version, git state, library versions; checking and re-running it.

A finding must be re-runnable by someone else; that needs the exact code (commit and
whether the tree had uncommitted changes) and the versions of the numeric libraries,
since a GDAL or scikit-image upgrade can move a pixel. :func:`verify_run` checks a run
folder against its ``manifest.json``, inputs and run log (:mod:`pipeline.provenance.verify`);
:func:`rerun` runs it again from that manifest into a new folder and :func:`compare_runs`
says which outputs came out the same. Every manifest is read through the validated
reader of :mod:`pipeline.provenance.manifest`.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sqlite3
import struct
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "package_versions",
    "git_state",
    "code_version",
    "verify_run",
    "RUN_SPECIFIC_FIELDS",
    "comparable_report",
    "json_differences",
    "OutputComparison",
    "RunComparison",
    "compare_runs",
    "check_run_inputs",
    "rerun",
]

_PACKAGES = ("burnscan", "numpy", "scipy", "rasterio", "xarray", "scikit-image", "geopandas", "shapely", "pyproj", "pyogrio", "matplotlib")
_REPO = Path(__file__).resolve().parents[2]
_LOCK = _REPO / "requirements.lock"


def package_versions() -> dict[str, str]:
    """Installed versions of burnscan and its numeric dependencies (and GDAL, PROJ).

    Run from a checkout, also the SHA-256 of its ``requirements.lock``: with the commit, it names
    the whole pinned set ``make`` installs for this code, not only the numeric libraries listed.
    """
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        import rasterio
        from pyproj import proj_version_str

        versions["gdal"] = rasterio.__gdal_version__
        versions["proj"] = proj_version_str
    except ImportError:
        pass
    if _LOCK.is_file():  # absent where burnscan was installed as a package rather than run from a clone
        versions["requirements.lock"] = f"sha256:{hashlib.sha256(_LOCK.read_bytes()).hexdigest()}"
    return versions


def git_state() -> dict[str, str | bool | None]:
    """Commit of the code that runs, and whether its tree had uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def code_version() -> str:
    """``burnscan <version> (<commit>[+dirty])``."""
    state = git_state()
    commit = (state["commit"] or "unknown")[:12]
    dirty = "+dirty" if state["dirty"] else ""
    return f"burnscan {package_versions().get('burnscan', '?')} ({commit}{dirty})"


def _settlement_entry(manifest: dict[str, Any]) -> list[tuple[Path, str]]:
    """The settlement outline a run read beside its scenes, as (path, SHA-256), if any."""
    entry = manifest.get("settlement_file")
    return [(Path(entry["path"]), entry["sha256"])] if entry else []


def _reviews_entry(manifest: dict[str, Any]) -> list[tuple[Path, str]]:
    """The review decisions a run applied, as (path, SHA-256), if any."""
    entry = manifest.get("reviews_file")
    return [(Path(entry["path"]), entry["sha256"])] if entry else []


def _evidence_entries(manifest: dict[str, Any]) -> list[tuple[Path, str]]:
    """The footprint layers and fire archives a run read, as (path, SHA-256)."""
    return [(Path(e["path"]), e["sha256"]) for e in manifest.get("evidence_files") or []]


def verify_run(run_dir: Path) -> list[str]:
    """One line per file, input, parameter or run-log entry of a run that does not match its manifest.

    Empty when the run verifies; see :func:`pipeline.provenance.verify.check_run` for everything checked.
    """
    from pipeline.provenance.verify import verify_run as check

    return check(run_dir)


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    """The validated manifest of a run (:func:`pipeline.provenance.manifest.read_manifest`): compare and
    re-run read manifests through the same checks as verify."""
    from pipeline.provenance.manifest import read_manifest

    return read_manifest(run_dir)


# ---------------------------------------------------------------------------------------
# Comparing two runs. Two runs of the same inputs and parameters must give the same
# findings; only what names or times a run may differ. The helpers below say what is set
# aside, so a court can be told exactly which bytes were not compared and why.

RUN_SPECIFIC_FIELDS = frozenset({"run_id", "started_utc", "finished_utc", "seconds", "commit", "dirty"})
"""Report and manifest fields that name or time one run, or give the git state it ran from."""

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


def _compare_output(name: str, a: Path, b: Path) -> OutputComparison:
    """Compare one output file of two runs by its kind."""
    for path in (a, b):
        if not path.is_file():
            return OutputComparison(name, False, f"missing: {path}")
    data_a, data_b = a.read_bytes(), b.read_bytes()
    suffix = a.suffix.lower()
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


def compare_runs(original: Path, other: Path) -> RunComparison:
    """Compare every output of two complete run folders, and the inputs and parameters they used.

    GeoJSON, GeoTIFF and figures must be byte-identical (PNG ``tIME`` and time-stamp text
    chunks excepted, should a writer add them); a GeoPackage is compared table by table
    with GDAL's write times blanked; ``report.json`` / ``report.md`` with the
    :data:`RUN_SPECIFIC_FIELDS` set aside. ``manifest.json`` is compared on what the run
    was given: AOI, AOI file, scene files with their hashes, parameters.
    """
    from pipeline.readers.load import sha256_file

    original, other = Path(original), Path(other)
    ma, mb = _read_manifest(original), _read_manifest(other)
    # versions are compared in report.json; how the scenes were found (a folder, the demo) is
    # not an input: the scene files and their hashes are, and they are compared.
    # overrides are how the parameters were reached (a re-run passes all of them), not what they are.
    aside = RUN_SPECIFIC_FIELDS | {"code", "versions", "outputs", "scenes_from", "overrides"}
    given = json_differences({k: v for k, v in ma.items() if k not in aside}, {k: v for k, v in mb.items() if k not in aside})
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
            outputs.append(_compare_output(name, original / name, other / name))
            if (original / name).is_file() and sha256_file(original / name) != recorded_a[name]:
                notes.append(f"{original / name} no longer matches the SHA-256 in its manifest: it was changed after its run")
    code_a, code_b = ma.get("code") or {}, mb.get("code") or {}
    if code_a != code_b:
        def said(code: dict[str, Any]) -> str:
            return f"{code.get('commit') or 'unknown commit'}{' with uncommitted changes' if code.get('dirty') else ''}"

        notes.append(f"code: {original.name} ran {said(code_a)}, {other.name} ran {said(code_b)}")
    return RunComparison(original=original, other=other, outputs=outputs, notes=notes)


# ---------------------------------------------------------------------------------------
# Re-running. Nothing is re-run on inputs that are not the ones the manifest hashed: a
# re-run that silently used a replaced scene would "confirm" a finding it never tested.


def _relative_hint(path: Path) -> str:
    """Manifests record paths as the run was given them: a relative one only resolves from the same folder."""
    try:
        if path.is_absolute() or path.exists():
            return ""
    except (OSError, ValueError):  # a name too long or with a NUL: not a path that can be there at all
        return ""
    return f" (a relative path, read from {Path.cwd()}: start the re-run from the folder the run was started in)"


def _check_inputs(manifest: dict[str, Any], manifest_path: Path) -> tuple[Path, Path]:
    """The AOI folder and scene folder of a run, after checking every recorded hash."""
    from pipeline.errors import AoiError, OutputError, SceneError
    from pipeline.readers.load import discover_scenes, is_regular_file, sha256_file

    if manifest.get("scenes_from") == "catalogue":
        raise OutputError(f"{manifest_path}: this run read the AOI's scene catalogue, which may have grown since; "
                          f"run burnscan detect {manifest.get('aoi')} again (the catalogue checks every file's SHA-256)")
    aoi_file = (manifest.get("aoi_file") or {}).get("path")
    if not manifest.get("aoi") or not aoi_file or not manifest.get("inputs") or "parameters" not in manifest:
        raise OutputError(f"{manifest_path}: does not record the AOI file, inputs and parameters; it cannot be re-run")
    aoi_path = Path(aoi_file)
    if not is_regular_file(aoi_path):
        raise AoiError(f"{manifest_path}: AOI file {aoi_path} of the run is missing{_relative_hint(aoi_path)}; restore it (the manifest "
                       f"records its SHA-256) and re-run")
    if sha256_file(aoi_path) != manifest["aoi_file"].get("sha256"):
        raise AoiError(f"{aoi_path}: AOI file differs from the one the run used (SHA-256 changed); restore it from git or the evidence copy")
    if aoi_path.stem != manifest["aoi"]:
        raise AoiError(f"{aoi_path}: AOI file name does not match the run's AOI {manifest['aoi']!r}; the manifest was edited")

    files = [(Path(f["path"]), f["sha256"]) for scene in manifest["inputs"] for f in scene["files"]]
    # Paths come from the manifest: messages name it first, then the path it records.
    missing = [p for p, _ in files if not is_regular_file(p)]
    changed = [p for p, digest in files if is_regular_file(p) and sha256_file(p) != digest]
    if missing or changed:
        first, what = (missing[0], "is missing") if missing else (changed[0], "differs from the manifest (SHA-256 changed)")
        others = len(missing) + len(changed) - 1
        more = f" ({others} other input file(s) also missing or changed)" if others else ""
        raise SceneError(f"{manifest_path}: input scene file {first} {what}{more}{_relative_hint(first)}; "
                         f"restore the original files before re-running")
    for path, digest in _reviews_entry(manifest):  # kept beside the AOI's data, not with the scenes
        if not is_regular_file(path) or sha256_file(path) != digest:
            raise SceneError(f"{manifest_path}: review decisions changed since the run ({path}: SHA-256 differs or missing); "
                             f"restore that file to re-run, or run burnscan detect for a new run with today's decisions")
    for path, digest in _settlement_entry(manifest) + _evidence_entries(manifest):  # outline, footprints, fire archives
        if not is_regular_file(path) or sha256_file(path) != digest:
            raise SceneError(f"{manifest_path}: an evidence layer of the run is missing or its SHA-256 changed ({path}); "
                             f"restore it to re-run, or run burnscan detect for a new run with today's layers")
    folders = sorted({str(p.parent) for p, _ in files})
    if len(folders) != 1:
        raise SceneError(f"{manifest_path}: inputs lie in {len(folders)} folders ({', '.join(folders)}); a re-run needs one scene folder")
    scenes_dir = Path(folders[0])
    recorded = {p.resolve() for p, _ in files}
    found = [p for s in discover_scenes(scenes_dir) for p in s.paths().values()]
    extra = [p for p in found if p.resolve() not in recorded]
    if extra:
        raise SceneError(
            f"{extra[0]}: file is in the run's scene folder but was not an input of the run; "
            f"move it out, or re-run on a copy of the folder without it"
        )
    return aoi_path.parent, scenes_dir


def check_run_inputs(run_dir: Path) -> tuple[Path, Path]:
    """Check that a run's AOI file and scene files are still those its manifest hashed.

    Returns
    -------
    aoi_dir, scenes_dir:
        The folder of the run's AOI file, and the one folder its scene files are in
        (as recorded: a relative path is read from the current folder).

    Raises
    ------
    AoiError
        When the AOI file is missing or changed.
    SceneError
        When a scene file is missing or changed, the inputs are spread over several folders,
        or the scene folder now holds a scene file the run did not use. The message names the file.
    """
    return _check_inputs(_read_manifest(run_dir), Path(run_dir) / "manifest.json")


def rerun(
    run_dir: Path,
    *,
    out_root: Path | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> RunComparison:
    """Run a finished run again from its ``manifest.json`` and compare the outputs.

    Same AOI file, same scene folder, same resolved parameters (passed as overrides, so
    they win over anything the AOI file says now), figures only if the original had them.
    The re-run goes through :func:`pipeline.run.run_detect` into a new run folder; runs
    never overwrite each other, and ``latest`` then names the re-run.

    Parameters
    ----------
    run_dir:
        A complete run folder, ``<out>/<aoi>/<run-id>``.
    out_root:
        Root for the new run folder; default: the ``<out>`` of ``run_dir``, so the
        re-run lands beside it.
    log:
        Progress messages.

    Raises
    ------
    AoiError, SceneError
        Before anything runs, when an input is missing or differs (see :func:`check_run_inputs`).
    """
    from pipeline.errors import OutputError
    from pipeline.run import run_detect

    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    aoi_dir, scenes_dir = _check_inputs(manifest, run_dir / "manifest.json")
    if out_root is None:
        resolved = run_dir.resolve()
        if resolved.parent.name != manifest["aoi"]:
            raise OutputError(f"{run_dir}: not inside a folder named after its AOI {manifest['aoi']!r}; give --out for the re-run")
        # keep a relative path relative, so the messages show paths as the user typed them
        out_root = run_dir.parent.parent if run_dir.name not in ("", "..") else resolved.parent.parent
    figures = any(str(o.get("path", "")).startswith("figures/") for o in manifest.get("outputs", []))
    log(f"inputs of {run_dir} match their manifest hashes; re-running {manifest['aoi']} on {scenes_dir}")
    reviews = manifest.get("reviews_file")
    outcome = run_detect(
        manifest["aoi"], out_root=Path(out_root), overrides=manifest["parameters"], scenes_dir=scenes_dir,
        aoi_dir=aoi_dir, make_figures=figures, log=log,
        reviews_file=Path(reviews["path"]) if reviews else None, apply_reviews=bool(reviews),
    )
    return compare_runs(run_dir, outcome.run_dir)
