"""Review decisions: record, survive a re-run, show in the report, never cross from simulated to real."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import affinity
from shapely.geometry import Polygon, box

from pipeline import review as rv
from pipeline.errors import OutputError, ParameterError
from pipeline.provenance.verify import check_run
from pipeline.readers.rasters import sha256_file
from factories import copy_small_run, run_cli as _cli
from smallaoi import AOI_NAME


def _run(capsys, out_root: Path, data_root: Path, aoi_dir: Path) -> Path:
    code, out, err = _cli(capsys, "detect", AOI_NAME, "--aoi-dir", str(aoi_dir), "--out", str(out_root),
                          "--data", str(data_root), "--no-figures")
    assert code == 0, err
    return Path(out.strip().splitlines()[-1].split("outputs: ")[1])


@pytest.fixture(scope="module")
def first_run(small_run, tmp_path_factory):
    """A copy of the session's small run and of its data folder, which decisions and re-runs change."""
    return copy_small_run(small_run, tmp_path_factory.mktemp("review"), data=True)


def test_reject_then_rerun_shows_the_decision(first_run, capsys):
    out_root, data_root, aoi_dir, run = first_run.out_root, first_run.data_root, first_run.aoi_dir, first_run.run_dir
    burns = gpd.read_file(next(run.glob("burns*.geojson")))
    target = burns.iloc[0].polygon_id
    # pipes in free text, as a reviewer may type them: escaped in report.md's table, which keeps its five columns
    code, out, err = _cli(capsys, "review", AOI_NAME, target, "--reject", "cloud shadow | seen on the 31st", "--by", "A. Analyst",
                          "--out", str(out_root), "--data", str(data_root))
    assert code == 0 and out.startswith(f"rejected: {target} by A. Analyst"), err
    again = _run(capsys, out_root, data_root, aoi_dir)
    report = json.loads((again / "report.json").read_text())
    review = report["review"]
    assert review["n_reviewed"] == 1 and review["decisions"][0]["polygon_id"] == target
    assert review["decisions"][0] | {"at_utc": ""} == {"polygon_id": target, "decision": "rejected", "by": "A. Analyst",
                                                       "at_utc": "", "reason": "cloud shadow | seen on the 31st"}
    assert review["machine_output"]["n_polygons"] == len(burns)  # the machine output is shown unchanged
    new_burns = gpd.read_file(next(again.glob("burns*.geojson")))
    assert new_burns.loc[new_burns.polygon_id == target, "review"].tolist() == ["rejected"]
    assert (new_burns.loc[new_burns.polygon_id != target, "review"].fillna("") == "").all()
    md = (again / "report.md").read_text()
    assert "## Analyst review" in md and "cloud shadow" in md and "A. Analyst" in md
    row = next(line for line in md.splitlines() if line.startswith(f"| {target} | rejected |"))
    assert row.endswith("| cloud shadow \\| seen on the 31st |") and len(re.findall(r"(?<!\\)\|", row)) == 6, row
    manifest = json.loads((again / "manifest.json").read_text())
    assert manifest["reviews_file"]["path"].endswith("reviews.json")

    # a re-run from the manifest reproduces the reviewed outputs
    code, out, err = _cli(capsys, "rerun", str(again))
    assert code == 0, err
    # Reviewing goes on after the run: the AOI's decisions file changes by design. The run keeps a copy of the
    # decisions it applied, hashed with its outputs, so it still verifies and re-runs from that copy (a later review
    # was read as tampering: verify, sign and rerun all refused the reviewed run).
    kept = again / "reviews_applied.json"
    reviews = Path(manifest["reviews_file"]["path"])
    assert kept.read_bytes() == reviews.read_bytes() and manifest["reviews_file"]["sha256"] == sha256_file(kept)
    original = reviews.read_bytes()
    try:
        reviews.write_bytes(original.replace(b"cloud shadow", b"smoke"))
        check = check_run(again)
        assert not check.problems and any("the review decisions have changed since the run" in n for n in check.notes)
        code, out, err = _cli(capsys, "rerun", str(again))
        assert code == 0 and "every compared output is identical" in out, err
        assert "the run's own copy of the review decisions" in out
        # the copy itself edited: the run no longer verifies, and nothing vouches for the decisions it applied
        kept_bytes = kept.read_bytes()
        kept.write_bytes(kept_bytes.replace(b"cloud shadow", b"smoke"))
        try:
            assert any(kept.name in p and "changed" in p for p in check_run(again).problems)
            code, out, err = _cli(capsys, "rerun", str(again))
            assert code == 4 and "review decisions changed" in err and err.count("\n") == 1
        finally:
            kept.write_bytes(kept_bytes)
    finally:
        reviews.write_bytes(original)


def test_a_decision_follows_a_polygon_that_moved_a_little_but_not_a_different_one(first_run):
    run = first_run.run_dir
    burns = gpd.read_file(next(run.glob("burns*.geojson")))
    path = run.parent / "decisions-test.json"
    rv.record_decision(path, burns, burns.iloc[0].polygon_id, decision="confirmed", by="B", run_id="r", simulated=True)
    moved = burns.copy()
    moved.loc[0, "geometry"] = affinity.translate(burns.geometry.iloc[0], xoff=0.000005)  # about half a metre
    applied = rv.apply_decisions(moved, rv.read_decisions(path), simulated=True)
    assert applied.loc[0, "review"] == "confirmed" and (applied.loc[1:, "review"] == "").all()
    assert (rv.apply_decisions(burns, rv.read_decisions(path), simulated=False)["review"] == "").all()  # never onto real runs


def test_bad_decisions_and_a_crash_while_saving(first_run, tmp_path, monkeypatch, capsys):
    run = first_run.run_dir
    burns = gpd.read_file(next(run.glob("burns*.geojson")))
    path = tmp_path / "reviews.json"
    rv.record_decision(path, burns, burns.iloc[0].polygon_id, decision="confirmed", by="B", run_id="r", simulated=True)
    before = path.read_bytes()
    for kwargs, needle in (({"decision": "rejected", "by": "B"}, "reason"), ({"decision": "confirmed", "by": " "}, "--by"),
                           ({"decision": "maybe", "by": "B"}, "not one of")):
        with pytest.raises(ParameterError, match=needle):
            rv.record_decision(path, burns, burns.iloc[0].polygon_id, run_id="r", simulated=True, **kwargs)
    with pytest.raises(ParameterError, match="not in run"):
        rv.record_decision(path, burns, "19990101-E1-N1", decision="confirmed", by="B", run_id="r", simulated=True)
    # What goes into every later report: a name of sensible length, plain text, an edit over the burn it corrects
    first = burns.iloc[0]
    _, south, east, _ = first.geometry.bounds
    paris = Polygon([(2.30, 48.80), (2.31, 48.80), (2.31, 48.81), (2.30, 48.80)])
    for kwargs, needle in (({"decision": "confirmed", "by": "x" * 201}, "--by: 201 characters, more than 200"),
                           ({"decision": "rejected", "by": "B", "reason": "\u202ewodahs duolc"}, r"direction characters \(U\+202E\)"),
                           ({"decision": "rejected", "by": "B\x07", "reason": "smoke"}, r"--by: .*\(U\+0007\)"),
                           ({"decision": "edited", "by": "B", "edited": paris}, "lies [0-9]+ km from polygon"),
                           ({"decision": "edited", "by": "B", "edited": box(east + 0.0014, south, east + 0.0015, south + 0.0001)},
                            "lies 1[0-9]{2} m from")):  # about 150 m east of it
        with pytest.raises(ParameterError, match=needle):
            rv.record_decision(path, burns, first.polygon_id, run_id="r", simulated=True, **kwargs)
    nudged = rv.record_decision(path, burns, first.polygon_id, decision="edited", by="B", run_id="r", simulated=True,
                                edited=first.geometry.buffer(0.0003))  # about 30 m out: a redrawn outline, kept
    assert nudged.edited_wkt
    before = path.read_bytes()

    def full_disk(target, body, **kwargs):
        raise OutputError(f"{target}: disk full (simulated); free disk space")

    monkeypatch.setattr(rv, "write_json", full_disk)
    with pytest.raises(OutputError):
        rv.record_decision(path, burns, burns.iloc[1].polygon_id, decision="confirmed", by="B", run_id="r", simulated=True)
    assert path.read_bytes() == before  # the earlier decisions are intact
    monkeypatch.undo()
    code, _, err = _cli(capsys, "review", AOI_NAME, "x", "--confirm", "--reject", "y", "--by", "B", "--out", str(tmp_path / "none"))
    assert code == 5 and "exactly one of" in err


def test_kml_for_google_earth_has_every_polygon_dated_and_labelled(first_run):
    import xml.etree.ElementTree as ET

    run = first_run.run_dir
    burns = gpd.read_file(next(run.glob("burns*.geojson")))
    kml = next(run.glob("burns*.kml"))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = ET.parse(kml).getroot().findall(".//k:Placemark", ns)
    assert len(marks) == len(burns) > 0
    names = [m.find("k:name", ns).text for m in marks]
    assert names == [f"SIMULATED {i}" for i in burns.polygon_id]
    text = marks[0].find("k:description", ns).text
    first_seen = burns.first_seen.iloc[0].strftime("%Y-%m-%dT%H:%M:%SZ")  # geopandas reads the ISO time back as a Timestamp
    assert text.startswith("SIMULATED DATA") and first_seen in text and "not visible on the clear scene of" in text
    ring = marks[0].find(".//k:coordinates", ns).text.split()
    lon, lat = (float(v) for v in ring[0].split(",")[:2])
    assert burns.geometry.iloc[0].buffer(1e-6).contains(gpd.points_from_xy([lon], [lat])[0])


_FETCHING = '<img src="https://example.org/r.png"> ![x](https://example.org/y.png)'


def test_a_review_written_as_html_or_markdown_images_is_shown_as_text_and_fetches_nothing(small_run, tmp_path, capsys):
    """The reason and the reviewer's name are free text: Google Earth reads a placemark's description as HTML and a
    Markdown viewer renders ``<img>`` and ``![](...)``, so either would load an image from the network on opening."""
    import xml.etree.ElementTree as ET

    copy = copy_small_run(small_run, tmp_path, data=True)
    burns = gpd.read_file(next(copy.run_dir.glob("burns*.geojson")))
    target = burns.iloc[0].polygon_id
    code, _, err = _cli(capsys, "review", AOI_NAME, target, "--reject", f"shadow {_FETCHING}", "--by", f"Eve {_FETCHING}",
                        "--out", str(copy.out_root), "--data", str(copy.data_root))
    assert code == 0, err
    again = _run(capsys, copy.out_root, copy.data_root, copy.aoi_dir)
    md = (again / "report.md").read_text()
    assert "## Analyst review" in md and "shadow &lt;img" in md and "Eve &lt;img" in md
    assert "<img" not in md and "![x](" not in md and "!\\[x](https://example.org/y.png)" in md
    kml = ET.parse(next(again.glob("burns*.kml")))
    texts = [el.text or "" for el in kml.iter() if el.tag.endswith("description")]
    reviewed = [t for t in texts if "rejected by analyst Eve" in t]  # the tier says who rejected it and why
    assert reviewed and all("<img" not in t for t in texts)  # after XML's own unescaping: HTML text, not a tag
    assert all("&lt;img" in t for t in reviewed)
    html = (again / "report.html").read_text()
    assert "https://example.org" not in html.replace("&lt;img src=&quot;https://example.org", "").replace(
        "](https://example.org", "")  # only as escaped text
