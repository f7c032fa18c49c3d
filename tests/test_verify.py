"""A verification that cannot be fooled: every way an outside audit tampered with a run is caught.

One run of the small AOI (simulated demo, no figures) is made per module, started from its
own folder with relative paths as a user types them; each test tampers with a copy of it
(folder and run log copied together) or with an input it restores. Every case here was
passed as "matches" by the earlier ``burnscan verify``, or ended in a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from factories import run_cli as _cli, with_kept_alignment
from smallaoi import AOI_NAME, write_small_aoi

pytestmark = pytest.mark.slow  # every test here needs the module's own small run (made once, tens of seconds)


@pytest.fixture(scope="module")
def made(tmp_path_factory, small_run):
    """(root, run folder): a finished run started in ``root`` with relative --out, --data and --aoi-dir,
    on a copy of the session's scenes (files: tests here tamper with them)."""
    import shutil

    from pipeline.run import run_detect
    from pipeline.sim.demo import demo_scenes

    root = tmp_path_factory.mktemp("verify")
    shutil.copytree(small_run.data_root, root / "data")
    write_small_aoi(root / "aoi")
    with_kept_alignment(small_run, root / "out")  # what is verified is what the run wrote, not how it aligned
    here = Path.cwd()
    os.chdir(root)
    try:
        outcome = run_detect(AOI_NAME, out_root=Path("out"), data_root=Path("data"), aoi_dir=Path("aoi"), make_figures=False,
                             demo=demo_scenes)
    finally:
        os.chdir(here)
    return root, root / outcome.run_dir


@pytest.fixture(autouse=True)
def started_where_the_run_was(made, monkeypatch):
    """Commands run from the folder the run was started in, unless a test moves: there even the
    earlier verify found relative inputs, so each tampering case below is caught for its own reason."""
    monkeypatch.chdir(made[0])


def _one_error(err: str) -> str:
    """The single ``burnscan: error:`` line of a refused command (and nothing else on stderr)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("burnscan: error: ") and "Traceback" not in err, err
    return lines[0]


def _copy(made, tmp_path: Path, name: str | None = None, aoi: str = AOI_NAME) -> Path:
    """A copy of the run folder at ``<tmp>/out/<aoi>/<name>``, with the AOI's run log beside it."""
    _, run = made
    copy = tmp_path / "out" / aoi / (name or run.name)
    shutil.copytree(run, copy)
    log = run.parent / "runs.log"
    if log.is_file():
        shutil.copy2(log, copy.parent / "runs.log")
    return copy


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _write_manifest(run: Path, manifest: dict) -> None:
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lines(out: str, prefix: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(prefix)]


# --- the untouched run ------------------------------------------------------------------


def test_the_untouched_run_verifies_from_another_folder_and_says_where_it_looked(made, capsys, tmp_path, monkeypatch):
    root, run = made
    manifest = _manifest(run)
    # every file of the folder is listed, inputs are absolute, the overrides (none) are recorded
    listed = sorted(o["path"] for o in manifest["outputs"])
    on_disk = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert listed == on_disk and manifest["manifest_version"] == 1 and manifest["overrides"] == {}
    paths = [f["path"] for scene in manifest["inputs"] for f in scene["files"]] + [manifest["aoi_file"]["path"]]
    assert len(paths) == 16 and all(Path(p).is_absolute() and Path(p).is_file() for p in paths)
    # the run was started with relative paths in `root`; verify it from elsewhere
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "verify", run)
    assert code == 0, out + err
    assert "note: inputs looked for at their recorded absolute paths" in out
    assert out.strip().splitlines()[-1].startswith(f"{run}: verified: ")
    assert f"manifest sha256: {_sha256(run / 'manifest.json')}" in out


# --- the manifest itself ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["empty object", "no version"])
def test_a_manifest_emptied_or_without_version_is_refused_not_matched(made, capsys, tmp_path, how):
    run = _copy(made, tmp_path)
    if how == "empty object":
        (run / "manifest.json").write_text("{}\n")
    else:  # what manifests looked like before they were versioned
        manifest = _manifest(run)
        del manifest["manifest_version"]
        _write_manifest(run, manifest)
    code, out, err = _cli(capsys, "verify", run)
    line = _one_error(err)
    assert code == 8 and "matches" not in out and "verified" not in out
    assert f"{run / 'manifest.json'}: no manifest_version: written before manifests were versioned" in line
    assert "run burnscan detect" in line  # and how to proceed


@pytest.mark.parametrize("field, value, where", [
    ("inputs", "scenes.tif", "$.inputs: expected array, found a string"),
    ("parameters", [4.0], "$.parameters: expected object, found an array"),
    ("outputs", [{"path": 7, "sha256": "0" * 64}], "$.outputs[0].path: expected string, found a number"),
    ("outputs", [{"path": "../../elsewhere.txt", "sha256": "0" * 64}], "$.outputs[0].path"),
    ("aoi_file", {"path": "aoi/x.geojson"}, "$.aoi_file.sha256: missing"),
    ("run_id", None, "$.run_id: expected string, found null"),
])
@pytest.mark.parametrize("command", ["verify", "rerun"])
def test_wrong_typed_manifest_fields_are_one_line_naming_the_json_path(made, capsys, tmp_path, command, field, value, where):
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest[field] = value
    _write_manifest(run, manifest)
    before = sorted(run.parent.iterdir())
    code, out, err = _cli(capsys, command, run)
    line = _one_error(err)
    assert code == 8 and f"{run / 'manifest.json'}: not a valid burnscan manifest: {where}" in line
    assert "identical" not in out and "verified" not in out
    assert sorted(run.parent.iterdir()) == before  # a re-run refused before anything ran


@pytest.mark.parametrize("name, value, what", [
    ("noise_k", "abc", "parameter noise_k='abc' from the manifest"),
    ("noise_k", -2, "noise_k must be"),
    ("no_such_parameter", 1, "unknown parameter 'no_such_parameter' from the manifest"),
])
def test_rerun_of_an_edited_parameter_names_the_manifest_not_the_command_line(made, capsys, tmp_path, name, value, what):
    """The recorded parameters reach the re-run as overrides: a bad one once read "from the command line"."""
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest["parameters"][name] = value
    _write_manifest(run, manifest)
    before = sorted(run.parent.iterdir())
    code, out, err = _cli(capsys, "rerun", run)
    line = _one_error(err)
    assert code == 8 and what in line and str(run / "manifest.json") in line, line
    assert "command line" not in line and "edited" in line and f"burnscan verify {run}" in line
    assert sorted(run.parent.iterdir()) == before


def test_a_manifest_replaced_after_the_run_is_caught_by_the_run_log(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest["code"]["dirty"] = not manifest["code"]["dirty"]  # valid, every file still matches: only the log knows
    _write_manifest(run, manifest)
    code, out, err = _cli(capsys, "verify", run)
    assert code == 8, out
    problems = [line for line in out.splitlines() if not line.startswith(("note: ", "manifest sha256: "))]
    assert problems == [f"{run / 'manifest.json'}: its SHA-256 is not the one the run log recorded when the run finished "
                        f"({run.parent / 'runs.log'}, line 1): the manifest was replaced or edited after the run"]


def test_a_report_dropped_from_the_manifest_then_edited_with_the_parameters_is_found(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest["outputs"] = [o for o in manifest["outputs"] if o["path"] != "report.json"]
    manifest["parameters"]["noise_k"] = 2.5  # a lower threshold "explains" more burned area
    _write_manifest(run, manifest)
    report = json.loads((run / "report.json").read_text())
    report["parameters"]["noise_k"] = 2.5
    report["totals"]["area_ha"] *= 2
    (run / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    code, out, err = _cli(capsys, "verify", run)
    assert code == 8 and len(_lines(err, "burnscan: error:")) == 1
    assert f"unlisted: {run / 'report.json'} (in the run folder but not in its manifest: added after the run)" in out
    assert "parameter noise_k: recorded 2.5, but code defaults < AOI file < recorded overrides give 4.0" in out
    assert _lines(out, f"{run / 'manifest.json'}: its SHA-256 is not the one the run log recorded")


def _forge(run: Path, manifest: dict) -> None:
    """Write ``manifest`` and rewrite the run's log line to its hash, as a forger with write access would."""
    _write_manifest(run, manifest)
    log = run.parent / "runs.log"
    if log.is_file():  # (runs made before the run log existed have none to rewrite)
        record = json.loads(log.read_text().splitlines()[0])  # the chain's first line: prev is null
        record["manifest_sha256"] = _sha256(run / "manifest.json")
        log.write_text(json.dumps(record, separators=(",", ":")) + "\n")


def test_a_forger_who_rewrites_the_log_too_is_caught_by_the_parameters_and_the_report(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest["parameters"]["min_area_m2"] = 500.0
    _forge(run, manifest)  # the chain alone cannot tell
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8
    assert "parameter min_area_m2: recorded 500.0, but code defaults < AOI file < recorded overrides give 50.0" in out
    assert f"{run / 'report.json'}: parameters differ from the manifest's at min_area_m2" in out
    assert "run log recorded" not in out


def test_a_report_of_another_run_swapped_in_is_caught_by_its_run_id(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    report = json.loads((run / "report.json").read_text())
    report["provenance"]["run_id"] = "20240101T000000Z-abcdef"
    (run / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    manifest = _manifest(run)
    for entry in manifest["outputs"]:
        if entry["path"] == "report.json":
            entry["sha256"] = _sha256(run / "report.json")
    _forge(run, manifest)
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8
    assert f"{run / 'report.json'}: names run '20240101T000000Z-abcdef', the manifest run '{run.name}'" in out


def test_a_folder_named_as_another_run_is_caught_and_a_copy_under_its_own_name_is_said(made, capsys, tmp_path):
    """Runs are cited by their folder's name: run B copied over run A's folder (or renamed to an id) verified as
    "verified", and run A's loss went unsaid."""
    _, run = made
    other = "20300101T000000Z-fa4e00"
    moved = _copy(made, tmp_path, name=other)
    code, out, _ = _cli(capsys, "verify", moved)
    assert code == 8
    assert f"{moved}: the folder is named as run {other!r} but holds run {run.name!r}" in out
    kept = _copy(made, tmp_path / "evidence", name="attached-to-finding")  # a copy under a name of its own
    code, out, _ = _cli(capsys, "verify", kept)
    assert code == 0, out
    assert f"note: the folder 'attached-to-finding' holds run {run.name!r}" in out


def test_recorded_overrides_are_resolved_again(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest["overrides"] = {"noise_k": "6"}  # claims a --set the run did not resolve
    _write_manifest(run, manifest)
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8 and "parameter noise_k: recorded 4.0, but code defaults < AOI file < recorded overrides give 6.0" in out


# --- files of the run folder ------------------------------------------------------------


def test_a_dropped_in_burns_geojson_is_reported_and_never_reviewed(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    fake = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "polygon_id": "20240128-FAKE", "first_seen": "2024-01-28T10:38:00Z"},
        "geometry": {"type": "Polygon", "coordinates": [[[-3.78, 13.82], [-3.779, 13.82], [-3.779, 13.821], [-3.78, 13.82]]]}}]}
    (run / "burns.geojson").write_text(json.dumps(fake))  # sorts before burns_SIMULATED.geojson
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8
    assert f"unlisted: {run / 'burns.geojson'} (in the run folder but not in its manifest: added after the run)" in out
    data = tmp_path / "data"
    code, out, err = _cli(capsys, "review", AOI_NAME, "20240128-FAKE", "--confirm", "--by", "A. Analyst", "--run", run,
                          "--data", data)
    line = _one_error(err)
    assert code == 8 and "does not verify" in line and "unlisted" in line and out == ""
    assert not (data / AOI_NAME / "reviews.json").exists()


def test_a_folder_added_to_a_run_is_reported_even_empty(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    (run / "notes" / "drafts").mkdir(parents=True)  # a folder of an empty folder
    (run / "gis" / "old").mkdir()                  # beside the run's own rasters
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8
    for folder in (run / "notes", run / "notes" / "drafts", run / "gis" / "old"):
        assert f"unlisted: {folder}/ (a folder in the run folder that holds none of its files: added after the run)" in out
    assert f"unlisted: {run / 'gis'}/ (" not in out  # the run's own folder


def test_an_output_changed_or_removed_is_reported_one_line_each(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    (run / "report.md").write_text((run / "report.md").read_text() + "\nA paragraph added later.\n")
    (run / "burns_SIMULATED.kml").unlink()
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8
    assert f"changed: {run / 'report.md'}" in out.splitlines() and f"missing: {run / 'burns_SIMULATED.kml'}" in out.splitlines()


# --- inputs -----------------------------------------------------------------------------


def test_the_aoi_file_changed_or_missing_is_reported(made, capsys):
    root, run = made
    aoi_file = root / "aoi" / f"{AOI_NAME}.geojson"
    original = aoi_file.read_bytes()
    try:
        feature = json.loads(original)
        feature["properties"]["parameters"] = {"noise_k": 5}  # a threshold changed after the run
        aoi_file.write_text(json.dumps(feature))
        code, out, _ = _cli(capsys, "verify", run)
        assert code == 8
        assert f"changed: {aoi_file} (the run's AOI file)" in out.splitlines()
        assert "parameter noise_k: recorded 4.0, but code defaults < AOI file < recorded overrides give 5.0" in out
        aoi_file.unlink()
        code, out, _ = _cli(capsys, "verify", run)
        assert code == 8 and f"missing: {aoi_file} (the run's AOI file)" in out.splitlines()
        assert "note: parameters not resolved again: the run's AOI file is missing" in out
    finally:
        aoi_file.write_bytes(original)
    assert _cli(capsys, "verify", run)[0] == 0


def test_inputs_moved_elsewhere_are_found_by_their_hash(made, capsys, tmp_path):
    root, run = made
    data, moved = root / "data", root / "data-copied-to-another-disk"
    data.rename(moved)
    try:
        code, out, _ = _cli(capsys, "verify", run)
        assert code == 8 and len(_lines(out, "missing: ")) == 18  # 15 scene files, outline, footprints, fire archive
        assert "note: 18 input(s) not at their recorded paths: if they were moved or copied elsewhere, give that folder with --inputs" in out
        code, out, err = _cli(capsys, "verify", run, "--inputs", moved)
        assert code == 0, out + err
        assert f"note: inputs looked for at their recorded absolute paths, then by SHA-256 under {moved}" in out
        assert len(_lines(out, f"note: {data}/")) == 18 and all(f"found by its SHA-256 at {moved}/" in line
                                                                  for line in _lines(out, f"note: {data}/"))
    finally:
        moved.rename(data)


# --- the run log ------------------------------------------------------------------------


def _chain(records: list[dict]) -> str:
    """A run log written the documented way: each line carries the SHA-256 of the line before."""
    lines, previous = [], None
    for record in records:
        line = json.dumps({**record, "prev_sha256": previous}, separators=(",", ":"))
        previous = hashlib.sha256(line.encode()).hexdigest()
        lines.append(line)
    return "\n".join(lines) + "\n"


def _other_run(i: int) -> dict:
    return {"run_id": f"20240301T00000{i}Z-00000{i}", "kind": "detect", "finished_utc": f"2024-03-01T00:00:0{i}Z",
            "manifest_sha256": f"{i}" * 64}


@pytest.mark.parametrize("damage", ["edited", "removed", "own line removed", "own line edited"])
def test_a_log_line_edited_or_removed_breaks_the_chain(made, capsys, tmp_path, damage):
    run = _copy(made, tmp_path)
    log = run.parent / "runs.log"
    mine = json.loads(log.read_text().splitlines()[0])
    del mine["prev_sha256"]
    log.write_text(_chain([_other_run(1), mine, _other_run(2), _other_run(3)]))
    assert _cli(capsys, "verify", run)[0] == 0  # a longer, intact chain: still verified
    lines = log.read_text().splitlines()
    if damage == "edited":
        lines[2] = lines[2].replace('"2024-03-01T00:00:02Z"', '"2024-03-01T09:00:02Z"')
    elif damage == "removed":
        del lines[2]
    elif damage == "own line removed":
        del lines[1]
    else:
        lines[1] = lines[1].replace(mine["manifest_sha256"], "f" * 64)
    log.write_text("\n".join(lines) + "\n")
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8
    broken = {"edited": 4, "removed": 3, "own line removed": 2, "own line edited": 3}[damage]
    assert f"{log}: line {broken} does not chain to line {broken - 1} (the SHA-256 it records for it differs): " \
           f"a line was edited, inserted or removed" in out
    if damage == "own line removed":
        assert f"{log}: run {mine['run_id']} is not in the run log" in out
    if damage == "own line edited":
        assert f"{run / 'manifest.json'}: its SHA-256 is not the one the run log recorded" in out


@pytest.mark.parametrize("damage", ["a line that is no record", "a torn last line", "an edited line"])
def test_detect_refuses_to_continue_a_broken_log_before_any_work(small_run, capsys, tmp_path, damage):
    """A run appended to a broken chain could never be verified: refused in one line naming the log, nothing made."""
    from factories import copy_small_run

    copy = copy_small_run(small_run, tmp_path, data=True)
    log = copy.out_root / AOI_NAME / "runs.log"
    first = json.loads(log.read_text().splitlines()[0])
    if damage == "a line that is no record":
        log.write_text(log.read_text() + "x\n")
    elif damage == "a torn last line":
        log.write_text(log.read_text() + '{"run_id":"2')
    else:
        log.write_text(_chain([first, _other_run(1), _other_run(2)]).replace(_other_run(1)["run_id"], "20240101T000000Z-abcdef"))
    before = sorted(p.name for p in log.parent.iterdir())
    code, _, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", copy.aoi_dir, "--out", copy.out_root,
                        "--data", copy.data_root, "--no-figures")
    line = _one_error(err)
    assert code == 6 and line.startswith(f"burnscan: error: {log}: ") and "move the log aside" in line, err
    assert {"a line that is no record": "line 2 is not a run record", "a torn last line": "incomplete",
            "an edited line": "line 3 does not chain to line 2"}[damage] in line
    assert sorted(p.name for p in log.parent.iterdir()) == before  # no run folder, partial or not


def test_an_interrupted_run_is_called_one_not_a_folder_without_a_manifest(capsys, tmp_path):
    partial = tmp_path / "out" / AOI_NAME / "20240101T000000Z-abcdef.partial"
    (partial / "figures").mkdir(parents=True)
    (partial / "report.json").write_text("{}")
    code, _, err = _cli(capsys, "verify", partial)
    assert code == 6 and "an interrupted run" in _one_error(err) and "run detect again" in err
    done = partial.rename(partial.with_name("20240101T000000Z-abcdef"))
    code, _, err = _cli(capsys, "verify", done)
    assert code == 6 and f"{done / 'manifest.json'}: cannot read the manifest (no such file)" in _one_error(err)


def test_a_run_missing_from_the_log_or_without_a_log_is_reported(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    log = run.parent / "runs.log"
    log.write_text(_chain([_other_run(1)]))
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8 and f"{log}: run {run.name} is not in the run log" in out
    log.unlink()
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8 and f"{log}: no run log" in out and "--log" in out
    code, out, err = _cli(capsys, "verify", run, "--log", made[1].parent / "runs.log")  # the log given explicitly
    assert code == 0, out + err


# --- signatures -------------------------------------------------------------------------


def test_keys_are_made_once_and_private(made, capsys, tmp_path):
    _, run = made
    key = tmp_path / "keys" / "burnscan-ed25519"
    code, out, err = _cli(capsys, "keygen", "--out", key)
    assert code == 0, err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    public = key.with_name(key.name + ".pub")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----") and f"public key: {public}" in out
    before = key.read_bytes()
    code, _, err = _cli(capsys, "keygen", "--out", key)
    assert code == 6 and "already exists" in _one_error(err) and key.read_bytes() == before
    code, _, err = _cli(capsys, "keygen", "--out", run / "key")
    assert code == 6 and "keys never go into a run folder" in _one_error(err) and not (run / "key").exists()


def test_a_signed_run_checks_with_its_key_and_not_once_tampered(made, capsys, tmp_path):
    root, first = made
    key = tmp_path / "signer"
    assert _cli(capsys, "keygen", "--out", key)[0] == 0
    public = Path(f"{key}.pub")
    # a second run, signed, with a --set recorded (the default value: results unchanged)
    code, out, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", root / "aoi", "--out", root / "out", "--data", root / "data",
                          "--no-figures", "--set", "min_area_m2=50", "--sign-key", key)
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1].removeprefix("outputs: "))
    digest = _sha256(run / "manifest.json")
    assert f"manifest sha256: {digest}" in out.splitlines()
    last = json.loads((run.parent / "runs.log").read_text().splitlines()[-1])
    assert last["run_id"] == run.name and last["manifest_sha256"] == digest and last["prev_sha256"] is not None
    manifest = _manifest(run)
    assert manifest["overrides"] == {"min_area_m2": "50"}
    assert "manifest.json.sig" not in [o["path"] for o in manifest["outputs"]] and not list(run.glob("*signer*"))
    code, out, err = _cli(capsys, "verify", run, "--key", public)
    assert code == 0 and f"note: signature good: {public} signed this manifest" in out, out + err

    copy = _copy((root, run), tmp_path)
    signature = copy / "manifest.json.sig"
    original = signature.read_text()
    other = tmp_path / "someone-else"
    assert _cli(capsys, "keygen", "--out", other)[0] == 0
    code, out, _ = _cli(capsys, "verify", copy, "--key", f"{other}.pub")
    assert code == 8 and f"{signature}: signature does not verify with {other}.pub: it was made with another key" in out
    record = json.loads(original)
    record["signature"] = record["signature"][:10] + ("A" if record["signature"][10] != "A" else "B") + record["signature"][11:]
    signature.write_text(json.dumps(record))
    code, out, _ = _cli(capsys, "verify", copy, "--key", public)
    assert code == 8 and f"{signature}: signature does not verify with {public}: the manifest or the signature changed after signing" in out
    signature.unlink()
    code, out, _ = _cli(capsys, "verify", copy, "--key", public)
    assert code == 8 and f"{signature}: missing: the run is not signed" in out

    # an existing unsigned run signed afterwards; never twice, never once tampered
    unsigned = _copy(made, tmp_path / "b")
    code, out, err = _cli(capsys, "sign", unsigned, "--key", key)
    assert code == 0 and out.startswith(f"signed: {unsigned / 'manifest.json.sig'}"), err
    assert _cli(capsys, "verify", unsigned, "--key", public)[0] == 0
    code, _, err = _cli(capsys, "sign", unsigned, "--key", key)
    assert code == 8 and "already signed" in _one_error(err)
    tampered = _copy(made, tmp_path / "c")
    (tampered / "report.md").write_text("rewritten\n")
    code, _, err = _cli(capsys, "sign", tampered, "--key", key)
    assert code == 8 and "does not verify" in _one_error(err) and not (tampered / "manifest.json.sig").exists()
    code, _, err = _cli(capsys, "verify", unsigned, "--key", key)  # the private key where the public one goes
    assert code == 5 and "this is a private key" in _one_error(err)


def test_a_signature_file_larger_than_any_is_a_problem_line_not_read(made, capsys, tmp_path):
    key = tmp_path / "signer"
    assert _cli(capsys, "keygen", "--out", key)[0] == 0
    copy = _copy(made, tmp_path)
    assert _cli(capsys, "sign", copy, "--key", key)[0] == 0
    signature = copy / "manifest.json.sig"
    with open(signature, "wb") as handle:
        handle.truncate(100_000_000)  # sparse: 100 MB by its size, nothing on disk
    code, out, err = _cli(capsys, "verify", copy, "--key", f"{key}.pub")
    assert code == 8 and "problem(s)" in _one_error(err)
    assert f"{signature}: a 100 MB file, over the 64 kB limit for a signature; the signature was damaged or replaced" in out



def test_a_report_larger_than_any_is_a_problem_line_not_read(made, capsys, tmp_path):
    """Read whole, a report of gigabytes would fill the memory before its hash was even compared."""
    copy = _copy(made, tmp_path)
    report = copy / "report.json"
    with open(report, "r+b") as handle:
        handle.truncate(200_000_000)  # sparse: 200 MB by its size, the report's own bytes first
    code, out, err = _cli(capsys, "verify", copy)
    assert code == 8 and "problem(s)" in _one_error(err)
    assert f"{report}: a 200 MB file, over the 100 MB limit for a report; it was damaged or replaced" in out
    assert "cannot be read as JSON" not in out


# --- review -----------------------------------------------------------------------------


def _review(capsys, tmp_path: Path, *extra) -> tuple[int, str, str]:
    return _cli(capsys, "review", AOI_NAME, "19990101-E1-N1", "--by", "A. Analyst", "--data", tmp_path / "data", *extra)


def test_review_refuses_a_run_folder_that_is_not_a_finished_run_of_the_aoi(made, capsys, tmp_path):
    _, run = made
    partial = _copy(made, tmp_path, name=f"{run.name}.partial")
    other = _copy(made, tmp_path, aoi="otherplace")
    manifest = _manifest(other)
    manifest["aoi"] = "otherplace"
    _write_manifest(other, manifest)
    cases = {
        tmp_path / "no-such-run": "no such run folder",
        run / "report.json": "a file, not a run folder",
        partial: "an incomplete run",
        other: "a run of AOI 'otherplace', not 'testvillage'",
    }
    for folder, needle in cases.items():
        code, out, err = _review(capsys, tmp_path, "--confirm", "--run", folder)
        line = _one_error(err)
        assert code != 0 and out == "" and str(folder) in line and needle in line, line
    assert not (tmp_path / "data").exists()


def test_review_edit_outlines_must_be_polygons_in_readable_geojson(made, capsys, tmp_path):
    _, run = made
    polygon = json.loads((run / "burns_SIMULATED.geojson").read_text())["features"][0]
    outlines = {
        "broken.geojson": ('{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[', "not valid GeoJSON"),
        "point.geojson": (json.dumps({"type": "Point", "coordinates": [-3.78, 13.82]}), "is a Point, not an area"),
        "line.geojson": (json.dumps({"type": "Feature", "properties": {}, "geometry": {
            "type": "LineString", "coordinates": [[-3.78, 13.82], [-3.77, 13.83]]}}), "is a LineString, not an area"),
        "projected.geojson": (json.dumps({"type": "Polygon", "coordinates": [[[400000, 1500000], [400100, 1500000],
                                                                              [400100, 1500100], [400000, 1500000]]]}),
                              "not lon/lat degrees"),
    }
    for name, (text, needle) in outlines.items():
        (tmp_path / name).write_text(text)
        code, out, err = _review(capsys, tmp_path, "--edit", tmp_path / name, "--run", run)
        line = _one_error(err)
        assert code == 5 and out == "" and str(tmp_path / name) in line and needle in line, line
    assert not (tmp_path / "data").exists()
    # a polygon is accepted, on a polygon of the run, and kept with the decision
    (tmp_path / "good.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [polygon]}))
    code, out, err = _cli(capsys, "review", AOI_NAME, polygon["properties"]["polygon_id"], "--edit", tmp_path / "good.geojson",
                          "--by", "A. Analyst", "--run", run, "--data", tmp_path / "data")
    assert code == 0 and out.startswith("edited: "), err
    decision = json.loads((tmp_path / "data" / AOI_NAME / "reviews.json").read_text())["decisions"][0]
    assert decision["edited_wkt"].startswith("POLYGON") and decision["run_id"] == run.name


# Found by `make fuzz` on manifests (mutated structure): each was a traceback or named only a path
# the manifest made up.

@pytest.mark.parametrize("bogus", ["x" * 5000, "a/b/c"])
def test_an_impossible_or_made_up_input_path_is_missing_and_the_manifest_is_named(made, capsys, tmp_path, bogus):
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest["inputs"][0]["files"][0]["path"] = bogus
    _write_manifest(run, manifest)
    code, out, err = _cli(capsys, "verify", run)
    assert code == 8 and "Traceback" not in err
    assert any(line.startswith("missing:") and bogus[:40] in line for line in out.splitlines()), out
    code, out, err = _cli(capsys, "rerun", run)
    line = _one_error(err)
    assert code == 4 and line.startswith(f"burnscan: error: {run / 'manifest.json'}: input scene file") and "is missing" in line


def test_an_output_name_too_long_for_the_file_system_is_missing(made, capsys, tmp_path):
    run = _copy(made, tmp_path)
    manifest = _manifest(run)
    manifest["outputs"].append({"path": "y" * 5000, "sha256": "0" * 64})
    _write_manifest(run, manifest)
    code, out, err = _cli(capsys, "verify", run)
    assert code == 8 and "Traceback" not in err
    assert any(line.startswith(f"missing: {run / ('y' * 20)}") for line in out.splitlines()), out


def test_statistics_gdal_wrote_beside_a_run_raster_are_named_with_their_cause(made, capsys, tmp_path):
    """QGIS or ``gdalinfo -stats`` on a run's own raster write ``<raster>.aux.xml`` into the run folder: a file added
    after the run, still a problem, and the line says what wrote it and what to do."""
    run = _copy(made, tmp_path)
    raster = next(p for p in sorted((run / "gis").glob("first_seen*.tif")))
    (run / "gis" / f"{raster.name}.aux.xml").write_text("<PAMDataset/>")
    code, out, _ = _cli(capsys, "verify", run)
    assert code == 8
    line = next(line for line in out.splitlines() if line.startswith("unlisted: "))
    assert f"{raster.name}.aux.xml" in line and "GDAL writes it beside" in line and "delete it" in line
