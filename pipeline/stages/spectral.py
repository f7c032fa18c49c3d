"""Is a darkening fire-like? The spectral test that sets non-fire change apart from burns.

A burn is found as a drop of the burn index (on four-band scenes, of the NIR itself). Other
changes drop the NIR too, and each leaves a different mark on the other bands, read here on
the normalised reflectance between a pixel's last clear scene (the before-state) and the
scene on which it changed:

- **Fire** turns fuel into char and ash. Both are spectrally flat from the visible to the NIR
  (no red edge: Trigg & Flasse 2000, Pereira et al. 1999): char darkens every band, to a
  few hundredths; white ash brightens the visible bands of a dark fuel but is flat too.
- **Vegetation loss** (leaf drop, harvest of a green crop) takes away chlorophyll and leaf
  structure: the NIR falls but the red *rises* (less chlorophyll absorption, soil and bare
  branches show), and what is left still has a red edge (a positive NDVI well above a flat
  spectrum's). Tucker 1979: red and NIR move in opposite directions with green biomass.
- **Wet soil and shadow** multiply the reflectance of every band by a common factor: water
  in the pores darkens soil through the visible and the NIR roughly in proportion, keeping its
  spectral shape (Lobell & Asner 2002); a shadow keeps the diffuse share of the light. Both
  keep a large part of the reflectance (more than half of a dry soil's NIR when wet), where
  char leaves a fifth of it or less.

The test has two steps, each with its reason:

1. **Per pixel, vegetation**: the red rose by at least :data:`RED_RISE` while the NIR fell by
   at least as much, the before-state had a red edge (NDVI at least :data:`VEGETATED_NDVI`:
   there was vegetation to lose) and the after-state is not flat: it still has one (NDVI above
   :data:`FLAT_NDVI`), or the ground laid bare is a red soil (its red above its green by more than
   :data:`FLAT_VISIBLE`: a harvest down to sand reads NDVI 0.1, like char), so it is neither char nor
   ash. White ash over dry grass also raises the red while the NIR falls, but its after-state is
   flat, so it is kept.
2. **Per patch, proportional darkening**: the patch's most changed half (its core, ranked by
   the mean of the band ratios, so that no one band's noise picks it: rim pixels are mixed with
   the unburned ground around them and a partly burned pixel is a scaled-down copy of its
   ground) is compared band by band; when the green, red and NIR keep their
   proportions (after/before ratios within :data:`SHAPE_TOLERANCE` of each other) and the NIR
   keeps at least :data:`KEPT_NIR` of its before-state, the patch is wet soil or shade, not char,
   unless mixing toward char explains the core as well. A pixel partly charred over bright yard
   soil also darkens every band by nearly one factor and keeps half its NIR, because char is
   flat and dark; but it is the before-state plus a share of char, ``(1 - f) before + f char``,
   which pulls every band toward the same few hundredths, where shade and water scale each band,
   ``k before``. Both models have one free number per pixel; the core is proportional only when
   scaling leaves at most :data:`SCALING_FIT` of the squared residual mixing leaves (summed over
   the core's pixels and bands). Blue is left out: haze path radiance and the blue skylight that
   lights a shadow act on it most.

A patch most of whose pixels fail step 1, or whose core fails step 2, is not a burn. Without
a red and an NIR band (or without any earlier clear scene) nothing is tested, and it says so.
On scenes with SWIR the drop of NBR is the spectral test (:data:`NBR_JUDGED`): char and ash
raise the SWIR as they lower the NIR, and the threshold stage seeds a burn there only where
the NBR afterwards is negative or dropped beyond moderate severity (Key & Benson 2006). The
visible/NIR rules above are not applied to them: a scorched canopy, burned but not consumed,
loses NIR and gains red while keeping a red edge, exactly as leaf drop does, and only the
SWIR tells the two apart. One change drops the NBR of vegetation without being a burn: a cloud,
whose NIR and SWIR read alike; it brightens every band, the NIR included, where char and ash darken
the NIR, so a patch most of whose pixels did is not fire-like (:data:`BRIGHTENED`). On a pair of
scenes nothing else screens an unflagged cloud out.

References
----------
Lobell, D. B. & Asner, G. P. (2002). Moisture effects on soil reflectance. Soil Science
Society of America Journal 66(3), 722-727.
Pereira, J. M. C. et al. (1999). Spectral characterisation and discrimination of burnt areas.
In Chuvieco, E. (ed.), Remote Sensing of Large Wildfires, Springer, 123-138.
Trigg, S. & Flasse, S. (2000). Characterizing the spectral-temporal response of burned
savannah using in situ spectroradiometry and infrared thermometry. International Journal of
Remote Sensing 21(16), 3161-3168.
Tucker, C. J. (1979). Red and photographic infrared linear combinations for monitoring
vegetation. Remote Sensing of Environment 8(2), 127-150.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.stages.fraction import CHAR

__all__ = ["NOT_TESTED", "FIRE_LIKE", "NBR_JUDGED", "STAYED", "VEGETATION", "PROPORTIONAL", "BRIGHTENED", "NON_FIRE", "TEST_NAMES", "REASONS",
           "TEST_BANDS", "RED_RISE", "VEGETATED_NDVI", "FLAT_NDVI", "FLAT_VISIBLE", "SHAPE_TOLERANCE", "KEPT_NIR", "SCALING_FIT", "scaling_beats_mixing",
           "spectral_codes", "spectral_verdict"]

NOT_TESTED, FIRE_LIKE, VEGETATION, PROPORTIONAL, NBR_JUDGED, STAYED, BRIGHTENED = 0, 1, 2, 3, 4, 5, 6
"""Per-pixel verdict codes (int8); :data:`NBR_JUDGED`: a scene with SWIR, judged by its NBR drop;
:data:`STAYED`: a proportional darkening that the next clear scene still showed as it was (set by
:mod:`pipeline.stages.dating`, which sees the later scenes: shade moves and wet soil dries, char stays)."""
NON_FIRE = (VEGETATION, PROPORTIONAL, BRIGHTENED)
"""The codes of changes that are not burns."""

TEST_NAMES = {NOT_TESTED: "not tested", FIRE_LIKE: "fire-like", VEGETATION: "not fire-like", PROPORTIONAL: "not fire-like",
              NBR_JUDGED: "fire-like", STAYED: "fire-like", BRIGHTENED: "not fire-like"}
"""``spectral_test`` of each code, as polygons carry it."""

REASONS = {
    NOT_TESTED: "not tested: the scenes lack a red or an NIR band, or no earlier clear scene to compare with",
    FIRE_LIKE: "darkened as char or ash does: no red rise over lost vegetation, and not a proportional darkening",
    VEGETATION: ("the red rose while the NIR fell, and what is left is not flat as char and ash are (a red edge "
                 "remains, or a red soil was laid bare): vegetation lost its leaves or was cut (leaf drop, harvest), "
                 "not burned"),
    PROPORTIONAL: ("every band darkened in proportion and kept most of its reflectance: wet soil or shadow, "
                   "not char"),
    NBR_JUDGED: ("NBR dropped as burning does (with SWIR a burn is seeded only where the NBR afterwards is negative "
                 "or dropped beyond moderate severity); the visible/NIR test is not applied, since a scorched "
                 "canopy keeps a red edge as leaf drop does"),
    BRIGHTENED: ("every band read brightened, the NIR included: a cloud, haze or snow over the ground, not char or ash, "
                 "which darken the NIR"),
    STAYED: ("every band darkened nearly in proportion, as shade and wet soil do and as char over bright ground "
             "partly does, and the darkening stayed as it was on the next clear scene: shade moves and wet soil "
             "dries, char stays"),
}
"""``spectral_reason`` of each code: one sentence a reader can check on the before/after figures."""

SWIR_BANDS = ("swir16", "swir22")
"""With either, the scene is judged by its NBR drop, not by the visible/NIR rules."""
TEST_BANDS = ("green", "red", "nir")
"""The bands the test reads (blue is left out: haze and skylight act on it most); a chunked run keeps them."""
RED_RISE = 0.02
"""Red rise (and NIR fall), reflectance, that counts as a move: above normalised scenes' noise (~0.005-0.01)."""
VEGETATED_NDVI = 0.2
"""Before-state NDVI from which a pixel had vegetation to lose (bare soils and char read 0.05-0.15)."""
FLAT_NDVI = 0.10
"""After-state NDVI of a flat spectrum: char about 0.09, white ash 0.02 (Trigg & Flasse 2000)."""
FLAT_VISIBLE = 0.12
"""After-state visible slope, ``(red - green) / (red + green)``, of a flat spectrum: white ash 0.02-0.05, char
about 0.1 (Trigg & Flasse 2000). Bare sandy and lateritic soils are red, 0.15-0.3: a harvested field or a
cleared garden reads NDVI 0.1 like char, but a red rise to a red soil is not ash."""
SHAPE_TOLERANCE = 0.15
"""Spread of the after/before ratios of green, red and NIR that still counts as one common factor."""
KEPT_NIR = 0.4
"""Share of the before-state NIR a patch core keeps when wet or shaded, not burned (char keeps 0.15-0.25)."""
SCALING_FIT = 0.85
"""Largest ratio of the scaling model's squared residual to the char-mixing model's at which a core reads as
shade or wet soil: scaling must explain it clearly better, since both fit a mixed char pixel over bright
soil to within the noise. On the simulated cases shade and wet soil read 0.3-0.8, partial burns 0.45-2.0."""

_EIGHT = np.ones((3, 3), dtype=bool)


def _band(stack: np.ndarray, bands: list[str], name: str) -> np.ndarray | None:
    return stack[bands.index(name)].astype(np.float64) if name in bands else None


def _ndvi(nir: np.ndarray, red: np.ndarray) -> np.ndarray:
    total = nir + red
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(total) > 1e-6, (nir - red) / total, np.nan)


def spectral_codes(new: np.ndarray, before: np.ndarray, after: np.ndarray, *, bands: list[str],
                   min_pixels: int = 1) -> np.ndarray:
    """Verdict of every pixel of ``new``: fire-like, vegetation, proportional darkening or not tested.

    Parameters
    ----------
    new
        ``(y, x)`` True where the burn mask found a new burn on this date.
    before, after
        ``(band, y, x)`` normalised reflectance of each pixel's last clear scene and of this date's
        scene (NaN where not observed).
    bands
        Band names of the first axis.
    min_pixels
        The minimum mapping unit in pixels: a fire-like fragment smaller than it, left inside a
        patch of vegetation change once the vegetation pixels are taken out, is part of that
        change (a pixel of leaf drop whose red rise the noise hid), not a burn of its own.

    Returns
    -------
    numpy.ndarray
        ``(y, x)`` int8: :data:`NOT_TESTED` outside ``new`` and where the bands are missing, else
        :data:`FIRE_LIKE`, :data:`VEGETATION` or :data:`PROPORTIONAL`, decided per patch (one
        verdict for every pixel of an 8-connected patch, except the vegetation pixels of a patch
        that is mostly fire-like where they form a block at least three pixels thick, which stay
        vegetation: a tree that shed its leaves beside a burned compound is not part of the burn,
        while a one- or two-pixel strip along a burn is its mixed rim).

    Examples
    --------
    A tree shedding its leaves (NIR 0.34 -> 0.22, red 0.08 -> 0.11) beside thatch turned to char:

    >>> bands = ["blue", "green", "red", "nir"]
    >>> before = np.zeros((4, 5, 8)); after = np.zeros((4, 5, 8))
    >>> before[:, :, :3] = np.array([0.04, 0.07, 0.08, 0.34])[:, None, None]
    >>> after[:, :, :3] = np.array([0.07, 0.10, 0.11, 0.22])[:, None, None]
    >>> before[:, :, 3:] = np.array([0.13, 0.19, 0.25, 0.36])[:, None, None]
    >>> after[:, :, 3:] = np.array([0.04, 0.04, 0.05, 0.06])[:, None, None]
    >>> spectral_codes(np.ones((5, 8), bool), before, after, bands=bands)[2].tolist()
    [2, 2, 2, 1, 1, 1, 1, 1]
    """
    codes = np.zeros(new.shape, dtype=np.int8)
    red_b, red_a = _band(before, bands, "red"), _band(after, bands, "red")
    nir_b, nir_a = _band(before, bands, "nir"), _band(after, bands, "nir")
    if red_b is None or nir_b is None or not new.any():
        return codes
    if any(b in bands for b in SWIR_BANDS):
        codes[new] = NBR_JUDGED  # the NBR seed rules are the test here (module docstring)
        # A cloud drops the NBR of vegetation too (its NIR and SWIR alike), but it brightens every band
        codes[_brightened_patches(new, before, after, bands)] = BRIGHTENED
        return codes
    seen = new & np.isfinite(red_b) & np.isfinite(red_a) & np.isfinite(nir_b) & np.isfinite(nir_a)
    green_a = _band(after, bands, "green")
    with np.errstate(invalid="ignore"):
        # not flat afterwards: a red edge left, or a red soil laid bare (a flat spectrum is neither)
        edged = _ndvi(nir_a, red_a) > FLAT_NDVI
        if green_a is not None:
            edged |= _ndvi(red_a, green_a) > FLAT_VISIBLE
        vegetation = (seen & (red_a - red_b >= RED_RISE) & (nir_a - nir_b <= -RED_RISE)
                      & (_ndvi(nir_b, red_b) >= VEGETATED_NDVI) & edged)
    shape_bands = [b for b in ("green", "red", "nir") if b in bands]
    labels, n = ndimage.label(new, structure=_EIGHT)
    for i, where in enumerate(ndimage.find_objects(labels), start=1):
        patch = labels[where] == i
        tested = patch & seen[where]
        if not tested.any():
            continue
        veg = vegetation[where] & patch
        if veg.sum() >= 0.5 * tested.sum():
            codes[where][patch] = VEGETATION
            continue
        # In a mostly fire-like patch, only vegetation change at least three pixels thick is taken out:
        # a thinner strip along the patch is its rim, where char or ash is mixed with the unburned
        # vegetation around it and so keeps a red edge (a tree that shed its leaves is a block).
        cores, n_veg = ndimage.label(veg, structure=_EIGHT)
        thick = np.unique(cores[ndimage.binary_opening(veg, structure=_EIGHT)])
        veg = np.isin(cores, thick[thick > 0])
        rest = tested & ~veg
        verdict = FIRE_LIKE
        if rest.any() and _proportional(before[(slice(None), *where)], after[(slice(None), *where)], rest, bands,
                                        shape_bands):
            verdict = PROPORTIONAL
        codes[where][patch] = verdict
        codes[where][veg] = VEGETATION
        if veg.any() and min_pixels > 1:
            pieces, n_pieces = ndimage.label(patch & ~veg, structure=_EIGHT)
            sizes = np.bincount(pieces.ravel(), minlength=n_pieces + 1)
            codes[where][(pieces > 0) & (sizes[pieces] < min_pixels)] = VEGETATION
    return codes


def _brightened_patches(new: np.ndarray, before: np.ndarray, after: np.ndarray, bands: list[str]) -> np.ndarray:
    """The 8-connected patches of ``new`` at least half of whose observed pixels brightened in every visible band
    and in the NIR by :data:`RED_RISE` or more: a cloud, haze or snow, never char or ash, which darken the NIR.

    >>> bands = ["blue", "red", "nir", "swir22"]
    >>> before = np.array([0.04, 0.05, 0.30, 0.15])[:, None, None] * np.ones((4, 2, 3))
    >>> after = before.copy(); after[:, :, :2] = np.array([0.45, 0.45, 0.46, 0.40])[:, None, None]  # a cumulus
    >>> after[:, :, 2] = np.array([0.03, 0.04, 0.10, 0.20])[:, None]  # char, beside it but its own patch
    >>> new = np.ones((2, 3), bool); new[:, 1] = False
    >>> _brightened_patches(new, before, after, bands).astype(int).tolist()
    [[1, 0, 0], [1, 0, 0]]
    """
    rows = [bands.index(b) for b in ("blue", "green", "red", "nir") if b in bands]
    with np.errstate(invalid="ignore"):
        rise = after[rows] - before[rows]
    seen = np.isfinite(rise).all(axis=0) & new
    bright = seen & (rise >= RED_RISE).all(axis=0)
    labels, n = ndimage.label(new, structure=_EIGHT)
    if not n or not bright.any():
        return np.zeros(new.shape, dtype=bool)
    share = ndimage.sum_labels(bright, labels, np.arange(1, n + 1)) / np.maximum(
        ndimage.sum_labels(seen, labels, np.arange(1, n + 1)), 1)
    return np.concatenate([[False], share >= 0.5])[labels]


def _proportional(before: np.ndarray, after: np.ndarray, pixels: np.ndarray, bands: list[str],
                  shape_bands: list[str]) -> bool:
    """Whether the core of a patch darkened by one common factor that kept most of its NIR."""
    # The most changed half (the least mixed with unchanged ground), ranked by the mean of the bands'
    # after/before ratios: ranked by one band's drop, the core would gather the pixels whose noise
    # pulled that band down, and a shadow that dims every band alike would read as that band falling most.
    with np.errstate(invalid="ignore", divide="ignore"):
        kept = np.mean([after[bands.index(name)][pixels] / before[bands.index(name)][pixels] for name in shape_bands],
                       axis=0)
    if not np.isfinite(kept).any():
        return False
    core = kept <= np.nanmedian(kept)
    ratios = []
    for name in shape_bands:
        b = before[bands.index(name)][pixels][core]
        a = after[bands.index(name)][pixels][core]
        denominator = float(np.median(b))
        if denominator <= 1e-6:
            return False
        ratios.append(float(np.median(a)) / denominator)
    if len(ratios) < 2:
        return False
    kept_nir = ratios[shape_bands.index("nir")]
    common = max(ratios) / max(min(ratios), 1e-6) <= 1 + SHAPE_TOLERANCE
    if not (common and kept_nir >= KEPT_NIR):
        return False
    rows = [bands.index(name) for name in shape_bands]
    b, a = before[rows][:, pixels][:, core], after[rows][:, pixels][:, core]
    return scaling_beats_mixing(b, a, np.array([CHAR[name] for name in shape_bands]))


def scaling_beats_mixing(before: np.ndarray, after: np.ndarray, char: np.ndarray) -> bool:
    """Whether ``after = k before`` (shade, water) fits ``(band, pixel)`` clearly better than mixing toward char.

    Each model is fitted per pixel by least squares (one number each: ``k``, or the char share
    ``f`` of ``before + f (char - before)``); the squared residuals are summed over the pixels and
    bands whose values are all finite, and scaling must leave at most :data:`SCALING_FIT` of what
    mixing leaves.

    >>> soil = np.array([[0.19], [0.25], [0.36]]); char = np.array([0.04, 0.05, 0.06])
    >>> scaling_beats_mixing(soil, 0.5 * soil, char)
    True
    >>> scaling_beats_mixing(soil, soil + 0.5 * (char[:, None] - soil), char)
    False
    """
    seen = np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0)
    b, a = before[:, seen], after[:, seen]
    if b.shape[1] == 0:
        return False
    toward = char[:, None] - b
    drop = a - b
    share = (drop * toward).sum(axis=0) / np.maximum((toward * toward).sum(axis=0), 1e-12)
    mixing = float(((drop - share * toward) ** 2).sum())
    k = (a * b).sum(axis=0) / np.maximum((b * b).sum(axis=0), 1e-12)
    scaling = float(((a - k * b) ** 2).sum())
    return scaling <= SCALING_FIT * mixing


def spectral_verdict(codes: np.ndarray) -> tuple[str, str]:
    """``(spectral_test, spectral_reason)`` of a group of pixels (a polygon) from their codes.

    The most common tested verdict wins (a fire-like patch with a few vegetation pixels left in
    is fire-like); with no pixel tested, "not tested".

    >>> spectral_verdict(np.array([1, 1, 2], np.int8))[0]
    'fire-like'
    """
    counts = np.bincount(np.asarray(codes, dtype=np.int64).ravel(), minlength=len(TEST_NAMES))
    if counts[1:].sum() == 0:
        return TEST_NAMES[NOT_TESTED], REASONS[NOT_TESTED]
    code = int(np.argmax(counts[1:]) + 1)
    return TEST_NAMES[code], REASONS[code]
