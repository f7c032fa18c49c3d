"""Chunked analysis: a burn crossing chunk edges comes out whole, and chunks agree with the whole scene."""

from __future__ import annotations

import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin
from scipy import ndimage
from shapely.geometry import LineString, box

from pipeline.chunked import detect_chunked, merge_across_edges, plan_chunks
from pipeline.config import Params
from pipeline.errors import SceneError
from pipeline.grid import Grid
from pipeline.readers.recognise import load_sources, recognise
from pipeline.run import detect_burns

_RES = 3.0
_ORIGIN = (500000.0, 1530000.0)
_SIZE = 320
_CHUNK = 128  # chunk edges at rows/cols 128 and 256


def _write_scene(path: Path, burned: np.ndarray | None, seed: int) -> Path:
    """A textured savanna (SIMULATED); ``burned`` pixels charred (dark NIR and red)."""
    rng = np.random.default_rng(1)  # the same ground on both dates
    texture = ndimage.gaussian_filter(rng.random((_SIZE, _SIZE)), 2.0)
    texture = (texture - texture.mean()) / texture.std()
    noise = np.random.default_rng(seed).normal(0, 0.004, (4, _SIZE, _SIZE))
    red = 0.16 + 0.02 * texture
    nir = 0.28 + 0.03 * texture
    if burned is not None:
        red = np.where(burned, 0.06, red)
        nir = np.where(burned, 0.07, nir)
    bands = np.stack([red * 0.6, red * 0.8, red, nir]) + noise
    with rasterio.open(path, "w", driver="GTiff", width=_SIZE, height=_SIZE, count=4, dtype="uint16", crs="EPSG:32630",
                       transform=from_origin(*_ORIGIN, _RES, _RES), tiled=True, blockxsize=64, blockysize=64,
                       nodata=0) as dst:
        dst.write(np.clip(bands * 10000, 1, 65535).astype(np.uint16))
        dst.update_tags(SIMULATED="yes")
    return path


def _burns() -> np.ndarray:
    burned = np.zeros((_SIZE, _SIZE), bool)
    burned[108:148, 110:150] = True  # 40 x 40 px across the corner where four chunks meet
    burned[200:212, 40:220] = True   # a strip across the vertical edge at column 128
    burned[30:42, 60:72] = True      # inside one chunk
    return burned


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chunked")
    before = _write_scene(folder / "pre_SIMULATED.tif", None, seed=2)
    after = _write_scene(folder / "post_SIMULATED.tif", _burns(), seed=3)
    t0 = datetime(2024, 1, 27, 10, 38, tzinfo=timezone.utc)
    sources = (recognise(before, bands="blue,green,red,nir", acquired=t0)
               + recognise(after, bands="blue,green,red,nir", acquired=t0.replace(day=28)))
    grid = Grid("EPSG:32630", from_origin(*_ORIGIN, _RES, _RES), _SIZE, _SIZE)
    return sources, grid


@pytest.mark.slow
def test_a_burn_across_four_chunks_is_one_polygon_of_its_area(pair, caplog):
    sources, grid = pair
    with caplog.at_level(logging.INFO, logger="pipeline.chunked"):
        result = detect_chunked(sources, grid, params=Params(), chunk_px=_CHUNK, halo_px=16, scheduler="sync")
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.chunked" and r.levelno == logging.INFO]
    assert lines[-2] == "chunks done: 9 of 9"  # long searches say how far they are
    corner = result.polygons[result.polygons.intersects(box(*_cell(110, 108, 150, 148)))]
    assert len(corner) == 1, "the burn across the corner of four chunks must come out as one polygon"
    assert corner.iloc[0]["n_pixels"] == 1600
    assert corner.iloc[0]["area_m2"] == pytest.approx(1600 * 9.0, rel=2e-3)  # equal-area vs grid metres
    strip = result.polygons[result.polygons.intersects(box(*_cell(40, 200, 220, 212)))]
    assert len(strip) == 1 and strip.iloc[0]["n_pixels"] == 12 * 180
    assert len(result.polygons) == 3 and result.chunks == 9 and result.pieces_merged >= 6


def _cell(col0: int, row0: int, col1: int, row1: int) -> tuple[float, float, float, float]:
    """Map bounds of pixel columns col0..col1 and rows row0..row1 (shrunk half a pixel)."""
    x0, y0 = _ORIGIN
    return (x0 + (col0 + 0.5) * _RES, y0 - (row1 - 0.5) * _RES, x0 + (col1 - 0.5) * _RES, y0 - (row0 + 0.5) * _RES)


@pytest.mark.slow
def test_chunks_on_two_workers_give_the_whole_scene_polygons(pair):
    sources, grid = pair
    stack, records = load_sources(sources, grid)
    whole = detect_burns(stack, records, params=Params(), loaded_grid=grid, analysis_grid=grid).polygons
    chunked = detect_chunked(sources, grid, params=Params(), chunk_px=_CHUNK, halo_px=16, scheduler="threads",
                             workers=2).polygons
    assert list(chunked["polygon_id"]) == list(whole["polygon_id"])
    assert list(chunked["n_pixels"]) == list(whole["n_pixels"])
    np.testing.assert_allclose(chunked["area_m2"], whole["area_m2"], rtol=1e-6)
    assert chunked.geometry.symmetric_difference(whole.geometry, align=False).area.max() < 1e-6
    # The burned-fraction area too, across chunk edges: every chunk fits the shares with the band noise measured once
    # on the scene (its own noise put them up to 0.005 ha apart), so they differ only by the rounding of the pieces.
    np.testing.assert_allclose(chunked["burned_fraction_ha"], whole["burned_fraction_ha"], rtol=0, atol=2e-4)
    assert (chunked["burned_fraction_sigma_ha"] > 0).all()


@pytest.mark.slow
def test_scenes_inside_the_calibration_window_are_analysed_once_and_give_what_the_chunks_give(pair, caplog):
    """A search area larger than its delivery: every pixel the scenes have lies in the calibration window, beyond a
    halo of its edges, so its analysis is the area's and no chunk runs; smaller chunks find the same burns."""
    sources, grid = pair
    area = grid.buffered(48)  # the scenes cover its middle only
    with caplog.at_level(logging.INFO, logger="pipeline.chunked"):
        once = detect_chunked(sources, area, params=Params(), chunk_px=1024, halo_px=16, scheduler="sync")
    said = [r.getMessage() for r in caplog.records if r.name == "pipeline.chunked"]
    assert any("whose analysis is the area's: no chunk is run" in line for line in said)
    assert not any(line.startswith("chunks done") for line in said) and once.pieces_merged == 0
    # The last column of chunks' halo ends where the scenes do: their footprints, carried through lon/lat, overreach
    # by a sliver, which must not read as a scene reaching the window (it stopped the search with "does not overlap").
    chunked = detect_chunked(sources, area, params=Params(), chunk_px=_CHUNK, halo_px=16, scheduler="sync")
    assert chunked.pieces_merged >= 6  # the chunks did run, and met at their seams
    assert list(once.polygons["polygon_id"]) == list(chunked.polygons["polygon_id"])
    assert list(once.polygons["n_pixels"]) == list(chunked.polygons["n_pixels"])
    np.testing.assert_allclose(once.polygons["area_m2"], chunked.polygons["area_m2"], rtol=1e-6)
    np.testing.assert_allclose(once.polygons["burned_fraction_ha"], chunked.polygons["burned_fraction_ha"], rtol=0.01)
    # a window that the scenes reach within a halo of its edge is chunked as before
    assert detect_chunked(sources, grid, params=Params(), chunk_px=1024, halo_px=16, scheduler="sync").chunks == 1


@pytest.mark.slow
def test_a_worker_never_sees_rasterio_s_not_georeferenced_warning(pair, monkeypatch):
    """rasterio mutes that warning around its in-memory datasets with catch_warnings(), which is process-wide: two
    threads leaving it out of order let it escape (a failure under warnings-as-errors, noise on a user's console).
    The chunked run mutes it before its workers start; the readers check georeferencing themselves."""
    import pipeline.chunked as chunked

    real_chunk = chunked._detect_chunk

    def chunk_that_warns(*args, **kwargs):
        warnings.warn("Dataset has no geotransform", NotGeoreferencedWarning)
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(chunked, "_detect_chunk", chunk_that_warns)
    sources, grid = pair
    found = detect_chunked(sources, grid, params=Params(), chunk_px=_CHUNK, halo_px=16, scheduler="threads", workers=2)
    assert len(found.polygons) > 0


def test_pieces_that_only_meet_at_a_corner_across_an_edge_merge_and_other_dates_do_not():
    edge = [LineString([(10, -100), (10, 100)])]
    pieces = gpd.GeoDataFrame(
        {"first_seen_index": [1, 1, 2, 1], "last_clear_index": [0, -1, 1, 0], "n_pixels": [4, 2, 4, 1],
         "mean_index_change": [0.2, 0.5, 0.3, 0.1], "confirmed": [True, False, True, True]},
        geometry=[box(6, 0, 10, 4), box(10, 4, 12, 6), box(10, 0, 14, 4), box(30, 30, 31, 31)])
    merged, n = merge_across_edges(pieces, edge)
    assert n == 2 and len(merged) == 3
    joined = merged[merged["n_pixels"] == 6].iloc[0]
    assert joined["last_clear_index"] == -1 and joined["mean_index_change"] == pytest.approx((0.8 + 1.0) / 6, abs=1e-4)
    assert joined["confirmed"]  # 4 of 6 pixels from a confirmed piece
    assert set(merged["first_seen_index"]) == {1, 2}


def test_chunk_plan_covers_the_grid_exactly_once():
    grid = Grid("EPSG:32630", from_origin(*_ORIGIN, _RES, _RES), 300, 250)
    chunks = plan_chunks(grid, 128)
    assert len(chunks) == 3 * 2
    assert sum(c.grid.width * c.grid.height for c in chunks) == 300 * 250
    assert {c.grid.offset_in(grid) for c in chunks} == {(r, c) for r in (0, 128) for c in (0, 128, 256)}


def test_no_scene_over_the_area_is_refused_in_one_line(pair):
    sources, _ = pair
    far = Grid("EPSG:32630", from_origin(_ORIGIN[0] + 50_000, _ORIGIN[1], _RES, _RES), 100, 100)
    with pytest.raises(SceneError, match="no scene overlaps the area"):
        detect_chunked(sources, far, params=Params(), chunk_px=64)


def test_scene_wide_figures_are_measured_where_every_scene_has_data():
    from pipeline.chunked import _calibration_window

    grid = Grid("EPSG:32630", from_origin(*_ORIGIN, _RES, _RES), 5000, 4000)
    left, bottom, right, top = grid.bounds
    corner = box(left + 9000, bottom, right, bottom + 4000)    # one scene: only the south-east
    wide = box(left, bottom, right, top)                        # another: everything
    window = _calibration_window(grid, [wide, corner], 1024)
    assert corner.contains(box(*window.bounds)) and window.shape == (1024, 1024)
    assert _calibration_window(Grid(grid.crs, grid.transform, 900, 800), [wide], 1024).shape == (800, 900)
