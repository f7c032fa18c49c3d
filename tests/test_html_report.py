"""report.html: one self-contained page; checked as a file, and in headless Chromium where one is installed."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture
def page(small_run) -> Path:
    """report.html of the session's small run (tests/conftest.py), which has figures to embed."""
    return small_run.run_dir / "report.html"


def test_report_html_is_self_contained_and_complete(page):
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from the network
    # screen copies: PNG, or JPEG for scene pairs that PNG cannot compress (tests/test_report_honesty.py)
    images = re.findall(r'src="data:image/(png|jpeg);base64,([^"]+)"', html)
    figures = sorted((page.parent / "figures").glob("*.png"))
    assert len(images) == len(figures) > 0  # every figure of the run is embedded
    for kind, data in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format=kind)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and np.std(pixels) > 0.05  # decodes, and is not blank
    order = [html.index(s) for s in ("SIMULATED DATA: this report reads scenes marked as simulated", 'class="summary"', "Date by date", "Polygons (",
                                     "Scenes and their quality", "Parameters", "Provenance")]
    assert order == sorted(order)  # summary first, provenance last
    assert "not visible on the clear scene of" in html and "ha burned in the AOI" in html


def test_each_screen_copy_is_the_copy_of_its_print_file(page):
    """The run makes each copy from the pixels it has just drawn, not from the PNG it wrote: the same copy."""
    from pipeline.outputs.html_report import screen_copy

    html = page.read_text(encoding="utf-8")
    figures = sorted((page.parent / "figures").glob("*.png"))
    assert figures
    for png in figures:
        mime, data = screen_copy(png.read_bytes())
        name = f"figures/{png.name}"
        assert f'alt="{name}" src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}"' in html, name


@pytest.mark.parametrize("factor", [2, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_screen_copies_shrink_by_the_block_mean_bit_for_bit(factor, dtype):
    """The faster block mean gives the reduction's numbers exactly, so every copy keeps its bytes."""
    from pipeline.outputs.html_report import _block_mean

    rng = np.random.default_rng(factor)
    rgba = rng.integers(0, 256, (1577, 1053, 4), dtype=np.uint8)  # edges that are not whole blocks
    pixels = np.divide(rgba, 255, dtype=dtype)[..., :3]
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    reduced = pixels[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))
    shrunk = _block_mean(pixels, factor)
    assert shrunk.dtype == reduced.dtype and shrunk.shape == reduced.shape
    np.testing.assert_array_equal(shrunk, reduced)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed; `make browser-test` installs Debian's chromium and runs this")
def test_report_html_in_headless_chromium(page, tmp_path):
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    images = re.search(r'data-images="(\d+)/(\d+)"', dom.stdout)
    assert images and images.group(1) == images.group(2) != "0", dom.stderr[-2000:]
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []
    shot = tmp_path / "report.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()], capture_output=True, timeout=120)
    pixels = mpimg.imread(shot)
    assert pixels.std() > 0.02  # not a blank page
    out = Path(__file__).resolve().parent.parent / "out" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, out / "report_html.png")
