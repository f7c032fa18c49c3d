"""Evidence integrity: a run re-runs to the same findings, tampered inputs are refused,
concurrent runs never lose each other, and a run that fails leaves nothing under a final name.

That inputs are never modified by a run (every file of the scene folder hashed before and
after) is tested in ``test_end_to_end.py``; here the re-run checks the same through the
original manifest's hashes.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.readers.rasters import sha256_file
from pipeline.provenance.compare import compare_runs
from pipeline.provenance.verify import verify_run
from pipeline.outputs.figure_cache import FigureCache
from pipeline.outputs.write import STAGING_SUFFIX, latest_run_dir
from factories import copy_small_run, make_small_run, run_cli as _cli, with_kept_alignment
from smallaoi import AOI_NAME

pytestmark = pytest.mark.slow  # every test here re-runs, runs or tampers with a whole small run

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def base(small_run):
    """The session's complete run with figures (so re-runs compare PNGs too), its AOI folder and data root.

    Shared and read-only: a test that re-runs beside it works on a copy of its output folder.
    """
    return small_run.root, small_run.aoi_dir, small_run.outcome


@pytest.fixture(scope="module")
def own(tmp_path_factory, small_run):
    """A run of this module's own (no figures) on a copy of the session's scenes, for the tests that tamper
    with an input and restore it."""
    run = make_small_run(tmp_path_factory.mktemp("integrity"), figures=False, scenes_of=small_run)
    return run.root, run.aoi_dir, run.outcome


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("burnscan: error:")]


def _run_folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.is_symlink())  # `latest` is a link to one of them


# --- re-running from the manifest ------------------------------------------------------


def test_rerun_gives_identical_outputs_in_a_new_folder(small_run, capsys, tmp_path, monkeypatch):
    first = copy_small_run(small_run, tmp_path).outcome  # the re-run lands beside it and moves `latest`
    before = _run_folders(first.run_dir.parent)
    looked_up: list[str] = []
    monkeypatch.setattr(FigureCache, "_get", lambda self, key: looked_up.append(key))  # every lookup of kept work
    code, out, err = _cli(capsys, "rerun", str(first.run_dir))
    assert code == 0, err
    assert looked_up == []  # a check aligns the scenes and draws every figure again: nothing kept beside the runs is taken
    new = [p for p in _run_folders(first.run_dir.parent) if p not in before]
    assert len(new) == 1 and new[0] != first.run_dir and not new[0].name.endswith(".partial")
    assert verify_run(new[0]) == []
    # the original is untouched, inputs included: every hash of its manifest still holds
    assert verify_run(first.run_dir) == []
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    verdicts = {line.split(": ", 1)[1].split(" (")[0]: line.split(":", 1)[0]
                for line in out.splitlines() if line.startswith(("identical: ", "differs: "))}
    assert verdicts == {path: "identical" for path in [o["path"] for o in manifest["outputs"]] + ["manifest.json"]}
    # PNGs are deterministic: matplotlib writes no time into them, so figures are byte for byte the same
    figures = [line for line in out.splitlines() if line.startswith("identical: figures/")]
    assert len(figures) == sum(o["path"].startswith("figures/") for o in manifest["outputs"]) > 0
    assert all(line.endswith("(same bytes)") for line in figures)
    assert "identical: burns_SIMULATED.geojson (same bytes)" in out
    assert latest_run_dir(first.run_dir.parent) == new[0]
    # A native-grid run re-runs on the grid it chose, for the same reason (the finest grid the index's bands allow)
    assert manifest["parameters"]["resolution_m"] == "native" and manifest["grid"]["rule"] == "native"
    assert manifest["grid"]["resolution_m"] == 3.0 and "(nir, 3 m)" in manifest["grid"]["reason"]
    assert json.loads((new[0] / "manifest.json").read_text())["grid"] == manifest["grid"]


@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_rerun_refuses_a_tampered_or_missing_input_naming_the_file(own, capsys, damage):
    _, _, first = own
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    victim = Path(manifest["inputs"][2]["files"][0]["path"])  # a reflectance GeoTIFF
    original = victim.read_bytes()
    before = _run_folders(first.run_dir.parent)
    try:
        if damage == "changed":
            # one byte flipped: same size and name, different SHA-256
            victim.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        else:
            victim.unlink()
        code, out, err = _cli(capsys, "rerun", str(first.run_dir))
    finally:
        victim.write_bytes(original)
    assert code == 4 and out == ""
    assert len(_errors(err)) == 1 and err.count("\n") == 1 and str(victim) in err
    assert ("is missing" if damage == "missing" else "SHA-256 changed") in err
    assert _run_folders(first.run_dir.parent) == before  # refused before anything ran


def test_rerun_finds_moved_inputs_by_hash_and_compares_their_paths_as_recorded(small_run, capsys, tmp_path):
    """A run handed over with its inputs (another machine, an evidence disk) re-runs from where they are now.

    A folder run (``--scenes``) whose AOI file, scenes, outline and layers were all moved: refused
    without ``--inputs``, pointing at it; with it, every output is identical once the moved paths are
    read as recorded, and nothing else is set aside.
    """
    from factories import write_small_aoi

    root = tmp_path / "desk"
    shutil.copytree(small_run.data_root, root / "data")
    write_small_aoi(root / "aoi")
    scenes = next((root / "data").rglob("*_AnalyticMS_SR_SIMULATED.tif")).parent
    code, out, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", root / "aoi", "--data", root / "data", "--out", root / "out",
                          "--scenes", scenes, "--no-figures")
    assert code == 0, err
    run_dir = latest_run_dir(root / "out" / AOI_NAME)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["scenes_from"] == "folder" and manifest["scene_options"] == {}
    layers = [manifest["settlement_file"]["path"]] + [e["path"] for e in manifest["evidence_files"]]
    assert layers and all(Path(p).parent == scenes for p in layers)

    moved = tmp_path / "disk"
    moved.mkdir()
    for name in ("data", "aoi"):
        shutil.move(root / name, moved / name)
    before = _run_folders(run_dir.parent)
    code, out, err = _cli(capsys, "rerun", run_dir)
    assert code == 3 and len(_errors(err)) == 1 and "AOI file" in err and "is missing" in err and "--inputs" in err
    assert _run_folders(run_dir.parent) == before

    # A scene altered on the disk is not the run's scene: refused naming the recorded file and the folder searched
    victim = moved / Path(manifest["inputs"][1]["files"][0]["path"]).relative_to(root)
    original = victim.read_bytes()
    victim.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        code, out, err = _cli(capsys, "rerun", run_dir, "--inputs", moved)
    finally:
        victim.write_bytes(original)
    assert code == 4 and len(_errors(err)) == 1 and manifest["inputs"][1]["files"][0]["path"] in err
    assert f"no file under {moved} has its SHA-256" in err
    assert _run_folders(run_dir.parent) == before

    code, out, err = _cli(capsys, "rerun", run_dir, "--inputs", moved)
    assert code == 0, err
    verdicts = {line.split(": ", 1)[1].split(" (")[0]: line.split(":", 1)[0]
                for line in out.splitlines() if line.startswith(("identical: ", "differs: "))}
    assert verdicts == {path: "identical" for path in [o["path"] for o in manifest["outputs"]] + ["manifest.json"]}
    n_inputs = 1 + sum(len(s["files"]) for s in manifest["inputs"]) + len(layers)
    aoi_file = f"aoi/{AOI_NAME}.geojson"
    assert f"note: {n_inputs} input path(s) of " in out and f"{moved / aoi_file} for {root / aoi_file}" in out
    new = [p for p in _run_folders(run_dir.parent) if p not in before]
    assert len(new) == 1 and verify_run(new[0]) == []
    rerun_manifest = json.loads((new[0] / "manifest.json").read_text())
    assert rerun_manifest["aoi_file"]["path"].startswith(str(moved)) and rerun_manifest["scene_options"] == {}
    assert str(moved) in (new[0] / "report.md").read_text()  # the re-run states where it read its inputs

    # Only the moved inputs' own paths are read as recorded: an edit of the same report line is still a difference
    report = new[0] / "report.md"
    text = report.read_text()
    report.write_text(text.replace(str(scenes.relative_to(root)), str(scenes.relative_to(root)) + "-edited", 1))
    recorded = [manifest["aoi_file"]["path"], *layers, *(f["path"] for scene in manifest["inputs"] for f in scene["files"])]
    compared = compare_runs(run_dir, new[0], moved={str(moved / Path(p).relative_to(root)): p for p in recorded})
    assert [o.path for o in compared.differing] == ["report.md"]


def test_rerun_reads_only_the_layers_its_run_read(own, capsys):
    """A fire archive or footprint layer added after the run is not read by its re-run: it re-runs the run, not
    today's evidence (a later archive made 8 outputs differ and a "fire" corroborate burns the run never claimed)."""
    root, _, first = own
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    added = root / "data" / AOI_NAME / "fires" / "later.csv"
    added.parent.mkdir(parents=True, exist_ok=True)
    header = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight"
    added.write_text(f"{header}\n13.82,-3.78,340,0.4,0.4,2024-01-28,100,N,VIIRS,h,2.0NRT,290,9.9,N\n", encoding="utf-8")
    try:
        code, out, err = _cli(capsys, "rerun", str(first.run_dir))
    finally:
        added.unlink()
    assert code == 0 and "every compared output is identical" in out, out + err
    assert str(added) not in json.dumps(manifest)


def test_ctrl_c_during_a_run_names_the_unfinished_folder(small_run, capsys, tmp_path, monkeypatch):
    """Click turns a Ctrl-C into its Abort, which printed "burnscan: aborted" alone: the .partial folder the run left
    behind (docs/EVIDENCE.md: a failure names it) went unsaid."""
    import pipeline.run

    root = tmp_path / "desk"
    shutil.copytree(small_run.data_root, root / "data")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.run, "seal_manifest", interrupted)
    code, out, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", small_run.aoi_dir, "--data", root / "data",
                          "--out", with_kept_alignment(small_run, root / "out"), "--no-figures")
    left = [p for p in (root / "out" / AOI_NAME).iterdir() if p.name.endswith(".partial")]
    assert code == 130 and len(left) == 1
    last = err.strip().splitlines()[-1]
    assert last == f"burnscan: interrupted; outputs already complete are kept, the unfinished run stays in {left[0]}"


def test_settlement_outline_is_hashed_and_checked(own, capsys):
    _, _, first = own
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    outline = Path(manifest["settlement_file"]["path"])
    assert outline.name.startswith("settlement") and manifest["settlement_file"]["sha256"] == sha256_file(outline)
    original = outline.read_bytes()
    before = _run_folders(first.run_dir.parent)
    try:
        outline.write_bytes(original.replace(b"}", b" }", 1))  # the built-up area edited after the run
        assert verify_run(first.run_dir) == [f"changed: {outline}"]
        code, _, err = _cli(capsys, "rerun", str(first.run_dir))
    finally:
        outline.write_bytes(original)
    assert code == 4 and str(outline) in err and "SHA-256 changed" in err
    assert _run_folders(first.run_dir.parent) == before


def test_fire_archive_and_footprints_are_hashed_and_checked(own, capsys):
    _, _, first = own
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    layers = {e["role"]: Path(e["path"]) for e in manifest["evidence_files"]}
    fires = layers["active_fires"]
    original = fires.read_bytes()
    before = _run_folders(first.run_dir.parent)
    try:
        fires.write_bytes(original + b"13.8,-3.7,330,0.4,0.4,2024-01-28,100,N,VIIRS,h,2,290,9.9,N,0\n")  # a detection added later
        assert verify_run(first.run_dir) == [f"changed: {fires}"]
        code, _, err = _cli(capsys, "rerun", str(first.run_dir))
    finally:
        fires.write_bytes(original)
    assert code == 4 and str(fires) in err and "evidence layer" in err and err.count("\n") == 1
    assert _run_folders(first.run_dir.parent) == before
    assert verify_run(first.run_dir) == []


def test_rerun_says_which_output_differs_and_exits_non_zero(own, capsys, tmp_path):
    _, _, first = own  # without figures: a re-run of the session's run (figures byte for byte) is checked above
    # an evidence copy whose report someone edited after the run
    copy = tmp_path / "evidence" / AOI_NAME / first.run_dir.name
    shutil.copytree(first.run_dir, copy)
    report = json.loads((copy / "report.json").read_text())
    report["totals"]["area_ha"] += 1.0
    (copy / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    code, out, err = _cli(capsys, "rerun", str(copy))
    assert code != 0 and len(_errors(err)) == 1 and "1 of" in _errors(err)[0]
    assert "differs: report.json (differs at totals.area_ha)" in out
    assert "identical: burns_SIMULATED.gpkg" in out and "identical: report.md" in out
    assert f"note: {copy / 'report.json'} no longer matches the SHA-256 in its manifest" in out
    reruns = [p for p in _run_folders(copy.parent) if p != copy]
    assert len(reruns) == 1 and verify_run(reruns[0]) == []


def test_compare_runs_sets_aside_only_run_specific_fields(base, tmp_path):
    _, _, first = base
    copy = tmp_path / first.run_dir.name
    shutil.copytree(first.run_dir, copy)
    report = json.loads((copy / "report.json").read_text())
    report["provenance"].update(run_id="another", started_utc="2030-01-01T00:00:00Z", commit="0" * 40, dirty=True)
    (copy / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    assert compare_runs(first.run_dir, copy).identical
    report["provenance"]["versions"]["numpy"] = "0.0"
    (copy / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    geojson = copy / "burns_SIMULATED.geojson"
    geojson.write_text(geojson.read_text().replace('"area_ha": ', '"area_ha": 1', 1))
    differing = {o.path: o.how for o in compare_runs(first.run_dir, copy).differing}
    assert differing == {"report.json": "differs at provenance.versions.numpy", "burns_SIMULATED.geojson": "bytes differ"}


# --- concurrent runs -------------------------------------------------------------------


def test_two_processes_started_together_get_two_complete_folders(base, tmp_path):
    root, aoi_dir, _ = base
    out, data = tmp_path / "out", root / "data"
    cmd = [sys.executable, "-m", "pipeline.cli", "detect", AOI_NAME, "--aoi-dir", str(aoi_dir),
           "--out", str(out), "--data", str(data), "--no-figures"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    said = {line.removeprefix("outputs: ") for stdout, _ in results for line in stdout.splitlines() if line.startswith("outputs: ")}
    folders = _run_folders(out / AOI_NAME)
    assert len(said) == 2 and {Path(p).name for p in said} == {f.name for f in folders}
    for folder in folders:
        assert not folder.name.endswith(".partial")
        assert {"manifest.json", "report.json", "report.md", "burns_SIMULATED.geojson", "burns_SIMULATED.gpkg"} <= {p.name for p in folder.iterdir()}
        assert verify_run(folder) == []
    assert (out / AOI_NAME / "latest").is_symlink() and latest_run_dir(out / AOI_NAME) in folders  # a complete one
    assert not [p for p in (out / AOI_NAME).iterdir() if p.name.startswith(".")]  # no staging left behind
    # and the two runs found the same thing
    assert compare_runs(*folders).identical


# --- a run that fails half-way ---------------------------------------------------------


def _assert_failed_run_left_only_a_partial(out: Path, err: str) -> Path:
    parent = out / AOI_NAME
    entries = list(parent.iterdir())
    partials = [p for p in entries if p.name.endswith(".partial")]
    assert len(partials) == 1 and entries == partials, entries  # no final folder, no `latest`
    errors = _errors(err)
    assert len(errors) == 1 and str(partials[0]) in errors[0] and "Traceback" not in err
    return partials[0]


def test_disk_full_half_way_leaves_only_the_named_partial_folder(small_run, capsys, tmp_path, monkeypatch):
    root, aoi_dir = small_run.root, small_run.aoi_dir
    import pipeline.outputs.write

    # The writes counted are this process's, in their order: the GIS rasters, written by a child while the
    # findings are, are held to the same rule in the test below.
    monkeypatch.setenv("BURNSCAN_NO_FORK", "1")
    real_replace, calls = pipeline.outputs.write.os.replace, []

    def replace_until_disk_full(src, dst):
        if ".partial" in str(dst):  # the run's own files (shifts kept beside the runs come first)
            calls.append(dst)
        if len(calls) >= 3:  # the two polygon files are in place; report.json hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    out = with_kept_alignment(small_run, tmp_path / "out")  # a run of what it writes: the scenes as aligned before
    monkeypatch.setattr(pipeline.outputs.write.os, "replace", replace_until_disk_full)
    code, stdout, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--data", str(root / "data"),
                             "--out", str(out), "--no-figures")
    monkeypatch.undo()
    assert code == 6 and "No space left on device" in err and "outputs:" not in stdout
    partial = _assert_failed_run_left_only_a_partial(out, err)
    # what was finished is kept for inspection, what was not is under no name, temporary files are gone
    assert sorted(p.name for p in partial.iterdir()) == ["burns_SIMULATED.geojson", "burns_SIMULATED.gpkg"]


@pytest.mark.forks
@pytest.mark.parametrize("folder, options", [("gis", ["--no-figures"]), ("figures", [])],
                         ids=["gis_rasters_written_in_the_background", "figures_drawn_on_every_core"])
def test_disk_full_in_a_forked_writer_is_one_line_naming_the_partial(folder, options, small_run, capsys, tmp_path,
                                                                     monkeypatch):
    """The GIS rasters are written by a child while this process writes the findings, the figures by forked workers:
    a full disk there fails the run as it would here, once their own writes have ended (no staging file, nothing
    under a final name), what was finished before kept for inspection and no child left behind."""
    root, aoi_dir = small_run.root, small_run.aoi_dir
    import pipeline.outputs.write

    real_replace = pipeline.outputs.write.os.replace

    def full_disk(src, dst):
        if ".partial" in str(dst) and f"/{folder}/" in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    out = with_kept_alignment(small_run, tmp_path / "out")  # the figures are still drawn, by the forked workers
    monkeypatch.setattr(pipeline.outputs.write.os, "replace", full_disk)  # inherited by the children
    code, stdout, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--data", str(root / "data"),
                             "--out", str(out), *options)
    monkeypatch.undo()
    assert code == 6 and "No space left on device" in err and "outputs:" not in stdout
    partial = _assert_failed_run_left_only_a_partial(out, err)
    assert not [p for p in (partial / folder).iterdir() if p.suffix in (".tif", ".png")]  # nothing under its final name
    assert not [p for p in partial.rglob(".*") if p.name.endswith(STAGING_SUFFIX)]  # every child's staging removed
    assert (partial / "burns_SIMULATED.gpkg").is_file()
    assert multiprocessing.active_children() == []


@pytest.mark.forks
def test_a_run_failing_while_its_scenes_are_drawn_leaves_no_child_behind(base, capsys, tmp_path, monkeypatch):
    """The review page's scenes start drawing in a child as soon as the scenes are normalised; a run that fails
    after that (here: a defect in the polygon stage) stops the child and writes nothing."""
    root, aoi_dir, _ = base
    import pipeline.run

    started = []
    real_fork_soon = pipeline.run.fork_soon

    def fork_soon_seen(task, n):
        pending = real_fork_soon(task, n)
        started.append(multiprocessing.active_children())
        return pending

    def slow_scenes(stack, grid):  # still drawing when the run fails
        return [lambda: time.sleep(120) or b""] * 2

    def polygon_stage_fails(*args, **kwargs):
        raise RuntimeError("a defect in the polygon stage")

    monkeypatch.setattr(pipeline.run, "fork_soon", fork_soon_seen)
    monkeypatch.setattr(pipeline.run, "scene_images", slow_scenes)
    monkeypatch.setattr(pipeline.run, "burn_polygons", polygon_stage_fails)
    clock = time.monotonic()
    out = tmp_path / "out"
    code, stdout, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--data", str(root / "data"),
                             "--out", str(out))
    assert code != 0 and "a defect in the polygon stage" in err and "outputs:" not in stdout
    assert len(started) == 1 and len(started[0]) == 1  # the scenes were being drawn in a child
    assert multiprocessing.active_children() == [] and time.monotonic() - clock < 60  # stopped, not waited for
    assert not list(out.rglob("*.png"))


def test_a_writer_raising_oserror_half_way_is_one_line_naming_the_partial(small_run, capsys, tmp_path, monkeypatch):
    root, aoi_dir = small_run.root, small_run.aoi_dir
    import pipeline.outputs.run_folder

    def write_text_fails(path, text, **kwargs):
        raise OSError(errno.EIO, "Input/output error", str(path))

    # report.md comes after the polygons and report.json were written
    monkeypatch.setattr(pipeline.outputs.run_folder, "write_text", write_text_fails)
    out = with_kept_alignment(small_run, tmp_path / "out")
    code, _, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--data", str(root / "data"),
                        "--out", str(out), "--no-figures")
    assert code != 0
    _assert_failed_run_left_only_a_partial(out, err)
