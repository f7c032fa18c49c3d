"""The real-scene path on real fire pairs from ../shared/data/real (skipped where absent)."""

from __future__ import annotations

import pytest

import numpy as np

from pipeline.bench.accuracy import _real_pair, real_cases
from pipeline.config import Params

from factories import SHARED_DATA


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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["5-4_POTTERS__20200817", "66_20230515", "68_20210818"])
def test_burn_mask_is_within_two_points_of_fixed_dnbr(shared_data, name):
    """The events where the mask fell furthest below dNBR > 0.1 (Dice 0.048, 0.045 and 0.021 below):
    a lightly burned rim peeled as if half burned (Potters), a low-severity drop with positive NBR
    afterwards seeding browned vegetation (68). The target of the benchmark: never more than 0.02
    below. Gaps when this test was written: -0.005, +0.010, +0.087."""
    root = shared_data / "real" / "s2-calfire-prepost" / "set_a"
    rows = _real_pair(f"calfire:{name}", *(root / d / f"{name}.tif" for d in ("pre_fire", "post_fire", "masks")),
                      ["blue", "green", "red", "nir", "swir22"], Params(), 20.0)
    dice = {r["method"]: r["dice"] for r in rows}
    assert dice["burnscan"] - dice["fixed_threshold"] >= -0.02, dice


@pytest.fixture(scope="module")
def real_rows() -> list[dict]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present: real-data tests need ../shared/data beside the project")
    return real_cases(Params(), SHARED_DATA / "real")


@pytest.mark.slow
def test_every_real_pair_runs_and_is_scored(real_rows):
    rows = real_rows
    cases = {r["case"] for r in rows}
    assert len([c for c in cases if c.startswith("calfire:")]) == 10 and {"chile:whole-image", "chile:label-window"} <= cases
    assert {r["method"] for r in rows} == {"burnscan", "burnscan_extent", "fixed_threshold", "two_condition"}
    incomplete = [r for r in rows if "CASCADE" in r["case"]]
    assert incomplete and not any(r["scored"] for r in incomplete)  # never used to score accuracy
    ours = [r for r in rows if r["method"] == "burnscan" and r["scored"]]
    assert len(ours) == 10  # 9 CAL FIRE events and Chile's label window
    assert all(r["tp"] > 0 for r in ours)  # every scored fire is at least partly found


@pytest.mark.slow
def test_burned_extent_beats_the_fixed_threshold_on_average(real_rows):
    """The references are fire perimeters: the burned extent is the product to compare.

    Golden range: when this test was written, the extent's mean Dice over the nine scored CAL
    FIRE events was 0.802 and the fixed dNBR > 0.1 threshold's 0.686 on the same grid; it beat
    the threshold on 5 of the 9 (not on Potters, 5 Incident, 66 and 68).
    """
    scored = [r for r in real_rows if r["scored"] and r["case"].startswith("calfire:")]
    dice = {m: np.array([r["dice"] for r in scored if r["method"] == m]) for m in ("burnscan_extent", "fixed_threshold")}
    assert len(dice["burnscan_extent"]) == 9
    assert dice["burnscan_extent"].mean() >= 0.78
    assert dice["burnscan_extent"].mean() - dice["fixed_threshold"].mean() >= 0.08
    assert (dice["burnscan_extent"] > dice["fixed_threshold"]).sum() >= 5


@pytest.mark.slow
def test_real_fire_targets_are_met(real_rows):
    """The benchmark's real-fire targets: burned extent mean Dice >= 0.82 over the scored CAL FIRE
    events, and on every one of them the burn mask at most 0.02 below dNBR > 0.1 (0.831 and a worst
    gap of -0.005, Potters, when written). The summary line says so."""
    scored = [r for r in real_rows if r["scored"] and r["case"].startswith("calfire:")]
    by = {(r["case"], r["method"]): r["dice"] for r in scored}
    cases = sorted({r["case"] for r in scored})
    assert len(cases) == 9
    assert np.mean([by[c, "burnscan_extent"] for c in cases]) >= 0.82
    gaps = {c: by[c, "burnscan"] - by[c, "fixed_threshold"] for c in cases}
    assert min(gaps.values()) >= -0.02, gaps
    from pipeline.bench.accuracy import _real_lines  # after the figures: they are the target

    lines = _real_lines(real_rows)
    assert any("within 0.02 on every event" in line for line in lines)
    assert all(any(line.startswith(c) for line in lines) for c in cases)  # one side-by-side row per event


def test_the_headline_area_is_measured_against_every_scored_perimeter(real_rows):
    """What a report on a real wildfire says its area is (the burned fractions' sum), beside the mask's pixels, against
    the reference's area: measured on every scored event and said in one line, whatever it shows."""
    from pipeline.bench.accuracy import _real_lines

    masks = [r for r in real_rows if r["scored"] and r["method"] == "burnscan" and r["case"].startswith("calfire:")]
    assert len(masks) == 9 and all(r["reference_ha"] > 0 and r["pixels_ha"] > 0 for r in masks)
    pixel_ha = 20.0 * 20.0 / 1e4
    for r in masks:  # the pixels' area is the mask scored against the reference, and the reference its own pixels
        assert r["pixels_ha"] == pytest.approx((r["tp"] + r["fp"]) * pixel_ha, abs=1e-3)
        assert r["reference_ha"] == pytest.approx((r["tp"] + r["fn"]) * pixel_ha, abs=1e-3)
    line = next(line for line in _real_lines(real_rows) if line.startswith("real fires, burned area by burned fraction"))
    median = float(np.median([r["fraction_ha"] / r["reference_ha"] for r in masks]))
    assert f"on 9 scored events: median {median:.2f}" in line
    assert all(r["case"].split(":", 1)[1] in line for r in masks)


@pytest.mark.slow
def test_chile_is_scored_where_it_is_labelled(real_rows):
    """The Chile label covers 11 x 17 pixels of a 387 x 309 image: only that window can be scored."""
    window = next(r for r in real_rows if r["case"] == "chile:label-window" and r["method"] == "burnscan")
    whole = next(r for r in real_rows if r["case"] == "chile:whole-image" and r["method"] == "burnscan")
    assert window["tp"] + window["fn"] == whole["tp"] + whole["fn"]  # all of the label is inside the window
    # Most of the whole image's "false" burns are unlabelled ground: 28 of 630 when written; 35 of 169
    # since seeds on NBR must look like char or a drop beyond low severity (fewer burns called
    # across the unlabelled image, so the share inside the window rose).
    assert window["fp"] < 0.25 * whole["fp"]
    assert window["dice"] >= 0.8  # 0.839 when written, 0.816 with the rim compared with its neighbours
