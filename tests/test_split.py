"""Neighbouring compounds a pixel apart: one polygon per compound where the before-scene shows the wall
between them, one polygon where it does not; every outline a valid polygon."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from scipy import ndimage
from shapely.geometry import box

from pipeline.chunked import detect_chunked
from pipeline.config import Params
from pipeline.grid import Grid
from pipeline.readers.recognise import load_sources, recognise
from pipeline.run import detect_burns

_RES = 3.0
_ORIGIN = (500000.0, 1530000.0)
_SIZE = 120
_CHAR = (0.06, 0.07)  # red, NIR of char
_YARD = (0.16, 0.28)
_WALL = (0.24, 0.38)  # laterite / banco wall: brighter than the yard in every band

# (rows, cols) of each compound's burned courtyard, and the wall columns between neighbours
_PAIR = [(slice(10, 18), slice(10, 18)), (slice(10, 18), slice(19, 27))]
_PAIR_WALLS = [(slice(10, 18), 18)]
_ROW = [(slice(40, 48), slice(10, 18)), (slice(40, 48), slice(19, 27)), (slice(40, 48), slice(28, 36))]
_ROW_WALLS = [(slice(40, 48), 18), (slice(40, 48), 27)]
_L = [(slice(70, 86), slice(10, 18)), (slice(78, 86), slice(18, 34))]
_UNSEEN = [(slice(100, 108), slice(10, 27))]  # two compounds whose wall (column 18) the before-scene does not show
_UNSEEN_WALLS = [(slice(100, 108), 18)]


def _write(path: Path, *, after: bool, seed: int) -> Path:
    """A textured ground (SIMULATED) with bright walls; after the fire the courtyards are char and the
    burn blurs halfway across each wall (so the burn mask joins the compounds)."""
    rng = np.random.default_rng(1)  # the same ground on both dates
    texture = ndimage.gaussian_filter(rng.random((_SIZE, _SIZE)), 2.0)
    texture = (texture - texture.mean()) / texture.std()
    red = _YARD[0] + 0.01 * texture
    nir = _YARD[1] + 0.015 * texture
    for rows, col in _PAIR_WALLS + _ROW_WALLS:
        red[rows, col], nir[rows, col] = _WALL
    if after:
        for rows, cols in _PAIR + _ROW + _L + _UNSEEN:
            red[rows, cols], nir[rows, cols] = _CHAR
        for rows, col in _PAIR_WALLS + _ROW_WALLS + _UNSEEN_WALLS:  # half a wall pixel charred: the blur
            red[rows, col] = (red[rows, col] + _CHAR[0]) / 2
            nir[rows, col] = (nir[rows, col] + _CHAR[1]) / 2
    noise = np.random.default_rng(seed).normal(0, 0.003, (4, _SIZE, _SIZE))
    bands = np.stack([red * 0.6, red * 0.8, red, nir]) + noise
    with rasterio.open(path, "w", driver="GTiff", width=_SIZE, height=_SIZE, count=4, dtype="uint16", crs="EPSG:32630",
                       transform=from_origin(*_ORIGIN, _RES, _RES), nodata=0) as dst:
        dst.write(np.clip(bands * 10000, 1, 65535).astype(np.uint16))
        dst.update_tags(SIMULATED="yes")
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("split")
    t0 = datetime(2024, 1, 27, 10, 38, tzinfo=timezone.utc)
    sources = (recognise(_write(folder / "pre_SIMULATED.tif", after=False, seed=2), bands="blue,green,red,nir", acquired=t0)
               + recognise(_write(folder / "post_SIMULATED.tif", after=True, seed=3), bands="blue,green,red,nir",
                           acquired=t0.replace(day=28)))
    return sources, Grid("EPSG:32630", from_origin(*_ORIGIN, _RES, _RES), _SIZE, _SIZE)


@pytest.fixture(scope="module")
def detection(pair):
    sources, grid = pair
    stack, records = load_sources(sources, grid)
    return detect_burns(stack, records, params=Params(), loaded_grid=grid, analysis_grid=grid)


@pytest.fixture(scope="module")
def polygons(detection):
    return detection.polygons


def _burned_pixels(detection, rows: slice, cols: slice) -> int:
    """Pixels the burn mask holds in the window: the half-charred wall pixels are decided by their burned
    fraction (about half), so the split is checked against the mask, not against a fixed count."""
    return int((detection.dates["first_seen"].values[rows, cols] >= 0).sum())


def _within(polys, rows: slice, cols: slice):
    x0, y0 = _ORIGIN
    area = box(x0 + cols.start * _RES, y0 - rows.stop * _RES, x0 + cols.stop * _RES, y0 - rows.start * _RES)
    return polys[polys.intersects(area.buffer(-1.0))]


def test_two_compounds_joined_across_a_wall_are_two_polygons_of_one_patch(polygons, detection):
    pair = _within(polygons, slice(10, 18), slice(10, 27))
    assert len(pair) == 2, "the wall the before-scene shows must split the patch"
    assert pair["patch_id"].nunique() == 1 and pair["patch_id"].iloc[0].startswith("P20240128-")
    assert (pair["n_pixels"] >= 64).all()  # each compound keeps its 8 x 8 courtyard
    # The wall pixels the mask kept go to one side or the other, none lost by the split.
    assert 8 * 16 <= int(pair["n_pixels"].sum()) == _burned_pixels(detection, slice(10, 18), slice(10, 27))


def test_three_compounds_in_a_row_are_three_polygons(polygons, detection):
    row = _within(polygons, slice(40, 48), slice(10, 36))
    assert len(row) == 3 and row["patch_id"].nunique() == 1
    assert 8 * 24 <= int(row["n_pixels"].sum()) == _burned_pixels(detection, slice(40, 48), slice(10, 36))


def test_an_irregular_compound_without_a_wall_stays_one_polygon(polygons):
    shape_l = _within(polygons, slice(70, 86), slice(10, 34))
    assert len(shape_l) == 1 and int(shape_l["n_pixels"].iloc[0]) == 8 * 16 + 8 * 16


def test_no_split_where_the_before_scene_shows_no_wall(polygons):
    unseen = _within(polygons, slice(100, 108), slice(10, 27))
    assert len(unseen) == 1 and int(unseen["n_pixels"].iloc[0]) == 8 * 17


def test_every_patch_has_its_own_id_and_every_outline_is_valid(polygons):
    assert len(polygons) == 2 + 3 + 1 + 1
    assert polygons["patch_id"].nunique() == 4
    assert polygons.geometry.is_valid.all()


@pytest.mark.slow
def test_chunks_split_and_merge_as_the_whole_scene_does(pair, polygons):
    """Chunk edges at every 24 px cut through the compounds and their walls: the pieces merged across the
    edges are the whole scene's, never re-merged across a wall that split them."""
    sources, grid = pair
    chunked = detect_chunked(sources, grid, params=Params(), chunk_px=24, scheduler="sync").polygons
    assert list(chunked["polygon_id"]) == list(polygons["polygon_id"])
    assert list(chunked["n_pixels"]) == list(polygons["n_pixels"])
    assert list(chunked["patch_id"]) == list(polygons["patch_id"])
    assert chunked.geometry.is_valid.all()


def test_split_patches_keeps_a_patch_whole_when_a_wall_does_not_cross_it():
    """A bright line that stops inside the patch (a fence, a path) leaves one connected core: no split."""
    from pipeline.stages.split import split_patches

    patches = np.zeros((8, 12), np.int32)
    patches[1:7, 1:11] = 1
    before = np.full(patches.shape, 0.2)
    before[1:5, 6] = 0.3  # reaches from the top rim to the middle only
    change = np.where(patches > 0, 0.2, np.nan)
    change[1:5, 6] = 0.1
    pieces, parent = split_patches(patches, before, change, wall_contrast=0.1, min_core_px=6)
    assert parent.tolist() == [1] and int((pieces == 1).sum()) == 60


def test_pieces_split_along_a_wall_are_not_merged_again_across_a_chunk_edge():
    """A wall along y = 4 split the burn on both sides of the chunk edge x = 10: the pieces join their own
    continuation across the edge (along a shared stretch of edge), never each other, nor the piece that only
    meets them at the corner where the wall crosses the seam; all four stay one patch."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from pipeline.chunked import merge_across_edges

    edge = [LineString([(10, -100), (10, 100)])]
    pieces = gpd.GeoDataFrame(
        {"first_seen_index": [1, 1, 1, 1], "last_clear_index": [0, 0, 0, 0], "n_pixels": [16, 16, 12, 20],
         "mean_index_change": [0.2, 0.2, 0.2, 0.2], "confirmed": [True] * 4, "patch_id": ["L", "L", "R", "R"]},
        geometry=[box(6, 0, 10, 4), box(6, 4, 10, 8), box(10, 0, 14, 3), box(10, 3, 14, 8)])
    merged, n = merge_across_edges(pieces, edge)
    assert n == 4 and len(merged) == 2
    assert sorted(merged["n_pixels"]) == [28, 36]
    assert merged["patch_id"].nunique() == 1


def _walls_one_pixel_at_a_time(patches, bright, dark, contrast):
    """The wall rule read literally, pixel by pixel: the oracle for the vectorised :func:`wall_pixels`."""
    from pipeline.stages.split import _DIRECTIONS, _REACH

    h, w = patches.shape
    out = np.zeros(patches.shape, bool)

    def at(values, y, x):
        return values[y, x] if 0 <= y < h and 0 <= x < w else None

    for y in range(h):
        for x in range(w):
            label = patches[y, x]
            if label == 0:
                continue
            for dy, dx in _DIRECTIONS:
                for k in _REACH:
                    sides = [(y + k * dy, x + k * dx), (y - k * dy, x - k * dx)]
                    if any(at(patches, *s) != label for s in sides):
                        continue
                    brights = [float(bright[s]) for s in sides if np.isfinite(bright[s])]
                    darks = [float(dark[s]) for s in sides if np.isfinite(dark[s])]
                    if not brights or not darks:
                        continue
                    burned_side = min(darks)
                    if (bright[y, x] >= max(brights) * (1 + contrast) and dark[y, x] <= burned_side * (1 - contrast)
                            and burned_side > 0):
                        out[y, x] = True
    return out


@pytest.mark.parametrize("seed", range(6))
def test_walls_are_found_where_the_rule_says_pixel_by_pixel(seed):
    from pipeline.stages.split import wall_pixels

    rng = np.random.default_rng(seed)
    h, w = rng.integers(6, 40, 2)
    patches, _ = ndimage.label(rng.random((h, w)) < 0.55, structure=np.ones((3, 3)))
    bright = rng.uniform(0.05, 0.35, (h, w))
    bright[rng.random((h, w)) < 0.08] = np.nan  # not seen before
    dark = np.where(patches > 0, rng.uniform(0.0, 0.3, (h, w)), np.nan)
    dark[rng.random((h, w)) < 0.08] = np.nan
    contrast = (0.0, 0.05, 0.1)[seed % 3]
    walls = wall_pixels(patches, bright, dark, wall_contrast=contrast)
    expected = _walls_one_pixel_at_a_time(patches, bright, np.where(patches > 0, dark, np.nan), contrast)
    assert expected.any()  # the cases hold walls to find
    np.testing.assert_array_equal(walls, expected)
