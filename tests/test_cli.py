"""The command line, in process: exit codes, one-line errors, nothing written on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", ["../ogota", "/etc/passwd", "Ogota", "og ota", "ogota;rm"])
def test_bad_aoi_name_is_one_line_error_and_writes_nothing(capsys, tmp_path, name):
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, "detect", name, "--out", str(out), "--data", str(tmp_path / "data"))
    assert code == 3
    assert stderr.count("\n") == 1 and stderr.startswith("burnscan: error:") and "not allowed" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists() and not (tmp_path / "data").exists()


def test_unknown_aoi_names_known_ones(capsys, tmp_path):
    code, _, stderr = _run(capsys, "detect", "atlantis", "--out", str(tmp_path / "out"))
    assert code == 3 and "known AOIs:" in stderr and "ogota" in stderr
    assert not (tmp_path / "out").exists()


def test_bad_parameter_is_one_line_error(capsys, tmp_path):
    code, _, stderr = _run(capsys, "detect", "ogota", "--set", "noise_k=-2", "--out", str(tmp_path / "out"))
    assert code == 5 and stderr.count("\n") == 1 and "noise_k" in stderr


def test_missing_scene_folder_is_one_line_error(capsys, tmp_path):
    code, _, stderr = _run(capsys, "detect", "ogota", "--scenes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    errors = [line for line in stderr.splitlines() if line.startswith("burnscan: error:")]
    assert code == 4 and len(errors) == 1 and "nowhere" in errors[0] and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_malformed_set_is_a_usage_error(capsys):
    code, _, stderr = _run(capsys, "detect", "ogota", "--set", "noise_k")
    assert code == 2 and "name=value" in stderr


def test_aois_lists_the_registry(capsys):
    code, stdout, _ = _run(capsys, "aois")
    assert code == 0
    assert "ogota\tOgota" in stdout and "(location uncertain)" in stdout
    assert len(stdout.strip().splitlines()) >= 7
