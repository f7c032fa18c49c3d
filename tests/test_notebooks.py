"""The notebooks run top to bottom with no network, on the demo and on a real fire: the walkthrough on the
AOI's own scenes with an image after every stage, the review on a finished run without running anything."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import nbformat
import pytest
from nbclient import NotebookClient

from factories import copy_small_run, run_cli, tree_digest
from smallaoi import AOI_NAME

pytestmark = pytest.mark.slow  # each test executes a notebook top to bottom

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REAL_EVENT = "5_INCIDENT_20240715"  # the real grass-fire pair of tests/test_real_detect.py

# Run first in the review notebook's kernel: any detection stage, or a whole run, stops the notebook.
_NO_DETECTION = """
import pipeline.chunked, pipeline.run, pipeline.stages.coregister, pipeline.stages.dating

def _forbidden(*args, **kwargs):
    raise AssertionError('review.ipynb ran detection again')

for _module, _names in ((pipeline.run, ('run_detect', 'detect_burns', 'calibrate', 'apply', 'coregister', 'date_burns')),
                        (pipeline.chunked, ('detect_burns', 'calibrate')),
                        (pipeline.stages.coregister, ('coregister',)), (pipeline.stages.dating, ('date_burns',))):
    for _name in _names:
        if hasattr(_module, _name):
            setattr(_module, _name, _forbidden)
"""


def _execute(name: str, monkeypatch, env: dict[str, str], *, first: str = "", decisions: str = "") -> nbformat.NotebookNode:
    """Execute a notebook with ``env``; ``first`` runs before its first cell, ``decisions`` replaces its decisions cell."""
    for key in ("BURNSCAN_SCENES", "BURNSCAN_RUN", "BURNSCAN_REVIEWER"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not any(c.get("outputs") for c in notebook.cells), f"{name} is kept with its outputs: strip them"
    if decisions:  # into the cell tagged for them (a notebook without one gets them at its end)
        cells = [c for c in notebook.cells if "decisions" in c.metadata.get("tags", [])]
        if cells:
            cells[0].source = decisions
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(decisions))
    if first:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(first))
    # A cell's printed lines reach the client on another channel than its end: on a busy machine they can come
    # seconds after it, and the client's default wait (4 s) would drop them without a word. Wait as long as a
    # cell may run, and fail loudly rather than read a cut output.
    NotebookClient(notebook, timeout=600, iopub_timeout=600, raise_on_iopub_timeout=True, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def _text(notebook: nbformat.NotebookNode, *, stderr: bool = True) -> str:
    """Everything the cells printed and displayed; without ``stderr``, what they said to the reader only.

    A kernel's stderr carries the library warnings of the moment, each with the line of the cell
    that was running when it came, which can be the line that prints the SIMULATED banner.
    """
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if stderr or output.get("name") != "stderr":
                parts.append(output.get("text", ""))
            parts.extend(str(v) for k, v in output.get("data", {}).items() if k != "image/png")
    return "\n".join(parts)


def _stderr(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []) if o.get("name") == "stderr")


def _images(notebook: nbformat.NotebookNode, marker: str = "") -> int:
    """PNG images shown by the cells whose source contains ``marker``."""
    return sum("image/png" in o.get("data", {}) for c in notebook.cells if marker in c.source for o in c.get("outputs", []))


def _offline(notebook: nbformat.NotebookNode) -> None:
    """Nothing in the outputs would reach the network when opened: no map tiles, scripts or links to load."""
    shown = _text(notebook).lower()
    assert "leaflet" not in shown and "<script" not in shown and "http://" not in shown and "https://" not in shown


def _stage_images(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """Images after each stage of the walkthrough, by the call that draws them."""
    markers = {"loaded": "the scenes as loaded", "co-registration": "'after co-registration'",
               "normalisation": "'after normalisation'", "index": "burn index (", "change": "change since the last clear",
               "mask": "burn mask:", "polygons": "burn polygons over the after scene"}
    return {stage: _images(notebook, marker) for stage, marker in markers.items()}


def _runs(out_root: Path, aoi: str) -> list[str]:
    return sorted(p.name for p in (out_root / aoi).iterdir() if p.is_dir())


def test_walkthrough_runs_every_stage_with_an_image_on_the_simulated_demo(small_run, tmp_path, monkeypatch):
    notebook = _execute("walkthrough.ipynb", monkeypatch, {  # on the session run's demo scenes, read only
        "BURNSCAN_AOI": AOI_NAME, "BURNSCAN_AOI_DIR": str(small_run.aoi_dir),
        "BURNSCAN_DATA": str(small_run.data_root), "BURNSCAN_OUT": str(tmp_path / "out")})
    images = _stage_images(notebook)
    assert all(n >= 1 for n in images.values()), images
    assert images["co-registration"] == 2  # the differences before/after the move, and the moved scenes
    text = _text(notebook)
    assert "SIMULATED DATA: the demo, because the AOI has no scenes" in text  # the visible banner
    assert "reliable True" in text and "index: nir" in text and "polygons," in text
    assert "structures in the footprint layer are burned" in text and "polygon(s) high" in text  # the evidence stage
    _offline(notebook)
    assert not (tmp_path / "out").exists()  # a walkthrough, not a run


def test_review_opens_the_finished_run_without_running_anything_and_records_decisions(small_run, tmp_path, monkeypatch):
    run = copy_small_run(small_run, tmp_path, data=True)
    polygons = gpd.read_file(run.run_dir / "burns_SIMULATED.geojson")
    rejected, confirmed = polygons.polygon_id.iloc[0], polygons.polygon_id.iloc[1]
    before = tree_digest(run.out_root)
    notebook = _execute("review.ipynb", monkeypatch, {
        "BURNSCAN_AOI": AOI_NAME, "BURNSCAN_DATA": str(run.data_root), "BURNSCAN_OUT": str(run.out_root),
        "BURNSCAN_REVIEWER": "N. Otebook"}, first=_NO_DETECTION,
        decisions=f"decide({rejected!r}, 'rejected', 'cloud shadow')\ndecide({confirmed!r}, 'confirmed')")
    assert tree_digest(run.out_root) == before  # no new run, nothing in the run changed
    text = _text(notebook)
    assert "SIMULATED DATA" in text and run.run_dir.name in text
    overlays = sorted((run.run_dir / "figures").glob("*_overlay_SIMULATED.png"))
    assert len(overlays) >= 2 and _images(notebook, "run_image(") == len(overlays)  # each date's pair, outlined
    assert "first seen (UTC)" in text and "confidence" in text and "structures" in text  # the polygon table
    decisions = json.loads((run.data_root / AOI_NAME / "reviews.json").read_text())["decisions"]
    assert [(d["polygon_id"], d["decision"], d["by"], d["reason"]) for d in decisions] == [
        (rejected, "rejected", "N. Otebook", "cloud shadow"), (confirmed, "confirmed", "N. Otebook", "")]
    kept = polygons.loc[polygons.polygon_id != rejected, "area_ha"].sum()
    assert "2 of" in text and "kept (not rejected)" in text and f"{kept:.4f}".rstrip("0") in text  # totals after them
    _offline(notebook)


def _real_aoi(shared_data: Path, tmp_path: Path, capsys) -> dict[str, str]:
    """The 5 Incident pair registered in a catalogue of its own, as burnscan add does it."""
    root = shared_data / "real" / "s2-calfire-prepost" / "set_a"
    if not (root / "pre_fire" / f"{REAL_EVENT}.tif").is_file():
        pytest.skip(f"{root} lacks the {REAL_EVENT} pair")
    aoi_dir = tmp_path / "aoi"
    aoi_dir.mkdir()
    ring = [[-119.7922, 35.7506], [-119.7736, 35.7506], [-119.7736, 35.7905], [-119.7922, 35.7905], [-119.7922, 35.7506]]
    (aoi_dir / "incident5.geojson").write_text(json.dumps({
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"display_name": "5 Incident (test)", "timezone": "America/Los_Angeles", "location_confidence": "test",
                       "location_source": "bounds of the CAL FIRE test pair", "band_map": "blue,green,red,nir,swir22",
                       "parameters": {"resolution_m": 20, "margin_m": 0}},
    }))
    for folder, when in (("pre_fire", "2024-06-01T18:00:00Z"), ("post_fire", "2024-08-30T18:00:00Z")):
        code, _, err = run_cli(capsys, "add", "incident5", str(root / folder / f"{REAL_EVENT}.tif"), "--acquired", when,
                               "--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir))
        assert code == 0, err
    return {"BURNSCAN_AOI": "incident5", "BURNSCAN_AOI_DIR": str(aoi_dir), "BURNSCAN_DATA": str(tmp_path / "data"),
            "BURNSCAN_OUT": str(tmp_path / "out")}


def test_walkthrough_and_review_on_a_real_fire(shared_data, tmp_path, monkeypatch, capsys):
    env = _real_aoi(shared_data, tmp_path, capsys)
    walkthrough = _execute("walkthrough.ipynb", monkeypatch, env)
    text = _text(walkthrough, stderr=False)  # the registered scenes, not the demo
    assert "SIMULATED" not in text and "2 scenes from" in text and "index: nbr" in text, (text, _stderr(walkthrough))
    images = _stage_images(walkthrough)
    assert all(n >= 1 for n in images.values()), images

    code, out, err = run_cli(capsys, "detect", "incident5", "--data", env["BURNSCAN_DATA"], "--aoi-dir", env["BURNSCAN_AOI_DIR"],
                             "--out", env["BURNSCAN_OUT"])
    assert code == 0, err
    out_root = Path(env["BURNSCAN_OUT"])
    runs, log = _runs(out_root, "incident5"), (out_root / "incident5" / "runs.log").read_text()
    polygons = gpd.read_file(out_root / "incident5" / runs[0] / "burns.geojson")
    assert len(polygons)
    review = _execute("review.ipynb", monkeypatch, {**env, "BURNSCAN_REVIEWER": "N. Otebook"}, first=_NO_DETECTION,
                      decisions=f"decide({polygons.polygon_id.iloc[0]!r}, 'confirmed')")
    assert _runs(out_root, "incident5") == runs and (out_root / "incident5" / "runs.log").read_text() == log
    text = _text(review, stderr=False)
    assert "SIMULATED" not in text and runs[0] in text
    assert _images(review, "run_image(") == 1  # the one pair, outlined
    assert "confirmed" in text and "1 of" in text
    _offline(review)

    code, _, err = run_cli(capsys, "detect", "incident5", "--data", env["BURNSCAN_DATA"], "--aoi-dir", env["BURNSCAN_AOI_DIR"],
                           "--out", env["BURNSCAN_OUT"], "--no-figures")
    assert code == 0, err
    bare = _execute("review.ipynb", monkeypatch, env, first=_NO_DETECTION)  # the new latest: a run without figures
    assert "made with --no-figures" in _text(bare)
    assert _images(bare, "run_image(") == 1  # its outlines instead, drawn from the polygons
