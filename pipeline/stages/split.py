"""Split a burned patch that spans several compounds along the unburned walls between them.

Neighbouring compounds a pixel apart burn into one connected patch: the blur of the sensor
and the rim of each burn carry the change across the wall between them. Counted as one
polygon, such a patch under-counts the compounds burned. The wall is still there to see:

1. **In the before-scene.** A wall of mud brick or laterite is a thin line brighter than the
   dark courtyards and roofs on either side of it (on a PlanetScope pixel of 3 m a 1-2 m
   wall raises the pixel it crosses).
2. **In the change.** A wall does not burn: the pixel it crosses changes less than the
   burned courtyards on both sides of it.

A pixel is a wall where both hold along one direction (across the wall: left-right, up-down
or a diagonal, one or two pixels away), each by at least ``wall_contrast`` of the sides'
own value, with burned pixels of the same patch on both sides. The patch without its wall
pixels falls apart into its burned cores; each core of at least ``min_core_px`` (the minimum
mapping unit: a smaller piece would not be reported as a burn of its own) is a marker, and a
marker-based watershed (Beucher & Meyer 1993) on the before-scene's brightness hands every
wall pixel back to the core it borders. A patch with fewer than two such cores (a single
compound, however irregular; two compounds whose wall the imagery does not show) stays whole.

References
----------
Beucher, S. & Meyer, F. (1993). The morphological approach to segmentation: the watershed
transformation. In *Mathematical Morphology in Image Processing*, 433-481.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import label
from skimage.segmentation import watershed

__all__ = ["WALL_BANDS", "before_brightness", "wall_pixels", "split_patches"]

# Across a wall: horizontal, vertical and the two diagonals; a wall is crossed one pixel
# (1-px wall) or two pixels (a wall blurred over two pixels) from its middle.
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
_REACH = (1, 2)


WALL_BANDS = ("green", "red", "nir")
"""The bands whose mean is a wall's brightness (those present): one fixed set, so that a chunk, which
keeps only the bands its stages read, sees the same walls as the whole scene."""


def before_brightness(reflectance: np.ndarray, last_clear: np.ndarray) -> np.ndarray:
    """Each date's before-scene brightness: the mean reflectance of the last clear scene before it.

    Parameters
    ----------
    reflectance:
        ``(time, band, y, x)`` normalised reflectance.
    last_clear:
        ``(time, y, x)`` index of each pixel's last clear scene before each date (-1: none), as
        :func:`pipeline.stages.change.consecutive_change` gives it.

    Returns
    -------
    numpy.ndarray
        ``(time, y, x)`` float32, NaN where no clear scene came before.

    Examples
    --------
    >>> refl = np.stack([np.full((2, 1, 2), 0.3), np.full((2, 1, 2), 0.1)]).astype(np.float32)
    >>> before_brightness(refl, np.array([[[-1, -1]], [[0, 0]]]))[1].astype(float).round(2).tolist()
    [[0.3, 0.3]]
    """
    seen = np.isfinite(reflectance)
    # The mean of the bands seen (a pixel no band saw stays NaN, without numpy's empty-slice warning).
    brightness = np.where(seen, reflectance, 0).sum(axis=1) / np.where(seen.any(axis=1), seen.sum(axis=1), np.nan)
    index = np.clip(last_clear, 0, None).astype(np.intp)
    picked = np.take_along_axis(brightness, index, axis=0)  # date t, pixel p: brightness[last_clear[t, p], p]
    return np.where(last_clear >= 0, picked, np.nan).astype(np.float32)


def _read_at(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float) -> np.ndarray:
    """``values[rows, cols]``, ``fill`` where the position lies beyond the edge."""
    h, w = values.shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    out = np.full(rows.shape, fill, dtype=values.dtype)
    out[inside] = values[rows[inside], cols[inside]]
    return out


def wall_pixels(patches: np.ndarray, before: np.ndarray, change: np.ndarray, *, wall_contrast: float) -> np.ndarray:
    """Pixels of a patch that the before-scene shows as a wall and that burned less than both sides.

    Parameters
    ----------
    patches:
        ``(y, x)`` patch labels (0 = not burned).
    before:
        ``(y, x)`` brightness of the scene before the burn (NaN: not seen).
    change:
        ``(y, x)`` change that revealed the burn, positive = more burned (NaN outside the patches).
    wall_contrast:
        Share by which a wall is brighter before, and changed less, than the burned pixels on
        both of its sides.

    Returns
    -------
    numpy.ndarray
        ``(y, x)`` bool.
    """
    inside = patches > 0
    bright = np.where(np.isfinite(before), before, np.nan).astype(np.float64)
    dark = np.where(inside & np.isfinite(change), change, np.nan).astype(np.float64)
    wall = np.zeros(patches.shape, dtype=bool)
    # Only a patch's own pixels can be walls: each is compared with its neighbours where it lies, never
    # the whole grid shifted (a chunk's patches cover a few percent of it).
    rows, cols = np.nonzero(inside)
    label, own_bright, own_dark = patches[rows, cols], bright[rows, cols], dark[rows, cols]
    found = np.zeros(rows.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for dy, dx in _DIRECTIONS:
            for k in _REACH:
                a, b = (rows + k * dy, cols + k * dx), (rows - k * dy, cols - k * dx)  # the two sides
                both_burned = (_read_at(patches, *a, 0) == label) & (_read_at(patches, *b, 0) == label)
                # The brighter side and the less changed side: the wall must beat both sides, not their mean.
                bright_side = np.fmax(_read_at(bright, *a, np.nan), _read_at(bright, *b, np.nan))
                burned_side = np.fmin(_read_at(dark, *a, np.nan), _read_at(dark, *b, np.nan))
                ridge = own_bright >= bright_side * (1 + wall_contrast)
                dip = own_dark <= burned_side * (1 - wall_contrast)
                found |= both_burned & ridge & dip & (burned_side > 0)
    wall[rows[found], cols[found]] = True
    return wall


def split_patches(patches: np.ndarray, before: np.ndarray, change: np.ndarray, *, wall_contrast: float,
                  min_core_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Split each patch along the walls inside it into one piece per burned compound.

    Parameters
    ----------
    patches:
        ``(y, x)`` int labels 1..n of the burned patches (0 = not burned), 8-connected.
    before, change:
        As :func:`wall_pixels`.
    wall_contrast:
        As :func:`wall_pixels` (``pipeline.config.Params.split_wall_contrast``).
    min_core_px:
        Smallest burned core (pixels) that becomes a piece of its own.

    Returns
    -------
    pieces, patch_of_piece:
        ``(y, x)`` int labels 1..m of the pieces (a patch without a wall keeps one piece, its
        own pixels), and for each piece ``1..m`` (index ``piece - 1``) the patch it came from.

    Examples
    --------
    Two 4 x 4 burns joined across a bright wall column that burned less:

    >>> patches = np.zeros((6, 11), np.int32); patches[1:5, 1:10] = 1
    >>> before = np.full((6, 11), 0.2); before[:, 5] = 0.3
    >>> change = np.where(patches > 0, 0.2, np.nan); change[:, 5] = 0.1
    >>> pieces, parent = split_patches(patches, before, change, wall_contrast=0.1, min_core_px=6)
    >>> int(pieces.max()), parent.tolist()
    (2, [1, 1])
    """
    n = int(patches.max(initial=0))
    pieces = np.zeros(patches.shape, dtype=np.int32)
    parents: list[int] = []
    if n == 0:
        return pieces, np.zeros(0, dtype=np.int32)
    walls = wall_pixels(patches, before, change, wall_contrast=wall_contrast)
    # Cores are 4-connected: a one-pixel diagonal wall leaves its two sides touching at corners only.
    # skimage's label joins only equal neighbours: cores never run from one patch into a touching one of another date.
    cores, n_cores = label(np.where(walls, 0, patches), background=0, connectivity=1, return_num=True)
    core_px = np.bincount(cores.ravel(), minlength=n_cores + 1)
    core_patch = np.zeros(n_cores + 1, dtype=np.int64)
    core_patch[cores.ravel()] = patches.ravel()
    big = (core_px >= min_core_px) & (np.arange(n_cores + 1) > 0)
    markers_per_patch = np.bincount(core_patch[big], minlength=n + 1)
    split = np.flatnonzero(markers_per_patch >= 2)
    split_set = set(int(s) for s in split)
    for p in range(1, n + 1):
        if p not in split_set:
            pieces[patches == p] = len(parents) + 1
            parents.append(p)
    if split.size:
        # Flooded from the cores over the before-scene's brightness: the bright wall is reached last,
        # so each wall pixel joins the core beside it. One patch at a time, so no flood leaks into a
        # touching patch of another date.
        relief = np.nan_to_num(before.astype(np.float64), nan=float(np.nanmax(before)) if np.isfinite(before).any() else 0.0)
        boxes = ndimage.find_objects(patches)
        for p in split:
            box = boxes[p - 1]
            inside = patches[box] == p
            markers = np.where(inside & big[cores[box]], cores[box], 0)
            flooded = watershed(relief[box], markers=markers, mask=inside, connectivity=2)
            for core in np.unique(markers[markers > 0]):
                pieces[box][flooded == core] = len(parents) + 1
                parents.append(int(p))
    return pieces, np.array(parents, dtype=np.int32)
