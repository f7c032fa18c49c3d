"""Clouds and their shadows on scenes delivered without a mask of them.

A Planet scene comes with its UDM2, a Sentinel-2 L2A scene with its SCL, a Landsat scene with
its QA band. A plain GeoTIFF (an export from a viewer, a clip, a scene whose mask was lost)
says nothing of its sky, and every pixel it holds would count as ground seen. An unflagged
cloud over a compound that burned that day would then read "no burn" on a scene the report
cites as clear, and the cloud's shadow would read as a burn. Without a mask, the series itself
tells them apart, as multi-temporal cloud screening does [2]:

- **a cloud** brightens every band, the NIR included, above what the other scenes show of the
  same ground, is bright (:data:`CLOUD_BRIGHT`) and white in the visible (the haze-optimised transform [3] is positive:
  blue well above half the red). Char and white ash lower the NIR; a harvest or bare soil
  raises the visible but is red, not white. Only objects of cloud size count
  (:data:`MIN_CLOUD_M2`): a new pale roof is not a cloud.
- **its shadow** darkens every band of the ground by the same share and has the cloud's shape,
  displaced from it away from the sun [1]. Each cloud's outline is moved over every offset up
  to a cloud's reach (along the anti-solar azimuth where the sun is known) and accepted where
  the darkened pixels fill it and stop at its edge: a burn darkens too, but a burn larger than
  the cloud fills the ring around the moved outline as well, and one smaller cannot fill it.

Cloud and shadow, with their soft edges (followed up to :data:`MARGIN_M`), are "not observed" on that
scene; a burn under them is dated from the scenes that saw its ground.

What is not found: a pixel fewer than three scenes saw (:data:`MIN_OTHERS`: with two, a cloud on
one is the same difference as a darkening of the other, and a white dam under smoke or pale
ground that burned would be taken for cloud); a shadow whose cloud lies outside the loaded
window (a chunk and its halo in a search); a thin cloud (haze); a cloud smaller than
:data:`MIN_CLOUD_M2`. The report names the scenes that came without a mask.

References
----------
.. [1] Zhu, Z. & Woodcock, C. E. (2012). Object-based cloud and cloud shadow detection in
   Landsat imagery. Remote Sensing of Environment 118, 83-94. (Fmask: the shadow is the cloud
   object moved along the solar direction, accepted by its similarity to dark pixels.)
.. [2] Zhu, Z. & Woodcock, C. E. (2014). Automated cloud, cloud shadow, and snow detection in
   multitemporal Landsat data. Remote Sensing of Environment 152, 217-234. (Tmask: a pixel
   compared with the same ground on the other dates.)
.. [3] Zhang, Y., Guindon, B. & Cihlar, J. (2002). An image transform to characterize and
   compensate for spatial variations in thin cloud contamination of Landsat images. Remote
   Sensing of Environment 82, 173-187. (HOT = blue - 0.5 red.)
.. [4] NOAA Global Monitoring Laboratory, "General solar position calculations" (low-precision
   solar declination, equation of time and hour-angle formulas; about 0.5 degree).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["can_screen", "unflagged_sky", "sun_angles", "sun_azimuth_for", "SCREEN_BANDS", "CLOUD_RISE", "CLOUD_NIR_RISE", "CLOUD_BRIGHT", "SHADOW_RATIO", "MIN_CLOUD_M2", "MARGIN_M", "EDGE_RISE", "EDGE_RATIO", "EDGE_M"]

CLOUD_RISE = 0.10
"""Reflectance by which every visible band of a cloud exceeds the same ground's median on the other
scenes; its NIR rises too (by :data:`CLOUD_NIR_RISE`), where char and white ash lower it. Scene-to-scene
gains (10 %) and dense dust haze stay under it; a cumulus reads 0.4-0.7 over ground of 0.05-0.3."""

CLOUD_NIR_RISE = 0.04
"""Rise of the NIR a cloud shows at the least: over crops (NIR 0.35-0.45) a cumulus adds little."""

CLOUD_BRIGHT = 0.30
"""Mean visible reflectance a cloud's core reaches. Sahel soil, thatch, crops, white ash and the pale
ground of a dry valley stay under it; a cumulus reads 0.4 or more. Thinner cloud is haze: the
normalisation and the noise model carry it."""

HOT_OFFSET = 0.08
"""A cloud's blue exceeds half its red by this much (the haze-optimised transform of [3] with its
clear-sky line through the origin at slope 0.5): white things pass, red soil and char do not."""

SHADOW_RATIO = 0.70
"""Share of the other scenes' reflectance under which every band of a pixel is darkened. Under a
cumulus the ground gets the diffuse skylight only, a third to a half of full sun."""

MIN_CLOUD_M2 = 2000.0
"""Area of the smallest cloud looked for (about 45 x 45 m): a fair-weather cumulus is hundreds of
metres across; a pale roof or a white tarpaulin is a few tens of square metres."""

MARGIN_M = 30.0
"""Farthest the soft edge of a cloud or of its shadow is followed from the core: a cumulus thins
over 10-20 m. Within it, a pixel brighter than the other scenes by :data:`EDGE_RISE` in the visible
(cloud) or darker by :data:`EDGE_RATIO` (penumbra) goes with the core."""

EDGE_RISE = 0.03
"""Rise of every visible band that makes a pixel beside a cloud's core part of the thinning cloud."""

EDGE_RATIO = 0.90
"""Share of the other scenes' reflectance under which a pixel beside a shadow's core is in its penumbra."""

EDGE_M = 18.0
"""Width added around cloud and shadow: their thinnest edge, where a few hundredths of opacity still
veil the ground (a UDM2 flags it too; Fmask [1] widens its objects by 3 pixels of 30 m), and what a
few pixels of misregistration between scenes blur. On the simulated cloud cases read without their
UDM2, 6 m left the burned structures dated on the day after the cloud at +7.8 % of the truth, 12 m
at +6.0 %, 18 m at +1.2 % (the UDM2 itself: +0.6 %)."""

MAX_REACH_M = 12000.0
"""Farthest a cloud's shadow falls from it: a 4 km cloud base under a sun 20 degrees high."""

SHADOW_FILL = 0.6
"""Share of a moved cloud outline's observed pixels that must be darkened for it to be the shadow."""

RING_FILL = 0.35
"""Share of the ring around a moved outline that may be darkened too: more, and the darkening is
larger than the cloud (a burned field, a wet plain), not its shadow."""

AZIMUTH_TOLERANCE = 20.0
"""Degrees either side of the anti-solar azimuth a shadow may lie (a tall cloud leans; the sun's
position is read for the scene's centre)."""

MIN_OTHERS = 2
"""Other scenes that must have seen a pixel for it to be screened on a scene: one other cannot tell a
cloud here from a darkening there, two agreeing can."""

_MAX_CLOUDS = 32  # largest cloud objects matched per scene; smaller ones are still masked
_NETWORK_MAX = 8  # scenes up to which the median goes through the min/max network
SCREEN_BANDS = ("blue", "green", "red", "nir")
"""The bands a cloud is told by: without one of them nothing is screened."""


def sun_angles(lon: float, lat: float, when: datetime) -> tuple[float, float]:
    """Solar azimuth (degrees clockwise from north) and elevation (degrees) at ``when`` (UTC) [4].

    >>> az, el = sun_angles(-3.76, 13.83, datetime(2024, 1, 28, 10, 38))
    >>> round(az), round(el)
    (139, 48)
    """
    hour = when.hour + when.minute / 60 + when.second / 3600
    g = 2 * math.pi / 365 * (when.timetuple().tm_yday - 1 + (hour - 12) / 24)
    eqt = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                    - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    ha = math.radians((hour * 60 + eqt + 4 * lon) / 4 - 180)
    phi = math.radians(lat)
    elevation = math.asin(math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha))
    azimuth = math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    return (math.degrees(azimuth) + 180) % 360, math.degrees(elevation)


def sun_azimuth_for(given: float | None, when: datetime, lon: float, lat: float, *, time_of_day_known: bool) -> float | None:
    """The sun's azimuth a scene's shadows are looked for against: the product's own, else the one
    computed for its time (:func:`sun_angles`), else None (any direction).

    None when only the date is known, and when the computed sun is under 5 degrees: an optical scene
    is not taken at night, so such a time is not the acquisition's (a composite dated at midnight).

    >>> sun_azimuth_for(None, datetime(2024, 1, 28, 10, 38), -3.76, 13.83, time_of_day_known=True) is not None
    True
    >>> sun_azimuth_for(None, datetime(2024, 1, 28, 0, 0), -3.76, 13.83, time_of_day_known=True) is None
    True
    """
    if given is not None:
        return given
    if not time_of_day_known:
        return None
    azimuth, elevation = sun_angles(lon, lat, when)
    return azimuth if elevation > 5.0 else None


def can_screen(bands: Sequence[str], n_scenes: int) -> bool:
    """Whether a series of ``n_scenes`` with these ``bands`` can be screened at all: three scenes, the four bands.

    >>> can_screen(["blue", "green", "red", "nir"], 3), can_screen(["blue", "green", "red", "nir"], 2), can_screen(["green", "red", "nir"], 5)
    (True, False, False)
    """
    return n_scenes > MIN_OTHERS and all(b in bands for b in SCREEN_BANDS)


def unflagged_sky(reflectance: np.ndarray, clear: np.ndarray, *, bands: Sequence[str], pixel_m: float,
                  unmasked: Sequence[bool], sun_azimuth: Sequence[float | None] | None = None) -> np.ndarray:
    """``clear`` with the clouds and cloud shadows of the ``unmasked`` scenes read as not observed.

    Parameters
    ----------
    reflectance:
        ``(time, band, y, x)`` reflectance, NaN where not observed.
    clear:
        ``(time, y, x)`` True where the ground was seen, as the readers and plausibility left it.
    bands:
        Canonical band names of ``reflectance``; blue, green, red and NIR are needed.
    pixel_m:
        Pixel size of the grid in metres.
    unmasked:
        Per scene, whether it came without a cloud mask of its own (only those are screened).
    sun_azimuth:
        Per scene, the sun's azimuth in degrees if known; a shadow is then looked for only
        within :data:`AZIMUTH_TOLERANCE` of the opposite direction.

    Returns
    -------
    numpy.ndarray
        A new ``(time, y, x)`` boolean array; scenes with a mask of their own are unchanged.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ground = np.broadcast_to(np.array([0.10, 0.15, 0.22, 0.30])[:, None, None], (4, 120, 120))
    >>> scenes = np.stack([ground, ground, ground]) + rng.normal(0, 0.005, (3, 4, 120, 120))
    >>> scenes[2, :, 20:50, 20:50] = 0.5                         # a cloud, 90 m across
    >>> scenes[2, :, 60:90, 70:100] = 0.4 * ground[:, 60:90, 70:100]  # its shadow, 50 px away
    >>> out = unflagged_sky(scenes.astype(np.float32), np.ones((3, 120, 120), bool), bands=["blue", "green", "red", "nir"],
    ...                     pixel_m=3.0, unmasked=[True, True, True])
    >>> bool(out[2, 35, 35]), bool(out[2, 75, 85]), bool(out[2, 110, 10]), bool(out[:2].all())
    (False, False, True, True)
    """
    out = np.array(clear, dtype=bool, copy=True)
    names = list(bands)
    if not can_screen(names, len(out)):
        return out  # nothing to compare with, or not the bands a cloud is told by
    idx = [names.index(b) for b in SCREEN_BANDS]
    seen = np.where(out[:, None], reflectance[:, idx], np.nan).astype(np.float32)
    for t in np.flatnonzero(np.asarray(unmasked, dtype=bool)):
        others = [s for s in range(len(out)) if s != t]
        # Two observations of a pixel cannot tell a cloud on one from a darkening of the other (a pale
        # ground that burned, a white dam under smoke): its reference is the median of two others at least.
        reference = _median_of_seen(seen[others], at_least=MIN_OTHERS)
        azimuth = sun_azimuth[t] if sun_azimuth is not None else None
        out[t] &= ~_cloud_and_shadow(seen[t], reference, pixel_m=pixel_m, sun_azimuth=azimuth)
    return out


def _median_of_seen(values: np.ndarray, *, at_least: int) -> np.ndarray:
    """Median over the first axis of the finite values, NaN where fewer than ``at_least`` are finite.

    The numbers of ``numpy.nanmedian``; up to :data:`_NETWORK_MAX` scenes, sorted by an odd-even
    transposition network of element-wise minima and maxima (``numpy.sort`` along the first axis
    costs ten times as much there, ``nanmedian`` fifty); a longer series by ``numpy.sort``.

    >>> _median_of_seen(np.array([[1.0, np.nan, 5.0], [3.0, 2.0, np.nan], [np.nan, 4.0, np.nan]]), at_least=2).tolist()
    [2.0, 3.0, nan]
    """
    count = np.isfinite(values).sum(axis=0)
    if len(values) > _NETWORK_MAX:  # the network's len**2 steps outgrow a sort: a long series is sorted
        rows = list(np.sort(np.where(np.isnan(values), np.inf, values), axis=0))
    else:
        rows = [np.where(np.isnan(v), np.inf, v) for v in values]  # not seen: sorted last, never picked
        for step in range(len(rows)):
            for i in range(step % 2, len(rows) - 1, 2):
                rows[i], rows[i + 1] = np.minimum(rows[i], rows[i + 1]), np.maximum(rows[i], rows[i + 1])
    median = np.full(count.shape, np.nan, dtype=values.dtype)
    for n in range(max(at_least, 1), len(rows) + 1):
        median = np.where(count == n, (rows[(n - 1) // 2] + rows[n // 2]) / 2, median)
    return median


def _cloud_and_shadow(scene: np.ndarray, reference: np.ndarray, *, pixel_m: float, sun_azimuth: float | None) -> np.ndarray:
    """Where one scene ``(4, y, x)`` (blue, green, red, NIR) shows a cloud or its shadow, margins included."""
    observed = np.isfinite(scene).all(axis=0) & np.isfinite(reference).all(axis=0)
    blue, green, red = scene[0], scene[1], scene[2]
    with np.errstate(invalid="ignore"):
        rise = scene - reference
        cloud = (observed & (rise[:3] >= CLOUD_RISE).all(axis=0) & (rise[3] >= CLOUD_NIR_RISE)
                 & ((blue + green + red) / 3 >= CLOUD_BRIGHT) & (blue - 0.5 * red >= HOT_OFFSET))
        dark = observed & ~cloud & (scene <= SHADOW_RATIO * reference).all(axis=0)
    min_px = max(1, int(math.ceil(MIN_CLOUD_M2 / pixel_m ** 2)))
    labels, n = ndimage.label(cloud, structure=np.ones((3, 3), bool))
    if n == 0:
        return cloud
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    big = np.flatnonzero(sizes >= min_px)
    cloud = np.isin(labels, big)
    if not cloud.any():
        return cloud
    shadow = np.zeros_like(cloud)
    usable = observed & ~cloud
    boxes = ndimage.find_objects(labels)
    for k in big[np.argsort(sizes[big])[::-1]][:_MAX_CLOUDS]:
        box = boxes[k - 1]
        outline = labels[box] == k
        moved = _matched_shadow(outline, (box[0].start, box[1].start), dark, usable, pixel_m=pixel_m, sun_azimuth=sun_azimuth)
        if moved is not None:
            shadow |= moved
    with np.errstate(invalid="ignore"):
        thin = observed & (rise[:3] >= EDGE_RISE).all(axis=0) & (rise[3] >= 0)
        dim = observed & (scene <= EDGE_RATIO * reference).all(axis=0)
    reach = max(1, int(math.ceil(MARGIN_M / pixel_m)))
    # The soft edges: the thinner cloud and the penumbra around each core, as far as MARGIN_M and no
    # farther (a burn beside a shadow is dim too), then EDGE_M for what scenes a few pixels apart blur.
    cloud = _connected_to(cloud, (thin | cloud) & _within(cloud, reach))
    shadow = _connected_to(shadow, (dim | shadow) & _within(shadow, reach))
    return _within(cloud | shadow, max(1, int(round(EDGE_M / pixel_m))))


def _within(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` widened by a disk of ``radius`` pixels (a distance transform: one pass, whatever the radius)."""
    if not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask) <= radius


def _connected_to(core: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The pixels of ``allowed`` joined to ``core`` through ``allowed`` (4 neighbours), ``core`` included."""
    labels, _ = ndimage.label(core | allowed)
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    return keep[labels]


def _matched_shadow(outline: np.ndarray, corner: tuple[int, int], dark: np.ndarray, usable: np.ndarray, *,
                    pixel_m: float, sun_azimuth: float | None) -> np.ndarray | None:
    """The cloud ``outline`` moved to where the darkened pixels match its shape, or None.

    All offsets are scored at once by correlating the outline, and the ring just outside it,
    with the darkened and the observed pixels (FFT).
    """
    # Imported here: scipy.signal takes half a second to import (it loads scipy.stats), and only a
    # scene with an unflagged cloud reaches this; every command of burnscan would pay it otherwise.
    from scipy.signal import fftconvolve

    ring_width = max(2, int(math.ceil(MARGIN_M / pixel_m)))
    padded = np.pad(outline, ring_width)
    ring = ndimage.binary_dilation(padded, structure=_disk(ring_width)) & ~ndimage.binary_dilation(padded, structure=_disk(1))
    body = padded.astype(np.float32)
    kernel, ring_kernel = body[::-1, ::-1], ring.astype(np.float32)[::-1, ::-1]
    d, u = dark.astype(np.float32), usable.astype(np.float32)
    fill_n = fftconvolve(d, kernel, mode="full")
    seen_n = fftconvolve(u, kernel, mode="full")
    ring_d = fftconvolve(d, ring_kernel, mode="full")
    ring_n = fftconvolve(u, ring_kernel, mode="full")
    h, w = padded.shape
    # full-mode index (i, j) places the padded outline's top-left corner at (i - h + 1, j - w + 1)
    ii, jj = np.mgrid[0:fill_n.shape[0], 0:fill_n.shape[1]]
    dy = ii - (h - 1) - (corner[0] - ring_width)
    dx = jj - (w - 1) - (corner[1] - ring_width)
    reach = np.hypot(dy, dx) * pixel_m
    area = float(outline.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = fill_n / seen_n
        ring_fill = ring_d / np.maximum(ring_n, 1.0)
    ok = (seen_n >= 0.5 * area) & (fill >= SHADOW_FILL) & (ring_fill <= RING_FILL) & (reach >= pixel_m) & (reach <= MAX_REACH_M)
    if sun_azimuth is not None:
        away = math.radians((sun_azimuth + 180.0) % 360.0)  # north up: x east, y south
        bearing = np.degrees(np.arctan2(dx, -dy))
        off = np.abs((bearing - math.degrees(away) + 180.0) % 360.0 - 180.0)
        ok &= off <= AZIMUTH_TOLERANCE
    if not ok.any():
        return None
    score = np.where(ok, fill - ring_fill, -np.inf)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    top, left = i - (h - 1), j - (w - 1)  # the padded outline's corner on the grid
    moved = np.zeros_like(dark)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, dark.shape[0]), min(left + w, dark.shape[1])
    moved[y0:y1, x0:x1] = padded[y0 - top:y1 - top, x0 - left:x1 - left]
    return moved


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return yy * yy + xx * xx <= radius * radius
