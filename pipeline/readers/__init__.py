"""Everything burnscan reads from outside: scene deliveries, catalogues, vector layers, fire archives.

One module per format (Planet, Sentinel-2, Landsat, plain GeoTIFF, vector layers, FIRMS CSVs),
the AOI's scene catalogue and the STAC fetcher. Each scene reader turns its shape into a
``SceneSource`` (``describe()`` without pixels, ``load(grid)`` onto an analysis grid); every
check of a file before it is opened or believed lives here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # types only: the readers import this package, never the other way round
    import numpy as np

    from pipeline.grid import Grid
    from pipeline.model import SceneInfo, SceneRecord

__all__ = ["SceneSource"]


class SceneSource(Protocol):
    """A scene that can describe itself and load itself onto a grid."""

    scene_id: str

    def describe(self) -> SceneInfo:
        """Identity, time, sensor, footprint and files, without reading pixels."""

    def load(self, grid: Grid) -> tuple[SceneRecord, np.ndarray, np.ndarray]:
        """``(record, reflectance (band, y, x) float32 0..1 NaN = no data, clear (y, x) bool)`` on ``grid``."""
