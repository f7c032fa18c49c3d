"""How the GIS outputs look when opened: one colour per date, and QGIS style files (``.qml``).

QGIS applies a ``.qml`` file lying beside a raster of the same name when the raster is
opened, so a reader sees the change as a colour ramp with the thresholds marked, the
first-seen dates as named classes and the scene composites in colour, without styling
anything by hand. The date colours are shared with the KML (:mod:`pipeline.outputs.kml`),
so a date has the same colour in QGIS and in Google Earth.

Functions here build text; they never open or write files (the caller writes through
:mod:`pipeline.outputs.write`). The XML is built in a fixed order, so the same run gives the
same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence

__all__ = ["DATE_COLOURS", "date_colour", "change_style", "first_seen_style", "rgb_style"]

DATE_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
"""Okabe & Ito's colour-blind-safe qualitative palette, black left out (it vanishes on a burn).

Reference: Okabe, M. & Ito, K. (2008), Color Universal Design, https://jfly.uni-koeln.de/color/.
"""

_QGIS_VERSION = "3.28.0-Firenze"  # the long-term release the files were checked against; later QGIS reads them too


def date_colour(index: int) -> str:
    """The colour (``#RRGGBB``) of the ``index``-th scene of a run, the same in every output.

    >>> date_colour(0), date_colour(len(DATE_COLOURS))
    ('#E69F00', '#E69F00')
    """
    return DATE_COLOURS[index % len(DATE_COLOURS)]


def _document(renderer: ET.Element) -> str:
    root = ET.Element("qgis", {"version": _QGIS_VERSION, "styleCategories": "AllStyleCategories"})
    pipe = ET.SubElement(root, "pipe")
    pipe.append(renderer)
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def _renderer(kind: str, **attrs: str) -> ET.Element:
    renderer = ET.Element("rasterrenderer", {"type": kind, "opacity": "1", "alphaBand": "-1", "nodataColor": "", **attrs})
    ET.SubElement(renderer, "rasterTransparency")
    return renderer


def _fixed_limits(renderer: ET.Element) -> None:
    """Tell QGIS to keep the given range rather than stretch to the statistics of whatever is in view."""
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(origin, tag).text = text


def change_style(stops: Sequence[tuple[float, str, str]], *, band: int = 1) -> str:
    """A pseudo-colour ramp for a burn-index change raster.

    Parameters
    ----------
    stops
        ``(value, "#RRGGBB", label)`` in increasing value: the ramp is interpolated between
        them, so putting the grow and seed thresholds among them shows where the mask begins.
    band
        The band the ramp colours.
    """
    values = [v for v, _, _ in stops]
    if len(stops) < 2 or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"a colour ramp needs at least two stops in increasing value, got {values}")
    low, high = f"{values[0]:.6g}", f"{values[-1]:.6g}"
    renderer = _renderer("singlebandpseudocolor", band=str(band), classificationMin=low, classificationMax=high)
    _fixed_limits(renderer)
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0", "minimumValue": low,
        "maximumValue": high, "labelPrecision": "3"})
    for value, colour, label in stops:
        ET.SubElement(shader, "item", {"alpha": "255", "value": f"{value:.6g}", "label": label, "color": colour})
    return _document(renderer)


def first_seen_style(classes: Sequence[tuple[int, str, str]]) -> str:
    """A paletted (categorised) style: one class per value, ``(value, "#RRGGBB", label)``.

    The label is the date a reader looks for (the raster holds a scene index, which means
    nothing on its own).
    """
    renderer = _renderer("paletted", band="1")
    palette = ET.SubElement(renderer, "colorPalette")
    for value, colour, label in classes:
        ET.SubElement(palette, "paletteEntry", {"value": str(int(value)), "color": colour, "alpha": "255", "label": label})
    return _document(renderer)


def rgb_style(*, low: int = 1, high: int = 255) -> str:
    """Bands 1, 2, 3 as red, green, blue, shown from ``low`` to ``high`` as written (already stretched)."""
    renderer = _renderer("multibandcolor", redBand="1", greenBand="2", blueBand="3")
    _fixed_limits(renderer)
    for colour in ("red", "green", "blue"):
        enhancement = ET.SubElement(renderer, f"{colour}ContrastEnhancement")
        ET.SubElement(enhancement, "minValue").text = str(low)
        ET.SubElement(enhancement, "maxValue").text = str(high)
        ET.SubElement(enhancement, "algorithm").text = "StretchToMinimumMaximum"
    return _document(renderer)
