"""What a scene must look like before it counts as an observation of the ground.

A scene read as clear is evidence: "no new burn marks on the observed ground" rests on it.
Numbers that cannot be reflectance of real ground (a saturated or wrongly scaled file, a
constant fill, a strongly negative product, an 8-bit display rendering, complex numbers), a
pixel coarser than a settlement, or a time in the future or before the sensor flew are not
evidence of anything, least of all of absence. This module says why, before any stage counts
such a scene:

- :func:`implausible_dtype` and :func:`implausible_stored`: why a file's values, as stored,
  cannot be read as surface reflectance at all;
- :func:`possible_pixels` and :func:`mask_implausible`: pixels that cannot be reflectance
  are not observed; scenes refused as a whole are not observed anywhere;
- :func:`implausible_reflectance` / :func:`judge_scenes`: why a scene's reflectance over
  the AOI cannot be ground (``None`` when it can); :func:`off_scale`: what its values look like
  when they are on another scale; :func:`nir_below_visible`: why its NIR band cannot be land's (bands in
  another order than the one given);
- :func:`implausible_time`: why an acquisition time cannot be the sensor's;
- :func:`too_coarse`: why a native pixel is too coarse for the analysis grid.

Pure functions on arrays and values; the readers call the first two and the last two with what
they read, and :func:`pipeline.run.calibrate` the others where it judges scenes usable.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Sequence

import numpy as np
from numpy.typing import DTypeLike
import xarray as xr

__all__ = ["PIXEL_RANGE", "SCENE_RANGE", "FIRST_LIGHT", "DARKEST_GROUND", "implausible_dtype", "implausible_stored", "rescaled_rendering",
           "possible_pixels", "mask_implausible", "implausible_reflectance", "nir_below_visible", "bands_exchanged", "off_scale", "judge_scenes", "implausible_time",
           "first_light", "too_coarse"]

PIXEL_RANGE = (-0.2, 2.0)
"""Reflectance a single pixel can have. Landsat C2's offset (-0.2) is the lowest value its scale
can give (DN 1); Sentinel-2's (-0.1) stays above it; surface reflectance above 2 occurs nowhere,
while a saturated 16-bit file read at 1/10000 gives 6.55. Outside: not observed."""

SCENE_RANGE = (-0.05, 1.2)
"""Reflectance the ground of a whole scene stays within. The Sentinel-2 and Landsat offsets
leave small negatives on water and deep shadow, within noise of zero (a few hundredths);
fresh snow and bright unflagged cloud reach 1.0-1.1 in the visible, not 1.2."""

SCENE_SHARE = 0.10
"""Share of a scene's clear pixels outside :data:`SCENE_RANGE` (in any band) that refuses it.
A real scene has well under 1 % there; a tenth of the ground is a wrong scale or offset, a
saturated detector or a corrupt file, not a few odd pixels."""

CONSTANT_SPREAD = 1e-3
"""Interquartile range of reflectance under which a band is constant: ten digital numbers at
the 1/10000 scale of every supported product. The quietest real ground in the test data
(Landsat blue over Chilean forest) spreads 0.007; a fill value or a flat test pattern spreads 0."""

NIR_OVER_VISIBLE = 0.9
"""Median NIR over the median red or green under which a scene's bands are not read as land. Land reads
brighter in the NIR than in the red and green whether it is vegetated, bare or burned: over 1.24x (red) and
1.27x (green) on every real scene of the test data, burned scars included. Below 0.9x: water, snow or cloud
over most of the scene, or bands that are not in the order given (an NIR band read as green or red)."""

MIN_PIXELS = 100
"""Clear pixels needed before a scene's spread is judged (fewer: the clear-share rule decides)."""

_SCALE = 10000.0
"""Stored value of reflectance 1 in an integer surface-reflectance product (Planet, Sentinel-2 L2A, most exports)."""

DARKEST_GROUND = 0.01
"""Reflectance the brightest hundredth of a scene's pixels exceeds in at least one visible band.
The darkest ground there is (fresh char, dense forest canopy, open water) reflects a few
hundredths in the visible, and a scene holding a village holds brighter soil and roofs; stored
times 10000 that floor is 100. Digital numbers of another gain or unit read at 1/10000 stay under
it (a rendering of up to 255 is refused by its range already)."""

_VISIBLE = ("blue", "green", "red", "coastal_blue", "green_i", "yellow")
_EIGHT_BIT_MAX = 255


# When each sensor was launched: nothing it delivers can be older. Sources: USGS "Landsat
# Missions" pages (Landsat 1-9 launch dates), ESA Sentinel-2 mission pages (2A, 2B, 2C), Planet
# (the first Doves, Dove-2, launched on the Soyuz of 19 April 2013). A plain GeoTIFF of unknown
# origin cannot be older than Landsat 1, the first civil multispectral Earth-imaging satellite.
FIRST_LIGHT: dict[str, tuple[str, date]] = {
    "landsat_1": ("Landsat 1", date(1972, 7, 23)),
    "landsat_4": ("Landsat 4", date(1982, 7, 16)),
    "landsat_5": ("Landsat 5", date(1984, 3, 1)),
    "landsat_7": ("Landsat 7", date(1999, 4, 15)),
    "landsat_8": ("Landsat 8", date(2013, 2, 11)),
    "landsat_9": ("Landsat 9", date(2021, 9, 27)),
    "sentinel-2a": ("Sentinel-2A", date(2015, 6, 23)),
    "sentinel-2b": ("Sentinel-2B", date(2017, 3, 7)),
    "sentinel-2c": ("Sentinel-2C", date(2024, 9, 5)),
    "planetscope": ("PlanetScope", date(2013, 4, 19)),
}
_ALIASES = {"landsat": "landsat_4", "sentinel-2": "sentinel-2a", "geotiff": "landsat_1", "unknown": "landsat_1"}
"""A family without its unit: its first member (Collection 2 Level-2 starts with Landsat 4)."""

_FUTURE_SLACK = timedelta(days=1)  # a time-zone slip moves a time by at most 14 h: a day later is no slip

MAX_NATIVE_M = 1000.0
"""A pixel coarser than a kilometre holds a whole village and its fields: its value cannot show
a compound burning, nor that none did."""

MAX_UPSAMPLING = 12.0
"""On analysis grids coarser than about 80 m, a native pixel may be at most this many grid pixels
wide: beyond it bilinear resampling spreads one value over more than 144 grid pixels and the
analysis reads interpolation. Sentinel-2's 20 m bands (6.7x) and Landsat's 30 m (10x) on the
default 3 m grid are under both limits."""


def implausible_dtype(dtype: DTypeLike | str) -> str | None:
    """Why raster values stored as ``dtype`` cannot be read as numbers here, or ``None`` when they can.

    Complex values (a radar or interferometric product) cast to real silently lose their
    imaginary part; booleans and other non-numeric types hold no measurement. GDAL's
    ``complex_int16`` has no numpy type and is recognised by its name.

    >>> implausible_dtype("uint16") is None, implausible_dtype("float32") is None
    (True, True)
    >>> implausible_dtype("complex64")
    'complex values (complex64): a radar or interferometric product, not reflectance'
    """
    name = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    try:
        kind = np.dtype(name).kind
    except TypeError:
        kind = "c" if "complex" in name else "?"
    if kind == "c":
        return f"complex values ({name}): a radar or interferometric product, not reflectance"
    if kind not in "iuf":
        return f"{name} values: not numbers a reflectance can be read from"
    return None


_FEWEST_TO_JUDGE = 1000
"""Stored values (all bands) a sample needs before their range can refuse a file: a few dark pixels at a
scene's edge say nothing of the scene."""


def implausible_stored(stored: np.ndarray, *, dtype: DTypeLike | str, bands: Sequence[str | None]) -> str | None:
    """Why values stored as ``dtype`` cannot be surface reflectance x 10000, or ``None`` when they can.

    Read at 1/10000, such values are darker than any ground and pass every later check: scenes
    read "clear", no burn found, a silent false negative.

    Parameters
    ----------
    stored:
        (band, ...) values of a file as stored (before any scale), NaN where no data; a sample is enough.
    dtype:
        The file's data type.
    bands:
        Name of each band of ``stored`` (``None`` for an unnamed one).

    Notes
    -----
    Refused, after :func:`implausible_dtype`: 8-bit integers (255 at most: an aerial survey's
    uncalibrated digital numbers, such as NAIP's, or a display rendering);
    values of a wider type none of which exceeds 255 (reflectance 0.0255 at most in every band,
    near infrared included, where soil and vegetation reflect over 0.1); a 99th percentile of the
    brightest visible band under :data:`DARKEST_GROUND` x 10000. Zeros are left out: exports
    without a nodata tag fill with them.

    Examples
    --------
    >>> implausible_stored(np.zeros((3, 0)), dtype="uint8", bands=["green", "red", "nir"])
    '8-bit values (0-255): digital numbers or a display rendering, not surface reflectance'
    >>> implausible_stored(np.full((3, 10), 3000.0), dtype="uint16", bands=["green", "red", "nir"]) is None
    True
    """
    unreal = implausible_dtype(dtype)
    if unreal:
        return unreal
    kind = np.dtype(dtype)
    if kind.kind in "iu" and kind.itemsize == 1:
        return (f"8-bit values ({'0-255' if kind.kind == 'u' else '-128 to 127'}): digital numbers or a display rendering, "
                f"not surface reflectance")
    seen = np.asarray(stored, dtype=np.float64).reshape(len(bands), -1)
    with np.errstate(invalid="ignore"):
        positive = [values[np.isfinite(values) & (values > 0)] for values in seen]
    if sum(values.size for values in positive) < _FEWEST_TO_JUDGE:
        return None  # all fill, or a sliver of data at the sample's edge: the clear-share rule says so
    highest = max(float(values.max()) for values in positive if values.size)
    if highest <= _EIGHT_BIT_MAX:
        if kind.kind == "f" and highest <= 100:  # 0-100 in floats: a percentage, as some toolboxes export reflectance
            return (f"no value above {highest:g} in any band ({kind.name}): reflectance in percent (0-100), or an 8-bit "
                    f"rendering, not surface reflectance x {_SCALE:.0f} or 0-1")
        return (f"no value above {highest:g} in any band ({kind.name}): 8-bit values (0-255), a display rendering, "
                f"not surface reflectance x {_SCALE:.0f}")
    visible = [(name, float(np.percentile(values, 99))) for name, values in zip(bands, positive)
               if name in _VISIBLE and values.size]
    if visible:
        name, top = max(visible, key=lambda item: item[1])
        floor = DARKEST_GROUND * _SCALE
        if top < floor:
            return (f"the brightest visible band ({name}) has its 99th percentile at {top:g} (reflectance "
                    f"{top / _SCALE:.4f} at 1/{_SCALE:.0f}), under {floor:.0f}: darker than any ground, "
                    f"not surface reflectance x {_SCALE:.0f}")
    return None


_RENDERING_LEVELS = 255
_ON_LEVELS = 0.99
"""Share of a floating-point file's values on the 1/255 steps of an 8-bit rendering that shows one: reflectance
stored as x 10000 lands on them one time in 51 (and a float32 measurement almost never)."""


def rescaled_rendering(values: np.ndarray) -> str | None:
    """Why floating-point values under 2 (read as reflectance as they are) are an 8-bit rendering divided by
    255, or ``None`` when they are not.

    A display product stretched to 0-255 and saved as floats 0-1 reads as reflectance: the darkest ground
    becomes 0, the brightest 1, and every stretch between scenes a burn (a real composite gave thousands of
    hectares). Its values all lie on steps of 1/255; measured reflectance does not.

    >>> levels = np.arange(256) / 255.0
    >>> rescaled_rendering(np.tile(levels, 10)).startswith("every value a multiple of 1/255")
    True
    >>> rescaled_rendering(np.linspace(0.01, 0.6, 5000).round(4)) is None
    True
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite) & (finite != 0)]
    if finite.size < _FEWEST_TO_JUDGE:
        return None
    steps = finite * _RENDERING_LEVELS
    on_steps = np.abs(steps - np.round(steps)) < 1e-3
    if float(on_steps.mean()) < _ON_LEVELS:
        return None
    return (f"every value a multiple of 1/{_RENDERING_LEVELS} ({np.unique(np.round(steps)).size} levels): an 8-bit display "
            f"rendering divided by {_RENDERING_LEVELS}, not surface reflectance")


def possible_pixels(reflectance: np.ndarray) -> np.ndarray:
    """True where every band of ``reflectance`` (band, ..., y, x) is within :data:`PIXEL_RANGE`, and not every
    band reads exactly 0.

    NaN (no data) is not possible either. Nor is 0 in every band: no ground reflects nothing in every band,
    and that is the fill of a file whose nodata was never declared (``gdalwarp`` without ``-dstnodata``, a
    masked export), which would otherwise read as ground darker than char.

    >>> possible_pixels(np.array([[0.3, -0.1, 6.55, np.nan, 0.0, 0.0], [0.2, 0.1, 0.2, 0.2, 0.0, 0.1]])).tolist()
    [True, True, False, False, False, True]
    """
    low, high = PIXEL_RANGE
    with np.errstate(invalid="ignore"):
        return np.all((reflectance >= low) & (reflectance <= high), axis=0) & np.any(reflectance != 0, axis=0)


def mask_implausible(stack: xr.Dataset, *, refused: Sequence[str | None] = ()) -> xr.Dataset:
    """``stack`` with impossible pixels and refused scenes read as not observed.

    Parameters
    ----------
    stack:
        ``reflectance`` (time, band, y, x) and ``clear`` (time, y, x), as loaded.
    refused:
        Per scene, the reason it is refused as a whole (``None``: kept), e.g. from
        :func:`judge_scenes`; empty keeps every scene.

    Returns
    -------
    xarray.Dataset
        Same coordinates and attributes. Impossible pixels are NaN in every band and not
        clear (so no resampling carries them into their neighbours); every pixel of a refused
        scene is not clear. ``reflectance`` is shared with ``stack`` when no pixel is impossible.
    """
    refl = stack["reflectance"].values
    possible = possible_pixels(np.moveaxis(refl, 1, 0))  # (time, y, x)
    clear = stack["clear"].values & possible
    for t, reason in enumerate(refused):
        if reason:
            clear[t] = False
    out = stack.copy(deep=False)
    out["clear"] = (stack["clear"].dims, clear)
    if not possible.all():
        out["reflectance"] = (stack["reflectance"].dims, np.where(possible[:, None], refl, np.nan).astype(refl.dtype))
    out["clear"].attrs, out["reflectance"].attrs = stack["clear"].attrs, stack["reflectance"].attrs
    return out


def implausible_reflectance(reflectance: np.ndarray, clear: np.ndarray, *, bands: Sequence[str] | None = None) -> str | None:
    """Why one scene's reflectance over the AOI cannot be ground, or ``None`` when it can.

    Parameters
    ----------
    reflectance:
        (band, y, x) reflectance, NaN where not observed.
    clear:
        (y, x) True where the scene is read as showing the ground; only these pixels are judged
        (cloud and no data say nothing about the product's calibration).
    bands:
        Band names, for the reason.

    Notes
    -----
    Refused: more than :data:`SCENE_SHARE` of the clear pixels outside :data:`SCENE_RANGE` in
    any band (saturated, wrongly scaled or offset), or a spread under :data:`CONSTANT_SPREAD`
    in every band (a fill value or a flat pattern: no ground is that uniform).

    Examples
    --------
    >>> refl = np.full((2, 20, 20), 0.3); clear = np.ones((20, 20), bool)
    >>> implausible_reflectance(refl, clear, bands=["red", "nir"])[:37]
    'its reflectance is constant (red 0.30'
    >>> implausible_reflectance(refl + np.random.default_rng(0).normal(0, 0.02, refl.shape), clear) is None
    True
    """
    names, seen = _seen(reflectance, clear, bands)  # gathered once for the tests below (three gathers took 1.2 s of a village run)
    if seen.shape[1] == 0:
        return None  # nothing seen: the clear-share rule says so
    off = _off_scale_of(names, seen)
    if off is not None:
        return f"its reflectance is not physical: {off}; read as not observed"
    if seen.shape[1] >= MIN_PIXELS:
        q25, q75 = np.percentile(seen, [25, 75], axis=1)
        if np.all(q75 - q25 < CONSTANT_SPREAD):
            medians = ", ".join(f"{n} {m:.2f}" for n, m in zip(names, np.median(seen, axis=1)))
            return (f"its reflectance is constant ({medians}; spread under {CONSTANT_SPREAD} in every band): "
                    f"a fill value or a flat pattern, not ground; read as not observed")
    not_land = _nir_below_visible_of(names, seen)
    if not_land is not None:
        return f"{not_land}; read as not observed"
    return None


def nir_below_visible(reflectance: np.ndarray, clear: np.ndarray, *, bands: Sequence[str] | None = None) -> str | None:
    """Why one scene's NIR band cannot be the NIR of land, or ``None`` when it can (or the scene has no NIR and red or
    green band, or too few clear pixels to tell).

    A scene whose bands were written in another order than the one given reads its change in the wrong band, and
    finds a wrong burned area (or none) without any other sign. Land reads brighter in the NIR than in the red and
    green (:data:`NIR_OVER_VISIBLE`), so an NIR band darker than either is another band, or the scene shows no land.

    >>> rng = np.random.default_rng(0); clear = np.ones((20, 20), bool)
    >>> land = np.stack([np.full((20, 20), v) + rng.normal(0, 0.01, (20, 20)) for v in (0.06, 0.09, 0.12, 0.30)])
    >>> nir_below_visible(land, clear, bands=["blue", "green", "red", "nir"]) is None
    True
    >>> nir_below_visible(land[::-1], clear, bands=["blue", "green", "red", "nir"])[:60]
    'its nir band reads darker than its red (medians 0.059 and 0.'
    """
    return _nir_below_visible_of(*_seen(reflectance, clear, bands))


def _nir_below_visible_of(names: list[str], seen: np.ndarray) -> str | None:
    """:func:`nir_below_visible` on the (band, pixel) values :func:`_seen` gathered."""
    if "nir" not in names or seen.shape[1] < MIN_PIXELS:
        return None
    nir = float(np.median(seen[names.index("nir")]))
    for other in ("red", "green"):
        if other in names:
            visible = float(np.median(seen[names.index(other)]))
            if visible > 0 and nir < NIR_OVER_VISIBLE * visible:
                return (f"its nir band reads darker than its {other} (medians {nir:.3f} and {visible:.3f}), where land, "
                        f"burned or not, reads brighter in the NIR: its bands are not in the order given, or it shows "
                        f"water, snow or cloud over most of the AOI")
    return None


EXCHANGE_MARGIN = 0.1
"""How much better a scene's band must correlate with another band of the reference scene than with its own, both
ways, for the two to have been exchanged. Real pairs across a fire stay under -0.04 (ten CAL FIRE pairs); the
NIR and SWIR exchanged in one file of the 5 Incident pair read +0.16."""
_SPECTRAL_ENDS = ("nir", "swir16", "swir22")  # visible bands correlate alike with one another: no exchange shows there
_LEVEL_SLACK = float(np.log(1.3))  # gains between dates: a scene reads up to 30 % brighter or darker than another


def bands_exchanged(scene: np.ndarray, reference: np.ndarray, clear: np.ndarray, *, bands: Sequence[str]) -> str | None:
    """Why two of ``scene``'s bands read each as the other one of ``reference``, or ``None``.

    A band map given in another order for one file than for the other (NIR and SWIR exchanged) passes every
    test of one scene alone where the SWIR is as bright as the red, and turns the burn into a greening: the
    burned area comes out a fraction of the truth, or none. Over the same ground, a band correlates best
    with itself on another date; two bands that each correlate better with the other's (by
    :data:`EXCHANGE_MARGIN`), and read as bright as it too, were exchanged: where a change covers much of a small
    AOI, correlations alone can cross, but the blue of one date never reads as bright as the NIR of the other.
    Judged on the NIR and SWIR bands, against which an exchange matters.

    >>> rng = np.random.default_rng(0); clear = np.ones((30, 30), bool)
    >>> ground = np.stack([rng.random((30, 30)) for _ in range(3)])
    >>> later = ground + rng.normal(0, 0.05, ground.shape)
    >>> bands_exchanged(later, ground, clear, bands=["red", "nir", "swir22"]) is None
    True
    >>> bands_exchanged(later[[0, 2, 1]], ground, clear, bands=["red", "nir", "swir22"])[:45]
    'its nir and swir22 read as the swir22 and nir'
    """
    names = list(bands)
    both = clear & np.all(np.isfinite(scene) & np.isfinite(reference), axis=0)
    if both.sum() < MIN_PIXELS:
        return None
    a, b = scene[:, both], reference[:, both]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(a, b)[: len(names), len(names):]  # c[i, j]: the scene's band i against the reference's band j
    # overwrite_input: the medians may reorder the absolute values in place, a copy made for them alone
    level = tuple(np.log(np.maximum(np.median(np.abs(v), axis=1, overwrite_input=True), 1e-6)) for v in (a, b))

    def as_bright(i: int, j: int) -> bool:  # the scene's band i reads at least as near the reference's band j as its own
        return abs(level[0][i] - level[1][j]) <= abs(level[0][i] - level[1][i]) + _LEVEL_SLACK

    for i, first in enumerate(names):
        for j, second in enumerate(names):
            if j <= i or not ({first, second} & set(_SPECTRAL_ENDS)) or not (as_bright(i, j) and as_bright(j, i)):
                continue
            gain = min(c[i, j] - c[i, i], c[j, i] - c[j, j])
            if np.isfinite(gain) and gain > EXCHANGE_MARGIN:
                return (f"its {first} and {second} read as the {second} and {first} of the other scene (correlations "
                        f"{c[i, j]:.2f} and {c[j, i]:.2f} crosswise, {c[i, i]:.2f} and {c[j, j]:.2f} band to band): the two "
                        f"files' bands are not in the same order")
    return None


def _seen(reflectance: np.ndarray, clear: np.ndarray, bands: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    """Band names, and the (band, pixel) values of the clear pixels finite in every band."""
    names = list(bands) if bands is not None else [f"band {i + 1}" for i in range(reflectance.shape[0])]
    # One gather of the pixels both clear and finite in every band (the same pixels, in the same order, as gathering the
    # clear ones and then dropping those with a NaN).
    return names, reflectance[:, clear & np.all(np.isfinite(reflectance), axis=0)]


def off_scale(reflectance: np.ndarray, clear: np.ndarray, *, bands: Sequence[str] | None = None,
              read_as: str = "") -> str | None:
    """What one scene's values look like when over :data:`SCENE_SHARE` of its clear pixels lie outside
    :data:`SCENE_RANGE` in a band (a wrong scale or offset, or a saturated detector), or ``None``.

    ``read_as`` follows the median, to say how the stored values became reflectance (" after dividing by 10000").

    >>> refl = np.full((1, 10, 10), 3.2); clear = np.ones((10, 10), bool)
    >>> off_scale(refl, clear, bands=["nir"], read_as=" after dividing by 10000")
    'median nir 3.20 after dividing by 10000, 100% of its clear pixels above 1.2 (a wrong scale, or a saturated detector)'
    """
    return _off_scale_of(*_seen(reflectance, clear, bands), read_as=read_as)


def _off_scale_of(names: list[str], seen: np.ndarray, *, read_as: str = "") -> str | None:
    """:func:`off_scale` on the (band, pixel) values :func:`_seen` gathered."""
    low, high = SCENE_RANGE
    for name, values in zip(names, seen if seen.shape[1] else ()):
        below, above = float(np.mean(values < low)), float(np.mean(values > high))
        if above > SCENE_SHARE:
            return (f"median {name} {np.median(values):.2f}{read_as}, {above:.0%} of its clear pixels above {high} "
                    f"(a wrong scale, or a saturated detector)")
        if below > SCENE_SHARE:
            low_values = values[values < low]
            common, count = np.unique(low_values, return_counts=True)
            if count.max() >= 0.9 * low_values.size:  # one value, -9999 or the like: a fill, not ground
                return (f"{below:.0%} of its clear pixels in {name} read one value, {common[count.argmax()]:g}{read_as}: a "
                        f"fill the file does not declare as nodata (declare it, e.g. gdal_edit.py -a_nodata -9999 FILE)")
            return f"median {name} {np.median(values):.2f}{read_as}, {below:.0%} of its clear pixels below {low} (a wrong offset or scale)"
    return None


def judge_scenes(reflectance: np.ndarray, clear: np.ndarray, *, bands: Sequence[str] | None = None) -> list[str | None]:
    """:func:`implausible_reflectance` for each scene of a (time, band, y, x) stack and its (time, y, x) clear mask."""
    return [implausible_reflectance(reflectance[t], clear[t], bands=bands) for t in range(reflectance.shape[0])]


def first_light(sensor: str) -> tuple[str, date]:
    """Name and launch date of ``sensor`` (a :data:`FIRST_LIGHT` key, Landsat ``SPACECRAFT_ID``,
    Sentinel-2 ``platform``...); Landsat 1 for anything unknown.

    >>> first_light("LANDSAT_8")
    ('Landsat 8', datetime.date(2013, 2, 11))
    >>> first_light("Sentinel-2B")[1].year, first_light("a drone")[0]
    (2017, 'Landsat 1')
    """
    key = str(sensor).strip().lower().replace(" ", "_")
    key = _ALIASES.get(key, key)
    return FIRST_LIGHT.get(key, FIRST_LIGHT["landsat_1"])


def implausible_time(when: datetime, *, sensor: str, now: datetime | None = None) -> str | None:
    """Why ``when`` cannot be an acquisition time of ``sensor``, or ``None`` when it can.

    A time more than a day after ``now`` (default: the clock) is in the future; a time before
    the sensor's launch (:data:`FIRST_LIGHT`) was never acquired by it. Naive times are UTC.

    >>> implausible_time(datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc), sensor="sentinel-2a") is None
    True
    >>> implausible_time(datetime(1, 1, 1), sensor="planetscope")
    'acquisition time 0001-01-01T00:00:00 is before PlanetScope existed (launched 2013-04-19)'
    """
    aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    name, launched = first_light(sensor)
    # Compared as aware datetimes, never converted: year 1 at UTC+5 has no UTC form.
    if aware < datetime(launched.year, launched.month, launched.day, tzinfo=timezone.utc):
        return f"acquisition time {when.isoformat()} is before {name} existed (launched {launched.isoformat()})"
    if aware > now + _FUTURE_SLACK:
        return f"acquisition time {when.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%MZ})"
    return None


def too_coarse(native_m: float, grid_m: float) -> str | None:
    """Why a native pixel of ``native_m`` metres is too coarse for a grid of ``grid_m``, or ``None``.

    Refused above the larger of :data:`MAX_NATIVE_M` and :data:`MAX_UPSAMPLING` grid pixels.

    >>> too_coarse(30.0, 3.0) is None, too_coarse(20.0, 3.0) is None
    (True, True)
    >>> too_coarse(3000.0, 3.0)
    'native pixels of 3000 m, coarser than 1000 m (a pixel this size holds a whole village and its fields)'
    """
    limit = max(MAX_NATIVE_M, MAX_UPSAMPLING * grid_m)
    if not native_m > limit:
        return None
    why = ("a pixel this size holds a whole village and its fields" if limit == MAX_NATIVE_M
           else f"more than {MAX_UPSAMPLING:.0f} pixels of the {grid_m:g} m analysis grid")
    return f"native pixels of {native_m:.0f} m, coarser than {limit:.0f} m ({why})"
