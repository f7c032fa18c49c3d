"""Small files named on the command line: keys and a corrected outline.

Each case is one an outside audit found: ``--key /dev/zero`` or ``--edit /dev/zero`` read until
the machine ran out of memory. Each must be one line naming the file, the problem and the fix,
with a non-zero exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline
from factories import run_cli as _cli
from smallaoi import AOI_NAME, write_small_aoi



def _commands(tmp_path: Path, small: Path) -> dict[str, list[str]]:
    """Every command that reads a key or an outline, with ``small`` in its place (read before any other input)."""
    return {
        "verify": ["verify", str(tmp_path / "run"), "--key", str(small)],
        "sign": ["sign", str(tmp_path / "run"), "--key", str(small)],
        "detect": ["detect", AOI_NAME, "--aoi-dir", str(tmp_path / "aoi"), "--out", str(tmp_path / "out"),
                   "--data", str(tmp_path / "data"), "--no-figures", "--sign-key", str(small)],
        "review": ["review", AOI_NAME, "19990101-E1-N1", "--edit", str(small), "--by", "A. Analyst",
                   "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data")],
    }


def _one_error(err: str, *needles: str, progress: bool = False) -> str:
    """The one ``burnscan: error:`` line of a refused command, holding every needle; with ``progress``,
    after the progress lines ``detect`` writes to stderr as it starts, else alone on stderr."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("burnscan: error: ")]
    assert errors == lines[-1:] and (progress or len(lines) == 1) and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


@pytest.mark.parametrize("command", ["verify", "sign", "detect", "review"])
def test_a_key_or_outline_larger_than_any_is_refused_by_its_size(tmp_path, capsys, command):
    big = tmp_path / "big.pem"
    with open(big, "wb") as handle:
        handle.truncate(100_000_000)  # sparse: 100 MB by its size, nothing on disk
    code, out, err = _cli(capsys, *_commands(tmp_path, big)[command])
    assert code == 5 and out == ""
    _one_error(err, str(big), "100 MB file", "limit", "64 kB" if command != "review" else "10 MB")
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def _in_child(argv: list[str]) -> subprocess.CompletedProcess:
    """burnscan in a child capped at 1.5 GB of address space and 120 s: a command reading /dev/zero
    whole fails there with MemoryError, one waiting on a pipe is stopped, and neither takes the machine."""
    code_root = str(Path(pipeline.__file__).resolve().parent.parent)
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000)); "
              f"sys.argv = ['burnscan', *{argv!r}]; from pipeline.cli import command; command()")
    try:
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=code_root))
    except subprocess.TimeoutExpired:
        pytest.fail(f"burnscan {' '.join(argv)} still running after 120 s: it waited on its input")


@pytest.mark.slow
@pytest.mark.parametrize("command, special", [("verify", "zero"), ("sign", "zero"), ("detect", "zero"), ("review", "zero"),
                                              ("verify", "fifo"), ("review", "fifo")])
def test_a_device_or_pipe_given_as_key_or_outline_is_refused_unread(tmp_path, command, special):
    if special == "zero":
        given, kind = Path("/dev/zero"), "a character device"
    else:
        given, kind = tmp_path / "key.pipe", "a named pipe (FIFO)"
        os.mkfifo(given)
    write_small_aoi(tmp_path / "aoi")
    done = _in_child(_commands(tmp_path, given)[command])
    assert done.returncode == 5 and done.stdout == ""
    _one_error(done.stderr, str(given), f"is {kind}, not a regular file", "give ")
