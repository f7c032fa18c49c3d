"""Small files named on the command line (keys, a corrected outline), and scene names that are not UTF-8.

Each case is one an outside audit found: ``--key /dev/zero`` or ``--edit /dev/zero`` read until
the machine ran out of memory, and a scene file named with bytes that are not UTF-8 ended in a
``UnicodeEncodeError`` inside a reader. Each must be one line naming the file, the problem and
the fix, with a non-zero exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline
from factories import run_cli as _cli, write_scene as _write_scene
from smallaoi import AOI_NAME, write_small_aoi

BAD_NAME = os.fsdecode(b"x\xff\xfe.tif")  # bytes that are not UTF-8, as Python keeps them (lone surrogates)
SHOWN = r"x\xff\xfe.tif"


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


def _scenes_with_a_bad_name(folder: Path) -> Path:
    """Two plain GeoTIFFs with their time in a tag, one of them named with bytes that are not UTF-8."""
    import rasterio

    for name, day in ((BAD_NAME, "27"), ("b.tif", "28")):
        path = _write_scene(folder, f"s{day}", acquired=None)
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(ACQUIRED=f"2024-01-{day}T10:38:00Z")
        path.rename(folder / name)
    return folder


@pytest.mark.parametrize("command", ["detect", "add", "add-file"])
def test_a_scene_name_that_is_not_utf8_is_refused_naming_it_escaped(tmp_path, capsys, command):
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    scenes = _scenes_with_a_bad_name(tmp_path / "scenes")
    common = ["--aoi-dir", aoi_dir, "--data", tmp_path / "data", "--bands", "blue,green,red,nir"]
    argv = {"detect": ["detect", AOI_NAME, "--scenes", scenes, "--out", tmp_path / "out", "--no-figures", *common],
            "add": ["add", AOI_NAME, scenes, *common],
            "add-file": ["add", AOI_NAME, scenes / BAD_NAME, *common]}[command]
    code, out, err = _cli(capsys, *argv)
    assert code == 4
    where = f"{scenes}: holds a file" if command != "add-file" else f"{scenes}/{SHOWN}: the name"
    _one_error(err, where, SHOWN, "not valid UTF-8", "rename it", progress=command == "detect")


def test_a_planet_delivery_with_a_folder_named_in_other_bytes_is_refused(tmp_path, capsys):
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    _write_scene(tmp_path / "delivery" / "cafe", "20240128_103800_ab12")
    (tmp_path / "delivery" / "cafe").rename(tmp_path / "delivery" / os.fsdecode(b"caf\xe9"))  # Latin-1, as old archivers wrote it
    code, _, err = _cli(capsys, "add", AOI_NAME, tmp_path / "delivery", "--aoi-dir", aoi_dir, "--data", tmp_path / "data")
    assert code == 4
    _one_error(err, f"{tmp_path / 'delivery'}: holds a folder", r"caf\xe9", "not valid UTF-8")
