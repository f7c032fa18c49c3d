"""The README's "Real imagery" walk, as written, on the shared real files: from `burnscan add` to a figure to attach."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from matplotlib import image as mpimg
from rasterio.features import rasterize

from factories import readme_script

EVENT = "5_INCIDENT_20240715"


@pytest.mark.slow
def test_readme_real_imagery_walk_ends_with_a_figure_to_attach(shared_data, tmp_path):
    """add (times given, never guessed) -> scenes -> detect on the native 20 m grid -> verify -> view -> the
    outlined pair for one print column, with its caption, the imagery credit and the known answer of the fire."""
    import pipeline

    repo = Path(pipeline.__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_script("real-imagery-walk", sys.executable)], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("added: geotiff-5_INCIDENT_20240715-") == 2  # two files, one name: two scenes, ids from their bytes
    assert "2024-06-01 18:00 UTC (11:00 local, UTC-07:00)" in out  # the times given, in UTC and local
    assert "Sentinel-2 (declared)" in out  # the provider the files do not record, as the user declared it
    assert "analysis grid 20 m: the coarsest band the NBR index needs (swir22, 20 m)" in out
    assert ": verified: every file of the run folder" in out
    run = Path(out.split("outputs: ", 1)[1].splitlines()[0])
    assert run.is_relative_to(tmp_path) and (run / "review.html").is_file() and f"{run / 'review.html'}" in out
    overlay = next(line for line in out.splitlines() if line.endswith("_overlay.png"))
    pixels = mpimg.imread(overlay)
    assert pixels.shape[1] == round(89 / 25.4 * 300) and pixels.shape[0] <= 1.5 * pixels.shape[1]  # one print column
    report = json.loads((run / "report.json").read_text())
    assert not report["simulated"] and report["index"] == "nbr" and report["grid"]["resolution_m"] == 20.0
    # A shift the search found but could not trust was never applied: the scene tables say so, not a move of pixels.
    unreliable = [s["coregistration"] for s in report["scenes"] if not (s.get("coregistration") or {}).get("reliable", True)]
    for shown in ((run / "report.md").read_text(), (run / "report.html").read_text()):
        assert shown.count("not applied (no reliable match") == len(unreliable)
        assert all(f"{c['dy']:+.2f}, {c['dx']:+.2f}" not in shown for c in unreliable)
    burns = gpd.read_file(run / "burns.geojson")
    assert "simulated" not in burns and "description" not in json.loads((run / "burns.geojson").read_text())
    with rasterio.open(shared_data / "real" / "s2-calfire-prepost" / "set_a" / "masks" / f"{EVENT}.tif") as src:
        mask = src.read(1) > 0
        burned = rasterize(burns.to_crs(src.crs).geometry, out_shape=mask.shape, transform=src.transform) > 0
    dice = 2 * (burned & mask).sum() / (burned.sum() + mask.sum())
    print(f"README walk: {report['totals']['area_ha']:.1f} ha, Dice {dice:.3f} against the CAL FIRE perimeter")
    assert 110 <= report["totals"]["area_ha"] <= 160 and dice >= 0.93, dice
    assert np.isfinite(pixels).all()
    assert {s["sensor"] for s in report["scenes"]} == {"Sentinel-2 (declared)"}


def test_a_declared_provider_gives_a_plain_geotiff_its_credit(tmp_path):
    """A plain GeoTIFF does not say who made it: without --provider its figures ask for the credit its licence
    requires; with it, they carry that provider's own credit line."""
    from datetime import datetime, timezone

    from pipeline.model import SceneRecord
    from pipeline.outputs.run_figures import imagery_credit
    from pipeline.readers.geotiff import DECLARED_SENSORS, GeoTiffScene

    when = datetime(2024, 8, 30, 18, tzinfo=timezone.utc)
    for provider, credit in (("sentinel2", "Contains modified Copernicus Sentinel data 2024"),
                             ("planet", "Imagery \u00a9 2024 Planet Labs PBC"),
                             ("landsat", "Landsat imagery courtesy of the U.S. Geological Survey (2024)"),
                             (None, "Imagery: export (provider not recorded in the file; credit it as its licence requires)")):
        sensor = GeoTiffScene(tmp_path / "export.tif", bands=["red", "green", "nir"], acquired=when, provider=provider).sensor
        assert sensor == (DECLARED_SENSORS[provider] if provider else "unknown")
        assert imagery_credit([SceneRecord("export", when, "unknown", sensor, False, ("red", "green", "nir"))]) == credit
