"""``review.html``: the run's scenes and burn outlines in one offline page, drawn in the grid itself.

The page is for reviewing polygons where there is no network, or where what an investigator
looks at must not leave the machine: every script, style and image is inside the file (PNG as
``data:`` URIs), and a Content-Security-Policy forbids the browser any other fetch. There are
no base-map tiles, no web fonts and no library loaded from a CDN.

It is drawn in the analysis grid's own projected CRS: one SVG whose coordinates are grid
pixels, the scenes as images filling the grid and the polygons as paths in the same pixel
coordinates. Nothing is warped, so an outline sits on the pixels it was traced from at any
latitude (a projected scene stretched over its lon/lat box drifts off its outlines by tens of
metres at the edges at 65 N). Up is grid north; the page says how far true north is from it and
the scale bar is in ground metres at the centre, both computed from the CRS.

Per date, the before and after scenes (the colour-infrared composite of the figures, one
stretch for every date) can be swiped or toggled under the outlines: polygons first visible
on that date in yellow, earlier ones in cyan, each labelled with its id; hovering or clicking
one shows its id, dates, area and confidence.
"""

from __future__ import annotations

import base64
import io
import json
import math
from html import escape
from pathlib import Path
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import xarray as xr
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from pipeline.cores import fork_map
from pipeline.errors import OutputError, ParameterError
from pipeline.grid import Grid
from pipeline.model import Detection, record_positions
from pipeline.outputs.composites import false_colour, joint_stretch
from pipeline.outputs.report import SIMULATED_WARNING, scene_time
from pipeline.outputs.write import LATEST, latest_run_dir, named_run_dir, write_text

__all__ = ["REVIEW_PAGE", "MAX_IMAGE_SIDE", "GridNorth", "grid_north", "review_page", "scene_images", "write_review_page",
           "find_review_page"]

REVIEW_PAGE = "review.html"
"""File name of the page in a run folder."""

MAX_IMAGE_SIDE = 2048
"""Longest side of an embedded scene in PNG pixels: a screen's width; larger grids are averaged down."""

_MAX_LABELLED = 40
"""Above this many polygons their ids start hidden (a tick box shows them): at the whole AOI they would cover the ground."""

# No fetch of any kind: only inline script and style, images only from data: URIs. Even a URL
# that slipped into the page (a name, a reason) is never requested.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1em auto;max-width:1200px;padding:0 1em;color:#111}
h1{font-size:1.4em;margin:.3em 0}.warning{background:#fff3cd;border:2px solid #c98a00;padding:.6em;font-weight:bold}
.sim{color:#c00;font-weight:bold}.note{font-size:.85em;color:#333}
.controls{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.5em 0}
.controls input[type=range]{width:18em}#captions{font-size:.85em;margin:.3em 0}
.layout{display:flex;gap:1em;align-items:flex-start}.mapbox{flex:1 1 auto;min-width:0;border:1px solid #999;background:#222}
svg#map{display:block;width:100%;height:auto;max-height:85vh;cursor:grab;touch-action:none}
svg#map image{image-rendering:pixelated}
#info{flex:0 0 18em;font-size:.85em;background:#f4f6f8;padding:.6em;border-left:4px solid #345;white-space:pre-wrap}
.burn path{fill:none;stroke-width:2;vector-effect:non-scaling-stroke;cursor:pointer}
.burn text{font-weight:bold;paint-order:stroke;stroke:#000;stroke-width:3px;vector-effect:non-scaling-stroke;cursor:pointer}
.burn.new path{stroke:#ffe119}.burn.new text{fill:#ffe119}
.burn.earlier path{stroke:#42d4f4;stroke-dasharray:4 3}.burn.earlier text{fill:#42d4f4}
.burn.later{display:none}.burn.selected path{stroke:#ff3df5;stroke-width:3}
.burn path.hit{stroke:transparent;stroke-width:10;fill:transparent}
.legend span{display:inline-block;margin-right:1em}
"""

# The page's behaviour: pick a date, swipe or toggle before/after, zoom and pan, show a polygon's
# reading. It marks <body> once it has run (data-view) and how many scene images decoded
# (data-images), so that a headless browser can tell that the page works.
_SCRIPT = """
(function () {
  var scenes = JSON.parse(document.getElementById('scene-data').textContent);
  var dates = JSON.parse(document.getElementById('date-data').textContent);
  var svg = document.getElementById('map'), before = document.getElementById('before'), after = document.getElementById('after');
  var clip = document.getElementById('swipe-rect'), line = document.getElementById('swipe-line');
  var swipe = document.getElementById('swipe'), pick = document.getElementById('date'), info = document.getElementById('info');
  var W = +svg.getAttribute('data-width'), H = +svg.getAttribute('data-height');
  var burns = Array.prototype.slice.call(document.querySelectorAll('.burn'));
  scenes.forEach(function (s) { if (s.in) { s.png = document.getElementById(s.in).getAttribute('href'); } });
  function setSwipe(v) {
    swipe.value = v;
    var x = W * v / 100;
    clip.setAttribute('x', x); clip.setAttribute('width', W - x);
    line.setAttribute('x1', x); line.setAttribute('x2', x);
  }
  function showDate(d) {
    var date = dates[d];
    before.setAttribute('href', scenes[date.before].png);
    after.setAttribute('href', scenes[date.after].png);
    document.getElementById('caption-before').textContent = scenes[date.before].caption;
    document.getElementById('caption-after').textContent = scenes[date.after].caption;
    var shown = 0;
    burns.forEach(function (b) {
      var first = +b.getAttribute('data-first');
      var state = first === date.after ? 'new' : (first < date.after ? 'earlier' : 'later');
      b.setAttribute('class', 'burn ' + state);
      if (state !== 'later') { shown += 1; }
    });
    document.body.setAttribute('data-date', date.label);
    document.body.setAttribute('data-shown', String(shown));
  }
  var box = [0, 0, W, H];
  var labels = document.getElementById('labels'), texts = Array.prototype.slice.call(svg.querySelectorAll('.burn text'));
  function setBox() {
    svg.setAttribute('viewBox', box.join(' '));
    // Ids keep one size on screen whatever the zoom: zooming in separates them rather than growing them.
    var size = 12 * box[2] / (svg.getBoundingClientRect().width || 800);
    texts.forEach(function (t) { t.setAttribute('font-size', size); t.style.display = labels.checked ? '' : 'none'; });
  }
  labels.addEventListener('change', setBox);
  function toMap(evt) {
    var r = svg.getBoundingClientRect();
    return [box[0] + (evt.clientX - r.left) / r.width * box[2], box[1] + (evt.clientY - r.top) / r.height * box[3]];
  }
  svg.addEventListener('wheel', function (evt) {
    evt.preventDefault();
    var p = toMap(evt), f = evt.deltaY < 0 ? 0.8 : 1.25;
    var w = Math.min(Math.max(box[2] * f, 8), W * 4), h = w * H / W;
    box = [p[0] - (p[0] - box[0]) * w / box[2], p[1] - (p[1] - box[1]) * h / box[3], w, h];
    setBox();
  }, {passive: false});
  var drag = null;
  svg.addEventListener('pointerdown', function (evt) { drag = {x: evt.clientX, y: evt.clientY, box: box.slice()}; });
  window.addEventListener('pointerup', function () { drag = null; });
  svg.addEventListener('pointermove', function (evt) {
    if (!drag) { return; }
    var r = svg.getBoundingClientRect();
    box = [drag.box[0] - (evt.clientX - drag.x) / r.width * box[2], drag.box[1] - (evt.clientY - drag.y) / r.height * box[3], box[2], box[3]];
    setBox();
  });
  burns.forEach(function (b) {
    b.addEventListener('click', function (evt) {
      evt.stopPropagation();
      burns.forEach(function (o) { o.classList.remove('selected'); });
      b.classList.add('selected');
      info.textContent = b.getAttribute('data-info');
    });
  });
  swipe.addEventListener('input', function () { setSwipe(+swipe.value); });
  document.getElementById('show-before').addEventListener('click', function () { setSwipe(100); });
  document.getElementById('show-after').addEventListener('click', function () { setSwipe(0); });
  document.getElementById('whole').addEventListener('click', function () { box = [0, 0, W, H]; setBox(); });
  pick.addEventListener('change', function () { showDate(+pick.value); });
  showDate(+pick.value);
  setSwipe(+swipe.value);
  setBox();
  var ok = 0, done = 0;
  scenes.forEach(function (s) {
    var img = new Image();
    img.onload = function () { ok += 1; done += 1; mark(); };
    img.onerror = function () { done += 1; mark(); };
    img.src = s.png;
  });
  function mark() { if (done === scenes.length) { document.body.setAttribute('data-images', ok + '/' + scenes.length); } }
  document.body.setAttribute('data-view', 'ready');
})();
"""


class GridNorth(NamedTuple):
    """How the grid's up and metres relate to the ground at one point."""

    true_north_deg: float
    """Clockwise angle from grid north (up) to true north: negative when true north is west of up."""
    scale_factor: float
    """Grid metres per ground metre (UTM: 0.9996 on the central meridian, more away from it)."""


def grid_north(grid: Grid) -> GridNorth | None:
    """True north and the scale factor at the grid's centre; None for a grid not in metres.

    Both are measured rather than taken from a formula: a short step north along the
    meridian, projected, gives the direction of true north on the grid (the meridian
    convergence, about Δλ·sin φ in UTM); a 100 m grid step east, measured on the ellipsoid,
    gives the scale factor.

    Examples
    --------
    >>> from affine import Affine
    >>> g = Grid("EPSG:32606", Affine(3.0, 0, 594000.0, 0, -3.0, 7210000.0), 100, 100)  # 65 N, 2 deg east of 147 W
    >>> round(grid_north(g).true_north_deg, 1)
    -1.8
    """
    crs = CRS.from_user_input(grid.crs)
    if not crs.is_projected or any(axis.unit_name not in ("metre", "meter") for axis in crs.axis_info):
        return None
    left, bottom, right, top = grid.bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    to_lonlat = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    to_grid = Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    lon, lat = to_lonlat.transform(cx, cy)
    nx, ny = to_grid.transform(lon, lat + 1e-4)
    true_north = math.degrees(math.atan2(nx - cx, ny - cy))
    east_lon, east_lat = to_lonlat.transform(cx + 100.0, cy)
    ground = crs.get_geod().inv(lon, lat, east_lon, east_lat)[2]
    return GridNorth(true_north_deg=true_north, scale_factor=100.0 / ground)


def _nice(length_m: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``length_m``."""
    power = 10 ** math.floor(math.log10(length_m))
    return max(m * power for m in (1, 2, 5) if m * power <= length_m)


def _scene_png(rgb: np.ndarray, observed: np.ndarray, factor: int) -> bytes:
    """RGBA PNG of a composite, averaged over ``factor`` x ``factor`` blocks; unobserved pixels transparent.

    The grid is padded with unobserved pixels to whole blocks, so PNG pixel i covers grid
    pixels ``i * factor`` to ``(i + 1) * factor`` exactly: placed ``factor`` times its size,
    the image keeps its pixel edges on the grid's.
    """
    h, w = observed.shape
    ph, pw = -(-h // factor) * factor, -(-w // factor) * factor
    weight = np.zeros((ph, pw), np.float64)
    weight[:h, :w] = observed
    values = np.zeros((ph, pw, 3), np.float64)
    values[:h, :w] = np.where(observed[..., None], rgb, 0.0)
    blocks = (ph // factor, factor, pw // factor, factor)
    count = weight.reshape(blocks).sum(axis=(1, 3))
    total = values.reshape(blocks + (3,)).sum(axis=(1, 3))
    mean = total / np.maximum(count, 1)[..., None]
    rgba = np.round(mean * 255).astype(np.uint8)
    if (count == 0).any():  # an alpha channel only where some ground was not observed: a quarter smaller otherwise
        rgba = np.dstack([rgba, np.where(count > 0, 255, 0).astype(np.uint8)])
    from matplotlib import image as mpimg  # here, not at the top: a command that draws no scene does not load matplotlib

    buffer = io.BytesIO()
    mpimg.imsave(buffer, rgba, format="png")
    return buffer.getvalue()


def _path(geom: BaseGeometry, grid: Grid) -> str:
    """SVG path data of a (multi)polygon in grid pixel coordinates (column, row of pixel edges)."""
    left, top, res = grid.transform.c, grid.transform.f, grid.resolution
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)[:-1]
            points = " ".join(f"{(x - left) / res:.3f} {(top - y) / res:.3f}".replace(".000", "") for x, y in xy)
            parts.append(f"M{points}Z")
    return "".join(parts)


def _polygon_info(row: Any, tz_name: str) -> str:
    """What clicking a polygon shows: its reading, one fact a line."""
    lines = [f"Polygon {row.polygon_id}", f"first visible: {row.first_seen}", f"last clear before: {row.last_clear_before}",
             f"area: {float(row.area_ha):.3f} ha"]
    tier = getattr(row, "tier", "")
    if tier:
        lines.append(f"confidence: {tier}" + (f" ({row.tier_reasons})" if getattr(row, "tier_reasons", "") else ""))
    for label, column in (("setting", "setting"), ("review", "review"), ("structures burned", "n_structures"),
                          ("active fires", "n_fire_detections")):
        value = getattr(row, column, None)
        if value is not None and str(value) not in ("", "nan", "None"):
            lines.append(f"{label}: {value}")
    return "\n".join(lines)


def scene_images(stack: xr.Dataset, grid: Grid) -> list[Callable[[], bytes]]:
    """Per usable scene, a function of no argument giving the page's PNG of it (:func:`review_page`'s ``scene_pngs``).

    ``stack`` is a Detection's ``stack`` (the normalised usable scenes on the analysis ``grid``). Compositing
    and encoding the scenes is most of the page's cost, each is independent, and none needs the burns: a
    caller can draw them while the burns are dated.
    """
    scenes_reflectance = [stack["reflectance"].isel(time=t).assign_attrs(crs=grid.crs) for t in range(stack.sizes["time"])]
    clear = [stack["clear"].isel(time=t).values.astype(bool) for t in range(stack.sizes["time"])]
    factor = max(1, math.ceil(max(grid.width, grid.height) / MAX_IMAGE_SIDE))

    @cache
    def stretch() -> Any:
        # One stretch for every date, from observed ground only: switching dates changes the ground, never the
        # colours. Computed by the first scene drawn (where the scenes are drawn), once per process.
        return joint_stretch(*(s.where(c) for s, c in zip(scenes_reflectance, clear)))

    def scene_png(t: int) -> bytes:
        rgb, _ = false_colour(scenes_reflectance[t], stretch=stretch())
        return _scene_png(rgb, clear[t] & np.isfinite(scenes_reflectance[t].values).all(axis=0), factor)

    return [partial(scene_png, t) for t in range(len(scenes_reflectance))]


def review_page(detection: Detection, polygons: gpd.GeoDataFrame, aoi_outline: BaseGeometry | None, *, simulated: bool,
                tz_name: str = "UTC", title: str = "Burn polygons for review", scene_pngs: Sequence[bytes] | None = None) -> str:
    """The review page of one run as an HTML string (no file is read or written).

    Parameters
    ----------
    detection
        The run's analysis: its usable scenes on the analysis grid and the grid itself.
    polygons
        Burn polygons in any CRS (reprojected to the grid's), with ``polygon_id``,
        ``first_seen``, ``last_clear_before``, ``area_ha`` and ``first_seen_index`` indexed into
        ``detection.all_records`` as in the run's outputs; ``tier``, ``tier_reasons``,
        ``review``... when present.
    aoi_outline
        The AOI polygon in the grid's CRS, drawn in white; None leaves it out.
    simulated
        Label the page SIMULATED in its title, a warning box and every scene caption.
    tz_name
        IANA time zone for the local times in the captions.
    scene_pngs
        The scenes' images as :func:`scene_images` makes them, where the caller has them already.
    """
    grid = detection.grid
    stack, records = detection.stack, detection.records
    if stack.sizes["time"] < 2:
        raise ParameterError("a review page needs at least two usable scenes; pass the detection of a finished run")
    W, H = grid.width, grid.height
    sim = " (SIMULATED DATA)" if simulated else ""
    factor = max(1, math.ceil(max(W, H) / MAX_IMAGE_SIDE))
    if scene_pngs is None:
        images = scene_images(detection.stack, detection.grid)
        scene_pngs = fork_map(lambda t: images[t](), len(images))  # one scene per core: compositing and encoding
    scenes, png_size = [], (-(-W // factor) * factor, -(-H // factor) * factor)
    for t, png in enumerate(scene_pngs):
        rec = records[t]
        scenes.append({"png": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
                       "caption": f"{rec.scene_id}, {scene_time(rec, tz_name)}{sim}"})

    framed = polygons.to_crs(grid.crs) if len(polygons) and polygons.crs is not None else polygons
    to_used = {int(a): u for u, a in enumerate(record_positions(records, detection.all_records))}
    firsts = [to_used.get(int(i), -1) for i in framed["first_seen_index"]] if len(framed) else []
    with_new = sorted({f for f in firsts if f >= 1})
    dates = [{"before": t - 1, "after": t, "label": records[t].acquired_utc} for t in range(1, len(records))]
    start = (with_new[-1] if with_new else len(records) - 1) - 1

    label_size = max(W, H) / 60
    burns = []
    for row, first in zip(framed.itertuples(), firsts):
        d = _path(row.geometry, grid)
        if not d:
            continue
        point = row.geometry.representative_point()
        lx, ly = (point.x - grid.transform.c) / grid.resolution, (grid.transform.f - point.y) / grid.resolution
        info = _polygon_info(row, tz_name)
        after = dates[start]["after"]
        state = "new" if first == after else ("earlier" if first < after else "later")
        burns.append(
            f'<g class="burn {state}" data-id="{escape(str(row.polygon_id))}" data-first="{first}" data-info="{escape(info).replace(chr(10), "&#10;")}">'
            f"<title>{escape(info)}</title><path class=\"hit\" d=\"{d}\"/><path d=\"{d}\" fill-rule=\"evenodd\"/>"
            f'<text x="{lx:.2f}" y="{ly:.2f}" font-size="{label_size:.1f}" text-anchor="middle">{escape(str(row.polygon_id))}</text></g>')
    aoi_path = _path(aoi_outline, grid) if aoi_outline is not None else ""

    north = grid_north(grid)
    overlays = [_scale_bar(grid, north, label_size), _north_arrow(grid, north, label_size)]
    crs = CRS.from_user_input(grid.crs)
    if north is None:
        frame_note = (f"Drawn in the analysis grid ({escape(crs.name)}, {grid.resolution:g} CRS units a pixel): up is the "
                      "grid's up; the grid is not in metres, so no scale bar is drawn.")
    else:
        side = "east" if north.true_north_deg > 0 else "west"
        frame_note = (f"Drawn in the analysis grid itself: {escape(crs.name)} ({escape(grid.crs)}), {grid.resolution:g} m pixels. "
                      f"The image pixels are the map and the outlines are in the same pixels: nothing is reprojected. "
                      f"Up is grid north; true north is {abs(north.true_north_deg):.2f}&deg; {side} of grid north at the "
                      f"centre of the AOI. The scale bar is in ground metres at the centre (grid scale factor "
                      f"{north.scale_factor:.5f}).")

    options = "".join(f'<option value="{i}"{" selected" if i == start else ""}>{escape(scene_time(records[d["after"]], tz_name))}'
                      f"{' (new burns)' if d['after'] in with_new else ''}</option>" for i, d in enumerate(dates))
    image_attrs = f'x="0" y="0" width="{png_size[0]}" height="{png_size[1]}" preserveAspectRatio="none"'
    svg = (
        f'<svg id="map" viewBox="0 0 {W} {H}" data-width="{W}" data-height="{H}" data-crs="{escape(grid.crs)}" '
        f'data-transform="{",".join(f"{v:.6f}" for v in tuple(grid.transform)[:6])}">'
        '<defs><pattern id="unobserved" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="8" height="8" fill="#777"/><line x1="0" y1="0" x2="0" y2="8" stroke="#bbb" stroke-width="3"/></pattern>'
        f'<clipPath id="swipe-clip"><rect id="swipe-rect" x="{W / 2:g}" y="0" width="{W - W / 2:g}" height="{png_size[1]}"/></clipPath></defs>'
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="url(#unobserved)"/>'
        f'<image id="before" {image_attrs} href="{scenes[dates[start]["before"]]["png"]}"/>'
        f'<image id="after" {image_attrs} clip-path="url(#swipe-clip)" href="{scenes[dates[start]["after"]]["png"]}"/>'
        f'<line id="swipe-line" x1="{W / 2:g}" y1="0" x2="{W / 2:g}" y2="{H}" stroke="#fff" stroke-width="2" '
        'vector-effect="non-scaling-stroke"/>'
        + (f'<path id="aoi" d="{aoi_path}" fill="none" stroke="#fff" stroke-width="1.5" stroke-dasharray="6 4" '
           'vector-effect="non-scaling-stroke"/>' if aoi_path else "")
        + '<g id="polygons">' + "".join(burns) + "</g>" + "".join(overlays) + "</svg>"
    )
    heading = escape(title) + (' <span class="sim">SIMULATED DATA</span>' if simulated and "SIMULATED" not in title else "")
    # The two scenes shown first are in their <image> elements already: the script takes them from there,
    # so no PNG is in the file twice.
    shown_first = {dates[start]["before"]: "before", dates[start]["after"]: "after"}
    listed = [s | {"png": "", "in": shown_first[t]} if t in shown_first else s for t, s in enumerate(scenes)]
    scene_json = json.dumps(listed).replace("<", "\\u003c")
    date_json = json.dumps(dates).replace("<", "\\u003c")
    body = (
        f"<h1>{heading}</h1>"
        + (f'<p class="warning">{escape(SIMULATED_WARNING)}</p>' if simulated else "")
        + f'<p class="note">{frame_note}</p>'
        '<div class="controls"><label>After scene <select id="date">' + options + "</select></label>"
        '<button id="show-before" type="button">Before</button>'
        '<input id="swipe" type="range" min="0" max="100" value="50" aria-label="swipe: before on the left, after on the right">'
        '<button id="show-after" type="button">After</button><button id="whole" type="button">Whole AOI</button>'
        f'<label><input id="labels" type="checkbox"{" checked" if len(framed) <= _MAX_LABELLED else ""}> polygon ids</label></div>'
        f'<div id="captions">Left of the line, before: <span id="caption-before">{escape(scenes[dates[start]["before"]]["caption"])}'
        f'</span><br>Right of the line, after: <span id="caption-after">{escape(scenes[dates[start]["after"]]["caption"])}</span></div>'
        f'<div class="layout"><div class="mapbox">{svg}</div><div id="info">Click a polygon for its reading. '
        "Scroll to zoom, drag to pan.</div></div>"
        '<p class="legend note"><span style="color:#b59a00">&#9632; yellow: first visible on the after scene</span>'
        '<span style="color:#1a9fc0">&#9632; cyan, dashed: visible earlier</span><span>hatched grey: not observed (cloud, '
        "no data), never read as unburned</span><span>white dashed: the AOI</span></p>"
        '<p class="note">Colour-infrared composite (NIR, red, green): vegetation red, burns dark; one stretch for every '
        f"date. {len(framed)} burn polygon(s) in this run; they are the run's GeoPackage and GeoJSON outlines.{sim}</p>"
        f'<script type="application/json" id="scene-data">{scene_json}</script>'
        f'<script type="application/json" id="date-data">{date_json}</script>'
        f"<script>{_SCRIPT}</script>"
    )
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}{sim if "SIMULATED" not in title else ""}</title>'
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def _scale_bar(grid: Grid, north: GridNorth | None, size: float) -> str:
    """A scale bar at the bottom left, its length in ground metres converted to grid pixels."""
    if north is None:
        return ""
    ground_m = _nice(grid.width * grid.resolution / north.scale_factor / 4)
    length_px = ground_m * north.scale_factor / grid.resolution
    x, y = grid.width * 0.04, grid.height - grid.height * 0.05
    label = f"{ground_m / 1000:g} km" if ground_m >= 1000 else f"{ground_m:g} m"
    return (f'<g id="scale-bar" data-ground-m="{ground_m:g}" data-length-px="{length_px:.4f}">'
            f'<rect x="{x - size * 0.4:.2f}" y="{y - size * 1.6:.2f}" width="{length_px + size * 0.8:.2f}" height="{size * 2.2:.2f}" '
            'fill="#000" fill-opacity="0.55"/>'
            f'<line x1="{x:.2f}" y1="{y:.2f}" x2="{x + length_px:.2f}" y2="{y:.2f}" stroke="#fff" stroke-width="3" '
            'vector-effect="non-scaling-stroke"/>'
            f'<text x="{x + length_px / 2:.2f}" y="{y - size * 0.4:.2f}" fill="#fff" font-size="{size:.1f}" text-anchor="middle">'
            f"{label} (ground)</text></g>")


def _north_arrow(grid: Grid, north: GridNorth | None, size: float) -> str:
    """Grid north (up) and, when known, true north, at the top right."""
    x, y, length = grid.width - size * 3, size * 6.0, size * 3.5
    arrows = [f'<circle cx="{x:.2f}" cy="{y - length / 2:.2f}" r="{length * 0.85:.2f}" fill="#000" fill-opacity="0.55"/>',
              f'<line x1="{x:.2f}" y1="{y:.2f}" x2="{x:.2f}" y2="{y - length:.2f}" stroke="#fff" stroke-width="2" '
              f'vector-effect="non-scaling-stroke"/><text x="{x:.2f}" y="{y + size * 1.0:.2f}" fill="#fff" '
              f'font-size="{size * 0.8:.1f}" text-anchor="middle">grid N</text>']
    if north is not None:
        arrows.append(f'<g transform="rotate({north.true_north_deg:.4f} {x:.2f} {y:.2f})"><line x1="{x:.2f}" y1="{y:.2f}" '
                      f'x2="{x:.2f}" y2="{y - length:.2f}" stroke="#ffe119" stroke-width="2" vector-effect="non-scaling-stroke"/>'
                      f'<text x="{x:.2f}" y="{y - length - size * 0.3:.2f}" fill="#ffe119" font-size="{size * 0.8:.1f}" '
                      'text-anchor="middle">true N</text></g>')
    return f'<g id="north" data-true-north-deg="{north.true_north_deg if north else 0:.4f}">' + "".join(arrows) + "</g>"


def write_review_page(folder: Path, detection: Detection, polygons: gpd.GeoDataFrame, aoi_outline: BaseGeometry | None, *,
                      simulated: bool, tz_name: str, title: str, scene_pngs: Sequence[bytes] | None = None) -> Path:
    """Write :func:`review_page` as ``review.html`` into the run folder ``folder`` (atomically, rooted there)."""
    html = review_page(detection, polygons, aoi_outline, simulated=simulated, tz_name=tz_name, title=title,
                       scene_pngs=scene_pngs)
    return write_text(Path(folder) / REVIEW_PAGE, html, root=Path(folder))


def find_review_page(run: str | Path, *, out_root: Path = Path("out")) -> Path:
    """The ``review.html`` of ``run``: a run folder, an AOI's ``latest`` file, or an AOI name (its latest run under ``out_root``).

    Raises :class:`pipeline.errors.OutputError` in one line naming what was given and what to give instead.
    """
    given = Path(run)
    if given.is_dir() and not (given / "manifest.json").is_file() and latest_run_dir(given) is not None:
        given = given / LATEST  # out/<aoi>: its latest run
    elif not given.exists() and len(given.parts) == 1 and latest_run_dir(Path(out_root) / str(run)) is not None:
        given = Path(out_root) / str(run) / LATEST  # an AOI name
    given = named_run_dir(given)  # latest, a link or a text file, names a run
    if not given.is_dir() or not (given / "manifest.json").is_file():
        raise OutputError(f"{run}: not a finished run folder (no manifest.json there) nor an AOI with a latest run under "
                          f"{out_root}; give a run folder such as {Path(out_root) / 'AOI' / 'RUN_ID'}, out/AOI/latest or an "
                          f"AOI name (with --out where its runs are)")
    page = given / REVIEW_PAGE
    if not page.is_file():
        raise OutputError(f"{given}: this run has no {REVIEW_PAGE} (made with --no-figures, or before burnscan wrote one); "
                          f"run burnscan detect again without --no-figures to get one")
    return page
