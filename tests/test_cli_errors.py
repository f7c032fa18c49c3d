"""The command line's last line of defence: an unexpected error is one line and a log file, never a traceback."""

from __future__ import annotations

import warnings

import pytest

from pipeline import cli
from pipeline.cli import main


def _boom(*_args, **_kwargs):
    raise RuntimeError("list index out of range\n  in a place nobody expected")


def _no_memory(*_args, **_kwargs):
    raise MemoryError()


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    folder = tmp_path / "logs"
    monkeypatch.setenv("BURNSCAN_LOG_DIR", str(folder))
    return folder


def test_unexpected_error_is_one_line_pointing_to_a_private_log(monkeypatch, capsys, log_dir):
    monkeypatch.setattr(cli, "list_aois", _boom)
    assert main(["aois"]) == 70
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert "internal error: RuntimeError: list index out of range in a place nobody expected" in err
    logs = list(log_dir.glob("error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    text = logs[0].read_text(encoding="utf-8")
    assert text.startswith("burnscan aois\n") and "Traceback" in text and "_boom" in text
    assert logs[0].stat().st_mode & 0o077 == 0  # paths in a traceback can say what was looked at


def test_two_errors_never_share_a_log(monkeypatch, capsys, log_dir):
    monkeypatch.setattr(cli, "list_aois", _boom)
    assert main(["aois"]) == 70 and main(["aois"]) == 70
    assert len(list(log_dir.glob("error-*.log"))) == 2


def test_out_of_memory_says_what_to_do(monkeypatch, capsys, log_dir):
    monkeypatch.setattr(cli, "list_aois", _no_memory)
    assert main(["aois"]) == 71
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ran out of memory" in err and "resolution_m" in err
    assert "Traceback" not in err


def test_unwritable_log_folder_still_gives_one_line(monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BURNSCAN_LOG_DIR", str(blocker / "logs"))
    monkeypatch.setattr(cli, "list_aois", _boom)
    assert main(["aois"]) == 70
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "internal error" in err


def test_a_run_stopped_by_a_defect_logs_the_chained_traceback(monkeypatch, capsys, log_dir):
    from pipeline.errors import RunError

    def stopped(*_args, **_kwargs):
        try:
            _boom()
        except RuntimeError as exc:
            raise RunError("out/x/run.partial: the run stopped on RuntimeError (incomplete run left there)") from exc

    monkeypatch.setattr(cli, "list_aois", stopped)
    assert main(["aois"]) == RunError.exit_code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "run.partial" in err and "traceback in" in err
    (log,) = log_dir.glob("error-*.log")
    assert "_boom" in log.read_text(encoding="utf-8")  # the original exception, not only the one-line error


def test_the_command_leaves_with_mains_exit_code_and_every_line_it_printed(tmp_path):
    """``burnscan`` ends its process at once after :func:`main` (no teardown): nothing printed may be lost on the way."""
    import subprocess
    import sys

    def command(*args: str) -> subprocess.CompletedProcess:
        script = f"import sys; sys.argv = ['burnscan', *{list(args)!r}]; from pipeline.cli import command; command()"
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)

    listed = command("aois")
    assert listed.returncode == 0 and "ogota" in listed.stdout and listed.stdout.endswith("\n")
    refused = command("detect", "../ogota")
    assert refused.returncode != 0 and refused.stderr.startswith("burnscan: error:") and refused.stdout == ""


def test_a_library_warning_that_reaches_the_user_is_one_line(monkeypatch, capsys):
    """Python's own display adds the source line; a notebook keeps it (the display is put back on return)."""
    def warns(*_args, **_kwargs):
        warnings.warn("More than one layer found\n  Specify layer parameter", UserWarning)
        return []

    monkeypatch.setattr(cli, "list_aois", warns)
    shown_by = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["aois"]) == 0
    assert capsys.readouterr().err == "burnscan: warning: More than one layer found Specify layer parameter\n"
    assert warnings.showwarning is shown_by
