"""A re-run of the same scenes copies its figures, review-page scenes and GIS rasters instead of making them, byte
for byte the same; a kept figure whose bytes or entry changed, or whose inputs differ by one value, is drawn again."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely.geometry import box

import pipeline.outputs.run_folder as run_folder
from factories import copy_small_run, tree_digest
from smallaoi import AOI_NAME
from pipeline.outputs.figure_cache import FigureCache, KeptFigure, Uncacheable, content_key, drawing_version
from pipeline.run import run_detect
from pipeline.sim.demo import demo_scenes


def _scene(value: float = 0.2) -> xr.DataArray:
    data = np.full((3, 8, 9), value, np.float32)
    return xr.DataArray(data, dims=("band", "y", "x"), coords={"band": ["nir", "red", "green"], "x": np.arange(9.0)},
                        attrs={"scene_id": "s1", "crs": "EPSG:32630"})


def _frame(side: float = 10.0, crs: str = "EPSG:32630") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"polygon_id": ["p1"], "area_ha": [0.01]}, geometry=[box(0, 0, side, side)], crs=crs)


def test_the_key_follows_every_value_a_builder_holds_and_nothing_else():
    def draw(scene, polygons, caption):
        return scene, polygons, caption

    base = content_key(partial(draw, _scene(), _frame(), "Before: s0"))
    assert content_key(partial(draw, _scene(), _frame(), "Before: s0")) == base  # equal values, other objects
    changed = _scene()
    changed.values[1, 4, 4] += 1e-6
    attrs = _scene().assign_attrs(scene_id="s2")
    for other in (partial(draw, changed, _frame(), "Before: s0"), partial(draw, attrs, _frame(), "Before: s0"),
                  partial(draw, _scene().assign_coords(x=np.arange(9.0) + 3), _frame(), "Before: s0"),
                  partial(draw, _scene(), _frame(side=10.5), "Before: s0"),
                  partial(draw, _scene(), _frame(crs="EPSG:32631"), "Before: s0"),
                  partial(draw, _scene(), _frame().assign(area_ha=[0.02]), "Before: s0"),
                  partial(draw, _scene(), _frame(), "Before: s1")):
        assert content_key(other) != base

    def closure_over(scene):
        def build():
            return scene.sum()
        return build

    assert content_key(closure_over(_scene())) == content_key(closure_over(_scene()))
    assert content_key(closure_over(_scene())) != content_key(closure_over(_scene(0.3)))
    assert content_key(lambda: 1) != content_key(lambda: 2)  # the code itself
    strided = np.arange(40.0).reshape(5, 8)[:, ::2]
    assert content_key(strided) == content_key(strided.copy())  # the values, not the layout
    assert content_key(np.zeros(4, np.float32)) != content_key(np.zeros(4, np.int32))
    dates = np.array(["2024-01-27T10:38", "2024-01-28T10:38"], "datetime64[s]")
    assert content_key(dates) != content_key(dates + 1)


def test_a_value_the_key_cannot_read_is_refused_not_guessed():
    class Opaque:
        pass

    with pytest.raises(Uncacheable):
        content_key(partial(print, Opaque()))
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(Uncacheable):
        content_key(cycle)


def test_the_key_of_a_set_does_not_depend_on_the_hash_seed():
    values = {"nir", "red", "green", "blue", "swir16", "swir22"}
    code = f"from pipeline.outputs.figure_cache import content_key; print(content_key({values!r}))"
    seeds = ("1", "2") if os.environ.get("PYTHONHASHSEED") == "1" else ("1",)  # another seed than this process's
    for seed in seeds:
        other = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                               capture_output=True, text=True, check=True).stdout.strip()
        assert other == content_key(values)


def test_the_store_gives_back_only_what_hashes_to_its_entry(tmp_path, caplog):
    cache = FigureCache(tmp_path / "cache")
    key, other = "a" * 64, "b" * 64
    figure = KeptFigure(b"png bytes", b"pdf bytes", ("image/jpeg", b"copy"))
    cache.put(key, figure)
    cache.put(other, KeptFigure(b"scene", None, None))
    assert cache.get(key) == figure and cache.get(other) == KeptFigure(b"scene", None, None)
    assert cache.get("c" * 64) is None
    with pytest.raises(KeyError):
        cache.get("../../etc")
    folder = tmp_path / "cache" / drawing_version()[:16] / key
    (folder / "png").write_bytes(b"png bytez")
    with caplog.at_level(logging.INFO, logger="pipeline.outputs.figure_cache"):
        assert cache.get(key) is None
    assert "does not hash to its entry" in caplog.text
    cache.put(key, figure)
    entry = json.loads((folder / "entry.json").read_text())
    for damage in ("{not json", json.dumps({**entry, "key": other}), json.dumps({**entry, "meta": {"screen_mime": "text/html"}}),
                   json.dumps({**entry, "files": {**entry["files"], "../png": entry["files"]["png"]}}),
                   json.dumps({k: v for k, v in entry.items() if k != "files"})):
        (folder / "entry.json").write_text(damage)
        assert cache.get(key) is None, damage
    cache.put(key, figure)
    (folder / "pdf").unlink()
    (folder / "pdf").symlink_to(folder / "png")  # a link in a file's place is not one of ours
    assert cache.get(key) is None


def test_the_store_stays_under_its_limit_dropping_what_was_used_longest_ago(tmp_path):
    cache = FigureCache(tmp_path / "cache", max_bytes=2500)
    stale = tmp_path / "cache" / "0123456789abcdef" / ("d" * 64)  # figures of an older drawing code
    stale.mkdir(parents=True)
    (stale / "png").write_bytes(b"x" * 100)
    (stale / "entry.json").write_text("{}")
    cut_short = tmp_path / "cache" / drawing_version()[:16] / ("e" * 64)  # a killed run's files, no entry yet
    cut_short.mkdir(parents=True)
    (cut_short / "png").write_bytes(b"x" * 100)
    os.utime(cut_short, (900, 900))
    for i, name in enumerate("abc"):
        cache.put(name * 64, KeptFigure(bytes(1000), None, None))
        os.utime(cache._folder(name * 64) / "entry.json", (1000 + i, 1000 + i))
    assert cache.get("a" * 64) is not None  # used now: the newest
    cache.prune()
    assert not stale.exists() and not cut_short.exists()
    assert cache.get("b" * 64) is None and cache.get("a" * 64) is not None and cache.get("c" * 64) is not None


def test_a_store_that_cannot_be_written_costs_the_next_run_its_drawing_not_this_run(tmp_path, caplog):
    (tmp_path / "cache").write_text("a file where the folder would be")
    with caplog.at_level(logging.WARNING, logger="pipeline.outputs.figure_cache"):
        FigureCache(tmp_path / "cache").put("a" * 64, KeptFigure(b"png", None, None))
    assert "could not be kept" in caplog.text


def _count_drawings(monkeypatch) -> list[str]:
    """The figures, review-page scenes and GIS rasters a run makes, by name (the run's work in this process, to be counted)."""
    monkeypatch.setenv("BURNSCAN_NO_FORK", "1")
    drawn: list[str] = []
    draw_figure, draw_scene = run_folder._draw_and_save, run_folder._draw_scene

    def figure(folder, png, *args):
        drawn.append(png.name)
        return draw_figure(folder, png, *args)

    def scene(image, store):
        drawn.append("review page scene")
        return draw_scene(image, store)

    def rasters(folder, inputs):
        drawn.append("gis rasters")
        return write_rasters(folder, inputs)

    write_rasters = run_folder.write_rasters
    monkeypatch.setattr(run_folder, "_draw_and_save", figure)
    monkeypatch.setattr(run_folder, "_draw_scene", scene)
    monkeypatch.setattr(run_folder, "write_rasters", rasters)
    return drawn


def _scene_images(run_dir: Path) -> list[str]:
    page = (run_dir / "review.html").read_text(encoding="utf-8")
    return [part.split('"', 1)[0] for part in page.split("data:image/png;base64,")[1:]]


def _figures_and_page(run_dir: Path) -> dict[str, str]:
    return {**tree_digest(run_dir / "figures"), **tree_digest(run_dir / "gis"),
            "review page scenes": content_key(_scene_images(run_dir))}


def test_a_second_run_of_the_same_scenes_copies_what_was_kept_and_redraws_what_changed_on_disk(small_run, tmp_path,
                                                                                                monkeypatch):
    copy = copy_small_run(small_run, tmp_path)  # with the session run's kept figures, scenes and rasters
    kept = sorted((copy.out_root / ".cache" / "figures").glob("*/*/pdf"))
    assert kept, "the session's run keeps its figures"
    kept[0].write_bytes(kept[0].read_bytes()[:-10])  # a truncated PDF
    drawn = _count_drawings(monkeypatch)
    again = run_detect(AOI_NAME, out_root=copy.out_root, data_root=small_run.data_root, aoi_dir=small_run.aoi_dir,
                       demo=demo_scenes)
    assert len(drawn) == 1 and drawn[0].endswith(".png")  # that figure alone; every other one, scene and raster copied
    first = _figures_and_page(small_run.run_dir)
    assert len(first) > 30 and _figures_and_page(again.run_dir) == first
    assert FigureCache(kept[0].parents[2]).get(kept[0].parent.name) is not None  # drawn anew, kept anew: it checks
