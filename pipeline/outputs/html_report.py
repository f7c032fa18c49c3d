"""``report.html``: the whole finding in one self-contained file that opens in any browser.

Images are embedded (base64 PNG or JPEG), nothing is fetched from the network, and the page reads in
the order an investigator needs: a table of contents, the summary, then each date with its
figures, the marks seen once and gone again, the polygons, the analysts' review, the quality
of each scene, the parameters and the provenance. A short inline script only records, in the
page itself, whether every image decoded (for tests).

The page must travel by mail and open on a field laptop, so it embeds screen copies of the
figures (their longer side at most :data:`SCREEN_SIDE_PX`, about 200 kB each), not the 300 dpi
print files; each copy links to its print files in the run folder (``figures/``), beside the page.
"""

from __future__ import annotations

import base64
import io
import re
from html import escape
from typing import Any, Mapping, Sequence

import geopandas as gpd
import numpy as np

from pipeline.outputs.write import PNG_COMPRESS_LEVEL
from pipeline.outputs.report import (SIMULATED_WARNING, acquired_cell, band_map_words, times_given_words, burned_fraction_cell, sha256_cell, evidence_sections, shift_cell, nonfire_section,
                                     polygon_time_cell, transient_section)

__all__ = ["render_html", "screen_copy", "screen_copy_pixels", "SCREEN_SIDE_PX"]

SCREEN_SIDE_PX = 1200
"""Longest side of an embedded image: about a laptop screen; the print file keeps the full 300 dpi."""

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
.warning{background:#fff3cd;border:2px solid #c98a00;padding:.8em;font-weight:bold}
.summary{font-size:1.1em;background:#f4f6f8;padding:.8em;border-left:4px solid #345}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#eef}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#444}
code,pre{font-size:.8em;background:#f6f6f6}pre{padding:.6em;overflow-x:auto}
nav.toc{background:#f8f8f8;border:1px solid #ddd;padding:.4em 1em;font-size:.9em}nav.toc ul{margin:.2em 0}
"""

_IMAGE_CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def screen_copy(png: bytes, *, max_side: int = SCREEN_SIDE_PX) -> tuple[str, bytes]:
    """``(mime type, bytes)`` of a copy of ``png`` whose longer side is at most ``max_side`` pixels, for the screen.

    Shrunk by averaging whole blocks of pixels (an integer factor), which keeps thin outlines
    and text legible where dropping pixels would break them. Scene pairs are noisy pictures
    that PNG cannot compress (a megabyte each at 300 dpi); as JPEG at quality 85 they are a
    tenth of that, while a chart compresses better as PNG and stays crisp: the smaller wins.
    The print file (full 300 dpi, lossless) is what a copy links to, so nothing is lost.
    """
    from matplotlib import image as mpimg  # here, not at the top: a command that writes no page does not load matplotlib

    return screen_copy_pixels(mpimg.imread(io.BytesIO(png), format="png"), max_side=max_side)


def screen_copy_pixels(pixels: np.ndarray, *, max_side: int = SCREEN_SIDE_PX) -> tuple[str, bytes]:
    """:func:`screen_copy` of a figure's pixels as PNG decodes them (floats in 0-1, grey, RGB or RGBA).

    A figure just drawn need not be encoded and decoded again: its canvas holds these pixels.
    """
    from matplotlib import image as mpimg

    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    pixels = pixels[..., :3]  # figures are drawn on an opaque white background
    factor = -(-max(pixels.shape[:2]) // max_side)
    if factor > 1:
        pixels = _block_mean(pixels, factor)
    pixels = np.clip(pixels, 0, 1)
    copies = []
    # PNG at level 1, as the print files: level 6 took twice the time (0.73 s against 0.35 s for the village's 18 copies)
    # for copies 0-7 % smaller, and picked the same format for every one of them.
    for fmt, options in (("png", {"compress_level": PNG_COMPRESS_LEVEL}), ("jpeg", {"quality": 85})):
        buffer = io.BytesIO()
        mpimg.imsave(buffer, pixels, format=fmt, pil_kwargs=options)
        copies.append((len(buffer.getvalue()), f"image/{fmt}", buffer.getvalue()))
    _, mime, data = min(copies, key=lambda c: c[0])
    return mime, data


def _block_mean(pixels: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each whole ``factor`` x ``factor`` block of ``(y, x, channel)`` pixels (a partial block at the
    bottom or right edge is dropped).

    The same numbers as ``reshape(...).mean(axis=(1, 3))``, bit for bit: the block's pixels are added in the
    order that reduction adds them (row by row, left to right) and the sum divided by the count as it divides,
    but a whole plane at a time, which is several times faster than the strided reduction.
    """
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    pixels = pixels[:h, :w]
    total = pixels[::factor, ::factor].copy()
    for row in range(factor):
        for col in range(factor):
            if row or col:
                total += pixels[row::factor, col::factor]
    np.true_divide(total, np.intp(factor * factor), out=total, casting="unsafe")
    return total


def _figure(name: str, copy: tuple[str, bytes], *, print_files: Sequence[str] = ()) -> str:
    """The screen copy of a figure (:func:`screen_copy`), linked to its print files (relative paths inside the run folder)."""
    mime, copy = copy
    data = base64.b64encode(copy).decode("ascii")
    links = " ".join(f'<a href="{escape(f)}">{escape(f.rsplit(".", 1)[-1].upper())}</a>' for f in (name, *print_files))
    return (f'<figure><a href="{escape(name)}"><img alt="{escape(name)}" src="data:{mime};base64,{data}"></a>'
            f"<figcaption>{escape(name)} (screen copy; for print, 300 dpi: {links})</figcaption></figure>")


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def render_html(report: Mapping[str, Any], *, figures: Mapping[str, tuple[str, bytes]],
                polygons: gpd.GeoDataFrame | None = None, max_rows: int = 400,
                print_files: Mapping[str, Sequence[str]] | None = None) -> str:
    """One HTML page from :func:`pipeline.outputs.report.build_report`'s dict and the run's figures.

    ``figures`` maps each figure's path inside the run folder to its screen copy
    (:func:`screen_copy`'s ``(mime type, bytes)``, embedded and linked to that path);
    ``print_files`` gives, per figure, its other print files (the PDF) to link beside it.
    """
    print_files = print_files or {}
    toc: list[tuple[int, str, str]] = []  # (level, anchor, title)

    def heading(level: int, title: str, anchor: str | None = None) -> str:
        anchor = anchor or _anchor(title)
        toc.append((level, anchor, title))
        # The anchor sits before the heading, so that the heading's own markup stays as readers and tests know it.
        return f'<a id="{escape(anchor)}"></a><h{level}>{escape(title)}</h{level}>'

    def figure(name: str) -> str:
        return _figure(name, figures[name], print_files=print_files.get(name, ()))

    # The warning and the summary come before the contents: whoever opens the page reads them first.
    head = []
    if report["simulated"]:
        head.append(f'<p class="warning">{escape(SIMULATED_WARNING)}</p>')
    summary = report["summary"].replace(SIMULATED_WARNING, "").strip()  # said once, in the warning box above
    head.append(f'<p class="summary">{escape(summary)}</p>')
    if report.get("grid"):
        head.append(f"<p>{escape(report['grid']['statement'][0].upper() + report['grid']['statement'][1:])}.</p>")
    if report.get("patches"):
        head.append(f"<p>{escape(report['patches']['statement'])}</p>")
    aoi = report["aoi"]
    if aoi.get("location_uncertain"):
        head.append(f"<p>Location of {escape(aoi['display_name'])} is uncertain (confidence {escape(str(aoi['location_confidence']))}: "
                    f"{escape(str(aoi['location_source']))}).</p>")
    parts = [heading(2, "Overview")]
    for extent in report.get("burned_extent", []):
        parts.append(f"<p>{escape(extent['statement'])}</p>")
    for general in ("overview.png", "timeline.png"):
        for name in figures:
            if name.split("/")[-1].replace("_SIMULATED", "") == general:
                parts.append(figure(name))

    parts.append(heading(2, "Date by date"))
    for reading in report["readings"]:
        stamp = reading["acquired_utc"][:16].replace("-", "").replace(":", "") + "Z"  # 2024-01-28T10:38 -> 20240128T1038Z
        parts.append(heading(3, f"{reading['acquired']} \u2014 {reading['scene_id']}", f"date-{stamp}-{reading['scene_index']}"))
        parts.append(f"<p>{escape(reading['statement'])}</p>")
        for name in figures:
            if name.split("/")[-1].startswith(stamp):
                parts.append(figure(name))

    gone, not_fire = transient_section(report), nonfire_section(report)
    for section in [s for s in (gone, not_fire) if s] + evidence_sections(report):
        parts.append(heading(2, section["title"]) + "".join(f"<p>{escape(p)}</p>" for p in section["paragraphs"]))
        if section["rows"]:
            parts.append(_table(section["header"], section["rows"]))
    review = report.get("review") or {}
    if review.get("n_reviewed"):
        machine = review["machine_output"]
        parts.append(heading(2, "Analyst review"))
        parts.append(f"<p>The machine output is kept unchanged in the polygon table and files: {machine['n_polygons']} polygon(s), "
                     f"{machine['area_ha']:.2f} ha; the totals above leave out the polygons rejected by review.</p>")
        parts.append(_table(["polygon", "decision", "by", "when (UTC)", "reason"],
                            [[d["polygon_id"], d["decision"], d["by"], d["at_utc"], d["reason"]] for d in review["decisions"]]))

    if polygons is not None and len(polygons):
        parts.append(heading(2, f"Polygons ({len(polygons)}; index {report['index']})", "polygons"))
        stamp = polygon_time_cell(report)  # a scene whose time of day is unknown says so here too
        rows = [[r.polygon_id, stamp(r.first_seen), stamp(r.last_clear_before), f"{r.area_ha:.4f}", burned_fraction_cell(r),
                 f"{r.mean_index_change:.3f}", r.setting,
                 "yes" if r.confirmed else "not yet", getattr(r, "review", "") or "not reviewed",
                 getattr(r, "n_structures", ""), getattr(r, "n_fire_detections", ""), getattr(r, "tier", ""),
                 getattr(r, "tier_reasons", "")]
                for r in polygons.head(max_rows).itertuples()]
        parts.append(_table(["id", "first seen (UTC)", "last clear before (UTC)", "area (ha)", "burned, sum of fractions (ha)",
                             "mean change", "setting", "confirmed",
                             "review", "structures", "fires", "confidence", "why"], rows))
        if len(polygons) > max_rows:
            parts.append(f"<p>{len(polygons) - max_rows} more polygons are in the GeoPackage and GeoJSON.</p>")

    parts.append(heading(2, "Scenes and their quality"))
    scene_rows = []
    for s in report["scenes"]:
        c = s.get("coregistration") or {}
        shift = shift_cell(c, none="reference")
        scene_rows.append([s["index"], s["scene_id"], acquired_cell(s), f"{s['sensor']} {s['satellite_id']}", f"{s['clear_fraction']:.1%}", s.get("cloud_mask", ""),
                           "yes" if s.get("usable") else f"no: {s.get('unusable_reason', '')}", shift,
                           f"{c.get('residual', 0):.4f}" if c else "", sha256_cell(s.get("sha256") or {})])
    parts.append(_table(["#", "scene", "acquired", "sensor", "clear over the AOI", "cloud mask", "usable", "shift dy, dx (px)", "residual",
                         "SHA-256 (reflectance)"], scene_rows))
    if report["scenes"]:
        parts.append(f"<p>{escape(band_map_words(report['scenes']))}</p>")
        if times_given_words(report["scenes"]):
            parts.append(f"<p>{escape(times_given_words(report['scenes']))}</p>")
    parts.append(heading(2, "Parameters") + _table(["parameter", "value"], [[k, v] for k, v in report["parameters"].items()]))
    parts.append(heading(2, "Provenance") + _table(["", ""], [[k, v] for k, v in report["provenance"].items()]))
    title = escape(report["title"])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style>'
            f"<script>{_IMAGE_CHECK}</script></head>\n<body>\n<h1>{title}</h1>\n" + "\n".join(head) + f"\n{_contents(toc)}\n"
            + "\n".join(parts)
            + "\n</body></html>\n")


def _contents(toc: Sequence[tuple[int, str, str]]) -> str:
    """The table of contents: every section, with the dates nested under "Date by date"."""
    items: list[tuple[str, list[str]]] = []
    for level, anchor, title in toc:
        link = f'<a href="#{escape(anchor)}">{escape(title)}</a>'
        if level == 3 and items:
            items[-1][1].append(f"<li>{link}</li>")
        else:
            items.append((link, []))
    body = "".join(f"<li>{link}" + (f"<ul>{''.join(sub)}</ul>" if sub else "") + "</li>" for link, sub in items)
    return f'<nav class="toc"><strong>Contents</strong><ul>{body}</ul></nav>'
