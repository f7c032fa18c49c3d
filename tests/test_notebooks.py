"""The notebooks run top to bottom on the demo of a small AOI, with no network, and the review sticks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from smallaoi import AOI_NAME, write_small_aoi

pytestmark = pytest.mark.slow  # each test executes a notebook top to bottom, a full run inside

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _execute(name: str, tmp_path: Path, monkeypatch, reviewer: str = "") -> nbformat.NotebookNode:
    monkeypatch.setenv("BURNSCAN_AOI", AOI_NAME)
    monkeypatch.setenv("BURNSCAN_AOI_DIR", str(write_small_aoi(tmp_path / "aoi")))
    monkeypatch.setenv("BURNSCAN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BURNSCAN_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("BURNSCAN_REVIEWER", reviewer)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


def test_review_notebook_maps_the_run_and_a_rejection_appears_in_the_next_report(tmp_path, monkeypatch):
    notebook = _execute("review.ipynb", tmp_path, monkeypatch, reviewer="N. Otebook")
    text = _text(notebook)
    assert "SIMULATED DATA" in text and "not visible on the clear scene of" in text
    # The map is the run's offline review page in an iframe (no Leaflet from a CDN): drawn, and naming nothing to fetch.
    maps = [str(v) for c in notebook.cells for o in c.get("outputs", []) for v in o.get("data", {}).values()
            if '<iframe srcdoc="' in str(v)]
    assert len(maps) == 1 and "&lt;svg id=&quot;map&quot;" in maps[0] and "burn polygon" in maps[0]
    assert "http://" not in maps[0] and "https://" not in maps[0]
    assert sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", [])) >= 2
    reports = sorted((tmp_path / "out" / AOI_NAME).glob("*/report.json"))
    assert len(reports) == 2  # the first run, then the run after the decision
    review = json.loads(reports[-1].read_text())["review"]
    assert review["n_reviewed"] == 1 and review["decisions"][0]["by"] == "N. Otebook"
    assert review["decisions"][0]["reason"] == "cloud shadow"


def test_walkthrough_notebook_runs_every_stage(tmp_path, monkeypatch):
    text = _text(_execute("walkthrough.ipynb", tmp_path, monkeypatch))
    assert "reliable True" in text and "index: nir" in text and "polygons," in text and "report.html" in text
    assert "structures in the footprint layer are burned" in text and "polygon(s) high" in text  # the evidence stage
