"""Figures ready to attach: provider credits, degrees on the frame, a print width, and any AOI shape laid out.

Scenes of odd shapes are built here with a burn of known place; the assertions are on what a
reader gets: the saved PNG's pixel size, every text inside the figure, the north arrow inside
its panel, ticks where pyproj puts the meridians, and each provider's own credit line.
"""

from __future__ import annotations

import dataclasses
import re
import shutil

import geopandas as gpd
import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Annotation, Text
from pyproj import Transformer
from shapely.geometry import box

from pipeline.outputs.figures import before_after_figure, change_map_figure, overlay_figure

CRS = "EPSG:32630"
RES = 3.0
X0, Y0 = 350_000.0, 1_600_000.0  # top-left corner (UTM 30N, central Mali)
COLUMN_PX = round(89 / 25.4 * 300)  # one 89 mm column at 300 dpi


def _scene(h: int, w: int, acquired: str, scene_id: str, *, burn: tuple[slice, slice] | None = None) -> xr.DataArray:
    rng = np.random.default_rng(1)
    data = np.stack([np.full((h, w), v, np.float32) for v in (0.05, 0.08, 0.07, 0.35)])
    data += rng.normal(0, 0.01, data.shape).astype(np.float32)
    if burn is not None:
        data[:, burn[0], burn[1]] = np.array([0.03, 0.04, 0.04, 0.06], np.float32)[:, None, None]
    return xr.DataArray(data, dims=("band", "y", "x"),
                        coords={"band": ["blue", "green", "red", "nir"], "y": Y0 - (np.arange(h) + 0.5) * RES,
                                "x": X0 + (np.arange(w) + 0.5) * RES},
                        attrs={"acquired": acquired, "scene_id": scene_id, "satellite_id": "2412", "crs": CRS})


def _pixels(rows: slice, cols: slice):
    return box(X0 + cols.start * RES, Y0 - rows.stop * RES, X0 + cols.stop * RES, Y0 - rows.start * RES)


def _pair(h: int, w: int, *, burn: tuple[slice, slice], polygon_id: str = "7", **kw):
    before = _scene(h, w, "2024-01-10T10:41:00Z", "before_id")
    after = _scene(h, w, "2024-01-28T10:38:00Z", "after_id", burn=burn)
    new = gpd.GeoDataFrame({"polygon_id": [polygon_id]}, geometry=[_pixels(*burn)], crs=CRS)
    return before_after_figure(before, after, title="A long narrow AOI", caption="Imagery: test scenes.", simulated=False,
                               polygons_new=new, aoi_outline=_pixels(slice(1, h - 1), slice(1, w - 1)), **kw)


def _saved_size(fig, tmp_path, name: str) -> tuple[int, int]:
    """(width, height) in pixels of the figure saved as PNG the way the run folder saves it."""
    from pipeline.outputs.write import save_figure

    path = save_figure(tmp_path / f"{name}.png", fig, root=tmp_path)
    height, width = mpimg.imread(path).shape[:2]
    return width, height


def _inside(inner, outer, tol: float = 1.0) -> bool:
    return (inner.x0 >= outer.x0 - tol and inner.x1 <= outer.x1 + tol
            and inner.y0 >= outer.y0 - tol and inner.y1 <= outer.y1 + tol)


def _texts_outside(fig) -> list[str]:
    """Visible texts of ``fig`` whose drawn extent leaves the figure."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    outside = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip():
            if not t.get_clip_on() or t.axes is None or t.get_clip_box() is None:
                extent = t.get_window_extent(renderer)
            else:  # a clipped text shows only where it meets its clip box
                extent = t.get_window_extent(renderer)
                if not _inside(extent, t.get_clip_box()):
                    outside.append(f"{t.get_text()!r} cut by its panel")
                    continue
            if not _inside(extent, fig.bbox):
                outside.append(f"{t.get_text()!r} at {extent}")
    return outside


TALL = dict(h=250, w=50, burn=(slice(100, 130), slice(30, 50)))  # 5:1 tall, the burn at the right edge
WIDE = dict(h=40, w=320, burn=(slice(5, 20), slice(300, 320)))  # 8:1 wide, the burn in the upper right corner


@pytest.mark.parametrize("shape", [TALL, WIDE], ids=["tall_5_to_1", "wide_8_to_1"])
def test_a_long_narrow_aoi_gives_a_figure_that_fits_one_column(shape, tmp_path):
    fig = _pair(**shape)
    width, height = _saved_size(fig, tmp_path, "pair")
    assert abs(width - COLUMN_PX) <= 1, f"{width} px wide: not an 89 mm column at 300 dpi"
    assert height <= 1.5 * width, f"{width} x {height} px: too tall for a column"
    assert _texts_outside(fig) == []


@pytest.mark.parametrize("shape", [TALL, WIDE], ids=["tall_5_to_1", "wide_8_to_1"])
def test_polygon_labels_and_the_north_arrow_stay_inside_their_panel(shape):
    fig = _pair(**shape, polygon_id="1234")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    after_ax = fig.axes[1]
    labels = [t for t in after_ax.texts if t.get_text() == "1234"]
    assert len(labels) == 1
    assert _inside(labels[0].get_window_extent(renderer), after_ax.bbox), "the polygon's label is cut at the panel edge"
    for ax in fig.axes:
        arrows = [t for t in ax.texts if isinstance(t, Annotation) and t.arrow_patch is not None]
        letters = [t for t in ax.texts if t.get_text() == "N"]
        assert arrows and letters, "no north arrow"
        for arrow in arrows:
            assert _inside(arrow.arrow_patch.get_window_extent(renderer), ax.bbox), "north arrow outside its panel"
        for letter in letters:
            assert _inside(letter.get_window_extent(renderer), ax.bbox), "the N of the north arrow is outside its panel"


def _degrees(label: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\u00b0([NSEW])", label.strip())
    assert match, f"tick label {label!r} is not in degrees"
    return float(match.group(1)) * (-1 if match.group(2) in "SW" else 1)


def test_frame_ticks_are_degrees_where_pyproj_puts_them():
    fig = _pair(60, 80, burn=(slice(20, 35), slice(30, 50)))
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    xticks = [(x, _degrees(t.get_text())) for x, t in zip(ax.get_xticks(), ax.get_xticklabels()) if x0 <= x <= x1]
    yticks = [(y, _degrees(t.get_text())) for y, t in zip(ax.get_yticks(), ax.get_yticklabels()) if y0 <= y <= y1]
    assert xticks and yticks
    for x, lon in xticks:  # along the bottom edge, where the labels stand
        assert to_lonlat.transform(x, y0)[0] == pytest.approx(lon, abs=2e-6)
    for y, lat in yticks:  # along the left edge
        assert to_lonlat.transform(x0, y)[1] == pytest.approx(lat, abs=2e-6)
    assert all(lon < 0 for _, lon in xticks)  # UTM 30N at 350 km easting is west of Greenwich: "W"


@pytest.mark.parametrize("width_mm, px", [(89, 1051), (183, 2161), (254, 3000)])
def test_figure_width_is_the_print_width_at_300_dpi(width_mm, px, tmp_path):
    scene = _scene(60, 80, "2024-01-28T10:38:00Z", "s", burn=(slice(20, 35), slice(30, 50)))
    new = gpd.GeoDataFrame({"polygon_id": [1]}, geometry=[_pixels(slice(20, 35), slice(30, 50))], crs=CRS)
    fig = overlay_figure(scene, polygons_new=new, title="t", caption="c", simulated=False, width_mm=width_mm)
    width, height = _saved_size(fig, tmp_path, f"w{width_mm}")
    assert abs(width - px) <= 1 and height <= 1.5 * width
    delta = scene.sel(band="nir").drop_vars("band")
    fig = change_map_figure(delta, seed_threshold=0.08, grow_threshold=0.04, background=0.0, index_name="nir", title="t",
                            caption="c", simulated=False, width_mm=width_mm)
    width, height = _saved_size(fig, tmp_path, f"c{width_mm}")
    assert abs(width - px) <= 1 and height <= 1.5 * width


def test_tall_change_map_fits_and_keeps_its_texts_inside(tmp_path):
    delta = _scene(300, 40, "2024-01-28T10:38:00Z", "s").sel(band="nir").drop_vars("band")
    fig = change_map_figure(delta, seed_threshold=0.08, grow_threshold=0.04, background=0.0, index_name="nir",
                            title="t", caption="c", simulated=True)
    width, height = _saved_size(fig, tmp_path, "tall_change")
    assert abs(width - COLUMN_PX) <= 1 and height <= 1.5 * width
    assert _texts_outside(fig) == []


def test_overview_locator_places_the_aoi_on_a_lonlat_graticule():
    scene = _scene(60, 80, "2024-01-28T10:38:00Z", "s", burn=(slice(20, 35), slice(30, 50)))
    new = gpd.GeoDataFrame({"polygon_id": [1]}, geometry=[_pixels(slice(20, 35), slice(30, 50))], crs=CRS)
    aoi = _pixels(slice(2, 58), slice(2, 78))
    fig = overlay_figure(scene, polygons_new=new, title="t", caption="c", simulated=False, aoi_outline=aoi, locator=True)
    inset = [ax for ax in fig.axes if ax.get_gid() == "locator"]
    assert len(inset) == 1
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(*aoi.centroid.coords[0])
    (west, east), (south, north) = inset[0].get_xlim(), inset[0].get_ylim()
    assert west < lon < east and south < lat < north and east - west == pytest.approx(4.0)
    marked = [line for line in inset[0].lines if line.get_marker() == "s"]
    assert marked and marked[0].get_xdata()[0] == pytest.approx(lon, abs=1e-3)
    assert _texts_outside(fig) == []


# --- credits, through the run's figures --------------------------------------------------

PROVIDERS = {
    "planet": (dict(sensor="PSB.SD"), "Imagery \u00a9 2024 Planet Labs PBC"),
    "sentinel2": (dict(sensor="Sentinel-2B MSI"), "Contains modified Copernicus Sentinel data 2024"),
    "landsat": (dict(sensor="Landsat 8 OLI_TIRS"), "Landsat imagery courtesy of the U.S. Geological Survey"),
    "geotiff": (dict(sensor="unknown", files={"reflectance": "/x/clip.tif"}), "provider not recorded"),
}


def _captions(figures: dict) -> dict[str, str]:
    return {name: " ".join(t.get_text() for t in fig.texts if t.get_gid() == "caption").replace("\n", " ")
            for name, fig in figures.items() if name != "timeline.png"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(PROVIDERS))
def test_every_caption_credits_the_provider_of_its_scenes(kind, small_run):
    from pipeline.outputs.run_figures import run_figures

    detection = small_run.outcome.detection
    change, credit = PROVIDERS[kind]
    as_real = [dataclasses.replace(r, simulated=False, **change) for r in detection.records]
    real = dataclasses.replace(detection, records=as_real, all_records=as_real)
    polygons = detection.polygons.assign(setting="settlement")
    captions = _captions(run_figures(real, polygons, None, None, False, "UTC"))
    assert captions
    for name, text in captions.items():
        assert credit in text, f"{name}: {text!r}"
        assert "credit the provider" not in text and "SIMULATED" not in text
        if kind == "geotiff":  # a neutral line that names the scene
            assert any(r.scene_id in text for r in as_real), f"{name}: {text!r}"


@pytest.mark.slow
def test_simulated_scenes_are_credited_as_simulated_naming_no_provider(small_run):
    from pipeline.outputs.run_figures import run_figures

    detection = small_run.outcome.detection
    captions = _captions(run_figures(detection, detection.polygons.assign(setting="settlement"), None, None, True, "UTC"))
    for name, text in captions.items():
        assert "SIMULATED" in text
        assert not re.search(r"Planet|Copernicus|Landsat|U\.S\. Geological", text), f"{name}: {text!r}"


# --- the print width, from the command line to the manifest ------------------------------


@pytest.mark.slow
def test_detect_figure_width_lays_out_every_figure_and_is_recorded(small_run, tmp_path, capsys):
    import json

    from factories import run_cli
    from smallaoi import AOI_NAME

    # Two of the session run's scenes (copies), the clear 27 January and the 28th that shows the first burns: a run of
    # its own that draws one figure of every kind, in half the time the five scenes take.
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    folder = next(small_run.data_root.rglob("20240128_*_metadata_SIMULATED.json")).parent
    for source in folder.iterdir():
        if source.name.startswith(("20240127_", "20240128_", "buildings_", "settlement_")):
            shutil.copy(source, scenes / source.name)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "detect", AOI_NAME, "--aoi-dir", small_run.aoi_dir, "--out", out,
                                "--scenes", scenes, "--figure-width", "double")
    assert code == 0, err
    run_dir = out / AOI_NAME / stdout.strip().splitlines()[-1].split("/")[-1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["parameters"]["figure_width_mm"] == 183.0
    pngs = sorted((run_dir / "figures").glob("*.png"))
    kinds = {re.sub(r"^\d{8}T\d{4}Z_|_SIMULATED$", "", png.stem) for png in pngs}
    assert kinds == {"before_after", "before_after_natural", "change", "overlay", "structures", "overview", "timeline"}
    for png in pngs:
        height, width = mpimg.imread(png).shape[:2]
        assert abs(width - round(183 / 25.4 * 300)) <= 1, f"{png.name}: {width} px wide"
        assert height <= 1.5 * width, f"{png.name}: {width} x {height} px"


def test_a_figure_width_that_is_no_print_width_is_one_line(tmp_path, capsys):
    from factories import run_cli

    code, _, err = run_cli(capsys, "detect", "nowhere", "--aoi-dir", tmp_path, "--figure-width", "poster")
    assert code != 0 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "--figure-width 'poster'" in err and "column" in err


@pytest.mark.parametrize("width", ["40", "79.9", "601"])
def test_a_width_whose_layout_fails_its_promises_is_refused_in_one_line(width, tmp_path, capsys):
    """Under 80 mm the figures grow over 1.5 times as tall as wide (70 mm) or cut their legends (40 mm)."""
    from factories import run_cli

    code, _, err = run_cli(capsys, "detect", "nowhere", "--aoi-dir", tmp_path, "--figure-width", width)
    assert code != 0 and len(err.strip().splitlines()) == 1 and f"--figure-width '{width}'" in err and ">= 80" in err
