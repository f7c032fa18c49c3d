"""Burns one or two pixels across on a 10 or 20 m grid (stages/sharpen.py, the severity-scale rim in
stages/threshold.py): the sensor's blur is undone on the burned shares, and such a burn's outline
follows its shares, while a wildfire's scorched canopy keeps its rim on the severity scale."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from pipeline.stages.sharpen import undo_blur
from pipeline.stages.threshold import burn_mask

SUPERSAMPLE = 10


def _village(seed: int, size: int = 64) -> np.ndarray:
    """True burned cover of a 10 m grid: compounds 12-25 m across, anywhere on the sub-pixel grid."""
    rng = np.random.default_rng(seed)
    fine = np.zeros((size * SUPERSAMPLE, size * SUPERSAMPLE), bool)
    for _ in range(40):
        h, w = rng.integers(12, 26, 2)  # metres, = fine pixels at 1 m
        y, x = rng.integers(20, size * SUPERSAMPLE - 50, 2)
        fine[y:y + h, x:x + w] = True
    return fine.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def _read(cover: np.ndarray, seed: int, noise: float = 0.03) -> np.ndarray:
    """The burned shares as unmixed from a scene whose PSF is a Gaussian of 0.5 px beyond the pixel's square."""
    return ndimage.gaussian_filter(cover, 0.5) + np.random.default_rng(seed).normal(0, noise, cover.shape)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_undoing_the_blur_brings_compounds_two_pixels_across_back_towards_their_outlines():
    cover = _village(1)
    read = _read(cover, 2)
    restored = undo_blur(read, 0.5)
    near = ndimage.binary_dilation(cover > 0, iterations=2)  # the compounds and their surroundings
    error_read = float(np.abs(np.clip(read, 0, 1) - cover)[near].mean())
    error_restored = float(np.abs(restored - cover)[near].mean())
    assert error_restored < 0.75 * error_read, (error_read, error_restored)
    assert np.nanmin(restored) >= 0.0 and np.nanmax(restored) <= 1.0


def test_undoing_the_blur_keeps_a_flat_field_unfitted_pixels_and_a_zero_blur_as_they_are():
    flat = np.full((12, 12), 0.3)
    assert np.allclose(undo_blur(flat, 0.5), 0.3)
    holed = flat.copy()
    holed[4, 4] = np.nan
    assert np.isnan(undo_blur(holed, 0.5)[4, 4]) and np.isfinite(undo_blur(holed, 0.5)).sum() == 143
    read = _read(_village(3), 4)
    assert np.array_equal(undo_blur(read, 0.0), read)


def test_compounds_two_pixels_across_on_a_severity_scale_are_outlined_by_their_burned_share():
    # A Sentinel-2 village at 10 m: dNBR in proportion to the burned share, both blurred by the PSF.
    cover = _village(5)
    read = _read(cover, 6)
    dnbr = 0.6 * ndimage.gaussian_filter(cover, 0.5) + np.random.default_rng(7).normal(0, 0.01, cover.shape)
    truth = cover >= 0.5
    kwargs = {"burn_level": 0.1, "pixel_area_m2": 100.0, "local_rim_contrast": True}
    by_share, _ = burn_mask(xr.DataArray(dnbr, dims=("y", "x")), fraction=read, **kwargs)
    by_severity, _ = burn_mask(xr.DataArray(dnbr, dims=("y", "x")), **kwargs)
    as_read, _ = burn_mask(xr.DataArray(dnbr, dims=("y", "x")), fraction=read, psf_sigma_px=0.0, **kwargs)
    dice_share, dice_severity, dice_read = (_dice(m.values, truth) for m in (by_share, by_severity, as_read))
    assert dice_share >= 0.9, (dice_share, dice_severity, dice_read)
    assert dice_share > dice_severity + 0.05 and dice_share > dice_read + 0.05, (dice_share, dice_severity, dice_read)


def test_a_scorched_canopy_with_a_core_keeps_its_rim_on_the_severity_scale():
    # A wildfire at 20 m: a large burn of scorched canopy (never more than 0.45 char or ash), dNBR
    # falling off towards its edges. Its outline is the severity scale's, shares given or not.
    yy, xx = np.mgrid[:60, :60]
    r = np.hypot(yy - 30, xx - 30)
    dnbr = np.clip(0.5 - 0.02 * np.maximum(r - 8, 0), 0, None) + np.random.default_rng(8).normal(0, 0.01, r.shape)
    share = np.clip(0.45 - 0.02 * np.maximum(r - 8, 0), 0, None)
    kwargs = {"burn_level": 0.1, "pixel_area_m2": 400.0, "local_rim_contrast": True}
    with_share, _ = burn_mask(xr.DataArray(dnbr, dims=("y", "x")), fraction=share, **kwargs)
    without, _ = burn_mask(xr.DataArray(dnbr, dims=("y", "x")), **kwargs)
    assert without.values.sum() > 300
    assert np.array_equal(with_share.values, without.values)


def _partly_caught_village(seed: int, size: int = 80) -> np.ndarray:
    """True burned cover of a 3 m grid: 30 partly caught compounds (blobs 5-9 m across) and 4 whole ones 15-20 m across."""
    rng = np.random.default_rng(seed)
    fine = np.zeros((size * SUPERSAMPLE, size * SUPERSAMPLE), bool)  # 0.3 m fine pixels
    yy, xx = np.mgrid[:size * SUPERSAMPLE, :size * SUPERSAMPLE]
    for _ in range(30):
        r = rng.uniform(8, 15)
        cy, cx = rng.uniform(40, size * SUPERSAMPLE - 40, 2)
        fine |= (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    for _ in range(4):
        h, w = rng.integers(50, 67, 2)
        y, x = rng.integers(40, size * SUPERSAMPLE - 110, 2)
        fine[y:y + h, x:x + w] = True
    return fine.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def test_partly_caught_compounds_on_a_3_m_grid_are_outlined_by_their_shares_with_the_blur_undone():
    # PlanetScope: NIR drop and burned share both blurred; the whole compounds have cores and are cut
    # as before, the small burns without one on their shares with the blur undone.
    counts = {0.5: np.zeros(3), 0.0: np.zeros(3)}
    for seed in (1, 2, 3, 4):
        cover = _partly_caught_village(seed)
        blurred = ndimage.gaussian_filter(cover, 0.5)
        read = blurred + np.random.default_rng(seed + 10).normal(0, 0.03, cover.shape)
        delta = 0.25 * blurred + np.random.default_rng(seed + 20).normal(0, 0.006, cover.shape)
        truth = cover >= 0.5
        for psf in counts:
            mask, _ = burn_mask(xr.DataArray(delta, dims=("y", "x")), fraction=read, burn_level=0.08, pixel_area_m2=9.0,
                                min_area_m2=20.0, psf_sigma_px=psf)
            m = mask.values
            counts[psf] += [(m & truth).sum(), (m & ~truth).sum(), (~m & truth).sum()]
    dice = {psf: 2 * tp / (2 * tp + fp + fn) for psf, (tp, fp, fn) in counts.items()}
    assert dice[0.5] >= 0.97 and dice[0.5] > dice[0.0] + 0.008, dice


def test_burns_on_their_own_windows_are_cut_exactly_as_on_the_whole_chunk(monkeypatch):
    # A sparse 10 m chunk: the second outline runs on the burns' windows packed side by side; forced
    # onto the whole chunk instead, every pixel comes out the same.
    import pipeline.stages.threshold as threshold

    cover = np.zeros((320, 320))
    for k, (y, x) in enumerate([(20, 30), (40, 250), (150, 150), (152, 155), (280, 40), (290, 290)]):
        village = _village(k + 11, size=64)
        cover[y:y + 24, x:x + 24] = village[20:44, 20:44]
    read = _read(cover, 12)
    dnbr = 0.6 * ndimage.gaussian_filter(cover, 0.5) + np.random.default_rng(13).normal(0, 0.01, cover.shape)
    burns = ndimage.gaussian_filter(cover, 0.5) > 0.25
    windows = threshold._BurnWindows(burns, 9)
    assert not windows.whole and windows.packed_shape[0] * windows.packed_shape[1] < 0.5 * cover.size
    # The blur undone on the windows is the blur undone on the chunk, around every burn.
    on_windows = windows.unpack(undo_blur(windows.pack(read, np.nan), 0.5), np.nan)
    near = ndimage.binary_dilation(burns, structure=np.ones((3, 3), bool))
    assert np.allclose(on_windows[near], undo_blur(read, 0.5)[near], atol=1e-9)
    masks = []
    for whole in (False, True):
        if whole:
            monkeypatch.setattr(threshold._BurnWindows, "__init__", _whole_chunk)
        for severity in (True, False):
            mask, _ = burn_mask(xr.DataArray(dnbr if severity else dnbr / 2.4, dims=("y", "x")), fraction=read,
                                burn_level=0.1 if severity else 0.08, pixel_area_m2=100.0 if severity else 9.0,
                                local_rim_contrast=severity)
            masks.append(mask.values)
    assert masks[0].sum() > 30 and masks[1].sum() > 30
    assert np.array_equal(masks[0], masks[2]) and np.array_equal(masks[1], masks[3])


@pytest.mark.parametrize("seed", range(8))
def test_the_dates_rule_on_the_burns_windows_is_the_whole_chunks_outline(seed, monkeypatch):
    # The date's rule (the rim by burned share) runs on the burns' windows where none is cut by the
    # chunk's edge: villages inside the chunk, one on its edge (odd seeds), and a ring of burned compounds
    # around a courtyard with a burn in it (a group inside another's window). The outline must be the
    # one drawn on the whole chunk, pixel for pixel.
    import pipeline.stages.threshold as threshold

    rng = np.random.default_rng(seed)
    cover = np.zeros((300, 300))
    places = [tuple(rng.integers(14, 300 - 24 - 14, 2)) for _ in range(5)]  # every window inside the chunk
    if seed % 2:
        places[0] = (0, places[0][1])  # a village on the chunk's edge: its window is cut short
    for k, (y, x) in enumerate(places):
        cover[y:y + 24, x:x + 24] = np.maximum(cover[y:y + 24, x:x + 24], _village(100 * seed + k, size=64)[20:44, 20:44])
    if seed % 4 == 0:  # a burned ring 3 px wide around a 20 px courtyard, a small burn in its middle
        cover[60:86, 100:126] = 1.0
        cover[63:83, 103:123] = 0.0
        cover[71:75, 111:115] = 1.0
    read = _read(cover, seed + 50)
    delta = 0.25 * ndimage.gaussian_filter(cover, 0.5) + rng.normal(0, 0.006, cover.shape)
    if seed % 2:  # a burn on the edge whose first row has no share and changed little: the chunk's
        x = 150 + seed  # edge reads as burned beyond it (not a rim), a window's edge would not
        delta[:6, x:x + 8] = 0.25
        delta[0, x:x + 8] = 0.06
        read[:6, x:x + 8] = 1.0
        read[0, x:x + 8] = np.nan
    taken = []
    real_init = threshold._BurnWindows.__init__

    def noted(self, mask, reach):
        real_init(self, mask, reach)
        taken.append(not self.clipped and not self.whole)

    monkeypatch.setattr(threshold._BurnWindows, "__init__", noted)
    masks = []
    for whole in (False, True):
        if whole:
            monkeypatch.setattr(threshold._BurnWindows, "__init__", _whole_chunk)
        mask, _ = burn_mask(xr.DataArray(delta, dims=("y", "x")), fraction=read, burn_level=0.08, pixel_area_m2=9.0,
                            min_area_m2=20.0, psf_sigma_px=0.5)
        masks.append(mask.values)
    assert taken == [seed % 2 == 0]  # windows taken only where they all lie inside the chunk
    assert masks[0].sum() > 100 and np.array_equal(masks[0], masks[1])


def test_a_filled_courtyard_comes_back_from_its_window():
    # The rule fills a small unburned hole where its pixels reached the cut; the hole is no group's pixel,
    # yet it is its window's, and comes back with the burns around it.
    import pipeline.stages.threshold as threshold

    mask = np.zeros((60, 60), bool)
    mask[20:30, 20:30] = True
    mask[23:26, 23:26] = False  # a hole of 9 px, outside the group (the dilation does not reach its centre)
    windows = threshold._BurnWindows(mask, 5)
    assert not windows.clipped and not windows.whole
    packed_full = ndimage.binary_fill_holes(windows.pack(mask, False))
    back = windows.unpack_burns(packed_full)
    assert back[24, 24] and back.sum() == 100 and not windows.unpack(packed_full, False)[24, 24]


def _whole_chunk(self, mask, reach):
    self.shape, self.whole, self.clipped, self.places = mask.shape, True, False, []
