"""The interactive map of the review notebook: scenes as layers, polygons with their reading.

Built with folium (Leaflet) and no base-map tiles, so it needs no network: the layers are the
first and last usable scenes in false colour, laid over their lon/lat bounds (at village size
the few-metre skew between the UTM grid and lon/lat is below a pixel of the overlay), the AOI
outline and the burn polygons, each with a popup: first seen, last clear before, area,
setting, confirmation, review, burned structures, active fires and confidence tier with its reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
from pyproj import Transformer
from shapely.geometry import mapping

from pipeline.errors import import_extra
from pipeline.outputs.figures import false_colour, joint_stretch
from pipeline.model import Detection

if TYPE_CHECKING:
    import folium

__all__ = ["review_map"]

_POPUP_FIELDS = ["polygon_id", "first_seen", "last_clear_before", "area_ha", "setting", "confirmed", "review",
                 "n_structures", "n_fire_detections", "tier", "tier_reasons"]


def _lonlat_bounds(detection: Detection) -> list[list[float]]:
    left, bottom, right, top = detection.grid.bounds
    to_lonlat = Transformer.from_crs(detection.grid.crs, "EPSG:4326", always_xy=True)
    lons, lats = to_lonlat.transform([left, right, left, right], [bottom, bottom, top, top])
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


def review_map(detection: Detection, polygons_4326: gpd.GeoDataFrame, aoi_geometry, *, simulated: bool) -> folium.Map:
    """A Leaflet map of one run for reviewing its polygons."""
    # The map alone needs folium (the review extra): imported here so that a missing one is a fix, not a traceback.
    folium = import_extra("folium", package="folium", extra="review", needed_by="the review map (notebooks/review.ipynb)")
    bounds = _lonlat_bounds(detection)
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    fmap = folium.Map(location=centre, zoom_start=15, tiles=None, control_scale=True)
    stack = detection.stack
    first, last = 0, stack.sizes["time"] - 1
    scenes = [stack["reflectance"].isel(time=i).assign_attrs(crs=detection.grid.crs) for i in (first, last)]
    stretch = joint_stretch(*scenes)
    label = " (SIMULATED DATA)" if simulated else ""
    for i, scene in zip((first, last), scenes):
        rgb, _ = false_colour(scene, stretch=stretch)
        rgba = np.dstack([np.nan_to_num(rgb, nan=0.5), np.where(np.isfinite(rgb).all(axis=-1), 1.0, 0.0)])
        record = detection.records[i]
        folium.raster_layers.ImageOverlay(image=rgba, bounds=bounds, name=f"{'before' if i == first else 'after'}: "
                                          f"{record.scene_id} {record.acquired_utc}{label}", show=i == last).add_to(fmap)
    folium.GeoJson(mapping(aoi_geometry), name="area of interest",
                   style_function=lambda _: {"color": "white", "weight": 2, "fill": False}).add_to(fmap)
    if len(polygons_4326):
        frame = polygons_4326.copy()
        for column in _POPUP_FIELDS:
            if column not in frame:
                frame[column] = ""
        frame = frame[_POPUP_FIELDS + ["geometry"]].astype({c: str for c in _POPUP_FIELDS})
        folium.GeoJson(frame.to_json(), name=f"burn polygons{label}",
                       style_function=lambda _: {"color": "yellow", "weight": 2, "fillOpacity": 0.1},
                       popup=folium.GeoJsonPopup(fields=_POPUP_FIELDS)).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds(bounds)
    return fmap
