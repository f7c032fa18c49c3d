"""The spectral test through the command line: a darkening of the NIR is a burn only when the other bands agree.

Known answers built from the physics (pipeline/stages/spectral.py): char darkens every band;
white ash brightens the visible bands but is flat like char; leaf drop raises the red while the
NIR falls and keeps a red edge; wet soil darkens every band in proportion. Each is built into a
pair of plain GeoTIFF exports of one textured savanna and run through the command line, so
that a change of the flow, not only of the stage, is what is checked (the stage alone:
tests/test_spectral.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from factories import PAIR_BANDS, PAIR_TIMES, savanna_ground, write_square_aoi
from pipeline.cli import main
from smallaoi import LAT, LON

AOI = "spectralpair"
SIZE, RES = 240, 3.0
# Band order blue, green, red, NIR; spectra of pipeline/sim/materials.py and the tree.
CHAR = (0.04, 0.04, 0.05, 0.06)
TREE = (0.04, 0.07, 0.08, 0.34)  # a tree in leaf over the courtyard
BARE_TREE = (0.07, 0.10, 0.11, 0.22)  # the same tree once its leaves fell: NIR 0.34 -> 0.22, red 0.08 -> 0.11
GREEN_GRASS = (0.05, 0.08, 0.10, 0.36)  # green grass or a crop, before the fire
GREY_ASH = (0.13, 0.135, 0.14, 0.145)  # white ash mixed with char: brighter visible bands, flat to the NIR
# Rows and columns of each patch on the 240-pixel exports (the AOI is the middle 100 pixels).
PATCHES = {
    "char": (slice(95, 110), slice(95, 110)),
    "leaf_drop": (slice(95, 110), slice(110, 120)),  # touching the char: one patch of change
    "ash": (slice(125, 140), slice(95, 110)),
    "wet_soil": (slice(125, 140), slice(125, 140)),
}
PIXEL_HA = RES * RES / 1e4


def _set(image: np.ndarray, where: tuple[slice, slice], spectrum: tuple[float, ...], seed: int) -> None:
    noise = np.random.default_rng(seed).normal(0, 0.004, (4, *image[:, where[0], where[1]].shape[1:]))
    image[:, where[0], where[1]] = np.asarray(spectrum)[:, None, None] + noise


def _write_pair(root: Path) -> tuple[Path, list[Path]]:
    """An AOI and two 4-band exports: the savanna on both dates; on the second, char beside a tree that shed
    its leaves, a white-ash burn of green grass, and a patch of soil darkened by rain."""
    aoi_dir = write_square_aoi(root / "aoi", AOI, LON, LAT, 150.0, "Africa/Bamako")
    cx, cy = Transformer.from_crs("EPSG:4326", "EPSG:32630", always_xy=True).transform(LON, LAT)
    transform = Affine(RES, 0, round(cx) - SIZE * RES / 2, 0, -RES, round(cy) + SIZE * RES / 2)
    (root / "exports").mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(2):
        image = np.tile(savanna_ground(k + 2), (1, 2, 2))[:, :SIZE, :SIZE]
        if k == 0:
            _set(image, PATCHES["leaf_drop"], TREE, 10)
            _set(image, PATCHES["ash"], GREEN_GRASS, 11)
        else:
            _set(image, PATCHES["char"], CHAR, 12)
            _set(image, PATCHES["leaf_drop"], BARE_TREE, 13)
            _set(image, PATCHES["ash"], GREY_ASH, 14)
            rows, cols = PATCHES["wet_soil"]
            image[:, rows, cols] *= 0.5  # wet soil: every band darker by the same factor (Lobell & Asner 2002)
        path = root / "exports" / f"export_{k + 1}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=4, dtype="uint16", nodata=0,
                           crs="EPSG:32630", transform=transform) as dst:
            dst.write(np.clip(image * 10000, 1, 65535).astype(np.uint16))
        paths.append(path)
    return aoi_dir, paths


@pytest.fixture(scope="module")
def spectral_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("spectral")
    aoi_dir, paths = _write_pair(root)
    data, out = root / "data", root / "out"
    for path, when in zip(paths, PAIR_TIMES):
        assert main(["-q", "add", AOI, str(path), "--bands", PAIR_BANDS, "--acquired", when, "--data", str(data),
                     "--aoi-dir", str(aoi_dir)]) == 0
    assert main(["-q", "detect", AOI, "--data", str(data), "--out", str(out), "--aoi-dir", str(aoi_dir),
                 "--no-figures"]) == 0
    run = next(p for p in (out / AOI).iterdir() if p.is_dir() and not p.is_symlink())
    polygons = json.loads(next(run.glob("*.geojson")).read_text())
    return {"report": json.loads((run / "report.json").read_text()), "polygons": polygons, "run": run}


def test_only_the_char_and_the_white_ash_are_burns(spectral_run):
    # The char (225 px) and the ash (225 px); not the tree beside the char (150 px), nor the wet soil (225 px).
    report = spectral_run["report"]
    burned_px = report["totals"]["area_ha"] / PIXEL_HA
    assert 400 <= burned_px <= 480, report["totals"]
    features = spectral_run["polygons"]["features"]
    assert len(features) == 2
    assert {f["properties"]["spectral_test"] for f in features} == {"fire-like"}
    assert all(f["properties"]["spectral_reason"] for f in features)


def test_leaf_drop_and_wet_soil_are_listed_as_non_fire_change_with_their_reasons(spectral_run):
    not_fire = spectral_run["report"]["nonfire"]
    assert len(not_fire["changes"]) == 2
    leaf, wet = sorted(not_fire["changes"], key=lambda c: "proportion" in c["reason"])
    assert "red rose while the NIR fell" in leaf["reason"] and "leaf drop" in leaf["reason"]
    assert "in proportion" in wet["reason"] and "wet soil" in wet["reason"]
    assert 110 <= leaf["area_ha"] / PIXEL_HA <= 160  # the tree: 150 px, its mixed rim peeled
    assert 200 <= wet["area_ha"] / PIXEL_HA <= 250  # the wet soil: 225 px
    assert "not counted" in spectral_run["report"]["summary"]
    markdown = (spectral_run["run"] / "report.md").read_text()
    assert "## Non-fire change (not counted)" in markdown and "leaf drop" in markdown


@pytest.mark.slow
def test_the_chunked_analysis_sets_the_same_changes_aside(tmp_path):
    # Large areas go chunk by chunk (pipeline/chunked.py): the spectral test runs in every chunk too.
    from datetime import datetime, timezone

    from pipeline.chunked import detect_chunked
    from pipeline.config import Params
    from pipeline.grid import Grid
    from pipeline.readers.recognise import recognise

    _, paths = _write_pair(tmp_path)
    times = [datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(timezone.utc) for t in PAIR_TIMES]
    sources = [s for path, when in zip(paths, times) for s in recognise(path, bands=PAIR_BANDS, acquired=when)]
    with rasterio.open(paths[0]) as src:
        grid = Grid("EPSG:32630", src.transform, src.width, src.height)
    polygons = detect_chunked(sources, grid, params=Params(), chunk_px=128, halo_px=16, scheduler="sync").polygons
    assert len(polygons) == 2 and set(polygons["spectral_test"]) == {"fire-like"}
    assert 400 <= polygons["n_pixels"].sum() <= 480  # the char and the ash; not the tree beside the char, not the wet soil
