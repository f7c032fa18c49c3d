"""A re-run of the same scenes reads its co-registered, normalised scenes back instead of aligning them again, with
the same numbers; a kept stack whose bytes or record changed, or that cannot be kept as plain arrays, is made again."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import pipeline.outputs.kept_scenes as kept_scenes
import pipeline.run as run
from factories import copy_small_run
from smallaoi import AOI_NAME
from pipeline.outputs.figure_cache import FigureCache
from pipeline.outputs.kept_scenes import keep_aligned, kept_aligned
from pipeline.provenance.compare import compare_runs
from pipeline.sim.demo import demo_scenes
from pipeline.stages.coregister import ShiftEstimate
from pipeline.stages.normalise import BandFit

_KEY = "ab" * 32


def _aligned(seed: int = 0):
    rng = np.random.default_rng(seed)
    stack = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), rng.random((2, 2, 5, 6), dtype=np.float32)),
         "clear": (("time", "y", "x"), rng.random((2, 5, 6)) > 0.2)},
        coords={"time": np.array(["2024-01-27T10:38", "2024-01-28T10:38"], dtype="datetime64[ns]"),
                "scene_id": ("time", ["s0", "s1"]), "shift_dy": ("time", [0.0, -2.5]), "band": ["red", "nir"],
                "y": np.arange(5.0), "x": np.arange(6.0) * 3},
        attrs={"crs": "EPSG:32630", "simulated": 1, "shifts_reused": []},
    )
    shifts = [ShiftEstimate(0.0, 0.0), ShiftEstimate(-2.5, 0.25, gain=0.97, iterations=7, correlation=0.99)]
    fits = [[BandFit("red", 1.0, 0.0, 0.0, 30)], [BandFit("red", 1.06, -0.03, 0.007, 24, 0.95)]]
    return stack, shifts, fits


def test_kept_scenes_come_back_identical_variables_order_and_records_included(tmp_path):
    store = FigureCache(tmp_path)
    stack, shifts, fits = _aligned()
    keep_aligned(store, _KEY, (stack, shifts, fits))
    back, back_shifts, back_fits = kept_aligned(store, _KEY)
    xr.testing.assert_identical(back, stack)
    assert list(back.variables) == list(stack.variables) and list(back.coords) == list(stack.coords)
    assert back_shifts == shifts and back_fits == fits
    assert kept_aligned(store, "cd" * 32) is None  # nothing kept under another key


@pytest.mark.parametrize("damage", ["array byte", "array shape", "shift not finite", "fit field missing",
                                    "unnamed file"])
def test_a_kept_stack_that_does_not_check_is_made_again(tmp_path, damage):
    store = FigureCache(tmp_path)
    keep_aligned(store, _KEY, _aligned())
    folder = next(tmp_path.glob(f"*/{_KEY}"))
    entry_path = folder / "entry.json"
    entry = json.loads(entry_path.read_text())
    if damage == "array byte":
        data = bytearray((folder / "v0.npy").read_bytes())
        data[-1] ^= 1
        (folder / "v0.npy").write_bytes(bytes(data))  # no longer its SHA-256
    else:
        if damage == "array shape":
            entry["meta"]["variables"][0]["shape"] = [2, 2, 6, 5]
        elif damage == "shift not finite":
            entry["meta"]["shifts"][1]["dy"] = 1e400  # written as Infinity
        elif damage == "fit field missing":
            del entry["meta"]["fits"][1][0]["rmse"]
        else:
            (folder / "v9.npy").write_bytes(b"")
            entry["files"]["v9.npy"] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        entry_path.write_text(json.dumps(entry))
    assert kept_aligned(store, _KEY) is None


def test_a_stack_that_cannot_be_kept_as_plain_arrays_is_not_kept(tmp_path, monkeypatch):
    store = FigureCache(tmp_path)
    stack, shifts, fits = _aligned()
    keep_aligned(store, _KEY, (stack.assign_attrs(grid=object()), shifts, fits))
    keep_aligned(store, "cd" * 32, (stack, [ShiftEstimate(float("nan"), 0.0), shifts[1]], fits))
    monkeypatch.setattr(kept_scenes, "MAX_FILE_BYTES", 100)
    keep_aligned(store, "ef" * 32, (stack, shifts, fits))
    assert not list(tmp_path.rglob("entry.json"))


@pytest.mark.slow
def test_a_second_run_reads_its_aligned_scenes_back_and_finds_the_same_burns(small_run, tmp_path, monkeypatch, caplog):
    copy = copy_small_run(small_run, tmp_path)  # with the session run's kept work
    assert list((copy.out_root / ".cache" / "scenes").glob("*/*/entry.json")), "the session's run keeps its aligned scenes"

    def refuse(*args, **kwargs):
        raise AssertionError("aligned again")

    monkeypatch.setattr(run, "coregister", refuse)
    monkeypatch.setattr(run, "normalise", refuse)
    monkeypatch.setattr(run, "judge_scenes", refuse)  # the scenes' plausibility verdicts are kept too
    monkeypatch.setattr(run, "bands_exchanged", refuse)
    caplog.set_level("INFO")
    again = run.run_detect(AOI_NAME, out_root=copy.out_root, data_root=small_run.data_root, aoi_dir=small_run.aoi_dir,
                           demo=demo_scenes)
    assert "as aligned by an earlier run of the same pixels, parameters and code" in caplog.text
    assert "scenes as judged by an earlier run of the same pixels and code" in caplog.text
    first = small_run.outcome.detection
    xr.testing.assert_identical(again.detection.stack, first.stack)
    assert again.detection.shifts == first.shifts and again.detection.fits == first.fits
    assert again.detection.polygons.drop(columns="geometry").equals(first.polygons.drop(columns="geometry"))
    assert again.detection.polygons.geometry.equals(first.polygons.geometry)
    assert again.report["scenes"] == small_run.outcome.report["scenes"]  # shifts, fits and thresholds as reported
    # the report says what was read from earlier runs, and where; a comparison of the two runs sets that aside
    kept = again.report["provenance"]["kept_work"]
    verdicts, scenes = kept.split("; ")
    assert verdicts.startswith("plausibility verdicts read from ") and str(copy.out_root / ".cache" / "scenes") in verdicts
    assert scenes.startswith("co-registered, normalised scenes read from ") and str(copy.out_root / ".cache" / "scenes") in scenes
    assert small_run.outcome.report["provenance"]["kept_work"] == "none: every scene aligned in this run"
    assert f"kept_work: {kept}" in (again.run_dir / "report.md").read_text()
    assert compare_runs(small_run.run_dir, again.run_dir).identical
    # verify checks files against the manifest, not kept work (which anyone who can write out/.cache could swap):
    # it says so for the run that read some, and names the command that recomputes it
    from pipeline.provenance.verify import check_run

    check = check_run(again.run_dir)
    assert check.problems == ()
    assert any(kept in note and f"burnscan rerun {again.run_dir}" in note for note in check.notes), check.notes
    assert not any("kept by earlier runs" in note for note in check_run(small_run.run_dir).notes)
