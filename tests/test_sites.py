"""Burned sites: the part of a burn that cloud hid on its day is a later polygon with its own dates,
counted with the burn it continues; burns the imagery saw apart stay apart."""

from __future__ import annotations

import geopandas as gpd
from shapely.geometry import box

from pipeline.stages.polygons import burn_sites


def _polygons(*rows: tuple[str, int, int, tuple[float, float, float, float]]) -> gpd.GeoDataFrame:
    """(polygon_id, first_seen_index, last_clear_index, box) per polygon, sorted by date as described polygons are."""
    frame = gpd.GeoDataFrame({"polygon_id": [r[0] for r in rows], "first_seen_index": [r[1] for r in rows],
                              "last_clear_index": [r[2] for r in rows]}, geometry=[box(*r[3]) for r in rows],
                             crs="EPSG:32630")
    return frame.sort_values("first_seen_index", kind="stable").reset_index(drop=True)


def test_the_part_of_a_burn_under_cloud_on_its_day_joins_the_burn_it_touches():
    # A burned on scene 2 (clear on 1); B beside it first seen on 3, last clear on 1: cloud on 2.
    frame = _polygons(("A", 2, 1, (0, 0, 12, 12)), ("B", 3, 1, (12, 0, 18, 12)))
    assert burn_sites(frame) == ["SA", "SA"]


def test_a_later_burn_seen_clear_and_unburned_on_the_earlier_date_is_a_site_of_its_own():
    # B was clear on scene 2, when A was first seen: it burned later, whatever it touches.
    frame = _polygons(("A", 2, 1, (0, 0, 12, 12)), ("B", 3, 2, (12, 0, 18, 12)))
    assert burn_sites(frame) == ["SA", "SB"]


def test_a_burn_under_cloud_that_touches_nothing_earlier_is_a_site_of_its_own():
    frame = _polygons(("A", 2, 1, (0, 0, 12, 12)), ("B", 3, 1, (30, 0, 36, 12)))
    assert burn_sites(frame) == ["SA", "SB"]


def test_compounds_split_along_a_wall_stay_two_sites_when_a_later_piece_touches_both():
    # A and C: two compounds of one date, split along the wall between them. B, hidden on that date,
    # touches both, A along 3 m and C along 12 m: it joins C only, and A and C are still two sites.
    frame = _polygons(("A", 2, 1, (0, 0, 12, 6)), ("C", 2, 1, (12, 0, 24, 6)), ("B", 3, 1, (9, 6, 24, 12)))
    assert burn_sites(frame) == ["SA", "SC", "SC"]


def test_a_chain_of_hidden_pieces_stays_with_the_first_burn():
    # Cloud on scenes 2 and 3 over the east: each piece continues the one before.
    frame = _polygons(("A", 2, 1, (0, 0, 12, 12)), ("B", 3, 1, (12, 0, 18, 12)), ("C", 4, 1, (18, 0, 24, 12)))
    assert burn_sites(frame) == ["SA", "SA", "SA"]


def test_polygons_of_one_date_are_never_joined():
    frame = _polygons(("A", 2, 1, (0, 0, 12, 12)), ("B", 2, 1, (12, 0, 18, 12)))
    assert burn_sites(frame) == ["SA", "SB"]
