"""The flow never invents scenes: the SIMULATED demo and search box come from the caller (the command line)."""

from __future__ import annotations

import pytest

from pipeline.errors import SceneError
from pipeline.run import run_detect
from pipeline.search import run_search


def test_detect_without_scenes_or_demo_says_how_to_add_scenes(tmp_path):
    with pytest.raises(SceneError) as err:
        run_detect("ogota", out_root=tmp_path / "out", data_root=tmp_path / "data")
    message = str(err.value)
    assert "\n" not in message and "no scenes given and none registered" in message and "burnscan add ogota" in message
    assert not (tmp_path / "data").exists() and not list((tmp_path / "out").rglob("*.json"))


def test_search_without_scenes_or_simulated_box_asks_for_scenes(tmp_path):
    with pytest.raises(SceneError, match="no scenes to search; give --scenes DIR"):
        run_search("ogota", out_root=tmp_path / "out", data_root=tmp_path / "data")
    assert not (tmp_path / "data").exists()
