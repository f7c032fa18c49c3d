"""Confidence tiers for burn polygons, each with the reasons written out.

A finding must say how sure it is and why. Each polygon is checked for seven pieces of
evidence, each a yes or no with a sentence a reader can verify against the figures:

- **strong**: its mean index change stands at least ``strong_snr`` noise sigmas above the
  date's background (the seed threshold itself is ``noise_k`` sigmas);
- **persists**: a later clear observation still shows it (char stays; a cloud shadow or
  smoke moves on);
- **registered**: co-registration of both scenes of its bracket was reliable;
- **clear**: at least 90 % of the ground around it was observed on both scenes;
- **fire**: an active-fire detection lies near it inside its date bracket;
- **spectral**: its change is fire-like in every band read (``spectral_test`` of
  :mod:`pipeline.stages.spectral`): a change that is not fire-like (leaf drop, harvest, wet
  soil, shadow) is never above ``low``, whatever else it has;
- the analyst's **review** (confirmed or rejected), which overrides the machine's tier.

The tier follows from them (see ``docs/CONFIDENCE.md``):

- ``rejected``: an analyst rejected it;
- ``high``: confirmed by an analyst, or it persists and is registered and seen clear, and
  is either strong or corroborated by an active fire;
- ``medium``: it persists, or an active fire corroborates it, or it is strong and registered and its
  NBR dropped (SWIR): seen on one scene only, a strong darkening of the visible and NIR bands is
  also what an unflagged cloud shadow gives (its sky light is bluish, so the NIR falls most, as over
  partly charred ground); a shadow dims the NIR and the SWIR alike and leaves the NBR, char raises
  the SWIR;
- ``low``: anything else (a change seen once without an NBR drop or an active fire, or on a poorly
  registered pair), and any
  polygon whose change is not fire-like, even when an analyst confirmed it (the spectra say
  otherwise: the analyst's name and the spectral reason are both in its reasons).

Pure functions on tables and arrays; no I/O.
"""

from __future__ import annotations

import math
from typing import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.stages.coregister import ShiftEstimate
from pipeline.stages.spectral import NBR_JUDGED, REASONS
from pipeline.stages.threshold import ThresholdInfo

__all__ = ["TIERS", "confidence_tiers", "CLEAR_AROUND", "AROUND_M"]

TIERS = ("high", "medium", "low", "rejected")
CLEAR_AROUND = 0.9
"""Share of the ground around a polygon that must be observed on both scenes of its bracket."""
AROUND_M = 30.0
"""How far around a polygon's bounding box the ground is checked."""


def _clear_around(clear: np.ndarray, x: np.ndarray, y: np.ndarray, bounds: tuple[float, float, float, float]) -> float:
    minx, miny, maxx, maxy = bounds
    cols = np.flatnonzero((x >= minx - AROUND_M) & (x <= maxx + AROUND_M))
    rows = np.flatnonzero((y >= miny - AROUND_M) & (y <= maxy + AROUND_M))
    if not cols.size or not rows.size:
        return 0.0
    return float(clear[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].mean())


def confidence_tiers(
    polygons: gpd.GeoDataFrame,
    *,
    thresholds: Sequence[ThresholdInfo | None],
    shifts: Sequence[ShiftEstimate],
    clear: xr.DataArray,
    scene_ids: Sequence[str],
    strong_snr: float = 8.0,
    fire_matches: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The tier of each polygon and the evidence behind it.

    Parameters
    ----------
    polygons
        Burn polygons with ``polygon_id``, ``first_seen_index``, ``last_clear_index``,
        ``mean_index_change``, ``confirmed`` and, when reviewed, ``review``, ``review_by``,
        ``review_reason``, and ``spectral_test``, ``spectral_reason`` when the spectral test ran.
    thresholds, shifts, clear, scene_ids
        Per used scene (indexed like ``first_seen_index``): how its mask was drawn, its
        co-registration, its observed-ground mask ``(time, y, x)``, its id.
    strong_snr
        Noise sigmas above the background that make a change strong.
    fire_matches
        Output of :func:`pipeline.stages.corroborate.corroborate` (``polygon_id``, ``acquired_utc``,
        ``satellite``, ``confidence``, ``distance_m``); ``None`` when no archive was given.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``polygons``: ``tier``, ``tier_reasons`` (sentences joined by "; "),
        ``change_snr``, ``clear_around``, ``n_fire_detections``.
    """
    x, y = clear["x"].values, clear["y"].values
    masks = clear.values.astype(bool)
    fires = {pid: grp for pid, grp in fire_matches.groupby("polygon_id")} if fire_matches is not None and len(fire_matches) else {}
    rows = []
    for row in polygons.itertuples():
        t, before = int(row.first_seen_index), int(row.last_clear_index)
        info = thresholds[t] if 0 <= t < len(thresholds) else None
        snr = ((row.mean_index_change - info.background) / info.noise_sigma
               if info is not None and info.noise_sigma > 0 else math.nan)
        strong = bool(np.isfinite(snr) and snr >= strong_snr)
        pair = [i for i in (before, t) if 0 <= i < len(shifts)]
        registered = all(shifts[i].reliable for i in pair)
        around = min(_clear_around(masks[i], x, y, row.geometry.bounds) for i in pair) if pair else 0.0
        seen_clear = around >= CLEAR_AROUND
        persists = bool(row.confirmed)
        detections = fires.get(row.polygon_id)
        fire = detections is not None and len(detections) > 0
        review = str(getattr(row, "review", "") or "")
        spectral = str(getattr(row, "spectral_test", "") or "")
        not_fire = spectral == "not fire-like"
        nbr_drop = spectral == "fire-like" and str(getattr(row, "spectral_reason", "")) == REASONS[NBR_JUDGED]
        reasons = [
            (f"+ strong change: {snr:.1f} noise sigmas above the background" if strong else
             f"- change {snr:.1f} noise sigmas above the background (strong from {strong_snr:g})"),
            ("+ still visible on the next clear scene" if persists else
             "- not yet confirmed: no later clear scene shows it"),
            ("+ both scenes co-registered reliably" if registered else
             "- co-registration of " + ", ".join(scene_ids[i] for i in pair if not shifts[i].reliable) + " unreliable"),
            (f"+ {around:.0%} of the ground around it observed on both scenes" if seen_clear else
             f"- only {around:.0%} of the ground around it observed on both scenes (cloud, shadow or gap)"),
        ]
        if fire_matches is not None:
            if fire:
                first = detections.iloc[0]
                reasons.append(f"+ {len(detections)} active-fire detection(s) in its date bracket, the first by "
                               f"{first['satellite']} at {pd.Timestamp(first['acquired_utc']):%Y-%m-%d %H:%M} UTC, "
                               f"{first['distance_m']:.0f} m away ({first['confidence']} confidence)")
            else:
                reasons.append("- no active-fire detection in its date bracket (not evidence of no fire)")
        if spectral == "fire-like":
            reasons.append(f"+ fire-like in every band read: {row.spectral_reason}")
        elif not_fire:
            reasons.append(f"- not fire-like, so at most low: {row.spectral_reason}")
        elif spectral:
            reasons.append(f"- spectral test {row.spectral_reason}")
        if review == "rejected":
            tier = "rejected"
            reasons.insert(0, f"rejected by analyst {row.review_by}: {row.review_reason}")
        elif review == "confirmed":
            tier = "high"
            reasons.insert(0, f"confirmed by analyst {row.review_by}")
        elif persists and registered and seen_clear and (strong or fire):
            tier = "high"
        elif persists or fire or (strong and registered and nbr_drop):
            tier = "medium"
        else:
            tier = "low"
            if strong and registered:
                reasons.append("- seen on one scene only, and without an NBR drop a strong darkening is also what an "
                               "unflagged cloud shadow gives: a later clear scene or an active fire would confirm it")
        if not_fire and tier != "rejected":  # leaf drop, harvest, wet soil or shade: never more than low
            tier = "low"
        rows.append({"tier": tier, "tier_reasons": "; ".join(reasons), "change_snr": round(float(snr), 2),
                     "clear_around": round(around, 3), "n_fire_detections": int(len(detections)) if fire else 0})
    return pd.DataFrame(rows, index=polygons.index, columns=["tier", "tier_reasons", "change_snr", "clear_around",
                                                             "n_fire_detections"])
