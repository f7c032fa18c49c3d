"""The AOI scene catalogue: add, list, round-trip, detect from it, and never lose what is registered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.readers import catalogue as cat, stacio
from pipeline.aoi import load_aoi
from pipeline.sim.demo import ensure_demo_scenes
from pipeline.errors import OutputError, SceneError
from factories import run_cli as _cli, write_scene as _write_scene
from smallaoi import AOI_NAME, write_small_aoi

pytestmark = pytest.mark.slow  # every test here needs the module's simulated delivery and AOI (made once, tens of seconds)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small AOI and a copy of its simulated Planet delivery, outside the data folder."""
    root = tmp_path_factory.mktemp("catalogue")
    aoi_dir = write_small_aoi(root / "aoi")
    aoi = load_aoi(AOI_NAME, aoi_dir)
    demo = ensure_demo_scenes(aoi, root / "demo-data", resolution=3.0, margin_m=150.0)
    delivery = root / "delivery"
    shutil.copytree(demo.folder, delivery)
    return root, aoi_dir, aoi, delivery


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def test_add_list_round_trip_and_detect_from_the_catalogue(setup, capsys, tmp_path):
    root, aoi_dir, aoi, delivery = setup
    data = tmp_path / "data"
    code, out, err = _cli(capsys, "add", AOI_NAME, str(delivery), "--data", str(data), "--aoi-dir", str(aoi_dir))
    assert code == 0, err
    added = [line for line in out.splitlines() if line.startswith("added: planet-")]
    assert len(added) == 5
    entries = cat.catalogue_entries(data, AOI_NAME)
    assert [e.acquired.day for e in entries] == [26, 27, 28, 31, 1]
    assert all(e.kind == "planet" and e.data_fraction == pytest.approx(1.0) for e in entries)
    cloudy = entries[3]  # the demo's 31 January scene carries a flagged cloud and its shadow
    assert cloudy.clear_fraction < min(e.clear_fraction for e in entries if e is not cloudy)
    # the STAC catalogue round-trips through pystac: same items, files and hashes
    import pystac

    catalog = pystac.Catalog.from_file(str(cat.catalogue_dir(data, AOI_NAME) / "catalog.json"))
    items = {i.id: i for i in catalog.get_items()}
    assert set(items) == {e.item_id for e in entries}
    for e in entries:
        assert {r: a.href for r, a in items[e.item_id].assets.items()} == e.files
        assert e.sha256["reflectance"] == items[e.item_id].properties["burnscan:sha256"]["reflectance"]

    code, out, _ = _cli(capsys, "scenes", AOI_NAME, "--data", str(data), "--aoi-dir", str(aoi_dir))
    assert code == 0 and len(out.splitlines()) == 5 and "UTC" in out and "local" in out and "sha256" in out

    before = _snapshot(cat.catalogue_dir(data, AOI_NAME))
    code, out, _ = _cli(capsys, "add", AOI_NAME, str(delivery), "--data", str(data), "--aoi-dir", str(aoi_dir))
    assert code == 0 and out.count("already registered") == 5
    assert _snapshot(cat.catalogue_dir(data, AOI_NAME)) == before  # nothing rewritten

    code, out, err = _cli(capsys, "detect", AOI_NAME, "--data", str(data), "--aoi-dir", str(aoi_dir),
                          "--out", str(tmp_path / "out"), "--no-figures")
    assert code == 0, err
    assert "using the scene catalogue" in err and "SIMULATED" not in err.split("catalogue")[0]
    run = Path(out.strip().splitlines()[-1].split("outputs: ")[1])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["scenes_from"] == "catalogue" and len(manifest["inputs"]) == 5
    assert "SIMULATED" in out  # the delivery is the simulator's: the report still says so


def test_bad_scenes_leave_the_catalogue_unchanged(setup, capsys, tmp_path):
    root, aoi_dir, aoi, delivery = setup
    data = tmp_path / "data"
    first = sorted(delivery.glob("*_AnalyticMS_SR*.tif"))[0]
    assert _cli(capsys, "add", AOI_NAME, str(first), "--data", str(data), "--aoi-dir", str(aoi_dir))[0] == 0
    before = _snapshot(cat.catalogue_dir(data, AOI_NAME))
    far = tmp_path / "far"
    _write_scene(far, "20240129_103800_ffff")  # a scene of somewhere else (UTM 30N, near the equator)
    broken = tmp_path / "broken"
    _write_scene(broken, "20240130_103800_eeee").write_text("not a raster")
    for bad, needle in ((far, "does not overlap the AOI"), (broken, "cannot be read"), (tmp_path / "nowhere", "no such file")):
        code, out, err = _cli(capsys, "add", AOI_NAME, str(delivery), str(bad), "--data", str(data), "--aoi-dir", str(aoi_dir))
        assert code == 4 and err.count("\n") == 1 and needle in err, err
        assert _snapshot(cat.catalogue_dir(data, AOI_NAME)) == before  # the good scenes of the same command were not added either


def test_a_changed_file_is_refused_at_detect_time(setup, capsys, tmp_path):
    root, aoi_dir, aoi, delivery = setup
    copy = tmp_path / "copy"
    shutil.copytree(delivery, copy)
    data = tmp_path / "data"
    assert _cli(capsys, "add", AOI_NAME, str(copy), "--data", str(data), "--aoi-dir", str(aoi_dir))[0] == 0
    victim = sorted(copy.glob("*_metadata*.json"))[1]
    victim.write_text(victim.read_text().replace("10:38", "10:39"))
    with pytest.raises(SceneError) as err:
        cat.catalogue_sources(data, AOI_NAME)
    assert str(victim) in str(err.value) and "SHA-256" in str(err.value)


def test_a_crash_while_writing_the_catalogue_keeps_the_previous_one(setup, tmp_path, monkeypatch):
    root, aoi_dir, aoi, delivery = setup
    data = tmp_path / "data"
    scenes = sorted(delivery.glob("*_AnalyticMS_SR*.tif"))
    cat.add_scenes(aoi, [scenes[0]], data_root=data)
    before = _snapshot(cat.catalogue_dir(data, AOI_NAME))
    real_write = stacio.write_text  # the catalogue's StacIO writes through it

    def failing(path, body, **kwargs):
        if Path(path).name == "catalog.json":
            raise OutputError(f"{path}: disk full (simulated); free disk space")
        return real_write(path, body, **kwargs)

    monkeypatch.setattr(stacio, "write_text", failing)
    with pytest.raises(OutputError):
        cat.add_scenes(aoi, [scenes[1]], data_root=data)
    monkeypatch.undo()
    assert [e.item_id for e in cat.catalogue_entries(data, AOI_NAME)] == [f"planet-{scenes[0].name.split('_3B_')[0]}"]
    after = _snapshot(cat.catalogue_dir(data, AOI_NAME))
    assert after["catalog.json"] == before["catalog.json"]  # the catalogue itself is the one from before the crash


def test_zip_delivery_added_through_the_command_line(setup, capsys, tmp_path):
    import zipfile

    root, aoi_dir, aoi, delivery = setup
    archive = tmp_path / "planet_order.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(delivery.glob("2024012[68]*")):
            zf.write(f, f"planet_order/PSScene/{f.name}")
    data = tmp_path / "data"
    code, out, err = _cli(capsys, "add", AOI_NAME, str(archive), "--data", str(data), "--aoi-dir", str(aoi_dir))
    assert code == 0, err
    assert out.count("added: planet-") == 2
    assert all(Path(e.files["reflectance"]).is_relative_to(data / AOI_NAME / "deliveries") for e in cat.catalogue_entries(data, AOI_NAME))
