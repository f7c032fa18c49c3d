"""review.html and `burnscan view`: the offline review page, drawn in the analysis grid.

The page must open without a network (nothing it names is fetched) and its outlines must sit
on the pixels they were traced from at any latitude: checked on a run at 65 N in UTM zone 6N,
where a projected scene laid on its lon/lat box drifts off the outlines by tens of metres.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
import subprocess
import sys
import webbrowser
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from affine import Affine
from matplotlib import image as mpimg

from factories import run_cli, savanna_ground, write_square_aoi

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
LON, LAT = -145.0, 65.0  # interior Alaska: UTM zone 6N, 2 degrees east of its central meridian (147 W)
BURN_ROWS, BURN_COLS = slice(90, 110), slice(80, 105)  # the burned patch, in the scene files' pixels
FILE_RES = 3.0


@pytest.fixture(scope="module")
def tundra(tmp_path_factory) -> dict:
    """A real-like run at 65 N: three Planet-style scenes in EPSG:32606, a 20 x 25 px patch burned on the last."""
    from pipeline.aoi import load_aoi
    from pipeline.run import run_detect

    root = tmp_path_factory.mktemp("tundra")
    aoi_dir = write_square_aoi(root / "aoi", "tundra", LON, LAT, 150.0, "America/Anchorage")
    aoi = load_aoi("tundra", aoi_dir)
    left, _, _, top = aoi.analysis_grid(3.0).bounds
    origin = (left - 150.0, top + 150.0)  # the files reach 150 m beyond the grid on every side
    scenes = root / "scenes"
    scenes.mkdir()
    for k in range(3):
        data = savanna_ground(k + 2)
        if k == 2:  # ash: dark in every band, darkest in NIR
            data[:, BURN_ROWS, BURN_COLS] *= np.array([0.4, 0.4, 0.35, 0.25])[:, None, None]
        scene_id = f"2024070{k + 1}_210000_s{k}"
        with rasterio.open(scenes / f"{scene_id}_3B_AnalyticMS_SR.tif", "w", driver="GTiff", width=200, height=200, count=4,
                           dtype="uint16", nodata=0, crs=aoi.utm_crs,
                           transform=Affine(FILE_RES, 0, origin[0], 0, -FILE_RES, origin[1])) as dst:
            dst.write(np.clip(data * 10000, 1, 65535).astype(np.uint16))
        (scenes / f"{scene_id}_metadata.json").write_text(json.dumps(
            {"properties": {"acquired": f"2024-07-0{k + 1}T21:00:00Z", "satellite_id": "x"}}))
    outcome = run_detect("tundra", out_root=root / "out", data_root=root / "data", aoi_dir=aoi_dir, scenes_dir=scenes)
    burn = (origin[0] + BURN_COLS.start * FILE_RES, origin[1] - BURN_ROWS.stop * FILE_RES,
            origin[0] + BURN_COLS.stop * FILE_RES, origin[1] - BURN_ROWS.start * FILE_RES)
    return {"root": root, "run_dir": outcome.run_dir, "crs": aoi.utm_crs, "burn": burn, "outcome": outcome}


def _attrs(tag: str) -> dict[str, str]:
    return dict(re.findall(r'([\w:-]+)="([^"]*)"', tag))


def _element(html: str, name: str, element_id: str) -> dict[str, str]:
    tag = re.search(rf'<{name}\b[^>]*\bid="{element_id}"[^>]*>', html)
    assert tag, f"no <{name} id={element_id}> in the page"
    return _attrs(tag.group())


def _path_points(d: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]).reshape(-1, 2)


def test_outlines_and_image_agree_within_a_pixel_at_65_north(tundra):
    """Parse the page: the burn's outline (SVG path) and the burn in the image as placed agree within one pixel."""
    html = (tundra["run_dir"] / "review.html").read_text(encoding="utf-8")
    svg = _element(html, "svg", "map")
    assert svg["data-crs"] == tundra["crs"] == "EPSG:32606"  # drawn in the UTM grid, not on a lon/lat box
    a, b, c, d, e, f = (float(v) for v in svg["data-transform"].split(","))
    image, before = _element(html, "image", "after"), _element(html, "image", "before")
    png, png_before = (mpimg.imread(io.BytesIO(base64.b64decode(i["href"].split(",", 1)[1])), format="png") for i in (image, before))
    assert (image["x"], image["y"], image["width"], image["height"]) == (before["x"], before["y"], before["width"], before["height"])
    x0, y0, width, height = (float(image[k]) for k in ("x", "y", "width", "height"))
    sx, sy = width / png.shape[1], height / png.shape[0]  # page units per PNG pixel

    # The burn as the images show it: NIR (red in the composite) much darker after than before, on one stretch.
    rows, cols = np.nonzero(png[..., 0] < png_before[..., 0] - 0.25)
    image_box = np.array([x0 + cols.min() * sx, y0 + rows.min() * sy, x0 + (cols.max() + 1) * sx, y0 + (rows.max() + 1) * sy])

    paths = re.findall(r'<g class="burn [^"]*" data-id="([^"]+)"[^>]*>.*?<path d="([^"]+)" fill-rule', html, flags=re.S)
    assert len(paths) == 1, paths
    points = _path_points(paths[0][1])
    outline_box = np.array([*points.min(axis=0), *points.max(axis=0)])
    assert np.abs(outline_box - image_box).max() <= 1.0, (outline_box, image_box)

    # And both are where the ground burned: the patch written into the files, in page coordinates.
    left, bottom, right, top = tundra["burn"]
    truth = np.array([(left - c) / a, (top - f) / e, (right - c) / a, (bottom - f) / e])
    assert np.abs(outline_box - truth).max() <= 1.0, (outline_box, truth)
    assert np.abs(image_box - truth).max() <= 1.0, (image_box, truth)
    # The image fills the grid exactly: its edges are the grid's edges.
    assert (x0, y0) == (0.0, 0.0) and width == pytest.approx(float(svg["data-width"]), abs=1.0)
    assert svg["viewBox"] == f"0 0 {svg['data-width']} {svg['data-height']}"


def test_page_states_true_north_and_ground_scale_of_the_utm_grid(tundra):
    html = (tundra["run_dir"] / "review.html").read_text(encoding="utf-8")
    # Meridian convergence on the transverse Mercator: tan(gamma) = tan(dlon) sin(lat) (Snyder 1987, eq. 8-13
    # to first order), 2 degrees east of the central meridian: true north lies west of grid north.
    gamma = math.degrees(math.atan(math.tan(math.radians(2.0)) * math.sin(math.radians(LAT))))
    north = float(_element(html, "g", "north")["data-true-north-deg"])
    assert north == pytest.approx(-gamma, abs=0.02)
    assert f"true north is {gamma:.2f}&deg; west of grid north" in html
    # Scale factor k = k0 (1 + (dlon cos lat)^2 / 2) to first order (Snyder 1987, eq. 8-11), k0 = 0.9996.
    k = 0.9996 * (1 + (math.radians(2.0) * math.cos(math.radians(LAT))) ** 2 / 2)
    bar = _element(html, "g", "scale-bar")
    assert float(bar["data-length-px"]) * FILE_RES / float(bar["data-ground-m"]) == pytest.approx(k, abs=2e-5)
    assert "ground metres" in html and "SIMULATED" not in html  # real-like scenes are not labelled simulated


_NETWORK = [r"""\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""",  # attributes
            r"""url\(\s*["']?\s*(?!#|data:)""",  # CSS url() other than a local fragment or data:
            r"@import", r"\bimport\s*\(", r"\bfetch\s*\(", r"XMLHttpRequest", r"https?://", r"<link\b", r"<iframe\b"]


def _offline(html: str) -> None:
    for pattern in _NETWORK:
        found = re.search(pattern, html, flags=re.I)
        assert not found, f"{pattern!r} in the page: {html[max(0, found.start() - 80):found.end() + 80]!r}"
    for value in re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", html):
        assert value.startswith(("data:image/png;base64,", "#")), value[:80]
    assert "default-src 'none'" in html  # and the browser is told to fetch nothing else, should anything slip in


def test_review_page_names_nothing_to_fetch(tundra, small_run):
    for run_dir in (tundra["run_dir"], small_run.run_dir):
        html = (run_dir / "review.html").read_text(encoding="utf-8")
        _offline(html)
        assert html.count("data:image/png;base64,") >= 3  # the scenes are inside the page


def test_simulated_run_page_says_simulated(small_run):
    html = (small_run.run_dir / "review.html").read_text(encoding="utf-8")
    title = re.search(r"<title>(.*?)</title>", html).group(1)
    assert "SIMULATED" in title and 'class="warning">SIMULATED DATA' in html
    scenes = json.loads(re.search(r'id="scene-data">(.*?)</script>', html, flags=re.S).group(1))
    assert scenes and all("SIMULATED DATA" in s["caption"] for s in scenes)
    manifest = json.loads((small_run.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert "review.html" in {o["path"] for o in manifest["outputs"]}  # sealed and hashed with the run


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed; `make browser-test` installs Debian's chromium and runs this")
def test_review_page_runs_in_headless_chromium_with_the_network_blocked(tundra, tmp_path):
    page = tundra["run_dir"] / "review.html"
    # Every connection goes to a closed port and every host name fails: a page that needed the network would break.
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
              "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    attrs = _attrs(body.group())
    assert attrs.get("data-view") == "ready", dom.stderr[-2000:]  # the inline script ran
    assert attrs.get("data-images") == "3/3"  # every scene decoded
    assert attrs.get("data-shown") == "1" and attrs.get("data-date") == "2024-07-03T21:00:00Z"
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []
    shot = tmp_path / "review.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,1000", page.as_uri()], capture_output=True, timeout=180)
    pixels = mpimg.imread(shot)
    map_area = pixels[300:900, 50:800, :3]
    assert map_area.std() > 0.05  # the scene is drawn, not a blank or grey box


def test_view_prints_the_page_of_a_run_an_aoi_or_its_latest(tundra, capsys, monkeypatch):
    out = tundra["root"] / "out"
    page = (tundra["run_dir"] / "review.html").resolve()
    monkeypatch.chdir(tundra["root"])
    for run in (tundra["run_dir"], out / "tundra" / "latest", out / "tundra", "tundra"):
        code, stdout, err = run_cli(capsys, "view", run, "--no-open", "--out", out)
        assert (code, stdout.strip(), err) == (0, str(page), "")


def test_view_opens_the_default_browser_or_says_where_the_page_is(tundra, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    code, stdout, _ = run_cli(capsys, "view", tundra["run_dir"])
    page = (tundra["run_dir"] / "review.html").resolve()
    assert code == 0 and opened == [page.as_uri()] and stdout.strip() == f"opened {page}"
    # No browser (webbrowser finds none, or no display to show one on): the path, to open elsewhere.
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    code, stdout, _ = run_cli(capsys, "view", tundra["run_dir"])
    assert code == 0 and stdout.startswith(f"{page} (no browser") and "needs no network" in stdout
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(webbrowser, "open", lambda url: pytest.fail("a console browser cannot show the page"))
    assert run_cli(capsys, "view", tundra["run_dir"]).out.startswith(str(page))


@pytest.mark.parametrize("make, needle", [
    (lambda root: root / "nowhere", "not a finished run folder"),
    (lambda root: root / "scenes", "not a finished run folder"),
    (lambda root: "no-such-aoi", "not a finished run folder"),
])
def test_view_of_something_not_a_run_is_one_line(tundra, capsys, make, needle):
    run = make(tundra["root"])
    code, stdout, err = run_cli(capsys, "view", run, "--no-open", "--out", tundra["root"] / "out")
    assert code != 0 and stdout == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"burnscan: error: {run}: {needle}") and "give a run folder" in err


def test_view_of_a_run_without_its_page_says_how_to_get_one(tundra, capsys, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tundra["run_dir"], copy)
    (copy / "review.html").unlink()
    code, _, err = run_cli(capsys, "view", copy, "--no-open")
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert f"{copy}: this run has no review.html" in err and "without --no-figures" in err


def test_review_notebook_shows_the_run_s_own_page_read_through_its_manifest(tundra, monkeypatch):
    """What notebooks/review.ipynb shows: the run's review.html in an iframe srcdoc, read only as the manifest lists
    it (no re-run, no folium, nothing fetched); a page changed since the run is refused."""
    from html import unescape

    from pipeline.errors import IntegrityError
    from pipeline.readers.runs import open_run, run_review_page

    monkeypatch.setitem(sys.modules, "folium", None)  # as where it is not installed
    run = open_run(tundra["run_dir"], "tundra")
    frame = run_review_page(run)
    assert frame.startswith("<iframe srcdoc=") and frame.count("<iframe") == 1
    page = unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert page == (tundra["run_dir"] / "review.html").read_text(encoding="utf-8")
    _offline(page)
    paths = re.findall(r'<g class="burn [^"]*" data-id="([^"]+)"[^>]*>.*?<path d="([^"]+)" fill-rule', page, flags=re.S)
    assert [p[0] for p in paths] == list(run.polygons["polygon_id"])
    tampered = tundra["root"] / "tampered"
    shutil.copytree(tundra["run_dir"], tampered)
    (tampered / "review.html").write_text(page + "<!-- edited -->", encoding="utf-8")
    with pytest.raises(IntegrityError, match="review.html: does not match the SHA-256"):
        run_review_page(replace(run, run_dir=tampered))

def test_view_never_hands_out_a_page_edited_after_the_run(tundra, capsys, tmp_path):
    """The page was opened as it stood; the review notebook checked it against the manifest, view did not."""
    copy = tmp_path / "run"
    shutil.copytree(tundra["run_dir"], copy)
    page = copy / "review.html"
    page.write_text(page.read_text().replace("<body>", "<body><p>the analyst's conclusion, added later</p>", 1))
    code, stdout, err = run_cli(capsys, "view", copy, "--no-open")
    assert code != 0 and stdout == "" and len(err.strip().splitlines()) == 1
    assert str(page) in err and "SHA-256 in the manifest" in err and "burnscan verify" in err
