"""The burned share of each pixel: linear unmixing between its own before-state and burn end-members.

A pixel on the rim of a burn, or over a compound whose courtyard did not catch, is partly
burned. Counting it as a whole pixel inflates the area by the rim (a 3 m pixel ring around a
compound of 15 m is a third of its area); dropping it deflates it. Fire leaves two materials
on the ground, char (black ash: dark in every band) and white ash (mineral ash: bright and
flat across the spectrum), so a pixel after the fire is, to first order, a linear mixture of
what it was before and of these two:

    after_b = (1 - f_char - f_ash) * before_b + f_char * char_b + f_ash * ash_b + noise_b

for every band ``b`` present (blue, green, red, NIR; SWIR where the scenes have it). The
before-state is the pixel's own last clear observation before the date (not a class
average): the unburned part of a mixed pixel is whatever that pixel showed, soil, thatch or
grass. ``f_char`` and ``f_ash`` are fitted by weighted least squares (each band weighted by
its measured noise) with ``f_char, f_ash >= 0`` and ``f_char + f_ash <= 1``, in closed form:
the unconstrained solution when it is feasible, else the best of the constraint edges. The
burned share is ``f = f_char + f_ash``. Both dates must be in one radiometric frame, as the
end-members are surface reflectance: the run gives the normalised scenes, or, where the index
reads calibrated SWIR scenes as delivered, those scenes mapped onto the clearest one for this
reading (haze lowers contrast, a gain the background removal below cannot take out).

End-members are published spectra, not measured on the scene: a scene with one small burn
has too few pure pixels to measure them, and a chunk of a large area would measure its own.
Char (0.04, 0.04, 0.05, 0.06 in blue, green, red, NIR; 0.16 and 0.18 at 1.6 and 2.2 um) and
white ash (0.20, 0.21, 0.22, 0.23; 0.32 and 0.29) are representative of savanna char and ash
spectra [1]_ [2]_, white ash being the brighter, flatter residue of complete combustion [3]_;
char keeps much of its SWIR, as a real Sentinel-2 pair of a grass fire shows (NIR 0.06,
2.2 um 0.18 where dNBR > 0.3, the 5 Incident of 2024, California). Their spread, 0.02 for char
and 0.05 for white ash in every band, covers the range of those measurements and enters the
uncertainty. The simulator paints its char and ash from the same sources, so on SIMULATED
scenes the end-members are right by construction; the spread is what a real scene may differ by.

Uncertainty (1 sigma) has two parts, kept apart because they add differently over a polygon:
the scene noise (each band's noise measured on the date's change as the threshold stage
measures it, propagated through the fit; independent between pixels, so it adds in
quadrature) and the end-member spread (the fit repeated with each end-member moved by its
spread; the same error for every pixel, so it adds linearly).

References
----------
.. [1] Trigg, S. & Flasse, S. (2000). Characterizing the spectral-temporal response of burned
   savannah using in situ spectroradiometry and infrared thermometry. International Journal of
   Remote Sensing 21(16), 3161-3168.
.. [2] Pereira, J. M. C. et al. (1999). Spectral characterisation and discrimination of burnt
   areas. In Chuvieco, E. (ed.), Remote Sensing of Large Wildfires, Springer, 123-138.
.. [3] Smith, A. M. S. & Hudak, A. T. (2005). Estimating combustion of large downed woody debris
   from residual white ash. International Journal of Wildland Fire 14(3), 245-248.
.. [4] Settle, J. J. & Drake, N. A. (1993). Linear mixing and the estimation of ground cover
   proportions. International Journal of Remote Sensing 14(6), 1159-1177.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.stages.threshold import background_and_noise

__all__ = ["CHAR", "WHITE_ASH", "CHAR_SPREAD", "ASH_SPREAD", "Fraction", "band_noise", "fit_noise", "coarser_than_grid", "unmix", "burned_fraction", "burned_fraction_of_pixels",
           "area_with_sigma"]

CHAR: dict[str, float] = {"blue": 0.04, "green": 0.04, "red": 0.05, "nir": 0.06, "swir16": 0.16, "swir22": 0.18}
"""Char (black ash) reflectance per canonical band, after [1], [2] (see the module docstring)."""
WHITE_ASH: dict[str, float] = {"blue": 0.20, "green": 0.21, "red": 0.22, "nir": 0.23, "swir16": 0.32, "swir22": 0.29}
"""White (mineral) ash reflectance per canonical band, after [1], [2], [3]."""
CHAR_SPREAD = 0.02
"""1-sigma spread of char reflectance in every band: the range of the measured savanna char spectra."""
ASH_SPREAD = 0.05
"""1-sigma spread of white ash reflectance: white ash varies more (how complete the combustion was)."""

_ALIASES = {"swir1": "swir16", "swir2": "swir22"}
_NOISE_FLOOR = 0.002  # reflectance: a band's noise is never taken as smaller (quantisation, residual misregistration)


@dataclass(frozen=True)
class Fraction:
    """Per pixel burned share of one date and its 1-sigma uncertainty, as ``(y, x)`` arrays."""

    char: np.ndarray
    """Share of char (black ash)."""
    ash: np.ndarray
    """Share of white ash."""
    fraction: np.ndarray
    """Burned share ``char + ash`` in [0, 1]; NaN where the pixel has no before-state or no band."""
    sigma_noise: np.ndarray
    """1 sigma of ``fraction`` from the scene noise (independent between pixels)."""
    sigma_endmember: np.ndarray
    """1 sigma of ``fraction`` from the end-members' spread (the same for all pixels of a scene)."""


def _canonical(band: str) -> str:
    return _ALIASES.get(band, band)


def unmixing_bands(bands: list[str]) -> list[str]:
    """The bands with published end-members, in ``bands`` order."""
    return [b for b in bands if _canonical(b) in CHAR]


def coarser_than_grid(band_pixel_m: dict[str, float], grid_m: float) -> list[str]:
    """The unmixing bands whose native pixel is coarser than both the grid and the finest unmixing band.

    A band resampled onto a finer grid (Sentinel-2's 20 m SWIR on a 10 m grid) does not measure
    the grid's pixel: its value there is an average over its own footprint, so a fully burned
    10 m pixel beside unburned ground reads half burned in it, and its unburned neighbour half
    burned too. Such bands are left out of the fit where at least two finer ones remain.

    >>> coarser_than_grid({"blue": 10, "green": 10, "red": 10, "nir": 10, "swir16": 20, "swir22": 20}, 10.0)
    ['swir16', 'swir22']
    >>> coarser_than_grid({"blue": 10, "green": 10, "red": 10, "nir": 10, "swir16": 20, "swir22": 20}, 20.0)
    []
    """
    sizes = {b: float(m) for b, m in band_pixel_m.items() if _canonical(b) in CHAR and m and m > 0}
    if not sizes:
        return []
    floor = max(grid_m, min(sizes.values())) * 1.1  # header rounding is not a coarser band
    coarse = [b for b, m in sizes.items() if m > floor]
    return coarse if len(sizes) - len(coarse) >= 2 else []


def band_noise(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the background and the noise of the darkening ``before - after``.

    The threshold stage's rule (:func:`pipeline.stages.threshold.background_and_noise`):
    the most common change is the background (season, sun, residual haze), the width of its
    peak on the side burns never reach is the noise. ``before`` and ``after`` are
    ``(band, y, x)`` reflectances; NaN is "not observed".
    """
    background = np.zeros(before.shape[0])
    sigma = np.zeros(before.shape[0])
    for b in range(before.shape[0]):
        d = np.subtract(before[b], after[b], dtype=np.float64).ravel()  # in double, whatever the inputs' precision
        background[b], sigma[b] = background_and_noise(d[np.isfinite(d)]) if np.isfinite(d).any() else (0.0, 0.0)
    return np.nan_to_num(background), np.maximum(np.nan_to_num(sigma), _NOISE_FLOOR)


def fit_noise(before: np.ndarray, after: np.ndarray, *, bands: list[str], skip: tuple[str, ...] | list[str] = ()
              ) -> dict[str, list]:
    """The weights :func:`burned_fraction` fits with: each unmixing band's background drift and noise
    (:func:`band_noise`), as plain lists that a calibration keeps and every chunk of the scene reuses.

    >>> before = np.full((4, 2, 2), 0.2); after = before - 0.01
    >>> fit_noise(before, after, bands=["blue", "green", "red", "nir"], skip=["blue"])["bands"]
    ['green', 'red', 'nir']
    """
    present = [b for b in unmixing_bands(bands) if b not in skip]
    keep = [bands.index(b) for b in present]
    background, sigma = band_noise(before[keep], after[keep])
    return {"bands": present, "background": background.tolist(), "sigma": sigma.tolist()}


def _solve(d: np.ndarray, a: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of ``d = fc a + fa c`` per column with ``fc, fa >= 0``, ``fc + fa <= 1``.

    ``d, a, c`` are ``(band, n)``, ``w`` ``(band, 1)``. Returns ``fc, fa`` and the variance of
    ``fc + fa`` from the noise (the inverse normal matrix on the active set).
    """
    # One band (a chunk cut to the NIR) or a before-state like an end-member makes the normal matrix
    # singular: the interior solution is then infinite or NaN and only the edges compete (below).
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _solve_unguarded(d, a, c, w)


def _solve_unguarded(d: np.ndarray, a: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    saa, scc, sac = (w * a * a).sum(0), (w * c * c).sum(0), (w * a * c).sum(0)
    sad, scd, sdd = (w * a * d).sum(0), (w * c * d).sum(0), (w * d * d).sum(0)
    tiny = 1e-12

    def residual(fc: np.ndarray, fa: np.ndarray) -> np.ndarray:
        return sdd - 2 * fc * sad - 2 * fa * scd + fc * fc * saa + 2 * fc * fa * sac + fa * fa * scc

    det = saa * scc - sac * sac
    fc_in = (scc * sad - sac * scd) / det
    fa_in = (saa * scd - sac * sad) / det
    # The three edges of the feasible triangle: char alone, ash alone, fully burned (fc + fa = 1).
    # Where two fit equally (one band), the first listed wins: char, the common residue.
    fc_e1 = np.clip(sad / np.maximum(saa, tiny), 0.0, 1.0)
    fa_e2 = np.clip(scd / np.maximum(scc, tiny), 0.0, 1.0)
    sum_ac = saa - 2 * sac + scc  # |a - c|^2 weighted
    t = np.clip((sad - scd - sac + scc) / np.maximum(sum_ac, tiny), 0.0, 1.0)
    feasible = (np.abs(det) > tiny * np.maximum(saa * scc, tiny)) & (fc_in >= 0) & (fa_in >= 0) & (fc_in + fa_in <= 1)
    candidates = [
        (np.where(feasible, fc_in, 0.0), np.where(feasible, fa_in, 0.0)),
        (fc_e1, np.zeros_like(fc_e1)),
        (np.zeros_like(fa_e2), fa_e2),
        (t, 1.0 - t),
    ]
    costs = np.stack([residual(fc, fa) for fc, fa in candidates])
    costs[0] = np.where(feasible, costs[0], np.inf)
    costs[2:] += 1e-9 * (1.0 + np.abs(sdd))  # a tie (one band) goes to char, not to the rounding
    best = np.argmin(costs, axis=0)
    fc = np.choose(best, [cand[0] for cand in candidates])
    fa = np.choose(best, [cand[1] for cand in candidates])
    var_char, var_ash = 1.0 / np.maximum(saa, tiny), 1.0 / np.maximum(scc, tiny)
    var_inside = np.where(feasible, (saa + scc - 2 * sac) / np.where(feasible, det, 1.0), np.inf)
    # Off the interior the fit moves along one end-member: its variance is that of the dominant one
    # (on the fully burned edge too, which is how far noise could pull ``f`` below 1).
    var = np.where(best == 0, var_inside, np.where(fc >= fa, var_char, var_ash))
    return fc, fa, var


def unmix(before: np.ndarray, after: np.ndarray, *, bands: list[str], noise: np.ndarray,
          char: dict[str, float] | None = None, ash: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Char and white-ash shares of each pixel, and the noise variance of their sum.

    Parameters
    ----------
    before, after:
        ``(band, ...)`` reflectance of the pixel's last clear observation before the date and
        on the date, background drift already removed; NaN where not observed.
    bands:
        Canonical band names along the first axis (bands without an end-member are ignored).
    noise:
        ``(band,)`` 1-sigma noise of each band's change, the fit's weights.
    char, ash:
        End-member reflectance per band (default :data:`CHAR`, :data:`WHITE_ASH`).

    Returns
    -------
    f_char, f_ash, variance:
        Arrays of ``before``'s shape without the band axis; NaN where any band is missing.

    Examples
    --------
    >>> before = np.array([[0.14], [0.20], [0.27], [0.33]])   # sand
    >>> after = 0.7 * before + 0.3 * np.array([[0.04], [0.04], [0.05], [0.06]])
    >>> fc, fa, var = unmix(before, after, bands=["blue", "green", "red", "nir"], noise=np.full(4, 0.005))
    >>> round(float(fc[0]), 3), round(float(fa[0]), 3)
    (0.3, 0.0)
    """
    char, ash = char or CHAR, ash or WHITE_ASH
    keep = [i for i, b in enumerate(bands) if _canonical(b) in char]
    shape = before.shape[1:]
    pre = before[keep].reshape(len(keep), -1).astype(np.float64)
    post = after[keep].reshape(len(keep), -1).astype(np.float64)
    e_char = np.array([char[_canonical(bands[i])] for i in keep])[:, None]
    e_ash = np.array([ash[_canonical(bands[i])] for i in keep])[:, None]
    w = 1.0 / np.square(np.asarray(noise, dtype=np.float64)[keep])[:, None]
    valid = np.isfinite(pre).all(0) & np.isfinite(post).all(0)
    out = [np.full(pre.shape[1], np.nan) for _ in range(3)]
    if keep and valid.any():
        p, q = pre[:, valid], post[:, valid]
        fc, fa, var = _solve(q - p, e_char - p, e_ash - p, w)
        out[0][valid], out[1][valid], out[2][valid] = fc, fa, var
    return tuple(o.reshape(shape) for o in out)  # type: ignore[return-value]


def burned_fraction(before: np.ndarray, after: np.ndarray, *, bands: list[str], where: np.ndarray | None = None,
                    skip: tuple[str, ...] | list[str] = (), noise: dict[str, list] | None = None) -> Fraction:
    """The burned share of every pixel of one date, with its uncertainty.

    ``before`` is each pixel's own last clear observation before the date, ``after`` the
    date, both ``(band, y, x)`` reflectance (NaN: not observed). Each band's background drift
    is removed and its noise measured (:func:`band_noise`) on the whole scene, then :func:`unmix`
    fits the char and white-ash shares; the fit is repeated with each end-member moved by its
    spread for the end-member part of the uncertainty. Given ``where`` (``(y, x)``), only those
    pixels are fitted and the others are NaN: five fits per pixel are the costliest step of a
    date, and only the pixels a burn can hold and their ring need them. Bands in ``skip`` are left
    out of the fit (:func:`coarser_than_grid`). ``noise`` (:func:`fit_noise`), given, is used instead of
    measuring it here: a chunk of a large scene fits with the weights measured once on the scene.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> before = np.broadcast_to(np.array([0.14, 0.20, 0.27, 0.33])[:, None, None], (4, 50, 50)).copy()
    >>> after = before.copy()
    >>> after[:, :10, :10] = 0.4 * before[:, :10, :10] + 0.6 * np.array([0.04, 0.04, 0.05, 0.06])[:, None, None]
    >>> after += rng.normal(0, 0.005, before.shape)
    >>> out = burned_fraction(before, after, bands=["blue", "green", "red", "nir"])
    >>> round(float(np.median(out.fraction[:10, :10])), 2), bool(np.median(out.fraction[20:, 20:]) < 0.05)
    (0.61, True)
    """
    present = [b for b in unmixing_bands(bands) if b not in skip]
    keep = [bands.index(b) for b in present]
    if where is not None and not where.any():  # nothing to fit (a chunk without a burn): the noise is not needed
        return _unfitted(where.shape)
    background, sigma = band_noise(before[keep], after[keep]) if noise is None else _given_noise(noise, present)
    if where is not None:
        # Only these pixels are cast and fitted: the same numbers as casting the whole window first.
        pre, post = (np.stack([x[b][where] for b in keep]).astype(np.float64) for x in (before, after))
        return _scattered_fit(pre, post, where, present, background, sigma)
    pre, post = before[keep].astype(np.float64), after[keep].astype(np.float64)
    return _fractions(pre, post + background[:, None, None], present, sigma)  # drift removed: the unburned majority changes by nothing


def burned_fraction_of_pixels(before: np.ndarray, after: np.ndarray, where: np.ndarray, *, bands: list[str],
                              noise: dict[str, list], skip: tuple[str, ...] | list[str] = ()) -> Fraction:
    """:func:`burned_fraction` with ``where`` and ``noise`` given, from the ``(band, n)`` reflectances of the
    ``n`` pixels of ``where`` alone (in its row-major order): a chunk need not gather every pixel's
    before-state to fit a few. The same numbers as :func:`burned_fraction` on the whole window."""
    present = [b for b in unmixing_bands(bands) if b not in skip]
    background, sigma = _given_noise(noise, present)
    if not where.any():
        return _unfitted(where.shape)
    keep = [bands.index(b) for b in present]
    return _scattered_fit(before[keep].astype(np.float64), after[keep].astype(np.float64), where, present, background, sigma)


def _given_noise(noise: dict[str, list], present: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``noise`` (:func:`fit_noise`) as the fit's arrays, refused if measured on other bands than the fit's."""
    if list(noise["bands"]) != present:
        raise ValueError(f"noise measured on bands {noise['bands']}, the fit uses {present}")
    return np.asarray(noise["background"], dtype=np.float64), np.asarray(noise["sigma"], dtype=np.float64)


def _unfitted(shape: tuple[int, ...]) -> Fraction:
    """Shares of a window where nothing was fitted: NaN everywhere."""
    return Fraction(*(np.full(shape, np.nan) for _ in range(5)))


def _scattered_fit(pre: np.ndarray, post: np.ndarray, where: np.ndarray, present: list[str], background: np.ndarray,
                   sigma: np.ndarray) -> Fraction:
    """The fit of the ``(band, n)`` pixels of ``where``, put back on its grid (NaN elsewhere)."""
    fitted = _fractions(pre, post + background[:, None], present, sigma)
    return Fraction(*(_scattered(v, where) for v in (fitted.char, fitted.ash, fitted.fraction,
                                                     fitted.sigma_noise, fitted.sigma_endmember)))


def _scattered(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``values`` of the pixels of ``where`` put back on its grid, NaN elsewhere."""
    out = np.full(where.shape, np.nan)
    out[where] = values
    return out


def _fractions(pre: np.ndarray, post: np.ndarray, present: list[str], sigma: np.ndarray) -> Fraction:
    """:func:`burned_fraction` on ``(band, ...)`` reflectances whose drift is already removed."""
    fc, fa, var = unmix(pre, post, bands=present, noise=sigma)
    shifted = []
    for name, spread in (("char", CHAR_SPREAD), ("ash", ASH_SPREAD)):
        pair = []
        for sign in (+1, -1):
            moved = {b: max(v + sign * spread, 0.0) for b, v in (CHAR if name == "char" else WHITE_ASH).items()}
            c, a, _ = unmix(pre, post, bands=present, noise=sigma,
                            char=moved if name == "char" else None, ash=moved if name == "ash" else None)
            pair.append(c + a)
        shifted.append((pair[0] - pair[1]) / 2)
    total = fc + fa
    sigma_noise = np.sqrt(np.minimum(var, 1.0))  # a share's 1 sigma is at most the whole range
    sigma_em = np.sqrt(shifted[0] ** 2 + shifted[1] ** 2)
    return Fraction(char=fc, ash=fa, fraction=total, sigma_noise=sigma_noise, sigma_endmember=sigma_em)


def area_with_sigma(fraction: np.ndarray, sigma_noise: np.ndarray, sigma_endmember: np.ndarray,
                    pixel_area_m2: float) -> tuple[float, float]:
    """Area (m2) of a set of pixels as the sum of their burned shares, and its 1 sigma.

    Noise is independent between pixels and adds in quadrature; the end-member error is one
    error for the whole scene and adds linearly (the two parts then in quadrature).

    >>> area_with_sigma(np.array([1.0, 0.5]), np.array([0.03, 0.04]), np.array([0.01, 0.01]), 9.0)
    (13.5, 0.484665)
    """
    f = np.nan_to_num(fraction, nan=1.0)  # a burned pixel whose share cannot be fitted counts whole
    area = float(f.sum() * pixel_area_m2)
    sigma = float(np.hypot(np.sqrt(np.square(np.nan_to_num(sigma_noise)).sum()), np.nan_to_num(sigma_endmember).sum())
                  * pixel_area_m2)
    return area, round(sigma, 6)
