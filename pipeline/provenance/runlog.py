"""The run log: an append-only, hash-chained record of every finished run of an AOI.

A manifest inside a run folder can be replaced together with the outputs it lists; the
hashes would still agree. So every run, as it finishes, appends one line to
``<out>/<aoi>/runs.log``: its run id, kind, finish time, its manifest's SHA-256, and the
SHA-256 of the line before it. A manifest replaced afterwards no longer matches its line; a
line edited or removed breaks the chain at the line after it (a removed last line leaves its
run missing from the log); a run that never finished through burnscan is not in it. What
the chain cannot show is a whole log rewritten from its first line: that is what the hash
printed at the end of each run (kept by whoever ran it) and the signature are for.

Lines are appended under an exclusive lock, with ``O_APPEND``, and fsynced
(:func:`pipeline.outputs.write.append_line`), so runs finishing together chain one after the other.

Examples
--------
A line (one JSON object, keys in this order)::

    {"run_id":"20240201T103800Z-a1b2c3","kind":"detect","finished_utc":"2024-02-01T10:38:20Z",
     "manifest_sha256":"9f...","prev_sha256":"3c..."}
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pipeline.errors import OutputError

__all__ = ["RUN_LOG_NAME", "run_log_path", "record_run", "check_run_log", "check_log_continues"]

RUN_LOG_NAME = "runs.log"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = ("run_id", "kind", "finished_utc", "manifest_sha256", "prev_sha256")


def run_log_path(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Where the run log of a run folder is: ``<out>/<aoi>/runs.log`` for a village run
    (``<out>/<aoi>/<run-id>``) and for a search (``<out>/<aoi>/search/<run-id>``)."""
    parent = Path(run_dir).resolve().parent
    return (parent.parent if manifest.get("kind") == "search" else parent) / RUN_LOG_NAME


def _line_sha256(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def record_run(aoi_folder: Path, *, run_id: str, kind: str, manifest_sha256: str, finished_utc: str) -> str:
    """Append a finished run to ``<aoi_folder>/runs.log``, chained to the line before; return the line.

    Raises
    ------
    OutputError
        When the log cannot be written, or its last line is incomplete (a write was cut
        off): a line chained to a torn one could never be checked.
    """
    from pipeline.outputs.write import append_line

    path = Path(aoi_folder) / RUN_LOG_NAME

    def next_line(current: bytes) -> str:
        _refuse_broken(path, current)  # again under the lock: another command may have written since the check
        lines = current.split(b"\n")[:-1]
        record = {"run_id": run_id, "kind": kind, "finished_utc": finished_utc, "manifest_sha256": manifest_sha256,
                  "prev_sha256": _line_sha256(lines[-1]) if lines else None}
        return json.dumps(record, separators=(",", ":"))

    Path(aoi_folder).mkdir(parents=True, exist_ok=True)
    return append_line(path, next_line, root=Path(aoi_folder))


def check_log_continues(aoi_folder: Path) -> None:
    """Refuse, before a run's work, an AOI's run log that a new line could not continue.

    A line appended to a log whose chain is broken (a line edited, inserted or removed, or a write cut off) chains to
    what is there, so the run it records could never be verified: every run after the break would fail
    ``burnscan verify``. The log is evidence of what was edited: it is moved aside by the user, never repaired here.

    Raises
    ------
    OutputError
        Naming the log, its first broken line, and the fix.
    """
    path = Path(aoi_folder) / RUN_LOG_NAME
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"{path}: the run log cannot be read ({exc.strerror or exc}); fix its permissions") from None
    _refuse_broken(path, current)


def _refuse_broken(path: Path, current: bytes) -> None:
    fix = ("move the log aside, kept as evidence (burnscan verify names every broken line), and run again to start a "
           "new chain")
    if current and not current.endswith(b"\n"):
        raise OutputError(f"{path}: the last line of the run log is incomplete (a write was cut off); {fix}")
    problems = _chain_problems(path, current.split(b"\n")[:-1])
    if problems:
        raise OutputError(f"{problems[0]}; a run recorded after it could never be verified: {fix}")


def _chain_problems(log_path: Path, lines: list[bytes]) -> list[str]:
    """One line per break of the chain of complete ``lines``: a line that is not a record, or does not chain to the one before."""
    problems: list[str] = []
    previous: str | None = None
    for n, raw in enumerate(lines, start=1):
        record = _parse(raw)
        if record is None:
            problems.append(f"{log_path}: line {n} is not a run record burnscan writes: the log was edited")
        elif record["prev_sha256"] != previous:
            problems.append(f"{log_path}: line {n} does not chain to "
                            + (f"line {n - 1} (the SHA-256 it records for it differs)" if n > 1 else "nothing (it is the first line)")
                            + ": a line was edited, inserted or removed")
        previous = _line_sha256(raw)
    return problems


def _parse(line: bytes) -> dict[str, Any] | None:
    """A log line as a record, or None when it is not one burnscan wrote."""
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(record, dict) or set(record) != set(_FIELDS):
        return None
    if not all(isinstance(record[k], str) for k in _FIELDS[:4]) or not _SHA256.match(record["manifest_sha256"]):
        return None
    if record["prev_sha256"] is not None and not (isinstance(record["prev_sha256"], str) and _SHA256.match(record["prev_sha256"])):
        return None
    return record


def check_run_log(log_path: Path, manifest: dict[str, Any], manifest_sha256: str, *, manifest_path: Path) -> tuple[list[str], str]:
    """Check a run log's chain from its first line, and that it holds this run with this manifest.

    Parameters
    ----------
    log_path:
        The AOI's ``runs.log``.
    manifest, manifest_sha256:
        The run's validated manifest and the SHA-256 of its bytes.
    manifest_path:
        Named in the line that says the manifest was replaced.

    Returns
    -------
    problems, where:
        One line per problem (a broken link of the chain, the run missing or listed twice,
        its line disagreeing with the manifest); and which line of the log holds the run.
    """
    log_path = Path(log_path)
    if not log_path.is_file():
        return [f"{log_path}: no run log (every run is recorded there with its manifest's SHA-256 as it finishes): "
                f"give the AOI's runs.log with --log if the run folder was copied without it"], ""
    try:
        data = log_path.read_bytes()
    except OSError as exc:
        return [f"{log_path}: the run log cannot be read ({exc.strerror or exc}); fix its permissions"], ""
    problems: list[str] = []
    lines = data.split(b"\n")
    if lines[-1]:
        problems.append(f"{log_path}: line {len(lines)} is incomplete (no newline): a write was cut off or the log was edited")
    else:
        lines = lines[:-1]
    problems += _chain_problems(log_path, lines)
    mine: list[tuple[int, dict[str, Any]]] = []
    for n, raw in enumerate(lines, start=1):
        record = _parse(raw)
        if record is not None and record["run_id"] == manifest["run_id"] and record["kind"] == manifest["kind"]:
            mine.append((n, record))
    if not mine:
        problems.append(f"{log_path}: run {manifest['run_id']} is not in the run log: it was not finished by burnscan "
                        f"here, or its line was removed")
        return problems, ""
    if len(mine) > 1:
        problems.append(f"{log_path}: run {manifest['run_id']} is in the run log {len(mine)} times "
                        f"(lines {', '.join(str(n) for n, _ in mine)}): the log was edited")
    n, record = mine[-1]
    if record["manifest_sha256"] != manifest_sha256:
        problems.append(f"{manifest_path}: its SHA-256 is not the one the run log recorded when the run finished "
                        f"({log_path}, line {n}): the manifest was replaced or edited after the run")
    elif record["finished_utc"] != manifest["finished_utc"]:
        problems.append(f"{log_path}: line {n} says run {manifest['run_id']} finished at {record['finished_utc']}, "
                        f"its manifest says {manifest['finished_utc']}: the log was edited")
    return problems, f"line {n} of {log_path}"
