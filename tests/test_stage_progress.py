"""``burnscan detect`` says each stage as it starts, with the seconds since the run began, on stderr only.

A village run spent most of a minute with nothing on the screen after "scenes loaded"; a user could
not tell a slow stage from a hung one. The stages are said through ``logging`` (pipeline/progress.py),
so ``-q`` silences them and stdout keeps the results alone.
"""

from __future__ import annotations

import re

import pytest

from factories import PAIR_AOI, add_geotiff_pair, run_cli

pytestmark = pytest.mark.slow  # two detect runs (one with figures), tens of seconds

_LINE = re.compile(r"^\[(\d+\.\d) s\] (.+)$")

# What each stage line starts with, in the order a run goes through them.
STAGES = ("using the scene catalogue", "loading 2 scenes", "scenes loaded: 1 of 2", "scenes loaded: 2 of 2",
          "2 scenes loaded;", "plausibility: ", "co-registration: ", "normalisation: ", "index: ", "change: ",
          "threshold and dating: ", "polygons: ", "1 burn polygon(s); checking structures", "drawing figures",
          "writing the report and the manifest", "run complete: ")


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """Two plain GeoTIFF exports registered in the AOI's catalogue, as a user would (``burnscan add``)."""
    aoi_dir, data, _ = add_geotiff_pair(tmp_path_factory.mktemp("stages"))
    return aoi_dir, data


def test_detect_says_every_stage_in_order_with_its_seconds_on_stderr(registered, capsys, tmp_path):
    aoi_dir, data = registered
    code, out, err = run_cli(capsys, "detect", PAIR_AOI, "--aoi-dir", aoi_dir, "--data", data, "--out", tmp_path / "out")
    assert code == 0, err
    timed = [m.groups() for m in map(_LINE.match, err.splitlines()) if m]
    said = [(float(seconds), text) for seconds, text in timed]
    found = []
    for stage in STAGES:
        at = [i for i, (_, text) in enumerate(said) if text.startswith(stage)]
        assert len(at) == 1, (stage, err)
        found.append(at[0])
    assert found == sorted(found), err  # in the order the run goes through them
    seconds = [s for s, _ in said]
    assert seconds == sorted(seconds) and seconds[-1] > 0  # the seconds since the run began, never going back
    assert said[-1][1] == f"run complete: {out.splitlines()[-1].removeprefix('outputs: ')}"
    # stdout holds the results alone: a script reading it never gets a progress line
    assert not any(_LINE.match(line) for line in out.splitlines()) and "co-registration" not in out
    assert "\nmanifest sha256: " in out and "\noutputs: " in out


def test_quiet_says_no_stage(registered, capsys, tmp_path):
    aoi_dir, data = registered
    code, out, err = run_cli(capsys, "-q", "detect", PAIR_AOI, "--aoi-dir", aoi_dir, "--data", data,
                             "--out", tmp_path / "out", "--no-figures")
    assert code == 0 and err == ""
    assert "\nmanifest sha256: " in out and not any(_LINE.match(line) for line in out.splitlines())


def test_stages_outside_a_timed_run_are_debug_lines(caplog):
    """A chunk analysed on a worker thread (a search) must not repeat every stage at INFO."""
    import logging

    from pipeline.progress import stage, timed

    logger = logging.getLogger("pipeline.test_stages")
    with caplog.at_level(logging.DEBUG, logger="pipeline.test_stages"):
        stage("co-registration: outside", logger=logger)
        with timed():
            stage("co-registration: inside", logger=logger)
    assert [(r.levelno, r.getMessage()) for r in caplog.records][0] == (logging.DEBUG, "co-registration: outside")
    level, text = caplog.records[1].levelno, caplog.records[1].getMessage()
    assert level == logging.INFO and _LINE.match(text) and text.endswith("] co-registration: inside")
