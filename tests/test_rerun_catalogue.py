"""``burnscan rerun`` reproduces a run of the AOI's scene catalogue (``add`` then ``detect``, the usual path).

It used to refuse every such run ("the catalogue may have grown since"). The manifest lists the
scenes the run read with their SHA-256 and the data folder whose catalogue registered them: the
re-run reads exactly those (never a scene added since), each the way it was registered (a plain
GeoTIFF's band map and time), and refuses in one line naming the file when one is missing or changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pipeline.provenance.compare import compare_runs
from factories import PAIR_AOI, PAIR_BANDS, add_geotiff_pair, run_cli

pytestmark = pytest.mark.slow  # detect and re-run twice: tens of seconds


def _outputs(stdout: str) -> Path:
    return Path(next(line for line in stdout.splitlines() if line.startswith("outputs: ")).removeprefix("outputs: "))


def _folders(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.is_symlink())


def test_a_run_of_registered_scenes_reruns_identically_from_another_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative --data, --out and --aoi-dir, as a user types them in the project folder
    add_geotiff_pair(Path("."), data=Path("data"))
    code, out, err = run_cli(capsys, "detect", PAIR_AOI, "--aoi-dir", "aoi", "--data", "data", "--out", "out")
    assert code == 0, err
    original = _outputs(out)
    manifest = json.loads((original / "manifest.json").read_text())
    assert manifest["scenes_from"] == "catalogue" and len(manifest["inputs"]) == 2
    assert len(json.loads((original / "burns.geojson").read_text())["features"]) == 1  # a burn to reproduce
    # a scene registered after the run must not enter its re-run
    later = tmp_path / "exports" / "export_3.tif"
    with rasterio.open(tmp_path / "exports" / "export_2.tif") as src:
        profile, pixels = src.profile, src.read()
    with rasterio.open(later, "w", **profile) as dst:
        dst.write(np.clip(pixels.astype(np.int32) + 37, 1, 65535).astype(np.uint16))
    code, _, err = run_cli(capsys, "add", PAIR_AOI, later, "--bands", PAIR_BANDS, "--acquired", "2024-01-29T10:38:00Z",
                           "--data", "data", "--aoi-dir", "aoi")
    assert code == 0, err

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths of the run must not make its re-run read or say anything else
    before = _folders(tmp_path / "out" / PAIR_AOI)
    code, out, err = run_cli(capsys, "rerun", tmp_path / "out" / PAIR_AOI / "latest")
    assert code == 0, out + err
    new = [name for name in _folders(tmp_path / "out" / PAIR_AOI) if name not in before]
    assert len(new) == 1
    rerun_dir = tmp_path / "out" / PAIR_AOI / new[0]
    # `latest` was read when the command started: the original is compared, not the re-run with itself
    assert out.splitlines()[0] == f"re-ran {tmp_path / 'out' / PAIR_AOI / original.name} as {rerun_dir}"
    assert [line for line in out.splitlines() if line.startswith("differs: ")] == []
    assert "identical: burns.geojson (same bytes)" in out and "identical: report.md (same text once" in out
    assert "identical: manifest.json (same AOI file, scene files, hashes and parameters)" in out
    assert compare_runs(tmp_path / "out" / PAIR_AOI / original.name, rerun_dir).identical
    assert [s["scene_id"] for s in json.loads((rerun_dir / "manifest.json").read_text())["inputs"]] == \
        [s["scene_id"] for s in manifest["inputs"]]
    # every path a run records is absolute, whatever the user typed
    assert all(Path(f["path"]).is_absolute() for s in manifest["inputs"] for f in s["files"])
    assert Path(manifest["data_folder"]) == (tmp_path / "data" / PAIR_AOI)


def test_a_changed_or_missing_scene_file_is_refused_in_one_line_naming_it(tmp_path, capsys):
    aoi_dir, data, paths = add_geotiff_pair(tmp_path)
    code, out, err = run_cli(capsys, "detect", PAIR_AOI, "--aoi-dir", aoi_dir, "--data", data, "--out", tmp_path / "out",
                             "--no-figures")
    assert code == 0, err
    run = _outputs(out)
    before = _folders(run.parent)
    with open(paths[1], "r+b") as handle:  # one byte of the second export changed
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))
    code, out, err = run_cli(capsys, "rerun", run)
    assert code != 0 and err.count("\n") == 1 and err.startswith("burnscan: error: "), err
    assert str(paths[1].resolve()) in err and "SHA-256" in err and "identical" not in out
    paths[0].unlink()
    code, out, err = run_cli(capsys, "rerun", run)
    assert code != 0 and err.count("\n") == 1 and str(paths[0].resolve()) in err and "missing" in err, err
    assert _folders(run.parent) == before  # refused before anything ran


def test_a_catalogue_item_whose_time_was_edited_since_the_run_is_refused_naming_both_times(tmp_path, capsys):
    """The catalogue is an editable file and not an input the manifest hashes: a re-run read the scene's time from it,
    re-dating the burn, where the run's own record holds the time it was read at."""
    aoi_dir, data, _ = add_geotiff_pair(tmp_path)
    code, out, err = run_cli(capsys, "detect", PAIR_AOI, "--aoi-dir", aoi_dir, "--data", data, "--out", tmp_path / "out",
                             "--no-figures")
    assert code == 0, err
    run = _outputs(out)
    before = _folders(run.parent)
    items = sorted((Path(data) / PAIR_AOI / "catalog").rglob("*.json"))
    edited = next(p for p in items if "2024-01-28T10:38:00Z" in p.read_text())
    edited.write_text(edited.read_text().replace("2024-01-28T10:38:00Z", "2024-01-29T10:38:00Z"))
    code, out, err = run_cli(capsys, "rerun", run)
    assert code != 0 and err.count("\n") == 1 and err.startswith("burnscan: error: "), err
    assert "was read at 2024-01-28T10:38:00Z" in err and "now says 2024-01-29T10:38:00Z" in err and "edited" in err
    assert _folders(run.parent) == before
