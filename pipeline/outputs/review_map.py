"""The review notebook's map: the run's offline review page (``review.html``) shown inline.

The notebook used to draw a Leaflet map (folium), which loads Leaflet, jQuery and Bootstrap
from CDNs (blank without a network, and telling third parties what an investigator looks at)
and laid the projected scenes on their lon/lat box, which drifts off the outlines by tens of
metres at the edges at high latitude. The map is now :func:`pipeline.outputs.review_page.review_page`,
drawn in the analysis grid itself with everything inline, shown in an ``<iframe srcdoc>`` so
that its script and style stay apart from the notebook's.
"""

from __future__ import annotations

from html import escape

import geopandas as gpd
from shapely.geometry.base import BaseGeometry

from pipeline.aoi import Aoi
from pipeline.model import Detection
from pipeline.outputs.review_page import review_page

__all__ = ["ReviewMap", "review_map"]


class ReviewMap:
    """A review page that a notebook shows inline (``_repr_html_``); ``html`` is the page itself."""

    def __init__(self, html: str, *, height_px: int = 820) -> None:
        self.html = html
        self.height_px = height_px

    def _repr_html_(self) -> str:
        # srcdoc, not a file or a data: URL: nothing to serve or fetch, and the page's own
        # Content-Security-Policy still applies inside the frame.
        return (f'<iframe srcdoc="{escape(self.html, quote=True)}" style="width:100%;height:{self.height_px}px;border:0" '
                'title="burnscan review map"></iframe>')


def review_map(detection: Detection, polygons_4326: gpd.GeoDataFrame, aoi_geometry: BaseGeometry | None, *, simulated: bool,
               tz_name: str = "UTC") -> ReviewMap:
    """The run's review page for a notebook cell, from the detection and its polygons.

    Parameters
    ----------
    detection
        ``RunOutcome.detection`` of the run.
    polygons_4326
        The run's polygons as its GeoJSON holds them (lon/lat; :func:`pipeline.review.run_polygons`).
    aoi_geometry
        The AOI polygon in lon/lat (``load_aoi(...).geometry``), or None.
    simulated
        The run's scenes are simulated: the page says SIMULATED DATA.
    tz_name
        IANA time zone for local times in the captions.

    Examples
    --------
    >>> review_map(outcome.detection, polygons, load_aoi(AOI, AOI_DIR).geometry, simulated=True)  # doctest: +SKIP
    """
    outline = Aoi("review", aoi_geometry).projected(detection.grid.crs) if aoi_geometry is not None else None
    title = "Burn polygons for review" + (" (SIMULATED DATA)" if simulated else "")
    return ReviewMap(review_page(detection, polygons_4326, outline, simulated=simulated, tz_name=tz_name, title=title))
