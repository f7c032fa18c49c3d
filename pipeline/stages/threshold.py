"""Turn one date's change into a burn mask.

Each rule has a physical reason:

1. **Background first.** Between two dates the whole scene can drift (season, sun,
   residual haze). Burning only ever adds positive change, so the most common change
   (the histogram mode) is the background, and the width of that peak on its lower side
   (where it falls to half its height) is the background's noise: neither can be
   inflated by burns, however large, nor by a second population below the background
   such as regrowth around a fire or a greener season.
2. **Seeds above the noise and above a burn.** A seed must exceed ``noise_k`` noise
   sigmas *and* the index's burn level (for dNBR 0.10, the lower bound of low severity of
   Key & Benson 2006) and be unambiguous fire: dark in NIR afterwards on four-band scenes, as
   char is, or, where the burned share has been unmixed, at least half white ash
   (:data:`WHITE_ASH_SEED`): white ash reflects ~0.23 in NIR (Pereira et al. 1999), so a burn
   that left mostly ash never gets as dark as char, and its flat spectrum is as plain a mark of
   fire; nor does one that left char and ash mixed, so a pixel at least :data:`FRACTION_SEED`
   burned (char and ash together) passes as well; where SWIR exists, negative NBR afterwards
   (char and ash raise SWIR as they lower NIR; CIR Burnscar's post-fire condition) or a drop
   beyond low severity (dNBR 0.27, Key & Benson 2006: a scorched canopy keeps a positive NBR).
   A low-severity drop that leaves NBR positive is also what vegetation that dried or browned
   between the dates shows.
   Seeds are judged on the 3 x 3 mean change (a matched filter: noise shrinks threefold), or,
   for a burn two pixels across (a compound on a 10 or 20 m grid), on the best 2 x 2 mean that
   holds the pixel (noise halved); a burn one pixel wide or one over dark ground reaches
   neither, and where shares are unmixed, a pixel at least :data:`FRACTION_SEED`
   burned that passes the same char-or-ash test seeds on its own change (above the noise).
3. **Grow into the half-burned.** Burns are contiguous: pixels connected to a seed are
   kept down to half the burn level (a pixel half burned) or ``grow_k`` noise sigmas,
   whichever is higher (hysteresis thresholding).
4. **Half the burn's own contrast at its rim.** A rim pixel is partly burned; its change
   is that fraction of its patch's full contrast (the 75th percentile of the patch). Rim
   pixels below ``mixed_pixel_fraction`` of it are peeled off (one ring: mixing reaches
   about a pixel), so a pixel counts when at least half of it burned. On a severity-scaled
   index (dNBR) severity varies within a burn (fires weaken at their edges), so the contrast a
   rim pixel is compared with is that of its burned neighbours, not of the patch's severe core.
   Where the burned share of each pixel has been unmixed (:mod:`pipeline.stages.fraction`),
   the rim is decided from it instead, except on dNBR: a rim pixel (and a pixel of a hole) is
   burned when at least ``fraction_cut`` of it burned, and so is every other pixel of the
   patch whose share was fitted: the strip of unburned ground between two neighbours' burns,
   or a courtyard's unburned part, which the hysteresis carries across, is cut out where it
   reads under the cut (the patch's fully burned pixels read about 1). A scorched canopy is
   neither char nor ash, so a wildfire's rim is read on the severity scale, not unmixed. But a
   burn one or two pixels across (a compound on a 10 or 20 m grid, a partly caught one on a 3 m
   grid) has no burned neighbour that is not itself mixed, and the sensor's blur is as wide as
   it is: on any index, where a burn has no 3 x 3 core and, with the blur undone
   (:mod:`pipeline.stages.sharpen`), unmixes at least :data:`FRACTION_SEED` burned somewhere,
   its pixels are those at least ``fraction_cut`` burned with the blur undone.
5. **Minimum mapping unit.** Patches smaller than ``min_area_m2`` are dropped; holes of
   up to ``max_hole_px`` pixels inside a patch (ash specks, a pixel of wall) are filled.
   Where shares were unmixed, a patch's area is its burned area as the report gives it (the
   sum of the shares of its pixels and of the mixed ring around it), not its pixel count,
   and it is measured on the patch as grown, before the rim cut; a piece the cut parts from it
   is kept when it burned at least half the unit itself. A burn under the unit is kept down to
   half of it where at least :data:`_CHARRED_CORE_M2` of it (two pixels or more) unmixes at
   least :data:`FRACTION_SEED` burned: a burned hut is char, not a darkening.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import ndimage
from skimage.morphology import remove_small_holes, remove_small_objects

from pipeline.stages.sharpen import ITERATIONS, undo_blur

__all__ = ["ThresholdInfo", "robust_sigma", "background_and_noise", "burn_candidates", "burn_mask", "largest_label_beside",
           "WHITE_ASH_SEED"]

WHITE_ASH_SEED = 0.5
"""Unmixed white-ash share from which a pixel seeds a burn however bright its NIR stays (half the pixel)."""

_EIGHT = np.ones((3, 3), dtype=bool)
_HISTOGRAM_BINS = 400
_CONTRAST_QUANTILE = 0.75  # the typical full contrast of a patch: above its mixed rim, below its noise
_PART_OF_UNIT = 0.5  # share of the mapping unit a piece the rim cut parted from its patch must burn itself
_CHARRED_CORE_M2 = 15.0  # char or ash under the mapping unit that makes a burn: the floor of one burned hut (4-5 m across)
_OWN_FULL_MIN_PX = 9  # interior pixels a patch needs to measure its own full burn reading (a 3 x 3 core)


@dataclass(frozen=True)
class ThresholdInfo:
    """How one date's mask was drawn, for the report."""

    background: float
    noise_sigma: float
    seed_threshold: float
    grow_threshold: float
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


def _patch_contrast(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """75th percentile of ``values`` within each labelled patch (index 0 unused)."""
    contrast = np.zeros(n + 1, dtype=np.float64)
    flat_labels = labels.ravel()
    inside = flat_labels > 0
    lab = flat_labels[inside]
    val = values.ravel()[inside]
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    starts = np.searchsorted(lab, np.arange(1, n + 1), side="left")
    ends = np.searchsorted(lab, np.arange(1, n + 1), side="right")
    picks = starts + ((ends - starts - 1) * _CONTRAST_QUANTILE).astype(int)
    present = ends > starts  # a label with no pixel here (a patch without interior) reads 0
    contrast[1:][present] = val[picks[present]]
    return contrast


def _peel_rim(mask: np.ndarray, values: np.ndarray, fraction: float, local: bool = False) -> np.ndarray:
    """Remove rim pixels whose change is below ``fraction`` of their burn's contrast.

    The contrast is the patch's (75th percentile), or with ``local`` the mean change of the
    rim pixel's burned interior neighbours (3 x 3) where that is lower: on a severity scale the
    burn a rim pixel is mixed with is the lighter one beside it, not the patch's severe core,
    and never more than the patch's full contrast.
    """
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return mask
    floor = fraction * _patch_contrast(values, labels, n)[labels]
    interior = ndimage.binary_erosion(mask, structure=_EIGHT, border_value=1)
    rim = mask & ~interior
    if local:
        beside = ndimage.uniform_filter(interior.astype(float), 3)
        inner = ndimage.uniform_filter(np.where(interior, values, 0.0), 3) / np.maximum(beside, 1e-9)
        floor = np.where(beside > 1e-6, np.minimum(fraction * inner, floor), floor)
    return mask & ~(rim & (values < floor))


def _rim_from_fraction(mask: np.ndarray, values: np.ndarray, fraction: np.ndarray, *, cut: float, fallback: float,
                       max_hole_px: int, allowed: np.ndarray, full_reading: float | None = None) -> np.ndarray:
    """The rim and the holes of each patch decided by each pixel's burned share.

    A pixel of a patch is kept when at least ``cut`` of it burned, as a share of what its
    patch's fully burned pixels read: at the rim (next to a pixel outside it or to a hole) and
    inside, where a strip of unburned ground the hysteresis carried across two neighbours'
    burns would otherwise join them; a hole of up to ``max_hole_px`` pixels is filled only where
    its pixels reach ``cut`` too, so an unburned courtyard is not painted over. A rim pixel
    whose share could not be fitted (no band, no before-state) is judged by its patch's
    contrast (:func:`_peel_rim` with ``fallback``) as before; an interior one stays.
    ``full_reading`` given, every patch's fully burned pixels are taken to read it (1: char is
    char) instead of being measured on the patch.
    """
    fitted = np.isfinite(fraction)
    # The cut is a share of what a fully burned pixel of the same patch reads (its cores' 75th
    # percentile, as the contrast rule measures a patch's full contrast): a savanna or village burn
    # reads 1, a forest burn whose scorched canopy is neither char nor ash reads less, and its rim
    # is judged against that, not against char it never became.
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if full_reading is not None or not n:
        full = np.full(mask.shape, 1.0 if full_reading is None else full_reading)
    else:
        full = full_burn_reading(np.where(fitted, fraction, 0.0), labels, n)[labels]
    enough = fitted & (fraction >= cut * np.where(labels > 0, full, 1.0))
    by_contrast = _peel_rim(mask, values, fallback)
    rim = mask & ~ndimage.binary_erosion(mask, structure=_EIGHT, border_value=1)
    # Inside a patch too: the strip of unburned ground between two compounds' burns (or a courtyard's
    # unburned part) that the hysteresis carried across is not burned where it was fitted below the cut.
    mask = mask & ~(rim & ~fitted & ~by_contrast) & ~(fitted & ~enough)
    if max_hole_px > 0:
        filled = remove_small_holes(mask, max_size=max_hole_px) & allowed
        mask = mask | (filled & (enough | ~fitted))
    return mask


def _rim_by_contrast(mask: np.ndarray, *, centred: np.ndarray, allowed: np.ndarray, local: bool, pixel_area_m2: float,
                     min_area_m2: float, max_hole_px: int, mixed_pixel_fraction: float) -> np.ndarray:
    """Rules 4 and 5 on the index's change: the rim peeled by contrast, specks filled, the unit in pixels."""
    mask = _peel_rim(mask, centred, mixed_pixel_fraction, local=local)
    if max_hole_px > 0:
        mask = remove_small_holes(mask, max_size=max_hole_px) & allowed
    min_px = max(1, int(np.ceil(min_area_m2 / pixel_area_m2)))
    return remove_small_objects(mask, max_size=min_px - 1, connectivity=2)


def _rim_by_fraction(mask: np.ndarray, fraction: np.ndarray, *, centred: np.ndarray, allowed: np.ndarray, cut: float,
                     pixel_area_m2: float, min_area_m2: float, max_hole_px: int, mixed_pixel_fraction: float,
                     full_reading: float | None = None) -> np.ndarray:
    """Rules 4 and 5 on the burned shares: the rim and holes cut at ``cut``, the unit as a burned area."""
    # The unit is judged on the patch as the hysteresis grew it: a small burn that the rim cut parts
    # from its neighbour's is still a burn a seed found. What the cut leaves of it must hold a share
    # of the unit of its own, so a sliver of rim does not become a polygon.
    unit_px = min_area_m2 / pixel_area_m2
    core_px = max(2, int(np.ceil(_CHARRED_CORE_M2 / pixel_area_m2)))
    grown_patch = _large_enough_burns(mask, fraction, allowed, unit_px, core_px=core_px)
    mask = _rim_from_fraction(mask, centred, fraction, cut=cut, fallback=mixed_pixel_fraction,
                              max_hole_px=max_hole_px, allowed=allowed, full_reading=full_reading)
    pieces, _ = ndimage.label(mask, structure=_EIGHT)
    from_kept = np.isin(pieces, np.unique(pieces[grown_patch & mask]))  # a filled hole goes with its piece
    return _large_enough_burns(mask & from_kept, fraction, allowed, _PART_OF_UNIT * unit_px)


_NESTED_HOLE_MIN_PX = 48
"""The fewest unburned pixels around a burn that lies in another burn's courtyard: burns in different
windows are at least 4 px apart, so every pixel within 3 px of it (7 x 7 less the burn) is unburned."""


class _BurnWindows:
    """The burns of a chunk, each group with ``reach`` pixels around it, packed side by side into one array.

    Work that only concerns the burns (undoing the blur, a second rim cut) then runs on the
    burns' own windows, not on the whole chunk, with the same whole-array functions: groups of
    burns within two pixels of one another share a window (their rings and holes meet), and
    every burn lies at least ``reach`` pixels inside its window, beyond what the work reads around
    it. Where the windows would cover more than half the chunk, the chunk itself is the window.
    ``clipped``: some window was cut short by the chunk's edge, so a burn there reaches its window's
    edge, where work that reads past a burn's edge (an erosion) would read the next window.
    """

    def __init__(self, mask: np.ndarray, reach: int):
        self.shape = mask.shape
        groups, n = ndimage.label(ndimage.binary_dilation(mask, structure=_EIGHT), structure=_EIGHT)
        self.whole, self.clipped = True, False
        self.places: list[tuple[tuple[slice, slice], tuple[slice, slice], np.ndarray]] = []
        if n == 0:
            return
        found = ndimage.find_objects(groups)
        boxes = [(max(b[0].start - reach, 0), min(b[0].stop + reach, mask.shape[0]),
                  max(b[1].start - reach, 0), min(b[1].stop + reach, mask.shape[1]), i + 1)
                 for i, b in enumerate(found)]
        self.clipped = any(b[0].start < reach or b[1].start < reach or b[0].stop + reach > mask.shape[0]
                           or b[1].stop + reach > mask.shape[1] for b in found)
        width = max(mask.shape[1], max(x1 - x0 for _, _, x0, x1, _ in boxes))
        row_y = row_x = row_h = 0
        for y0, y1, x0, x1, gid in sorted(boxes, key=lambda b: b[0] - b[1]):  # tallest first: shelves pack tighter
            h, w = y1 - y0, x1 - x0
            if row_x + w > width:
                row_y, row_x, row_h = row_y + row_h, 0, 0
            source = (slice(y0, y1), slice(x0, x1))
            self.places.append((source, (slice(row_y, row_y + h), slice(row_x, row_x + w)), groups[source] == gid))
            row_x, row_h = row_x + w, max(row_h, h)
        self.packed_shape = (row_y + row_h, width)
        self.whole = self.packed_shape[0] * self.packed_shape[1] > 0.5 * mask.size

    def pack(self, array: np.ndarray, fill) -> np.ndarray:
        """``array``'s windows side by side; ``mask``-like arrays keep only each window's own group."""
        if self.whole:
            return array
        out = np.full(self.packed_shape, fill, dtype=array.dtype)
        for source, target, own in self.places:
            out[target] = np.where(own, array[source], fill) if array.dtype == bool else array[source]
        return out

    def unpack_burns(self, packed: np.ndarray) -> np.ndarray:
        """A mask drawn on the windows back on the chunk: every pixel it holds in each window, so the holes
        its group's rules filled come back too (they are no group's pixels; :meth:`unpack` leaves them)."""
        if self.whole:
            return packed
        out = np.zeros(self.shape, dtype=bool)
        for source, target, _ in self.places:
            out[source] |= packed[target]
        return out

    def unpack(self, packed: np.ndarray, fill) -> np.ndarray:
        """Each window's own group back where it came from; ``fill`` elsewhere."""
        if self.whole:
            return packed
        out = np.full(self.shape, fill, dtype=packed.dtype)
        for source, target, own in self.places:
            out[source][own] = packed[target][own]
        return out


def _with_compact_burns_by_share(mask: np.ndarray, fraction: np.ndarray, *, severity: bool, cut: float,
                                 psf_sigma_px: float, **rim_rules) -> np.ndarray:
    """The rim by the date's rule, except for burns too small to have a core of their own.

    The rule is, on a severity scale, the contrast against the burned neighbours (a wildfire's
    scorched canopy is neither char nor ash: :func:`_rim_by_contrast`), elsewhere the burned share
    against what the patch's fully burned pixels read (:func:`_rim_by_fraction`). A burn one or two
    pixels across (a compound on a 10 or 20 m grid, a partly caught one on a 3 m grid) has no
    burned neighbour that is not itself mixed, and the sensor's blur is as wide as it is. Both
    outlines are drawn, the second from the shares with the blur undone
    (:func:`pipeline.stages.sharpen.undo_blur`); where the burn they outline together has fewer
    than :data:`_OWN_FULL_MIN_PX` interior pixels and unmixes at least :data:`FRACTION_SEED`
    burned somewhere (char or ash), the second is kept. On a severity scale a fully burned pixel
    of such a burn is taken to read 1: the date's larger burns there are wildfires, whose canopy
    is no measure of a compound's char.
    """
    reach = ITERATIONS * int(4.0 * psf_sigma_px + 0.5) + 3  # the blur's undoing, then the ring and the holes
    windows = _BurnWindows(mask, reach)
    arrays = {"mask": (mask, False), "fraction": (fraction, np.nan), "centred": (rim_rules["centred"], -np.inf),
              "allowed": (rim_rules["allowed"], False)}
    packed = {name: windows.pack(array, fill) for name, (array, fill) in arrays.items()}
    packed_rules = {**rim_rules, "centred": packed["centred"], "allowed": packed["allowed"]}
    # The date's rule by burned share reads one pixel around each burn and its holes: where no window is
    # cut by the chunk's edge, each patch sees on its window what it sees on the chunk, and is labelled in
    # the same order, so the windows give the whole chunk's outline, float for float (what it adds up
    # per patch, it adds in the grid's order). A group inside another's courtyard is left out of that
    # window, which only changes a hole too large to fill (:data:`_NESTED_HOLE_MIN_PX`). The contrast
    # rule is left on the chunk: its 3 x 3 means are running sums along each whole row.
    if severity:
        general = _rim_by_contrast(mask, local=True, **rim_rules)
    elif not windows.clipped and rim_rules["max_hole_px"] < _NESTED_HOLE_MIN_PX:
        general = windows.unpack_burns(_rim_by_fraction(packed["mask"], packed["fraction"], cut=cut, **packed_rules))
    else:
        general = _rim_by_fraction(mask, fraction, cut=cut, **rim_rules)
    charred_packed = undo_blur(packed["fraction"], psf_sigma_px)
    by_share_packed = _rim_by_fraction(packed["mask"], charred_packed, cut=cut, full_reading=1.0 if severity else None,
                                       **packed_rules)
    charred, by_share = windows.unpack(charred_packed, 0.0), windows.unpack(by_share_packed, False)
    labels, n = ndimage.label(general | by_share, structure=_EIGHT)
    if n == 0:
        return general
    interior = ndimage.binary_erosion(labels > 0, structure=_EIGHT, border_value=1)
    no_core = np.bincount(labels[interior], minlength=n + 1) < _OWN_FULL_MIN_PX
    char_or_ash = np.bincount(labels[np.nan_to_num(charred, nan=0.0) >= FRACTION_SEED], minlength=n + 1) > 0
    compact = no_core & char_or_ash
    compact[0] = False
    return np.where(compact[labels], by_share, general)


def _in_two_by_two_reaching(signal: np.ndarray, weight: np.ndarray, level: float) -> np.ndarray:
    """Pixels held by a 2 x 2 window whose mean ``signal`` over its observed pixels (``weight`` 1)
    reaches ``level`` (> 0); windows reaching past the edge are not used.

    >>> v = np.zeros((4, 4)); v[1:3, 1:3] = 0.2
    >>> _in_two_by_two_reaching(v, np.ones((4, 4)), 0.15).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    >>> int(_in_two_by_two_reaching(v, np.ones((4, 4)), 0.1).sum())  # a window half burned: its mean is 0.1
    12
    """
    def window_sums(x: np.ndarray) -> np.ndarray:  # window with top-left (i, j): rows i, i + 1, columns j, j + 1
        rows = x[:-1] + x[1:]
        return rows[:, :-1] + rows[:, 1:]

    count = window_sums(weight)
    reached = (window_sums(signal) >= level * count) & (count > 0)
    held = np.zeros(signal.shape, dtype=bool)
    for dy in (0, 1):
        for dx in (0, 1):
            held[dy:dy + reached.shape[0], dx:dx + reached.shape[1]] |= reached
    return held


FRACTION_SEED = 0.75
"""Burned share (char and white ash unmixed, together) from which a pixel looks like fire afterwards
whatever its NIR, and seeds on its own change, however little its 3 x 3 neighbourhood changed."""


def _large_enough_burns(mask: np.ndarray, fraction: np.ndarray, allowed: np.ndarray, min_px: float, *,
                        core_px: int | None = None) -> np.ndarray:
    """The patches whose burned area, as the sum of burned shares, reaches the mapping unit, and
    given ``core_px``, the smaller ones with at least that many pixels unmixed :data:`FRACTION_SEED`
    burned.

    The unit is a burned area, measured as the report measures it: each patch's pixels (whole
    where their share could not be fitted) plus the shares of the ring of mixed pixels around
    it that the rim cut left out (:func:`pipeline.stages.polygons.burn_polygons`). Counted in
    pixels over the half cut instead, a 60 m2 burn spread over a dozen pixels each a third to
    a half burned would fall under a 50 m2 unit and vanish with its date.

    The unit keeps out noise and the darkenings that are not fire, which change a pixel's
    reflectance without unmixing it as char or ash. A hut burned alone in a partly caught
    compound (35-40 m2, four 3 m pixels of char) is under the unit but not in doubt: its
    pixels unmix three-quarters burned or more, which neither noise nor the bench's shadows,
    wet soil and leaf drop reach over two neighbouring pixels. Such a patch is kept down to
    half the unit (:data:`_PART_OF_UNIT`), so that a larger unit still drops small burns.
    """
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return mask
    # Only the patches' pixels and their ring are read, in the grid's order, so that each patch's shares add up
    # in the order a sum over the whole grid would take them (the same float to the last bit).
    ring = ndimage.binary_dilation(mask, structure=_EIGHT) & ~mask & allowed & np.isfinite(fraction)
    where = np.flatnonzero(mask | ring)
    inside = mask.ravel()[where]
    owner = np.where(inside, labels.ravel()[where], largest_label_beside(labels, where))  # a ring pixel: the largest beside it
    value = fraction.ravel()[where]
    share = np.where(np.isfinite(value), np.clip(value, 0.0, 1.0), 1.0)  # a patch pixel that could not be fitted counts whole
    burned_px = np.bincount(owner, weights=share, minlength=n + 1)
    keep = burned_px >= min_px - 1e-9
    if core_px is not None:
        charred = np.bincount(owner[inside & (np.nan_to_num(value, nan=0.0) >= FRACTION_SEED)], minlength=n + 1)
        keep |= (charred >= core_px) & (burned_px >= _PART_OF_UNIT * min_px - 1e-9)
    keep[0] = False
    return keep[labels]


def largest_label_beside(labels: np.ndarray, pixels: np.ndarray, relabel: np.ndarray | None = None) -> np.ndarray:
    """For each of ``pixels`` (flat indices into the ``(y, x)`` ``labels``), the largest label in its 3 x 3
    neighbourhood, each label first looked up in ``relabel`` where given (0: not an owner).

    What ``ndimage.grey_dilation(labels, footprint=3 x 3)`` reads at those pixels (beyond the grid's edge
    it repeats the grid's own pixels, which the neighbourhood holds already), without dilating the grid.

    >>> largest_label_beside(np.array([[0, 0, 0], [0, 0, 2], [1, 0, 0]]), np.array([0, 4, 6]))
    array([0, 2, 1])
    """
    rows, cols = np.divmod(pixels, labels.shape[1])
    padded = np.pad(labels, 1)
    around = [padded[rows + 1 + dy, cols + 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.max([relabel[a] for a in around] if relabel is not None else around, axis=0)


def full_burn_reading(fraction: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """What each patch's fully burned pixels read (index 0 unused).

    A patch's own 75th percentile undercounts where the patch is all rim: a partly caught
    compound of a dozen pixels has no pixel unmixed with the unburned ground beside it, and its
    rim judged against that lowered reading keeps pixels less than half burned. A patch without
    ``_OWN_FULL_MIN_PX`` interior pixels (eight neighbours in the patch) therefore borrows what
    the interiors of the date's patches that have them read (their median; the same fire type
    on the same date), where that is higher than its own; a patch with an interior keeps its own.
    """
    own = np.clip(_patch_contrast(fraction, labels, n), 0.0, 1.0)
    interior = ndimage.binary_erosion(labels > 0, structure=_EIGHT, border_value=1)
    inner_labels = np.where(interior, labels, 0)
    counts = np.bincount(inner_labels.ravel(), minlength=n + 1)
    measured = counts >= _OWN_FULL_MIN_PX
    measured[0] = False
    if not measured.any():
        return own
    inner = np.clip(_patch_contrast(fraction, inner_labels, n), 0.0, 1.0)
    pooled = float(np.median(inner[measured]))
    return np.where(measured, own, np.maximum(own, pooled))


def background_and_noise(values: np.ndarray) -> tuple[float, float]:
    """Mode of ``values`` and the Gaussian-consistent spread of the values below it.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> change = np.concatenate([rng.normal(0.02, 0.01, 9000), rng.normal(0.4, 0.1, 6000)])
    >>> [round(v, 2) for v in background_and_noise(change)]
    [0.02, 0.01]
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        return float(lo), 0.0
    counts, edges = np.histogram(finite, bins=_HISTOGRAM_BINS, range=(lo, hi))
    smooth = ndimage.gaussian_filter1d(counts.astype(float), 2.0)
    peak = int(np.argmax(smooth))
    centres = (edges[:-1] + edges[1:]) / 2
    mode = float(centres[peak])
    # The peak's own width on its lower side: half maximum sits 1.1774 sigma from a Gaussian's
    # centre. A second population below the peak (regrowth, a greener season) never reaches it.
    half = smooth[peak] / 2
    lower = np.nonzero(smooth[: peak + 1] < half)[0]
    if lower.size:
        i = int(lower[-1])  # last bin under half maximum; interpolate the crossing
        x_half = centres[i] + (half - smooth[i]) / max(smooth[i + 1] - smooth[i], 1e-12) * (centres[i + 1] - centres[i])
        sigma = float((mode - x_half) / np.sqrt(2 * np.log(2)))
    else:
        below = finite[finite <= mode] - mode
        sigma = float(1.4826 * np.median(np.abs(below))) if below.size else 0.0
    return mode, sigma


def burn_candidates(values: np.ndarray, *, burn_level: float, grow_k: float = 2.0, exclude: np.ndarray | None = None,
                    background_noise: tuple[float, float] | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """The pixels a burn mask of one date can hold, and the background and noise they were judged on.

    Every burn grows from a seed through pixels above the growth threshold (rule 3), so nothing
    outside these pixels can be burned on the date; a step that is costly per pixel (unmixing
    the burned share) need only be done on them and the ring around them. ``values`` is the
    ``(y, x)`` change, ``exclude`` as :func:`burn_mask`, which takes the returned background and
    noise as its ``background_noise`` so both judge on the same figures.
    """
    values = values.astype(np.float64)
    allowed = np.isfinite(values) if exclude is None else np.isfinite(values) & ~exclude
    if not allowed.any():
        return np.zeros(values.shape, dtype=bool), (float("nan"), float("nan"))
    background, sigma = background_noise if background_noise is not None else background_and_noise(values[allowed])
    with np.errstate(invalid="ignore"):
        candidates = allowed & (values - background >= max(grow_k * sigma, burn_level / 2))
    return candidates, (float(background), float(sigma))


def burn_mask(
    delta: xr.DataArray,
    *,
    burn_level: float,
    pixel_area_m2: float,
    post_nir: xr.DataArray | None = None,
    post_nbr: xr.DataArray | None = None,
    exclude: np.ndarray | None = None,
    noise_k: float = 4.0,
    grow_k: float = 2.0,
    max_post_nir: float = 0.15,
    max_post_nbr: float = -0.10,
    seed_dnbr_no_char: float = 0.27,
    mixed_pixel_fraction: float = 0.5,
    local_rim_contrast: bool = False,
    min_area_m2: float = 50.0,
    max_hole_px: int = 2,
    background_noise: tuple[float, float] | None = None,
    fraction: np.ndarray | None = None,
    fraction_cut: float = 0.5,
    white_ash: np.ndarray | None = None,
    psf_sigma_px: float = 0.5,
) -> tuple[xr.DataArray, ThresholdInfo]:
    """Burn mask of one date from its oriented change (positive = more burned).

    Parameters
    ----------
    delta:
        ``(y, x)`` change; NaN where not observed (never burned then).
    burn_level:
        The index's change of a burned pixel, in index units (seeds reach it, growth half of it).
    pixel_area_m2:
        Area of one pixel, for the minimum mapping unit.
    post_nir:
        ``(y, x)`` NIR reflectance after the change; seeds must be darker than
        ``max_post_nir``. ``None`` skips the darkness rule (indices with SWIR).
    post_nbr:
        ``(y, x)`` NBR after the change; seeds must not exceed ``max_post_nbr`` (char and ash
        have negative NBR) unless their change reaches ``seed_dnbr_no_char`` (a canopy fire).
        ``None`` skips the rule (scenes without SWIR).
    local_rim_contrast:
        Rule 4 compares a rim pixel with its burned neighbours instead of its whole patch
        (``True`` for a severity-scaled index, whose contrast varies within a burn).
    exclude:
        ``(y, x)`` True where a pixel cannot be new (already burned on an earlier date).
    background_noise:
        ``(background, sigma)`` measured beforehand on the whole scene; a chunk of a large
        scene is thresholded with the scene's figures, not its own, so chunks agree.
    fraction:
        ``(y, x)`` burned share of each pixel on this date (:func:`pipeline.stages.fraction.burned_fraction`;
        NaN where it could not be fitted). Given, the rim and the holes of each patch are decided
        by ``fraction >= fraction_cut`` instead of the patch's contrast.
    fraction_cut:
        Burned share from which a rim or hole pixel counts as burned (0.5: at least half of it).
    white_ash:
        ``(y, x)`` unmixed white-ash share of each pixel (:class:`pipeline.stages.fraction.Fraction`);
        a pixel at least :data:`WHITE_ASH_SEED` white ash passes the darkness rule.
    psf_sigma_px:
        The sensor's blur (Gaussian sigma, grid pixels), undone on the shares before the rim of a
        burn without a core is cut (:mod:`pipeline.stages.sharpen`).

    Examples
    --------
    >>> d = np.zeros((40, 40), np.float32); d[10:20, 10:20] = 0.25
    >>> d += np.random.default_rng(0).normal(0, 0.005, d.shape).astype(np.float32)
    >>> mask, info = burn_mask(xr.DataArray(d, dims=("y", "x")), burn_level=0.08, pixel_area_m2=9.0)
    >>> int(mask.sum()), info.n_patches
    (100, 1)
    """
    values = delta.values.astype(np.float64)
    allowed = np.isfinite(values) if exclude is None else np.isfinite(values) & ~exclude
    if not allowed.any():
        empty = xr.zeros_like(delta, dtype=bool)
        return empty, ThresholdInfo(float("nan"), float("nan"), float("nan"), float("nan"), 0, 0)
    candidates, (background, sigma) = burn_candidates(values, burn_level=burn_level, grow_k=grow_k, exclude=exclude,
                                                      background_noise=background_noise)
    centred = np.where(allowed, values - background, -np.inf)
    seed_threshold = max(noise_k * sigma, burn_level)
    grow_threshold = max(grow_k * sigma, burn_level / 2)
    # Seeds are judged on the 3 x 3 mean: a burn larger than the window keeps its change while
    # independent pixel noise shrinks threefold (a matched filter for burns of a few pixels and up).
    signal, weight = np.where(allowed, values - background, 0.0), allowed.astype(np.float64)
    local = ndimage.uniform_filter(signal, 3) / np.maximum(ndimage.uniform_filter(weight, 3), 1e-9)
    # A burn two pixels across (a compound on a 10 m grid) never fills a 3 x 3 window; a 2 x 2 window
    # that holds the pixel is the matched filter at that size (noise halved).
    seeds = allowed & ((local >= max(noise_k * sigma / 3, burn_level))
                       | _in_two_by_two_reaching(signal, weight, max(noise_k * sigma / 2, burn_level)))
    seeds &= centred >= burn_level / 2
    if post_nir is not None:
        dark = np.nan_to_num(post_nir.values, nan=np.inf) <= max_post_nir
        if white_ash is not None:
            dark |= np.nan_to_num(white_ash, nan=0.0) >= WHITE_ASH_SEED
        if fraction is not None:
            # Char and white ash together: a pixel three quarters burned looks burned whatever the split,
            # though half of it white ash (NIR ~0.23) keeps its NIR above the char rule's.
            dark |= np.nan_to_num(fraction, nan=0.0) >= FRACTION_SEED
        seeds &= dark
    if post_nir is not None and fraction is not None and not local_rim_contrast:
        # A small burn over dark ground: its NIR fell less than the burn level and its 3 x 3 mean is diluted
        # by the ground around it, but the pixel itself unmixes as mostly char or ash.
        mostly_burned = np.nan_to_num(fraction, nan=0.0) >= FRACTION_SEED
        seeds |= allowed & mostly_burned & (centred >= max(noise_k * sigma, burn_level / 2)) & dark
    if post_nbr is not None:
        seeds &= (np.nan_to_num(post_nbr.values, nan=np.inf) <= max_post_nbr) | (centred >= seed_dnbr_no_char)
    grown, _ = ndimage.label(candidates, structure=_EIGHT)
    kept = np.unique(grown[seeds])
    mask = np.isin(grown, kept[kept > 0])
    rim_rules = {"centred": centred, "allowed": allowed, "pixel_area_m2": pixel_area_m2, "min_area_m2": min_area_m2,
                 "max_hole_px": max_hole_px, "mixed_pixel_fraction": mixed_pixel_fraction}
    if fraction is None:
        mask = _rim_by_contrast(mask, local=local_rim_contrast, **rim_rules)
    else:
        mask = _with_compact_burns_by_share(mask, fraction, severity=local_rim_contrast, cut=fraction_cut,
                                            psf_sigma_px=psf_sigma_px, **rim_rules)
    n_patches = int(ndimage.label(mask, structure=_EIGHT)[1])
    info = ThresholdInfo(background, float(sigma), float(seed_threshold), float(grow_threshold), n_patches, int(mask.sum()))
    out = xr.DataArray(mask, dims=delta.dims, coords=delta.coords, attrs={**delta.attrs, **info.as_dict()})
    return out, info
