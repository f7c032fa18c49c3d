"""Burn indices per scene, chosen by the bands present.

PlanetScope has no SWIR, so the Normalized Burn Ratio is impossible on it. Char is dark
in every band but its strongest contrast is in the near infrared (dry grass, thatch
and sandy soil reflect 0.27-0.36 there, char about 0.05), so on 4-band scenes the
default index is NIR reflectance itself, and a burn is a drop of it. BAI (Chuvieco et
al. 2002) also works without SWIR. With SWIR (Sentinel-2, Landsat) NBR is used, and a
burn is a drop of NBR (dNBR, Key & Benson 2006).

Each index comes with its *burn direction*: +1 when burning raises it, -1 when burning
lowers it, so that the change stage can orient every difference as "positive = more
burned".

References
----------
Chuvieco, E., Martín, M. P. & Palacios, A. (2002). Assessment of different spectral
indices in the red-near-infrared spectral domain for burned land discrimination.
Int. J. Remote Sensing 23(23), 5103-5110.
Key, C. H. & Benson, N. C. (2006). Landscape Assessment: ground measure of severity,
the Composite Burn Index; and remote sensing of severity, the Normalized Burn Ratio.
USDA Forest Service, RMRS-GTR-164-CD.
Vermote, E., Justice, C., Claverie, M. & Franch, B. (2016). Preliminary analysis of the
performance of the Landsat 8/OLI land surface reflectance product. Remote Sensing of
Environment 185, 46-56.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from pipeline.config import BurnIndexName

__all__ = ["BURN_DIRECTION", "BURN_LEVELS", "BAI_MIN_DISTANCE", "SEVERITY_SCALED", "choose_index", "burn_index", "index_bands"]

ResolvedIndex = Literal["nir", "bai", "nbr", "ndvi"]

BURN_DIRECTION: dict[str, int] = {"nir": -1, "bai": +1, "nbr": -1, "ndvi": -1}
"""Sign of an index's change when ground burns."""

_SWIR_NAMES = ("swir22", "swir2", "swir16", "swir1")

BURN_LEVELS: dict[str, float] = {
    # Oriented change of a burned pixel, in index units (positive = more burned).
    # dNBR: lower bound of the USGS "low severity" class (Key & Benson 2006).
    "nbr": 0.10,
    # dNDVI: the same bound, as burn-severity guides use dNDVI where there is no SWIR.
    "ndvi": 0.10,
    # NIR drop: char (~0.06) replacing dry grass, soil or thatch (0.27-0.36) drops NIR by
    # 0.2-0.3; 0.08 is reached when well under half of a pixel burned.
    "nir": 0.08,
    # BAI rises from ~10 on soil and dry grass to several hundred on char (Chuvieco et al. 2002).
    "bai": 30.0,
}
"""Change of a burned pixel for each index: seeds reach it, growth reaches half of it."""

BAI_MIN_DISTANCE = 0.01
"""Floor on BAI's distance to the char point, in reflectance: BAI is at most 1 / 0.01^2 = 10 000.

BAI is the inverse squared distance to the char point, infinite on it (a pixel reading red
0.1 and NIR 0.06 exactly, e.g. Planet DN 1000 and 600), and an infinity would be read as not
observed downstream. Two pixels closer than 0.01 reflectance are indistinguishable anyway:
that is below the absolute accuracy of surface reflectance products (about 0.01-0.03 in the
red and NIR; Vermote et al. 2016 for Landsat 8, the Sentinel-2 L2A validation reports) and
below a char pixel's noise. Every pixel farther than 0.01 from the char point keeps exactly
the BAI of Chuvieco et al. (2002), and the burn level of 30 (distance 0.18) is far from the floor.
"""

SEVERITY_SCALED: frozenset[str] = frozenset({"nbr"})
"""Indices whose change is a field-calibrated severity scale: dNBR was calibrated against the
Composite Burn Index on the ground (Key & Benson 2006; low severity from 0.10, moderate-low from
0.27, moderate-high from 0.44, high from 0.66). A pixel's dNBR says how severely the whole pixel
burned, not which share of it burned: a lightly burned 20 m pixel at a wildfire's edge (fires
weaken at their edges) has a fraction of the core's dNBR while burned throughout. The threshold
stage therefore reads a rim pixel's change as a share of its burned neighbours' contrast, not of
its patch's (whose severe core sets the patch's contrast)."""


def choose_index(bands: list[str], requested: BurnIndexName = "auto") -> ResolvedIndex:
    """Resolve ``auto`` and check the bands an index needs are present."""
    swir = [b for b in _SWIR_NAMES if b in bands]
    if requested == "auto":
        return "nbr" if swir else "nir"
    needs = {"nir": ["nir"], "bai": ["red", "nir"], "ndvi": ["red", "nir"], "nbr": ["nir"]}[requested]
    missing = [b for b in needs if b not in bands]
    if requested == "nbr" and not swir:
        missing.append("swir22 or swir16")
    if missing:
        raise ValueError(f"burn index {requested!r} needs band(s) {', '.join(missing)}; the scenes have {', '.join(bands)}")
    return requested


def index_bands(index: ResolvedIndex, bands: list[str]) -> list[str]:
    """The bands ``index`` is computed from (NIR always: the darkness rule reads it), in ``bands`` order.

    >>> index_bands("nbr", ["blue", "green", "red", "nir", "swir16", "swir22"])
    ['nir', 'swir22']
    """
    needs = {"nir": {"nir"}, "bai": {"red", "nir"}, "ndvi": {"red", "nir"},
             "nbr": {"nir", next((b for b in _SWIR_NAMES if b in bands), "nir")}}[index]
    return [b for b in bands if b in needs]


def _normalised_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    total = a + b
    return xr.where(np.abs(total) > 1e-6, (a - b) / total, np.nan)


def burn_index(reflectance: xr.DataArray, *, index: ResolvedIndex) -> xr.DataArray:
    """Compute ``index`` from a ``(..., band, y, x)`` reflectance array.

    Returns a DataArray without the ``band`` dimension, same other coords, named after
    the index, with attrs ``index`` and ``burn_direction``.

    Examples
    --------
    >>> scene = xr.DataArray(np.array([[[0.25]], [[0.30]]]), dims=("band", "y", "x"),
    ...                      coords={"band": ["red", "nir"]})
    >>> round(float(burn_index(scene, index="ndvi").squeeze()), 3)
    0.091
    """
    bands = [str(b) for b in reflectance.band.values]
    if index == "nir":
        result = reflectance.sel(band="nir", drop=True)
    elif index == "ndvi":
        result = _normalised_difference(reflectance.sel(band="nir", drop=True), reflectance.sel(band="red", drop=True))
    elif index == "bai":
        red = reflectance.sel(band="red", drop=True)
        nir = reflectance.sel(band="nir", drop=True)
        # Inverse squared distance to the char point (red 0.1, NIR 0.06) of Chuvieco et al. 2002,
        # with the distance floored (BAI_MIN_DISTANCE): finite on the char point itself.
        distance2 = (0.1 - red) ** 2 + (0.06 - nir) ** 2
        result = 1.0 / np.maximum(distance2, BAI_MIN_DISTANCE ** 2)
    elif index == "nbr":
        swir = next(b for b in _SWIR_NAMES if b in bands)
        result = _normalised_difference(reflectance.sel(band="nir", drop=True), reflectance.sel(band=swir, drop=True))
    else:
        raise ValueError(f"unknown burn index {index!r}")
    result = result.astype(np.float32)
    result.name = index
    result.attrs = {**reflectance.attrs, "index": index, "burn_direction": BURN_DIRECTION[index]}
    return result
