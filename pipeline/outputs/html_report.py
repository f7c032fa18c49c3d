"""``report.html``: the whole finding in one self-contained file that opens in any browser.

Images are embedded (base64 PNG), nothing is fetched from the network, and the page reads in
the order an investigator needs: the summary, then each date with its figures, the polygons,
the analysts' review, the quality of each scene, the parameters and the provenance. A short
inline script only records, in the page itself, whether every image decoded (for tests).
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any, Mapping, Sequence

import geopandas as gpd

from pipeline.outputs.report import SIMULATED_WARNING, evidence_sections

__all__ = ["render_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
.warning{background:#fff3cd;border:2px solid #c98a00;padding:.8em;font-weight:bold}
.summary{font-size:1.1em;background:#f4f6f8;padding:.8em;border-left:4px solid #345}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#eef}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#444}
code,pre{font-size:.8em;background:#f6f6f6}pre{padding:.6em;overflow-x:auto}
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


def _figure(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{escape(name)}" src="data:image/png;base64,{data}"><figcaption>{escape(name)}</figcaption></figure>'


def render_html(report: Mapping[str, Any], *, figures: Mapping[str, bytes], polygons: gpd.GeoDataFrame | None = None,
                max_rows: int = 400) -> str:
    """One HTML page from :func:`pipeline.outputs.report.build_report`'s dict and the run's figures (name -> PNG bytes)."""
    parts = [f"<h1>{escape(report['title'])}</h1>"]
    if report["simulated"]:
        parts.append(f'<p class="warning">{escape(SIMULATED_WARNING)}</p>')
    summary = report["summary"].replace(SIMULATED_WARNING, "").strip()  # said once, in the warning box above
    parts.append(f'<p class="summary">{escape(summary)}</p>')
    if report.get("grid"):
        parts.append(f"<p>{escape(report['grid']['statement'][0].upper() + report['grid']['statement'][1:])}.</p>")
    aoi = report["aoi"]
    if aoi.get("location_uncertain"):
        parts.append(f"<p>Location of {escape(aoi['display_name'])} is uncertain (confidence {escape(str(aoi['location_confidence']))}: "
                     f"{escape(str(aoi['location_source']))}).</p>")
    for extent in report.get("burned_extent", []):
        parts.append(f"<p>{escape(extent['statement'])}</p>")
    for general in ("overview.png", "timeline.png"):
        for name in figures:
            if name.split("/")[-1].replace("_SIMULATED", "") == general:
                parts.append(_figure(name, figures[name]))

    parts.append("<h2>Date by date</h2>")
    for reading in report["readings"]:
        parts.append(f"<h3>{escape(reading['acquired'])} &mdash; {escape(reading['scene_id'])}</h3><p>{escape(reading['statement'])}</p>")
        stamp = reading["acquired_utc"][:16].replace("-", "").replace(":", "") + "Z"  # 2024-01-28T10:38 -> 20240128T1038Z
        for name, png in figures.items():
            if name.split("/")[-1].startswith(stamp):
                parts.append(_figure(name, png))

    for section in evidence_sections(report):
        parts.append(f"<h2>{escape(section['title'])}</h2>" + "".join(f"<p>{escape(p)}</p>" for p in section["paragraphs"]))
        if section["rows"]:
            parts.append(_table(section["header"], section["rows"]))
    review = report.get("review") or {}
    if review.get("n_reviewed"):
        machine = review["machine_output"]
        parts.append("<h2>Analyst review</h2>")
        parts.append(f"<p>The machine output is unchanged by review: {machine['n_polygons']} polygon(s), {machine['area_ha']:.2f} ha.</p>")
        parts.append(_table(["polygon", "decision", "by", "when (UTC)", "reason"],
                            [[d["polygon_id"], d["decision"], d["by"], d["at_utc"], d["reason"]] for d in review["decisions"]]))

    if polygons is not None and len(polygons):
        parts.append(f"<h2>Polygons ({len(polygons)}; index {escape(report['index'])})</h2>")
        rows = [[r.polygon_id, r.first_seen, r.last_clear_before, f"{r.area_ha:.4f}", f"{r.mean_index_change:.3f}", r.setting,
                 "yes" if r.confirmed else "not yet", getattr(r, "review", "") or "not reviewed",
                 getattr(r, "n_structures", ""), getattr(r, "n_fire_detections", ""), getattr(r, "tier", ""),
                 getattr(r, "tier_reasons", "")]
                for r in polygons.head(max_rows).itertuples()]
        parts.append(_table(["id", "first seen (UTC)", "last clear before (UTC)", "area (ha)", "mean change", "setting", "confirmed",
                             "review", "structures", "fires", "confidence", "why"], rows))
        if len(polygons) > max_rows:
            parts.append(f"<p>{len(polygons) - max_rows} more polygons are in the GeoPackage and GeoJSON.</p>")

    parts.append("<h2>Scenes and their quality</h2>")
    scene_rows = []
    for s in report["scenes"]:
        c = s.get("coregistration") or {}
        shift = f"{c.get('dy', 0):+.2f}, {c.get('dx', 0):+.2f}" if c else "reference"
        scene_rows.append([s["index"], s["scene_id"], s["acquired"], f"{s['sensor']} {s['satellite_id']}", f"{s['clear_fraction']:.1%}",
                           "yes" if s.get("usable") else f"no: {s.get('unusable_reason', '')}", shift,
                           f"{c.get('residual', 0):.4f}" if c else "", (s.get("sha256") or {}).get("reflectance", "")])
    parts.append(_table(["#", "scene", "acquired", "sensor", "clear over the AOI", "usable", "shift dy, dx (px)", "residual",
                         "SHA-256 (reflectance)"], scene_rows))
    parts.append("<h2>Parameters</h2>" + _table(["parameter", "value"], [[k, v] for k, v in report["parameters"].items()]))
    parts.append("<h2>Provenance</h2>" + _table(["", ""], [[k, v] for k, v in report["provenance"].items()]))
    title = escape(report["title"])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style>'
            f"<script>{_IMAGE_CHECK}</script></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")
