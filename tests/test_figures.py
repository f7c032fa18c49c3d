"""Tests of pipeline.outputs.figures on small synthetic scenes with a burn of known place."""

from __future__ import annotations

import geopandas as gpd
import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.text import Text
from shapely.geometry import Polygon, box

from pipeline.errors import ParameterError, SceneError
from pipeline.outputs.figures import SIMULATED_LABEL, before_after_figure, false_colour, joint_stretch, overlay_figure

CRS = "EPSG:32630"
H, W, RES = 60, 80, 3.0
X0, Y0 = 350_000.0, 1_600_000.0  # top-left corner, metres (UTM 30N, central Mali)
# The burn: rows 20..35, columns 30..50 of the after scene.
BURN_ROWS, BURN_COLS = slice(20, 35), slice(30, 50)
CAPTION = ("Imagery: synthetic scenes made by the test suite. Before 2024-01-10 10:41 UTC, "
           "after 2024-01-28 10:38 UTC. Polygons: burnscan.")


def _scene(acquired: str, scene_id: str, *, burn: bool) -> xr.DataArray:
    """Savanna-like reflectance (high NIR), with a dark, NIR-poor square when ``burn``."""
    values = {"blue": 0.05, "green": 0.08, "red": 0.07, "nir": 0.35}
    rng = np.random.default_rng(0)  # same texture on both dates: unchanged ground stays unchanged
    data = np.stack([np.full((H, W), v, dtype=np.float32) for v in values.values()])
    data += rng.normal(0, 0.01, data.shape).astype(np.float32)
    if burn:
        data[:, BURN_ROWS, BURN_COLS] = np.array([0.03, 0.04, 0.04, 0.06], dtype=np.float32)[:, None, None]
    data[:, 0:3, 0:3] = np.nan  # a corner never observed
    return xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={"band": list(values), "y": Y0 - (np.arange(H) + 0.5) * RES, "x": X0 + (np.arange(W) + 0.5) * RES},
        attrs={"acquired": acquired, "scene_id": scene_id, "satellite_id": "2412", "crs": CRS},
    )


@pytest.fixture
def before() -> xr.DataArray:
    return _scene("2024-01-10T10:41:00Z", "20240110_104100_2412", burn=False)


@pytest.fixture
def after() -> xr.DataArray:
    return _scene("2024-01-28T10:38:00Z", "20240128_103800_2412", burn=True)


@pytest.fixture
def clear(after: xr.DataArray) -> xr.DataArray:
    mask = np.ones((H, W), dtype=bool)
    mask[45:60, 0:20] = False  # a cloud in the lower-left
    return xr.DataArray(mask, dims=("y", "x"), coords={"y": after.y, "x": after.x})


def _pixel_box(rows: slice, cols: slice) -> Polygon:
    return box(X0 + cols.start * RES, Y0 - rows.stop * RES, X0 + cols.stop * RES, Y0 - rows.start * RES)


@pytest.fixture
def polygons() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"polygon_id": [1], "first_seen": ["2024-01-28T10:38:00Z"],
         "last_clear_before": ["2024-01-10T10:41:00Z"], "area_ha": [0.27]},
        geometry=[_pixel_box(BURN_ROWS, BURN_COLS)], crs=CRS,
    )


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def _pair(before, after, clear, polygons, *, simulated: bool):
    earlier = polygons.assign(polygon_id=[0], geometry=[_pixel_box(slice(5, 12), slice(60, 70))])
    return before_after_figure(before, after, before_clear=clear, after_clear=clear, title="Test village",
                               caption=CAPTION, simulated=simulated, aoi_outline=_pixel_box(slice(2, 58), slice(2, 78)),
                               polygons_new=polygons, polygons_earlier=earlier)


def test_false_colour_puts_nir_in_red_channel(after):
    rgb, stretch = false_colour(after)
    assert rgb.shape == (H, W, 3)
    assert np.all((rgb >= 0) & (rgb <= 1))
    vegetated = rgb[50, 70]  # high NIR, low red reflectance
    assert vegetated[0] > vegetated[1] and vegetated[0] > vegetated[2]
    assert rgb[27, 40].sum() < vegetated.sum()  # the burn is dark
    np.testing.assert_array_equal(rgb[0, 0], [0.5, 0.5, 0.5])  # unobserved: mid grey
    lo, hi = np.nanpercentile(after.sel(band="nir").values, [2, 98])
    assert stretch[0] == pytest.approx((lo, hi), rel=1e-5)


def test_joint_stretch_is_shared_and_keeps_unchanged_ground_identical(before, after):
    stretch = joint_stretch(before, after)
    assert stretch == joint_stretch(after, before)
    rgb_before, used_before = false_colour(before, stretch=stretch)
    rgb_after, used_after = false_colour(after, stretch=stretch)
    assert used_before == used_after == stretch
    np.testing.assert_array_equal(rgb_before[50:, 60:], rgb_after[50:, 60:])
    assert not np.allclose(rgb_before[BURN_ROWS, BURN_COLS], rgb_after[BURN_ROWS, BURN_COLS])


def test_pair_figure_panels_share_one_stretch(before, after, clear, polygons):
    fig = _pair(before, after, clear, polygons, simulated=False)
    scenes = [ax.get_images()[0].get_array() for ax in fig.axes]
    np.testing.assert_array_equal(scenes[0][50:, 60:], scenes[1][50:, 60:])


@pytest.mark.slow
def test_pair_figure_renders_with_labels_outlines_and_times(before, after, clear, polygons):
    fig = _pair(before, after, clear, polygons, simulated=True)
    FigureCanvasAgg(fig).draw()
    texts = _texts(fig)
    assert any(SIMULATED_LABEL in t for t in texts)
    assert sum(t == SIMULATED_LABEL for t in texts) >= 2 * len(fig.axes)  # on every panel
    assert any(t.startswith(SIMULATED_LABEL) for t in texts if "Test village" in t)
    assert " ".join(CAPTION.split()) in [" ".join(t.split()) for t in texts]
    titles = [" ".join(t.get_text().split()) for t in fig.texts if t.get_text().startswith(("Before", "After"))]
    assert len(titles) == 2
    assert "2024-01-28 10:38 UTC (10:38 local, UTC+0)" in titles[1] and "20240128_103800_2412" in titles[1]
    assert "2024-01-10 10:41 UTC" in titles[0]
    before_ax, after_ax = fig.axes
    assert before_ax.get_position().y0 > after_ax.get_position().y1  # before above after, in one column
    outlines = {c.get_gid(): c for c in fig.axes[1].collections if isinstance(c, LineCollection)}
    assert len(outlines["polygons_new"].get_segments()) == 1
    assert len(outlines["polygons_earlier"].get_segments()) == 1
    assert "EPSG:32630" in fig.axes[0].get_xlabel()


def test_no_simulated_label_on_real_data(before, after, clear, polygons):
    fig = _pair(before, after, clear, polygons, simulated=False)
    assert not any("SIMULATED" in t.upper() for t in _texts(fig))


@pytest.mark.slow
def test_overlay_figure_saves_a_non_uniform_png(after, clear, polygons, tmp_path):
    fig = overlay_figure(after, polygons_new=polygons, after_clear=clear, title="Test village",
                         caption=CAPTION, simulated=True)
    out = tmp_path / "overlay.png"
    fig.savefig(out)
    pixels = mpimg.imread(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 100
    assert pixels[..., :3].std() > 0.05
    assert any(isinstance(c, LineCollection) and c.get_gid() == "polygons_new" for c in fig.axes[0].collections)


def test_local_time_across_midnight(after, polygons):
    late = after.copy()
    late.attrs["acquired"] = "2024-01-28T23:30:00Z"
    fig = overlay_figure(late, polygons_new=polygons, title="t", caption="c", simulated=False, tz_name="Asia/Kolkata")
    assert any("2024-01-28 23:30 UTC (2024-01-29 05:00 local, UTC+5:30)" in " ".join(t.get_text().split())
               for t in fig.texts)


def test_errors_name_the_problem(before, after, polygons):
    with pytest.raises(SceneError, match="nir"):
        false_colour(after.sel(band=["blue", "green", "red"]))
    with pytest.raises(ParameterError, match="high > low"):
        false_colour(after, stretch=((0.1, 0.1), (0, 1), (0, 1)))
    naive = after.copy()
    naive.attrs["acquired"] = "2024-01-28T10:38:00"
    with pytest.raises(ParameterError, match="UTC"):
        overlay_figure(naive, polygons_new=polygons, title="t", caption="c", simulated=False)
    with pytest.raises(ParameterError, match="IANA"):
        overlay_figure(after, polygons_new=polygons, title="t", caption="c", simulated=False, tz_name="Mali")
    with pytest.raises(ParameterError, match="to_crs"):
        overlay_figure(after, polygons_new=polygons.to_crs("EPSG:4326"), title="t", caption="c", simulated=False)
    with pytest.raises(ParameterError, match="same grid"):
        before_after_figure(before, after, after_clear=xr.DataArray(np.ones((3, 3), bool), dims=("y", "x")),
                            title="t", caption="c", simulated=False)
    with pytest.raises(ParameterError, match="same grid"):  # right shape, but shifted one pixel east
        overlay_figure(after, polygons_new=polygons, after_clear=xr.ones_like(after.isel(band=0), dtype=bool)
                       .assign_coords(x=after.x + RES), title="t", caption="c", simulated=False)


def test_change_map_marks_its_thresholds_and_timeline_marks_unusable_scenes():
    from datetime import datetime, timezone

    from pipeline.outputs.figures import change_map_figure, timeline_figure

    delta = np.zeros((60, 80), np.float32)
    delta[20:30, 20:40] = 0.2
    delta[:5] = np.nan  # not observed
    x = 500000 + 3 * np.arange(80) + 1.5
    y = 1500000 - 3 * np.arange(60) - 1.5
    da = xr.DataArray(delta, dims=("y", "x"), coords={"y": y, "x": x}, attrs={"crs": "EPSG:32630"})
    fig = change_map_figure(da, seed_threshold=0.08, grow_threshold=0.04, background=0.0, index_name="nir",
                            title="t", caption="the caption", simulated=True)
    bar = fig.axes[-1]
    assert sorted(round(line.get_xdata()[0], 3) for line in bar.lines) == [0.0, 0.04, 0.08]
    label = " ".join(bar.get_xlabel().split())
    assert "dashed: grow threshold" in label and "solid: seed threshold" in label
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert "SIMULATED DATA" in texts and "the caption" in texts
    times = [datetime(2024, 1, d, 10, 38, tzinfo=timezone.utc) for d in (26, 27, 28)]
    fig = timeline_figure(times, settlement_ha=[0, 0, 3.5], other_ha=[0, 0.5, 0], clear_fraction=[1.0, 0.3, 0.99],
                          usable=[True, False, True], title="t", caption="c", simulated=False, tz_name="Africa/Bamako")
    ax, clear_ax = fig.axes
    heights = [round(p.get_height(), 2) for p in ax.patches]
    assert heights == [0, 0, 3.5, 0, 0.5, 0]  # settlement bars, then the outside bars stacked on them
    crosses = [line for line in clear_ax.lines if line.get_marker() == "x"]
    assert list(crosses[0].get_xdata()) == [1]  # the unusable 27 January scene is marked
    assert all("SIMULATED" not in t.get_text() for t in fig.texts)


def test_natural_colour_needs_the_visible_bands():
    from pipeline.outputs.figures import NATURAL_BANDS

    data = np.random.default_rng(0).uniform(0.05, 0.4, (3, 30, 40)).astype(np.float32)
    x = 500000 + 3 * np.arange(40) + 1.5
    y = 1500000 - 3 * np.arange(30) - 1.5
    scene = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": ["green", "red", "nir"], "y": y, "x": x},
                         attrs={"acquired": "2024-01-28T10:38:00Z", "scene_id": "s", "crs": "EPSG:32630"})
    with pytest.raises(SceneError, match="blue"):
        before_after_figure(scene, scene, title="t", caption="c", simulated=False, bands=NATURAL_BANDS)
    with_blue = xr.concat([scene, scene.isel(band=[0]).assign_coords(band=["blue"])], dim="band")
    fig = before_after_figure(with_blue, with_blue, title="t", caption="c", simulated=False, bands=NATURAL_BANDS)
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (30, 40, 3)


def _smallest_print_size(fig, width_cm: float = 8.0) -> tuple[float, str]:
    """The smallest visible text of ``fig`` in points once the whole figure is printed ``width_cm`` wide."""
    FigureCanvasAgg(fig).draw()
    scale = width_cm / (fig.get_figwidth() * 2.54)
    sizes = [(t.get_fontsize() * scale, t.get_text()) for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes)


@pytest.mark.slow
def test_every_figure_stays_readable_printed_one_column_wide(before, after, clear, polygons):
    from datetime import datetime, timezone

    from pipeline.outputs.figures import MIN_PRINT_PT, change_map_figure, timeline_figure

    delta = xr.DataArray(np.linspace(-0.1, 0.3, H * W, dtype=np.float32).reshape(H, W), dims=("y", "x"),
                         coords={"y": before.y, "x": before.x}, attrs={"crs": "EPSG:32630"})
    times = [datetime(2024, 1, d, 10, 38, tzinfo=timezone.utc) for d in range(20, 32)]  # 12 acquisitions
    figures = {
        "pair": _pair(before, after, clear, polygons, simulated=True),
        "overlay": overlay_figure(after, polygons_new=polygons, after_clear=clear, title="t", caption=CAPTION,
                                  simulated=True),
        "change": change_map_figure(delta, seed_threshold=0.08, grow_threshold=0.04, background=0.0, index_name="bai",
                                    title="t", caption=CAPTION, simulated=True, polygons_new=polygons),
        "timeline": timeline_figure(times, settlement_ha=[1.0] * 12, other_ha=[0.2] * 12, clear_fraction=[0.9] * 12,
                                    usable=[True] * 12, title="t", caption=CAPTION, simulated=True),
    }
    for name, fig in figures.items():
        size, text = _smallest_print_size(fig)
        assert size >= MIN_PRINT_PT, f"{name}: {text!r} prints at {size:.1f} pt in an 8 cm column"
        assert fig.dpi >= 300, f"{name}: {fig.dpi} dpi is below print resolution"


@pytest.mark.slow
def test_figures_save_as_png_and_pdf_without_time_stamps(after, clear, polygons, tmp_path):
    from pipeline.outputs.write import save_figure

    fig = overlay_figure(after, polygons_new=polygons, after_clear=clear, title="t", caption="c", simulated=False)
    png, pdf = save_figure(tmp_path / "a.png", fig, root=tmp_path), save_figure(tmp_path / "a.pdf", fig, root=tmp_path)
    assert pdf.read_bytes().startswith(b"%PDF") and b"CreationDate" not in pdf.read_bytes()
    assert abs(mpimg.imread(png).shape[1] - fig.get_figwidth() * 300) < 1  # 8 cm at 300 dpi
    assert save_figure(tmp_path / "b.pdf", fig, root=tmp_path).read_bytes() == pdf.read_bytes()
    with pytest.raises(ValueError, match="png or .pdf"):
        save_figure(tmp_path / "a.jpg", fig, root=tmp_path)


@pytest.mark.slow
@pytest.mark.forks
def test_figures_saved_in_forked_processes_are_the_bytes_saved_one_by_one(tmp_path):
    from matplotlib.figure import Figure

    from pipeline.outputs.write import save_figure, save_figures

    figures = []
    for i in range(5):
        fig = Figure(figsize=(2, 2), dpi=100)
        fig.add_subplot().plot([0, 1, 2], [i, 2 * i, i * i])
        figures.append(fig)
    names = [f"f{i}.png" if i % 2 else f"f{i}.pdf" for i in range(5)]
    together = save_figures([(tmp_path / "a" / n, f) for n, f in zip(names, figures)], root=tmp_path, workers=2)
    alone = [save_figure(tmp_path / "b" / n, f, root=tmp_path) for n, f in zip(names, figures)]
    assert [p.name for p in together] == names
    assert [p.read_bytes() for p in together] == [p.read_bytes() for p in alone]
