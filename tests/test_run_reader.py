"""A finished run read back (readers/runs.py): ``latest`` as a link or a text file, and only the files the manifest lists."""

from __future__ import annotations

import os

import pytest

from factories import copy_small_run
from pipeline.errors import IntegrityError, OutputError
from pipeline.readers.runs import find_run, open_run, run_image
from smallaoi import AOI_NAME

RUN_ID = "20240101T000000Z-abcdef"


def _aoi_folder(tmp_path):
    folder = tmp_path / "out" / AOI_NAME
    (folder / RUN_ID).mkdir(parents=True)
    return folder


def test_latest_as_a_text_file_names_the_run(tmp_path):
    folder = _aoi_folder(tmp_path)
    (folder / "latest").write_text(RUN_ID + "\n")
    assert find_run(tmp_path / "out", AOI_NAME) == folder / RUN_ID


@pytest.mark.parametrize("absolute", [False, True])
def test_latest_as_a_link_names_the_run(tmp_path, absolute):
    folder = _aoi_folder(tmp_path)
    os.symlink(folder / RUN_ID if absolute else RUN_ID, folder / "latest")
    assert find_run(tmp_path / "out", AOI_NAME) == folder / RUN_ID


def test_a_run_id_or_a_folder_is_taken_as_given(tmp_path):
    folder = _aoi_folder(tmp_path)
    assert find_run(tmp_path / "out", AOI_NAME, RUN_ID) == folder / RUN_ID
    assert find_run(tmp_path / "out", AOI_NAME, folder / RUN_ID) == folder / RUN_ID


@pytest.mark.parametrize("target", ["../../elsewhere", "/etc"])
def test_latest_pointing_outside_the_aoi_runs_is_refused(tmp_path, target):
    folder = _aoi_folder(tmp_path)
    os.symlink(target, folder / "latest")
    with pytest.raises(OutputError, match="latest"):
        find_run(tmp_path / "out", AOI_NAME)


def test_no_latest_is_one_line_saying_to_run_detect(tmp_path):
    _aoi_folder(tmp_path)
    with pytest.raises(OutputError, match=f"no finished run of {AOI_NAME}.*burnscan detect"):
        find_run(tmp_path / "out", AOI_NAME)


def test_open_run_reads_each_date_with_its_outlined_figure(small_run, tmp_path):
    run = open_run(find_run(small_run.out_root, AOI_NAME), AOI_NAME)
    assert run.run_dir == small_run.run_dir and run.simulated
    readings = small_run.outcome.report["readings"]
    assert [d.scene_id for d in run.dates] == [r["scene_id"] for r in readings]
    assert run.dates[0].figure is None  # the first scene has nothing before it
    assert all(d.figure and d.figure.endswith("_overlay_SIMULATED.png") for d in run.dates[1:])
    assert run_image(run, run.dates[-1].figure).shape[2] in (3, 4)
    assert len(run.polygons) == small_run.outcome.report["totals"]["n_polygons"]


def test_a_figure_changed_after_the_run_is_never_shown(small_run, tmp_path):
    copy = copy_small_run(small_run, tmp_path)
    run = open_run(copy.run_dir, AOI_NAME)
    figure = run.dates[-1].figure
    (copy.run_dir / figure).write_bytes((copy.run_dir / run.dates[1].figure).read_bytes())  # another date's picture
    with pytest.raises(IntegrityError, match="SHA-256"):
        run_image(run, figure)
    with pytest.raises(IntegrityError, match="does not verify"):
        open_run(copy.run_dir, AOI_NAME)
    with pytest.raises(IntegrityError, match="not listed"):
        run_image(run, "figures/extra.png")
