"""Accuracy against ground truth: the standard burned-area metrics and date attribution.

Metrics follow the burned-area validation literature (e.g. Padilla et al. 2015):
commission error FP/(TP+FP), omission error FN/(TP+FN), Dice (F1) 2TP/(2TP+FP+FN),
IoU TP/(TP+FP+FN) and relative bias (FP-FN)/(TP+FN). Dating is scored per reference
burn: it is attributed correctly when most of its detected pixels carry its true
first-visible date, and by area as the share of detected reference area dated right.

Co-registration aligns every scene to the reference scene, so results live in the
reference scene's frame; the simulated truth is moved by the reference scene's own
(known) misregistration before scoring, and that absolute offset is reported apart.

References
----------
Padilla, M. et al. (2015). Comparing the accuracies of remote sensing global burned area
products using stratified random sampling and estimation. Remote Sensing of Environment
160, 114-121.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import geopandas as gpd
import numpy as np
from rasterio.features import rasterize
from affine import Affine

from pipeline.grid import Grid

__all__ = ["BurnScores", "score_masks", "truth_raster", "date_attribution", "burns_in_bracket", "relative_error"]

_SUPERSAMPLE = 5  # sub-cells per pixel side when turning truth polygons into pixel fractions


@dataclass(frozen=True)
class BurnScores:
    """Confusion counts (pixels) and the metrics derived from them."""

    tp: int
    fp: int
    fn: int
    commission: float
    omission: float
    dice: float
    iou: float
    relative_bias: float


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def score_masks(predicted: np.ndarray, reference: np.ndarray, *, valid: np.ndarray | None = None) -> BurnScores:
    """Score a predicted burn mask against a reference mask.

    Examples
    --------
    >>> ref = np.zeros((4, 4), bool); ref[:2] = True          # 8 burned pixels
    >>> pred = np.zeros((4, 4), bool); pred[1:3] = True       # 4 right, 4 wrong, 4 missed
    >>> s = score_masks(pred, ref)
    >>> (s.tp, s.fp, s.fn, s.commission, s.omission, s.dice, round(s.iou, 3), s.relative_bias)
    (4, 4, 4, 0.5, 0.5, 0.5, 0.333, 0.0)
    """
    pred = predicted.astype(bool)
    ref = reference.astype(bool)
    if valid is not None:
        pred, ref = pred & valid, ref & valid
    tp = int(np.sum(pred & ref))
    fp = int(np.sum(pred & ~ref))
    fn = int(np.sum(~pred & ref))
    return BurnScores(
        tp=tp,
        fp=fp,
        fn=fn,
        commission=_ratio(fp, tp + fp),
        omission=_ratio(fn, tp + fn),
        dice=_ratio(2 * tp, 2 * tp + fp + fn),
        iou=_ratio(tp, tp + fp + fn),
        relative_bias=_ratio(fp - fn, tp + fn),
    )


def truth_raster(burns: gpd.GeoDataFrame, values: np.ndarray, grid: Grid, *, offset_px: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Rasterise reference polygons onto ``grid``: a pixel takes a polygon's value when at least half of it is covered.

    ``offset_px`` ``(dy, dx)`` moves the polygons by that many pixels (rows down, columns
    right) first, to put them in a displaced scene's frame. Later rows win overlaps.
    Unburned pixels are -1.
    """
    res = grid.resolution
    shifted = burns.geometry.translate(xoff=offset_px[1] * res, yoff=-offset_px[0] * res)
    fine = Affine(res / _SUPERSAMPLE, 0.0, grid.transform.c, 0.0, -res / _SUPERSAMPLE, grid.transform.f)
    out = np.full(grid.shape, -1, dtype=np.int16)
    fine_shape = (grid.height * _SUPERSAMPLE, grid.width * _SUPERSAMPLE)
    for value in np.unique(values):
        geoms = [g for g, v in zip(shifted, values) if v == value and g is not None and not g.is_empty]
        if not geoms:
            continue
        cover = rasterize(geoms, out_shape=fine_shape, transform=fine, fill=0, default_value=1, dtype="uint8")
        fraction = cover.reshape(grid.height, _SUPERSAMPLE, grid.width, _SUPERSAMPLE).mean(axis=(1, 3))
        out[fraction >= 0.5] = value
    return out


def date_attribution(
    first_seen: np.ndarray,
    truth_first: np.ndarray,
    truth_ids: np.ndarray,
    last_clear: np.ndarray | None = None,
) -> dict[str, Any]:
    """How many reference burns (and how much detected area) got their true date.

    Parameters
    ----------
    first_seen:
        Predicted first-seen scene index per pixel (-1 = not detected).
    truth_first:
        True first-visible scene index per pixel (-1 = not burned).
    truth_ids:
        Reference burn id per pixel (0 = none), to score burns one by one.
    last_clear:
        Predicted last clear scene before the burn, per pixel; when given, a burn also
        counts as bracketed right when its true date lies in (last clear, first seen].

    Examples
    --------
    >>> fs = np.array([2, 2, 4, -1]); tf = np.array([2, 2, 3, 3]); ids = np.array([1, 1, 2, 2])
    >>> r = date_attribution(fs, tf, ids, last_clear=np.array([1, 1, 2, -1]))
    >>> r["dated_right"], r["bracketed_right"], r["burns"], r["area_share_dated_right"]
    (1, 2, 2, 0.6666666666666666)
    """
    detected = (first_seen >= 0) & (truth_first >= 0)
    right_area = int(np.sum(detected & (first_seen == truth_first)))
    n_burns = n_right = n_bracketed = n_missed = 0
    wrong: list[int] = []
    for burn_id in np.unique(truth_ids[truth_ids > 0]):
        pixels = truth_ids == burn_id
        n_burns += 1
        hit = pixels & (first_seen >= 0)
        if not hit.any():
            n_missed += 1
            continue
        majority = int(np.bincount(first_seen[hit]).argmax())
        true_date = int(np.bincount(truth_first[pixels][truth_first[pixels] >= 0]).argmax())
        if majority == true_date:
            n_right += 1
        else:
            wrong.append(int(burn_id))
        if last_clear is not None:
            start = int(np.median(last_clear[hit & (first_seen == majority)]))
            n_bracketed += int(start < true_date <= majority)
    return {
        "burns": n_burns,
        "dated_right": n_right,
        "bracketed_right": n_bracketed if last_clear is not None else None,
        "dated_wrong": len(wrong),
        "missed": n_missed,
        "area_share_dated_right": _ratio(right_area, int(detected.sum())),
        "wrong_ids": wrong[:20],
    }


def burns_in_bracket(
    first_seen: np.ndarray,
    last_clear: np.ndarray,
    truth_ids: np.ndarray,
    true_times: Sequence[datetime],
    scene_times: Sequence[datetime],
) -> dict[str, Any]:
    """How many reference burns have their true time inside the date bracket reported over them.

    The bracket a method states for a burn is (last clear scene before, first scene showing
    it]: an investigator reads "it happened after this and before that". It is right when the
    burn's true time lies inside, whatever scene first showed it: a burn hidden by a cloud on
    the day it appeared is right only if the bracket opens before that cloudy scene. The
    reported first-seen scene is the majority over the burn's detected pixels, its last clear
    scene the median over those pixels (as :func:`date_attribution` reads them).

    Parameters
    ----------
    first_seen, last_clear:
        Predicted scene indices per pixel into ``scene_times`` (-1 = not detected / none).
    truth_ids:
        Reference burn id per pixel, 1 to ``len(true_times)`` (0 = none).
    true_times:
        When each reference burn happened (burn ``k`` is ``true_times[k - 1]``).
    scene_times:
        Acquisition time of each scene.

    Returns
    -------
    dict
        ``burns``, ``in_bracket``, ``outside`` (ids of burns detected with a bracket that misses
        their time), ``missed`` (ids of burns with no detected pixel, or too small to hold a
        pixel of their own).

    Examples
    --------
    >>> from datetime import datetime
    >>> t = [datetime(2024, 1, d) for d in (26, 28, 30, 31)]
    >>> fs = np.array([3, 3, 3, -1]); lc = np.array([1, 1, 1, -1]); ids = np.array([1, 1, 2, 3])
    >>> r = burns_in_bracket(fs, lc, ids, [datetime(2024, 1, 29), datetime(2024, 1, 27), datetime(2024, 1, 31)], t)
    >>> r["burns"], r["in_bracket"], r["outside"], r["missed"]
    (3, 1, [2], [3])
    """
    inside, outside, missed = 0, [], []
    for k, when in enumerate(true_times, start=1):
        pixels = truth_ids == k
        hit = pixels & (first_seen >= 0)
        if not hit.any():
            missed.append(k)
            continue
        seen = int(np.bincount(first_seen[hit]).argmax())
        start = int(np.median(last_clear[hit & (first_seen == seen)]))
        if (start < 0 or scene_times[start] < when) and when <= scene_times[seen]:
            inside += 1
        else:
            outside.append(k)
    return {"burns": len(true_times), "in_bracket": inside, "outside": outside, "missed": missed}


def relative_error(estimate: float, truth: float) -> float | None:
    """``(estimate - truth) / truth``; None when there is no truth to be relative to.

    >>> relative_error(103.0, 100.0), relative_error(1.0, 0.0)
    (0.03, None)
    """
    return (estimate - truth) / truth if truth else None
