"""Burn polygons as a Google Earth document, for readers who open a finding in Google Earth.

Each polygon is a placemark with a ``TimeSpan`` whose ``begin`` is the UTC time of the scene
on which it was first seen burned, and no ``end`` (a burn, once seen, stays): Google Earth's
time slider then shows the burns that had been seen by the time it is set to. When the burn
happened is the bracket between the last clear scene that did not show it and that first
scene; the bracket is in each placemark's description and ``ExtendedData``
(``last_clear_before``, ``first_seen``), and the document's description says so.

Polygons are coloured by their first-seen date, one style per date, in the colours
:mod:`pipeline.outputs.gis_styles` gives that date in the QGIS styles too; the folder's
description is the legend. Simulated runs say SIMULATED in the document, the folder and every
placemark. The document is built here as text; the caller writes it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html import escape
from typing import Any

import geopandas as gpd
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.model import SceneRecord
from pipeline.outputs.gis_styles import date_colour
from pipeline.outputs.report import TIME_OF_DAY_UNKNOWN

__all__ = ["KML_NAMESPACE", "TIME_SEMANTICS", "kml_document", "kml_colour", "date_style_id"]

KML_NAMESPACE = "http://www.opengis.net/kml/2.2"

TIME_SEMANTICS = (
    "Each burn's TimeSpan begins at the UTC time of the scene on which it was first seen burned and has no end "
    "(once seen, it stays), so Google Earth's time slider shows the burns seen by the time it is set to. The burn "
    "happened between the last clear scene that did not show it (last_clear_before) and that first scene "
    "(first_seen): both are in each burn's description and data."
)
"""What a placemark's time means, as the document's description states it."""

_FILL_ALPHA = "66"  # 40 % opaque: the ground stays visible under the burn


def kml_colour(hex_rgb: str, alpha: str = "ff") -> str:
    """KML's ``aabbggrr`` for ``#RRGGBB``.

    >>> kml_colour("#E69F00")
    'ff009fe6'
    """
    rgb = hex_rgb.lstrip("#").lower()
    return f"{alpha}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}"


def date_style_id(record: SceneRecord) -> str:
    """The style id of the burns first seen on ``record``: ``first_seen_<YYYYmmddTHHMMZ>``."""
    return f"first_seen_{record.acquired:%Y%m%dT%H%MZ}"


def _said(record: SceneRecord | None) -> str:
    if record is None:
        return "none"
    return record.stated_utc if record.time_of_day_known else f"{record.stated_utc} {TIME_OF_DAY_UNKNOWN}"


def _description(row: Any, label: str, first: SceneRecord, before: SceneRecord | None) -> str:
    """The placemark's text. Google Earth reads a description as HTML: the text is escaped, so that what a reviewer
    wrote (or a scene's file name) shows as written and never becomes an image fetched when the burn is opened."""
    review = getattr(row, "review", "") or "not reviewed"
    return escape(
        f"{label}First seen {_said(first)}; not visible on the clear scene of {_said(before)}. "
        f"{row.area_ha:.4f} ha, setting {row.setting}, {'confirmed' if row.confirmed else 'not yet confirmed'} "
        f"by a later clear scene; analyst review: {review}."
        + (f" Burned structures: {row.n_structures}." if hasattr(row, "n_structures") else "")
        + (f" Confidence {row.tier}: {row.tier_reasons}." if hasattr(row, "tier") else ""),
        quote=False)


def _ring(parent: ET.Element, tag: str, coords: Any) -> None:
    ring = ET.SubElement(ET.SubElement(parent, tag), "LinearRing")
    ET.SubElement(ring, "coordinates").text = " ".join(f"{x:.7f},{y:.7f}" for x, y, *_ in coords)


def _geometry(parent: ET.Element, geom: BaseGeometry) -> None:
    parts = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    holder = ET.SubElement(parent, "MultiGeometry") if len(parts) > 1 else parent
    for part in parts:
        if not isinstance(part, Polygon):
            raise ValueError(f"a burn polygon is a {part.geom_type}, not a Polygon; this is a defect in burnscan")
        polygon = ET.SubElement(holder, "Polygon")
        _ring(polygon, "outerBoundaryIs", part.exterior.coords)
        for hole in part.interiors:
            _ring(polygon, "innerBoundaryIs", hole.coords)


def kml_document(polygons_4326: gpd.GeoDataFrame, *, records: list[SceneRecord], simulated: bool) -> str:
    """The burns as a KML 2.2 document: dated placemarks, one style per first-seen date, a legend.

    Parameters
    ----------
    polygons_4326
        Burn polygons in lon/lat, with :data:`pipeline.stages.polygons.POLYGON_COLUMNS`
        (``first_seen_index`` and ``last_clear_index`` into ``records``).
    records
        Every scene of the run, in the report's order.
    simulated
        Say SIMULATED in every name and description.
    """
    label = "SIMULATED DATA - not evidence about a real place. " if simulated else ""
    prefix = "SIMULATED " if simulated else ""
    root = ET.Element("kml", {"xmlns": KML_NAMESPACE})
    doc = ET.SubElement(root, "Document")
    ET.SubElement(doc, "name").text = f"{prefix}burnscan burns"
    ET.SubElement(doc, "description").text = label + TIME_SEMANTICS
    dates = sorted({int(i) for i in polygons_4326["first_seen_index"]})
    for i in dates:
        style = ET.SubElement(doc, "Style", {"id": date_style_id(records[i])})
        line = ET.SubElement(style, "LineStyle")
        ET.SubElement(line, "color").text = kml_colour(date_colour(i))
        ET.SubElement(line, "width").text = "2"
        ET.SubElement(ET.SubElement(style, "PolyStyle"), "color").text = kml_colour(date_colour(i), _FILL_ALPHA)
    folder = ET.SubElement(doc, "Folder")
    ET.SubElement(folder, "name").text = f"{prefix}burns"
    legend = "".join(
        f'<p><span style="color:{date_colour(i)}">■</span> first seen {escape(_said(records[i]))} '
        f"({escape(records[i].scene_id)}): {int((polygons_4326['first_seen_index'] == i).sum())} burn(s)</p>" for i in dates)
    ET.SubElement(folder, "description").text = f"{label}Colour by first-seen date:{legend or ' no burns found.'}"
    for row in polygons_4326.itertuples():
        first = records[int(row.first_seen_index)]
        before = records[int(row.last_clear_index)] if int(row.last_clear_index) >= 0 else None
        mark = ET.SubElement(folder, "Placemark")
        ET.SubElement(mark, "name").text = f"{prefix}{row.polygon_id}"
        ET.SubElement(mark, "description").text = _description(row, label, first, before)
        ET.SubElement(ET.SubElement(mark, "TimeSpan"), "begin").text = first.stated_utc
        ET.SubElement(mark, "styleUrl").text = f"#{date_style_id(first)}"
        data = ET.SubElement(mark, "ExtendedData")
        for name, value in (("first_seen", first.stated_utc), ("first_seen_scene", first.scene_id),
                            ("last_clear_before", before.stated_utc if before else ""),
                            ("last_clear_scene", before.scene_id if before else ""), ("area_ha", f"{row.area_ha:.4f}")):
            ET.SubElement(ET.SubElement(data, "Data", {"name": name}), "value").text = value
        if "patch_id" in polygons_4326:  # the connected burned patch this compound's polygon was split from
            ET.SubElement(ET.SubElement(data, "Data", {"name": "patch_id"}), "value").text = str(row.patch_id)
        if "site_id" in polygons_4326:  # the burned site: the burn this polygon continues where cloud hid it on its day
            ET.SubElement(ET.SubElement(data, "Data", {"name": "site_id"}), "value").text = str(row.site_id)
        _geometry(mark, row.geometry)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
