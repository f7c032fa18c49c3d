"""Turn one date's change into a burn mask.

Three rules, each for a physical reason:

1. **Seeds above the noise.** The scene's change noise is measured robustly (1.4826 x
   the median absolute deviation, which the few burned pixels cannot inflate) and a
   seed must exceed ``noise_k`` noise sigmas *and* a physical floor ``min_change``, and
   be dark afterwards (char), so that noise, haze residue or a thinning tree canopy do
   not qualify.
2. **Half the burn's own contrast.** A 3 m pixel on a compound's edge is partly burned;
   its change is that fraction of the burn's full contrast. Each seed patch measures its
   own full contrast (the 75th percentile of its change) and keeps the pixels around it
   whose change reaches ``mixed_pixel_fraction`` of it: a pixel counts when at least
   half of it burned, the same rule the reference masks use.
3. **Minimum mapping unit.** Patches smaller than ``min_area_m2`` are dropped, pinholes
   of a pixel or two (ash specks) inside a burn are filled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import ndimage
from skimage.morphology import remove_small_holes, remove_small_objects

__all__ = ["ThresholdInfo", "robust_sigma", "burn_mask"]

_EIGHT = np.ones((3, 3), dtype=bool)
_GROW_PX = 2  # mixed pixels lie within a pixel or two of a seed patch
_HOLE_PX = 2


@dataclass(frozen=True)
class ThresholdInfo:
    """How one date's mask was drawn, for the report."""

    noise_sigma: float
    seed_threshold: float
    n_patches: int
    n_pixels: int

    def as_dict(self) -> dict[str, float | int]:
        """JSON-able copy for reports."""
        return dict(self.__dict__)


def robust_sigma(values: np.ndarray) -> float:
    """Gaussian-consistent spread of the finite ``values`` (1.4826 x MAD)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(finite - np.median(finite))))


def _patch_contrast(delta: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """75th percentile of ``delta`` within each labelled patch (index 0 unused)."""
    contrast = np.zeros(n + 1, dtype=np.float64)
    flat_labels = labels.ravel()
    inside = flat_labels > 0
    lab = flat_labels[inside]
    val = delta.ravel()[inside]
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    starts = np.searchsorted(lab, np.arange(1, n + 1), side="left")
    ends = np.searchsorted(lab, np.arange(1, n + 1), side="right")
    picks = starts + ((ends - starts - 1) * 0.75).astype(int)
    contrast[1:] = val[picks]
    return contrast


def burn_mask(
    delta: xr.DataArray,
    *,
    post_nir: xr.DataArray | None = None,
    exclude: np.ndarray | None = None,
    pixel_area_m2: float,
    noise_k: float = 6.0,
    min_change: float = 0.08,
    max_post_nir: float = 0.20,
    mixed_pixel_fraction: float = 0.5,
    min_area_m2: float = 50.0,
) -> tuple[xr.DataArray, ThresholdInfo]:
    """Burn mask of one date from its oriented change (positive = more burned).

    Parameters
    ----------
    delta:
        ``(y, x)`` change; NaN where not observed (never burned then).
    post_nir:
        ``(y, x)`` NIR reflectance after the change; seeds must be darker than
        ``max_post_nir``. ``None`` skips the darkness rule (indices other than NIR).
    exclude:
        ``(y, x)`` True where a pixel cannot be new (already burned on an earlier date).
    pixel_area_m2:
        Area of one pixel, for the minimum mapping unit.

    Examples
    --------
    >>> d = np.zeros((40, 40), np.float32); d[10:20, 10:20] = 0.25
    >>> d += np.random.default_rng(0).normal(0, 0.005, d.shape).astype(np.float32)
    >>> mask, info = burn_mask(xr.DataArray(d, dims=("y", "x")), pixel_area_m2=9.0)
    >>> int(mask.sum()), info.n_patches
    (100, 1)
    """
    values = delta.values.astype(np.float64)
    finite = np.isfinite(values)
    sigma = robust_sigma(values)
    if not np.isfinite(sigma):
        empty = xr.zeros_like(delta, dtype=bool)
        return empty, ThresholdInfo(float("nan"), float("nan"), 0, 0)
    seed_threshold = max(noise_k * sigma, min_change)
    filled = np.where(finite, values, -np.inf)
    allowed = finite if exclude is None else finite & ~exclude
    dark = np.ones_like(allowed) if post_nir is None else np.nan_to_num(post_nir.values, nan=np.inf) <= max_post_nir
    seeds = allowed & dark & (filled > seed_threshold)
    labels, n = ndimage.label(seeds, structure=_EIGHT)
    mask = np.zeros_like(seeds)
    if n:
        contrast = _patch_contrast(values, labels, n)
        # Every pixel near a patch takes that patch's label, then must reach its share of the contrast.
        near = ndimage.grey_dilation(labels, footprint=np.ones((2 * _GROW_PX + 1,) * 2, bool))
        near = np.where(labels > 0, labels, near)
        mask = allowed & (near > 0) & (filled >= mixed_pixel_fraction * contrast[near])
        min_px = max(1, int(np.ceil(min_area_m2 / pixel_area_m2)))
        mask = remove_small_holes(mask, max_size=_HOLE_PX) & allowed
        mask = remove_small_objects(mask, max_size=min_px - 1, connectivity=2)
    n_patches = int(ndimage.label(mask, structure=_EIGHT)[1])
    info = ThresholdInfo(float(sigma), float(seed_threshold), n_patches, int(mask.sum()))
    out = xr.DataArray(mask, dims=delta.dims, coords=delta.coords, attrs={**delta.attrs, **info.as_dict()})
    return out, info
