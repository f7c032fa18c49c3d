"""A re-run of the same scenes reads their plausibility verdicts back instead of judging every pixel again; a kept
entry that does not check, or that is not one verdict per scene, is judged again."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import pipeline.run as run
from pipeline.outputs.figure_cache import FigureCache
from pipeline.outputs.kept_verdicts import keep_verdicts, kept_verdicts

_KEY = "ab" * 32
_VERDICTS = ([None, "its reflectance is constant (red 0.30); read as not observed", None],
             {2: "its nir and swir22 read as the swir22 and nir of the other scene"})


def test_kept_verdicts_come_back_as_they_were(tmp_path):
    store = FigureCache(tmp_path)
    keep_verdicts(store, _KEY, _VERDICTS)
    assert kept_verdicts(store, _KEY, 3) == _VERDICTS
    assert kept_verdicts(store, "cd" * 32, 3) is None  # nothing under another key


@pytest.mark.parametrize("damage", ["another scene count", "a verdict that is a number", "an exchange of no scene",
                                    "a file beside it", "another key"])
def test_kept_verdicts_that_do_not_check_are_judged_again(tmp_path, damage):
    store = FigureCache(tmp_path)
    keep_verdicts(store, _KEY, _VERDICTS)
    entry_path = next(tmp_path.glob(f"*/{_KEY}/entry.json"))
    entry = json.loads(entry_path.read_text())
    scenes = 3
    if damage == "another scene count":
        scenes = 4
    elif damage == "a verdict that is a number":
        entry["meta"]["refused"][0] = 0.5
    elif damage == "an exchange of no scene":
        entry["meta"]["exchanged"] = {"7": "its nir and red read as the red and nir"}
    elif damage == "a file beside it":
        (entry_path.parent / "extra.bin").write_bytes(b"")
        entry["files"]["extra.bin"] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    else:
        entry["key"] = "cd" * 32
    entry_path.write_text(json.dumps(entry))
    assert kept_verdicts(store, _KEY, scenes) is None


def _in_aoi(values: np.ndarray) -> xr.Dataset:
    return xr.Dataset({"reflectance": (("time", "band", "y", "x"), values),
                       "clear": (("time", "y", "x"), np.ones((values.shape[0], *values.shape[2:]), bool))},
                      coords={"band": ["blue", "green", "red", "nir"]})


def test_the_verdicts_are_kept_per_pixels_so_a_changed_scene_is_judged_again(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    land = np.stack([np.full((40, 40), v) for v in (0.06, 0.09, 0.12, 0.30)]) + rng.normal(0, 0.01, (4, 40, 40))
    scenes = np.stack([land, land * 1.05]).astype(np.float32)
    store = FigureCache(tmp_path)
    first, kept_note = run._plausibility(_in_aoi(scenes), store)
    assert first == ([None, None], {}) and kept_note == ""
    judged = []
    monkeypatch.setattr(run, "judge_scenes", lambda *a, **k: judged.append(1) or [None, "judged again"])
    again, kept_note = run._plausibility(_in_aoi(scenes), store)
    assert again == first and not judged and kept_note.startswith("plausibility verdicts read from ")
    changed = scenes.copy()
    changed[1, 3, 0, 0] += 0.01  # one pixel of one band: other pixels, other verdicts
    assert run._plausibility(_in_aoi(changed), store)[0][0] == [None, "judged again"] and judged
    monkeypatch.undo()
    assert run._plausibility(_in_aoi(scenes), None) == (first, "")  # no store: judged, nothing read
