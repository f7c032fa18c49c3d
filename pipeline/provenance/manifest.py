"""A run's ``manifest.json``: the schema it must meet, how it is read, and how a run is sealed.

The manifest is the run's claim about itself: what it was given (AOI file, scene files,
evidence layers, review decisions, parameters and the overrides that set them) and every
file it wrote, each with its SHA-256. A claim is only worth what can check it, so:

- it is read in one place, :func:`read_manifest`, which validates it against
  ``manifest.schema.json`` (shipped in the package): a missing or mistyped field is one line
  naming the manifest and the JSON path, never a silent "matches" (``{}`` used to verify);
- it lists every file of the run folder (:func:`run_folder_files`) but itself and its
  detached signature, so a file dropped in afterwards is found;
- it records inputs by absolute path and content hash, so a run verifies from any folder;
- it is anchored outside the folder when the run is sealed (:func:`seal_manifest`): its SHA-256 is
  chained into the AOI's run log (:mod:`pipeline.provenance.runlog`) and, given a key, signed
  (:mod:`pipeline.provenance.signing`), by :func:`seal_manifest`.

Checking a run against all of this is :mod:`pipeline.provenance.verify`.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import IntegrityError, OutputError

__all__ = [
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "APPLIED_REVIEWS_NAME",
    "MANIFEST_VERSION",
    "manifest_schema",
    "validate_manifest",
    "load_manifest",
    "read_manifest",
    "run_folder_files",
    "input_entry",
    "recorded_overrides",
    "seal_manifest",
]

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.sig"
APPLIED_REVIEWS_NAME = "reviews_applied.json"
"""A copy of the review decisions a run applied, kept in its folder: ``burnscan review`` goes on writing the AOI's
decisions file after the run, so the file its manifest names changes by design, and the copy is what vouches for
the decisions the run read (:mod:`pipeline.provenance.verify`, :mod:`pipeline.rerun`)."""
MANIFEST_VERSION = 1
"""Format of the manifests this code writes and reads. Manifests without the field were
written before it existed: they listed only some outputs, recorded inputs relative to where the
run started and had no run log, so they cannot prove what a version 1 manifest proves."""

_NOT_LISTED = frozenset({MANIFEST_NAME, SIGNATURE_NAME})
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true/false", int: "a number", float: "a number",
               type(None): "null"}


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every manifest must meet, from the package's data."""
    return json.loads(resources.files("pipeline.provenance").joinpath("manifest.schema.json").read_text(encoding="utf-8"))


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: Any) -> str:
    """One schema violation as ``<JSON path>: <what is wrong>``, short whatever the value's size."""
    where, found = error.json_path, error.instance
    kind = _JSON_TYPES.get(type(found), type(found).__name__)
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in found)
        return f"{where}.{missing}: missing"
    if error.validator == "additionalProperties" and isinstance(found, dict):
        known = error.schema.get("properties", {})
        extra = next((k for k in found if k not in known), "?")
        return f"{where}.{extra}: not a field of a burnscan manifest"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{where}: expected {' or '.join(wanted)}, found {kind} {_short(found)}"
    if error.validator in ("const", "enum"):
        allowed = [error.validator_value] if error.validator == "const" else error.validator_value
        return f"{where}: expected {' or '.join(_short(v) for v in allowed)}, found {_short(found)}"
    if error.validator == "pattern":
        return f"{where}: {_short(found)} is not of the recorded form"
    return f"{where}: {_short(error.message, 120)}"


def validate_manifest(manifest: Any, where: Path) -> dict[str, Any]:
    """``manifest`` itself when it is a version :data:`MANIFEST_VERSION` manifest meeting the schema.

    Raises
    ------
    IntegrityError
        One line naming ``where`` and the first problem (its JSON path), or saying that the
        manifest predates versioned manifests and that the run must be made again.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    fix = "the manifest was damaged or edited: restore the run folder from its evidence copy, or run burnscan detect again"
    if not isinstance(manifest, dict):
        raise IntegrityError(f"{where}: not a burnscan manifest (the JSON is {_JSON_TYPES.get(type(manifest), 'a value')}, "
                             f"not an object); {fix}")
    if "manifest_version" not in manifest:
        aoi = manifest.get("aoi") if isinstance(manifest.get("aoi"), str) else "AOI"
        raise IntegrityError(
            f"{where}: no manifest_version: written before manifests were versioned (or not a burnscan manifest), so it "
            f"cannot prove which files the run wrote or which inputs it read; run burnscan detect {aoi} again (same scenes, "
            f"same --set values) for a run that can be verified, and keep this folder as it is")
    version = manifest["manifest_version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > MANIFEST_VERSION:
        raise IntegrityError(f"{where}: manifest_version {version} was written by a newer burnscan (this one reads "
                             f"{MANIFEST_VERSION}); check it with that version")
    error = best_match(Draft202012Validator(manifest_schema()).iter_errors(manifest))
    if error is not None:
        raise IntegrityError(f"{where}: not a valid burnscan manifest: {_describe(error)}; {fix}")
    return manifest


def load_manifest(run_dir: Path) -> tuple[bytes, dict[str, Any]]:
    """The bytes of ``<run_dir>/manifest.json`` and the validated manifest parsed from those bytes.

    The bytes are returned so that their SHA-256 (checked against the run log and the
    signature) is the hash of exactly what was parsed, not of a file read a second time.

    Raises
    ------
    OutputError
        When the folder or the manifest is missing or unreadable.
    IntegrityError
        When the manifest is not JSON, predates versioned manifests or breaks the schema.
    """
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_NAME
    if not run_dir.is_dir():
        raise OutputError(f"{run_dir}: no such run folder; give a finished run folder (out/<aoi>/<run-id>)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if run_dir.name.endswith(".partial"):  # left on purpose, for inspection (pipeline.outputs.write)
            raise OutputError(f"{run_dir}: an interrupted run: it stopped before it was sealed, so it has no manifest and "
                              f"holds no finding that can be checked; run detect again, and remove this folder once "
                              f"inspected") from None
        raise OutputError(f"{path}: cannot read the manifest (no such file); give a complete run folder") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot read the manifest ({exc.strerror or exc}); give a complete run folder") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too; nesting can be absurdly deep
        raise IntegrityError(f"{path}: not valid JSON ({exc}); the manifest was damaged: restore the run folder from "
                             f"its evidence copy") from None
    return data, validate_manifest(manifest, path)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The validated manifest of a run folder (see :func:`load_manifest`)."""
    return load_manifest(run_dir)[1]


def run_folder_files(folder: Path) -> list[str]:
    """Every file of a run folder, as sorted '/'-separated paths inside it, but the manifest and its signature.

    Links are listed as entries, never followed: a link dropped into a run folder is a file
    the run did not write.
    """
    folder = Path(folder)

    def unreadable(exc: OSError) -> None:  # a folder that cannot be listed could hide files the run did not write
        raise OutputError(f"{exc.filename}: cannot be listed ({exc.strerror or exc}); fix its permissions to check the run")

    found = []
    for parent, dirs, files in os.walk(folder, onerror=unreadable):
        here = Path(parent).relative_to(folder)
        found += [(here / name).as_posix() for name in files]
        found += [(here / name).as_posix() for name in dirs if (Path(parent) / name).is_symlink()]
    return sorted(name for name in found if name not in _NOT_LISTED)


def input_entry(path: str | Path, sha256: str | None, **extra: Any) -> dict[str, Any]:
    """How a manifest records a file the run read: its absolute path, SHA-256 and size.

    Absolute, so that the run verifies from any folder; the size lets ``verify --inputs``
    hash only the files that could be the one looked for.
    """
    absolute = os.path.abspath(path)
    return {**extra, "path": absolute, "sha256": sha256, "bytes": os.stat(absolute).st_size}


def recorded_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Parameter overrides as a manifest records them: as given, numbers and text only.

    They are what :func:`pipeline.config.resolve_params` resolves again over the code
    defaults and the AOI file when a run is verified; anything else is recorded as its text,
    which is how the command line gives every value.
    """
    return {str(k): v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v)
            for k, v in (overrides or {}).items()}


def seal_manifest(partial: Path, manifest: dict[str, Any], *, aoi_folder: Path, sign_key: Any = None) -> str:
    """Write a finished run's manifest, sign it, and chain it into the AOI's run log; return its SHA-256.

    The one ending of every run that writes a manifest (village runs and searches); the
    caller then gives the folder its final name (:func:`pipeline.outputs.write.finish_run_dir`).

    Parameters
    ----------
    partial:
        The ``.partial`` run folder, with every output written.
    manifest:
        Every field but ``manifest_version`` and ``outputs``, which are added here: the
        outputs are the folder's files as they are now, so none can be left out.
    aoi_folder:
        ``<out>/<aoi>``, where the run log ``runs.log`` is kept.
    sign_key:
        An Ed25519 private key (:func:`pipeline.provenance.signing.load_private_key`): the manifest is
        signed into ``manifest.json.sig``.

    Returns
    -------
    str
        The SHA-256 of the manifest, as chained in the run log: printed at the end of the run.
    """
    from pipeline.readers.rasters import sha256_file
    from pipeline.provenance.runlog import record_run
    from pipeline.provenance.signing import signature_text
    from pipeline.outputs.write import write_json, write_text

    partial = Path(partial)
    outputs = [{"path": name, "sha256": sha256_file(partial / name)} for name in run_folder_files(partial)]
    manifest = {"manifest_version": MANIFEST_VERSION, **manifest, "outputs": outputs}
    validate_manifest(manifest, partial / MANIFEST_NAME)  # what is written must be what verify can read
    write_json(partial / MANIFEST_NAME, manifest, root=partial)
    data = (partial / MANIFEST_NAME).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if sign_key is not None:
        write_text(partial / SIGNATURE_NAME, signature_text(data, sign_key), root=partial)
    # Logged before the folder gets its final name: a finished run folder is always in the log
    # (a failure here leaves the .partial folder, named in the error, like any failed run).
    record_run(Path(aoi_folder), run_id=manifest["run_id"], kind=manifest["kind"], manifest_sha256=digest,
               finished_utc=manifest["finished_utc"])
    return digest
