"""The analysis grid: one CRS, one pixel size, one origin shared by every scene of a run.

Putting every date on the same grid first is what makes a per-pixel difference mean
"the ground changed" rather than "the pixels moved". Grids are snapped to whole
multiples of the pixel size in their CRS so that a buffered grid and the grid it came
from share pixel edges exactly (cropping is then an index slice, never a resampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine

__all__ = ["Grid", "grid_for_bounds"]


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    Attributes
    ----------
    crs:
        CRS as an authority string, e.g. ``"EPSG:32630"`` (UTM zone 30N).
    transform:
        Affine transform of the top-left pixel corner (north-up, square pixels).
    width, height:
        Size in pixels.
    """

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (metres for UTM)."""
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``, the numpy order."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        left, top = self.transform.c, self.transform.f
        return (left, top - self.height * self.resolution, left + self.width * self.resolution, top)

    @property
    def pixel_area_m2(self) -> float:
        """Area of one pixel in square CRS units."""
        return self.resolution * self.resolution

    def x_coords(self) -> np.ndarray:
        """Easting of every pixel centre, left to right."""
        return self.transform.c + (np.arange(self.width) + 0.5) * self.resolution

    def y_coords(self) -> np.ndarray:
        """Northing of every pixel centre, top to bottom."""
        return self.transform.f - (np.arange(self.height) + 0.5) * self.resolution

    def buffered(self, pixels: int) -> "Grid":
        """The same grid grown by ``pixels`` on every side (shares pixel edges)."""
        res = self.resolution
        transform = Affine(res, 0.0, self.transform.c - pixels * res, 0.0, -res, self.transform.f + pixels * res)
        return Grid(self.crs, transform, self.width + 2 * pixels, self.height + 2 * pixels)

    def inside(self, geometry) -> np.ndarray:
        """``(height, width)`` bool: the pixels whose centre lies inside ``geometry`` (in the grid's CRS)."""
        from rasterio.features import rasterize  # only here: the grid itself needs no raster library

        return rasterize([(geometry, 1)], out_shape=self.shape, transform=self.transform, fill=0, dtype="uint8").astype(bool)

    def offset_in(self, outer: "Grid") -> tuple[int, int]:
        """``(row, col)`` of this grid's top-left pixel inside ``outer`` (same CRS and pixel size)."""
        if outer.crs != self.crs or not math.isclose(outer.resolution, self.resolution):
            raise ValueError("grids differ in CRS or pixel size; cropping needs a shared grid")
        col = (self.transform.c - outer.transform.c) / self.resolution
        row = (outer.transform.f - self.transform.f) / self.resolution
        # A pixel of 3.3 m does not divide exactly in binary: 80 pixels may come out as 79.99999999999999.
        if not (abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6):
            raise ValueError("grids are not aligned on whole pixels")
        return int(round(row)), int(round(col))


def grid_for_bounds(bounds: tuple[float, float, float, float], crs: str, resolution: float) -> Grid:
    """Smallest grid snapped to multiples of ``resolution`` that covers ``bounds``.

    Parameters
    ----------
    bounds:
        ``(left, bottom, right, top)`` in ``crs`` units.
    crs:
        Authority string of a projected CRS.
    resolution:
        Pixel size in CRS units.

    Examples
    --------
    >>> g = grid_for_bounds((1.0, 1.0, 10.0, 7.0), "EPSG:32630", 3.0)
    >>> g.shape, g.bounds
    ((3, 4), (0.0, 0.0, 12.0, 9.0))
    """
    left, bottom, right, top = bounds
    x0 = math.floor(left / resolution) * resolution
    y1 = math.ceil(top / resolution) * resolution
    x1 = math.ceil(right / resolution) * resolution
    y0 = math.floor(bottom / resolution) * resolution
    width = int(round((x1 - x0) / resolution))
    height = int(round((y1 - y0) / resolution))
    return Grid(crs, Affine(resolution, 0.0, x0, 0.0, -resolution, y1), width, height)
