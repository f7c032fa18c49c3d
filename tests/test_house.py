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


@pytest.mark.slow
def test_calibrate_then_apply_is_the_whole_analysis_and_so_is_detect_burns(tmp_path):
    """detect_burns uses the calibration pass's own arrays on the whole stack: apply(calibrate(stack)) must give
    the same numbers, or chunks (which only ever see apply) and villages would disagree."""
    import numpy as np

    from pipeline.config import Params
    from pipeline.grid import grid_for_bounds
    from pipeline.readers.recognise import load_sources, recognise
    from pipeline.run import apply, calibrate, detect_burns
    from pipeline.sim.demo import write_scenes
    from pipeline.sim.simulate import simulate_village_series

    grid = grid_for_bounds((500000, 1520000, 500720, 1520720), "EPSG:32630", 3.0)
    series = simulate_village_series(grid, seed=7, n_compounds=20, n_burned_first=12, scenario="cloud_flagged")
    write_scenes(series.scenes, series.grid, tmp_path / "scenes")
    stack, records = load_sources(recognise(tmp_path / "scenes"), grid)
    params = Params(margin_m=0)
    whole = detect_burns(stack, records, params=params, loaded_grid=grid, analysis_grid=grid)
    calibration = calibrate(stack, records, params=params, loaded_grid=grid, analysis_grid=grid)
    again = apply(stack, records, calibration, params=params, loaded_grid=grid, analysis_grid=grid)
    assert calibration == whole.calibration
    assert len(whole.polygons) > 5 and whole.polygons.drop(columns="geometry").equals(again.polygons.drop(columns="geometry"))
    assert all(a.equals(b) for a, b in zip(whole.polygons.geometry, again.polygons.geometry))
    for name in ("first_seen", "last_clear_before"):
        np.testing.assert_array_equal(whole.dates[name].values, again.dates[name].values)
    assert whole.quality == again.quality and whole.thresholds == again.thresholds
