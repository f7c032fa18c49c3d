"""Known-answer tests for footprint alignment and the burned-structure overlap rule."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import ndimage
from shapely.geometry import Point, box

from pipeline.errors import ParameterError
from pipeline.stages.structures import (
    STRUCTURE_COLUMNS,
    FootprintShift,
    burned_structures,
    footprint_offset,
    shift_footprints,
    structures_in_burns,
    texture_for_alignment,
)

CRS = "EPSG:32630"
RES = 3.0
N = 200
X0, Y0 = 500_000.0, 1_500_000.0
SHIFT = (6.0, -4.5)  # where the footprint layer sits relative to the roofs (east, north), metres


# --- synthetic village ---------------------------------------------------------------------

def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a north-up 3 m grid (y decreasing)."""
    return X0 + RES * (np.arange(N) + 0.5), Y0 - RES * (np.arange(N) + 0.5)


def _huts(seed: int = 0, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """``n`` hut centres at least 15 m apart, kept 90 m inside the grid, and their radii (2-3 m)."""
    rng = np.random.default_rng(seed)
    x, y = _grid()
    centres: list[tuple[float, float]] = []
    while len(centres) < n:
        cx, cy = rng.uniform(x[0] + 90, x[-1] - 90), rng.uniform(y[-1] + 90, y[0] - 90)
        if all(math.hypot(cx - a, cy - b) > 15 for a, b in centres):
            centres.append((cx, cy))
    return np.array(centres), rng.uniform(2.0, 3.0, n)


def _scene(centres: np.ndarray, radii: np.ndarray, contrast: float, seed: int = 10, ss: int = 5) -> xr.DataArray:
    """Huts rendered by supersampling, ``contrast`` above (or below) a textured, noisy ground."""
    rng = np.random.default_rng(seed)
    x, y = _grid()
    sub = (np.arange(ss) + 0.5) / ss - 0.5
    fx, fy = np.meshgrid((x[:, None] + sub * RES).ravel(), (y[:, None] + sub * RES).ravel())
    roofs = np.zeros_like(fx)
    for (cx, cy), r in zip(centres, radii):
        roofs[np.hypot(fx - cx, fy - cy) <= r] = 1.0
    cover = roofs.reshape(N, ss, N, ss).mean(axis=(1, 3))
    fields = ndimage.gaussian_filter(rng.normal(0, 1, (N, N)), 6)
    ground = 0.2 + 0.05 * fields / fields.std() + rng.normal(0, 0.01, (N, N))
    return xr.DataArray(ground + contrast * cover, dims=("y", "x"), coords={"y": y, "x": x})


def _footprints(centres: np.ndarray, radii: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> gpd.GeoDataFrame:
    geoms = [Point(cx + dx, cy + dy).buffer(r, 64) for (cx, cy), r in zip(centres, radii)]
    return gpd.GeoDataFrame({"structure_id": np.arange(len(geoms))}, geometry=geoms, crs=CRS)


@pytest.fixture(scope="module")
def village() -> tuple[np.ndarray, np.ndarray]:
    return _huts()


@pytest.fixture(scope="module")
def bright_scene(village) -> xr.DataArray:
    return _scene(*village, contrast=0.1)


# --- footprint_offset -------------------------------------------------------------------------

@pytest.mark.slow
def test_offset_recovers_known_shift_with_bright_roofs(village, bright_scene):
    shift = footprint_offset(_footprints(*village, *SHIFT), bright_scene)
    assert shift.reliable
    assert shift.dx_m == pytest.approx(-SHIFT[0], abs=1.0)
    assert shift.dy_m == pytest.approx(-SHIFT[1], abs=1.0)
    for half in shift.halves_m:
        assert half == pytest.approx((-SHIFT[0], -SHIFT[1]), abs=1.0)
    assert "moved" in shift.note


def _shaded_village(centres: np.ndarray, radii: np.ndarray, ss: int = 5) -> xr.DataArray:
    """``(band, y, x)`` blue, green, red, NIR of thatch huts on swept earth at a 48 degree sun from the south-east:
    each hut, 3 m high, casts a shadow 2.7 m long to the north-west that keeps 45 % of the light in every band."""
    rng = np.random.default_rng(12)
    x, y = _grid()
    sub = (np.arange(ss) + 0.5) / ss - 0.5
    fx, fy = np.meshgrid((x[:, None] + sub * RES).ravel(), (y[:, None] + sub * RES).ravel())
    roofs, shade = np.zeros_like(fx), np.zeros_like(fx)
    away = np.array([-math.sin(math.radians(140.0)), -math.cos(math.radians(140.0))])  # the shadows' direction
    length = 3.0 / math.tan(math.radians(47.6))
    for (cx, cy), r in zip(centres, radii):
        along = np.clip((fx - cx) * away[0] + (fy - cy) * away[1], 0.0, length)
        shade[np.hypot(fx - cx - along * away[0], fy - cy - along * away[1]) <= r] = 1.0
        roofs[np.hypot(fx - cx, fy - cy) <= r] = 1.0
    shade[roofs > 0] = 0.0
    cover, shaded = (a.reshape(N, ss, N, ss).mean(axis=(1, 3)) for a in (roofs, shade))
    fields = ndimage.gaussian_filter(rng.normal(0, 1, (N, N)), 6)
    yard, thatch = np.array([0.15, 0.21, 0.28, 0.33]), np.array([0.13, 0.19, 0.25, 0.36])
    ground = yard[:, None, None] * (1 + 0.15 * fields / fields.std())[None]
    bands = (ground * (1 - cover) + thatch[:, None, None] * cover) * (1 - 0.55 * shaded)
    bands += rng.normal(0, 0.003, bands.shape)
    return xr.DataArray(bands, dims=("band", "y", "x"), coords={"band": ["blue", "green", "red", "nir"], "y": y, "x": x})


@pytest.mark.slow
def test_hut_shadows_do_not_pull_the_footprints_toward_them(village):
    # Every hut casts a shadow darker than any roof: on the red band the layer locks where the shadows lie, a
    # metre and more off to the north-west. The NIR-red normalised difference is blind to a shadow's common
    # factor and sees thatch against earth: the layer lands on the roofs.
    scene = _shaded_village(*village)
    footprints = _footprints(*village, *SHIFT)
    on_red = footprint_offset(footprints, scene.sel(band="red", drop=True))
    assert math.hypot(on_red.dx_m + SHIFT[0], on_red.dy_m + SHIFT[1]) > 1.0
    shift = footprint_offset(footprints, texture_for_alignment(scene, ["blue", "green", "red", "nir"]))
    assert shift.reliable
    assert math.hypot(shift.dx_m + SHIFT[0], shift.dy_m + SHIFT[1]) < 0.5


def test_the_alignment_texture_falls_back_to_red_then_to_the_first_band():
    scene = xr.DataArray(np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1, dims=("band", "y", "x"),
                         coords={"band": ["red", "nir"]})
    ratio = texture_for_alignment(scene, ["red", "nir"])
    np.testing.assert_allclose(ratio.values, (scene[1] - scene[0]) / (scene[1] + scene[0]), rtol=1e-6)
    assert texture_for_alignment(scene.assign_coords(band=["red", "green"]), ["red", "green"]).equals(
        scene.assign_coords(band=["red", "green"]).sel(band="red", drop=True))
    assert texture_for_alignment(scene.assign_coords(band=["pan", "x"]), ["pan", "x"]).equals(
        scene.assign_coords(band=["pan", "x"]).isel(band=0, drop=True))
    dark = texture_for_alignment(scene * 0, ["red", "nir"])
    assert np.isnan(dark.values).all()  # no light, no ratio: not observed, never a division by zero


@pytest.mark.slow
def test_offset_recovers_known_shift_with_dark_roofs(village):
    dark = _scene(*village, contrast=-0.1, seed=11)
    shift = footprint_offset(_footprints(*village, *SHIFT), dark)
    assert shift.reliable
    assert (shift.dx_m, shift.dy_m) == pytest.approx((-SHIFT[0], -SHIFT[1]), abs=1.0)


def test_offset_of_aligned_footprints_is_zero(village, bright_scene):
    shift = footprint_offset(_footprints(*village), bright_scene)
    assert shift.reliable
    assert (shift.dx_m, shift.dy_m) == pytest.approx((0.0, 0.0), abs=1.0)


def test_footprints_unrelated_to_scene_are_not_reliable(village, bright_scene):
    rng = np.random.default_rng(99)
    _, radii = village
    x, y = _grid()
    scattered = np.column_stack([rng.uniform(x[0] + 90, x[-1] - 90, 60), rng.uniform(y[-1] + 90, y[0] - 90, 60)])
    shift = footprint_offset(_footprints(scattered, radii), bright_scene)
    assert not shift.reliable
    assert (shift.dx_m, shift.dy_m) == (0.0, 0.0)
    assert "not measurable" in shift.note and "disagree" in shift.note and "used as given" in shift.note


def test_fewer_than_twenty_footprints_are_not_reliable(village, bright_scene):
    centres, radii = village
    shift = footprint_offset(_footprints(centres[:19], radii[:19], *SHIFT), bright_scene)
    assert not shift.reliable
    assert (shift.dx_m, shift.dy_m) == (0.0, 0.0)
    assert "only 19 footprints" in shift.note


def test_shift_beyond_default_max_is_refused(village, bright_scene):
    shift = footprint_offset(_footprints(*village, 35.0, 0.0), bright_scene)
    assert not shift.reliable
    assert (shift.dx_m, shift.dy_m) == (0.0, 0.0)
    assert "exceeds 30 m" in shift.note
    # the halves still carry the measured evidence
    assert shift.halves_m[0][0] == pytest.approx(-35.0, abs=1.0)


def test_a_layer_off_by_its_own_offset_and_the_scene_geolocation_together_is_aligned(village, bright_scene):
    # A scene 15 m off the ground (PlanetScope: under 10 m RMSE) and a layer 6 m off it the other way:
    # 21 m between them, the two halves agree, and the offset is applied.
    shift = footprint_offset(_footprints(*village, 16.2, -13.5), bright_scene)
    assert shift.reliable
    assert (shift.dx_m, shift.dy_m) == pytest.approx((-16.2, 13.5), abs=1.0)


def test_shift_beyond_custom_max_is_refused(village, bright_scene):
    shift = footprint_offset(_footprints(*village, 15.0, 0.0), bright_scene, max_shift_m=10.0)
    assert not shift.reliable
    assert "exceeds 10 m" in shift.note


@pytest.mark.parametrize("bad", [0.0, -5.0, math.nan, math.inf])
def test_bad_max_shift_raises_parameter_error(village, bright_scene, bad):
    with pytest.raises(ParameterError, match="max_shift_m"):
        footprint_offset(_footprints(*village), bright_scene, max_shift_m=bad)


# --- shift_footprints ---------------------------------------------------------------------

def test_shift_footprints_moves_a_copy_and_leaves_input_unchanged():
    fp = gpd.GeoDataFrame({"structure_id": [1, 2]}, geometry=[box(0, 0, 10, 10), box(20, 0, 30, 5)], crs=CRS)
    before = fp.geometry.copy()
    moved = shift_footprints(fp, FootprintShift(3.0, -2.0, True, ((3.0, -2.0), (3.0, -2.0)), ""))
    assert moved is not fp
    assert moved.geometry.iloc[0].equals(box(3, -2, 13, 8))
    assert moved.geometry.iloc[1].equals(box(23, -2, 33, 3))
    assert fp.geometry.geom_equals(before).all()
    assert list(moved["structure_id"]) == [1, 2] and moved.crs == fp.crs


# --- burned_structures: exact geometry ----------------------------------------------------

FOOTPRINT = box(0, 0, 10, 10)  # 100 m2


def _fp(*geoms, ids=None) -> gpd.GeoDataFrame:
    geoms = geoms or (FOOTPRINT,)
    return gpd.GeoDataFrame({"structure_id": ids or list(range(1, len(geoms) + 1))}, geometry=list(geoms), crs=CRS)


def _polys(*geoms, index=None) -> gpd.GeoDataFrame:
    n = len(geoms)
    return gpd.GeoDataFrame({"polygon_id": [101 + i for i in range(n)],
                             "first_seen": [f"2023-0{i + 2}-01" for i in range(n)],
                             "last_clear_before": [f"2023-0{i + 1}-01" for i in range(n)],
                             "first_seen_index": [i + 1 for i in range(n)],
                             "setting": ["village"] * n},
                            geometry=list(geoms), crs=CRS, index=index)


def test_footprint_60_percent_inside_is_burned_at_half_not_at_07():
    polys = _polys(box(-50, -50, 6, 50))
    half = burned_structures(_fp(), polys, min_overlap=0.5).iloc[0]
    assert half["burned_fraction"] == pytest.approx(0.6)
    assert half["burned"] and half["polygon_id"] == 101
    assert half["first_seen"] == "2023-02-01" and half["last_clear_before"] == "2023-01-01"
    assert half["first_seen_index"] == 1 and half["setting"] == "village"
    strict = burned_structures(_fp(), polys, min_overlap=0.7).iloc[0]
    assert not strict["burned"]
    assert strict["polygon_id"] is None and strict["first_seen"] == "" and strict["first_seen_index"] == -1


def test_footprint_touching_polygon_edge_has_zero_fraction():
    row = burned_structures(_fp(), _polys(box(10, 0, 20, 10))).iloc[0]
    assert row["burned_fraction"] == 0.0
    assert not row["burned"]


@pytest.mark.parametrize("split", [(3.5, 6.0), (2.5, 6.0)], ids=["larger-first", "larger-second"])
def test_footprint_split_across_two_polygons_takes_the_larger_one(split):
    cut, end = split  # first polygon covers x < cut, the second cut <= x < end: 35 % + 25 % or 25 % + 35 %
    polys = _polys(box(-20, -20, cut, 20), box(cut, -20, end, 20))
    row = burned_structures(_fp(), polys, min_overlap=0.5).iloc[0]
    assert row["burned_fraction"] == pytest.approx(0.6)
    assert row["burned"]
    larger = 0 if cut > end - cut else 1
    assert row["polygon_id"] == polys["polygon_id"].iloc[larger]
    assert row["first_seen"] == polys["first_seen"].iloc[larger]


def test_footprint_split_across_two_polygons_below_threshold_is_not_burned():
    polys = _polys(box(-20, -20, 2, 20), box(2, -20, 4, 20))  # 20 % + 20 %
    row = burned_structures(_fp(), polys, min_overlap=0.5).iloc[0]
    assert row["burned_fraction"] == pytest.approx(0.4)
    assert not row["burned"]


def test_tolerance_grows_polygons_onto_footprint_just_outside():
    polys = _polys(box(-20, -20, -1, 20))  # edge 1 m west of the footprint
    assert burned_structures(_fp(), polys, min_overlap=0.04).iloc[0]["burned_fraction"] == 0.0
    row = burned_structures(_fp(), polys, min_overlap=0.04, tolerance_m=1.5).iloc[0]
    assert row["burned_fraction"] == pytest.approx(0.05)  # 0.5 m x 10 m of the 100 m2
    assert row["burned"] and row["polygon_id"] == 101


def test_tolerance_does_not_move_the_input_polygons():
    polys = _polys(box(-20, -20, -1, 20))
    burned_structures(_fp(), polys, tolerance_m=1.5)
    assert polys.geometry.iloc[0].equals(box(-20, -20, -1, 20))


def test_adjacent_grown_polygons_are_not_counted_twice():
    # Two burns of different dates meet at x = 5 and cover the footprint's bottom 2 m (20 %).
    # Grown by 1.5 m, their union covers the bottom 3.5 m: 35 % of the footprint.
    polys = _polys(box(-20, -20, 5, 2), box(5, -20, 20, 2))
    row = burned_structures(_fp(), polys, min_overlap=0.9, tolerance_m=1.5).iloc[0]
    assert row["burned_fraction"] == pytest.approx(0.35)


@pytest.mark.parametrize("later_covers_more", [True, False])
def test_a_footprint_grown_burns_cover_equally_goes_to_the_burn_whose_own_pixels_cover_more(later_covers_more):
    # The footprint lies between two burns of different places; grown by 12 m (a layer whose offset
    # could not be measured) both cover it wholly. Their own outlines cover 30 % and 10 % of it.
    near, far = (box(-20, -20, 3, 20), box(9, -20, 30, 20))
    polys = _polys(*((far, near) if later_covers_more else (near, far)))
    polys["site_id"] = ["S101", "S102"]
    row = burned_structures(_fp(), polys, min_overlap=0.5, tolerance_m=12.0).iloc[0]
    assert row["burned_fraction"] == pytest.approx(1.0)
    assert row["polygon_id"] == (102 if later_covers_more else 101)


def test_a_footprint_both_covered_by_a_burn_and_its_continuation_goes_to_the_burn():
    # The later polygon is the part cloud hid on the day (same site): the place burned on the earlier
    # date, though the later polygon's own pixels cover more of the footprint.
    polys = _polys(box(-20, -20, 1, 20), box(1, -20, 30, 20))
    polys["site_id"] = ["S101", "S101"]
    row = burned_structures(_fp(), polys, min_overlap=0.5, tolerance_m=12.0).iloc[0]
    assert row["polygon_id"] == 101 and row["first_seen"] == "2023-02-01"


def test_a_footprint_equally_covered_by_the_own_pixels_of_two_burns_goes_to_the_nearer_then_the_earlier():
    polys = _polys(box(-20, -20, -2, 20), box(11, -20, 30, 20))  # 2 m west, 1 m east: neither covers it
    polys["site_id"] = ["S101", "S102"]
    assert burned_structures(_fp(), polys, min_overlap=0.5, tolerance_m=12.0).iloc[0]["polygon_id"] == 102
    polys = _polys(box(-20, -20, -1, 20), box(11, -20, 30, 20))  # 1 m each side
    polys["site_id"] = ["S101", "S102"]
    assert burned_structures(_fp(), polys, min_overlap=0.5, tolerance_m=12.0).iloc[0]["polygon_id"] == 101


def test_polygons_with_named_index():
    polys = _polys(box(-50, -50, 6, 50), index=pd.Index([7], name="pid"))
    row = burned_structures(_fp(), polys).iloc[0]
    assert row["burned"] and row["polygon_id"] == 101


def test_empty_polygons_leave_every_footprint_unburned():
    empty = _polys(box(0, 0, 1, 1)).iloc[:0]
    out = burned_structures(_fp(FOOTPRINT, box(20, 0, 30, 10)), empty, tolerance_m=1.5)
    assert list(out["burned"]) == [False, False]
    assert list(out["burned_fraction"]) == [0.0, 0.0]
    assert list(out["polygon_id"]) == [None, None]


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan])
def test_bad_min_overlap_raises_parameter_error(bad):
    with pytest.raises(ParameterError, match="min_overlap"):
        burned_structures(_fp(), _polys(FOOTPRINT), min_overlap=bad)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_tolerance_raises_parameter_error(bad):
    with pytest.raises(ParameterError, match="tolerance_m"):
        burned_structures(_fp(), _polys(FOOTPRINT), tolerance_m=bad)


def test_output_has_structure_columns_and_one_row_per_footprint_in_order():
    fps = _fp(box(100, 0, 110, 10), FOOTPRINT, box(200, 0, 210, 10), ids=["c", "a", "b"])
    fps.index = [30, 10, 20]
    out = burned_structures(fps, _polys(box(-50, -50, 8, 50)))
    assert list(out.columns) == STRUCTURE_COLUMNS
    assert list(out["structure_id"]) == ["c", "a", "b"]
    assert list(out["burned"]) == [False, True, False]
    assert list(out["burned_fraction"]) == pytest.approx([0.0, 0.8, 0.0])


# --- structures_in_burns: alignment then overlap --------------------------------------------

def test_structures_in_burns_counts_huts_under_a_burn_after_alignment(village, bright_scene):
    centres, radii = village
    burned_ids = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    # The burn is drawn around the true roofs; the footprint layer sits SHIFT off them.
    burn = gpd.GeoSeries([Point(*centres[i]).buffer(radii[i] + 1.0, 64) for i in burned_ids]).union_all()
    polys = _polys(burn)
    table, shift = structures_in_burns(_footprints(centres, radii, *SHIFT), bright_scene, polys)
    assert shift.reliable
    assert sorted(table.loc[table["burned"], "structure_id"]) == burned_ids
    assert (table.loc[table["burned"], "polygon_id"] == 101).all()
    assert list(table.columns[:-1]) == STRUCTURE_COLUMNS and table.crs == CRS
    # unaligned, the same layer misses the burn
    unaligned = burned_structures(_footprints(centres, radii, *SHIFT), polys)
    assert not unaligned["burned"].any()


def test_a_layer_whose_offset_cannot_be_measured_is_counted_with_its_typical_offset_allowed(village, bright_scene):
    """A flat scene shows no huts to align on: the layer is used as given, and the polygons are grown by
    what such a layer is typically off by, so huts a few metres off their burn still count."""
    centres, radii = village
    burned_ids = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    burn = gpd.GeoSeries([Point(*centres[i]).buffer(radii[i], 64) for i in burned_ids]).union_all()
    flat = xr.full_like(bright_scene, 0.2)
    layer = _footprints(centres, radii, 3.0, -4.0)  # 5 m off, as open layers are
    as_given, shift = structures_in_burns(layer, flat, _polys(burn), tolerance_m=1.5)
    assert not shift.reliable and as_given.attrs["tolerance_m"] == 1.5
    assert "no texture to match" in shift.note and "used as given" in shift.note
    assert as_given["burned"].sum() < len(burned_ids)  # half a pixel is not enough for the offset
    allowed, shift = structures_in_burns(layer, flat, _polys(burn), tolerance_m=1.5, unaligned_m=4.0)
    assert not shift.reliable and allowed.attrs["tolerance_m"] == 5.5
    assert sorted(allowed.loc[allowed["burned"], "structure_id"]) == burned_ids
    # A layer that was aligned is not given the allowance: its offset is known
    aligned, shift = structures_in_burns(_footprints(centres, radii, *SHIFT), bright_scene, _polys(burn), tolerance_m=1.5,
                                         unaligned_m=4.0)
    assert shift.reliable and aligned.attrs["tolerance_m"] == 1.5
    with pytest.raises(ParameterError, match="unaligned_m"):
        structures_in_burns(layer, flat, _polys(burn), unaligned_m=-1.0)


def test_the_report_states_the_allowance_for_a_layer_it_could_not_align(village, bright_scene):
    from pipeline.config import Params
    from pipeline.evidence import _structures_report

    centres, radii = village
    burn = gpd.GeoSeries([Point(*centres[0]).buffer(radii[0], 64)]).union_all()
    table, shift = structures_in_burns(_footprints(centres, radii, 3.0, -4.0), xr.full_like(bright_scene, 0.2),
                                       _polys(burn), tolerance_m=1.5, unaligned_m=4.0)
    said = _structures_report(table, shift, "buildings.gpkg", 0, Params(), [], "UTC", RES)
    assert said["tolerance_m"] == 5.5
    assert "lies within 5.5 m of burn polygons (1.5 m for the polygons' pixel edges, and 4 m because the layer's offset" in said["rule"]
    assert said["rule"] in said["statement"] and "used as given" in said["statement"]


def test_settlement_outline_from_footprints_leaves_lone_field_huts_out():
    from shapely.geometry import Point

    from pipeline.stages.structures import settlement_from_footprints

    village = [box(x, y, x + 8, y + 8) for x in range(0, 200, 30) for y in range(0, 200, 30)]  # 49 houses, 22 m lanes
    field_hut = [box(900, 900, 905, 905)]
    footprints = gpd.GeoDataFrame({"structure_id": range(50)}, geometry=village + field_hut, crs="EPSG:32630")
    outline = settlement_from_footprints(footprints)
    assert outline.geom_type == "Polygon" and not outline.interiors  # lanes joined, holes filled
    assert all(outline.contains(Point(x + 4, y + 4)) for x in range(0, 200, 30) for y in range(0, 200, 30))
    assert not outline.intersects(field_hut[0])
    assert 188 * 188 < outline.area < 240 * 240  # hugs the houses, a few metres beyond
    assert settlement_from_footprints(footprints.iloc[:0]) is None


def test_footprint_ids_left_empty_fall_back_to_row_numbers_and_metres_read_as_degrees_warn_nothing(tmp_path, recwarn):
    """A layer whose id column is null everywhere was refused as "ids repeat"; one in metres labelled lon/lat put
    a numpy warning before its one-line refusal. Neither: the row numbers are the ids, and the outlines that project
    to infinities are no building."""
    import warnings

    import geopandas as gpd
    from shapely.geometry import box as square

    from pipeline.readers.vectors import read_footprints

    lonlat = gpd.GeoDataFrame({"structure_id": [None, None, None], "id": ["a", None, "c"]},
                              geometry=[square(-3.6 + k * 1e-4, 14.4, -3.6 + k * 1e-4 + 5e-5, 14.40005) for k in range(3)], crs=4326)
    lonlat.to_file(tmp_path / "empty_ids.geojson", driver="GeoJSON")
    ids = read_footprints(tmp_path / "empty_ids.geojson", "EPSG:32630")["structure_id"].tolist()
    assert ids == ["a", "row 1", "c"]  # the first id column that names anything, rows where it is empty
    metres = gpd.GeoDataFrame({"structure_id": ["x", "y"]}, geometry=[square(248000, 3958000, 248012, 3958012),
                                                                      square(249000, 3959000, 249012, 3959012)], crs=4326)
    metres.to_file(tmp_path / "metres.geojson", driver="GeoJSON")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning from numpy would fail here
        kept = read_footprints(tmp_path / "metres.geojson", "EPSG:32611")
    assert len(kept) == 0


def _burned_share_10m(centres: np.ndarray, burned: list[int], radius: float = 7.0, ss: int = 10) -> xr.DataArray:
    """Each 10 m pixel's burned share over the same ground: compounds ``radius`` m around the burned huts."""
    res, n = 10.0, int(N * RES / 10.0)
    x, y = X0 + res * (np.arange(n) + 0.5), Y0 - res * (np.arange(n) + 0.5)
    sub = (np.arange(ss) + 0.5) / ss - 0.5
    fx, fy = np.meshgrid((x[:, None] + sub * res).ravel(), (y[:, None] + sub * res).ravel())
    burnt = np.zeros_like(fx)
    for cx, cy in centres[burned]:
        burnt[np.hypot(fx - cx, fy - cy) <= radius] = 1.0
    return xr.DataArray(burnt.reshape(n, ss, n, ss).mean(axis=(1, 3)), dims=("y", "x"), coords={"y": y, "x": x})


def test_a_layer_too_fine_for_the_scene_is_placed_on_the_burned_shares(village):
    """10 m pixels show no 2-3 m hut, but they resolve the burned compounds around them to a fraction of a
    pixel: the layer's offset is measured on the burned shares, checked on the two halves, and the
    polygons are then grown by half a pixel only."""
    centres, radii = village
    flat = xr.DataArray(np.full((60, 60), 0.2), dims=("y", "x"),
                        coords={"y": Y0 - 10.0 * (np.arange(60) + 0.5), "x": X0 + 10.0 * (np.arange(60) + 0.5)})
    burned = list(range(0, 60, 2))  # 30 of the 60 compounds, across the whole village
    share = _burned_share_10m(centres, burned)
    polys = _polys(gpd.GeoSeries([Point(*centres[i]).buffer(7.0, 64) for i in burned]).union_all())
    layer = _footprints(centres, radii, *SHIFT)
    table, shift = structures_in_burns(layer, flat, polys, tolerance_m=5.0, unaligned_m=4.0, burned_share=share)
    assert shift.reliable, shift.note
    assert abs(shift.dx_m + SHIFT[0]) < 1.5 and abs(shift.dy_m + SHIFT[1]) < 1.5, shift
    assert "burned shares" in shift.note and table.attrs["tolerance_m"] == 5.0
    assert sorted(table.loc[table["burned"], "structure_id"]) == burned
    # Without the shares the layer is used as given, with the allowance
    as_given, shift = structures_in_burns(layer, flat, polys, tolerance_m=5.0, unaligned_m=4.0)
    assert not shift.reliable and as_given.attrs["tolerance_m"] == 9.0


def test_a_lone_burn_does_not_pull_the_layer_onto_itself(village):
    """Three burned compounds are too few to place a layer of sixty huts: it is used as given, and the
    report says why."""
    centres, radii = village
    flat = xr.DataArray(np.full((60, 60), 0.2), dims=("y", "x"),
                        coords={"y": Y0 - 10.0 * (np.arange(60) + 0.5), "x": X0 + 10.0 * (np.arange(60) + 0.5)})
    share = _burned_share_10m(centres, [0, 1, 2])
    polys = _polys(gpd.GeoSeries([Point(*centres[i]).buffer(7.0, 64) for i in (0, 1, 2)]).union_all())
    table, shift = structures_in_burns(_footprints(centres, radii, *SHIFT), flat, polys, tolerance_m=5.0, unaligned_m=4.0,
                                       burned_share=share)
    assert not shift.reliable and shift.dx_m == 0.0 and shift.dy_m == 0.0
    assert "too few huts beside burns" in shift.note and "used as given" in shift.note
    assert table.attrs["tolerance_m"] == 9.0


def test_a_layer_of_a_few_footprints_is_used_as_given_once_said(village):
    """Under twenty footprints there is no pattern to match, on the texture or on the burns: the note says so once."""
    centres, radii = village
    flat = xr.DataArray(np.full((60, 60), 0.2), dims=("y", "x"),
                        coords={"y": Y0 - 10.0 * (np.arange(60) + 0.5), "x": X0 + 10.0 * (np.arange(60) + 0.5)})
    share = _burned_share_10m(centres, list(range(60)))
    polys = _polys(gpd.GeoSeries([Point(*centres[i]).buffer(7.0, 64) for i in range(12)]).union_all())
    _, shift = structures_in_burns(_footprints(centres[:12], radii[:12], *SHIFT), flat, polys, tolerance_m=5.0,
                                   unaligned_m=4.0, burned_share=share)
    assert not shift.reliable and shift.note == "only 12 footprints: too few to measure their offset; used as given"
