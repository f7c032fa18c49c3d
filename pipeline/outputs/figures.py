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

import math
import textwrap
from datetime import datetime, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import geopandas as gpd
import matplotlib
import numpy as np
import xarray as xr
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, MaxNLocator
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from pipeline.errors import ParameterError, SceneError
from pipeline.outputs.report import TIME_OF_DAY_UNKNOWN

__all__ = ["Stretch", "SIMULATED_LABEL", "NATURAL_BANDS", "false_colour", "joint_stretch", "before_after_figure", "overlay_figure", "change_map_figure",
           "timeline_figure"]

Stretch = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
"""(low, high) reflectance per displayed channel R, G, B = NIR, red, green."""

SIMULATED_LABEL = "SIMULATED DATA"
"""The words every figure made from simulated scenes carries, on each panel and in the title."""

# Colour infrared: vegetation reflects NIR strongly and shows red; ash and charred ground
# are dark in NIR as in red, so burns show dark against it.
_CIR_BANDS = ("nir", "red", "green")
NATURAL_BANDS = ("red", "green", "blue")  # natural colour, for readers who do not read infrared composites
_PERCENTILES = (2.0, 98.0)
_NAN_GREY = 0.5
_NEW_COLOUR, _EARLIER_COLOUR, _AOI_COLOUR = "#ffe119", "#42d4f4", "white"
# A dark halo keeps the outlines visible on bright soil as on dark burns.
_HALO = [patheffects.withStroke(linewidth=2.6, foreground="black")]
_HATCH = "////"
_MAX_LABELS = 8
_MAX_TICKS = 8
_CM = 1 / 2.54
_SINGLE_WIDTH_IN, _DPI = 8 * _CM, 300
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


def _type(width_in: float) -> _Type:
    k = max(1.0, width_in / (PRINT_WIDTH_CM * _CM))
    return _Type(k, _FONT * k, _PANEL_FONT * k, _TITLE_FONT * k, _SIM_FONT * k)


def false_colour(scene: xr.DataArray, *, stretch: Stretch | None = None) -> tuple[np.ndarray, Stretch]:
    """Colour-infrared composite (R=NIR, G=red, B=green) of a scene, scaled to 0..1.

    Parameters
    ----------
    scene
        Reflectance with dims ``("band", "y", "x")`` and bands ``nir``, ``red``, ``green``.
    stretch
        Reflectance shown black and full per channel; by default the 2nd-98th percentile
        of the scene's finite values. Pass :func:`joint_stretch` of several scenes so they
        are shown on one scale.

    Returns
    -------
    rgb, stretch
        ``(H, W, 3)`` float array in the scene's row order (unobserved NaN pixels mid grey)
        and the stretch used, to reuse on another scene.

    Examples
    --------
    >>> rgb, s = false_colour(scene)  # doctest: +SKIP
    """
    planes = _cir(scene)
    stretch = _stretch_of([planes]) if stretch is None else _checked(stretch)
    return _to_rgb(planes, stretch), stretch


def joint_stretch(*scenes: xr.DataArray, bands: tuple[str, str, str] = _CIR_BANDS) -> Stretch:
    """One stretch over several scenes, so a colour change between them is a change of ground.

    Per-scene stretches would rescale each date on its own and could make an unchanged field
    look brighter or darker; one shared stretch leaves only real reflectance changes.

    Returns
    -------
    Stretch
        2nd-98th percentile of the finite values of all scenes, per channel.

    Examples
    --------
    >>> s = joint_stretch(before, after)  # doctest: +SKIP
    >>> rgb_before, _ = false_colour(before, stretch=s)  # doctest: +SKIP
    """
    if not scenes:
        raise ParameterError("joint_stretch() needs at least one scene; pass the before and after scenes")
    return _stretch_of([_cir(s, bands) for s in scenes])


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
    tz_name: str = "UTC",
    bands: tuple[str, str, str] = _CIR_BANDS,
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

    Returns
    -------
    Figure
        8 cm wide (one print column), before above after, at 300 dpi, on an Agg
        canvas; the caller saves it. The north arrow
        points to grid north of the scenes' CRS.
    """
    _check_crs(before, after.attrs.get("crs"), "the before scene")
    planes = [_cir(before, bands), _cir(after, bands)]
    masks = [_mask(before_clear, before, "before_clear"), _mask(after_clear, after, "after_clear")]
    if stretch is None:
        stretch = _stretch_of([p if m is None else np.where(m, p, np.nan) for p, m in zip(planes, masks)])
    panels = [_Panel("Before", before, planes[0], masks[0]),
              _Panel("After", after, planes[1], masks[1], polygons_new, polygons_earlier)]
    return _compose(panels, _checked(stretch), _SINGLE_WIDTH_IN, title=title, caption=caption,
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
    tz_name: str = "UTC",
    noun: str = "",
    when: str = "first seen this date",
) -> Figure:
    """The after scene in false colour with the burned-area polygons outlined.

    Parameters are those of :func:`before_after_figure`; pass the stretch it used to show
    both figures of one date in identical colours. ``noun`` names what is outlined in the
    legend ("structure": "burned structures, first seen this date") and ``when`` what the
    solid outlines are ("all dates" on an overview). The figure is 8 cm
    wide (one print column) at 300 dpi.
    """
    planes = _cir(after)
    mask = _mask(after_clear, after, "after_clear")
    if stretch is None:
        stretch = _stretch_of([planes if mask is None else np.where(mask, planes, np.nan)])
    panels = [_Panel("After", after, planes, mask, polygons_new, polygons_earlier)]
    return _compose(panels, _checked(stretch), _SINGLE_WIDTH_IN, title=title, caption=caption,
                    simulated=simulated, aoi_outline=aoi_outline, tz_name=tz_name, noun=noun, when=when)


def _cir(scene: xr.DataArray, bands: tuple[str, str, str] = _CIR_BANDS) -> np.ndarray:
    """The three planes shown as red, green, blue (NIR, red, green by default) as a ``(3, H, W)`` array."""
    sid = scene.attrs.get("scene_id", "?")
    names = [str(b) for b in scene["band"].values] if "band" in scene.coords else []
    missing = [b for b in bands if b not in names]
    if missing:
        raise SceneError(f"scene {sid!r} lacks band(s) {missing} (has {names}); "
                         f"this composite needs {', '.join(bands)}: load those bands too")
    if scene.sizes.get("x", 0) < 2 or scene.sizes.get("y", 0) < 2 or not np.all(np.diff(scene["x"].values) > 0):
        raise SceneError(f"scene {sid!r} needs at least 2x2 pixels and eastings increasing along x; "
                         "pass the scene as loaded onto the analysis grid")
    return scene.sel(band=list(bands)).transpose("band", "y", "x").values.astype(np.float32)


def _stretch_of(planes: list[np.ndarray]) -> Stretch:
    """2nd-98th percentile per channel over the finite values of all arrays."""
    out = []
    for c in range(3):
        values = np.concatenate([p[c].ravel() for p in planes])
        values = values[np.isfinite(values)]
        lo, hi = np.percentile(values, _PERCENTILES) if values.size else (0.0, 1.0)
        out.append((float(lo), float(max(hi, lo + 1e-3))))  # a flat channel must not divide by 0
    return (out[0], out[1], out[2])


def _checked(stretch: Stretch) -> Stretch:
    try:
        pairs = [(float(lo), float(hi)) for lo, hi in stretch]
    except (TypeError, ValueError):
        pairs = []
    if len(pairs) != 3 or not all(hi > lo for lo, hi in pairs):
        raise ParameterError(f"stretch must be three (low, high) pairs with high > low, for NIR, red, green; "
                             f"got {stretch!r}. Pass None to compute it, or what joint_stretch() returned")
    return (pairs[0], pairs[1], pairs[2])


def _to_rgb(planes: np.ndarray, stretch: Stretch) -> np.ndarray:
    lo = np.array([s[0] for s in stretch], dtype=np.float32)[:, None, None]
    hi = np.array([s[1] for s in stretch], dtype=np.float32)[:, None, None]
    rgb = np.moveaxis(np.clip((planes - lo) / (hi - lo), 0.0, 1.0), 0, -1)
    rgb[~np.isfinite(rgb).all(axis=-1)] = _NAN_GREY
    return rgb


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


def _when(scene: xr.DataArray, tz_name: str) -> str:
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
    ax.add_collection(LineCollection(rings, colors=colour, linewidths=1.2 * k, linestyles=style,
                                     path_effects=_HALO, gid=gid, zorder=4), autolim=False)


def _nice_length(width_m: float) -> float:
    """A 1, 2 or 5 x 10^k length closest (in ratio) to a fifth of the width."""
    target = width_m / 5
    base = 10 ** math.floor(math.log10(target))
    return min((k * base for k in (1, 2, 5, 10)), key=lambda c: abs(math.log(c / target)))


class _Km(Formatter):
    """Metres shown as km, all ticks of an axis with the decimals their spacing needs."""

    decimals = 0

    def format_ticks(self, values: list[float]) -> list[str]:
        steps_km = np.abs(np.diff(values)) / 1000
        self.decimals = max(0, -math.floor(math.log10(steps_km.min()) + 1e-9)) if steps_km.size else 0
        return [self(v) for v in values]

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x / 1000:.{self.decimals}f}"


def _frame(ax, extent, crs: str, ty: _Type) -> None:
    """Scale bar, north arrow and easting/northing in km."""
    length = _nice_length(extent[1] - extent[0])
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    bar = AnchoredSizeBar(ax.transData, length, label, "lower left", pad=0.3, borderpad=0.4, sep=2,
                          size_vertical=(extent[3] - extent[2]) / 80, frameon=True,
                          fontproperties=FontProperties(size=ty.font))
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)
    # Fixed length in points, so the arrow looks the same on a tall panel as on a wide one.
    ax.annotate("N", xy=(0.93, 0.05), xycoords="axes fraction", xytext=(0, 26 * ty.k), textcoords="offset points",
                ha="center", va="bottom", fontsize=ty.font * 1.2, weight="bold", color="white", path_effects=_HALO,
                arrowprops=dict(arrowstyle="<|-", color="white", lw=1.5 * ty.k, shrinkA=1, shrinkB=0, path_effects=_HALO))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
        axis.set_major_formatter(_Km())
    ax.tick_params(labelsize=ty.font, length=3 * ty.k, pad=2 * ty.k)
    ax.set_xlabel(f"Easting (km, {crs})", fontsize=ty.font, labelpad=2 * ty.k)
    ax.set_ylabel(f"Northing (km, {crs})", fontsize=ty.font, labelpad=2 * ty.k)


def _stamp_simulated(ax, ty: _Type) -> None:
    """A boxed label at the top and a watermark across the middle, which survives cropping."""
    ax.text(0.5, 0.97, SIMULATED_LABEL, transform=ax.transAxes, ha="center", va="top", fontsize=ty.sim,
            weight="bold", color="red", zorder=10,
            bbox=dict(boxstyle="square,pad=0.3", facecolor="white", edgecolor="red", linewidth=1.5 * ty.k))
    ax.text(0.5, 0.5, SIMULATED_LABEL, transform=ax.transAxes, ha="center", va="center", rotation=30,
            fontsize=ty.sim * 1.6, weight="bold", color="red", alpha=0.35, zorder=9)


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
        handles.append(Line2D([], [], color=_NEW_COLOUR, lw=1.2 * k, path_effects=_HALO,
                              label=f"burned{noun}, {when} ({len(new)})"))
    if earlier is not None:
        handles.append(Line2D([], [], color=_EARLIER_COLOUR, lw=1.2 * k, ls="--", path_effects=_HALO,
                              label=f"burned{noun}, seen on an earlier date ({len(earlier)})"))
    if any(p.mask is not None and not p.mask.all() for p in panels):
        handles.append(Patch(facecolor="0.85", edgecolor="0.2", hatch=_HATCH,
                             label="not observed (cloud, shadow, no data)"))
    if aoi_outline is not None:
        handles.append(Line2D([], [], color=_AOI_COLOUR, lw=1.0 * k, path_effects=_HALO, label="area of interest"))
    return handles


def _panel_title(panel: _Panel, tz_name: str) -> str:
    scene = panel.scene
    sat = scene.attrs.get("satellite_id")
    return (f"{panel.label}: {_when(scene, tz_name)}\n"
            f"scene {scene.attrs.get('scene_id', 'not recorded')}" + (f", satellite {sat}" if sat else ""))


def _draw_panel(ax, panel: _Panel, stretch: Stretch, *, crs: str, simulated: bool,
                aoi_outline: BaseGeometry | None, ty: _Type) -> None:
    scene, mask = panel.scene, panel.mask
    extent, origin = _extent(scene)
    ax.imshow(_to_rgb(panel.planes, stretch), extent=extent, origin=origin, interpolation="nearest")
    if mask is not None and not mask.all():
        tint = np.zeros((*mask.shape, 4), dtype=np.float32)
        tint[~mask] = (1.0, 1.0, 1.0, 0.35)
        ax.imshow(tint, extent=extent, origin=origin, interpolation="nearest")
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
                _, _, maxx, maxy = geom.bounds  # beside the polygon, not over the burn
                ax.text(maxx, maxy, str(pid), fontsize=ty.font, color=_NEW_COLOUR, ha="left", va="bottom",
                        path_effects=_HALO, clip_on=True, zorder=5)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    _frame(ax, extent, crs, ty=ty)
    if simulated:
        _stamp_simulated(ax, ty)


def _compose(panels: list[_Panel], stretch: Stretch, width_in: float, *, title: str, caption: str,
             simulated: bool, aoi_outline: BaseGeometry | None, tz_name: str, noun: str = "",
             when: str = "first seen this date") -> Figure:
    crs = panels[-1].scene.attrs.get("crs")
    for gdf, what in ((panels[-1].new, "polygons_new"), (panels[-1].earlier, "polygons_earlier")):
        if gdf is not None:
            _check_crs(gdf, crs, what)
    ty = _type(width_in)
    handles = _legend_handles(panels, aoi_outline, ty.k, f" {noun}s" if noun else "", when)

    # Panels stack top to bottom in one print column (a pair side by side would print at
    # 4 cm a map); laid out in inches so the text sizes hold whatever the scene's shape.
    full_title = f"{SIMULATED_LABEL} \u2014 {title}" if simulated else title
    title_lines = _wrap(full_title, width_in - 0.3, ty.title, em=0.65)
    caption_lines = _wrap(caption, width_in - 0.3, ty.font)
    panel_titles = [_wrap(_panel_title(p, tz_name), width_in - 0.3, ty.panel) for p in panels]
    line = lambda size: size * 1.3 / 72  # noqa: E731  (inches per text line)
    left, right = 0.62 * ty.k, 0.15
    extents = [_extent(p.scene)[0] for p in panels]
    aspect = min(3.0, max(0.2, max((e[3] - e[2]) / (e[1] - e[0]) for e in extents)))
    panel_w = width_in - left - right
    panel_h = panel_w * aspect
    top = 0.1 + len(title_lines) * line(ty.title) + 0.1
    axis_h = 0.4 * ty.k  # tick labels and the easting label
    legend_h = len(handles) * line(ty.font) * 1.5 + (0.05 if handles else 0)
    caption_h = len(caption_lines) * line(ty.font) + 0.15
    blocks = [len(lines) * line(ty.panel) + 0.06 + panel_h + axis_h for lines in panel_titles]
    height = top + sum(blocks) + legend_h + caption_h

    fig = Figure(figsize=(width_in, height), dpi=_DPI)
    FigureCanvasAgg(fig)  # explicit Agg canvas: no pyplot, no global backend state
    fig.text(0.5, 1 - 0.1 / height, "\n".join(title_lines), ha="center", va="top", fontsize=ty.title,
             weight="bold", color="red" if simulated else "black")
    y = height - top  # inches from the bottom, walking down
    for panel, lines, block in zip(panels, panel_titles, blocks):
        fig.text(0.5, y / height, "\n".join(lines), ha="center", va="top", fontsize=ty.panel)
        ax = fig.add_axes((left / width_in, (y - block + axis_h) / height, panel_w / width_in, panel_h / height))
        _draw_panel(ax, panel, stretch, crs=str(crs or "CRS not recorded"), simulated=simulated,
                    aoi_outline=aoi_outline, ty=ty)
        y -= block
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=1, fontsize=ty.font, frameon=False,
                   bbox_to_anchor=(0.5, (caption_h + legend_h) / height), handlelength=2.5)
    fig.text(0.15 / width_in, (caption_h - 0.05) / height, "\n".join(caption_lines), ha="left", va="top",
             fontsize=ty.font, gid="caption")
    return fig


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
    width_in = _SINGLE_WIDTH_IN
    ty = _type(width_in)
    title_lines = _wrap(f"{SIMULATED_LABEL} \u2014 {title}" if simulated else title, width_in - 0.3, ty.title, em=0.65)
    caption_lines = _wrap(caption, width_in - 0.3, ty.font)
    line = lambda size: size * 1.3 / 72  # noqa: E731
    aspect = min(3.0, max(0.2, (extent[3] - extent[2]) / (extent[1] - extent[0])))
    left = 0.62 * ty.k
    panel_w = width_in - left - 0.15
    panel_h = panel_w * aspect
    top_h = 0.25 + len(title_lines) * line(ty.title)
    caption_h = len(caption_lines) * line(ty.font) + 0.15
    # The colour bar lies under the map, full width: beside it, it would take a third of a column.
    marks = [(v, st, name) for v, st, name in ((background, ":", "dotted: background"),
                                               (background + grow_threshold, "--", "dashed: grow threshold"),
                                               (background + seed_threshold, "-", "solid: seed threshold"))
             if bottom <= v <= top]
    bar_label = _wrap(f"change in {index_name.upper()} (burn direction right); "
                      + ", ".join(name for _, _, name in marks), panel_w, ty.font)
    bar_h, bar_label_h, axis_h = 0.1, (len(bar_label) + 1) * line(ty.font) + 0.2, 0.45 * ty.k
    under = caption_h + bar_label_h + bar_h + axis_h
    height = top_h + panel_h + under
    fig = Figure(figsize=(width_in, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    fig.text(0.5, 1 - 0.1 / height, "\n".join(title_lines), ha="center", va="top", fontsize=ty.title, weight="bold",
             color="red" if simulated else "black")
    ax = fig.add_axes((left / width_in, under / height, panel_w / width_in, panel_h / height))
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="0.8")
    image = ax.imshow(np.ma.masked_invalid(values), extent=extent, origin=origin, cmap=cmap, vmin=bottom, vmax=top,
                      interpolation="nearest")
    if aoi_outline is not None:
        _outline(ax, [aoi_outline], _AOI_COLOUR, "-", "aoi", ty.k)
    if polygons_new is not None and len(polygons_new):
        _outline(ax, polygons_new.geometry, "cyan", "-", "polygons_new", ty.k)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    _frame(ax, extent, crs, ty=ty)
    if simulated:
        _stamp_simulated(ax, ty)
    cax = fig.add_axes((left / width_in, (caption_h + bar_label_h) / height, panel_w / width_in, bar_h / height))
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
    tz_name: str = "UTC",
    time_of_day_known: list[bool] | None = None,
) -> Figure:
    """Burned area first seen on each acquisition (settlement and other burns apart), with how clear each was.

    Bars stand on the acquisition dates; the line is the share of the AOI seen clear, and an
    unusable acquisition (cloud, no match) is marked with a cross: no bar there means "not
    seen", not "not burned".
    """
    # Tick labels stand upright so that a week of acquisitions fits one print column; past
    # _MAX_TICKS only every n-th is labelled (every bar still stands).
    width_in = 12 * _CM
    ty = _type(width_in)
    zone = ZoneInfo(tz_name)
    known = time_of_day_known or [True] * len(times)  # a date alone has no hour to show, UTC or local
    labels = [f"{t:%d %b %H:%M} UTC\n{t.astimezone(zone):%H:%M} local" if k else f"{t:%d %b}\ntime unknown"
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
    fig = Figure(figsize=(width_in, height), dpi=_DPI)
    FigureCanvasAgg(fig)
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
