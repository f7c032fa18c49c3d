"""Hostile names, archives, races and kills: nothing is written outside its place, nothing kept is lost.

Each case is one an outside audit made burnscan fail on: a STAC item whose id climbs into an
earlier run and overwrites its manifest, ids that make nested folders, a STAC API choosing
where band files land, two ``add-buildings --replace`` at once losing a layer, a zip bomb split
over members, zips Python cannot read, a killed run whose workers kept drawing and whose
staging folders stayed forever. The inputs are built here; the commands are the real ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from pipeline.aoi import load_aoi
from pipeline.errors import OutputError, SceneError
from factories import run_cli as _cli, write_scene as _write_scene
from smallaoi import AOI_NAME, LAT, LON, write_small_aoi

import pipeline

# Helper processes import the same checkout as this test (not necessarily the one holding the test file).
CODE_ROOT = Path(pipeline.__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
# The test village's centre in its UTM zone: scenes written around it overlap the AOI.
CENTRE = Transformer.from_crs("EPSG:4326", "EPSG:32630", always_xy=True).transform(LON, LAT)
SCENE_ORIGIN = (CENTRE[0] - 300.0, CENTRE[1] + 300.0)  # a 600 m scene (200 px of 3 m) centred on the village


# --------------------------------------------------------------------------- helpers
def _one_line_error(err: str, *needles: str) -> None:
    assert err.startswith("burnscan: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder``: file contents, None for folders and links."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(folder.rglob("*"))}


_HELPERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _helpers_stopped():
    """Every helper process a test started is stopped and its pipes closed after it (an open pipe is a ResourceWarning)."""
    yield
    while _HELPERS:
        proc = _HELPERS.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reaps it and closes stdout and stderr


def _python(code: str, *args: object) -> subprocess.Popen:
    """Run ``code`` in a fresh interpreter of this checkout, stdout piped."""
    env = {k: v for k, v in os.environ.items() if k != "BURNSCAN_NO_FORK"}
    env["PYTHONPATH"] = os.pathsep.join([str(CODE_ROOT), str(TESTS)])
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=CODE_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _HELPERS.append(proc)
    return proc


def _first_line(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The first line ``proc`` prints; fails with its stderr if it ends or says nothing in time."""
    deadline = time.monotonic() + timeout
    import select

    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line:
                return line.strip()
        if proc.poll() is not None:
            pytest.fail(f"helper process ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    proc.kill()
    pytest.fail("helper process printed nothing in time")


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"helper process ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("condition not reached in time")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped has stopped running)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _band(path: Path, value: int, *, res: float, size: int) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint16", nodata=0,
                       crs="EPSG:32630", transform=Affine(res, 0, SCENE_ORIGIN[0], 0, -res, SCENE_ORIGIN[1])) as dst:
        dst.write(np.full((size, size), value, np.uint16), 1)
    return path


def _s2_item(folder: Path, item_id: str) -> Path:
    """A Sentinel-2 L2A STAC item over the test village, its band files beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
    for name in names.values():
        _band(folder / f"{name}.tif", 1500, res=10.0, size=60)
    d = 0.003
    item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id,
            "geometry": {"type": "Polygon", "coordinates": [[[LON - d, LAT - d], [LON + d, LAT - d], [LON + d, LAT + d],
                                                             [LON - d, LAT + d], [LON - d, LAT - d]]]},
            "properties": {"datetime": "2024-01-28T10:58:21Z", "platform": "sentinel-2b", "s2:processing_baseline": "05.10"},
            "assets": {k: {"href": f"{v}.tif"} for k, v in names.items()}, "links": []}
    path = folder / "item.json"
    path.write_text(json.dumps(item))
    return path


def _scene_zip(path: Path, scene_id: str = "20240128_103800_ab12", *, origin=SCENE_ORIGIN,
               extra: list[tuple[str, bytes]] = (), method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A Planet delivery zip holding one scene (over the village unless ``origin`` says otherwise)."""
    source = path.parent / f"{path.stem}-src"
    _write_scene(source, scene_id, origin=origin)
    with zipfile.ZipFile(path, "w", method) as zf:
        for f in sorted(source.iterdir()):
            zf.write(f, f"{path.stem}/PSScene/{f.name}")
        for name, data in extra:
            zf.writestr(name, data)
    return path


def _patch_member(archive: Path, name: str, *, flags: int = 0, method: int | None = None) -> None:
    """Set general-purpose flag bits or the compression method of one member, in both of its headers."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        local = zf.getinfo(name).header_offset
    assert data[local:local + 4] == b"PK\x03\x04"
    encoded, central = name.encode(), data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + int.from_bytes(data[central + 28:central + 30], "little")] != encoded:
        central = data.find(b"PK\x01\x02", central + 4)
        assert central != -1
    for flag_at, method_at in ((local + 6, local + 8), (central + 8, central + 10)):
        data[flag_at:flag_at + 2] = (int.from_bytes(data[flag_at:flag_at + 2], "little") | flags).to_bytes(2, "little")
        if method is not None:
            data[method_at:method_at + 2] = method.to_bytes(2, "little")
    archive.write_bytes(bytes(data))


@pytest.fixture
def place(tmp_path):
    """(aoi folder, data folder, out folder) for the test village."""
    return write_small_aoi(tmp_path / "aoi"), tmp_path / "data", tmp_path / "out"


# --------------------------------------------------------------------------- STAC ids
def _climbing_id(items: Path, target: Path) -> str:
    """An item id that makes ``items/sentinel2-<id>.json`` land on ``target`` (a ``.json`` file)."""
    rel = os.path.relpath(target.with_suffix(""), items.parent.parent.parent.parent)
    for k in range(1, 12):
        item_id = "../" * k + rel
        if os.path.normpath(items / f"sentinel2-{item_id}.json") == str(target):
            return item_id
    raise AssertionError("no climbing id found")


def test_a_stac_id_climbing_into_an_earlier_run_is_refused_and_the_manifest_is_untouched(place, capsys, tmp_path):
    aoi_dir, data, out = place
    run = out / AOI_NAME / "20240127T103800Z-a1b2c3"
    run.mkdir(parents=True)
    manifest = run / "manifest.json"
    manifest.write_text('{"run_id": "20240127T103800Z-a1b2c3", "outputs": []}\n')
    before = manifest.read_bytes()
    item_id = _climbing_id(data / AOI_NAME / "catalog" / "items", manifest)
    item = _s2_item(tmp_path / "s2", item_id)
    code, out_text, err = _cli(capsys, "add", AOI_NAME, item, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 4 and not out_text
    _one_line_error(err, str(item), "STAC item id", repr(item_id)[:20], "path separator")
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json"]
    assert not (data / AOI_NAME / "catalog").exists()  # no item, no catalogue, no folder made by the id


def test_a_stac_id_with_slashes_makes_no_folder(place, capsys, tmp_path):
    aoi_dir, data, _ = place
    item = _s2_item(tmp_path / "s2", "a/b/c")
    inputs = _tree(tmp_path / "s2")
    code, _, err = _cli(capsys, "add", AOI_NAME, item, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 4
    _one_line_error(err, str(item), "'a/b/c'")
    assert not (data / AOI_NAME / "catalog").exists()
    assert not [p for p in tmp_path.rglob("*") if "sentinel2-a" in p.name or p.name == "c.json"]
    assert _tree(tmp_path / "s2") == inputs  # the input is never modified


@pytest.mark.parametrize("item_id", ["../evil", "a/b/c", "..", ".hidden", "x\x00y"])
def test_fetch_with_a_hostile_item_id_writes_nothing(tmp_path, item_id):
    from pipeline.readers.fetch import download_window

    cogs = tmp_path / "cogs"
    cogs.mkdir()
    assets = {name: pystac.Asset(href=str(_band(cogs / f"{name}.tif", 2000, res=10.0, size=60)))
              for name in ("red", "nir", "green", "blue")}
    item = pystac.Item(id=item_id, geometry=None, bbox=None, datetime=pystac.utils.str_to_datetime("2024-01-28T10:58:21Z"),
                       properties={"platform": "sentinel-2a"})
    for key, asset in assets.items():
        item.add_asset(key, asset)
    before = _tree(tmp_path)
    d = 0.001
    with pytest.raises(SceneError) as err:
        download_window(item, (LON - d, LAT - d, LON + d, LAT + d), tmp_path / "sentinel2")
    assert "\n" not in str(err.value) and "STAC item id" in str(err.value)
    assert _tree(tmp_path) == before


# --------------------------------------------------------------------------- concurrent updates
def _footprints(path: Path, n: int) -> Path:
    """``n`` 10 m buildings near the village centre, in lon/lat."""
    to_lonlat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True)
    squares = []
    for i in range(n):
        x, y = CENTRE[0] + 30.0 * i, CENTRE[1]
        corners = [to_lonlat.transform(cx, cy) for cx, cy in ((x, y), (x + 10, y), (x + 10, y + 10), (x, y + 10))]
        squares.append(box(min(c[0] for c in corners), min(c[1] for c in corners), max(c[0] for c in corners),
                           max(c[1] for c in corners)))
    gpd.GeoDataFrame({"n": [n] * n}, geometry=squares, crs="EPSG:4326").to_file(path, driver="GeoJSON")
    return path


_AT_THE_SIGNAL = """
    import pathlib, sys, time
    import pipeline.readers.layers  # imported before the start signal, so both commands start level
    from pipeline.cli import main
    print("ready", flush=True)
    go = pathlib.Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.002)
    sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_two_concurrent_replacements_of_the_footprint_layer_keep_every_layer(place, capsys, tmp_path):
    aoi_dir, data, _ = place
    assert _cli(capsys, "add-buildings", AOI_NAME, _footprints(tmp_path / "one.geojson", 1), "--data", data,
                "--aoi-dir", aoi_dir)[0] == 0
    go = tmp_path / "go"
    procs = [_python(_AT_THE_SIGNAL, go, "add-buildings", AOI_NAME, _footprints(tmp_path / f"layer{n}.geojson", n),
                     "--replace", "--data", data, "--aoi-dir", aoi_dir) for n in (2, 3)]
    for proc in procs:
        assert _first_line(proc) == "ready"
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    layers = sorted((data / AOI_NAME).glob("buildings*.gpkg"))
    assert len(layers) == 3
    # the current layer is one of the two replacements; the first layer and the other replacement are kept aside
    assert sorted(len(gpd.read_file(p)) for p in layers) == [1, 2, 3]
    assert len(gpd.read_file(data / AOI_NAME / "buildings.gpkg")) in (2, 3)


_HOLD_LOCK = """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(120)
"""


def _fires_csv(path: Path) -> Path:
    path.write_text("latitude,longitude,acq_date,acq_time,satellite,confidence\n"
                    f"{LAT:.5f},{LON:.5f},2024-01-28,112,N20,n\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("what", ["add", "add-buildings", "add-fires"])
def test_a_command_waits_for_another_updating_the_same_state_then_says_so(place, capsys, tmp_path, monkeypatch, what):
    aoi_dir, data, _ = place
    folder = data / AOI_NAME
    folder.mkdir(parents=True)
    lock, argv = {
        "add": (".catalog.lock", ["add", AOI_NAME, _write_scene(tmp_path / "scene", "20240128_103800_ab12", origin=SCENE_ORIGIN)]),
        "add-buildings": (".buildings.gpkg.lock", ["add-buildings", AOI_NAME, _footprints(tmp_path / "b.geojson", 2)]),
        "add-fires": (".fires.lock", ["add-fires", AOI_NAME, _fires_csv(tmp_path / "fires_viirs.csv")]),
    }[what]
    holder = _python(_HOLD_LOCK, folder / lock)
    try:
        assert _first_line(holder) == "held"
        before = _tree(folder)
        monkeypatch.setenv("BURNSCAN_LOCK_TIMEOUT", "1")
        code, _, err = _cli(capsys, *argv, "--data", data, "--aoi-dir", aoi_dir)
        assert code == 6
        waiting, error = err.strip().splitlines()  # it says it waits (a silent wait looks hung), then why it gave up
        assert "another burnscan command is updating it; waiting up to 1 s" in waiting
        _one_line_error(error + "\n", "another burnscan command is updating")
        assert _tree(folder) == before
    finally:
        holder.kill()
        holder.wait()
    code, _, err = _cli(capsys, *argv, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 0, err  # once the other command is gone, the same command goes through


@pytest.mark.slow
def test_a_review_decision_waits_for_another_being_recorded(tmp_path, monkeypatch):
    from pipeline.review import record_decision

    path = tmp_path / "data" / AOI_NAME / "reviews.json"
    path.parent.mkdir(parents=True)
    polygons = gpd.GeoDataFrame({"polygon_id": ["20240128-E1-N1"], "first_seen": ["2024-01-28T10:38:00Z"]},
                                geometry=[box(LON, LAT, LON + 0.001, LAT + 0.001)], crs="EPSG:4326")
    holder = _python(_HOLD_LOCK, path.parent / ".reviews.json.lock")
    try:
        assert _first_line(holder) == "held"
        monkeypatch.setenv("BURNSCAN_LOCK_TIMEOUT", "1")
        with pytest.raises(OutputError, match="another burnscan command is updating"):
            record_decision(path, polygons, "20240128-E1-N1", decision="confirmed", by="A", run_id="r", simulated=True)
        assert not path.exists()
    finally:
        holder.kill()
        holder.wait()
    record_decision(path, polygons, "20240128-E1-N1", decision="confirmed", by="A", run_id="r", simulated=True)
    assert len(json.loads(path.read_text())["decisions"]) == 1


def test_a_link_inside_the_catalogue_pointing_elsewhere_is_not_written_through(place, capsys, tmp_path):
    aoi_dir, data, _ = place
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data / AOI_NAME / "catalog").mkdir(parents=True)
    (data / AOI_NAME / "catalog" / "items").symlink_to(elsewhere)
    scene = _write_scene(tmp_path / "scene", "20240128_103800_ab12", origin=SCENE_ORIGIN)
    code, _, err = _cli(capsys, "add", AOI_NAME, scene, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 6
    _one_line_error(err, "outside")
    assert not any(elsewhere.iterdir())
    assert not (data / AOI_NAME / "catalog" / "catalog.json").exists()


def test_a_run_id_in_latest_that_climbs_out_is_refused(place, capsys):
    aoi_dir, data, out = place
    (out / AOI_NAME).mkdir(parents=True)
    (out / AOI_NAME / "latest").write_text("../../../../etc\n")
    code, _, err = _cli(capsys, "review", AOI_NAME, "20240128-E1-N1", "--confirm", "--by", "A", "--out", out, "--data", data)
    assert code == 6
    _one_line_error(err, "latest", "run id", "'../../../../etc'")
    assert not (data / AOI_NAME / "reviews.json").exists()


# --------------------------------------------------------------------------- names made from users' files
def test_names_made_from_users_file_names_are_made_safe_not_refused(place, capsys, tmp_path):
    aoi_dir, data, _ = place
    scene = _write_scene(tmp_path / "src", "x", origin=SCENE_ORIGIN)
    export = scene.rename(tmp_path / "src" / "Ségou export (1).tif")
    code, out, err = _cli(capsys, "add", AOI_NAME, export, "--bands", "blue,green,red,nir", "--acquired",
                          "2024-01-28T10:38:00Z", "--data", data, "--aoi-dir", aoi_dir)
    assert code == 0, err
    item_id = out.strip().removeprefix("added: ")
    assert re.fullmatch(r"geotiff-Segou_export_1-[0-9a-f]{8}-[0-9a-f]{12}", item_id), item_id  # safe name, then the bytes
    assert (data / AOI_NAME / "catalog" / "items" / f"{item_id}.json").is_file()
    fires = _fires_csv(tmp_path / "FIRMS export (2).csv")
    code, out, err = _cli(capsys, "add-fires", AOI_NAME, fires, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 0, err
    kept = [p.name for p in (data / AOI_NAME / "fires").iterdir()]
    assert len(kept) == 1 and kept[0].startswith("FIRMS_export_2-") and kept[0].endswith(".csv") and " " not in kept[0]
    # the same file name gives the same kept name: adding it again finds it
    assert _cli(capsys, "add-fires", AOI_NAME, fires, "--data", data, "--aoi-dir", aoi_dir)[1].startswith("already kept")


# --------------------------------------------------------------------------- zips
def _nothing_unpacked(data: Path) -> bool:
    deliveries = data / AOI_NAME / "deliveries"
    return not deliveries.exists() or not any(deliveries.iterdir())


@pytest.mark.slow
def test_a_zip_bomb_split_over_members_is_refused_before_anything_is_unpacked(place, capsys, tmp_path):
    aoi_dir, data, _ = place
    bomb = tmp_path / "order_77.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(30):  # each member alone stays under the per-member alarm; together 180 MB from ~180 kB
            zf.writestr(f"order_77/part{i:02d}.bin", b"\0" * 6_000_000)
    assert bomb.stat().st_size < 1_000_000
    code, _, err = _cli(capsys, "add", AOI_NAME, bomb, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 4
    _one_line_error(err, "order_77.zip", "zip bomb")
    assert _nothing_unpacked(data)


@pytest.mark.parametrize("hostile, needle", [("encrypted", "encrypted"), ("deflate64", "deflate64"),
                                             ("long component", "too long"), ("long path", "too long")])
def test_zips_python_or_the_file_system_cannot_take_are_refused_in_one_line(place, capsys, tmp_path, hostile, needle):
    aoi_dir, data, _ = place
    member = {"long component": "order_9/" + "x" * 300 + ".txt",
              "long path": "order_9/" + "/".join(["d" * 200] * 6) + "/notes.txt"}.get(hostile, "order_9/notes.txt")
    archive = _scene_zip(tmp_path / "order_9.zip", extra=[(member, b"notes " * 100)])
    if hostile == "encrypted":
        _patch_member(archive, member, flags=0x1)
    elif hostile == "deflate64":
        _patch_member(archive, member, method=9)
    code, _, err = _cli(capsys, "add", AOI_NAME, archive, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 4
    _one_line_error(err, "order_9.zip", needle)
    assert _nothing_unpacked(data)
    assert not (data / AOI_NAME / "catalog").exists()


def test_a_zip_larger_than_the_free_disk_space_is_refused(place, capsys, tmp_path, monkeypatch):
    import shutil

    aoi_dir, data, _ = place
    archive = _scene_zip(tmp_path / "order_5.zip")
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=50_000_000))
    code, _, err = _cli(capsys, "add", AOI_NAME, archive, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 6
    _one_line_error(err, "order_5.zip", "free")
    assert _nothing_unpacked(data)


def test_a_zip_without_scenes_leaves_nothing_unpacked(place, capsys, tmp_path):
    aoi_dir, data, _ = place
    archive = tmp_path / "holiday.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("holiday/readme.txt", "no scene here\n")
        zf.writestr("holiday/photos/beach.json", "{}")
    code, _, err = _cli(capsys, "add", AOI_NAME, archive, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 4
    _one_line_error(err, "holiday.zip", "no Planet scene", "removed")
    assert _nothing_unpacked(data)


def test_a_failed_add_removes_what_it_unpacked_and_only_that(place, capsys, tmp_path):
    aoi_dir, data, _ = place
    good = _scene_zip(tmp_path / "order_1.zip")
    assert _cli(capsys, "add", AOI_NAME, good, "--data", data, "--aoi-dir", aoi_dir)[0] == 0
    deliveries = data / AOI_NAME / "deliveries"
    earlier = _tree(deliveries)
    far = _scene_zip(tmp_path / "order_2.zip", "20240129_103800_ffff", origin=(499900.0, 1500400.0))  # somewhere else
    code, _, err = _cli(capsys, "add", AOI_NAME, good, far, "--data", data, "--aoi-dir", aoi_dir)
    assert code == 4
    _one_line_error(err, "does not overlap")
    assert _tree(deliveries) == earlier  # the earlier command's folder is kept as it was; this one's is gone


# --------------------------------------------------------------------------- kills
def _tiny_aoi(folder: Path) -> Path:
    """A 300 m AOI: the demo of it is simulated in a few seconds."""
    d_lat, d_lon = 150.0 / 111_320.0, 150.0 / (111_320.0 * np.cos(np.radians(LAT)))
    ring = [[LON - d_lon, LAT - d_lat], [LON + d_lon, LAT - d_lat], [LON + d_lon, LAT + d_lat], [LON - d_lon, LAT + d_lat],
            [LON - d_lon, LAT - d_lat]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tinyvillage.geojson").write_text(json.dumps({
        "type": "Feature", "properties": {"display_name": "Tiny village", "timezone": "Africa/Bamako"},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    return folder


_DEMO = """
    import pathlib, sys
    from pipeline.aoi import load_aoi
    from pipeline.sim.demo import ensure_demo_scenes
    ensure_demo_scenes(load_aoi("tinyvillage", pathlib.Path(sys.argv[1])), pathlib.Path(sys.argv[2]), margin_m=0.0,
                       seed=int(sys.argv[3]))
"""


@pytest.mark.slow
def test_a_killed_demo_generation_leaves_no_staging_behind_and_a_running_one_is_kept(tmp_path):
    from pipeline.sim.demo import ensure_demo_scenes

    aoi_dir, data = _tiny_aoi(tmp_path / "aoi"), tmp_path / "data"
    simulated = data / "tinyvillage" / "simulated"

    def staging_with_files() -> set[Path]:
        found = {p for p in simulated.iterdir() if p.name.startswith(".") and p.is_dir()} if simulated.exists() else set()
        return {p for p in found if any(p.iterdir())}

    killed = _python(_DEMO, aoi_dir, data, 1)
    stale = _wait_for(staging_with_files, killed)  # half-written
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    running = _python(_DEMO, aoi_dir, data, 2)
    live = _wait_for(lambda: staging_with_files() - stale, running)
    running.send_signal(signal.SIGSTOP)  # a concurrent generation, caught half-way
    try:
        ensure_demo_scenes(load_aoi("tinyvillage", aoi_dir), data, margin_m=0.0, seed=3)
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in live)
    finally:
        running.send_signal(signal.SIGCONT)
    _, err = running.communicate(timeout=180)
    assert running.returncode == 0, err
    assert not [p for p in simulated.iterdir() if p.name.startswith(".")]
    assert sum((p / "truth_SIMULATED.json").is_file() for p in simulated.iterdir()) == 2


_STAGE_AND_WAIT = """
    import pathlib, sys, time
    from pipeline.outputs.write import staging_folder
    parent = pathlib.Path(sys.argv[1])
    with staging_folder(parent, sys.argv[2], root=parent) as folder:
        (folder / sys.argv[2]).write_bytes(b"half written" * 1000)
        print(folder, flush=True)
        time.sleep(120)
"""


@pytest.mark.parametrize("stager", ["atomic write", "zip unpacking"])
@pytest.mark.slow
def test_stale_staging_is_removed_on_the_next_start_and_a_live_one_is_kept(place, capsys, tmp_path, stager):
    from pipeline.outputs.write import write_text

    aoi_dir, data, out = place
    parent = out / AOI_NAME if stager == "atomic write" else data / AOI_NAME / "deliveries"
    parent.mkdir(parents=True)
    partial = parent / "20240127T103800Z-a1b2c3.partial"  # a failed run, left on purpose
    partial.mkdir()
    (partial / "burns.gpkg").write_bytes(b"kept for inspection")
    live_proc = _python(_STAGE_AND_WAIT, parent, "order_3")  # a concurrent command, still working
    dead = _python(_STAGE_AND_WAIT, parent, "report.json")  # one killed half-way
    try:
        live = Path(_first_line(live_proc))
        stale = Path(_first_line(dead))
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert stale.is_dir() and live.is_dir()
        if stager == "atomic write":
            write_text(parent / "latest", "20240127T103800Z-a1b2c3\n", root=parent)
        else:
            code, _, err = _cli(capsys, "add", AOI_NAME, _scene_zip(tmp_path / "order_3.zip"), "--data", data,
                                "--aoi-dir", aoi_dir)
            assert code == 0, err
        assert not stale.exists()
        assert live.is_dir() and any(live.iterdir())
        assert (partial / "burns.gpkg").read_bytes() == b"kept for inspection"
    finally:
        for proc in (live_proc, dead):
            proc.kill()
            proc.wait()


_SLOW_FORK_MAP = """
    import os, pathlib, sys, time
    from pipeline.cores import fork_map
    folder = pathlib.Path(sys.argv[1])

    def task(i):
        (folder / f"worker-{os.getpid()}").touch()
        time.sleep(120)
        return i

    fork_map(task, 4, workers=2)
"""
# The review page's scenes drawn in the background while the run dates burns: one child, the parent busy.
_SLOW_FORK_SOON = _SLOW_FORK_MAP.replace("fork_map", "fork_soon").replace(
    "fork_soon(task, 4, workers=2)", "pending = fork_soon(task, 1)\n    (folder / f'worker-{os.getpid()}').touch()\n    time.sleep(120)")


@pytest.mark.slow
@pytest.mark.parametrize("script", [_SLOW_FORK_MAP, _SLOW_FORK_SOON], ids=["fork_map", "fork_soon"])
def test_workers_of_a_killed_run_die_with_it(tmp_path, script):
    def workers() -> list[int]:
        found = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        return found if len(found) == 2 else []

    parent = _python(script, tmp_path)
    pids = _wait_for(workers, parent)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)], "forked workers outlived their killed parent"
    finally:
        for pid in pids:  # whatever happened above, leave no sleeping worker behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_staging_folder_taken_by_another_clean_up_before_its_lock_is_replaced(tmp_path, monkeypatch):
    """Figures are saved by several processes at once, each cleaning the stale staging folders of the same parent:
    one may remove another's brand-new folder between its mkdtemp and its lock. The writer takes another folder
    (it once failed the run with "figures: cannot create a folder there (No such file or directory)")."""
    import pipeline.outputs.write as write

    real_open, taken = os.open, []

    def open_after_a_clean_up(path, flags, *args, **kwargs):
        if not taken and str(path).endswith(write.STAGING_SUFFIX):
            taken.append(path)
            os.rmdir(path)  # the other process's clean-up, in the instant before the lock
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(write.os, "open", open_after_a_clean_up)
    write.write_text(tmp_path / "figures" / "a.txt", "written", root=tmp_path)
    assert taken and (tmp_path / "figures" / "a.txt").read_text() == "written"
    assert not [p for p in (tmp_path / "figures").iterdir() if p.name.endswith(write.STAGING_SUFFIX)]


@pytest.mark.parametrize("kind", ["device", "folder", "dangling link"])
def test_an_aoi_file_that_is_no_regular_file_is_named_as_such(tmp_path, capsys, kind):
    """A link to /dev/zero in the registry was "no such AOI" while the known AOIs listed its name."""
    aoi_dir = write_small_aoi(tmp_path / "aoi")
    path = aoi_dir / "zero.geojson"
    if kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero" if kind == "device" else tmp_path / "gone.geojson")
    code, _, err = _cli(capsys, "detect", "zero", "--aoi-dir", aoi_dir, "--out", tmp_path / "out", "--data", tmp_path / "data",
                        "--no-figures")
    assert code == 3 and err.count("\n") == 1 and err.startswith("burnscan: error:"), err
    assert str(path) in err and "no such AOI" not in err and "restore it from git" in err
    assert ("not a regular file" in err) if kind != "dangling link" else ("does not exist" in err)
    if kind == "device":
        assert "character device" in err and "/dev/zero" in err


@pytest.mark.parametrize("setting", ["nan", "inf", "-1", "1e9", "soon"])
def test_a_lock_timeout_that_never_ends_or_is_no_number_is_refused(tmp_path, monkeypatch, setting):
    """NaN and infinity waited for ever behind a command that never ends."""
    from pipeline.errors import ParameterError
    from pipeline.outputs.write import exclusive_lock

    monkeypatch.setenv("BURNSCAN_LOCK_TIMEOUT", setting)
    with pytest.raises(ParameterError) as err:
        with exclusive_lock(tmp_path / "state"):
            pass
    assert f"BURNSCAN_LOCK_TIMEOUT={setting!r}" in str(err.value) and "\n" not in str(err.value)
