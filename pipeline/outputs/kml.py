"""Burn polygons as Google Earth placemarks, for readers who open a finding in Google Earth."""

from __future__ import annotations

import geopandas as gpd

__all__ = ["kml_placemarks"]


def kml_placemarks(polygons_4326: gpd.GeoDataFrame, *, simulated: bool) -> gpd.GeoDataFrame:
    """Polygons as Google Earth placemarks: the id as name, the dated reading as description.

    Times stay in UTC as the report states them; simulated runs say so in every placemark.
    """
    label = "SIMULATED DATA - not evidence about a real place. " if simulated else ""
    rows = []
    for row in polygons_4326.itertuples():
        review = getattr(row, "review", "") or "not reviewed"
        rows.append(
            f"{label}First seen {row.first_seen}; not visible on the clear scene of {row.last_clear_before}. "
            f"{row.area_ha:.4f} ha, setting {row.setting}, {'confirmed' if row.confirmed else 'not yet confirmed'} "
            f"by a later clear scene; analyst review: {review}."
            + (f" Burned structures: {row.n_structures}." if hasattr(row, "n_structures") else "")
            + (f" Confidence {row.tier}: {row.tier_reasons}." if hasattr(row, "tier") else "")
        )
    return gpd.GeoDataFrame({"Name": [("SIMULATED " if simulated else "") + str(i) for i in polygons_4326["polygon_id"]],
                             "Description": rows}, geometry=polygons_4326.geometry.values, crs="EPSG:4326")
