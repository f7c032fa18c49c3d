"""Figures attached to findings: before/after false-colour pairs and polygon overlays.

A figure leaves the pipeline and is read on its own, so each one carries what a reader
needs to judge it: when each scene was taken (UTC and local time) and which scene it is,
which pixels were not observed (hatched, never passed off as ground), a frame in metres
with a scale bar and the CRS named. A figure made from simulated scenes says so in red on
every panel: a simulated village must never be read as evidence about a real place.

Functions here return :class:`matplotlib.figure.Figure` objects bound to the Agg canvas;
they never open or save files and never touch pyplot's global state. The caller saves.
"""

from __future__ import annotations

import functools
import math
import textwrap
from datetime import datetime, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from types import SimpleNamespace
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import xarray as xr
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from pipeline.errors import ParameterError
from pipeline.outputs.composites import (CIR_BANDS, NATURAL_BANDS, Stretch, checked_stretch, composite_planes, composite_problem,
                                         false_colour, joint_stretch, stretch_of, to_rgb)
from pipeline.outputs.report import TIME_OF_DAY_UNKNOWN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Stretch", "SIMULATED_LABEL", "CIR_BANDS", "NATURAL_BANDS", "composite_problem", "FIGURE_WIDTH_MM", "max_height_in", "false_colour", "joint_stretch", "before_after_figure", "overlay_figure", "change_map_figure",
           "timeline_figure"]

SIMULATED_LABEL = "SIMULATED DATA"
"""The words every figure made from simulated scenes carries, on each panel and in the title."""

_NEW_COLOUR, _EARLIER_COLOUR, _AOI_COLOUR = "#ffe119", "#42d4f4", "white"


@functools.cache
def _mpl() -> SimpleNamespace:
    """matplotlib's drawing classes, loaded by the first figure drawn, not when this module is imported: a run whose
    figures are all kept (:mod:`pipeline.outputs.figure_cache`) reads its builders here and draws none (0.4 s)."""
    import matplotlib
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import Formatter, MaxNLocator
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    class Km(Formatter):
        """Metres shown as km, all ticks of an axis with the decimals their spacing needs."""

        decimals = 0

        def format_ticks(self, values: list[float]) -> list[str]:
            steps_km = np.abs(np.diff(values)) / 1000
            self.decimals = max(0, -math.floor(math.log10(steps_km.min()) + 1e-9)) if steps_km.size else 0
            return [self(v) for v in values]

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x / 1000:.{self.decimals}f}"

    return SimpleNamespace(
        matplotlib=matplotlib, FigureCanvasAgg=FigureCanvasAgg, LineCollection=LineCollection, Figure=Figure,
        FontProperties=FontProperties, Line2D=Line2D, Patch=Patch, Rectangle=Rectangle, MaxNLocator=MaxNLocator,
        AnchoredSizeBar=AnchoredSizeBar, Km=Km,
        # A dark halo keeps the outlines visible on bright soil as on dark burns.
        halo=[patheffects.withStroke(linewidth=2.6, foreground="black")])


_HATCH = "////"
_MAX_LABELS = 8
_MAX_TICKS = 8
_CM, _MM = 1 / 2.54, 1 / 25.4
_DPI = 300
FIGURE_WIDTH_MM = 89.0
"""Default figure width: one column of a journal or report page (Nature's is 89 mm)."""
_MAX_ASPECT = 4.0  # a panel's frame is kept between 1:4 and 4:1; a longer strip shows blank ground around it
_LEFT = 0.45  # inches left of each panel for the latitude labels (upright) and axis label, times the text scale
_INSET = 0.95  # inches: side of the locator inset, times the text scale
# A finding is often printed in one 8 cm column. Text sizes below are points as printed at
# that width; a wider figure scales them (and its margins) by width / 8 cm, so that shrunk to
# one column its smallest text still prints at MIN_PRINT_PT or more.
PRINT_WIDTH_CM, MIN_PRINT_PT = 8.0, 6.0
_FONT, _PANEL_FONT, _TITLE_FONT, _SIM_FONT = 6.5, 6.5, 8.0, 9.0


class _Type(NamedTuple):
    """Text sizes (points) and the layout scale ``k`` of a figure ``k`` times the print column."""

    k: float
    font: float
    panel: float
    title: float
    sim: float


def max_height_in(width_in: float) -> float:
    """The tallest a figure ``width_in`` wide is laid out: 1.5 times its width.

    A one-column figure taller than that no longer fits a page beside its text, and a long
    AOI would otherwise give a ribbon (944 x 4638 px) that fits nothing.
    """
    # in whole pixels at 300 dpi, as saved: the height in pixels stays within 1.5 x the width in pixels
    return (math.floor(1.5 * math.floor(width_in * _DPI)) - 1) / _DPI


def _width_in(width_mm: float) -> float:
    if isinstance(width_mm, bool) or not isinstance(width_mm, (int, float)) or not 80 <= width_mm <= 600:
        raise ParameterError(f"figure width {width_mm!r} mm is not a print width; give 80-600 mm "
                             f"(89 one column, 183 two columns, 254 a slide)")
    return float(width_mm) * _MM


def _type(width_in: float) -> _Type:
    k = max(1.0, width_in / (PRINT_WIDTH_CM * _CM))
    return _Type(k, _FONT * k, _PANEL_FONT * k, _TITLE_FONT * k, _SIM_FONT * k)


def before_after_figure(
    before: xr.DataArray,
    after: xr.DataArray,
    *,
    before_clear: xr.DataArray | None = None,
    after_clear: xr.DataArray | None = None,
    title: str,
    caption: str,
    simulated: bool,
    aoi_outline: BaseGeometry | None = None,
    polygons_new: gpd.GeoDataFrame | None = None,
    polygons_earlier: gpd.GeoDataFrame | None = None,
    stretch: Stretch | None = None,
    tz_name: str | None = "UTC",
    bands: tuple[str, str, str] = CIR_BANDS,
    width_mm: float = FIGURE_WIDTH_MM,
) -> Figure:
    """Before above after, in false colour (or the ``bands`` given), on one shared stretch.

    Parameters
    ----------
    before, after
        Scenes on the analysis grid, with ``acquired`` (ISO UTC), ``scene_id`` and ``crs`` attrs.
    before_clear, after_clear
        True where the ground was seen; other pixels are tinted and hatched so that cloud
        or a gap is never read as unburned ground.
    title, caption
        Figure heading, and the text below it (imagery credit, times); the caption is
        wrapped to the figure width, its words unchanged.
    simulated
        No default, so every caller decides: True stamps "SIMULATED DATA" on each panel
        and in the title.
    aoi_outline
        Drawn on both panels, in the scenes' CRS.
    polygons_new, polygons_earlier
        Outlined on the after panel: new ones solid yellow and labelled with
        ``polygon_id``, earlier ones dashed cyan; in the scenes' CRS.
    stretch
        By default :func:`joint_stretch` over the observed pixels only, so bright cloud
        does not wash out the ground.
    tz_name
        IANA time zone of the AOI for the local times in the panel titles (Mali,
        ``"Africa/Bamako"``, keeps UTC all year, as does the default).
    bands
        The three bands shown as red, green, blue: colour infrared by default,
        :data:`NATURAL_BANDS` for natural colour.
    width_mm
        Printed width: 89 (one column, the default), 183 (two columns), 254 (a slide).

    Returns
    -------
    Figure
        ``width_mm`` wide at 300 dpi and at most 1.5 times as tall, on an Agg canvas; the
        caller saves it. Before above after, or side by side for a tall AOI; degrees
        (WGS 84) on the frame and a north arrow to true north.
    """
    _check_crs(before, after.attrs.get("crs"), "the before scene")
    planes = [composite_planes(before, bands), composite_planes(after, bands)]
    masks = [_mask(before_clear, before, "before_clear"), _mask(after_clear, after, "after_clear")]
    if stretch is None:
        stretch = stretch_of([p if m is None else np.where(m, p, np.nan) for p, m in zip(planes, masks)])
    panels = [_Panel("Before", before, planes[0], masks[0]),
              _Panel("After", after, planes[1], masks[1], polygons_new, polygons_earlier)]
    return _compose(panels, checked_stretch(stretch), _width_in(width_mm), title=title, caption=caption,
                    simulated=simulated, aoi_outline=aoi_outline, tz_name=tz_name)


def overlay_figure(
    after: xr.DataArray,
    *,
    polygons_new: gpd.GeoDataFrame,
    polygons_earlier: gpd.GeoDataFrame | None = None,
    after_clear: xr.DataArray | None = None,
    title: str,
    caption: str,
    simulated: bool,
    aoi_outline: BaseGeometry | None = None,
    stretch: Stretch | None = None,
    tz_name: str | None = "UTC",
    noun: str = "",
    when: str = "first seen this date",
    locator: bool = False,
    width_mm: float = FIGURE_WIDTH_MM,
) -> Figure:
    """The after scene in false colour with the burned-area polygons outlined.

    Parameters are those of :func:`before_after_figure`; pass the stretch it used to show
    both figures of one date in identical colours. ``noun`` names what is outlined in the
    legend ("structure": "burned structures, first seen this date") and ``when`` what the
    solid outlines are ("all dates" on an overview). ``locator`` adds an inset placing the
    AOI on a lon/lat graticule (an overview's context). The figure is ``width_mm`` wide at
    300 dpi.
    """
    planes = composite_planes(after)
    mask = _mask(after_clear, after, "after_clear")
    if stretch is None:
        stretch = stretch_of([planes if mask is None else np.where(mask, planes, np.nan)])
    panels = [_Panel("After", after, planes, mask, polygons_new, polygons_earlier)]
    return _compose(panels, checked_stretch(stretch), _width_in(width_mm), title=title, caption=caption,
                    simulated=simulated, aoi_outline=aoi_outline, tz_name=tz_name, noun=noun, when=when,
                    locator=locator)


def _mask(clear: xr.DataArray | None, scene: xr.DataArray, name: str) -> np.ndarray | None:
    if clear is None:
        return None
    arr = np.asarray(clear.values if isinstance(clear, xr.DataArray) else clear, dtype=bool)
    # Same shape is not enough: a mask from a shifted grid would hatch the wrong pixels.
    moved = [d for d in ("y", "x") if isinstance(clear, xr.DataArray) and d in clear.coords
             and (clear.sizes[d] != scene.sizes[d] or not np.allclose(clear[d], scene[d], rtol=0, atol=0.01))]
    if arr.shape != (scene.sizes["y"], scene.sizes["x"]) or moved:
        raise ParameterError(f"{name} has shape {arr.shape} and must match its scene's grid, shape "
                             f"{(scene.sizes['y'], scene.sizes['x'])} (y, x) with the same coordinates; "
                             "build the clear mask on the same grid as the scene")
    return arr


def _check_crs(obj: xr.DataArray | gpd.GeoDataFrame, want: str | None, what: str) -> None:
    have = obj.crs if isinstance(obj, gpd.GeoDataFrame) else obj.attrs.get("crs")
    if have is None or want is None:
        return
    if not CRS.from_user_input(have).equals(CRS.from_user_input(want)):
        raise ParameterError(f"{what} is in {have} but the after scene is in {want}; "
                             f"reproject it first (for polygons: .to_crs({want!r}))")


def _when(scene: xr.DataArray, tz_name: str | None) -> str:
    """'2024-01-28 10:38 UTC (10:38 local, UTC+0)' from the scene's ``acquired``."""
    raw, sid = scene.attrs.get("acquired"), scene.attrs.get("scene_id", "?")
    try:
        t = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise ParameterError(f"scene {sid!r} has acquired={raw!r}; a figure must say when the scene was "
                             "taken: set attrs['acquired'] to an ISO UTC time such as '2024-01-28T10:38:00Z'")
    if scene.attrs.get("time_of_day_known") is False:  # a date from a file name: no hour, UTC or local, to show
        return f"{t.astimezone(timezone.utc):%Y-%m-%d} {TIME_OF_DAY_UNKNOWN}"
    if tz_name is None:  # the AOI names no place's zone: UTC alone, never labelled local
        return f"{t.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(f"unknown time zone {tz_name!r}; pass an IANA name such as 'Africa/Bamako'") from None
    utc = t.astimezone(timezone.utc)
    local = utc.astimezone(zone)
    minutes = round(local.utcoffset().total_seconds() / 60)
    h, m = divmod(abs(minutes), 60)
    offset = f"UTC{'-' if minutes < 0 else '+'}{h}" + (f":{m:02d}" if m else "")
    shown = f"{local:%H:%M}" if local.date() == utc.date() else f"{local:%Y-%m-%d %H:%M}"
    return f"{utc:%Y-%m-%d %H:%M} UTC ({shown} local, {offset})"


def _extent(scene: xr.DataArray) -> tuple[tuple[float, float, float, float], str]:
    """Pixel-edge extent in metres and the imshow origin matching the row order."""
    x, y = scene["x"].values, scene["y"].values
    dx, dy = abs(x[1] - x[0]), abs(y[1] - y[0])
    extent = (x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2)
    return tuple(float(v) for v in extent), ("upper" if y[0] > y[-1] else "lower")


def _rings(geom: BaseGeometry | None) -> list[np.ndarray]:
    """Exterior and interior rings of a (multi)polygon as (N, 2) arrays."""
    if geom is None or geom.is_empty:
        return []
    if hasattr(geom, "geoms"):
        return [r for part in geom.geoms for r in _rings(part)]
    if geom.geom_type != "Polygon":
        return []
    return [np.asarray(r.coords)[:, :2] for r in (geom.exterior, *geom.interiors)]


def _outline(ax, geoms, colour: str, style: str, gid: str, k: float = 1.0) -> None:
    rings = [r for g in geoms for r in _rings(g)]
    ax.add_collection(_mpl().LineCollection(rings, colors=colour, linewidths=1.2 * k, linestyles=style,
                                            path_effects=_mpl().halo, gid=gid, zorder=4), autolim=False)


def _nice_length(width_m: float) -> float:
    """A 1, 2 or 5 x 10^k length closest (in ratio) to a fifth of the width."""
    target = width_m / 5
    base = 10 ** math.floor(math.log10(target))
    return min((k * base for k in (1, 2, 5, 10)), key=lambda c: abs(math.log(c / target)))


@functools.lru_cache(maxsize=16)
def _to_lonlat(crs: str) -> Transformer | None:
    """Grid to WGS 84 lon/lat, or ``None`` when the CRS is not recorded or not understood."""
    try:
        return Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)
    except (CRSError, ValueError):
        return None


def _degrees(value: float, decimals: int, hemispheres: str) -> str:
    return f"{abs(value):.{decimals}f}\u00b0{hemispheres[0] if value >= 0 else hemispheres[1]}"


def _degree_ticks(axis, positions: np.ndarray, degrees: np.ndarray, length_pt: float, size: float,
                  hemispheres: str) -> bool:
    """Ticks of ``axis`` at round degrees, placed where the frame edge meets them (``False``: cannot).

    As many ticks as their labels allow: each label (``length_pt`` is the axis's length, ``size``
    the font) must clear its neighbours and stay within the axis, or it would overprint the next
    one or stand outside the figure.
    """
    degrees = np.rad2deg(np.unwrap(np.deg2rad(degrees)))  # an AOI across the antimeridian stays monotonic
    if not np.all(np.isfinite(degrees)) or not (np.all(np.diff(degrees) > 0) or np.all(np.diff(degrees) < 0)):
        return False
    order = np.argsort(degrees)
    lo, hi = float(degrees[order[0]]), float(degrees[order[-1]])
    per_pt = (hi - lo) / length_pt
    for n in range(max(1, int(length_pt / 40)), 0, -1):
        raw = _mpl().MaxNLocator(n, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        step = float(raw[1] - raw[0])
        decimals = next((d for d in range(7) if abs(round(step, d) - step) <= step * 1e-6), 6)
        half = (len(_degrees(hi, decimals, hemispheres)) * 0.62 * size / 2 + 2) * per_pt
        values = raw[(raw >= lo + half) & (raw <= hi - half)]
        if values.size and (values.size == 1 or step >= 2.3 * half):
            break
    else:
        return False
    where = np.interp(values, degrees[order], positions[order])
    wrapped = (values + 180) % 360 - 180
    axis.set_ticks(where, [_degrees(float(v), decimals, hemispheres) for v in wrapped])
    return True


def _north(crs: str, limits: tuple[float, float, float, float]) -> float:
    """Angle (radians, clockwise from the grid's up) of true north at the panel centre; 0 when unknown."""
    forward = _to_lonlat(crs)
    if forward is None:
        return 0.0
    x, y = (limits[0] + limits[1]) / 2, (limits[2] + limits[3]) / 2
    lon, lat = forward.transform(x, y)
    back = Transformer.from_crs(CRS.from_epsg(4326), forward.source_crs, always_xy=True)
    x2, y2 = back.transform(lon, min(lat + 1e-3, 89.999))
    angle = math.atan2(x2 - x, y2 - y)
    return angle if math.isfinite(angle) else 0.0


def _frame(ax, extent, crs: str, ty: _Type, box_in: tuple[float, float] | None = None,
           limits: tuple[float, float, float, float] | None = None) -> None:
    """Scale bar, north arrow and the frame's coordinates in degrees (WGS 84).

    The ticks are where the frame's bottom and left edges cross round longitudes and
    latitudes, found by transforming points along the edges with pyproj: on a UTM grid the
    meridians lean, so a tick from the easting alone would be off. A grid whose CRS is
    unknown keeps easting and northing in km.
    """
    limits = limits or extent
    box_w, box_h = box_in or (ax.get_position().width * ax.figure.get_figwidth(),
                              ax.get_position().height * ax.figure.get_figheight())
    length = _nice_length(limits[1] - limits[0])
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    bar = _mpl().AnchoredSizeBar(ax.transData, length, label, "lower left", pad=0.3, borderpad=0.4, sep=2,
                                 size_vertical=(limits[3] - limits[2]) / 80, frameon=True,
                                 fontproperties=_mpl().FontProperties(size=ty.font))
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)
    _north_arrow(ax, _north(crs, limits), box_w * 72, box_h * 72, ty)
    ax.tick_params(labelsize=ty.font, length=3 * ty.k, pad=2 * ty.k)
    ax.tick_params(axis="y", labelrotation=90)  # upright degrees would take a third of a narrow panel's width
    forward = _to_lonlat(crs)
    done = False
    if forward is not None:
        xs = np.linspace(limits[0], limits[1], 65)
        ys = np.linspace(limits[2], limits[3], 65)
        with np.errstate(all="ignore"):
            lon, _ = forward.transform(xs, np.full_like(xs, limits[2]))
            _, lat = forward.transform(np.full_like(ys, limits[0]), ys)
        done = (_degree_ticks(ax.xaxis, xs, np.asarray(lon), box_w * 72, ty.font, "EW")
                and _degree_ticks(ax.yaxis, ys, np.asarray(lat), box_h * 72, ty.font, "NS"))
    if done:
        xname, ylabel = f"Longitude, WGS 84 (grid {crs})", "Latitude, WGS 84"
    else:
        for axis, n in ((ax.xaxis, max(2, int(box_w / 0.6))), (ax.yaxis, max(2, int(box_h / 0.6)))):
            axis.set_major_locator(_mpl().MaxNLocator(n, steps=[1, 2, 5, 10]))
            axis.set_major_formatter(_mpl().Km())
        xname, ylabel = f"Easting (km, {crs})", "Northing (km)"
    ax.set_xlabel("\n".join(_wrap(xname, box_w + 0.1, ty.font)), fontsize=ty.font, labelpad=2 * ty.k)
    ax.set_ylabel(ylabel if box_h > 1.0 else ylabel.split(",")[0], fontsize=ty.font, labelpad=2 * ty.k)


def _north_arrow(ax, angle: float, box_w_pt: float, box_h_pt: float, ty: _Type) -> None:
    """An arrow to true north with its N, in the lower-right corner, sized to fit any panel.

    Placed in axes coordinates from the panel's size in points, so a tall, a wide or a tiny
    panel keeps the whole arrow and its letter inside the frame.
    """
    letter = ty.font * 1.2
    length = max(6.0, min(22 * ty.k, 0.45 * box_h_pt - letter, 0.3 * box_w_pt))
    dx, dy = length * math.sin(angle), length * math.cos(angle)
    pad = 4 * ty.k
    # tail in the corner, tip above it; the N above the tip
    tail_x = 1 - (pad + letter * 0.5 + max(0.0, dx)) / box_w_pt
    tail_y = (pad + max(0.0, -dy)) / box_h_pt
    tip = (tail_x + dx / box_w_pt, tail_y + dy / box_h_pt)
    ax.annotate("", xy=tip, xycoords="axes fraction", xytext=(tail_x, tail_y), textcoords="axes fraction",
                arrowprops=dict(arrowstyle="-|>", color="white", lw=1.5 * ty.k, shrinkA=0, shrinkB=0,
                                mutation_scale=8 * ty.k, path_effects=_mpl().halo), gid="north_arrow", annotation_clip=False)
    ax.text(tip[0], tip[1] + 1.5 / box_h_pt, "N", transform=ax.transAxes, ha="center", va="bottom",
            fontsize=letter, weight="bold", color="white", path_effects=_mpl().halo, gid="north_arrow_label")


def _stamp_simulated(ax, ty: _Type, box_w_in: float | None = None, box_h_in: float | None = None) -> None:
    """A boxed label at the top and a watermark across the middle, which survives cropping."""
    box_w_in = box_w_in or ax.get_position().width * ax.figure.get_figwidth()
    # A narrow panel breaks the words onto two lines rather than spill past the frame.
    # A narrow panel gets smaller letters, down to the body text's size, then two lines.
    size = min(ty.sim, (box_w_in * 72 - 8 * ty.k) / (len(SIMULATED_LABEL) * 0.72))
    fits = size >= ty.font
    label = SIMULATED_LABEL if fits else SIMULATED_LABEL.replace(" ", "\n")
    size = size if fits else min(ty.sim, (box_w_in * 72 - 8 * ty.k) / (len("SIMULATED") * 0.72))
    ax.text(0.5, 0.97, label, transform=ax.transAxes, ha="center", va="top", fontsize=max(size, ty.font),
            weight="bold", color="red", zorder=10, multialignment="center",
            bbox=dict(boxstyle="square,pad=0.3", facecolor="white", edgecolor="red", linewidth=1.5 * ty.k))
    # The watermark runs across the panel as large as the panel allows: at 30 degrees, or
    # upright along a tall strip, whichever gives the bigger letters.
    box_h_in = ax.get_position().height * ax.figure.get_figheight() if box_h_in is None else box_h_in
    lines = label.split("\n")
    length, height = max(len(p) for p in lines) * 0.75, len(lines) * 1.25  # in ems
    best = (0.0, 30)
    for angle in (30, 90):
        c, s_ = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        size = min(box_w_in * 72 * 0.9 / (length * c + height * s_), box_h_in * 72 * 0.9 / (length * s_ + height * c))
        best = max(best, (min(size, ty.sim * 1.6), angle))
    ax.text(0.5, 0.5, label, transform=ax.transAxes, ha="center", va="center", rotation=best[1],
            fontsize=best[0], weight="bold", color="red", alpha=0.35, zorder=9, multialignment="center", clip_on=True)


def _wrap(text: str, width_in: float, size: float, *, em: float = 0.55) -> list[str]:
    # DejaVu Sans averages about half an em a character in prose (bold needs ~0.65); wrapping
    # by count rather than at draw time lets the layout reserve the right height.
    chars = max(20, int(width_in * 72 / (size * em)))
    return [line for para in text.splitlines() or [""] for line in (textwrap.wrap(para, chars) or [""])]


class _Panel(NamedTuple):
    label: str
    scene: xr.DataArray
    planes: np.ndarray
    mask: np.ndarray | None
    new: gpd.GeoDataFrame | None = None
    earlier: gpd.GeoDataFrame | None = None


def _legend_handles(panels: list[_Panel], aoi_outline: BaseGeometry | None, k: float, noun: str = "",
                    when: str = "first seen this date") -> list:
    new, earlier, handles = panels[-1].new, panels[-1].earlier, []
    if new is not None:
        handles.append(_mpl().Line2D([], [], color=_NEW_COLOUR, lw=1.2 * k, path_effects=_mpl().halo,
                                     label=f"burned{noun}, {when} ({len(new)})"))
    if earlier is not None:
        handles.append(_mpl().Line2D([], [], color=_EARLIER_COLOUR, lw=1.2 * k, ls="--", path_effects=_mpl().halo,
                                     label=f"burned{noun}, seen on an earlier date ({len(earlier)})"))
    if any(p.mask is not None and not p.mask.all() for p in panels):
        handles.append(_mpl().Patch(facecolor="0.85", edgecolor="0.2", hatch=_HATCH,
                                    label="not observed (cloud, shadow, no data)"))
    if aoi_outline is not None:
        handles.append(_mpl().Line2D([], [], color=_AOI_COLOUR, lw=1.0 * k, path_effects=_mpl().halo, label="area of interest"))
    return handles


def _panel_title(panel: _Panel, tz_name: str) -> str:
    scene = panel.scene
    sat = scene.attrs.get("satellite_id")
    return (f"{panel.label}: {_when(scene, tz_name)}\n"
            f"scene {scene.attrs.get('scene_id', 'not recorded')}" + (f", satellite {sat}" if sat else ""))


def _box_limits(extent: tuple[float, float, float, float], aspect: float) -> tuple[float, float, float, float]:
    """``extent`` grown on one axis to the panel's height/width ``aspect``, so metres stay square.

    A strip of an AOI keeps a panel tall enough for its scale bar and north arrow: the
    panel shows ground around the imagery (blank) rather than a frame one line high.
    """
    x0, x1, y0, y1 = extent
    w, h = x1 - x0, y1 - y0
    if h / w < aspect:
        cy, half = (y0 + y1) / 2, w * aspect / 2
        return (x0, x1, cy - half, cy + half)
    cx, half = (x0 + x1) / 2, h / aspect / 2
    return (cx - half, cx + half, y0, y1)


def _label_anchor(geom: BaseGeometry, text: str, limits: tuple[float, float, float, float],
                  box_in: tuple[float, float], size: float) -> tuple[float, float]:
    """Lower-left corner of a polygon's label: beside its upper right, moved inside the frame.

    A label is wanted beside the burn, not over it; near the right or top edge that place is
    outside the panel, where the label would be cut. The width is estimated from the
    characters (DejaVu digits are ~0.64 em) plus the halo.
    """
    x0, x1, y0, y1 = limits
    per_pt_x, per_pt_y = (x1 - x0) / (box_in[0] * 72), (y1 - y0) / (box_in[1] * 72)
    w, h = (len(text) * 0.64 * size + 4) * per_pt_x, (size * 1.2 + 3) * per_pt_y
    pad_x, pad_y = 2 * per_pt_x, 2 * per_pt_y
    minx, miny, maxx, maxy = geom.bounds
    x = maxx if maxx + w <= x1 - pad_x else minx - w
    y = maxy if maxy + h <= y1 - pad_y else miny - h
    return (min(max(x, x0 + pad_x), x1 - pad_x - w), min(max(y, y0 + pad_y), y1 - pad_y - h))


def _draw_panel(ax, panel: _Panel, stretch: Stretch, *, crs: str, simulated: bool,
                aoi_outline: BaseGeometry | None, ty: _Type, box_in: tuple[float, float], aspect: float) -> None:
    scene, mask = panel.scene, panel.mask
    extent, origin = _extent(scene)
    limits = _box_limits(extent, aspect)
    ax.set_facecolor("0.85")
    ax.imshow(to_rgb(panel.planes, stretch), extent=extent, origin=origin, interpolation="nearest", aspect="auto")
    if mask is not None and not mask.all():
        tint = np.zeros((*mask.shape, 4), dtype=np.float32)
        tint[~mask] = (1.0, 1.0, 1.0, 0.35)
        ax.imshow(tint, extent=extent, origin=origin, interpolation="nearest", aspect="auto")
        hatch = ax.contourf(scene["x"].values, scene["y"].values, (~mask).astype(float), levels=[0.5, 1.5],
                            colors="none", hatches=[_HATCH])
        if hasattr(hatch, "set_hatchcolor"):  # matplotlib >= 3.10; older ones hatch in black already
            hatch.set_hatchcolor((0, 0, 0, 0.7))
    if aoi_outline is not None:
        _outline(ax, [aoi_outline], _AOI_COLOUR, "-", "aoi", ty.k)
    if panel.earlier is not None:
        _outline(ax, panel.earlier.geometry, _EARLIER_COLOUR, "--", "polygons_earlier", ty.k)
    if panel.new is not None:
        _outline(ax, panel.new.geometry, _NEW_COLOUR, "-", "polygons_new", ty.k)
        ids = panel.new["polygon_id"] if "polygon_id" in panel.new.columns else [None] * len(panel.new)
        if len(ids) > _MAX_LABELS:  # dozens of ids only hide the burns; the table in the report lists them
            ids = [None] * len(ids)
        for pid, geom in zip(ids, panel.new.geometry):
            if pid is not None and geom is not None and not geom.is_empty:
                x, y = _label_anchor(geom, str(pid), limits, box_in, ty.font)
                ax.text(x, y, str(pid), fontsize=ty.font, color=_NEW_COLOUR, ha="left", va="bottom",
                        path_effects=_mpl().halo, clip_on=True, zorder=5, gid="polygon_label")
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    _frame(ax, extent, crs, ty=ty, box_in=box_in, limits=limits)
    if simulated:
        _stamp_simulated(ax, ty, *box_in)


def _line(size: float) -> float:
    """Inches per text line of ``size`` points."""
    return size * 1.3 / 72


class _Layout(NamedTuple):
    """Where the panels of a figure go (inches): ``ncols`` side by side, each ``panel_w`` by ``panel_h``."""

    ncols: int
    nrows: int
    panel_w: float
    panel_h: float
    titles: list[list[str]]
    row_title_h: float
    ticks_h: float
    """Under each row: its tick labels and axis label (each panel names the CRS)."""
    fixed_h: float


def _layout(n: int, aspect: float, width_in: float, titles: list[str], other_h: float, ty: _Type) -> _Layout:
    """Panels stacked or side by side, whichever shows the ground larger within the height allowed.

    A wide strip stacks (before above after); a tall strip goes side by side; either way the
    figure is ``width_in`` wide and at most :func:`max_height_in` tall, so it fits the
    column, page or slide it was made for. ``other_h`` is the height of the title, legend and
    caption.
    """
    best = None
    for ncols in sorted({1, n}):
        nrows = math.ceil(n / ncols)
        col_w = (width_in - 0.15) / ncols
        avail_w = col_w - _LEFT * ty.k
        wrapped = [_wrap(t, col_w - 0.1, ty.panel) for t in titles]
        row_title_h = max(len(lines) for lines in wrapped) * _line(ty.panel) + 0.06
        xlabel_h = (2 if avail_w < 2.2 * ty.k else 1) * _line(ty.font) + 0.04
        ticks_h = (ty.font * 1.2 + 5 * ty.k) / 72 + xlabel_h
        fixed_h = other_h + nrows * (row_title_h + ticks_h)
        cap = max(0.6 * ty.k, (max_height_in(width_in) - fixed_h) / nrows)
        panel_w = min(avail_w, cap / aspect)
        candidate = _Layout(ncols, nrows, panel_w, panel_w * aspect, wrapped, row_title_h, ticks_h, fixed_h)
        # side by side only when clearly larger: two frames of ticks and narrow titles cost room
        if best is None or candidate.panel_w * candidate.panel_h > best.panel_w * best.panel_h * 1.3:
            best = candidate
    return best


def _aspect(panels_extents: list[tuple[float, float, float, float]]) -> float:
    """Height/width of the panels' frames: the ground's, kept between 1:4 and 4:1."""
    ratio = max((e[3] - e[2]) / (e[1] - e[0]) for e in panels_extents)
    return min(_MAX_ASPECT, max(1 / _MAX_ASPECT, ratio))


def _compose(panels: list[_Panel], stretch: Stretch, width_in: float, *, title: str, caption: str,
             simulated: bool, aoi_outline: BaseGeometry | None, tz_name: str, noun: str = "",
             when: str = "first seen this date", locator: bool = False) -> Figure:
    crs = panels[-1].scene.attrs.get("crs")
    for gdf, what in ((panels[-1].new, "polygons_new"), (panels[-1].earlier, "polygons_earlier")):
        if gdf is not None:
            _check_crs(gdf, crs, what)
    ty = _type(width_in)
    handles = _legend_handles(panels, aoi_outline, ty.k, f" {noun}s" if noun else "", when)

    # Laid out in inches so the text sizes hold whatever the scene's shape.
    full_title = f"{SIMULATED_LABEL} \u2014 {title}" if simulated else title
    title_lines = _wrap(full_title, width_in - 0.3, ty.title, em=0.65)
    caption_lines = _wrap(caption, width_in - 0.3, ty.font)
    top = 0.1 + len(title_lines) * _line(ty.title) + 0.1
    legend_h = len(handles) * _line(ty.font) * 1.5 + (0.05 if handles else 0)
    where = _lonlat_box(aoi_outline, panels[-1].scene, crs) if locator else None
    inset = _INSET * ty.k if where is not None else 0.0
    legend_h = max(legend_h, inset + 0.35 * ty.k if inset else 0.0)
    caption_h = len(caption_lines) * _line(ty.font) + 0.15
    aspect = _aspect([_extent(p.scene)[0] for p in panels])
    lay = _layout(len(panels), aspect, width_in, [_panel_title(p, tz_name) for p in panels],
                  top + legend_h + caption_h, ty)
    height = lay.fixed_h + lay.nrows * lay.panel_h

    fig = _mpl().Figure(figsize=(width_in, height), dpi=_DPI)
    _mpl().FigureCanvasAgg(fig)  # explicit Agg canvas: no pyplot, no global backend state
    fig.text(0.5, 1 - 0.1 / height, "\n".join(title_lines), ha="center", va="top", fontsize=ty.title,
             weight="bold", color="red" if simulated else "black")
    col_w = (width_in - 0.15) / lay.ncols
    avail_w = col_w - _LEFT * ty.k
    for i, panel in enumerate(panels):
        row, col = divmod(i, lay.ncols)
        y = height - top - row * (lay.row_title_h + lay.panel_h + lay.ticks_h)  # inches from the bottom
        x0 = 0.075 + col * col_w
        fig.text((x0 + col_w / 2) / width_in, y / height, "\n".join(lay.titles[i]), ha="center", va="top",
                 fontsize=ty.panel)
        # a panel narrower than its column (a tall AOI) is centred under its title
        left = x0 + _LEFT * ty.k + (avail_w - lay.panel_w) / 2
        bottom = y - lay.row_title_h - lay.panel_h
        ax = fig.add_axes((left / width_in, bottom / height, lay.panel_w / width_in, lay.panel_h / height))
        _draw_panel(ax, panel, stretch, crs=str(crs or "CRS not recorded"), simulated=simulated,
                    aoi_outline=aoi_outline, ty=ty, box_in=(lay.panel_w, lay.panel_h), aspect=aspect)
    legend_top = caption_h + legend_h
    if handles:
        fig.legend(handles=handles, loc="upper left" if inset else "upper center", ncol=1, fontsize=ty.font,
                   frameon=False, handlelength=2.5,
                   bbox_to_anchor=((0.1 / width_in) if inset else 0.5, legend_top / height))
    if where is not None:
        _locator(fig, where, (width_in - 0.2 - inset, legend_top - 0.08 - _line(ty.font) - inset), inset, ty)
    fig.text(0.15 / width_in, (caption_h - 0.05) / height, "\n".join(caption_lines), ha="left", va="top",
             fontsize=ty.font, gid="caption")
    return fig


def _lonlat_box(aoi: BaseGeometry | None, scene: xr.DataArray, crs: str | None) -> tuple[float, float, float, float] | None:
    """The AOI's (else the scene's) bounds in lon/lat, or ``None`` when the CRS is unknown."""
    forward = _to_lonlat(str(crs)) if crs else None
    if forward is None:
        return None
    if aoi is not None and not aoi.is_empty:
        minx, miny, maxx, maxy = aoi.bounds
    else:
        minx, maxx, miny, maxy = _extent(scene)[0]
    lon, lat = forward.transform([minx, maxx, maxx, minx], [miny, miny, maxy, maxy])
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        return None
    return (float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat)))


def _locator(fig: Figure, box: tuple[float, float, float, float], at: tuple[float, float], size: float, ty: _Type) -> None:
    """A small lon/lat frame, 4 degrees across, with a 1-degree graticule and the AOI marked.

    No basemap is drawn: burnscan reads no network and ships no coastlines. The graticule and
    its labels give the AOI's place on the globe, readable against any atlas.
    """
    west, south, east, north = box
    lon, lat = (west + east) / 2, (south + north) / 2
    half = 2.0
    ax = fig.add_axes((at[0] / fig.get_figwidth(), at[1] / fig.get_figheight(),
                       size / fig.get_figwidth(), size / fig.get_figheight()), gid="locator")
    x0, y0 = math.floor(lon - half), math.floor(lat - half)
    ax.set_xlim(lon - half, lon + half)
    ax.set_ylim(lat - half, lat + half)
    ax.set_facecolor("white")
    for v in range(x0, x0 + 6):
        ax.axvline(v, color="0.75", lw=0.5 * ty.k)
    for v in range(y0, y0 + 6):
        ax.axhline(v, color="0.75", lw=0.5 * ty.k)
    if -half < lat < half:  # the equator in frame
        ax.axhline(0, color="0.4", lw=0.8 * ty.k)
    ax.add_patch(_mpl().Rectangle((west, south), max(east - west, 0), max(north - south, 0), fill=False, edgecolor="red",
                                  lw=1.0 * ty.k))
    ax.plot([lon], [lat], marker="s", markersize=5 * ty.k, markerfacecolor="none", markeredgecolor="red",
            markeredgewidth=1.2 * ty.k)
    ticks_x = [v for v in range(x0, x0 + 6) if lon - half + 0.5 <= v <= lon + half - 0.5][::2]
    ticks_y = [v for v in range(y0, y0 + 6) if lat - half + 0.5 <= v <= lat + half - 0.5][::2]
    ax.set_xticks(ticks_x, [_degrees(float((v + 180) % 360 - 180), 0, "EW") for v in ticks_x])
    ax.set_yticks(ticks_y, [_degrees(float(v), 0, "NS") for v in ticks_y])
    ax.tick_params(labelsize=ty.font, length=2 * ty.k, pad=1 * ty.k)
    ax.tick_params(axis="y", labelrotation=90)
    ax.set_title(f"{_degrees(lat, 3, 'NS')}, {_degrees(lon, 3, 'EW')}", fontsize=ty.font, pad=2 * ty.k)


def change_map_figure(
    delta: xr.DataArray,
    *,
    seed_threshold: float,
    grow_threshold: float,
    background: float,
    index_name: str,
    title: str,
    caption: str,
    simulated: bool,
    aoi_outline: BaseGeometry | None = None,
    polygons_new: gpd.GeoDataFrame | None = None,
    width_mm: float = FIGURE_WIDTH_MM,
) -> Figure:
    """One date's burn-index change (positive = more burned) with its colour bar and thresholds.

    ``delta`` is on the analysis grid (``crs`` attr); unobserved pixels (NaN) are grey. The
    colour bar marks the background and the two thresholds the burn mask was drawn with, so
    a reader sees how far above the noise each burn stands.
    """
    values = delta.values.astype(np.float32)
    extent, origin = _extent(delta)
    crs = str(delta.attrs.get("crs") or "CRS not recorded")
    finite = values[np.isfinite(values)]
    top = float(max(seed_threshold * 2, np.percentile(finite, 99.5) if finite.size else seed_threshold * 2))
    bottom = float(min(background - (top - background) / 4, np.percentile(finite, 0.5) if finite.size else 0.0))
    width_in = _width_in(width_mm)
    ty = _type(width_in)
    title_lines = _wrap(f"{SIMULATED_LABEL} \u2014 {title}" if simulated else title, width_in - 0.3, ty.title, em=0.65)
    caption_lines = _wrap(caption, width_in - 0.3, ty.font)
    aspect = _aspect([extent])
    limits = _box_limits(extent, aspect)
    avail_w = width_in - _LEFT * ty.k - 0.15
    top_h = 0.25 + len(title_lines) * _line(ty.title)
    caption_h = len(caption_lines) * _line(ty.font) + 0.15
    # The colour bar lies under the map, full width: beside it, it would take a third of a column.
    marks = [(v, st, name) for v, st, name in ((background, ":", "dotted: background"),
                                               (background + grow_threshold, "--", "dashed: grow threshold"),
                                               (background + seed_threshold, "-", "solid: seed threshold"))
             if bottom <= v <= top]
    bar_label = _wrap(f"change in {index_name.upper()} (burn direction right); "
                      + ", ".join(name for _, _, name in marks), avail_w, ty.font)
    bar_h, bar_label_h = 0.1, (len(bar_label) + 1) * _line(ty.font) + 0.2
    axis_h = (ty.font * 1.2 + 5 * ty.k) / 72 + (2 if avail_w < 2.2 * ty.k else 1) * _line(ty.font) + 0.04
    under = caption_h + bar_label_h + bar_h + axis_h
    panel_w = min(avail_w, max(0.6 * ty.k, max_height_in(width_in) - top_h - under) / aspect)
    panel_h = panel_w * aspect
    height = top_h + panel_h + under
    fig = _mpl().Figure(figsize=(width_in, height), dpi=_DPI)
    _mpl().FigureCanvasAgg(fig)
    fig.text(0.5, 1 - 0.1 / height, "\n".join(title_lines), ha="center", va="top", fontsize=ty.title, weight="bold",
             color="red" if simulated else "black")
    left = _LEFT * ty.k + (avail_w - panel_w) / 2
    ax = fig.add_axes((left / width_in, under / height, panel_w / width_in, panel_h / height))
    ax.set_facecolor("0.85")
    cmap = _mpl().matplotlib.colormaps["magma_r"].with_extremes(bad="0.8")
    image = ax.imshow(np.ma.masked_invalid(values), extent=extent, origin=origin, cmap=cmap, vmin=bottom, vmax=top,
                      interpolation="nearest", aspect="auto")
    if aoi_outline is not None:
        _outline(ax, [aoi_outline], _AOI_COLOUR, "-", "aoi", ty.k)
    if polygons_new is not None and len(polygons_new):
        _outline(ax, polygons_new.geometry, "cyan", "-", "polygons_new", ty.k)
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    _frame(ax, extent, crs, ty=ty, box_in=(panel_w, panel_h), limits=limits)
    if simulated:
        _stamp_simulated(ax, ty, panel_w, panel_h)
    # The colour bar keeps the full width whatever the map's shape, less room for half its last tick label.
    bar_left, bar_w = _LEFT * ty.k, avail_w - 0.12 * ty.k
    cax = fig.add_axes((bar_left / width_in, (caption_h + bar_label_h) / height, bar_w / width_in, bar_h / height))
    bar = fig.colorbar(image, cax=cax, orientation="horizontal")
    bar.ax.tick_params(labelsize=ty.font, length=2 * ty.k, pad=1.5 * ty.k)
    for value, style, _ in marks:
        bar.ax.axvline(value, color="cyan", linestyle=style, linewidth=1.5 * ty.k)
    bar.set_label("\n".join(bar_label), fontsize=ty.font, labelpad=2 * ty.k)
    fig.text(0.15 / width_in, (caption_h - 0.05) / height, "\n".join(caption_lines), ha="left", va="top", fontsize=ty.font,
             gid="caption")
    return fig


def timeline_figure(
    times: list[datetime],
    *,
    settlement_ha: list[float],
    other_ha: list[float],
    clear_fraction: list[float],
    usable: list[bool],
    title: str,
    caption: str,
    simulated: bool,
    tz_name: str | None = "UTC",
    time_of_day_known: list[bool] | None = None,
    width_mm: float = FIGURE_WIDTH_MM,
) -> Figure:
    """Burned area first seen on each acquisition (settlement and other burns apart), with how clear each was.

    Bars stand on the acquisition dates; the line is the share of the AOI seen clear, and an
    unusable acquisition (cloud, no match) is marked with a cross: no bar there means "not
    seen", not "not burned".
    """
    # Tick labels stand upright so that a week of acquisitions fits one print column; past
    # _MAX_TICKS only every n-th is labelled (every bar still stands).
    width_in = _width_in(width_mm)
    ty = _type(width_in)
    zone = ZoneInfo(tz_name) if tz_name is not None else None  # None: the AOI names no place's zone, UTC alone
    known = time_of_day_known or [True] * len(times)  # a date alone has no hour to show, UTC or local
    labels = [(f"{t:%d %b %H:%M} UTC" + (f"\n{t.astimezone(zone):%H:%M} local" if zone else "")) if k else f"{t:%d %b}\ntime unknown"
              for t, k in zip(times, known)]
    step = max(1, math.ceil(len(times) / _MAX_TICKS))
    labels = [lab if i % step == 0 else "" for i, lab in enumerate(labels)]
    line = ty.font * 1.3 / 72
    caption_lines = _wrap(caption, width_in - 0.3, ty.font)
    caption_h = len(caption_lines) * line + 0.15
    tick_h = max((len(lab.split("\n")[0]) for lab in labels), default=0) * 0.55 * ty.font / 72 + 0.15
    full_title = f"{SIMULATED_LABEL} \u2014 {title}" if simulated else title
    title_lines = _wrap(full_title, width_in - 0.3, ty.title, em=0.65)
    axes_bottom, axes_h, legend_h = caption_h + tick_h, 1.55 * ty.k, 2 * line * 1.5 + 0.1
    title_h = len(title_lines) * ty.title * 1.3 / 72 + 0.15
    height = axes_bottom + axes_h + legend_h + title_h
    fig = _mpl().Figure(figsize=(width_in, height), dpi=_DPI)
    _mpl().FigureCanvasAgg(fig)
    left, right = 0.62 * ty.k, 0.62 * ty.k
    ax = fig.add_axes((left / width_in, axes_bottom / height, (width_in - left - right) / width_in, axes_h / height))
    x = np.arange(len(times))
    ax.bar(x, settlement_ha, color="#b2182b", label="in the settlement")
    ax.bar(x, other_ha, bottom=settlement_ha, color="#ef8a62", label="outside (fields, bush)")
    ax.set_ylim(0, max(1.0, max((a + b for a, b in zip(settlement_ha, other_ha)), default=0) * 1.1))
    ax.set_ylabel("new burned area (ha)", fontsize=ty.font)
    ax.set_xticks(x, labels, fontsize=ty.font, rotation=90)
    ax.tick_params(labelsize=ty.font)
    clear_ax = ax.twinx()
    clear_ax.plot(x, np.asarray(clear_fraction) * 100, "o-", color="#2166ac", label="AOI seen clear (%)",
                  markersize=4 * ty.k, linewidth=1.2 * ty.k)
    bad = [i for i, ok in enumerate(usable) if not ok]
    clear_ax.plot(bad, [np.asarray(clear_fraction)[i] * 100 for i in bad], "x", color="black", markersize=7 * ty.k,
                  label="not usable (cloud, no match)")
    clear_ax.set_ylim(0, 105)
    clear_ax.set_ylabel("AOI seen clear (%)", fontsize=ty.font)
    clear_ax.tick_params(labelsize=ty.font)
    handles = ax.get_legend_handles_labels()[0] + clear_ax.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=ty.font, frameon=False,
               bbox_to_anchor=(0.5, (axes_bottom + axes_h + 0.02) / height))
    fig.text(0.5, 1 - 0.08 / height, "\n".join(title_lines), ha="center", va="top", fontsize=ty.title, weight="bold",
             color="red" if simulated else "black")
    if simulated:
        ax.text(0.5, 0.5, SIMULATED_LABEL, transform=ax.transAxes, ha="center", va="center", rotation=15,
                fontsize=ty.sim * 1.4, weight="bold", color="red", alpha=0.3)
    fig.text(0.15 / width_in, (caption_h - 0.05) / height, "\n".join(caption_lines), ha="left", va="top", fontsize=ty.font,
             gid="caption")
    return fig
