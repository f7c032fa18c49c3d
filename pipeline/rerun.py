"""Re-running a finished run from its manifest, and saying which outputs came out the same.

Nothing is re-run on inputs that are not the ones the manifest hashed: a re-run that
silently used a replaced scene would "confirm" a finding it never tested. The re-run goes
through :func:`pipeline.run.run_detect` into a new folder; :func:`pipeline.provenance.compare.compare_runs`
then compares it with the original.

A run of the AOI's scene catalogue (``burnscan add`` then ``detect``, the usual path) is re-run
on exactly the scenes its manifest lists: each found at its recorded path with its recorded
SHA-256 and still registered in the catalogue of the recorded data folder with those files,
so that scenes added since are left out and the reader reads each the way it was registered
(a plain GeoTIFF's band map and time).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.config import check_parameters
from pipeline.errors import AoiError, IntegrityError, OutputError, ParameterError, SceneError
from pipeline.outputs.write import named_run_dir
from pipeline.provenance.compare import RunComparison, compare_runs
from pipeline.provenance.manifest import APPLIED_REVIEWS_NAME, read_manifest
from pipeline.provenance.verify import find_by_hash, recorded_inputs
from pipeline.readers.catalogue import catalogue_dir, catalogue_entries
from pipeline.readers.geotiff import find as geotiff_scenes_in
from pipeline.readers.planet import planet_scenes_in
from pipeline.readers.rasters import is_regular_file, sha256_file
from pipeline.run import run_detect

__all__ = ["check_run_inputs", "rerun"]

logger = logging.getLogger(__name__)


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


def _relative_hint(path: Path) -> str:
    """Manifests record paths as the run was given them: a relative one only resolves from the same folder."""
    try:
        if path.is_absolute() or path.exists():
            return ""
    except (OSError, ValueError):  # a name too long or with a NUL: not a path that can be there at all
        return ""
    return f" (a relative path, read from {Path.cwd()}: start the re-run from the folder the run was started in)"


def _check_recorded_parameters(manifest: dict[str, Any], manifest_path: Path, run_dir: Path) -> None:
    """Refuse a manifest whose parameters burnscan would not have written, naming the manifest.

    They reach the re-run as overrides: unchecked here, a bad one would be blamed on the
    command line, which the user never touched.
    """
    try:
        check_parameters(manifest.get("parameters") or {}, source=f"manifest {manifest_path}",
                         fix=f"a run never records such a value, so the manifest may have been edited: check the run with "
                             f"burnscan verify {run_dir}")
    except ParameterError as exc:
        raise IntegrityError(str(exc)) from None


class _RunInputs(NamedTuple):
    """Where a re-run reads what its run read."""

    aoi_dir: Path
    scenes_dir: Path | None
    """The scene folder of a run given one (``--scenes``, the demo); None for a catalogue run."""
    data_root: Path | None
    """The ``<data>`` the run looked in for its catalogue and layers (None when not recorded)."""
    items: list[str] | None
    """The catalogue items of a catalogue run's scenes, in the manifest's order."""
    scene_options: dict[str, Any]
    """How a folder run read its files (``--bands`` and the rest), as its manifest records them."""
    reviews_file: Path | None
    """The review decisions the run applied, where they are now (None: the run applied none)."""
    layers: list[Path]
    """The outline, footprint and fire files the run read, where they are now: the only ones the re-run reads."""


def _catalogue_items(manifest: dict[str, Any], manifest_path: Path, data_root: Path) -> list[str]:
    """The catalogue item of each scene of a catalogue run: the one registering exactly its files and hashes."""
    entries = {e.item_id: e for e in catalogue_entries(data_root, manifest["aoi"])}
    registered = {item: {(os.path.abspath(href), e.sha256.get(role)) for role, href in e.files.items()}
                  for item, e in entries.items()}
    items = []
    for scene in manifest["inputs"]:
        files = {(os.path.abspath(f["path"]), f["sha256"]) for f in scene["files"]}
        match = [item for item, held in registered.items() if held == files]
        if not match:
            first = scene["files"][0]["path"]
            raise SceneError(f"{manifest_path}: scene {scene['scene_id']} of the run ({first}) is no longer registered in "
                             f"{catalogue_dir(data_root, manifest['aoi'])} with those files; register it again "
                             f"(burnscan add {manifest['aoi']} {first} --data {data_root}) before re-running")
        # The time is the catalogue's, an editable file: a re-run must date by the time the run recorded
        now = entries[match[0]].acquired.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if now != scene.get("acquired_utc"):
            raise SceneError(f"{manifest_path}: scene {scene['scene_id']} was read at {scene.get('acquired_utc')}, and its "
                             f"catalogue item {match[0]} now says {now}: the catalogue was edited since the run; restore "
                             f"the item's time, or run burnscan detect for a new run with it")
        items.append(match[0])
    return items


def _moved_inputs(manifest: dict[str, Any], inputs_dir: Path) -> dict[Path, Path]:
    """Recorded path -> where that input is under ``inputs_dir``, for the inputs not at their recorded path with their SHA-256.

    Found by content, as ``burnscan verify --inputs`` finds them: a moved file is the same
    evidence only if its bytes are. An input whose recorded path still holds it is read there.
    """
    if not Path(inputs_dir).is_dir():
        raise ParameterError(f"{inputs_dir}: no such folder; give --inputs the folder the run's inputs were moved or copied to")
    away = [e for e in recorded_inputs(manifest) if not (is_regular_file(e.path) and sha256_file(e.path) == e.sha256)]
    found = find_by_hash(Path(os.path.abspath(inputs_dir)), away) if away else {}
    return {e.path: found[e.sha256] for e in away if e.sha256 in found}


def _applied_reviews(manifest: dict[str, Any], run_dir: Path) -> dict[Path, Path]:
    """The run's own copy of the review decisions it applied, read in place of the AOI's decisions file once later
    reviews have rewritten that (``burnscan review`` writes it on, by design); nothing when it still holds them."""
    entry = manifest.get("reviews_file")
    kept = Path(run_dir) / APPLIED_REVIEWS_NAME
    if not entry or not is_regular_file(kept) or sha256_file(kept) != entry["sha256"]:
        return {}
    recorded = Path(entry["path"])
    if is_regular_file(recorded) and sha256_file(recorded) == entry["sha256"]:
        return {}
    return {recorded: kept}


def _layer_roots(moved: dict[Path, Path], layers: list[Path], scenes_dir: Path, recorded_scenes: Path,
                 data_folder: Path | None, manifest_path: Path) -> Path | None:
    """The data root a re-run reads moved layers from (None: the recorded one), after checking each lies where a run looks.

    A run finds its outline, footprints and fire archives by name beside its scenes or in
    ``<data>/<aoi>/``; a moved layer is found again only in the same place relative to the moved
    scenes, or in a folder named after the AOI (its parent is then the data root).
    """
    data_root = None
    for layer in (p for p in layers if p in moved):
        at = moved[layer]
        if layer.parent == recorded_scenes and at == scenes_dir / layer.name:
            continue
        if data_folder is not None and layer.parent == data_folder and at.parent.name == data_folder.name and at.name == layer.name:
            if data_root not in (None, at.parent.parent):
                raise SceneError(f"{manifest_path}: the run's layers were found in two data folders ({data_root}, {at.parent.parent}); "
                                 f"put them in one")
            data_root = at.parent.parent
            continue
        where = scenes_dir / layer.name if layer.parent == recorded_scenes else f"a folder named {data_folder.name if data_folder else '<aoi>'}/ as {layer.name}"
        raise SceneError(f"{at}: the run's layer {layer} was found here by its SHA-256, but a re-run reads it from {where}; "
                         f"move it there and re-run")
    return data_root


def _check_inputs(manifest: dict[str, Any], manifest_path: Path, moved: dict[Path, Path] | None = None,
                  inputs_dir: Path | None = None) -> _RunInputs:
    """Where the run's AOI file and scenes are, after checking every recorded hash.

    ``moved``: inputs found away from their recorded paths under ``inputs_dir`` (:func:`_moved_inputs`), read there.
    """
    moved = moved or {}
    elsewhere = f", and no file under {inputs_dir} has its SHA-256" if inputs_dir is not None else ""
    where = lambda p: moved.get(Path(p), Path(p))  # noqa: E731
    from_catalogue = manifest.get("scenes_from") == "catalogue"
    data_folder = Path(manifest["data_folder"]) if manifest.get("data_folder") else None
    if from_catalogue and (data_folder is None or data_folder.name != manifest.get("aoi")):
        raise OutputError(f"{manifest_path}: this run read the AOI's scene catalogue but does not record its data folder "
                          f"(written by an older burnscan); run burnscan detect {manifest.get('aoi')} again")
    data_root = data_folder.parent if data_folder is not None else None
    aoi_file = (manifest.get("aoi_file") or {}).get("path")
    if not manifest.get("aoi") or not aoi_file or not manifest.get("inputs") or "parameters" not in manifest:
        raise OutputError(f"{manifest_path}: does not record the AOI file, inputs and parameters; it cannot be re-run")
    aoi_path = where(aoi_file)
    if not is_regular_file(aoi_path):
        raise AoiError(f"{manifest_path}: AOI file {aoi_path} of the run is missing{_relative_hint(aoi_path)}{elsewhere}; restore it "
                       f"(the manifest records its SHA-256), or give the folder it was moved to with --inputs, and re-run")
    if sha256_file(aoi_path) != manifest["aoi_file"].get("sha256"):
        raise AoiError(f"{aoi_path}: AOI file differs from the one the run used (SHA-256 changed); restore it from git or the evidence copy")
    if aoi_path.stem != manifest["aoi"]:
        if aoi_path != Path(aoi_file):
            raise AoiError(f"{aoi_path}: the run's AOI file was found here by its SHA-256, but a re-run reads an AOI by its name: "
                           f"rename it {manifest['aoi']}{aoi_path.suffix} and re-run")
        raise AoiError(f"{aoi_path}: AOI file name does not match the run's AOI {manifest['aoi']!r}; the manifest was edited")

    recorded_files = [(Path(f["path"]), f["sha256"]) for scene in manifest["inputs"] for f in scene["files"]]
    files = [(where(p), digest) for p, digest in recorded_files]
    # Paths come from the manifest: messages name it first, then the path it records.
    missing = [p for p, _ in files if not is_regular_file(p)]
    changed = [p for p, digest in files if is_regular_file(p) and sha256_file(p) != digest]
    if missing or changed:
        first, what = (missing[0], "is missing") if missing else (changed[0], "differs from the manifest (SHA-256 changed)")
        others = len(missing) + len(changed) - 1
        more = f" ({others} other input file(s) also missing or changed)" if others else ""
        raise SceneError(f"{manifest_path}: input scene file {first} {what}{more}{_relative_hint(first)}{elsewhere}; restore the "
                         f"original files, or give the folder they were moved or copied to with --inputs (found there by SHA-256)")
    reviews_file = None
    for recorded, digest in _reviews_entry(manifest):  # kept beside the AOI's data, not with the scenes
        reviews_file = where(recorded)
        if not is_regular_file(reviews_file) or sha256_file(reviews_file) != digest:
            raise SceneError(f"{manifest_path}: review decisions changed since the run ({recorded}: SHA-256 differs or missing{elsewhere}); "
                             f"restore that file to re-run, or run burnscan detect for a new run with today's decisions")
    layers = _settlement_entry(manifest) + _evidence_entries(manifest)
    for recorded, digest in layers:  # outline, footprints, fire archives
        path = where(recorded)
        if not is_regular_file(path) or sha256_file(path) != digest:
            raise SceneError(f"{manifest_path}: an evidence layer of the run is missing or its SHA-256 changed ({recorded}{elsewhere}); "
                             f"restore it to re-run, or run burnscan detect for a new run with today's layers")
    if from_catalogue:
        own = {Path(aoi_file), *(p for p, _ in _reviews_entry(manifest))}  # the AOI file, or the run's copy of its decisions
        if set(moved) - own:
            first = next(p for p in moved if p not in own)
            raise SceneError(f"{manifest_path}: {first} of this run of the scene catalogue was found at {moved[first]}, but a catalogue "
                             f"run reads its scenes and layers as {catalogue_dir(data_root, manifest['aoi'])} registered them: "
                             f"put them back at their recorded paths, or register the moved scenes (burnscan add) and run burnscan detect")
        return _RunInputs(aoi_path.parent, None, data_root, _catalogue_items(manifest, manifest_path, data_root), {}, reviews_file,
                          [where(p) for p, _ in layers])
    folders = sorted({str(p.parent) for p, _ in files})
    if len(folders) != 1:
        raise SceneError(f"{manifest_path}: inputs lie in {len(folders)} folders ({', '.join(folders)}); a re-run needs one scene folder")
    scenes_dir = Path(folders[0])
    moved_root = _layer_roots(moved, [p for p, _ in layers], scenes_dir, recorded_files[0][0].parent, data_folder, manifest_path)
    options = dict(manifest.get("scene_options") or {})
    if "acquired" in options:
        options["acquired"] = datetime.fromisoformat(options["acquired"])
    recorded = {p.resolve() for p, _ in files}
    found = [p for s in planet_scenes_in(scenes_dir) for p in s.paths().values()]
    if options.get("bands"):  # each GeoTIFF of the folder was a scene of the run: one added since would be read too
        found += [Path(s.path) for s in geotiff_scenes_in(scenes_dir, bands=options["bands"])]
    extra = [p for p in found if p.resolve() not in recorded]
    if extra:
        raise SceneError(
            f"{extra[0]}: file is in the run's scene folder but was not an input of the run; "
            f"move it out, or re-run on a copy of the folder without it"
        )
    return _RunInputs(aoi_path.parent, scenes_dir, moved_root or data_root, None, options, reviews_file,
                      [where(p) for p, _ in layers])


def check_run_inputs(run_dir: Path) -> tuple[Path, Path | None]:
    """Check that a run's AOI file and scene files are still those its manifest hashed.

    Returns
    -------
    aoi_dir, scenes_dir:
        The folder of the run's AOI file, and the one folder its scene files are in
        (as recorded: a relative path is read from the current folder); for a run of the
        scene catalogue, None: its scenes are wherever the catalogue registered them.

    Raises
    ------
    AoiError
        When the AOI file is missing or changed.
    SceneError
        When a scene file is missing or changed, the inputs are spread over several folders,
        or the scene folder now holds a scene file the run did not use; for a catalogue run,
        when a scene is no longer registered with the files the run read. The message names the file.
    """
    checked = _check_inputs(read_manifest(run_dir), Path(run_dir) / "manifest.json")
    return checked.aoi_dir, checked.scenes_dir


def rerun(
    run_dir: Path,
    *,
    out_root: Path | None = None,
    inputs_dir: Path | None = None,
) -> RunComparison:
    """Run a finished run again from its ``manifest.json`` and compare the outputs.

    Same AOI file, same scene folder (or the same scenes of the catalogue), same outline and layers (none added since), same resolved parameters (passed as overrides, so
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
    inputs_dir:
        A folder the run's inputs were moved or copied to (another machine, an evidence
        disk): inputs not at their recorded paths are found there by SHA-256 and read there.
        The comparison reads their paths in the re-run's reports as the ones recorded.

    Raises
    ------
    AoiError, SceneError
        Before anything runs, when an input is missing or differs (see :func:`check_run_inputs`).
    IntegrityError
        Before anything runs, when a recorded parameter is unknown or not a valid value.
    """

    run_dir = named_run_dir(Path(run_dir))  # `latest` is read now: the re-run moves it
    manifest = read_manifest(run_dir)
    _check_recorded_parameters(manifest, run_dir / "manifest.json", run_dir)  # before any input is hashed
    moved = _moved_inputs(manifest, inputs_dir) if inputs_dir is not None else {}
    moved.update(_applied_reviews(manifest, run_dir))
    checked = _check_inputs(manifest, run_dir / "manifest.json", moved, inputs_dir)
    if out_root is None:
        resolved = run_dir.resolve()
        if resolved.parent.name != manifest["aoi"]:
            raise OutputError(f"{run_dir}: not inside a folder named after its AOI {manifest['aoi']!r}; give --out for the re-run")
        # keep a relative path relative, so the messages show paths as the user typed them
        out_root = run_dir.parent.parent if run_dir.name not in ("", "..") else resolved.parent.parent
    figures = any(str(o.get("path", "")).startswith("figures/") for o in manifest.get("outputs", []))
    on = checked.scenes_dir or f"{len(checked.items or [])} scenes of its catalogue"
    away = f" ({len(moved)} found by SHA-256 under {inputs_dir})" if moved else ""
    logger.info(f"inputs of {run_dir} match their manifest hashes{away}; re-running {manifest['aoi']} on {on}")
    where = {"data_root": checked.data_root} if checked.data_root is not None else {}  # older manifests: the default
    outcome = run_detect(
        manifest["aoi"], out_root=Path(out_root), overrides=manifest["parameters"], scenes_dir=checked.scenes_dir,
        aoi_dir=checked.aoi_dir, make_figures=figures,
        reviews_file=checked.reviews_file, apply_reviews=checked.reviews_file is not None, layers=checked.layers,
        catalogue_items=checked.items, scene_options=checked.scene_options, keep_alignment=False, keep_figures=False, **where,  # a check recomputes: nothing is taken from earlier runs
    )
    return compare_runs(run_dir, outcome.run_dir, moved={str(new): str(old) for old, new in moved.items()})
