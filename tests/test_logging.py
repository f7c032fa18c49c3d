"""Progress through logging: results on stdout, progress on stderr, ``-q`` hides progress, ``-v`` adds debug."""

from __future__ import annotations

import logging

import pytest

from pipeline.cli import main
from pipeline.progress import Progress, counted
from smallaoi import AOI_NAME

_PROGRESS = ("scenes loaded: 1 of ", " scenes loaded; co-registering, normalising, detecting", "writing the report and the manifest")


def test_progress_is_said_at_the_first_unit_every_tenth_and_the_last(caplog):
    logger = logging.getLogger("pipeline.test_progress")
    progress = Progress(40, "chunks done", logger=logger)
    with caplog.at_level(logging.DEBUG, logger="pipeline.test_progress"):
        for _ in range(40):
            progress.advance()
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    # 1, then each tenth of 40 (4, 8, ..., 40): eleven lines a person reads, the other 29 for -v
    assert info == ["chunks done: 1 of 40"] + [f"chunks done: {k} of 40" for k in range(4, 41, 4)]
    assert len(debug) == 29 and "chunks done: 2 of 40" in debug


def test_counted_says_each_item_done_once_the_loop_moves_on(caplog):
    logger = logging.getLogger("pipeline.test_progress")
    seen = []
    with caplog.at_level(logging.INFO, logger="pipeline.test_progress"):
        for name in counted(["a", "b", "c"], "scenes loaded", logger=logger, label=str.upper):
            seen.append((name, len(caplog.records)))  # nothing is said done before its body ran
    assert seen == [("a", 0), ("b", 1), ("c", 2)]
    assert [r.getMessage() for r in caplog.records] == ["scenes loaded: 1 of 3 (A)", "scenes loaded: 2 of 3 (B)",
                                                       "scenes loaded: 3 of 3 (C)"]


@pytest.fixture(scope="module")
def registry(small_run, tmp_path_factory):
    """The session run's AOI and scenes (read only, not generated again), and an output folder of this module's."""
    return small_run.aoi_dir, small_run.data_root, tmp_path_factory.mktemp("logging") / "out"


def _detect(capsys, registry, *flags: str) -> tuple[int, str, str]:
    aoi_dir, data, out = registry
    code = main([*flags, "detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--data", str(data), "--out", str(out), "--no-figures"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _results(stdout: str) -> list[str]:
    """The result lines of a run, without the run folder's name (each run has its own)."""
    return [line for line in stdout.splitlines() if not line.startswith(("outputs: ", "manifest sha256: "))]


@pytest.mark.slow
def test_progress_goes_to_stderr_and_results_to_stdout(capsys, registry):
    code, out, err = _detect(capsys, registry)
    assert code == 0, err
    assert all(p in err for p in _PROGRESS), err
    assert out.startswith("SIMULATED DATA") and "\nmanifest sha256: " in out and "\noutputs: " in out
    assert not any(p in out for p in _PROGRESS)  # a script reading stdout gets results only
    assert "burnscan " not in err  # the version line is for -v


@pytest.mark.slow
def test_quiet_hides_progress_and_keeps_results(capsys, registry):
    code, loud_out, _ = _detect(capsys, registry)
    code_q, out, err = _detect(capsys, registry, "-q")
    assert code == code_q == 0 and err == ""
    assert _results(out) == _results(loud_out) and "\nmanifest sha256: " in out


def test_quiet_keeps_errors(capsys, registry, tmp_path):
    aoi_dir, data, out = registry
    code = main(["-q", "detect", "atlantis", "--aoi-dir", str(aoi_dir), "--data", str(data), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1 and err.startswith("burnscan: error:") and "atlantis" in err


@pytest.mark.slow
def test_verbose_adds_debug_to_the_progress(capsys, registry):
    code, out, err = _detect(capsys, registry, "--verbose")
    lines = err.splitlines()
    assert code == 0, err
    assert lines[0].startswith("burnscan ") and ", Python 3." in lines[0]  # debug: the version, for a bug report
    assert all(p in err for p in _PROGRESS)
    assert "\nmanifest sha256: " in out


def test_verbose_and_quiet_together_are_one_error_line(capsys):
    assert main(["-v", "-q", "aois"]) == 5
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "-v (say more) and -q (say less)" in captured.err


def test_each_command_leaves_logging_as_it_found_it(capsys, registry):
    package = logging.getLogger("pipeline")
    before = (package.level, list(package.handlers))
    for flags in ((), ("-q",), ("-v",)):
        assert main([*flags, "aois"]) == 0
        assert (package.level, list(package.handlers)) == before, flags
    capsys.readouterr()
