"""Relative radiometric normalisation of every scene to the reference, on stable pixels.

PlanetScope satellites differ in gain and offset, and harmattan dust adds path radiance
and lowers contrast; both are, to first order, a linear map per band. Each band of each
scene is therefore mapped onto the reference with ``reference = gain * scene + offset``,
fitted only on pixels that are clear in both scenes and did not change between them
(pseudo-invariant pixels chosen automatically, as in iteratively re-weighted
multivariate alteration detection, Canty & Nielsen 2008): a burn must not be
"normalised away". Pixels whose residual is an outlier in any band are dropped and the
fit repeated until the stable set no longer changes.

References
----------
Canty, M. J. & Nielsen, A. A. (2008). Automatic radiometric normalization of
multitemporal satellite imagery with the iteratively re-weighted MAD transformation.
Remote Sensing of Environment 112(3), 1025-1036.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from pipeline.cores import fork_map

__all__ = ["BandFit", "HAZE_MARGIN", "apply_fits", "clearest_scene", "fit_linear_normalisation", "identity_fits", "normalise", "wants_normalisation"]

_OUTLIER_Z = 3.0  # residuals beyond 3 robust sigmas in any band mark a changed pixel
_MAX_ROUNDS = 6
_SAMPLE = 200_000  # pixels used for the fit: more adds time, not accuracy


@dataclass(frozen=True)
class BandFit:
    """``reference = gain * scene + offset`` for one band of one scene."""

    band: str
    gain: float
    offset: float
    rmse: float
    n_stable: int
    correlation: float = 1.0
    applied: bool = True

    def as_dict(self) -> dict[str, float | int | str | bool]:
        """JSON-able copy for reports."""
        return dict(self.__dict__)


def _orthogonal_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Gain and offset of the orthogonal (total least squares) line ``y = gain * x + offset``.

    Both scenes are noisy. Ordinary least squares of ``y`` on ``x`` shrinks the gain by the
    correlation (regression dilution): on a pair a season apart it would flatten the
    scene toward its mean and erase real change. The orthogonal line treats both alike,
    as in IR-MAD normalisation (Canty & Nielsen 2008).
    """
    mx, my = x.mean(), y.mean()
    cov = np.cov(np.vstack([x - mx, y - my]))
    eigvals, eigvecs = np.linalg.eigh(cov)
    vx, vy = eigvecs[:, np.argmax(eigvals)]
    gain = vy / vx if abs(vx) > 1e-12 else 1.0
    return float(gain), float(my - gain * mx)


def fit_linear_normalisation(
    scene: np.ndarray,
    reference: np.ndarray,
    usable: np.ndarray,
    *,
    bands: list[str],
    seed: int = 0,
    min_correlation: float = 0.7,
) -> tuple[list[BandFit], np.ndarray]:
    """Per-band linear fit of ``scene`` onto ``reference`` over unchanged pixels.

    Parameters
    ----------
    scene, reference:
        ``(band, y, x)`` reflectance on the same grid.
    usable:
        ``(y, x)`` True where both scenes are clear.
    bands:
        Band names, for the returned fits.
    seed:
        Seed of the pixel sample (fixed, so runs are reproducible).
    min_correlation:
        Below this correlation between the scenes on stable pixels a band is left as it is.

    Returns
    -------
    fits, stable:
        One :class:`BandFit` per band and the ``(y, x)`` mask of pixels judged stable.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.random((2, 50, 50)).astype(np.float32)
    >>> scene = (ref - 0.02) / 1.1
    >>> fits, _ = fit_linear_normalisation(scene, ref, np.ones((50, 50), bool), bands=["red", "nir"])
    >>> round(fits[0].gain, 3), round(fits[0].offset, 3)
    (1.1, 0.02)
    """
    ok = usable & np.all(np.isfinite(scene), axis=0) & np.all(np.isfinite(reference), axis=0)
    flat = np.flatnonzero(ok)
    if flat.size < 50:
        raise ValueError("fewer than 50 pixels are clear in both scenes; cannot normalise")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(flat, size=min(_SAMPLE, flat.size), replace=False))
    x = scene.reshape(scene.shape[0], -1)[:, sample].astype(np.float64)
    y = reference.reshape(reference.shape[0], -1)[:, sample].astype(np.float64)
    stable = np.ones(sample.size, dtype=bool)
    coeffs = np.zeros((scene.shape[0], 2))
    residual, spread = np.empty_like(x), np.empty_like(x)  # reused every round, written in place
    for _ in range(_MAX_ROUNDS):
        x_stable, y_stable = np.compress(stable, x, axis=1), np.compress(stable, y, axis=1)  # once a round, every band
        for b in range(x.shape[0]):
            coeffs[b] = _orthogonal_fit(x_stable[b], y_stable[b])
        np.multiply(coeffs[:, :1], x, out=residual)
        residual += coeffs[:, 1:]
        np.subtract(y, residual, out=residual)  # y - (gain * x + offset)
        stable_residual = np.compress(stable, residual, axis=1)
        # overwrite_input: the medians reorder this copy in place instead of copying it again (a median is an order
        # statistic: the same number in any order)
        med = np.median(stable_residual, axis=1, keepdims=True, overwrite_input=True)
        np.abs(np.subtract(stable_residual, med, out=stable_residual), out=stable_residual)
        scale = 1.4826 * np.median(stable_residual, axis=1, keepdims=True, overwrite_input=True) + 1e-6
        np.abs(np.subtract(residual, med, out=spread), out=spread)
        spread /= scale
        new_stable = np.all(spread < _OUTLIER_Z, axis=0)
        if np.array_equal(new_stable, stable):
            break
        stable = new_stable
    fits = []
    for b in range(x.shape[0]):
        r = float(np.corrcoef(x[b, stable], y[b, stable])[0, 1]) if stable.sum() > 2 else 0.0
        # A weak pre/post relation (a flat scene, or one whose variance is the change itself)
        # gives a meaningless line: then the calibrated reflectance is left as it is.
        applied = bool(np.isfinite(r) and r >= min_correlation)
        fits.append(
            BandFit(
                band=bands[b],
                gain=float(coeffs[b, 0]) if applied else 1.0,
                offset=float(coeffs[b, 1]) if applied else 0.0,
                rmse=float(np.sqrt(np.mean(residual[b, stable] ** 2))),
                n_stable=int(stable.sum()),
                correlation=round(r, 4) if np.isfinite(r) else 0.0,
                applied=applied,
            )
        )
    stable_mask = np.zeros(ok.shape, dtype=bool)
    stable_mask.reshape(-1)[sample[stable]] = True
    return fits, stable_mask


def wants_normalisation(bands: list[str], mode: str = "auto") -> bool:
    """Whether to normalise scenes with these ``bands`` under ``mode`` (auto, always, never).

    ``auto`` normalises scenes without SWIR (PlanetScope class: each satellite has its own
    radiometry) and leaves calibrated surface reflectance with SWIR (Sentinel-2, Landsat) as
    delivered, as burn-severity practice does.

    >>> wants_normalisation(["blue", "green", "red", "nir"]), wants_normalisation(["red", "nir", "swir22"])
    (True, False)
    """
    if mode in ("always", "never"):
        return mode == "always"
    return not any(b.startswith("swir") for b in bands)


def identity_fits(stack: xr.Dataset) -> list[list[BandFit]]:
    """Per scene, the fits of a stack left as delivered (for reports: nothing was applied)."""
    bands = [str(b) for b in stack.band.values]
    clear = stack["clear"].values
    return [[BandFit(b, 1.0, 0.0, 0.0, int(clear[t].sum()), 0.0, False) for b in bands] for t in range(clear.shape[0])]


def normalise(stack: xr.Dataset, *, reference_index: int = 0) -> tuple[xr.Dataset, list[list[BandFit]]]:
    """Map every scene's reflectance onto the reference scene's radiometry.

    Returns the normalised stack (same coords and attrs) and, per scene, its band fits
    (identity for the reference).
    """
    refl = stack["reflectance"].values
    clear = stack["clear"].values
    bands = [str(b) for b in stack.band.values]
    all_fits: list[list[BandFit] | None] = []
    for t in range(refl.shape[0]):
        usable = clear[t] & clear[reference_index]
        if t == reference_index:
            all_fits.append([BandFit(b, 1.0, 0.0, 0.0, int(clear[t].sum())) for b in bands])
        elif usable.sum() < 50:  # nothing seen in common (a scene read as not observed): leave it
            all_fits.append([BandFit(b, 1.0, 0.0, 0.0, int(usable.sum()), 0.0, False) for b in bands])
        else:
            all_fits.append(None)
    to_fit = [t for t, fits in enumerate(all_fits) if fits is None]
    # Each scene is fitted on its own: one per core.
    fitted = fork_map(lambda i: fit_linear_normalisation(refl[to_fit[i]], refl[reference_index],
                                                         clear[to_fit[i]] & clear[reference_index], bands=bands,
                                                         seed=to_fit[i])[0], len(to_fit))
    for t, fits in zip(to_fit, fitted):
        all_fits[t] = fits
    return apply_fits(stack, all_fits), all_fits


HAZE_MARGIN = 0.01
"""Reflectance by which the reference scene may read brighter than another usable scene at the dark end
of its blue band before that clearer scene becomes the radiometric reference. Light harmattan haze adds
0.02-0.03, moderate 0.05; gains of 5-8 % move a dark surface (0.05) by 0.004 at most."""

DARK_END = 0.05
"""Blue reflectance of the darkest common ground (tree shade, char, dark soil), where haze shows most."""


def clearest_scene(fits: list[list[BandFit]], reference_index: int) -> int:
    """The scene to normalise onto: ``reference_index``, unless another scene is clearer by more than
    :data:`HAZE_MARGIN` at the dark end of the blue (or, without blue, the green).

    The burned share is unmixed against published char and ash reflectances, which are surface
    reflectance: normalised onto a hazy reference, every scene carries that haze's path radiance, char
    reads brighter than char, and the shares come out wrong (10 % more area on the demo's scenes when
    the first is the lightly hazy 27 January). Dark-object reasoning as in Chavez (1988): haze adds
    most where the ground is darkest. Each fit maps a scene onto the reference (``reference = gain *
    scene + offset``), so at the dark end the reference reads ``gain * DARK_END + offset - DARK_END``
    more than that scene.

    >>> fit = lambda g, o: [BandFit("blue", g, o, 0.0, 100), BandFit("nir", 1.0, 0.0, 0.0, 100)]
    >>> clearest_scene([fit(1.0, 0.0), fit(0.97, 0.027), fit(1.02, 0.020)], 0)  # reference hazy: scene 1 clearest
    1
    >>> clearest_scene([fit(1.0, 0.0), fit(1.05, -0.026), fit(0.97, 0.001)], 0)  # reference clear: kept
    0

    References
    ----------
    .. [1] Chavez, P. S. (1988). An improved dark-object subtraction technique for atmospheric
       scattering correction of multispectral data. Remote Sensing of Environment 24, 459-479.
    """
    band = next((b for b in ("blue", "green") if any(f.band == b for f in fits[reference_index])), None)
    if band is None:
        return reference_index
    brighter = {}
    for t, scene_fits in enumerate(fits):
        fit = next(f for f in scene_fits if f.band == band)
        if t != reference_index and fit.applied and fit.n_stable > 0:
            brighter[t] = fit.gain * DARK_END + fit.offset - DARK_END  # how much more the reference reads there
    if not brighter:
        return reference_index
    clearest = max(brighter, key=lambda t: (brighter[t], -t))
    return clearest if brighter[clearest] > HAZE_MARGIN else reference_index


def apply_fits(stack: xr.Dataset, fits: list[list[BandFit]]) -> xr.Dataset:
    """Apply each scene's band fits (``gain * scene + offset``).

    Kept apart from the fitting so that fits measured once on a whole scene map each of
    its chunks the same way.
    """
    refl = stack["reflectance"].values
    out = refl.copy()
    for t, scene_fits in enumerate(fits):
        gains = np.array([f.gain for f in scene_fits], dtype=np.float32)[:, None, None]
        offsets = np.array([f.offset for f in scene_fits], dtype=np.float32)[:, None, None]
        if np.any(gains != 1.0) or np.any(offsets != 0.0):
            out[t] = refl[t] * gains + offsets
    return stack.copy(data={"reflectance": out, "clear": stack["clear"].values})
