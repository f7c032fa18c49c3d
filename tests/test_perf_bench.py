"""The performance benchmark runs end to end on a small pair (its figures are printed by make bench-perf, not tested)."""

from __future__ import annotations

import logging

import pytest
import rasterio

from factories import run_cli
from pipeline.bench.perf import perf_lines, profile_lines, run_perf, run_profile, write_pair


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


@pytest.mark.slow
def test_the_profile_times_every_stage_of_a_chunked_run(tmp_path):
    rows = run_profile(tmp_path, [600], village=False)
    pipeline = next(r for r in rows if r["method"] == "pipeline")
    stages = pipeline["stages"]
    assert {"reading a chunk's window", "co-registration applied", "threshold and dating", "polygons"} <= set(stages)
    assert all(t["wall_s"] >= 0 and t["entries"] >= 1 for t in stages.values())
    assert stages["reading a chunk's window"]["read_mb"] > 0  # the chunk's window comes from the files
    assert sum(t["cpu_s"] for t in stages.values()) <= pipeline["cpu_s"] + 0.5
    assert profile_lines(rows)[0].startswith("600 x 600 px pair (SIMULATED), chunked: wall")
    assert not list(tmp_path.glob("*.tif"))


def test_a_pair_too_small_to_hold_a_village_is_refused_in_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "bench-perf", "--profile", "--size", "0", "--work", tmp_path)
    assert code != 0 and err.count("\n") == 1 and "--size" in err and ">= 256" in err


def test_the_village_is_timed_warm_as_it_comes_and_recomputed_alternately(tmp_path, monkeypatch):
    import pipeline.bench.perf as perf

    typed: list[tuple[str, ...]] = []
    walls = iter([30.0, 9.0, 14.0, 9.5, 15.0, 8.0, 13.0])  # the first run makes the demo and keeps its work

    def command(data_root, out_root, *flags):
        typed.append(flags)
        return {"wall_s": next(walls)}

    monkeypatch.setattr(perf, "_village_command", command)
    rows = perf.run_village(tmp_path, repeats=3)
    assert typed == [(), (), ("--recompute",), (), ("--recompute",), (), ("--recompute",)]
    by = {r["method"]: r for r in rows}
    assert by["village"]["wall_s"] == 9.0 and by["village"]["each_s"] == [9.0, 9.5, 8.0]
    assert by["village_recompute"]["wall_s"] == 14.0
    lines = perf_lines(rows)
    assert lines[0] == ("burnscan detect ogota, warm (kept work used; SIMULATED demo): median 9.00 s of "
                        "9.00, 9.50, 8.00 (target <= 10 s)")
    assert lines[1].startswith("burnscan detect ogota, warm (--recompute; SIMULATED demo): median 14.00 s")


def test_the_commands_it_times_run_its_own_code_wherever_it_is_started(tmp_path, monkeypatch):
    """Started with another checkout's package first on PYTHONPATH (the way two commits are timed against each other),
    or from a folder that holds another ``pipeline``, the child commands it times still run the package it is part
    of: ``python -m`` alone puts the working directory first, and timed that folder's code instead."""
    import subprocess
    import sys
    from pathlib import Path

    import pipeline
    from pipeline.bench import perf

    other = tmp_path / "pipeline"
    other.mkdir()
    (other / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    probe = "import pipeline; print(pipeline.__file__)"
    plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert Path(plain.stdout.strip()) == other / "__init__.py"  # what a plain child would have timed
    child = subprocess.run(perf._this_code("-c", probe), capture_output=True, text=True, env=perf._this_code_env(), check=True)
    assert Path(child.stdout.strip()) == Path(pipeline.__file__).resolve()
