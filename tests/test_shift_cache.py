"""A re-run of the same scenes reuses their shifts instead of searching again, and gets the same run; a kept
shift that is not where the search would stop (edited, damaged, from other pixels) is searched again."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from factories import PAIR_AOI, add_geotiff_pair, run_cli
from pipeline.outputs.shift_cache import ShiftCache
from pipeline.stages.coregister import ShiftEstimate, coregister


def _stack(shift: tuple[float, float] = (1.3, -0.7)) -> xr.Dataset:
    """Two scenes of one textured ground (SIMULATED), the second displaced by ``shift`` px."""
    rng = np.random.default_rng(3)
    ground = ndimage.gaussian_filter(rng.random((160, 160)), 2.0)
    moved = ndimage.shift(ground, shift, order=3, mode="nearest")
    refl = np.stack([np.stack([ground] * 2), np.stack([moved] * 2)]).astype(np.float32)
    return xr.Dataset({"reflectance": (("time", "band", "y", "x"), refl),
                       "clear": (("time", "y", "x"), np.ones((2, 160, 160), bool))},
                      coords={"band": ["red", "nir"], "scene_id": ("time", ["s0", "s1"])})


def test_a_second_coregistration_of_the_same_pixels_reuses_the_shift_and_moves_the_scene_the_same():
    known: dict[str, ShiftEstimate] = {}
    first, estimates = coregister(_stack(), known=known)
    assert len(known) == 1 and first.attrs["shifts_reused"] == []
    again, reused = coregister(_stack(), known=known)
    assert again.attrs["shifts_reused"] == ["s1"] and reused == estimates
    np.testing.assert_array_equal(again["reflectance"].values, first["reflectance"].values)


def test_a_kept_shift_edited_by_a_hundredth_of_a_pixel_is_searched_again():
    known: dict[str, ShiftEstimate] = {}
    _, estimates = coregister(_stack(), known=known)
    key = next(iter(known))
    known[key] = replace(known[key], dy=known[key].dy + 0.01)
    again, redone = coregister(_stack(), known=known)
    assert again.attrs["shifts_reused"] == [] and redone == estimates
    assert known[key] == estimates[1]  # the searched estimate replaces the edited one


@pytest.mark.parametrize("edit", [dict(dy=1e300, correlation=0.0), dict(dy=1e300), dict(dx=-45.0),
                                  dict(correlation=0.3), dict(converged=False), dict(reliable=False)])
def test_a_kept_shift_no_search_would_keep_is_searched_again(edit):
    known: dict[str, ShiftEstimate] = {}
    _, estimates = coregister(_stack(), known=known)
    key = next(iter(known))
    known[key] = replace(known[key], **edit)
    again, redone = coregister(_stack(), known=known)
    assert again.attrs["shifts_reused"] == [] and redone == estimates


def test_other_pixels_have_another_key():
    known: dict[str, ShiftEstimate] = {}
    coregister(_stack((1.3, -0.7)), known=known)
    other, _ = coregister(_stack((0.4, 2.1)), known=known)
    assert other.attrs["shifts_reused"] == [] and len(known) == 2


def test_the_store_keeps_an_estimate_and_ignores_what_is_not_one(tmp_path):
    cache = ShiftCache(tmp_path / "cache")
    estimate = ShiftEstimate(1.25, -0.5, gain=1.02, offset=0.01, residual=0.002, inlier_fraction=0.98, iterations=5,
                             converged=True, correlation=0.97, reliable=True)
    key, other = "a" * 64, "b" * 64
    cache[key] = estimate
    assert cache[key] == estimate and list(cache) == [key] and len(cache) == 1
    path = cache.folder / f"{key}.json"
    for damage in ("{not json", json.dumps({**json.loads(path.read_text()), "key": other}),
                   json.dumps({**json.loads(path.read_text()), "dy": float("nan")}),
                   json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "reliable"})):
        path.write_text(damage)
        with pytest.raises(KeyError):
            cache[key]
    path.unlink()
    os.mkfifo(path)  # a pipe in an entry's place would block a reader for ever
    with pytest.raises(KeyError):
        cache[key]
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(KeyError):
        cache[key]
    for not_a_key in ("../../etc/passwd", "A" * 64, ""):
        with pytest.raises(KeyError):
            cache[not_a_key]


def test_a_store_that_cannot_be_written_costs_the_next_run_its_search_not_this_run(tmp_path, caplog):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING):
        ShiftCache(blocked)["c" * 64] = ShiftEstimate(0.5, 0.5)
    assert "could not be kept" in caplog.text


@pytest.mark.slow
def test_a_rerun_of_the_same_scenes_reuses_every_shift_and_writes_the_same_report(tmp_path, capsys):
    aoi_dir, data, _ = add_geotiff_pair(tmp_path)
    out = tmp_path / "out"
    reports, said = [], []
    for i in range(3):
        if i == 1:  # the aligned scenes kept by the first run would be read back whole: the shifts alone are kept here
            shutil.rmtree(out / ".cache" / "scenes")
        code, stdout, err = run_cli(capsys, "detect", PAIR_AOI, "--aoi-dir", aoi_dir, "--data", data, "--out", out,
                                    "--no-figures")
        assert code == 0, err
        run = out / PAIR_AOI / stdout.splitlines()[-1].removeprefix("outputs: ").rsplit("/", 1)[-1]
        reports.append(json.loads((run / "report.json").read_text()))
        said.append(err)
    assert "reused from an earlier run" not in said[0] and "the shifts of 1 scene(s) reused from an earlier run" in said[1]
    assert "as aligned by an earlier run" in said[2] and "reused from an earlier run" not in said[2]
    for key in ("totals", "readings", "scenes"):  # the same numbers, the same words: a reused shift is the searched one
        assert reports[0][key] == reports[1][key] == reports[2][key]
