"""What a detect run writes into its (staging) run folder, apart from the manifest.

Burn polygons as GeoPackage (every layer: all, extent, structures, one per date), GeoJSON and
KML (dated placemarks coloured by date, :mod:`pipeline.outputs.kml`); the figures in PNG (and PDF for those that print); the report as JSON, Markdown and a
self-contained HTML page. Each write is atomic and rooted in the run folder
(:mod:`pipeline.outputs.write`); the manifest lists what is there when it is sealed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from pipeline.model import SceneRecord
from pipeline.outputs.figure_cache import FigureCache, KeptFigure
from pipeline.outputs.html_report import render_html, screen_copy_pixels
from pipeline.outputs.kml import kml_document
from pipeline.outputs.report import render_markdown
from pipeline.outputs.run_rasters import GIS_FOLDER, RasterInputs, write_rasters
from pipeline.outputs.write import save_figure, write_bytes, write_json, write_text, write_vector

__all__ = ["SIMULATED_VECTORS", "FigureJob", "figure_jobs", "raster_job", "scene_jobs", "with_drawn", "write_findings", "write_reports"]


def write_findings(folder: Path, *, polygons: gpd.GeoDataFrame, extents: gpd.GeoDataFrame, structures: gpd.GeoDataFrame | None,
                   records: list[SceneRecord], simulated: bool) -> None:
    """The polygons in the three vector formats a GIS user, a reader and Google Earth open.

    Simulated polygons say so in the file names, in a ``simulated`` attribute of every feature (which stays with a
    feature copied or merged into another layer) and in each layer's description.
    """
    suffix = "_SIMULATED" if simulated else ""
    description = SIMULATED_VECTORS if simulated else None
    polygons = _times_as_stated(polygons, records)
    if structures is not None:
        structures = _times_as_stated(structures, records)
    if simulated:
        polygons, extents = polygons.assign(simulated=True), extents.assign(simulated=True)
        structures = structures.assign(simulated=True) if structures is not None else None
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
    write_vector(folder / f"burns{suffix}.gpkg", gpkg_layers, root=folder, description=description)
    write_vector(folder / f"burns{suffix}.geojson", {"burns": polygons_4326}, driver="GeoJSON", root=folder,
                 description=description)
    write_text(folder / f"burns{suffix}.kml", kml_document(polygons_4326, records=records, simulated=simulated), root=folder)


def _times_as_stated(frame: gpd.GeoDataFrame, records: list[SceneRecord]) -> gpd.GeoDataFrame:
    """``frame`` with its bracket's times as the scenes state them (:attr:`SceneRecord.stated_utc`): a scene known by
    its date alone gives that date, not a midnight that a GIS would show as an observed time."""
    changed = {}
    for column, index in (("first_seen", "first_seen_index"), ("last_clear_before", "last_clear_index")):
        if column in frame and index in frame and not all(r.time_of_day_known for r in records):
            changed[column] = [records[int(i)].stated_utc if 0 <= int(i) < len(records) else value
                               for i, value in zip(frame[index], frame[column])]
    return frame.assign(**changed) if changed else frame


SIMULATED_VECTORS = "SIMULATED DATA - burns found on scenes marked as simulated, not evidence about a real place"
"""The description of every layer of a simulated run's polygons."""


@dataclass(frozen=True)
class FigureJob:
    """One figure of a run: its PNG's path inside the run folder, and the function that writes it and returns its
    screen copy. ``draws`` is false where the figure is copied from a kept one (light work, for this process)."""

    name: str
    run: Callable[[], tuple[str, bytes]]
    draws: bool


def figure_jobs(folder: Path, builders: dict[str, Callable[[], Any]], *, simulated: bool,
                kept: FigureCache | None = None) -> list[FigureJob]:
    """The figures of :func:`pipeline.outputs.run_figures.figure_builders`, to be saved under ``figures/``.

    Per figure, in order, a job of no argument that draws it, saves it and returns its screen copy
    for the HTML report (:func:`pipeline.outputs.html_report.screen_copy_pixels`, from the pixels
    just drawn: the same copy as one made from the PNG). With ``kept``, a figure kept under its
    key (:mod:`pipeline.outputs.figure_cache`) is copied instead of drawn, and a drawn one is kept.
    The drawing jobs are independent: run them on every core.
    """
    suffix = "_SIMULATED" if simulated else ""
    figures = {}
    for name, build in builders.items():
        # In PDF too, for print, where vectors help: outlines and charts stay sharp at any
        # size (a plain scene pair is pixels either way, so it stays PNG only).
        pdf = name == "timeline.png" or name.endswith(("_overlay.png", "_structures.png"))
        figures[f"figures/{name.replace('.png', f'{suffix}.png')}"] = (pdf, build)
    keys = kept.keys(figures) if kept is not None else dict.fromkeys(figures)
    jobs = []
    for name, (pdf, build) in figures.items():
        key = keys[name]
        found = kept.get(key) if kept is not None and key is not None else None
        if found is not None:
            jobs.append(FigureJob(name, partial(_write_kept, folder, folder / name, found), draws=False))
        else:
            store = partial(kept.put, key) if kept is not None and key is not None else None
            jobs.append(FigureJob(name, partial(_draw_and_save, folder, folder / name, build, pdf, store), draws=True))
    return jobs


def scene_jobs(images: list[Callable[[], bytes]], *, kept: FigureCache | None = None
               ) -> tuple[list[bytes | None], list[Callable[[], bytes]]]:
    """The review page's scenes (:func:`pipeline.outputs.review_page.scene_images`): those kept under their key, in
    order (``None`` where there is none), and a job per scene still to draw, which keeps what it draws.

    :func:`with_drawn` puts the drawn ones in their places.
    """
    keys = kept.keys({f"review page scene {t}": (False, image) for t, image in enumerate(images)}) if kept is not None else {}
    found: list[bytes | None] = []
    draw: list[Callable[[], bytes]] = []
    for t, image in enumerate(images):
        key = keys.get(f"review page scene {t}")
        entry = kept.get(key) if kept is not None and key is not None else None
        found.append(entry.png if entry is not None else None)
        if entry is None:
            draw.append(partial(_draw_scene, image, partial(kept.put, key) if kept is not None and key is not None else None))
    return found, draw


def with_drawn(found: list[bytes | None], drawn: list[bytes]) -> list[bytes]:
    """``found`` with each ``None`` replaced by the next of ``drawn``, in order."""
    rest = iter(drawn)
    return [png if png is not None else next(rest) for png in found]


def _draw_scene(image: Callable[[], bytes], store: Callable[[KeptFigure], None] | None) -> bytes:
    png = image()
    if store is not None:
        store(KeptFigure(png, None, None))
    return png


def raster_job(folder: Path, inputs: RasterInputs, *, kept: FigureCache | None = None) -> Callable[[], bool]:
    """The run's GIS rasters (:func:`pipeline.outputs.run_rasters.write_rasters`) as one job of no argument: copied
    from a kept set made from the same inputs, else made (and kept). It returns whether it made them. Hashing the
    inputs and writing the files is work for another core, whichever it does."""
    return partial(_rasters, folder, inputs, kept)


def _rasters(folder: Path, inputs: RasterInputs, kept: FigureCache | None) -> bool:
    key = kept.key(GIS_FOLDER, inputs) if kept is not None else None  # the code that writes them is in the drawing version
    found = kept.get_files(key) if kept is not None and key is not None else None
    if found is not None:
        _write_kept_files(folder / GIS_FOLDER, found, folder)
        return False
    written = write_rasters(folder, inputs)
    if kept is not None and key is not None:
        kept.put_files(key, {Path(path).name: (folder / path).read_bytes() for path in written})
    return True


def _write_kept_files(target: Path, files: dict[str, bytes], root: Path) -> None:
    for name, data in files.items():
        write_bytes(target / name, data, root=root)


def _draw_and_save(folder: Path, png: Path, build: Callable[[], Any], pdf: bool,
                   store: Callable[[KeptFigure], None] | None) -> tuple[str, bytes]:
    figure = build()
    save_figure(png, figure, root=folder)
    # The Agg canvas still holds the pixels the PNG was encoded from: PNG is lossless, so they are what it decodes to.
    copy = screen_copy_pixels(np.divide(np.asarray(figure.canvas.buffer_rgba()), 255, dtype=np.float32))
    if pdf:
        save_figure(png.with_suffix(".pdf"), figure, root=folder)
    if store is not None:
        store(KeptFigure(png.read_bytes(), png.with_suffix(".pdf").read_bytes() if pdf else None, copy))
    return copy


def _write_kept(folder: Path, png: Path, kept: KeptFigure) -> tuple[str, bytes]:
    write_bytes(png, kept.png, root=folder)
    if kept.pdf is not None:
        write_bytes(png.with_suffix(".pdf"), kept.pdf, root=folder)
    return kept.screen


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
