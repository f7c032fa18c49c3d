"""Baselines for the accuracy benchmark: the methods investigators would otherwise run.

A benchmark that shows burnscan alone proves little; it must show, on the same scenes,
what the established methods find. These functions are those methods, written as they
were published, not weakened: a baseline made artificially poor would prove nothing.
They are **not part of the pipeline** (nothing in :mod:`pipeline.run` calls them) and
take the pipeline's *raw* input, before co-registration or normalisation, because none of
the published methods co-registers or normalises scenes.

==========================  ===========================================================
:func:`fixed_threshold`     dNBR >= 0.10, the lower bound of USGS "low severity" (UN-SPIDER
                            recommended practice; dNDVI on 4-band scenes)
:func:`two_condition`       dNBR >= 0.15 and post-fire NBR <= -0.10 (CIR Burnscar)
:func:`control_ratio`       village NIR over a control ring's NIR, a persistent drop
                            (Marx, Windisch & Kim 2019), per pixel
:func:`control_ratio_village`  the same at village level, as published: per-date alerts
==========================  ===========================================================

Conventions shared by every baseline:

- Input: the stack of :func:`pipeline.readers.recognise.load_sources`, ``reflectance (time, band, y, x)``
  and ``clear (time, y, x)``, times sorted.
- Output: ``first_seen`` (y, x) int16, the index of the first scene on which the method
  calls the pixel burned, -1 for never. A pixel keeps its first date.
- Scenes are read date by date, the way an analyst reads each new scene against the
  previous one: each pixel is compared with its *own* last clear observation, so a pixel
  under cloud is skipped, never compared.
- ``use_clear_mask=True`` by default. The published practice picks cloud-free scenes by
  hand (UN-SPIDER) or discards scenes by cloud percentage (CIR); on a stack of every
  delivered scene, the provider's cloud mask is the fair stand-in for that choice. Pass
  ``False`` to see the methods with no masking at all (NaN pixels are still skipped).

References
----------
.. [1] Key, C. H. & Benson, N. C. (2006). Landscape Assessment: ground measure of severity,
   the Composite Burn Index; and remote sensing of severity, the Normalized Burn Ratio.
   USDA Forest Service, RMRS-GTR-164-CD.
.. [2] UN-SPIDER Knowledge Portal. Recommended Practice: Burn Severity Mapping (Sentinel-2,
   dNBR and the USGS classes); code at github.com/UN-SPIDER/burn-severity-mapping-EO.
.. [3] Marx, A., Windisch, R. & Kim, J. S. (2019). Detecting village burnings with
   high-cadence smallsats: a case-study in the Rakhine State of Myanmar. Remote Sensing
   Applications: Society and Environment 14.
.. [4] Centre for Information Resilience, Burnscar (github.com/Centre-for-Information-
   Resilience/Burnscar), Sentinel-2 validator ``src/arson/validators/gee.py``.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import numpy.typing as npt
import xarray as xr
from scipy import ndimage

from pipeline.errors import ParameterError

__all__ = [
    "FixedIndex",
    "SEVERITY_NODATA",
    "USGS_DNBR_BOUNDS",
    "USGS_SEVERITY_LABELS",
    "control_ratio",
    "control_ratio_village",
    "control_ring",
    "fixed_threshold",
    "two_condition",
    "usgs_severity_classes",
]

FixedIndex = Literal["auto", "nbr", "ndvi"]
"""Index of :func:`fixed_threshold`: ``auto`` is NBR when ``swir22`` is present, else NDVI."""

USGS_DNBR_BOUNDS: tuple[float, ...] = (-0.25, -0.10, 0.10, 0.27, 0.44, 0.66)
"""Lower bounds (inclusive) of the USGS dNBR classes -1 .. 4 (Key & Benson 2006)."""

USGS_SEVERITY_LABELS: dict[int, str] = {
    -2: "enhanced regrowth, high",
    -1: "enhanced regrowth, low",
    0: "unburned",
    1: "low severity",
    2: "moderate-low severity",
    3: "moderate-high severity",
    4: "high severity",
}
"""Name of each class returned by :func:`usgs_severity_classes`."""

SEVERITY_NODATA = -128
"""Class given to NaN dNBR (pixel not observed on one of the two dates)."""

_TABLE_DECIMALS = 3  # Key & Benson tabulate dNBR x 1000 as integers: the table's precision
_NBR_SWIR = "swir22"  # NBR uses SWIR2 (~2.2 um): Landsat TM band 7, Sentinel-2 B12
_NO_SWIR_HINT = ("; 4-band scenes (PlanetScope) have no SWIR: use fixed_threshold (dNDVI) or "
                 "control_ratio on them")


# --- shared plumbing --------------------------------------------------------------------

def _check_stack(stack: xr.Dataset, *, use_clear_mask: bool) -> None:
    """Fail early, with the fix, on a stack that is not the pipeline's raw stack."""
    if not isinstance(stack, xr.Dataset) or "reflectance" not in stack:
        raise ParameterError(f"stack must be an xarray.Dataset with a 'reflectance' variable, got "
                             f"{type(stack).__name__}; pass the stack of pipeline.readers.recognise.load_sources")
    dims = stack["reflectance"].dims
    if dims != ("time", "band", "y", "x"):
        raise ParameterError(f"reflectance has dims {dims}, expected ('time', 'band', 'y', 'x'); "
                             f"transpose it with .transpose('time', 'band', 'y', 'x')")
    if "band" not in stack["reflectance"].coords:
        raise ParameterError("reflectance has no 'band' coordinate; name the bands (e.g. 'red', 'nir')")
    if use_clear_mask:
        if "clear" not in stack:
            raise ParameterError("stack has no 'clear' mask; add it or pass use_clear_mask=False")
        if stack["clear"].dims != ("time", "y", "x"):
            raise ParameterError(f"clear has dims {stack['clear'].dims}, expected ('time', 'y', 'x')")
    if "time" in stack.coords and stack.sizes["time"] > 1:
        times = stack["time"].values
        if not np.all(times[1:] > times[:-1]):
            raise ParameterError("scenes are not in strictly increasing time order; sort with "
                                 "stack.sortby('time') and drop duplicate acquisitions")


def _bands(stack: xr.Dataset, names: tuple[str, ...], *, method: str, hint: str = "") -> dict[str, np.ndarray]:
    """The named bands as float64 (time, y, x) arrays, or an error naming what is missing."""
    present = [str(b) for b in stack["reflectance"]["band"].values]
    missing = [n for n in names if n not in present]
    if missing:
        raise ParameterError(f"{method} needs band(s) {', '.join(missing)}; the stack has "
                             f"{', '.join(present)}{hint}")
    reflectance = stack["reflectance"]
    # float64: an index difference at a class bound must not depend on float32 rounding.
    return {n: reflectance.sel(band=n).values.astype(np.float64) for n in names}


def _observed(stack: xr.Dataset, arrays: list[np.ndarray], *, use_clear_mask: bool) -> np.ndarray:
    """(time, y, x) True where every band used is finite and, if asked, the ground is clear."""
    seen = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    if use_clear_mask:
        seen &= stack["clear"].values.astype(bool)
    return seen


def _normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(total) > 1e-6, (a - b) / total, np.nan)


def _first_seen_pairwise(values: np.ndarray, observed: np.ndarray,
                         burned: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """First scene on which ``burned(previous, current)`` holds against the pixel's last clear value."""
    first_seen = np.full(values.shape[1:], -1, dtype=np.int16)
    last = np.full(values.shape[1:], np.nan)
    for t in range(values.shape[0]):
        seen = observed[t]
        comparable = seen & np.isfinite(last) & (first_seen < 0)
        hit = np.zeros_like(seen)
        hit[comparable] = burned(last[comparable], values[t][comparable])
        first_seen[hit] = t
        last[seen] = values[t][seen]
    return first_seen


def _at_table_precision(values: np.ndarray) -> np.ndarray:
    """Round to the 0.001 of the USGS table, so float noise cannot move a value across a bound."""
    return np.round(values, _TABLE_DECIMALS)


# --- fixed dNBR threshold (UN-SPIDER / USGS) ----------------------------------------------

def _resolve_fixed_index(stack: xr.Dataset, index: FixedIndex) -> Literal["nbr", "ndvi"]:
    present = [str(b) for b in stack["reflectance"]["band"].values]
    if index not in ("auto", "nbr", "ndvi"):
        raise ParameterError(f"index={index!r} is not one of 'auto', 'nbr', 'ndvi'")
    if index != "auto":
        return index
    if _NBR_SWIR in present:
        return "nbr"
    if any(b.startswith("swir") for b in present):
        raise ParameterError(f"fixed_threshold needs band {_NBR_SWIR} for NBR; the stack has "
                             f"{', '.join(present)}; NBR is defined with SWIR2, so pass index='ndvi' "
                             f"to threshold dNDVI instead")
    return "ndvi"


def fixed_threshold(
    stack: xr.Dataset,
    *,
    threshold: float = 0.1,
    index: FixedIndex = "auto",
    use_clear_mask: bool = True,
) -> npt.NDArray[np.int16]:
    """First date each pixel's dNBR (or dNDVI) reaches a fixed threshold: the burn-severity guides' practice.

    The UN-SPIDER recommended practice, run by many analysts, differences the Normalized
    Burn Ratio ``NBR = (NIR - SWIR2) / (NIR + SWIR2)`` before and after a fire,
    ``dNBR = NBR(before) - NBR(after)``, and classes it with the USGS bounds; every class
    from "low severity" up (dNBR >= 0.10) counts as burned. There is no co-registration,
    no radiometric normalisation and no check of the noise: the threshold is the same for
    every scene pair. Here the pair is each scene and each pixel's last clear observation.

    Scenes without SWIR (PlanetScope) get the same rule on NDVI (``(NIR - red)/(NIR + red)``,
    dNDVI >= 0.10), the fallback analysts use there. Both indices are ratios, so a gain
    common to all bands cancels, but a gain or haze that differs between bands does not.

    Parameters
    ----------
    stack:
        Raw stack (``reflectance``, ``clear``), as loaded.
    threshold:
        Smallest difference called burned. 0.10 is the lower bound of USGS "low severity".
        Differences are compared at the table's precision (0.001), so the map equals
        ``usgs_severity_classes(dnbr) >= 1`` pixel for pixel.
    index:
        ``"auto"`` (NBR if ``swir22`` is present, else NDVI), ``"nbr"`` or ``"ndvi"``.
    use_clear_mask:
        Skip pixels that are not clear (see the module docstring for why this is the default).

    Returns
    -------
    numpy.ndarray
        ``first_seen`` (y, x) int16 scene index, -1 where never called burned.

    Raises
    ------
    ParameterError
        (a ``ValueError``) for a stack lacking the bands of the index, or a bad option.

    References
    ----------
    Key & Benson (2006) [1]_ for dNBR and its classes; UN-SPIDER recommended practice [2]_.

    Examples
    --------
    >>> refl = np.array([[[[0.30]], [[0.15]]], [[[0.06]], [[0.10]]]], np.float32)  # 2 dates, NIR + SWIR2
    >>> stack = xr.Dataset({"reflectance": (("time", "band", "y", "x"), refl),
    ...                     "clear": (("time", "y", "x"), np.ones((2, 1, 1), bool))},
    ...                    coords={"band": ["nir", "swir22"]})
    >>> fixed_threshold(stack).tolist()
    [[1]]
    """
    _check_stack(stack, use_clear_mask=use_clear_mask)
    chosen = _resolve_fixed_index(stack, index)
    other = _NBR_SWIR if chosen == "nbr" else "red"
    bands = _bands(stack, ("nir", other), method=f"fixed_threshold (d{chosen.upper()})")
    values = _normalised_difference(bands["nir"], bands[other])
    observed = _observed(stack, [values], use_clear_mask=use_clear_mask)
    return _first_seen_pairwise(values, observed,
                                lambda before, after: _at_table_precision(before - after) >= threshold)


def usgs_severity_classes(dnbr: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """USGS burn-severity class of each dNBR value, for reporting.

    Classes (Key & Benson 2006), each including its lower bound: -2 enhanced regrowth high
    (< -0.25), -1 enhanced regrowth low (-0.25 to < -0.10), 0 unburned (-0.10 to < 0.10),
    1 low (0.10 to < 0.27), 2 moderate-low (0.27 to < 0.44), 3 moderate-high (0.44 to
    < 0.66), 4 high (>= 0.66). Values are rounded to 0.001 first, the precision of the
    published table (dNBR x 1000 as integers), so float32 0.44 is class 3, not 2. Values
    beyond the table's span (about -0.5 .. 1.3, usually cloud, water or misregistration)
    stay in the end classes; NaN gives :data:`SEVERITY_NODATA`.

    References
    ----------
    Key & Benson (2006) [1]_; UN-SPIDER recommended practice [2]_.

    Examples
    --------
    >>> usgs_severity_classes([-0.3, -0.1, 0.099, 0.1, 0.27, 0.44, 0.66, np.nan]).tolist()
    [-2, 0, 0, 1, 2, 3, 4, -128]
    """
    values = _at_table_precision(np.asarray(dnbr, dtype=np.float64))
    classes = (np.digitize(values, USGS_DNBR_BOUNDS) - 2).astype(np.int8)
    classes[~np.isfinite(values)] = SEVERITY_NODATA
    return classes


# --- two-condition rule (CIR Burnscar) ----------------------------------------------------

def two_condition(
    stack: xr.Dataset,
    *,
    dnbr_min: float = 0.15,
    post_nbr_max: float = -0.10,
    use_clear_mask: bool = True,
) -> npt.NDArray[np.int16]:
    """First date each pixel passes CIR Burnscar's conservative rule: dNBR >= 0.15 and post-fire NBR <= -0.10.

    The Centre for Information Resilience checks active-fire alerts on Sentinel-2 (NIR B8,
    SWIR2 B12) with two conditions at once: the NBR must drop by at least ``dnbr_min``
    *and* be clearly negative afterwards. The second condition keeps out vegetation that
    merely dried or was harvested (NBR falls but stays positive): fewer false alarms, at
    the cost of missing light burns. CIR then calls an event burned when more than 10 such
    pixels lie near the alert; that is a yes/no per alert, not a pixel rule, and is not
    applied here.

    Parameters
    ----------
    stack:
        Raw stack with ``nir`` and ``swir22`` bands.
    dnbr_min:
        Smallest NBR drop (CIR's ``nbr_difference_limit``).
    post_nbr_max:
        Largest NBR after the fire (CIR's ``nbr_after_lte``).
    use_clear_mask:
        Skip pixels that are not clear. CIR filters whole scenes by cloud percentage; the
        per-pixel provider mask is the fair stand-in on a stack of every delivered scene.

    Returns
    -------
    numpy.ndarray
        ``first_seen`` (y, x) int16 scene index, -1 where never called burned.

    Raises
    ------
    ParameterError
        (a ``ValueError``) on scenes without ``swir22``: the rule needs NBR.

    References
    ----------
    Centre for Information Resilience, Burnscar [4]_; Key & Benson (2006) [1]_ for NBR.

    Examples
    --------
    >>> refl = np.array([[[[0.30]], [[0.15]]], [[[0.06]], [[0.10]]]], np.float32)  # NBR 0.33 -> -0.25
    >>> stack = xr.Dataset({"reflectance": (("time", "band", "y", "x"), refl),
    ...                     "clear": (("time", "y", "x"), np.ones((2, 1, 1), bool))},
    ...                    coords={"band": ["nir", "swir22"]})
    >>> two_condition(stack).tolist()
    [[1]]
    """
    _check_stack(stack, use_clear_mask=use_clear_mask)
    bands = _bands(stack, ("nir", _NBR_SWIR), method="two_condition (dNBR and post-fire NBR)",
                   hint=_NO_SWIR_HINT)
    nbr = _normalised_difference(bands["nir"], bands[_NBR_SWIR])
    observed = _observed(stack, [nbr], use_clear_mask=use_clear_mask)
    return _first_seen_pairwise(nbr, observed,
                                lambda before, after: (before - after >= dnbr_min) & (after <= post_nbr_max))


# --- NIR control ratio (Marx, Windisch & Kim 2019) ----------------------------------------

def _mask_2d(mask: npt.ArrayLike | xr.DataArray, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    values = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask)
    if values.ndim != 2 or values.dtype != bool:
        raise ParameterError(f"{name} must be a 2-D boolean (y, x) array, got {values.ndim}-D {values.dtype}; "
                             f"build it with a comparison or .astype(bool)")
    if shape is not None and values.shape != shape:
        raise ParameterError(f"{name} has shape {values.shape}, the scenes are {shape} (y, x); "
                             f"rasterise it on the stack's grid")
    if not values.any():
        raise ParameterError(f"{name} is empty; it must mark at least one pixel")
    return values


def control_ring(
    village_mask: npt.ArrayLike | xr.DataArray,
    *,
    inner_m: float,
    outer_m: float,
    pixel_size: float,
) -> npt.NDArray[np.bool_]:
    """The control area of a village: the ring of pixels between ``inner_m`` and ``outer_m`` from it.

    Marx et al. normalise each village by a nearby control area of similar, unburned land,
    so that what changes the whole scene (haze, a brighter satellite, the season) cancels
    in the ratio. A ring around the village is the simplest such area that needs no
    hand-drawn polygon. The gap of ``inner_m`` keeps the village's own edge, and the
    sub-pixel misregistration of raw scenes, out of the control. Distances are measured
    between pixel centres with an exact Euclidean distance transform (a dilation by a
    disk of any radius). Other settlements or water inside the ring are not removed: mask
    them out of the result if the area has any.

    Parameters
    ----------
    village_mask:
        (y, x) bool, True on the village.
    inner_m, outer_m:
        The ring holds pixels farther than ``inner_m`` and at most ``outer_m`` metres from
        the nearest village pixel. No published value exists; choose a ring wide enough
        for a stable median (hundreds of pixels) and inside the same land cover.
    pixel_size:
        Pixel side in metres.

    Returns
    -------
    numpy.ndarray
        (y, x) bool ring, never overlapping the village.

    References
    ----------
    Marx, Windisch & Kim (2019) [3]_.

    Examples
    --------
    >>> village = np.zeros((7, 7), bool); village[3, 3] = True   # 3 m pixels: neighbours at 3 m are in the gap
    >>> control_ring(village, inner_m=3, outer_m=6, pixel_size=3).astype(int)[1:6, 1:6].tolist()
    [[0, 0, 1, 0, 0], [0, 1, 0, 1, 0], [1, 0, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0]]
    """
    village = _mask_2d(village_mask, "village_mask")
    if not pixel_size > 0:
        raise ParameterError(f"pixel_size={pixel_size} must be positive (metres)")
    if not 0 <= inner_m < outer_m:
        raise ParameterError(f"need 0 <= inner_m < outer_m, got inner_m={inner_m}, outer_m={outer_m}")
    distance = ndimage.distance_transform_edt(~village, sampling=pixel_size)
    ring = (distance > inner_m) & (distance <= outer_m)
    if not ring.any():
        raise ParameterError(f"the control ring ({inner_m}-{outer_m} m) holds no pixel: the village fills the "
                             f"scene or outer_m is below the pixel size ({pixel_size} m); widen the ring")
    return ring


def _check_ratio_options(drop: float, persistence: int, min_clear_fraction: float) -> None:
    if not 0 < drop < 1:
        raise ParameterError(f"drop={drop} must be a fraction between 0 and 1 (0.2 = a 20 % fall)")
    if int(persistence) != persistence or persistence < 1:
        raise ParameterError(f"persistence={persistence} must be a whole number of observations, at least 1")
    if not 0 < min_clear_fraction <= 1:
        raise ParameterError(f"min_clear_fraction={min_clear_fraction} must be in (0, 1]")


def _ratio_inputs(stack: xr.Dataset, village_mask: npt.ArrayLike | xr.DataArray,
                  control_mask: npt.ArrayLike | xr.DataArray, *, method: str,
                  use_clear_mask: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NIR (time, y, x), observed mask, village and control masks, all checked."""
    _check_stack(stack, use_clear_mask=use_clear_mask)
    nir = _bands(stack, ("nir",), method=method)["nir"]
    shape = nir.shape[1:]
    village = _mask_2d(village_mask, "village_mask", shape)
    control = _mask_2d(control_mask, "control_mask", shape)
    overlap = int(np.sum(village & control))
    if overlap:
        raise ParameterError(f"control_mask overlaps village_mask on {overlap} pixel(s); a burn would darken "
                             f"its own control. Build the control with control_ring(...)")
    observed = _observed(stack, [nir], use_clear_mask=use_clear_mask)
    return nir, observed, village, control


def _zonal(nir: np.ndarray, observed: np.ndarray, zone: np.ndarray, statistic: Callable[[np.ndarray], float],
           min_clear_fraction: float) -> np.ndarray:
    """Per date, ``statistic`` of the zone's observed NIR; NaN when too little of the zone was seen."""
    needed = min_clear_fraction * zone.sum()
    out = np.full(nir.shape[0], np.nan)
    for t in range(nir.shape[0]):
        seen = observed[t] & zone
        if seen.any() and seen.sum() >= needed:
            value = float(statistic(nir[t][seen]))
            out[t] = value if value > 0 else np.nan  # a zero control cannot normalise anything
    return out


def _persistent_drop_onsets(ratio: np.ndarray, observed: np.ndarray, *, drop: float,
                            persistence: int) -> np.ndarray:
    """(time, ...) True on the first date of every confirmed drop.

    A drop starts on an observation whose ratio is below ``(1 - drop)`` times the ratio of
    the previous observation (the pre-event level). It is confirmed when that observation
    and the next ``persistence - 1`` observations all stay below that same bound; one
    observation above it ends the run. A confirmed low level becomes the new normal, so a
    second burn of the same place can be confirmed later. Unobserved dates are skipped.
    """
    keep = 1.0 - drop
    shape = ratio.shape[1:]
    onsets = np.zeros(ratio.shape, dtype=bool)
    last = np.full(shape, np.nan)        # ratio at the last observation outside a run
    reference = np.full(shape, np.nan)   # pre-event level of the run under way
    run_start = np.full(shape, -1, dtype=np.intp)
    run_length = np.zeros(shape, dtype=np.intp)
    for t in range(ratio.shape[0]):
        seen = observed[t] & np.isfinite(ratio[t])
        value = np.where(seen, ratio[t], np.nan)
        in_run = run_length > 0
        with np.errstate(invalid="ignore"):
            stays_low = seen & in_run & (value < keep * reference)
            starts = seen & ~in_run & (value < keep * last)  # NaN last (first observation): False
        ended = seen & in_run & ~stays_low
        run_length[stays_low] += 1
        run_length[ended] = 0
        run_start[starts], reference[starts], run_length[starts] = t, last[starts], 1
        confirmed = (starts | stays_low) & (run_length >= persistence)
        onsets[(run_start[confirmed],) + np.nonzero(confirmed)] = True
        run_length[confirmed] = 0
        settle = (seen & ~(starts | stays_low)) | confirmed
        last[settle] = value[settle]
    return onsets


def _first_true(onsets: np.ndarray) -> np.ndarray:
    return np.where(onsets.any(axis=0), onsets.argmax(axis=0), -1).astype(np.int16)


def control_ratio_village(
    stack: xr.Dataset,
    *,
    village_mask: npt.ArrayLike | xr.DataArray,
    control_mask: npt.ArrayLike | xr.DataArray,
    drop: float = 0.2,
    persistence: int = 2,
    min_clear_fraction: float = 0.5,
    use_clear_mask: bool = True,
) -> npt.NDArray[np.bool_]:
    """Per-date village burning alerts from the NIR of a village over its control area (the published form).

    Marx, Windisch & Kim (2019) watched villages in Rakhine on PlanetScope's NIR band:
    char destroys the NIR reflectance of vegetation and thatch, and NIR suffers less from
    haze than the visible bands. Each village is divided by a control area nearby, so a
    scene-wide change (haze, a brighter satellite) cancels, and an alert needs the drop on
    two sequential observations, so one odd scene does not raise it. They report 82.5 %
    agreement with a reference built from very-high-resolution imagery.

    Here the village value is the mean NIR of its clear pixels (a mean falls in proportion
    to the burned share), the control value the median NIR of the control's clear pixels
    (a median shrugs off a few odd pixels). A date is usable when at least
    ``min_clear_fraction`` of both areas is clear. A drop starts on a usable date whose
    ratio is more than ``drop`` below the ratio of the previous usable date (the pre-event
    level) and is confirmed when the next ``persistence - 1`` usable dates stay below that
    bound too; the alert is put on the date the drop started. A drop on the last usable
    dates cannot be confirmed yet and gives no alert. After an alert the low level is the
    new normal, so a second burning of the same village alerts again.

    Parameters
    ----------
    stack:
        Raw stack with a ``nir`` band.
    village_mask, control_mask:
        (y, x) bool masks of the village and its control (see :func:`control_ring`); they
        must not overlap.
    drop:
        Relative fall of the ratio that counts, 0.2 = 20 %. The paper's abstract states the
        rule as the village's NIR being "less than 20 %" of its control pair; read as a fall
        of more than 20 % against the pre-event level, which is how a village that is partly
        burned (char mixed with untouched ground and trees) can trigger it at all. Reading it
        literally as village < 0.2 x control would demand near-total char cover: a village
        of char (NIR ~0.06) next to dry grass (~0.30) sits at 0.2 only when everything burned.
    persistence:
        Usable observations in a row that must stay low (2 in the paper).
    min_clear_fraction:
        Share of each area that must be clear for a date to count (our choice; the paper
        does not say how cloud fragments were handled).
    use_clear_mask:
        Ignore pixels that are not clear (see the module docstring).

    Returns
    -------
    numpy.ndarray
        (time,) bool, True on the first date of each confirmed drop.

    References
    ----------
    Marx, Windisch & Kim (2019) [3]_.

    Examples
    --------
    >>> nir = np.full((3, 1, 5, 5), 0.30, np.float32)   # (time, band, y, x), NIR only
    >>> nir[1:, 0, 2, 2] = 0.06                           # the village chars from date 1 on
    >>> stack = xr.Dataset({"reflectance": (("time", "band", "y", "x"), nir),
    ...                     "clear": (("time", "y", "x"), np.ones((3, 5, 5), bool))},
    ...                    coords={"band": ["nir"]})
    >>> village = np.zeros((5, 5), bool); village[2, 2] = True
    >>> ring = control_ring(village, inner_m=3, outer_m=9, pixel_size=3)
    >>> control_ratio_village(stack, village_mask=village, control_mask=ring).tolist()
    [False, True, False]
    """
    _check_ratio_options(drop, persistence, min_clear_fraction)
    nir, observed, village, control = _ratio_inputs(stack, village_mask, control_mask,
                                                    method="control_ratio_village", use_clear_mask=use_clear_mask)
    village_nir = _zonal(nir, observed, village, np.mean, min_clear_fraction)
    control_nir = _zonal(nir, observed, control, np.median, min_clear_fraction)
    ratio = (village_nir / control_nir)[:, None]
    onsets = _persistent_drop_onsets(ratio, np.isfinite(ratio), drop=drop, persistence=int(persistence))
    return onsets[:, 0]


def control_ratio(
    stack: xr.Dataset,
    *,
    village_mask: npt.ArrayLike | xr.DataArray,
    control_mask: npt.ArrayLike | xr.DataArray,
    drop: float = 0.2,
    persistence: int = 2,
    min_clear_fraction: float = 0.5,
    use_clear_mask: bool = True,
) -> npt.NDArray[np.int16]:
    """First date each village pixel's NIR, over its control area's, drops and stays down (pixel map form).

    Our adaptation of Marx, Windisch & Kim (2019) to a map, so it can be scored pixel by
    pixel beside burnscan: every pixel of ``village_mask`` plays the village. Its ratio is
    its own NIR over the median NIR of the control's clear pixels on the same date
    (the median of a date is used only when ``min_clear_fraction`` of the control is
    clear). A pixel is called burned when its ratio falls more than ``drop`` below its ratio
    on its previous clear date and stays below that same bound on its next clear
    observation (``persistence=2``); ``first_seen`` is the first of those observations.
    The published idea is unchanged: a scene-wide darkening moves the control too, and a
    single dark scene is not enough. What changes: the published method alerts per
    village, not per pixel (see :func:`control_ratio_village`), and on raw scenes a single
    pixel's ratio also reacts to misregistration at sharp edges, which a village mean smooths.

    Parameters
    ----------
    stack:
        Raw stack with a ``nir`` band.
    village_mask:
        (y, x) bool, the pixels watched. Pixels outside it are never called burned (-1):
        the method watches villages, so score it on the area it watches.
    control_mask:
        (y, x) bool control area (see :func:`control_ring`), not overlapping the village.
    drop:
        Relative fall that counts, 0.2 = 20 % (see :func:`control_ratio_village` for why).
    persistence:
        Clear observations in a row that must stay low (2 in the paper).
    min_clear_fraction:
        Share of the control that must be clear for a date's median to be used.
    use_clear_mask:
        Ignore pixels that are not clear (see the module docstring).

    Returns
    -------
    numpy.ndarray
        ``first_seen`` (y, x) int16 scene index, -1 where never called burned.

    References
    ----------
    Marx, Windisch & Kim (2019) [3]_.

    Examples
    --------
    >>> nir = np.full((3, 1, 5, 5), 0.30, np.float32)   # (time, band, y, x), NIR only
    >>> nir[1:, 0, 2, 2] = 0.06                           # the centre pixel chars from date 1 on
    >>> stack = xr.Dataset({"reflectance": (("time", "band", "y", "x"), nir),
    ...                     "clear": (("time", "y", "x"), np.ones((3, 5, 5), bool))},
    ...                    coords={"band": ["nir"]})
    >>> village = np.zeros((5, 5), bool); village[1:4, 1:4] = True
    >>> ring = ~village
    >>> control_ratio(stack, village_mask=village, control_mask=ring)[1:4, 1:4].tolist()
    [[-1, -1, -1], [-1, 1, -1], [-1, -1, -1]]
    """
    _check_ratio_options(drop, persistence, min_clear_fraction)
    nir, observed, village, control = _ratio_inputs(stack, village_mask, control_mask,
                                                    method="control_ratio", use_clear_mask=use_clear_mask)
    control_nir = _zonal(nir, observed, control, np.median, min_clear_fraction)
    with np.errstate(invalid="ignore"):
        ratio = nir / control_nir[:, None, None]
    onsets = _persistent_drop_onsets(ratio, observed & village[None], drop=drop, persistence=int(persistence))
    return _first_true(onsets)
