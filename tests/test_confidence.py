"""Known-answer tests for the confidence tiers: each rule, and the reasons written for it."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box

from pipeline.stages.confidence import confidence_tiers
from pipeline.stages.coregister import ShiftEstimate
from pipeline.stages.threshold import ThresholdInfo

CRS = "EPSG:32630"
X = np.arange(40) * 10.0 + 5.0  # 10 m pixel centres, 0..400 m
Y = 400.0 - (np.arange(40) * 10.0 + 5.0)  # north-up
SCENES = ["S0", "S1", "S2"]
INFO = ThresholdInfo(background=0.02, noise_sigma=0.01, seed_threshold=0.06, grow_threshold=0.04,
                     n_patches=1, n_pixels=100)
STRONG = 0.12  # (0.12 - 0.02) / 0.01 = 10 sigmas
WEAK = 0.06  # 4 sigmas


def _polys(index=None, **columns) -> gpd.GeoDataFrame:
    """One burn at 150-250 m first seen on S1, last clear before on S0; ``columns`` override."""
    data = {"polygon_id": [1], "first_seen_index": [1], "last_clear_index": [0], "mean_index_change": [STRONG],
            "confirmed": [True]}
    data.update({k: v if isinstance(v, list) else [v] for k, v in columns.items()})
    n = len(data["polygon_id"])
    data = {k: v * n if len(v) == 1 else v for k, v in data.items()}
    geoms = [box(150 + 500 * i, 150, 250 + 500 * i, 250) for i in range(n)]
    return gpd.GeoDataFrame(data, geometry=geoms, crs=CRS, index=index)


def _clear() -> xr.DataArray:
    return xr.DataArray(np.ones((3, X.size, Y.size), dtype=bool), dims=("time", "y", "x"),
                        coords={"time": np.arange(3), "y": Y, "x": X})


def _shifts(*unreliable: int) -> list[ShiftEstimate]:
    return [ShiftEstimate(0.0, 0.0, reliable=i not in unreliable) for i in range(3)]


def _fires(polygon_id: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"polygon_id": [polygon_id], "acquired_utc": [pd.Timestamp("2023-03-02 10:30", tz="UTC")],
                         "satellite": ["N20"], "confidence": ["nominal"], "distance_m": [120.0]})


def _tiers(polygons, *, shifts=None, clear=None, fire_matches=None) -> pd.DataFrame:
    return confidence_tiers(polygons, thresholds=[INFO] * 3, shifts=shifts or _shifts(),
                            clear=_clear() if clear is None else clear, scene_ids=SCENES, fire_matches=fire_matches)


def test_persistent_registered_clear_strong_is_high():
    out = _tiers(_polys()).iloc[0]
    assert out["tier"] == "high"
    assert "+ strong change: 10.0 noise sigmas" in out["tier_reasons"]
    assert "+ both scenes co-registered reliably" in out["tier_reasons"]
    assert out["clear_around"] == 1.0 and out["n_fire_detections"] == 0


def test_persistent_but_weak_without_fire_is_medium():
    out = _tiers(_polys(mean_index_change=WEAK), fire_matches=_fires(polygon_id=99)).iloc[0]
    assert out["tier"] == "medium"
    assert "- change 4.0 noise sigmas above the background (strong from 8)" in out["tier_reasons"]


def test_weak_unconfirmed_without_fire_is_low():
    out = _tiers(_polys(mean_index_change=WEAK, confirmed=False)).iloc[0]
    assert out["tier"] == "low"
    assert "- not yet confirmed: no later clear scene shows it" in out["tier_reasons"]


def test_strong_registered_but_unconfirmed_is_medium_only_with_an_nbr_drop():
    """Seen once, a strong darkening of four bands may be an unflagged cloud shadow; an NBR drop is char's own."""
    from pipeline.stages.spectral import FIRE_LIKE, NBR_JUDGED, REASONS

    out = _tiers(_polys(polygon_id=[1, 2, 3], confirmed=False, spectral_test="fire-like",
                        spectral_reason=[REASONS[FIRE_LIKE], REASONS[NBR_JUDGED], REASONS[FIRE_LIKE]]),
                 fire_matches=_fires(polygon_id=3))
    assert list(out["tier"]) == ["low", "medium", "medium"]
    assert "- seen on one scene only, and without an NBR drop a strong darkening is also what an unflagged cloud shadow gives" \
        in out["tier_reasons"].iloc[0]
    assert "unflagged cloud shadow" not in out["tier_reasons"].iloc[1] + out["tier_reasons"].iloc[2]
    assert _tiers(_polys(confirmed=False)).iloc[0]["tier"] == "low"  # not tested: nothing sets it apart from a shadow


def test_strong_unconfirmed_on_unregistered_pair_is_low():
    assert _tiers(_polys(confirmed=False), shifts=_shifts(0)).iloc[0]["tier"] == "low"


def test_weak_unconfirmed_with_fire_match_is_medium():
    polys = _polys(polygon_id=[1, 2], mean_index_change=WEAK, confirmed=False)
    out = _tiers(polys, fire_matches=_fires(polygon_id=1))
    assert list(out["tier"]) == ["medium", "low"]  # the fire near polygon 1 says nothing of polygon 2
    assert list(out["n_fire_detections"]) == [1, 0]


def test_persistent_registered_clear_weak_with_fire_is_high():
    out = _tiers(_polys(mean_index_change=WEAK), fire_matches=_fires()).iloc[0]
    assert out["tier"] == "high"
    assert ("+ 1 active-fire detection(s) in its date bracket, the first by N20 at 2023-03-02 10:30 UTC, "
            "120 m away (nominal confidence)") in out["tier_reasons"]


def test_unreliable_before_scene_blocks_high_and_is_named():
    out = _tiers(_polys(), shifts=_shifts(0)).iloc[0]
    assert out["tier"] == "medium"
    assert "- co-registration of S0 unreliable" in out["tier_reasons"]


def test_unreliable_scene_outside_the_bracket_does_not_block_high():
    out = _tiers(_polys(), shifts=_shifts(2)).iloc[0]
    assert out["tier"] == "high"
    assert "S2" not in out["tier_reasons"]


def test_cloud_around_polygon_on_one_scene_blocks_high_and_reports_share():
    clear = _clear()
    clear[0] = clear[0].where(clear["x"] >= 200, False)  # west half of the 16x16 px surroundings clouded on S0
    out = _tiers(_polys(), clear=clear).iloc[0]
    assert out["tier"] == "medium"
    assert out["clear_around"] == pytest.approx(0.5)
    assert "- only 50% of the ground around it observed on both scenes" in out["tier_reasons"]


def test_cloud_far_from_polygon_does_not_block_high():
    clear = _clear()
    clear[0] = clear[0].where(clear["x"] < 300, False)  # clouds beyond the 30 m surroundings
    out = _tiers(_polys(), clear=clear).iloc[0]
    assert out["tier"] == "high" and out["clear_around"] == 1.0


def test_analyst_rejection_overrides_a_high_polygon():
    polys = _polys(review="rejected", review_by="ana", review_reason="cloud shadow")
    out = _tiers(polys).iloc[0]
    assert out["tier"] == "rejected"
    assert out["tier_reasons"].startswith("rejected by analyst ana: cloud shadow; ")


def test_analyst_confirmation_makes_a_weak_unconfirmed_polygon_high():
    polys = _polys(mean_index_change=WEAK, confirmed=False, review="confirmed", review_by="ana", review_reason="")
    out = _tiers(polys).iloc[0]
    assert out["tier"] == "high"
    assert out["tier_reasons"].startswith("confirmed by analyst ana; ")


def test_unreviewed_polygon_beside_reviewed_ones_keeps_machine_tier():
    polys = _polys(polygon_id=[1, 2], mean_index_change=WEAK, confirmed=False, review=["rejected", None],
                   review_by=["ana", None], review_reason=["smoke", None])
    assert list(_tiers(polys)["tier"]) == ["rejected", "low"]


def test_change_snr_is_mean_minus_background_over_noise():
    out = _tiers(_polys(mean_index_change=0.0937)).iloc[0]
    assert out["change_snr"] == pytest.approx((0.0937 - 0.02) / 0.01, abs=0.005)


def test_without_fire_archive_no_fire_sentence():
    reasons = _tiers(_polys(), fire_matches=None).iloc[0]["tier_reasons"]
    assert "active-fire" not in reasons


def test_with_empty_fire_table_says_no_detection_is_not_evidence():
    empty = _fires().iloc[:0]
    out = _tiers(_polys(), fire_matches=empty).iloc[0]
    assert "- no active-fire detection in its date bracket (not evidence of no fire)" in out["tier_reasons"]
    assert out["n_fire_detections"] == 0


def test_output_is_indexed_like_polygons():
    polys = _polys(index=[10, 20], polygon_id=[1, 2])
    out = _tiers(polys)
    assert list(out.index) == [10, 20]
    assert list(out.columns) == ["tier", "tier_reasons", "change_snr", "clear_around", "n_fire_detections"]
