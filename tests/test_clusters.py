"""Clusters of a wide-area search: a burned village (many compound-sized patches) ranks above fires."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import Polygon, box

from pipeline.stages.clusters import FIRE_LIKE, SETTLEMENT_LIKE, cluster_burns, score_search

_CRS = "EPSG:32630"
_TIMES = ["2024-01-27T10:38:00Z", "2024-01-28T10:38:00Z", "2024-02-01T10:38:00Z"]
_X, _Y = 400000.0, 1530000.0


def _frame(geoms: list, first: list[int]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"first_seen_index": first, "last_clear_index": [f - 1 for f in first]},
                             geometry=geoms, crs=_CRS)
    frame["area_m2"] = frame.geometry.area
    return frame


def _village(x0: float, y0: float, n_side: int, first: int) -> tuple[list, list[int]]:
    """Compound burns 18 x 18 m on a 30 m mesh (lanes 12 m): each its own patch."""
    geoms = [box(x0 + 30 * i, y0 + 30 * j, x0 + 30 * i + 18, y0 + 30 * j + 18) for i in range(n_side) for j in range(n_side)]
    return geoms, [first] * len(geoms)


def _burns() -> gpd.GeoDataFrame:
    small_village, f1 = _village(_X, _Y, 3, 1)                     # 9 compounds, 0.29 ha
    big_village, f2 = _village(_X + 2000, _Y, 6, 2)                # 36 compounds, 1.17 ha
    bush = [Polygon([(_X, _Y + 3000), (_X + 600, _Y + 3100), (_X + 500, _Y + 3500), (_X - 100, _Y + 3400)])]  # ~22 ha
    specks = [box(_X + 620 + 20 * i, _Y + 3100, _X + 630 + 20 * i, _Y + 3110) for i in range(3)]  # at the scar's edge
    field = [box(_X + 4000, _Y + 3000, _X + 4150, _Y + 3100)]       # 1.5 ha stubble burn
    geoms = small_village + big_village + bush + specks + field
    return _frame(geoms, f1 + f2 + [1] + [1, 1, 1] + [2])


def test_villages_rank_above_larger_fires_and_are_called_settlement_like():
    clusters = cluster_burns(_burns(), times=_TIMES)
    assert len(clusters) == 4
    assert list(clusters["kind"]) == [SETTLEMENT_LIKE, SETTLEMENT_LIKE, FIRE_LIKE, FIRE_LIKE]
    assert list(clusters["n_patches"]) == [36, 9, 4, 1]  # the specks join the bush scar, within 60 m
    assert clusters.iloc[0]["burned_ha"] == pytest.approx(36 * 18 * 18 / 1e4, abs=1e-3)
    assert clusters.iloc[2]["burned_ha"] > clusters.iloc[0]["burned_ha"]  # larger, yet ranked below
    assert clusters.iloc[0]["first_seen"] == _TIMES[2] and clusters.iloc[0]["last_clear_before"] == _TIMES[1]
    assert list(clusters["rank"]) == [1, 2, 3, 4]
    assert -3.95 < clusters.iloc[0]["centre_lon"] < 0 and 13 < clusters.iloc[0]["centre_lat"] < 14.5


def test_a_lone_compound_sized_burn_is_not_a_village():
    clusters = cluster_burns(_frame([box(_X, _Y, _X + 15, _Y + 15)], [1]), times=_TIMES)
    assert clusters.iloc[0]["kind"] == FIRE_LIKE and clusters.iloc[0]["settlement_score"] == pytest.approx(0.2)


def test_search_score_fails_when_a_fire_outranks_a_village_or_an_unburned_village_is_listed():
    clusters = cluster_burns(_burns(), times=_TIMES)
    sites = gpd.GeoDataFrame(
        {"site_id": ["v1", "v2", "v3", "bush", "field"],
         "kind": ["village_burned", "village_burned", "village_unburned", "bush_fire", "field_fire"],
         "first_visible_index": [1, 2, -1, 1, 2]},
        geometry=[box(_X - 20, _Y - 20, _X + 100, _Y + 100), box(_X + 1980, _Y - 20, _X + 2200, _Y + 200),
                  box(_X + 6000, _Y, _X + 6300, _Y + 300),
                  box(_X - 100, _Y + 3000, _X + 600, _Y + 3500), box(_X + 4000, _Y + 3000, _X + 4150, _Y + 3100)],
        crs=_CRS)
    good = score_search(clusters, sites)
    assert good["all_villages_found"] and good["villages_above_fires"] and good["no_unburned_village"]
    assert good["dated_right"] == 2
    listed = sites.copy()
    listed.loc[2, "geometry"] = box(_X + 4000, _Y + 3000, _X + 4100, _Y + 3050)  # an "unburned" village under the field burn
    assert not score_search(clusters, listed)["no_unburned_village"]
    demoted = clusters.copy()
    demoted["rank"] = [3, 2, 1, 4]
    assert not score_search(demoted, sites)["villages_above_fires"]
    missed = sites.copy()
    missed.loc[0, "geometry"] = box(_X + 9000, _Y, _X + 9100, _Y + 100)
    assert not score_search(clusters, missed)["all_villages_found"]
