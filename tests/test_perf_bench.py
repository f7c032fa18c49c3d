"""The performance benchmark runs end to end on a small pair (its figures are printed by make bench-perf, not tested)."""

from __future__ import annotations

import logging

import pytest
import rasterio

from pipeline.bench.perf import perf_lines, run_perf, write_pair


def test_generated_pair_is_a_tiled_compressed_uint16_simulated_scene(tmp_path):
    pre, post = write_pair(tmp_path, 600)
    with rasterio.open(post) as src:
        assert (src.count, src.dtypes[0], src.width) == (4, "uint16", 600)
        assert src.profile["tiled"] and src.compression is not None and src.tags()["SIMULATED"] == "yes"
    assert "SIMULATED" in pre.name


@pytest.mark.slow
def test_every_method_is_measured_and_finds_burns(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.bench.perf"):
        rows = run_perf(tmp_path, [600], repeats=1, chunk_sizes=(256,))
    lines = perf_lines(rows)
    by = {r["method"]: r for r in rows}
    assert set(by) == {"floor", "pipeline", "naive", "pipeline_chunk256"} and all("error" not in r for r in rows)
    assert by["pipeline_chunk256"]["polygons"] == by["pipeline"]["polygons"]  # nine chunks, not one: same burns
    assert all(r["wall_s"] > 0 and r["peak_mb"] > 0 for r in rows)
    assert by["pipeline"]["polygons"] > 0 and by["naive"]["polygons"] > 0
    assert any(line.strip().startswith("ratios: pipeline / floor") for line in lines)
    assert lines[0] == "600 x 600 px pair (SIMULATED)" and sum(line.startswith("  chunk   256 wall") for line in lines) == 1
    said = [r.getMessage() for r in caplog.records if r.name == "pipeline.bench.perf"]
    assert said[0].startswith("600 x 600 px pair written in") and said[-1] == "timings done: 4 of 4"  # progress, not results
    assert not list(tmp_path.glob("*.tif"))  # the generated pair is removed after
