"""Known answers for the threshold rules on NBR (scenes with SWIR): seeds, growth and the rim."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.config import Params
from pipeline.stages.change import consecutive_change
from pipeline.stages.dating import date_burns

SHAPE = (80, 80)


def _burned(pre_nbr: np.ndarray, post_nbr: np.ndarray, index: str = "nbr") -> np.ndarray:
    """Burn mask of a two-date NBR series through the dating stage (20 m pixels), with pixel noise."""
    rng = np.random.default_rng(7)
    values = np.stack([pre_nbr, post_nbr]).astype(np.float32) + rng.normal(0, 0.005, (2, *SHAPE)).astype(np.float32)
    nbr = xr.DataArray(values, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": index})
    clear = xr.DataArray(np.ones(values.shape, bool), dims=("time", "y", "x"))
    dates, _ = date_burns(consecutive_change(nbr, clear), index=nbr, clear=clear, post_nir=None, params=Params(),
                          pixel_area_m2=400.0)
    return dates["first_seen"].values == 1


def _scene(pre: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    return np.full(SHAPE, pre), np.full(SHAPE, pre)


def test_vegetation_that_browned_seeds_no_burn():
    """A low-severity drop (dNBR 0.15) that leaves NBR positive (0.30) is drying or browning grass,
    not char: on its own it is no burn. The same drop ending at negative NBR is one."""
    pre, post = _scene(0.45)
    post[10:30, 10:30] = 0.30  # browned: NBR still positive afterwards
    pre[50:70, 50:70], post[50:70, 50:70] = 0.05, -0.10  # sparse grass burned to char and ash
    burned = _burned(pre, post)
    assert not burned[10:30, 10:30].any()
    assert burned[52:68, 52:68].all()


def test_canopy_fire_with_positive_nbr_after_is_a_burn():
    """A scorched canopy keeps a positive NBR (0.25) but drops beyond low severity (dNBR 0.40)."""
    pre, post = _scene(0.65)
    post[20:40, 20:40] = 0.25
    burned = _burned(pre, post)
    assert burned[22:38, 22:38].all() and int(burned.sum()) <= 400


def test_low_severity_rim_of_a_severe_burn_is_kept():
    """dNBR is a severity scale: a fire weakening towards its edge (dNBR 0.70 in the core, 0.45,
    0.30, then 0.20 on the rim) is burned throughout. The rim is compared with its burned
    neighbours (0.30), not with the patch's severe core (half of 0.70 would peel it)."""
    pre, post = _scene(0.40)
    for ring, nbr_after in enumerate((0.20, 0.10, -0.05, -0.30)):  # outermost first, 2 px per ring
        post[16 + 2 * ring:44 - 2 * ring, 16 + 2 * ring:44 - 2 * ring] = nbr_after
    burned = _burned(pre, post)
    assert burned[16:44, 16:44].all()
    assert int(burned.sum()) == 28 * 28


def test_rim_mixed_with_a_severe_neighbour_is_still_peeled_on_nbr():
    """A rim pixel a fifth burned beside a severe burn (dNBR 0.14 next to 0.70) is peeled."""
    pre, post = _scene(0.40)
    post[20:40, 20:40] = -0.30
    post[19, 20:40] = 0.26  # dNBR 0.14: under half its neighbours' 0.70
    burned = _burned(pre, post)
    assert burned[20:40, 20:40].all() and not burned[19, 21:39].any()


def test_rim_is_still_peeled_on_the_nir_drop():
    """The NIR drop is not a severity scale: there a weak rim is a partly burned pixel and is peeled."""
    pre, post = np.full(SHAPE, 0.30), np.full(SHAPE, 0.30)
    post[18:42, 18:42] = 0.25  # rim drop 0.05 against a core drop of 0.25: a fifth burned
    post[20:40, 20:40] = 0.05
    rng = np.random.default_rng(7)
    values = np.stack([pre, post]).astype(np.float32) + rng.normal(0, 0.003, (2, *SHAPE)).astype(np.float32)
    nir = xr.DataArray(values, dims=("time", "y", "x"), attrs={"burn_direction": -1, "index": "nir"})
    clear = xr.DataArray(np.ones(values.shape, bool), dims=("time", "y", "x"))
    dates, _ = date_burns(consecutive_change(nir, clear), index=nir, clear=clear, post_nir=nir, params=Params(), pixel_area_m2=9.0)
    burned = dates["first_seen"].values == 1
    assert burned[20:40, 20:40].all() and not burned[18, 18:42].any()


def test_a_burn_two_pixels_across_seeds_on_its_own_two_by_two_window():
    """A burned compound two 20 m pixels across: dNBR 0.30, 0.20, 0.16 and 0.12 never fill a 3 x 3 window
    (its mean 0.09, under the 0.10 burn level), but they fill a 2 x 2 one (0.195). A lone pixel as strong
    (dNBR 0.35) fills neither, and a 2 x 2 patch that browned (NBR still positive) seeds no burn either."""
    pre, post = _scene(0.15)
    post[20:22, 20:22] = [[-0.15, -0.05], [-0.01, 0.03]]
    post[50, 50] = -0.20
    pre[60:62, 60:62], post[60:62, 60:62] = 0.45, 0.25  # browned: dNBR 0.20, NBR 0.25 afterwards
    burned = _burned(pre, post)
    assert burned[20:22, 20:22].all() and int(burned[18:24, 18:24].sum()) == 4
    assert not burned[49:52, 49:52].any()
    assert not burned[58:64, 58:64].any()
