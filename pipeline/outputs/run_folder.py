"""What a detect run writes into its (staging) run folder, apart from the manifest.

Burn polygons as GeoPackage (every layer: all, extent, structures, one per date), GeoJSON and
KML (dated placemarks coloured by date, :mod:`pipeline.outputs.kml`); the figures in PNG (and PDF for those that print); the report as JSON, Markdown and a
self-contained HTML page. Each write is atomic and rooted in the run folder
(:mod:`pipeline.outputs.write`); the manifest lists what is there when it is sealed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from pipeline.model import SceneRecord
from pipeline.outputs.html_report import render_html, screen_copy_pixels
from pipeline.outputs.kml import kml_document
from pipeline.outputs.report import render_markdown
from pipeline.outputs.write import save_figure, write_json, write_text, write_vector

__all__ = ["figure_jobs", "write_findings", "write_reports"]


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


def figure_jobs(folder: Path, builders: dict[str, Callable[[], Any]], *,
                simulated: bool) -> tuple[list[str], list[Callable[[], tuple[str, bytes]]]]:
    """The figures of :func:`pipeline.outputs.run_figures.figure_builders`, to be saved under ``figures/``.

    Returns their paths inside ``folder`` (PNGs only, in order) and, per figure, a function of
    no argument that draws it, saves it and returns its screen copy for the HTML report
    (:func:`pipeline.outputs.html_report.screen_copy_pixels`, from the pixels just drawn: the
    same copy as one made from the PNG). The jobs are independent: run them on every core.
    """
    suffix = "_SIMULATED" if simulated else ""
    names, jobs = [], []
    for name, build in builders.items():
        fname = name.replace(".png", f"{suffix}.png")
        # In PDF too, for print, where vectors help: outlines and charts stay sharp at any
        # size (a plain scene pair is pixels either way, so it stays PNG only).
        pdf = name == "timeline.png" or name.endswith(("_overlay.png", "_structures.png"))
        jobs.append(partial(_draw_and_save, folder, folder / "figures" / fname, build, pdf))
        names.append(f"figures/{fname}")
    return names, jobs


def _draw_and_save(folder: Path, png: Path, build: Callable[[], Any], pdf: bool) -> tuple[str, bytes]:
    figure = build()
    save_figure(png, figure, root=folder)
    # The Agg canvas still holds the pixels the PNG was encoded from: PNG is lossless, so they are what it decodes to.
    copy = screen_copy_pixels(np.divide(np.asarray(figure.canvas.buffer_rgba()), 255, dtype=np.float32))
    if pdf:
        save_figure(png.with_suffix(".pdf"), figure, root=folder)
    return copy


def write_reports(folder: Path, report: dict[str, Any], *, polygons: gpd.GeoDataFrame,
                  figures: dict[str, tuple[str, bytes]]) -> None:
    """``report.json``, ``report.md`` and ``report.html`` (screen copies of the figures embedded, so it opens offline as
    one file small enough to mail, each linked to its print files beside it).

    ``figures`` maps each figure's path inside ``folder`` to the screen copy :func:`figure_jobs` made of it.
    """
    write_json(folder / "report.json", report, root=folder)
    write_text(folder / "report.md", render_markdown(report, figures=list(figures), polygons=polygons), root=folder)
    pdfs = {name: [name[:-len(".png")] + ".pdf"] for name in figures if (folder / name).with_suffix(".pdf").is_file()}
    write_text(folder / "report.html", render_html(report, figures=figures, polygons=polygons, print_files=pdfs), root=folder)
