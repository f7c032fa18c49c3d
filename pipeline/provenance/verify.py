"""Check a run folder against everything that can vouch for it: ``burnscan verify``.

A run is verified when nothing it claims can be contradicted:

- its manifest is a valid versioned manifest (:func:`pipeline.provenance.manifest.load_manifest`);
- the folder holds exactly the files the manifest lists, each with its SHA-256;
- ``report.json`` names the same run and parameters as the manifest;
- the AOI file and every input (scenes, settlement outline, review decisions, footprint
  layers, fire archives) are where the manifest recorded them, or found by content in an
  ``--inputs`` folder, with their SHA-256;
- the recorded parameters are what the code defaults, the AOI file's parameters and the
  recorded overrides resolve to (:func:`pipeline.config.resolve_params`);
- the AOI's run log chains from its first line and holds this manifest's SHA-256;
- given a public key, the detached signature proves the manifest.

Every failure is one line; nothing is modified.
"""

from __future__ import annotations

import hashlib
import json
import re
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pipeline.errors import IntegrityError, ParameterError
from pipeline.provenance.manifest import APPLIED_REVIEWS_NAME, MANIFEST_NAME, SIGNATURE_NAME, load_manifest, run_folder_files

__all__ = ["RunCheck", "RecordedInput", "check_run", "check_folder", "find_by_hash", "recorded_inputs", "verify_run", "sign_run"]

_MAX_REPORT_BYTES = 100_000_000  # a report of thousands of burns is a few MB; a larger one is not burnscan's
_MAX_SIGNATURE_BYTES = 64_000  # burnscan writes some 300 bytes of JSON; anything far larger is not a signature


@dataclass(frozen=True)
class RunCheck:
    """The outcome of checking one run folder."""

    run_dir: Path
    manifest: dict[str, Any]
    """The validated manifest."""
    manifest_bytes: bytes
    """Its exact bytes, as hashed, logged and signed."""
    problems: tuple[str, ...]
    """One line per thing that does not match (empty: the run verifies)."""
    notes: tuple[str, ...]
    """What was checked how: where inputs were looked for, which log line holds the run."""

    @property
    def manifest_sha256(self) -> str:
        """SHA-256 of the manifest, to compare with the one printed when the run finished."""
        return hashlib.sha256(self.manifest_bytes).hexdigest()


def _required_outputs(manifest: dict[str, Any]) -> tuple[str, ...]:
    """Files every run of this kind writes: a manifest that lists none of them was edited."""
    tag = "_SIMULATED" if manifest["simulated"] else ""
    if manifest["kind"] == "search":
        return (f"search{tag}.json", f"clusters{tag}.geojson")
    return ("report.json", f"burns{tag}.geojson", f"burns{tag}.gpkg")


def check_folder(run_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Files of the run folder against the manifest's ``outputs``: changed, missing, unlisted.

    Also: a manifest that lists itself or its signature, or a path twice, or that leaves out
    a file every run of its kind writes while that file is gone too, was edited.
    """
    from pipeline.readers.rasters import is_regular_file, sha256_file

    run_dir = Path(run_dir)
    problems: list[str] = []
    listed: dict[str, str] = {}
    for entry in manifest["outputs"]:
        name = entry["path"]
        if name in (MANIFEST_NAME, SIGNATURE_NAME):
            problems.append(f"{run_dir / name}: listed among the outputs, which never list the manifest or its signature: "
                            f"the manifest was edited")
        elif name in listed:
            problems.append(f"{run_dir / name}: listed twice in the manifest: the manifest was edited")
        else:
            listed[name] = entry["sha256"]
    for name, digest in listed.items():
        path = run_dir / name
        if os.path.islink(path):  # never raises: a name too long for the file system is simply not a link
            problems.append(f"changed: {path} (a link where the run wrote a file)")
        elif not is_regular_file(path):
            problems.append(f"missing: {path}")
        elif sha256_file(path) != digest:
            problems.append(f"changed: {path}")
    present = run_folder_files(run_dir)
    for name in present:
        if name not in listed:
            sidecar = (f"; GDAL writes it beside {name.removesuffix('.aux.xml')} when a program (QGIS, gdalinfo -stats) "
                       f"computes its statistics: delete it, and open copies of a run's rasters, never the run's own"
                       if name.endswith(".aux.xml") and name.removesuffix(".aux.xml") in listed else "")
            problems.append(f"unlisted: {run_dir / name} (in the run folder but not in its manifest: added after the run{sidecar})")
    holding = {parent.as_posix() for name in listed for parent in Path(name).parents}
    for folder, _, _ in os.walk(run_dir):  # a folder (empty, or of folders) the run never wrote any file into
        name = Path(folder).relative_to(run_dir).as_posix()
        if name != "." and name not in holding and not any(p.startswith(f"{name}/") for p in present):
            problems.append(f"unlisted: {Path(folder)}/ (a folder in the run folder that holds none of its files: added after the run)")
    for name in _required_outputs(manifest):
        if name not in listed and name not in present:
            problems.append(f"missing: {run_dir / name} (every {manifest['kind']} run writes it, and the manifest does not "
                            f"list it: the manifest was edited)")
    return problems


def _kept_work(run_dir: Path, manifest: dict[str, Any]) -> str:
    """What a village run's report says it read from ``out/.cache`` (``""``: nothing, or no readable report)."""
    from pipeline.readers.rasters import read_small_file

    path = Path(run_dir) / "report.json"
    if manifest["kind"] != "detect" or not path.is_file():
        return ""
    try:
        report = json.loads(read_small_file(path, _MAX_REPORT_BYTES, what="report", error=IntegrityError,
                                            fix="it was damaged or replaced").decode("utf-8"))
        kept = report["provenance"]["kept_work"]
    except (IntegrityError, OSError, ValueError, KeyError, TypeError):
        return ""  # an unreadable report is a problem line of its own
    return kept if isinstance(kept, str) and kept and not kept.startswith("none") else ""


def _check_report(run_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """``report.json`` of a village run against the manifest: same run id, AOI, parameters, simulated flag."""
    from pipeline.provenance.compare import json_differences

    path = Path(run_dir) / "report.json"
    if manifest["kind"] != "detect" or not path.is_file():
        return []  # a missing report is already a line of check_folder
    from pipeline.readers.rasters import read_small_file

    try:
        report = json.loads(read_small_file(path, _MAX_REPORT_BYTES, what="report", error=IntegrityError,
                                            fix="it was damaged or replaced").decode("utf-8"))
    except IntegrityError as exc:
        return [str(exc)]
    except (OSError, ValueError) as exc:
        return [f"{path}: cannot be read as JSON ({exc}): it was damaged or replaced"]
    if not isinstance(report, dict):
        return [f"{path}: not a burnscan report (no JSON object): it was replaced"]
    problems = []
    provenance = report.get("provenance") if isinstance(report.get("provenance"), dict) else {}
    if provenance.get("run_id") != manifest["run_id"]:
        problems.append(f"{path}: names run {provenance.get('run_id')!r}, the manifest run {manifest['run_id']!r}: "
                        f"one of them is not this run's")
    aoi = report.get("aoi") if isinstance(report.get("aoi"), dict) else {}
    if aoi.get("name") != manifest["aoi"]:
        problems.append(f"{path}: names AOI {aoi.get('name')!r}, the manifest {manifest['aoi']!r}: one of them is not this run's")
    if report.get("simulated") != manifest["simulated"]:
        problems.append(f"{path}: says simulated={report.get('simulated')!r}, the manifest {manifest['simulated']!r}")
    differ = json_differences(report.get("parameters"), manifest["parameters"])
    if differ:
        names = ", ".join(d for d in differ)
        problems.append(f"{path}: parameters differ from the manifest's at {names}: one of them was edited after the run")
    return problems


@dataclass(frozen=True)
class RecordedInput:
    """One file a run read, as its manifest records it."""

    what: str
    path: Path
    sha256: str | None
    size: int | None


def recorded_inputs(manifest: dict[str, Any]) -> list[RecordedInput]:
    """Every file a run read (AOI file, scene files, outline, reviews, evidence layers), as its manifest records it."""
    entries: list[RecordedInput] = []
    aoi_file = manifest["aoi_file"]
    if aoi_file["path"] is not None and aoi_file["sha256"] is not None:
        entries.append(RecordedInput("aoi", Path(aoi_file["path"]), aoi_file["sha256"], aoi_file.get("bytes")))
    for scene in manifest["inputs"]:
        entries += [RecordedInput("scene", Path(f["path"]), f["sha256"], f.get("bytes")) for f in scene["files"]]
    for key in ("settlement_file", "reviews_file"):
        if manifest.get(key):
            entries.append(RecordedInput(key, Path(manifest[key]["path"]), manifest[key]["sha256"], manifest[key].get("bytes")))
    entries += [RecordedInput("evidence", Path(e["path"]), e["sha256"], e.get("bytes")) for e in manifest.get("evidence_files") or []]
    return entries


def _files_under(folder: Path) -> Iterator[Path]:
    for parent, _, files in os.walk(folder):
        for name in files:
            yield Path(parent) / name


def find_by_hash(folder: Path, wanted: list[RecordedInput]) -> dict[str, Path]:
    """Files under ``folder`` whose SHA-256 is one of ``wanted``'s, by hash.

    Only files of a size some wanted file has are hashed, when every size is known (manifests
    record them), so pointing at a large evidence disk costs the few candidates, not the disk.
    """
    from pipeline.readers.rasters import sha256_file

    hashes = {w.sha256 for w in wanted}
    sizes = {w.size for w in wanted}
    found: dict[str, Path] = {}
    for path in sorted(_files_under(folder)):
        try:
            if None not in sizes and path.stat().st_size not in sizes:
                continue
            digest = sha256_file(path)
        except OSError:
            continue  # unreadable: it cannot be the file looked for
        if digest in hashes and digest not in found:
            found[digest] = path
    return found


def _check_inputs(manifest: dict[str, Any], inputs_dir: Path | None,
                  run_dir: Path | None = None) -> tuple[list[str], list[str], Path | None]:
    """Every recorded input at its recorded path, or found by SHA-256 under ``inputs_dir``.

    Returns the problem lines, the notes (where inputs were looked for, what was found
    elsewhere) and where the AOI file is (None when missing; the changed file when changed,
    so that the parameters it gives now can be compared).
    """
    from pipeline.readers.rasters import is_regular_file, sha256_file

    entries = recorded_inputs(manifest)
    relative = [e for e in entries if not e.path.is_absolute()]
    where = "inputs looked for at their recorded absolute paths"
    if relative:
        where = (f"inputs looked for at their recorded paths; {len(relative)} of them are relative (written before inputs "
                 f"were recorded by absolute path) and were read from {Path.cwd()}")
    if inputs_dir is not None:
        if not Path(inputs_dir).is_dir():
            raise ParameterError(f"{inputs_dir}: no such folder; give --inputs the folder the run's inputs were copied to")
        where += f", then by SHA-256 under {inputs_dir}"
    notes = [where]
    state = {}
    for e in entries:
        if is_regular_file(e.path):
            state[e] = "ok" if sha256_file(e.path) == e.sha256 else "changed"
        else:
            state[e] = "missing"
    found = find_by_hash(Path(inputs_dir), [e for e in entries if state[e] != "ok"]) if inputs_dir is not None else {}
    kept = Path(run_dir) / APPLIED_REVIEWS_NAME if run_dir is not None else None
    for e in (e for e in entries if e.what == "reviews_file" and state[e] != "ok"):
        # later reviews rewrite the AOI's decisions: the run's own copy holds those it applied
        if kept is not None and is_regular_file(kept) and sha256_file(kept) == e.sha256:
            state[e] = "ok"
            notes.append(f"{e.path}: the review decisions have changed since the run (reviewed again); the decisions it "
                         f"applied are its own copy {kept}, with the recorded SHA-256")
    problems = []
    aoi_at: Path | None = None
    for e in entries:
        at = e.path if state[e] == "ok" else found.get(e.sha256 or "")
        if e.what == "aoi":  # a changed AOI file still says which parameters it gives now
            aoi_at = at or (e.path if state[e] == "changed" else None)
        if at is not None:
            if at != e.path:
                notes.append(f"{e.path}: found by its SHA-256 at {at}")
            continue
        label = " (the run's AOI file)" if e.what == "aoi" else ""
        hint = ""
        if state[e] == "missing" and not e.path.is_absolute():
            hint = f" (a relative path, read from {Path.cwd()}: verify from the folder the run was started in, or give --inputs)"
        problems.append(f"{state[e]}: {e.path}{label}{hint}")
    missing = sum(state[e] == "missing" and e.path.is_absolute() and e.sha256 not in found for e in entries)
    if missing and inputs_dir is None:
        notes.append(f"{missing} input(s) not at their recorded paths: if they were moved or copied elsewhere, "
                     f"give that folder with --inputs (files are recognised by their SHA-256)")
    return problems, notes, aoi_at


def _check_parameters(manifest: dict[str, Any], aoi_path: Path | None) -> tuple[list[str], list[str]]:
    """Recorded parameters against code defaults < the AOI file's parameters < recorded overrides."""
    from pipeline.aoi import aoi_from_feature
    from pipeline.config import resolve_params
    from pipeline.provenance.compare import json_differences
    from pipeline.provenance.versions import git_state

    if aoi_path is None:
        return [], ["parameters not resolved again: the run's AOI file is missing"]
    try:
        aoi = aoi_from_feature(manifest["aoi"], json.loads(aoi_path.read_text(encoding="utf-8")), path=aoi_path)
        resolved = resolve_params(aoi.parameters, manifest["overrides"]).as_dict()
    except (OSError, ValueError) as exc:  # PipelineErrors of the AOI file or parameters are ValueErrors
        return [f"parameters: the recorded overrides and AOI file no longer resolve ({exc})"], []
    recorded = manifest["parameters"]
    differ = json_differences(recorded, resolved)
    if not differ:
        return [], []
    commit, ran = (git_state().get("commit") or "unknown"), (manifest["code"].get("commit") or "unknown")
    why = ("" if commit == ran else
           f"; this code ({commit[:12]}) is not the run's ({ran[:12]}): a code default may have changed since")
    return [f"parameter {name}: recorded {_shown(recorded, name)}, but code defaults < AOI file < recorded overrides "
            f"give {_shown(resolved, name)}{why}" for name in differ], []


def _shown(values: dict[str, Any], name: str) -> str:
    return repr(values[name]) if name in values else "(absent)"


_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
"""The shape of a run folder's name (``pipeline.outputs.write.new_run_dir``): UTC start and six hex digits."""


def _check_name(run_dir: Path, manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` on the folder's name. A run is cited by its folder's name: a folder named as a run
    that holds another (one copied over it, or renamed) would verify as the run it is not, and the run it was
    named for be lost without a word. A copy under a name of its own (``evidence/``) is said, not refused."""
    name = run_dir.resolve().name  # ``latest`` is a link to the run's own folder
    if name == manifest["run_id"]:
        return [], []
    if _RUN_ID.fullmatch(name):
        return [f"{run_dir}: the folder is named as run {name!r} but holds run {manifest['run_id']!r} (its manifest's run_id): "
                f"a run folder renamed, or another run copied over it; give it back its run's name, or restore run "
                f"{name!r} from a copy"], []
    return [], [f"the folder {name!r} holds run {manifest['run_id']!r} (a copy under another name)"]


def check_run(
    run_dir: Path,
    *,
    public_key: Path | None = None,
    inputs_dir: Path | None = None,
    run_log: Path | None = None,
    inputs: bool = True,
) -> RunCheck:
    """Check a run folder against its manifest, inputs, parameters, run log and (optionally) signature.

    Parameters
    ----------
    run_dir:
        A finished run folder.
    public_key:
        Ed25519 public key (PEM): the run must carry a signature it verifies.
    inputs_dir:
        Where inputs moved from their recorded paths are looked for, by SHA-256.
    run_log:
        The AOI's ``runs.log``, when the run folder was copied without it (default: beside the run).
    inputs:
        False to check the run folder, its report, run log and signature only (what
        ``burnscan review`` needs before reading a run's polygons).

    Raises
    ------
    OutputError, IntegrityError
        When the manifest is missing, unreadable, unversioned or breaks the schema: nothing
        else can be checked against it.
    """
    from pipeline.provenance.runlog import check_run_log, run_log_path
    from pipeline.provenance.signing import load_public_key, signature_problem
    from pipeline.readers.rasters import read_small_file

    run_dir = Path(run_dir)
    key = load_public_key(public_key) if public_key is not None else None  # a bad key file fails before the long work
    data, manifest = load_manifest(run_dir)
    problems, named = _check_name(run_dir, manifest)
    problems += check_folder(run_dir, manifest) + _check_report(run_dir, manifest)
    notes: list[str] = list(named)
    if inputs:
        lines, more, aoi_at = _check_inputs(manifest, inputs_dir, run_dir)
        problems += lines
        notes += more
        lines, more = _check_parameters(manifest, aoi_at)
        problems += lines
        notes += more
    kept = _kept_work(run_dir, manifest)
    if kept:
        notes.append(f"the run read work kept by earlier runs of the same scenes ({kept}): verify checks the run's files "
                     f"and inputs, not that work; `burnscan rerun {run_dir}` recomputes everything and compares")
    lines, where = check_run_log(Path(run_log) if run_log else run_log_path(run_dir, manifest), manifest,
                                 hashlib.sha256(data).hexdigest(), manifest_path=run_dir / MANIFEST_NAME)
    problems += lines
    if where:
        notes.append(f"run recorded on {where}")
    signature = run_dir / SIGNATURE_NAME
    if key is not None:
        if not signature.is_file():
            problems.append(f"{signature}: missing: the run is not signed (burnscan sign signs a run that verifies)")
        else:
            try:  # a signature record is some 300 bytes: a huge file in its place is not one, and is not read
                text = read_small_file(signature, _MAX_SIGNATURE_BYTES, what="signature", error=IntegrityError,
                                       fix="the signature was damaged or replaced").decode("utf-8", errors="replace")
                problem = signature_problem(data, text, key, key_name=str(public_key))
            except IntegrityError as exc:
                problem = str(exc).removeprefix(f"{signature}: ")
            if problem:
                problems.append(f"{signature}: {problem}")
            else:
                notes.append(f"signature good: {public_key} signed this manifest")
    elif signature.is_file():
        notes.append(f"{signature} present, not checked: give --key with the signer's public key to check it")
    return RunCheck(run_dir=run_dir, manifest=manifest, manifest_bytes=data, problems=tuple(problems), notes=tuple(notes))


def verify_run(run_dir: Path) -> list[str]:
    """One line per problem :func:`check_run` finds with a run folder (empty when it verifies)."""
    return list(check_run(run_dir).problems)


def sign_run(run_dir: Path, key_path: Path) -> tuple[Path, str]:
    """Sign the manifest of a finished run that verifies; return the signature's path and the key's fingerprint.

    A run is signed only when :func:`pipeline.provenance.verify.check_run` finds nothing wrong with it,
    so that a signature never vouches for a folder already tampered with.

    Raises
    ------
    IntegrityError
        When the run does not verify, or is already signed.
    """
    from pipeline.outputs.write import write_text
    from pipeline.provenance.signing import key_fingerprint, load_private_key, signature_text

    key = load_private_key(key_path)
    run_dir = Path(run_dir)
    target = run_dir / SIGNATURE_NAME
    if target.exists():
        raise IntegrityError(f"{target}: the run is already signed; check it with burnscan verify --key, or move the "
                             f"signature away to sign again")
    check = check_run(run_dir)
    if check.problems:
        raise IntegrityError(f"{run_dir}: does not verify ({len(check.problems)} problem(s), the first: {check.problems[0]}); "
                             f"a run is signed only when it verifies: burnscan verify {run_dir} lists them")
    write_text(target, signature_text(check.manifest_bytes, key), root=run_dir)
    return target, key_fingerprint(key.public_key())
