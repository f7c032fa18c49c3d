"""Clouds and cloud shadows found on scenes that came without a mask (pipeline.stages.sky).

Known answers: a cloud and its shadow painted where the sun puts them are not observed; a burn
(char over soil, white ash over crops), a burn larger than a cloud beside it, a small pale roof
and a shadow on the sun's side are kept as ground seen.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
from scipy import ndimage

from pipeline.model import SceneRecord, has_sky_mask, mask_among
from pipeline.stages.sky import MIN_CLOUD_M2, sun_angles, unflagged_sky

BANDS = ["blue", "green", "red", "nir"]
SOIL = np.array([0.10, 0.15, 0.22, 0.30])
CROPS = np.array([0.04, 0.08, 0.05, 0.35])
CHAR = np.array([0.04, 0.04, 0.05, 0.06])
ASH = np.array([0.20, 0.21, 0.22, 0.23])
PIXEL_M = 3.0
N = 300


def _series(ground: np.ndarray = SOIL, n_scenes: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scenes = np.broadcast_to(ground[None, :, None, None], (n_scenes, 4, N, N)).copy()
    return (scenes + rng.normal(0, 0.004, scenes.shape)).astype(np.float32)


def _cloud(scenes: np.ndarray, t: int, top: int, left: int, size: int = 40, *, shadow_at: tuple[int, int] | None) -> None:
    """A cumulus (0.5 in every band) on scene ``t`` with a thinning edge 4 px wide (+0.06), and its
    shadow (0.4 of the ground, a penumbra of 0.8 around it) at ``shadow_at``."""
    yy, xx = np.mgrid[-4:size + 4, -4:size + 4]
    r2 = (yy - size / 2) ** 2 + (xx - size / 2) ** 2
    body, edge = r2 <= (size / 2) ** 2, (r2 > (size / 2) ** 2) & (r2 <= (size / 2 + 4) ** 2)
    box = scenes[t, :, top - 4:top + size + 4, left - 4:left + size + 4]
    box[:, edge] += 0.06
    box[:, body] = 0.5
    if shadow_at is not None:
        sy, sx = shadow_at
        dark = scenes[t, :, sy - 4:sy + size + 4, sx - 4:sx + size + 4]
        dark[:, edge] *= 0.8
        dark[:, body] *= 0.4


def _screen(scenes: np.ndarray, *, unmasked=None, sun=None) -> np.ndarray:
    unmasked = [True] * len(scenes) if unmasked is None else unmasked
    return unflagged_sky(scenes, np.ones((len(scenes), N, N), bool), bands=BANDS, pixel_m=PIXEL_M, unmasked=unmasked,
                         sun_azimuth=sun)


def test_a_cloud_and_its_shadow_are_not_observed_with_their_soft_edges():
    scenes = _series()
    # sun in the south-east (azimuth 135): the shadow falls to the north-west of the cloud
    _cloud(scenes, 2, 200, 200, shadow_at=(110, 110), size=40)
    clear = _screen(scenes, sun=[135.0] * 3)
    assert clear[:2].all(), "scenes without a cloud lose nothing"
    assert not clear[2, 200:240, 200:240][10:30, 10:30].any(), "the cloud is not observed"
    assert not clear[2, 110:150, 110:150][10:30, 10:30].any(), "its shadow is not observed"
    assert clear[2, 20:80, 20:80].all() and clear[2, 250:, 250:].all(), "the rest of the scene is ground seen"
    assert not clear[2, 200 - 2, 220] and not clear[2, 220, 240 + 2], "the thinning edge goes with the cloud"
    assert not clear[2, 110 - 2, 130], "the penumbra goes with the shadow"
    assert clear[2, 200 - 12, 220] and clear[2, 110 - 12, 130], "ground beyond the edges (4 px and EDGE_M) is seen"
    assert 0.035 < 1 - clear[2].mean() < 0.08


def test_a_scene_that_came_with_its_own_mask_is_left_as_its_mask_says():
    scenes = _series()
    _cloud(scenes, 2, 200, 200, shadow_at=(110, 110))
    clear = _screen(scenes, unmasked=[True, True, False])
    assert clear.all()


def test_burns_are_not_clouds_nor_shadows():
    """Char over bright red soil (the before-scene is brighter in every band than the char after,
    but red, not white), white ash over crops (NIR drops), and a burned area larger than a cloud
    lying where its shadow would: all stay ground seen."""
    soil = _series(SOIL * 2.2)  # bright red soil, 0.22 / 0.33 / 0.48 / 0.66: bright enough, not white (HOT)
    soil[1:, :, 50:150, 50:150] = CHAR[None, :, None, None]
    assert _screen(soil).all()

    crops = _series(CROPS)
    crops[1:, :, 50:150, 50:150] = ASH[None, :, None, None]
    assert _screen(crops).all()

    dense = _series(np.array([0.04, 0.08, 0.05, 0.45]))  # dense crops; the brightest white ash of a complete burn
    dense[1:, :, 50:150, 50:150] = np.array([0.36, 0.36, 0.34, 0.36])[None, :, None, None]
    assert _screen(dense).all(), "bright, white, and far above the crops in the visible: but its NIR fell"

    field = _series()
    field[2, :, 60:200, 60:200] = CHAR[:, None, None]  # a field burned on the cloud's scene, larger than the cloud
    _cloud(field, 2, 220, 220, shadow_at=None, size=40)
    clear = _screen(field, sun=[135.0] * 3)
    assert clear[2, 60:200, 60:200].all(), "the burned field is not the cloud's shadow"
    assert not clear[2, 230:250, 230:250].any(), "the cloud itself is still found"


def test_white_ground_on_every_scene_and_a_thin_veil_are_not_clouds():
    """A concrete apron (0.45 in every band) seen on every scene is ground, on a scene whose gain is 10 %
    higher too: it rises by a gain's share of itself, not by a cloud's. A veil
    raising pale ground by 0.12 in every band on one scene (0.28 in the visible) is thin cloud or haze,
    which the normalisation carries: the ground shows through it."""
    apron = _series()
    apron[:, :, 50:150, 50:150] = 0.45
    apron[2] *= 1.1  # one scene's gain 10 % higher: the apron reads 0.05 brighter in every band
    assert _screen(apron).all()

    veil = _series(np.array([0.14, 0.16, 0.18, 0.24]))
    veil[2, :, 50:150, 50:150] += 0.12
    assert _screen(veil).all()


def test_a_shadow_on_the_suns_side_is_not_the_clouds():
    scenes = _series()
    _cloud(scenes, 2, 110, 110, shadow_at=(200, 200))  # dark patch to the south-east, sun in the south-east
    clear = _screen(scenes, sun=[135.0] * 3)
    assert clear[2, 210:230, 210:230].all(), "a darkening toward the sun is not this cloud's shadow"
    clear = _screen(scenes, sun=None)
    assert not clear[2, 210:230, 210:230].any(), "with the sun unknown, any direction within reach is looked at"


def test_a_pale_roof_smaller_than_a_cloud_is_ground():
    scenes = _series()
    side = 12  # 36 x 36 m, 1296 m2: a large tin roof, under MIN_CLOUD_M2
    assert (side * PIXEL_M) ** 2 < MIN_CLOUD_M2
    scenes[2, :, 100:100 + side, 100:100 + side] = 0.5
    assert _screen(scenes).all()


def test_an_all_cloud_scene_is_not_observed_anywhere():
    """A scene under one cloud from edge to edge (and no shadow in the window): not a view of the ground."""
    scenes = _series()
    scenes[1] = 0.55 + np.random.default_rng(3).normal(0, 0.01, scenes[1].shape)
    clear = _screen(scenes)
    assert not clear[1].any() and clear[[0, 2]].all()


def test_two_scenes_cannot_tell_a_cloud_and_missing_bands_say_nothing():
    """With two scenes, a cloud on one is the same difference as a darkening of the other (a white
    dam under smoke, pale ground that burned): nothing is screened. A third scene that saw the
    ground tells them apart."""
    scenes = _series(n_scenes=3)
    _cloud(scenes, 1, 200, 200, shadow_at=(110, 110))
    assert _screen(scenes[1:]).all(), "a pair is left as it is"
    partly = np.ones((3, N, N), bool)
    partly[0, :, :150] = False  # the third scene saw only the right half
    screened = unflagged_sky(scenes, partly, bands=BANDS, pixel_m=PIXEL_M, unmasked=[True] * 3)
    assert not screened[1, 210:230, 210:230].any(), "where three scenes saw the ground, the cloud is found"
    assert screened[1, 120:140, 120:140].all(), "where two did, its shadow is not claimed"
    three = unflagged_sky(scenes[:, :3], np.ones((3, N, N), bool), bands=BANDS[:3], pixel_m=PIXEL_M, unmasked=[True] * 3)
    assert three.all(), "without the NIR a cloud cannot be told from white ground: nothing is claimed"


def test_which_scenes_have_a_mask_of_their_own():
    def record(**files: str) -> SceneRecord:
        return SceneRecord("s", datetime(2024, 1, 28), "x", "unknown", False, tuple(BANDS), files=files)

    assert not has_sky_mask(record(reflectance="a.tif"))
    assert not has_sky_mask(record(reflectance="a.tif", metadata="a.json"))
    for role in ("udm2", "udm", "scl", "qa_pixel"):
        assert has_sky_mask(record(reflectance="a.tif", **{role: "m.tif"}))
        assert mask_among({"reflectance": "a.tif", role: "m.tif"})  # a catalogue entry's files, as `burnscan scenes` reads them
    assert not mask_among({"reflectance": "a.tif"})


@pytest.mark.parametrize("when, lon, lat, azimuth, elevation", [
    # An independent computation (the Astronomical Almanac's low-precision sun, Michalsky 1988) gave
    # 139.1 / 48.0 for Ogota; the equator at the March equinox at local noon puts the sun overhead.
    (datetime(2024, 1, 28, 10, 38), -3.76, 13.83, 139.1, 48.0),
    (datetime(2024, 3, 20, 12, 7), 0.0, 0.0, None, 89.5),
])
def test_sun_angles(when, lon, lat, azimuth, elevation):
    az, el = sun_angles(lon, lat, when)
    assert el == pytest.approx(elevation, abs=0.6)
    if azimuth is not None:
        assert az == pytest.approx(azimuth, abs=0.6)


# --------------------------------------------------------------------------- a whole series
def _detect(folder, grid):
    from dataclasses import replace

    from pipeline.config import Params
    from pipeline.readers.recognise import load_sources, recognise
    from pipeline.run import detect_burns

    stack, records = load_sources(recognise(folder), grid)
    params = replace(Params(), resolution_m=grid.resolution, margin_m=0.0)
    return detect_burns(stack, records, params=params, loaded_grid=grid, analysis_grid=grid), records


def test_a_series_whose_masks_were_lost_is_dated_as_its_masks_would_date_it(tmp_path):
    """cloud_over_burns: the 31 January cloud hides burns of the 29th; the series is read once with
    its UDM2 files and once without them (a delivery whose masks were lost). Without screening, the
    cloud would be a clear view of unburned ground and those burns would be dated after 31 January,
    a bracket that excludes their true date; screened, every burned pixel's true date lies inside its
    stated bracket, as with the masks."""
    from pipeline.grid import grid_for_bounds
    from pipeline.model import record_positions
    from pipeline.sim.demo import write_scenes
    from pipeline.sim.scenarios import SCENARIOS
    from pipeline.sim.simulate import simulate_village_series

    grid = grid_for_bounds((500000, 1520000, 500720, 1520720), "EPSG:32630", 3.0)
    series = simulate_village_series(grid, seed=7, n_compounds=24, n_burned_first=15, scenario="cloud_over_burns")
    masked, bare = tmp_path / "masked", tmp_path / "bare"
    for folder in (masked, bare):
        folder.mkdir()
        write_scenes(series.scenes, series.grid, folder)
    for udm in bare.glob("*udm2*"):
        udm.unlink()
    cloud_scene = SCENARIOS["cloud_over_burns"].cloud_scene
    truth = np.asarray(series.truth_first_visible)
    udm2 = np.asarray(series.scenes[cloud_scene].udm2)
    cloud = udm2[5] > 0
    # The bodies of cloud and shadow (the UDM2 flags their thinnest edge too, where the ground shows
    # through), moved onto the first scene's pixels as the co-registration moves the scene
    dy, dx = np.subtract(series.scenes[0].true_shift_px, series.scenes[cloud_scene].true_shift_px)
    bodies = [ndimage.shift(ndimage.binary_erosion(udm2[band] > 0, iterations=2).astype(float), (dy, dx), order=1) > 0.99
              for band in (5, 2)]
    hidden = (truth == cloud_scene) & cloud
    assert hidden.sum() > 50, "the case holds burns first visible under the cloud"

    results = {}
    for name, folder in (("masked", masked), ("bare", bare)):
        det, records = _detect(folder, series.grid)
        to_all = record_positions(det.records, records)
        # the truth moved onto the first scene's pixels, as the co-registration moves the scenes
        first_truth = ndimage.shift(truth, series.scenes[to_all[0]].true_shift_px, order=0, mode="constant", cval=-1)
        seen, before = det.dates["first_seen"].values, det.dates["last_clear_before"].values
        burned, called = first_truth >= 0, seen >= 0
        both = burned & called
        first, last = to_all[np.clip(seen, 0, None)], to_all[np.clip(before, 0, None)]
        outside = both & ~((last < first_truth) & (first_truth <= first))
        results[name] = (int(outside.sum()), int(both.sum()), 2 * both.sum() / (burned.sum() + called.sum()))
        if name == "bare":
            clear = det.stack["clear"].values[list(to_all).index(cloud_scene)]
            for body, what in zip(bodies, ("cloud", "shadow")):
                assert clear[body].mean() < 0.02, f"{clear[body].mean():.1%} of the {what} read as a view of the ground"
    (out_m, _, dice_m), (out_b, n_b, dice_b) = results["masked"], results["bare"]
    assert out_b <= max(out_m, 0.01 * n_b), f"{out_b} of {n_b} burned pixels dated outside their bracket (with masks: {out_m})"
    # measured: 0.964 with the masks, 0.969 screened, 0.958 read unscreened
    assert dice_b >= dice_m - 0.005, f"Dice {dice_b:.3f} without the masks, {dice_m:.3f} with them"


def test_the_report_says_who_flagged_each_scenes_clouds(small_run):
    """The demo's scenes come with their UDM2: the scene table says so, and no statement claims a screening."""
    report = (small_run.run_dir / "report.md").read_text(encoding="utf-8")
    rows = [line for line in report.splitlines() if line.startswith("| ") and "_sim_d" in line and "`" in line]
    assert rows and all("| UDM2 (delivered) |" in row for row in rows)
    assert "screened it for clouds" not in report
    scenes = json.loads((small_run.run_dir / "report.json").read_text(encoding="utf-8"))["scenes"]
    assert {s["cloud_mask"] for s in scenes} == {"UDM2 (delivered)"}


def test_a_report_never_calls_a_maskless_scene_screened_when_it_was_not():
    """Two scenes, or no blue band: nothing was screened, and each statement that rests on such a
    scene says so; three scenes with the four bands: screened, and said so."""
    from pipeline.outputs.report import _cloud_checked, _screened_words

    def plain(bands: tuple[str, ...]) -> SceneRecord:
        return SceneRecord("p", datetime(2024, 1, 28), "x", "unknown", False, bands, files={"reflectance": "p.tif"})

    four, three = plain(tuple(BANDS)), plain(("green", "red", "nir"))
    assert _cloud_checked(four, 3) and "screened it" in _screened_words(four, 3)
    for record, n in ((four, 2), (three, 3)):
        assert not _cloud_checked(record, n)
        assert "would read as ground seen" in _screened_words(record, n)
    udm = SceneRecord("u", datetime(2024, 1, 28), "x", "PS2", False, tuple(BANDS), files={"reflectance": "u.tif", "udm2": "m.tif"})
    assert _cloud_checked(udm, 2) and _screened_words(udm, 2) == ""


@pytest.mark.parametrize("n_scenes", [2, 3, 8, 9, 30])
def test_the_reference_is_the_median_of_what_the_other_scenes_saw(n_scenes):
    """The same numbers as numpy.nanmedian, with fewer than two observations read as no reference,
    for a short series (the min/max network) and a long one (a sort)."""
    import warnings

    from pipeline.stages.sky import _median_of_seen

    rng = np.random.default_rng(n_scenes)
    values = rng.random((n_scenes, 4, 40, 40)).astype(np.float32)
    values[rng.random(values.shape) < 0.3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(values, axis=0)
    expected[np.isfinite(values).sum(axis=0) < 2] = np.nan
    assert np.array_equal(_median_of_seen(values, at_least=2), expected.astype(np.float32), equal_nan=True)


def test_the_bench_reads_the_simulated_scenes_without_their_masks_when_asked(small_run):
    """`burnscan bench --without-masks`: each Planet-like scene is described and loaded as if its UDM2 were lost."""
    from pipeline.bench.accuracy import _without_mask
    from pipeline.readers.recognise import recognise

    sources = recognise(small_run.outcome.demo_folder)
    assert sources and all(s.files.udm2 is not None for s in sources)
    bare = [_without_mask(s) for s in sources]
    assert all(s.files.udm2 is None for s in bare)
    assert not any(mask_among(s.describe().files) for s in bare)
    assert all(mask_among(s.describe().files) for s in sources)
