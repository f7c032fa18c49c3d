"""What a detect run writes into its (staging) run folder, apart from the manifest.

Burn polygons as GeoPackage (every layer: all, extent, structures, one per date), GeoJSON and
KML (dated placemarks coloured by date, :mod:`pipeline.outputs.kml`); the figures in PNG (and PDF for those that print); the report as JSON, Markdown and a
self-contained HTML page. Each write is atomic and rooted in the run folder
(:mod:`pipeline.outputs.write`); the manifest lists what is there when it is sealed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd

from pipeline.model import SceneRecord
from pipeline.outputs.html_report import render_html
from pipeline.outputs.kml import kml_document
from pipeline.outputs.report import render_markdown
from pipeline.outputs.write import save_figures, write_json, write_text, write_vector

__all__ = ["write_findings", "write_figures", "write_reports"]


def write_findings(folder: Path, *, polygons: gpd.GeoDataFrame, extents: gpd.GeoDataFrame, structures: gpd.GeoDataFrame | None,
                   records: list[SceneRecord], simulated: bool) -> None:
    """The polygons in the three vector formats a GIS user, a reader and Google Earth open."""
    suffix = "_SIMULATED" if simulated else ""
    polygons_4326 = polygons.to_crs("EPSG:4326")
    gpkg_layers = {"all": polygons}
    if len(extents):
        gpkg_layers["extent"] = extents
    if structures is not None:
        gpkg_layers["structures"] = structures
    for t, rec in enumerate(records):
        chosen = polygons[polygons["first_seen_index"] == t]
        if len(chosen):
            gpkg_layers[f"first_seen_{rec.acquired:%Y%m%dT%H%MZ}"] = chosen
    write_vector(folder / f"burns{suffix}.gpkg", gpkg_layers, root=folder)
    write_vector(folder / f"burns{suffix}.geojson", {"burns": polygons_4326}, driver="GeoJSON", root=folder)
    write_text(folder / f"burns{suffix}.kml", kml_document(polygons_4326, records=records, simulated=simulated), root=folder)


def write_figures(folder: Path, figures: dict[str, Any], *, simulated: bool) -> list[str]:
    """Save ``figures`` under ``figures/``; return their paths inside ``folder``, PNGs only, in order."""
    suffix = "_SIMULATED" if simulated else ""
    to_save, names = [], []
    for name, fig in figures.items():
        fname = name.replace(".png", f"{suffix}.png")
        to_save.append((folder / "figures" / fname, fig))
        if name == "timeline.png" or name.endswith(("_overlay.png", "_structures.png")):
            # In PDF too, for print, where vectors help: outlines and charts stay sharp at any
            # size (a plain scene pair is pixels either way, so it stays PNG only).
            to_save.append((folder / "figures" / fname.replace(".png", ".pdf"), fig))
        names.append(f"figures/{fname}")
    save_figures(to_save, root=folder)
    return names


def write_reports(folder: Path, report: dict[str, Any], *, polygons: gpd.GeoDataFrame, figure_names: list[str]) -> None:
    """``report.json``, ``report.md`` and ``report.html`` (screen copies of the figures embedded, so it opens offline as
    one file small enough to mail, each linked to its print files beside it)."""
    write_json(folder / "report.json", report, root=folder)
    write_text(folder / "report.md", render_markdown(report, figures=figure_names, polygons=polygons), root=folder)
    pngs = {name: (folder / name).read_bytes() for name in figure_names}
    pdfs = {name: [name[:-len(".png")] + ".pdf"] for name in figure_names if (folder / name).with_suffix(".pdf").is_file()}
    write_text(folder / "report.html", render_html(report, figures=pngs, polygons=polygons, print_files=pdfs), root=folder)
