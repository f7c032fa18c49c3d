"""``out/<aoi>/latest`` is a relative link to the newest complete run, replaced atomically, read in both forms.

It was a text file holding a run id: a user could not ``cd out/ogota/latest`` or open its report
from a file browser. Where a file system cannot hold links it is still that text file, and every
reader (review, verify, rerun, sign) takes either form.
"""

from __future__ import annotations

import errno
import json
import os
import threading

import pytest

from pipeline.outputs.write import finish_run_dir, new_run_dir, write_text
from factories import PAIR_AOI, add_geotiff_pair, run_cli


def _finish(out, aoi: str = "ogota"):
    run_id, partial = new_run_dir(out, aoi)
    write_text(partial / "report.md", run_id, root=partial)
    return finish_run_dir(partial)


def test_latest_is_a_relative_link_to_the_newest_complete_run(tmp_path):
    first = _finish(tmp_path)
    latest = tmp_path / "ogota" / "latest"
    assert latest.is_symlink() and os.readlink(latest) == first.name  # relative: the tree can be moved whole
    second = _finish(tmp_path)
    assert os.readlink(latest) == second.name and (latest / "report.md").read_text() == second.name
    assert sorted(p.name for p in (tmp_path / "ogota").iterdir()) == sorted([first.name, second.name, "latest"])  # no temp link left


def test_where_links_are_impossible_latest_is_the_text_file_and_still_read(tmp_path, monkeypatch):
    from pipeline.outputs.write import latest_run_dir, named_run_dir

    def no_links(*_args, **_kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", no_links)
    run = _finish(tmp_path)
    latest = tmp_path / "ogota" / "latest"
    assert not latest.is_symlink() and latest.read_text() == f"{run.name}\n"
    assert latest_run_dir(tmp_path / "ogota") == run and named_run_dir(latest) == run


def test_two_runs_finishing_at_once_leave_latest_on_a_complete_run(tmp_path):
    """Eight runs finish together while a reader follows `latest`: it always leads to a complete run folder."""
    from pipeline.outputs.write import latest_run_dir

    _finish(tmp_path)
    parent, stop, seen, problems = tmp_path / "ogota", threading.Event(), [], []

    def follow():
        while not stop.is_set():
            try:
                run = latest_run_dir(parent)
                seen.append(run.name)
                if not (run / "report.md").is_file():
                    problems.append(f"{run} is not complete")
            except Exception as exc:  # a missing or half-made `latest` would show here
                problems.append(repr(exc))

    reader = threading.Thread(target=follow)
    reader.start()
    finishers = [threading.Thread(target=_finish, args=(tmp_path,)) for _ in range(8)]
    for t in finishers:
        t.start()
    for t in finishers:
        t.join()
    stop.set()
    reader.join()
    runs = {p.name for p in parent.iterdir() if p.is_dir() and not p.is_symlink()}
    assert problems == [] and seen and set(seen) <= runs
    assert len(runs) == 9 and os.readlink(parent / "latest") in runs
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == []  # no temporary link left behind


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run of two registered GeoTIFFs (one burn polygon), and its folders."""
    root = tmp_path_factory.mktemp("latest")
    aoi_dir, data, _ = add_geotiff_pair(root)
    from pipeline.cli import main

    assert main(["-q", "detect", PAIR_AOI, "--aoi-dir", str(aoi_dir), "--data", str(data), "--out", str(root / "out"),
                 "--no-figures"]) == 0
    return aoi_dir, data, root / "out"


@pytest.mark.slow
@pytest.mark.parametrize("form", ["link", "text file"])
def test_review_and_verify_take_latest_in_either_form(run, capsys, tmp_path, form):
    _, data, out = run
    latest = out / PAIR_AOI / "latest"
    if form == "text file":  # as on a file system without links: the run id as text
        out = tmp_path / "out"
        import shutil

        shutil.copytree(run[2], out, symlinks=True)
        latest = out / PAIR_AOI / "latest"
        name = os.readlink(latest)
        latest.unlink()
        latest.write_text(name + "\n")
    run_dir = out / PAIR_AOI / (os.readlink(latest) if latest.is_symlink() else latest.read_text().strip())
    polygon = json.loads((run_dir / "burns.geojson").read_text())["features"][0]["properties"]["polygon_id"]
    code, said, err = run_cli(capsys, "review", PAIR_AOI, polygon, "--confirm", "--by", "A. Analyst", "--out", out,
                              "--data", tmp_path / "data")
    assert code == 0, err
    assert said.startswith(f"confirmed: {polygon} by A. Analyst")
    code, said, err = run_cli(capsys, "verify", latest)
    assert code == 0, err
    assert f"{run_dir}: verified" in said  # the run it names, not the name `latest`


def test_a_folder_in_the_place_of_latest_never_fails_a_complete_run(tmp_path, caplog):
    """An output tree copied by a tool that follows links holds a folder named `latest`: the run still completes."""
    import logging

    (tmp_path / "ogota" / "latest").mkdir(parents=True)
    (tmp_path / "ogota" / "latest" / "report.md").write_text("a copy of an older run")
    with caplog.at_level(logging.WARNING, logger="pipeline.outputs.write"):
        run = _finish(tmp_path)
    assert (run / "report.md").read_text() == run.name and not run.name.endswith(".partial")
    assert any("could not point at the new run" in r.getMessage() and str(run) in r.getMessage() for r in caplog.records)
    assert (tmp_path / "ogota" / "latest" / "report.md").read_text() == "a copy of an older run"  # nothing removed
    assert [p.name for p in (tmp_path / "ogota").iterdir() if p.name.startswith(".")] == []
