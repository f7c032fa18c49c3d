"""The real-scene path on real fire pairs from ../shared/data/real (skipped where absent)."""

from __future__ import annotations

import pytest

from pipeline.bench import _real_pair, real_cases
from pipeline.config import Params


def test_dry_grass_fire_is_found(shared_data):
    """5 INCIDENT (2024-07-15): dry annual grassland, the cleanest real burn scar in the set.

    Golden range: SOURCE.md gives F1 0.99 for dNBR > 0.1 on the native grid; on our 20 m UTM
    grid burnscan scored Dice 0.968 when this test was written.
    """
    root = shared_data / "real" / "s2-calfire-prepost" / "set_a"
    name = "5_INCIDENT_20240715"
    rows = _real_pair(f"calfire:{name}", *(root / d / f"{name}.tif" for d in ("pre_fire", "post_fire", "masks")),
                      ["blue", "green", "red", "nir", "swir22"], Params(), 20.0)
    ours = next(r for r in rows if r["method"] == "burnscan")
    assert ours["dice"] >= 0.93 and ours["commission"] <= 0.05


def test_every_real_pair_runs_and_is_scored(shared_data):
    rows = real_cases(Params(), shared_data / "real")
    cases = {r["case"] for r in rows}
    assert len([c for c in cases if c.startswith("calfire:")]) == 10 and "chile:whole-image" in cases
    assert {r["method"] for r in rows} == {"burnscan", "fixed_threshold", "two_condition"}
    incomplete = [r for r in rows if "CASCADE" in r["case"]]
    assert incomplete and not any(r["scored"] for r in incomplete)  # never used to score accuracy
    ours = [r for r in rows if r["method"] == "burnscan" and r["scored"]]
    assert len(ours) == 10  # 9 CAL FIRE events and Chile
    assert all(r["tp"] > 0 for r in ours)  # every scored fire is at least partly found
