"""Burned extent: the outline around the burns, with the unburned gaps and islands inside it.

The burn mask counts burned pixels. What fire services map, and what an investigator draws
around a burned village, is an extent: the lane between two burned compounds, a courtyard, an
unburned island in a wildfire lie inside it. The extent here is the burn mask closed over gaps
narrower than about twice ``close_radius_m`` (a disc-shaped closing) with every enclosed hole
filled. It never shrinks the burn mask, and it is dated cumulatively: the extent as of a date
encloses every burn first seen up to then, and a pixel's extent date is the first date whose
extent encloses it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from scipy import ndimage

from pipeline.grid import Grid
from pipeline.stages.polygons import equal_area_crs, pixel_outlines

__all__ = ["extent_mask", "extent_dates", "extent_polygons", "EXTENT_COLUMNS"]

EXTENT_COLUMNS = ["extent_id", "as_of", "as_of_index", "area_m2", "area_ha", "burned_ha", "n_burn_polygons"]


def extent_mask(burned: np.ndarray, *, pixel_size_m: float, close_radius_m: float) -> np.ndarray:
    """``burned`` closed over gaps up to about ``2 * close_radius_m`` wide, holes filled.

    Examples
    --------
    >>> m = np.zeros((20, 20), bool); m[5:15, 5:8] = m[5:15, 10:13] = True  # two strips, 2 px apart
    >>> extent = extent_mask(m, pixel_size_m=10, close_radius_m=20)
    >>> bool(extent[7:13, 5:13].all()), bool(extent[:, :4].any())  # the gap is inside, the rest is not
    (True, False)
    """
    radius = close_radius_m / pixel_size_m
    if radius >= 0.5 and burned.any():
        # Closing by a disc through distance transforms (linear time whatever the radius):
        # dilate to everything within the radius of a burn, erode back by the same radius.
        # Padding keeps the closing from eating burns that touch the frame.
        pad = int(np.ceil(radius)) + 1
        padded = np.pad(burned, pad, mode="constant")
        dilated = ndimage.distance_transform_edt(~padded) <= radius
        closed = (ndimage.distance_transform_edt(dilated) > radius)[pad:-pad, pad:-pad]
    else:
        closed = burned
    return ndimage.binary_fill_holes(closed | burned)


def extent_dates(first_seen: np.ndarray, *, pixel_size_m: float, close_radius_m: float) -> np.ndarray:
    """Per pixel, the first scene index whose cumulative extent encloses it (-1: never)."""
    out = np.full(first_seen.shape, -1, dtype=np.int16)
    for t in sorted(int(v) for v in np.unique(first_seen) if v >= 0):
        inside = extent_mask((first_seen >= 0) & (first_seen <= t), pixel_size_m=pixel_size_m, close_radius_m=close_radius_m)
        out[inside & (out < 0)] = t
    return out


def extent_polygons(extent_first: np.ndarray, first_seen: np.ndarray, *, grid: Grid, times: list[str]) -> gpd.GeoDataFrame:
    """One row per connected extent as of each date: area and the burned area it encloses."""
    rows: list[dict] = []
    geometries = []
    ea = equal_area_crs(grid)
    pixel_ha = grid.pixel_area_m2 / 1e4
    for t in sorted(int(v) for v in np.unique(extent_first) if v >= 0):
        labels, n = ndimage.label((extent_first >= 0) & (extent_first <= t), structure=np.ones((3, 3), bool))
        burned_to_date = (first_seen >= 0) & (first_seen <= t)
        burned_px = ndimage.sum_labels(burned_to_date, labels, np.arange(1, n + 1))
        outlines = pixel_outlines(labels.astype(np.int32), np.arange(1, n + 1), grid)  # valid, area kept
        burn_labels, n_burn = ndimage.label(burned_to_date, structure=np.ones((3, 3), bool))
        # Each burn patch lies inside one extent (the extent contains the mask): count them per extent.
        burns_per_extent = np.bincount(_extent_of_each_burn(labels, burn_labels, n_burn), minlength=n + 1)
        for i in range(1, n + 1):
            geometries.append(outlines[i - 1])
            rows.append({"as_of": times[t], "as_of_index": t, "burned_ha": round(float(burned_px[i - 1]) * pixel_ha, 4),
                         "n_burn_polygons": int(burns_per_extent[i])})
    if not rows:
        return gpd.GeoDataFrame(columns=EXTENT_COLUMNS + ["geometry"], geometry="geometry", crs=grid.crs)
    frame = gpd.GeoDataFrame(rows, geometry=geometries, crs=grid.crs)
    areas = frame.geometry.to_crs(ea).area.to_numpy()
    frame["area_m2"] = np.round(areas, 1)
    frame["area_ha"] = np.round(areas / 1e4, 4)
    centroids = frame.geometry.centroid
    frame["extent_id"] = [f"extent-{times[t][:10].replace('-', '')}-E{int(round(c.x, -1))}-N{int(round(c.y, -1))}"
                          for t, c in zip(frame["as_of_index"], centroids)]
    frame = frame.sort_values(["as_of_index", "extent_id"]).reset_index(drop=True)
    return gpd.GeoDataFrame(frame[EXTENT_COLUMNS + ["geometry"]], geometry="geometry", crs=grid.crs)


def _extent_of_each_burn(labels: np.ndarray, burn_labels: np.ndarray, n_burn: int) -> np.ndarray:
    """Per burn patch (``1..n_burn``), the largest extent label under it: ``ndimage.maximum(labels, burn_labels,
    1..n_burn)``, read from the burned pixels alone instead of sorting every pixel of the grid by label.

    >>> labels = np.array([[1, 1, 0, 2], [1, 1, 0, 2]]); burns = np.array([[0, 1, 0, 2], [3, 0, 0, 2]])
    >>> _extent_of_each_burn(labels, burns, 3).tolist()
    [1, 2, 1]
    """
    burned = np.flatnonzero(burn_labels)
    owner = np.zeros(n_burn + 1, dtype=np.int64)
    np.maximum.at(owner, burn_labels.ravel()[burned], labels.ravel()[burned])
    return owner[1:]
