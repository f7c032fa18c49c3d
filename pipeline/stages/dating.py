"""Date every burned pixel, as the imagery was read: a bracket between two observations.

Scenes are read in time order. On each date the new burns are the pixels the threshold
stage finds in that date's change and that were not already burned; a burned pixel gets
``first_seen`` (the date it became visible) and ``last_clear_before`` (the last date its
ground was seen clear before that). A pixel under cloud is "not observed" on that date,
never "unburned": its change waits for the next clear date and its bracket widens. Given the
reflectance, each date's new patches also pass the spectral test of
:mod:`pipeline.stages.spectral`: a darkening that is not fire-like (leaf drop, harvest, wet
soil, shadow) is set aside, never dated, and kept where it was so that the report lists it.
Two checks in time frame each date's new patches: a mark the next clear scene no longer
shows is dropped (a cloud shadow, smoke; char inside it that stood out from it on its own scene
and stays is kept: :func:`_transient`), and so is a darkening that only brought the ground
back to how its earlier clear scenes showed it (a shadow back where it falls at the usual
hour, after a before-scene taken at another hour): char is new, never a return. A darkening
that the next clear scene shows was less than half of the mark to come (an early shadow over
a compound that burned the next day) is not dated on its own scene (:func:`_overtaken`).

A proportional darkening (shade, wet soil) that the next clear scene still shows as it was is
char over bright ground, and is dated (:func:`_stayed`). A scene on which a pixel showed a
passing mark (dropped as gone on the next clear scene, overtaken, or set aside as shade or wet soil) is
not that pixel's before-state for later dates: char seen after a cloud shadow differs little
from the shadow, and the burn would be lost. Its change is taken from the last clear scene
that showed the ground as it usually is (:func:`_usual_base`); the bracket still opens at the
last clear scene, the one the report says the burn was not visible on.

A scene taken at another hour than a pixel's before-scene (a lower sun from another azimuth:
:func:`shadows_moved`; months apart, the season moves the sun too) casts long shadows where the
before-scene had none, as dark as char over bright ground. A new patch on it is dated there only when the next clear scene shows it as it
was, or as char lit by another sun (lighter, keeping most of its change), and fire-like; one the next
clear scene shows darker still, much lighter, or a proportional darkening that stayed, may be a shadow
over ground that burned before that next scene: it is not dated on the scene at another hour, and the
burn found later keeps its bracket open at the before-scene (:func:`_shadows_moved_on`), never at the
scene that could not tell. Of a patch dated there, the pixels the next clear scene shows gone are the
long shadow of the burned compound's walls over the ground beside it, not char (:func:`_shadow_fringe`),
and each pixel's burned share is at most what the next clear scene shows (:func:`_share_seen_next`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
import xarray as xr

from pipeline.config import Params
from pipeline.stages.fraction import Fraction, burned_fraction, burned_fraction_of_pixels, fit_noise, unmixing_bands
from pipeline.stages.indices import BURN_LEVELS, SEVERITY_SCALED
from pipeline.stages.spectral import NON_FIRE, NOT_TESTED, PROPORTIONAL, STAYED, spectral_codes
from pipeline.stages.threshold import ThresholdInfo, burn_candidates, burn_mask, full_burn_reading

__all__ = ["date_burns", "burn_level", "shadows_moved", "SHADOW_SHIFT"]


def burn_level(params: Params, index_name: str) -> float:
    """The change of a burned pixel on ``index_name``: the parameter where set, else the index's own (:data:`BURN_LEVELS`)."""
    return params.burn_level if params.burn_level > 0 else BURN_LEVELS[index_name]


def _band_mean(reflectance: np.ndarray, which: list[int]) -> np.ndarray:
    """``(time, y, x)`` mean of the bands ``which`` of a ``(time, band, y, x)`` array: the numbers of
    ``reflectance[:, which].mean(axis=1)`` (added in that order, divided as it divides), bit for bit,
    without the strided reduction that takes a tenth of a village's dating."""
    total = reflectance[:, which[0]].copy()
    for band in which[1:]:
        total += reflectance[:, band]
    np.true_divide(total, np.intp(len(which)), out=total, casting="unsafe")
    return total


def _next_clear(clear: np.ndarray) -> np.ndarray:
    """For each time and pixel, the index of the next clear observation (-1 = none)."""
    out = np.full(clear.shape, -1, dtype=np.int16)
    following = np.full(clear.shape[1:], -1, dtype=np.int16)
    for t in range(clear.shape[0] - 1, -1, -1):
        out[t] = following
        following = np.where(clear[t], t, following)
    return out


def _per_patch(values: np.ndarray, seen: np.ndarray, lab: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch ``1..n`` of the pixels' labels ``lab``: the share of its pixels ``seen`` again and
    the median of ``values`` over them (NaN for a patch none of whose pixels was seen)."""
    seen_share = ndimage.mean(seen.astype(float), lab, np.arange(1, n + 1))
    return seen_share, _median_by_patch(values, seen, lab, n)


def _median_by_patch(values: np.ndarray, where: np.ndarray, lab: np.ndarray, n: int) -> np.ndarray:
    """Per patch ``1..n``: ``np.nanmedian`` of ``values`` over its pixels ``where`` (NaN for none), all patches
    in one sort, not one pass over every pixel per patch (a chunk of a tile holds thousands of patches).

    >>> _median_by_patch(np.array([3.0, 1.0, 2.0, np.nan, 5.0]), np.array([1, 1, 1, 1, 0], bool),
    ...                  np.array([1, 1, 2, 2, 3]), 3).tolist()
    [2.0, 2.0, nan]
    """
    ok = where & ~np.isnan(values)
    group, sample = lab[ok], values[ok]
    sample = sample[np.lexsort((sample, group))]
    counts = np.bincount(group, minlength=n + 1)[1:n + 1]
    starts = np.cumsum(counts) - counts
    median = np.full(n, np.nan)
    has = counts > 0
    low, high = starts[has] + (counts[has] - 1) // 2, starts[has] + counts[has] // 2
    median[has] = (sample[low] + sample[high]) / 2  # the two middle values of an even count, as numpy's median
    return median


def _transient(new: np.ndarray, t: int, values: np.ndarray, direction: int, before: np.ndarray,
               next_clear: np.ndarray, delta_t: np.ndarray, min_pixels: int = 1, rim_cut: float = 0.5,
               tolerance: float = 0.0, moved: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split today's new burn patches into (kept, confirmed, dropped, later) by what the next clear scene shows.

    Char stays: on the next clear observation a real burn keeps most of its change from the
    pre-burn value. A cloud shadow, smoke or a wet patch is gone by then. A patch is dropped
    when at least half its pixels were seen again and their median remaining change is
    under half the change that revealed it. The dropped pixels and, for each new pixel, the
    index of its next clear scene (-1: none) are returned too, so that the report can list
    what was seen once and gone again instead of dropping it without a word.

    A burn's patch can grow into a passing mark beside it (wet soil around a burned compound
    darkens past the grow threshold) and be outnumbered by it: the pixels of a dropped patch
    that darkened more than the mark (:data:`STOOD_OUT` times its median change) and that the
    next clear scene shows as they were (each keeping at least half its change, its index moved
    by at most ``tolerance``: the date's noise times ``noise_k``), where they touch as
    ``min_pixels`` or more (the mapping unit), are char, kept and confirmed, less their rim
    (:func:`_char_inside`); the rest is dropped. Dropped with the mark, that char would be dated
    on a later scene, with a bracket opening on a scene that showed it. Pixels that darkened only
    as the mark did, or were darker under it than the next clear scene shows them (a shadow over
    ground that burned since), may have burned after it: they stay with the mark, and their burn
    is dated later. On a scene at the odd hour (``moved``, (time,): shadows elsewhere than on the
    pixel's before-scene and on its next clear scene), char in the long shadow of that hour is
    lit on the next clear scene and reads lighter by a part of its own few hundredths: there a
    pixel lighter next time that keeps :data:`LIT_CHAR_KEEP` of its change counts as looking as it did.
    """
    later_map = np.full(new.shape, -1, dtype=np.int16)
    labels, n, rows, cols, later, seen = _next_look(new, t, next_clear)
    if n == 0:
        return new, np.zeros_like(new), np.zeros_like(new), later_map
    later_map[rows, cols] = later
    remaining = np.full(rows.shape, np.nan)
    base = values[before[rows, cols], rows, cols]
    remaining[seen] = direction * (values[later[seen], rows[seen], cols[seen]] - base[seen])
    ratio = remaining / np.maximum(delta_t[rows, cols], 1e-9)
    lab = labels[rows, cols]
    seen_share, median_ratio = _per_patch(ratio, seen, lab, n)
    drop = (seen_share >= 0.5) & (median_ratio < 0.5)
    confirmed = (seen_share >= 0.5) & ~drop
    keep_label = np.concatenate([[False], ~drop])
    confirm_label = np.concatenate([[False], confirmed])
    drop_label = np.concatenate([[False], drop])
    kept, sure, dropped = keep_label[labels], confirm_label[labels], drop_label[labels]
    if drop.any():
        # The mark that passed, per patch: the median change of its pixels gone on the next clear scene.
        change = delta_t[rows, cols]
        gone = seen & (ratio < 0.5)
        passed = np.full(n + 1, np.inf)
        mark = np.concatenate([[np.nan], _median_by_patch(change, gone & drop[lab - 1], lab, n)])
        passed[np.isfinite(mark)] = mark[np.isfinite(mark)]
        stood_out = change >= STOOD_OUT * passed[lab]
        # ... and looked then as it does on the next clear scene: char, not a darker shadow over ground that burned since
        unchanged = np.zeros(rows.shape, dtype=bool)
        unchanged[seen] = np.abs(values[later[seen], rows[seen], cols[seen]] - values[t, rows[seen], cols[seen]]) <= tolerance
        if moved is not None and moved.any():
            # This scene at the odd hour (shadows elsewhere than on the before-scene and on the next clear scene):
            # char lit by another sun reads lighter next time by a part of its own few hundredths, keeping most
            # of its change (LIT_CHAR_KEEP), as _shadows_moved_on reads it.
            odd = seen & moved[before[rows, cols]]
            odd[odd] = moved[later[odd]]
            lit = np.zeros(rows.shape, dtype=bool)
            lit[odd] = (direction * (values[later[odd], rows[odd], cols[odd]] - values[t, rows[odd], cols[odd]]) < 0) \
                & (ratio[odd] >= LIT_CHAR_KEEP)
            unchanged |= lit
        char, rim = _char_inside(new.shape, rows, cols, seen & (ratio >= 0.5) & drop[lab - 1], stood_out & unchanged,
                                 remaining <= change + tolerance, remaining, min_pixels, rim_cut)
        kept, sure, dropped = kept | char, sure | char, dropped & ~char & ~rim
    return kept, sure, dropped, later_map


STOOD_OUT = 1.25
"""Char inside a passing mark is seen on its scene as darker than the mark: its change there is at least
this many times the mark's median change (wet soil darkens bright sand by a fifth, char by four fifths;
the same deep shadow over lit ground and over char differs by a half). Under it, a pixel's darkening is
the mark's: what the next clear scene shows there may have burned since."""


def _char_inside(shape: tuple[int, ...], rows: np.ndarray, cols: np.ndarray, stayed: np.ndarray, seen_as_char: np.ndarray,
                 not_darker: np.ndarray, remaining: np.ndarray, min_pixels: int, rim_cut: float) -> tuple[np.ndarray, np.ndarray]:
    """``(char, rim)`` inside a dropped mark: the ``stayed`` pixels ``seen_as_char`` on its scene, where they touch as
    ``min_pixels`` or more.

    A pixel at the burn's edge that the passing mark darkened still holds its share of the
    char on the next clear scene; as the date's rule cuts the rim at ``rim_cut`` of a burned
    pixel, a pixel is char where its remaining change is at least ``rim_cut`` of its patch's
    core (the 90th percentile: char fully inside a pixel). The other pixels that stayed next to
    that char (its blur's reach, one pixel) and ``not_darker`` on the next clear scene are its
    rim: partly burned or wet char, not a passing mark, so neither dated nor the before-state of
    a later date (which would date them there, as burns not visible on this scene). One darker
    still by then may have burned since: it stays with the mark.
    """
    char = np.zeros(shape, dtype=bool)
    if not stayed.any():
        return char, char.copy()
    char[rows[stayed], cols[stayed]] = True
    parts, n_parts = ndimage.label(char, structure=np.ones((3, 3), bool))
    part = parts[rows[stayed], cols[stayed]]
    left = remaining[stayed]
    core = np.array([np.percentile(left[part == i], 90) for i in range(1, n_parts + 1)])
    char[rows[stayed], cols[stayed]] = (left >= rim_cut * core[part - 1]) & seen_as_char[stayed]
    pieces, n_pieces = ndimage.label(char, structure=np.ones((3, 3), bool))
    char &= (np.bincount(pieces.ravel(), minlength=n_pieces + 1) >= min_pixels)[pieces]
    has_char = np.zeros(n_parts + 1, dtype=bool)
    has_char[parts[char]] = True
    rim = np.zeros(shape, dtype=bool)
    rim[rows[stayed], cols[stayed]] = not_darker[stayed]
    return char, rim & has_char[parts] & ~char & ndimage.binary_dilation(char, structure=np.ones((3, 3), bool))


SHADOW_SHIFT = 1.0
"""Two sun positions cast different shadows when the tip of the shadow of an upright object lies
more than this many of its heights apart between them. Walls and huts are 2-3 m high, about
a 3 m pixel: past one height, a shadow covers ground that was lit. PlanetScope's daily passes
over the Sahel differ by a few degrees (about a fifth of a height); a scene at 07:50 UTC instead
of 10:38 (sun 14 degrees high against 48) moves the tips by three heights."""


def shadows_moved(sun_a: tuple[float | None, float | None] | None, sun_b: tuple[float | None, float | None] | None) -> bool:
    """Whether two scenes' suns, ``(elevation, azimuth)`` in degrees from their metadata, cast shadows
    more than :data:`SHADOW_SHIFT` object heights apart. Without both angles of both scenes, or with an
    elevation that is no sun's over lit ground (not in (0, 90] degrees), it cannot tell, and says no (the
    dating then treats the scenes as taken at the same hour)."""
    tips = []
    for sun in (sun_a, sun_b):
        if sun is None or any(v is None or not math.isfinite(v) for v in sun) or not 0.0 < sun[0] <= 90.0:
            return False
        elevation, azimuth = (math.radians(v) for v in sun)
        length = 1.0 / math.tan(max(elevation, math.radians(1.0)))  # in object heights; 57 at a sun 1 degree high
        tips.append((length * math.sin(azimuth), length * math.cos(azimuth)))
    return math.dist(*tips) > SHADOW_SHIFT


OVERTAKEN_SHARE = 0.5
"""A new patch whose change is under this share of the change its next clear scene shows from the same
before-state, with the blue and green bands darkened on both steps, was not yet the mark: less than half burned
by the burned-share rule. Shade at a low sun darkens every band by a third; char the next day darkens
them two to three times as far. White ash blown off leaves char too, but ash brightened blue and green
first, so it is never taken for this."""


def _overtaken(new: np.ndarray, t: int, values: np.ndarray, direction: int, before: np.ndarray,
               next_clear: np.ndarray, delta_t: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Today's new patches that the next clear scene shows were only the start of a darker mark.

    A shadow cast at an early hour over a compound that burned the next day reads as a burn on
    its own scene: its change passes the threshold and the next scene keeps it (char is darker
    still, so it is not gone). It was no burn yet: the mark the next clear scene shows stands
    at least twice as far from the same before-state, and the short visible bands (``visible``:
    ``(time, y, x)`` mean of blue and green) darkened on both steps. Such a patch is not dated
    today; it is a passing mark, and the burn is dated on the scene that shows it. Decided per
    patch on the median of the pixels seen again (at least half of them).
    """
    labels, n, rows, cols, later, seen = _next_look(new, t, next_clear)
    if n == 0:
        return np.zeros_like(new)
    total = np.full(rows.shape, np.nan)
    first_step = np.full(rows.shape, np.nan)
    second_step = np.full(rows.shape, np.nan)
    base = before[rows, cols]
    r, c, lt = rows[seen], cols[seen], later[seen]
    total[seen] = direction * (values[lt, r, c] - values[base[seen], r, c])
    first_step[seen] = visible[t, r, c] - visible[base[seen], r, c]
    second_step[seen] = visible[lt, r, c] - visible[t, r, c]
    lab = labels[rows, cols]
    seen_share, share = _per_patch(delta_t[rows, cols] / np.where(total > 0, total, np.nan), seen, lab, n)
    _, darkened_first = _per_patch(first_step, seen, lab, n)
    _, darkened_next = _per_patch(second_step, seen, lab, n)
    overtaken = (seen_share >= 0.5) & (share < OVERTAKEN_SHARE) & (darkened_first < 0) & (darkened_next < 0)
    return np.concatenate([[False], overtaken])[labels]


RETURN_SHARE = 0.25
"""A new patch whose change from the usual state of its ground is under this share of the change that
revealed it is a return to that state (the before-scene was the odd one), not a burn. A shadow back
where it always falls leaves about none; char over ground that was shaded on some earlier scenes
still stands a third or more of its change below them, so a quarter keeps it."""


def _returned(new: np.ndarray, t: int, values: np.ndarray, direction: int, last_clear: np.ndarray,
              valid: np.ndarray, delta_t: np.ndarray) -> np.ndarray:
    """Today's new patches that only went back to how their ground usually looks: not burns.

    A shadow is where a wall, a hut or a tree lies toward the sun, so it moves with the hour of
    imaging. When the before-scene was taken at another hour (07:50 instead of 10:38: a lower
    sun from another azimuth), ground that is shaded on every scene taken at the usual hour was
    lit on it, and the next scene seems to darken it, although it only looks as it always did.
    Char is new: before the fire every earlier clear scene showed the ground unburned, so the
    burned scene stands as far from their median as from the before-scene. The usual state of a
    pixel is the median of its index over its clear scenes before its before-scene; a patch is
    a return when at least half its pixels have such scenes and their median remaining change
    from it is under :data:`RETURN_SHARE` of the change that revealed them, decided per patch
    (a burned compound partly shaded on one odd earlier scene keeps the rest of its pixels).
    The mirror of :func:`_transient`, which looks forward for a mark that does not stay.
    """
    labels, n = ndimage.label(new, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros_like(new)
    rows, cols = np.nonzero(new)
    earlier = np.arange(t)[:, None] < last_clear[rows, cols][None, :]
    prior = np.where(earlier & valid[:t, rows, cols], values[:t, rows, cols], np.nan)
    seen = np.isfinite(prior).any(axis=0)
    usual = np.full(rows.shape, np.nan)
    if seen.any():
        usual[seen] = np.nanmedian(prior[:, seen], axis=0)
    ratio = direction * (values[t, rows, cols] - usual) / np.maximum(delta_t[rows, cols], 1e-9)
    lab = labels[rows, cols]
    seen_share, median_ratio = _per_patch(ratio, seen, lab, n)
    back = (seen_share >= 0.5) & (median_ratio < RETURN_SHARE)
    return np.concatenate([[False], back])[labels]


def _next_look(marks: np.ndarray, t: int,
               next_clear: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The patches of ``marks`` (labels, count) and, for each of their pixels (rows, cols), the index of
    its next clear scene after ``t`` and whether there is one: what the checks in time look at."""
    labels, n = ndimage.label(marks, structure=np.ones((3, 3), bool))
    rows, cols = np.nonzero(marks)
    later = next_clear[t][rows, cols]
    return labels, n, rows, cols, later, later >= 0


def _usual_base(delta_t: np.ndarray, t: int, values: np.ndarray, direction: int, last_clear: np.ndarray,
                usual_last: np.ndarray, valid_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(base, delta)``: the scene each pixel's change on ``t`` is taken from, and that change.

    ``usual_last`` is, per pixel, the last clear scene before ``t`` that showed no passing mark
    (-1: none). Where it is not the last clear scene, the change is retaken from it; where it
    is -1 (every earlier clear scene had a mark), the last clear scene stays the base.
    """
    base = np.where(usual_last >= 0, usual_last, last_clear).astype(np.int16)
    retake = valid_t & (base >= 0) & (base != last_clear)
    if not retake.any():
        return base, delta_t
    rows, cols = np.nonzero(retake)
    delta = delta_t.copy()
    delta[rows, cols] = direction * (values[t, rows, cols] - values[base[rows, cols], rows, cols])
    return base, delta


def _stayed(marks: np.ndarray, t: int, values: np.ndarray, next_clear: np.ndarray, tolerance: float) -> np.ndarray:
    """The patches of ``marks`` (proportional darkenings) that the next clear scene shows unchanged.

    Shade and wet soil pass: the next clear scene shows the ground lit or dry again (or, where
    it burned meanwhile, darker still). A patch at least half of whose pixels were seen again
    and whose index did not move by then (median move within ``tolerance``, the date's noise
    times ``noise_k``: no change the threshold stage could see) was no passing mark: char over
    bright ground, which darkens nearly in proportion too. A deep shadow that char replaced the
    next day moves by more (char is darker still), and stays set aside. A patch that stayed is a
    burn of this date (:data:`pipeline.stages.spectral.STAYED`); on the last scene nothing can
    tell, and the patch stays set aside.
    """
    labels, n, rows, cols, later, seen = _next_look(marks, t, next_clear)
    if n == 0:
        return np.zeros_like(marks)
    moved = np.full(rows.shape, np.nan)
    moved[seen] = np.abs(values[later[seen], rows[seen], cols[seen]] - values[t, rows[seen], cols[seen]])
    lab = labels[rows, cols]
    seen_share, median = _per_patch(moved, seen, lab, n)
    return np.concatenate([[False], (seen_share >= 0.5) & (median <= tolerance)])[labels]


LIT_CHAR_KEEP = 0.7
"""A patch the next clear scene shows lighter than on a scene at another hour still keeps at least this share of
the change that revealed it when it was char then: char reflects a few hundredths in every band, and a sun at
another height or azimuth moves it by a part of that (a compound's char half in its walls' shadow at dawn, lit
at mid-morning: about 0.85 of the change kept). A shadow deeper than the partial burn that followed it keeps
about half, and a shadow over ground that did not burn keeps none (and is dropped as gone)."""


def _shadows_moved_on(new: np.ndarray, t: int, values: np.ndarray, direction: int, before: np.ndarray,
                      next_clear: np.ndarray, moved: np.ndarray, stayed: np.ndarray, tolerance: float) -> np.ndarray:
    """Today's new patches that a scene taken at another hour than their before-scene cannot date.

    ``moved`` (time,): whether each scene's shadows fall elsewhere than on scene ``t``
    (:func:`shadows_moved`). On such a scene a long shadow over bright ground darkens it as far
    as char, and a compound that burned before the next scene stays dark on it. Char burned before
    ``t`` looks the same on the next clear scene and is fire-like on ``t``; so a patch most of
    whose pixels have a before-scene with other shadows is not dated today when, on at least half
    its pixels seen again, the next clear scene shows it moved (median move beyond ``tolerance``, the
    date's noise times ``noise_k``: darker still where char replaced the shadow; lighter, keeping
    under :data:`LIT_CHAR_KEEP` of its change, where the shadow was deeper than a partial burn that
    followed it; or most of its pixels moved so, a patch part shadow and part burned the next day
    moving both ways) or it was a proportional darkening that stayed (``stayed``: shade and char over
    bright ground both are). Char lit by another sun moves too, lighter or darker by a part of its
    own few hundredths: it keeps most of its change and is dated on its scene. Decided per patch, on
    its pixels less the long shadow beside char that the next clear scene shows gone
    (:func:`_long_shadow_beside_char`).
    """
    if not moved.any():  # every scene at this one's hour: nothing to tell apart
        return np.zeros_like(new)
    labels, n, rows, cols, later, seen = _next_look(new, t, next_clear)
    if n == 0:
        return np.zeros_like(new)
    lab = labels[rows, cols]
    index = np.arange(1, n + 1)
    off_share = ndimage.mean(moved[before[rows, cols]].astype(float), lab, index)
    stayed_share = ndimage.mean(stayed[rows, cols].astype(float), lab, index)
    r, c, lt, base = rows[seen], cols[seen], later[seen], before[rows[seen], cols[seen]]
    darker = np.full(rows.shape, np.nan)
    darker[seen] = direction * (values[lt, r, c] - values[t, r, c])
    kept = np.full(rows.shape, np.nan)  # the share of today's change the next clear scene keeps
    kept[seen] = (direction * (values[lt, r, c] - values[base, r, c])
                  / np.maximum(direction * (values[t, r, c] - values[base, r, c]), 1e-9))
    seen_share, _ = _per_patch(darker, seen, lab, n)
    judged = seen & ~_long_shadow_beside_char(seen, kept, rows, cols, t, values, direction, before, lab, n)
    _, median_darker = _per_patch(darker, judged, lab, n)
    _, median_kept = _per_patch(kept, judged, lab, n)
    # A patch part shadow, part burned the next day moves both ways, its median near nought: most of its pixels moved
    moved_on = judged & ((darker > tolerance) | ((darker < -tolerance) & (kept < LIT_CHAR_KEEP)))
    moved_share = ndimage.sum(moved_on, lab, index) / np.maximum(ndimage.sum(judged, lab, index), 1)
    passed = ((median_darker > tolerance) | ((median_darker < -tolerance) & (median_kept < LIT_CHAR_KEEP))
              | (moved_share >= 0.5))
    undated = (off_share >= 0.5) & (seen_share >= 0.5) & (passed | (stayed_share >= 0.5))
    return np.concatenate([[False], undated])[labels]


def _long_shadow_beside_char(seen: np.ndarray, kept: np.ndarray, rows: np.ndarray, cols: np.ndarray, t: int,
                             values: np.ndarray, direction: int, before: np.ndarray, lab: np.ndarray, n: int) -> np.ndarray:
    """Of each patch's pixels seen again, those gone on the next clear scene beside char that stood out of them.

    A compound's char at the odd hour joins the long shadow of its walls over the ground around it in
    one patch; the shadow is gone on the next clear scene (under half its change kept), the char is not.
    Judged with the shadow, the char looks moved and goes undated. Where the rest of the patch darkened
    at least :data:`STOOD_OUT` times as much as the gone pixels did, as char stands out of a shadow,
    the gone pixels are left out of the judgement. A shadow over ground that burned the next day
    darkened as the shadow beside it did, does not stand out, and is judged with it.
    """
    gone = seen & (kept < 0.5)
    change = direction * (values[t, rows, cols] - values[before[rows, cols], rows, cols])
    rest = seen & ~gone
    _, gone_change = _per_patch(change, gone, lab, n)
    _, rest_change = _per_patch(change, rest, lab, n)
    stood_out = np.isfinite(gone_change) & np.isfinite(rest_change) & (rest_change >= STOOD_OUT * gone_change)
    return gone & np.concatenate([[False], stood_out])[lab]


def _shadow_fringe(new: np.ndarray, t: int, values: np.ndarray, direction: int, before: np.ndarray,
                   next_clear: np.ndarray, moved: np.ndarray, delta_t: np.ndarray) -> np.ndarray:
    """The pixels of today's dated patches that are a long shadow of this hour beside char: gone on the next clear scene.

    On a scene at another hour than a pixel's before-scene (``moved``, as in :func:`_shadows_moved_on`),
    the walls and huts of a burned compound cast long shadows over the unburned ground around it,
    and the shadow joins the char in one patch. The patch stays, char stays; but a pixel the next
    clear scene, itself at another hour than ``t``, shows with under half the change that revealed it
    (the rule by which :func:`_transient` drops a patch) was no char: it is dropped, as seen once and gone.
    A rim pixel only partly burned may go with the shadow: a burn found on it later keeps its bracket
    open at the before-scene. On scenes at the hour of their before-scene the rule stays per patch, so
    that noise does not fray a burn.
    """
    if not moved.any() or not new.any():
        return np.zeros_like(new)
    rows, cols = np.nonzero(new & moved[before])
    later = next_clear[t][rows, cols]
    seen = later >= 0
    seen[seen] = moved[later[seen]]  # this hour the odd one: the next clear scene's shadows fall elsewhere too
    rows, cols, later = rows[seen], cols[seen], later[seen]
    remaining = direction * (values[later, rows, cols] - values[before[rows, cols], rows, cols])
    gone = remaining < 0.5 * np.maximum(delta_t[rows, cols], 1e-9)
    fringe = np.zeros_like(new)
    fringe[rows[gone], cols[gone]] = True
    return fringe


def _share_seen_next(fraction: Fraction, new: np.ndarray, burned: np.ndarray, reflectance: np.ndarray,
                     base: np.ndarray, t: int, next_clear: np.ndarray, moved: np.ndarray, *, bands: list[str],
                     skip: tuple[str, ...] | list[str], noise: dict[str, list]) -> Fraction:
    """Date ``t``'s burned shares, each at most what the pixel's next clear scene shows where ``t`` was at another hour.

    A scene at another hour than a pixel's before-scene (``moved``) shows the char of a burned
    compound with the long shadows of its walls over the unburned part of the pixel: unmixed there,
    the shadow reads as more char. Shadows only add darkness on ``t``, and char does not fade
    in days, so the share burned by ``t`` is at most what either scene shows: the smaller of the
    two fits is kept, per pixel (its own uncertainty with it). Only where ``t`` is the odd hour, its
    shadows elsewhere than on the next clear scene's too: shadows in the before-state lessen both
    changes alike. Burns and their ring alike; elsewhere the shares are ``t``'s.
    """
    if not moved.any():
        return fraction
    before = np.clip(base, 0, None)
    ring = ndimage.binary_dilation(new, structure=np.ones((3, 3), bool)) & (new | ~burned)
    pick = ring & moved[before] & (base >= 0) & (next_clear[t] >= 0) & np.isfinite(fraction.fraction)
    if not pick.any():
        return fraction
    rows, cols = np.nonzero(pick)
    later = next_clear[t][rows, cols]
    odd = moved[later]  # this hour the odd one: the next clear scene's shadows fall elsewhere too
    if not odd.any():
        return fraction
    pick[rows[~odd], cols[~odd]] = False
    rows, cols, later = rows[odd], cols[odd], later[odd]
    seen_next = burned_fraction_of_pixels(reflectance[before[rows, cols], :, rows, cols].T,
                                          reflectance[later, :, rows, cols].T, pick, bands=bands, skip=skip, noise=noise)
    smaller = pick & (seen_next.fraction < fraction.fraction)
    return Fraction(*(np.where(smaller, getattr(seen_next, key), getattr(fraction, key))
                      for key in ("char", "ash", "fraction", "sigma_noise", "sigma_endmember")))


def _rim_seen_next(new: np.ndarray, share_t: np.ndarray, share_next: np.ndarray, cut: float) -> np.ndarray:
    """The rim pixels of today's burns that the share seen next (:func:`_share_seen_next`) puts under the rim cut.

    The date's rule cut the rim at ``cut`` of what the burn's fully burned pixels read
    (:func:`pipeline.stages.threshold.full_burn_reading`) on today's shares; where a scene at the odd hour read a long
    shadow beside the char as more char, the pixel's honest share is what the next clear scene shows,
    and a rim pixel under the cut by it is a mixed pixel of the ring, as on any other scene. Only the
    edge of a burn is re-cut (the pixels with a neighbour outside it): inside, the cut never applied.
    """
    lowered = new & np.isfinite(share_next) & (share_next < share_t)
    if not lowered.any():
        return lowered
    labels, n = ndimage.label(new, structure=np.ones((3, 3), bool))
    fitted = np.isfinite(share_next) & new
    full = full_burn_reading(np.where(fitted, share_next, 0.0), labels, n)[labels]
    edge = new & ~ndimage.binary_erosion(new, structure=np.ones((3, 3), bool), border_value=1)
    return lowered & edge & (share_next < cut * full)


def _keep_shares(share: dict[str, np.ndarray], ring_share: dict[str, np.ndarray], fraction: Fraction, new: np.ndarray,
                 burned: np.ndarray, t: int) -> None:
    """Record date ``t``'s burned shares: of its new burned pixels, and of the ring of unburned pixels around them.

    The ring holds the burns' mixed rim (what the cut left out, or what the sensor's blur spread the
    burn into): a burn's area is the sum of shares over both. A ring pixel may lie between burns of
    two dates; each date's share is kept apart (``ring_share[key][t]``), so that each burn gets its
    own. A pixel already partly burned on an earlier date shows it in its before-state: the fit's
    share is of what was left unburned, so the share of the pixel is that times ``1 - earlier``.
    ``share`` holds each burned pixel's share on its date, and each ring pixel's share over all dates.
    """
    ring = ndimage.binary_dilation(new, structure=np.ones((3, 3), bool)) & ~burned
    earlier = np.nan_to_num(share["fraction"][ring], nan=0.0)
    left = np.clip(1.0 - earlier, 0.0, 1.0)
    fitted = {key: getattr(fraction, key)[ring] * left for key in share}
    ring_only = ~new[ring]
    for key in share:
        ring_share[key][t][ring] = np.where(ring_only, fitted[key], np.nan)
    ever = np.isfinite(share["fraction"][ring])
    # A ring pixel's share over the dates: shares add, noise in quadrature, the end-members' error linearly.
    total = {"fraction": np.where(ever, earlier, 0.0) + np.nan_to_num(fitted["fraction"]),
             "sigma_noise": np.hypot(np.nan_to_num(share["sigma_noise"][ring]), np.nan_to_num(fitted["sigma_noise"])),
             "sigma_endmember": np.nan_to_num(share["sigma_endmember"][ring]) + np.nan_to_num(fitted["sigma_endmember"])}
    for key in share:
        # A burned pixel holds its own date's share; a ring pixel its total (NaN where nothing could be fitted).
        value = np.where(ring_only, np.where(ever | np.isfinite(fitted[key]), total[key], np.nan), fitted[key])
        share[key][ring] = value


def _before_after(reflectance: np.ndarray, clear: np.ndarray, last_clear: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """``(band, y, x)`` reflectance of each pixel's own last clear observation before ``t`` and on ``t``
    (NaN where there is none, or where ``t`` is not clear)."""
    last = np.clip(last_clear, 0, None)
    before = np.take_along_axis(reflectance, last[None, None].astype(np.intp), axis=0)[0]
    before = np.where((last_clear >= 0)[None], before, np.nan)
    after = np.where(clear[t][None], reflectance[t], np.nan)
    return before, after


def _before_after_at(reflectance: np.ndarray, clear: np.ndarray, last_clear: np.ndarray, t: int,
                     where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_before_after` at the pixels of ``where`` alone, as ``(band, n)`` in its row-major order."""
    rows, cols = np.nonzero(where)
    last = last_clear[rows, cols]
    before = reflectance[np.clip(last, 0, None), :, rows, cols].T
    before = np.where((last >= 0)[None], before, np.nan)
    after = np.where(clear[t][rows, cols][None], reflectance[t][:, rows, cols], np.nan)
    return before, after


def date_burns(
    change: xr.Dataset,
    *,
    index: xr.DataArray,
    clear: xr.DataArray,
    post_nir: xr.DataArray | None,
    params: Params,
    pixel_area_m2: float,
    noise: list[tuple[float, float] | None] | None = None,
    reflectance: xr.DataArray | None = None,
    sun: list[tuple[float | None, float | None] | None] | None = None,
    unmix_skip: tuple[str, ...] | list[str] = (),
    band_noise: list[dict[str, list] | None] | None = None,
) -> tuple[xr.Dataset, list[ThresholdInfo | None]]:
    """First-seen date and bracket of every burned pixel.

    Parameters
    ----------
    change:
        Output of :func:`pipeline.stages.change.consecutive_change` (``delta``, ``last_clear``).
    index, clear:
        ``(time, y, x)`` burn index and clear mask the change came from, to check that a
        burn persists on the next clear observation.
    post_nir:
        ``(time, y, x)`` normalised NIR of each scene, for the darkness rule (``None`` to skip).
    params:
        Threshold parameters.
    pixel_area_m2:
        Pixel area for the minimum mapping unit.
    noise:
        Per scene, ``(background, sigma)`` of its change measured on the whole scene (for a
        chunk of it); ``None`` measures them here.
    reflectance:
        ``(time, band, y, x)`` normalised reflectance the index came from, for the spectral test
        (:func:`pipeline.stages.spectral.spectral_codes`; ``None`` tests nothing) and, with a band
        that has an end-member, for each date's burned share per pixel, unmixed against the
        pixel's own before-state (:func:`pipeline.stages.fraction.burned_fraction`): the rims and
        holes of the burns are decided by it (``params.rim_burned_fraction``; not on dNBR, a
        severity scale, whose rims the threshold stage reads against their burned neighbours) and it is
        returned for the pixels first seen on that date.
    sun:
        Per scene, ``(elevation, azimuth)`` of the sun in degrees (``None`` where unknown): a
        scene whose shadows fall elsewhere than on a pixel's before-scene does not date what it
        cannot tell from them (:func:`_shadows_moved_on`).
    unmix_skip:
        Bands left out of the burned-fraction fit: those coarser than the grid
        (:func:`pipeline.stages.fraction.coarser_than_grid`).
    band_noise:
        Per scene, the burned-fraction fit's weights (:func:`pipeline.stages.fraction.fit_noise`)
        measured on the whole scene (for a chunk of it; ``None`` for a scene: measured here where
        it has a burn to fit). ``None`` measures them here on every date with a change, and
        ``dates.attrs["band_noise"]`` keeps what was used, per scene (``None``: not measured).

    Returns
    -------
    dates, infos:
        ``first_seen`` and ``last_clear_before`` (y, x) int16 scene indices (-1 = not
        burned), ``delta_at_first`` (y, x) the change that revealed the burn, ``confirmed``
        (y, x) True where a later clear observation still shows the burn,
        ``transient_seen`` (y, x) the scene on which a mark was seen that the next clear scene
        no longer showed (dropped, never dated; -1 = none) and ``transient_gone`` (y, x) that
        next clear scene (-1 where the pixel itself was not seen clear again), ``spectral`` (y, x) the
        spectral test's code of each burned pixel, ``nonfire_seen`` (y, x) the scene on which a
        change that is not fire-like was set aside (-1 = none) and ``nonfire_code`` (y, x) its
        code (:data:`pipeline.stages.spectral.VEGETATION` or ``PROPORTIONAL``); with
        ``reflectance``, ``burned_fraction``, ``fraction_sigma_noise`` and
        ``fraction_sigma_endmember`` (y, x) the burned share of each burned pixel on its first
        date and its two 1-sigma parts, and of the ring of unburned pixels around the date's new
        burns (their mixed rim, counted in a burn's area; a ring pixel's share over all dates);
        ``ring_fraction`` and its two sigmas (time, y, x) the ring pixels' share on each date, so
        that a pixel between burns of two dates gives each its part; NaN elsewhere; and per scene
        the :class:`ThresholdInfo` (``None`` for scenes with nothing to compare). A burn first
        seen after a scene that could not date it keeps ``last_clear_before`` at the clear scene
        before that one.
    """
    delta = change["delta"]
    index_name = str(change.attrs.get("index", "nir"))
    level = burn_level(params, index_name)
    n_time = delta.sizes["time"]
    shape = delta.shape[1:]
    first_seen = np.full(shape, -1, dtype=np.int16)
    last_clear_before = np.full(shape, -1, dtype=np.int16)
    delta_at_first = np.full(shape, np.nan, dtype=np.float32)
    burned = np.zeros(shape, dtype=bool)
    confirmed = np.zeros(shape, dtype=bool)
    transient_seen = np.full(shape, -1, dtype=np.int16)
    transient_gone = np.full(shape, -1, dtype=np.int16)
    spectral = np.full(shape, NOT_TESTED, dtype=np.int8)
    nonfire_seen = np.full(shape, -1, dtype=np.int16)
    nonfire_code = np.full(shape, NOT_TESTED, dtype=np.int8)
    bands = [str(b) for b in reflectance.band.values] if reflectance is not None else []
    values = index.values
    direction = int(index.attrs.get("burn_direction", -1))
    valid = clear.values & np.isfinite(values)
    next_clear = _next_clear(valid)
    bands = [] if reflectance is None else [str(b) for b in reflectance.band.values]
    unmixing = bool(unmixing_bands(bands))
    short = [b for b in ("blue", "green") if b in bands]  # white ash brightens these, shade and char darken them
    visible = _band_mean(reflectance.values, [bands.index(b) for b in short]) if short and "nir" in bands else None
    share = {k: np.full(shape, np.nan, dtype=np.float32) for k in ("fraction", "sigma_noise", "sigma_endmember")}
    # The ring's share per date: a pixel between two burns of different dates holds a part of each.
    ring_share = {k: np.full((n_time, *shape), np.nan, dtype=np.float32) for k in share} if unmixing else {}
    infos: list[ThresholdInfo | None] = []
    usual_last = np.full(shape, -1, dtype=np.int16)  # last clear scene without a passing mark (module docstring)
    opens = np.full(shape, -1, dtype=np.int16)  # where a scene at another hour could not date a mark: its bracket's start
    suns = list(sun) if sun is not None and len(sun) == n_time else [None] * n_time
    moved = np.array([[shadows_moved(suns[a], suns[b]) for b in range(n_time)] for a in range(n_time)], dtype=bool)
    noise_used: list[dict[str, list] | None] = [None] * n_time
    min_pixels = max(1, int(np.ceil(params.min_area_m2 / pixel_area_m2)))  # the mapping unit, in pixels
    for t in range(n_time):
        d_t = delta.isel(time=t)
        if not np.isfinite(d_t.values).any():
            infos.append(None)
            usual_last[valid[t]] = t
            continue
        last_clear = change["last_clear"].values[t]
        base, retaken = _usual_base(d_t.values, t, values, direction, last_clear, usual_last, valid[t])
        d_t = d_t.copy(data=retaken)
        candidates, judged_on = burn_candidates(d_t.values, burn_level=level, grow_k=params.grow_k, exclude=burned,
                                                background_noise=None if noise is None else noise[t])
        fraction = None
        if unmixing:  # only where a burn can be, and the ring of mixed pixels around it
            where = ndimage.binary_dilation(candidates, structure=np.ones((3, 3), bool))
            noise_used[t] = None if band_noise is None else band_noise[t]
            if noise_used[t] is not None:  # a chunk with the scene's noise: only the pixels fitted are gathered
                fraction = burned_fraction_of_pixels(*_before_after_at(reflectance.values, clear.values, base, t, where),
                                                     where, bands=bands, skip=unmix_skip, noise=noise_used[t])
            else:
                pair = _before_after(reflectance.values, clear.values, base, t)
                # Measured on every date of a whole scene, so that its chunks can reuse it; on a chunk only where it fits.
                if band_noise is None or where.any():
                    noise_used[t] = fit_noise(*pair, bands=bands, skip=unmix_skip)
                fraction = burned_fraction(*pair, bands=bands, skip=unmix_skip, where=where, noise=noise_used[t])
        mask, info = burn_mask(
            d_t,
            post_nir=None if post_nir is None else post_nir.isel(time=t),
            # With SWIR the index is NBR itself: its value on this date is the post-change NBR.
            post_nbr=index.isel(time=t) if index_name == "nbr" else None,
            exclude=burned,
            pixel_area_m2=pixel_area_m2,
            burn_level=level,
            noise_k=params.noise_k,
            grow_k=params.grow_k,
            max_post_nir=params.max_post_nir,
            max_post_nbr=params.max_post_nbr,
            seed_dnbr_no_char=params.seed_dnbr_no_char,
            mixed_pixel_fraction=params.mixed_pixel_fraction,
            local_rim_contrast=index_name in SEVERITY_SCALED,
            min_area_m2=params.min_area_m2,
            max_hole_px=params.max_hole_px,
            background_noise=judged_on,
            fraction=None if fraction is None else fraction.fraction,
            fraction_cut=params.rim_burned_fraction,
            white_ash=None if fraction is None else fraction.ash,
            psf_sigma_px=params.psf_sigma_px,
        )
        new = mask.values
        before = np.clip(base, 0, None)
        new, sure, dropped, later = _transient(new, t, values, direction, before, next_clear, d_t.values, min_pixels,
                                               params.rim_burned_fraction, params.noise_k * info.noise_sigma, moved[t])
        # A shadow back where it falls at the usual hour, after a before-scene taken at another one.
        back = _returned(new, t, values, direction, base, valid, d_t.values)
        new, sure = new & ~back, sure & ~back
        overtaken = np.zeros_like(new)
        if visible is not None:
            # An early shadow over ground that burned the next day: not yet the mark.
            overtaken = _overtaken(new, t, values, direction, before, next_clear, d_t.values, visible)
            new, sure = new & ~overtaken, sure & ~overtaken
        if reflectance is not None:
            # Not every darkening is fire: what the other bands did says which (pipeline.stages.spectral).
            before_scene = np.take_along_axis(reflectance.values, before[None, None], axis=0)[0]
            codes = spectral_codes(new, before_scene, reflectance.values[t], bands=bands,
                                   min_pixels=min_pixels)
            shade = new & (codes == PROPORTIONAL)
            # Shade moves and wet soil dries: a proportional darkening the next clear scene still shows as
            # it was is char over bright ground (a partly burned pixel darkens nearly in proportion too).
            stayed = _stayed(shade, t, values, next_clear, params.noise_k * info.noise_sigma)
            codes[stayed] = STAYED
            shade &= ~stayed
            not_fire = new & np.isin(codes, NON_FIRE)
            first_not_fire = not_fire & (nonfire_seen < 0)
            nonfire_seen[first_not_fire] = t
            nonfire_code[first_not_fire] = codes[first_not_fire]
            new, sure = new & ~not_fire, sure & ~not_fire
        else:
            codes, shade = None, np.zeros_like(new)
        # A scene at another hour than the before-scene: its long shadows can pass for char (module docstring).
        undated = _shadows_moved_on(new, t, values, direction, before, next_clear, moved[t],
                                    np.zeros_like(new) if codes is None else codes == STAYED,
                                    params.noise_k * info.noise_sigma)
        new, sure = new & ~undated, sure & ~undated
        fringe = _shadow_fringe(new, t, values, direction, before, next_clear, moved[t], d_t.values)
        new, sure, dropped = new & ~fringe, sure & ~fringe, dropped | fringe
        if fraction is not None and noise_used[t] is not None:
            seen_next = _share_seen_next(fraction, new, burned, reflectance.values, base, t, next_clear, moved[t],
                                         bands=bands, skip=unmix_skip, noise=noise_used[t])
            recut = _rim_seen_next(new, fraction.fraction, seen_next.fraction, params.rim_burned_fraction)
            new, sure, fraction = new & ~recut, sure & ~recut, seen_next
        # Neither could tell what the scene at another hour showed: a burn found there later opens before it.
        first_undated = (undated | fringe) & (opens < 0)
        opens[first_undated] = last_clear[first_undated]
        if codes is not None:
            spectral[new] = codes[new]
        passing = dropped | shade | overtaken | undated
        confirmed |= sure
        # The first time a pixel's mark came and went is the one listed; it stays undated (not burned).
        first_drop = dropped & (transient_seen < 0)
        transient_seen[first_drop] = t
        transient_gone[first_drop] = later[first_drop]
        first_seen[new] = t
        last_clear_before[new] = np.where(opens[new] >= 0, np.minimum(opens[new], last_clear[new]), last_clear[new])
        usual_last[valid[t] & ~passing] = t
        delta_at_first[new] = d_t.values[new]
        if fraction is not None:
            _keep_shares(share, ring_share, fraction, new, burned, t)
        burned |= new
        infos.append(info)
    dims = delta.dims[1:]
    coords = {k: v for k, v in delta.coords.items() if set(v.dims) <= set(dims)}
    dates = xr.Dataset(
        {
            "first_seen": (dims, first_seen),
            "last_clear_before": (dims, last_clear_before),
            "delta_at_first": (dims, delta_at_first),
            "confirmed": (dims, confirmed & (first_seen >= 0)),
            "transient_seen": (dims, transient_seen),
            "transient_gone": (dims, transient_gone),
            "spectral": (dims, spectral),
            "nonfire_seen": (dims, nonfire_seen),
            "nonfire_code": (dims, nonfire_code),
            **({"burned_fraction": (dims, share["fraction"]), "fraction_sigma_noise": (dims, share["sigma_noise"]),
                "fraction_sigma_endmember": (dims, share["sigma_endmember"]),
                "ring_fraction": (delta.dims, ring_share["fraction"]),
                "ring_fraction_sigma_noise": (delta.dims, ring_share["sigma_noise"]),
                "ring_fraction_sigma_endmember": (delta.dims, ring_share["sigma_endmember"])} if unmixing else {}),
        },
        coords=coords,
        attrs={**({"times": [str(t) for t in delta.time.values]} if "time" in delta.coords else {}), "band_noise": noise_used},
    )
    return dates, infos
