"""Builders the test modules share: scene files, AOI files, the small run and the in-process command line.

This is a helper module, not a test module: pytest collects nothing here, and every test module
imports what it needs from it instead of from another test module (``tests/test_suite_rules.py``
holds the suite to that). Plain functions rather than fixtures, because ``tests/fuzz_inputs.py``
runs outside pytest (``make fuzz``) and needs the same builders; ``tests/conftest.py`` turns the
expensive ones into fixtures (one small run per session, a command-line runner per test).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from pipeline.grid import grid_for_bounds
from smallaoi import AOI_NAME, write_small_aoi

if TYPE_CHECKING:
    from pipeline.run import RunOutcome

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
"""``../shared/data`` beside the checkout: the real satellite clips (read-only; see its README.md)."""

# --- Planet-style scenes ---------------------------------------------------------------

GRID = grid_for_bounds((500000, 1500000, 500300, 1500300), "EPSG:32630", 3.0)
"""A 300 m analysis grid (3 m pixels) inside the footprint of :func:`write_scene`'s default scene."""


def write_scene(folder: Path, scene_id: str, *, acquired: str | None = "2024-01-28T10:38:00Z", bands: int = 4,
                origin=(499900.0, 1500400.0), crs: str | None = "EPSG:32630", value: int = 3000) -> Path:
    """A Planet-style scene: a constant 200 x 200 SR GeoTIFF (x 10000) and, unless ``acquired`` is None, its metadata JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scene_id}_3B_AnalyticMS_SR.tif"
    data = np.full((bands, 200, 200), value, np.uint16)
    profile = {"driver": "GTiff", "width": 200, "height": 200, "count": bands, "dtype": "uint16", "nodata": 0,
               "transform": Affine(3.0, 0, origin[0], 0, -3.0, origin[1])}
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(SCENE_ID=scene_id)  # two scenes of the same pixels are still two files, not one copied
    if acquired is not None:
        (folder / f"{scene_id}_metadata.json").write_text(json.dumps({"properties": {"acquired": acquired, "satellite_id": "x"}}))
    return path


def load_scenes(folder: Path):
    """Every scene of ``folder`` loaded onto :data:`GRID` (the loader's whole path: discover, then read)."""
    from pipeline.readers.recognise import load_sources, recognise

    return load_sources(recognise(folder), GRID)


def one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    """The raised error is one line that contains every needle (the file, the problem, the fix)."""
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


# --- Sentinel-2 and Landsat -----------------------------------------------------------------


def write_band(path: Path, value, *, res: float, size: int, origin=(500000.0, 1530000.0), dtype="uint16",
               crs="EPSG:32630") -> Path:
    """A one-band GeoTIFF of ``value`` (a number, or an array), ``size`` pixels of ``res`` metres square."""
    data = np.asarray(value, dtype=dtype)
    data = np.broadcast_to(data, (size, size)) if data.ndim == 0 else data
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype, crs=crs,
                       transform=Affine(res, 0, origin[0], 0, -res, origin[1]), nodata=0) as dst:
        dst.write(data, 1)
    return path


def write_s2_item(folder: Path, *, baseline: str, dn: int = 1500, scl: int = 4, extra: dict | None = None) -> Path:
    """A Sentinel-2 L2A STAC item with local band files (10 m visible/NIR, 20 m SWIR and SCL) of one DN."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("B02", "B03", "B04", "B08"):
        write_band(folder / f"{name}.tif", dn, res=10, size=40)
    for name in ("B11", "B12"):
        write_band(folder / f"{name}.tif", dn, res=20, size=20)
    write_band(folder / "SCL.tif", scl, res=20, size=20, dtype="uint8")
    keys = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11", "swir22": "B12", "scl": "SCL"}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "S2B_30PVT_20240128_0_L2A",
            "geometry": {"type": "Polygon", "coordinates": [[[-3.0, 13.8], [-2.9, 13.8], [-2.9, 13.9], [-3.0, 13.9], [-3.0, 13.8]]]},
            "properties": {"datetime": "2024-01-28T10:58:21Z", "platform": "sentinel-2b", "s2:processing_baseline": baseline, **(extra or {})},
            "assets": {k: {"href": f"https://example.invalid/cogs/{v}.tif"} for k, v in keys.items()}, "links": []}
    path = folder / "item.json"
    path.write_text(json.dumps(item))
    return path


def write_landsat_folder(folder: Path, mtl: dict | str) -> Path:
    """A Landsat 5 C2 L2 product folder (SR bands, QA_PIXEL clear) with ``mtl`` as its MTL JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    product = "LT05_L2SP_199050_19870116_20200917_02_T1"
    for number in (1, 2, 3, 4, 5, 7):
        write_band(folder / f"{product}_SR_B{number}.TIF", 7999 + 1000 * number, res=30, size=20)
    write_band(folder / f"{product}_QA_PIXEL.TIF", 0b1000000, res=30, size=20)
    (folder / f"{product}_MTL.json").write_text(mtl if isinstance(mtl, str) else json.dumps(mtl))
    return folder


# --- AOI files -------------------------------------------------------------------------


def write_square_aoi(folder: Path, name: str, lon: float, lat: float, half_m: float, timezone: str) -> Path:
    """``<folder>/<name>.geojson``: a square of ``2 * half_m`` metres centred on lon/lat; returns ``folder``."""
    dlat, dlon = half_m / 111_320.0, half_m / (111_320.0 * math.cos(math.radians(lat)))
    ring = [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat], [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.geojson").write_text(json.dumps({
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"display_name": f"{name} (test)", "timezone": timezone, "location_confidence": "test",
                       "location_source": "around a real test scene"}}))
    return folder


# --- the command line, in process ------------------------------------------------------


class CliResult(NamedTuple):
    """What ``burnscan ...`` returned and printed (unpacks as ``code, out, err``)."""

    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture, *argv) -> CliResult:
    """``burnscan *argv`` in this process through :func:`pipeline.cli.main`: exit code, stdout and stderr.

    In process, so a test can monkeypatch the library under the command line and a refused
    command is seen exactly as a user sees it (one ``burnscan: error:`` line, an exit code).
    """
    from pipeline.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


# --- the small run -----------------------------------------------------------------------


@dataclass(frozen=True)
class SmallRun:
    """A finished run of the small simulated AOI and where its pieces live (absolute paths)."""

    root: Path
    """The folder holding ``aoi/``, ``data/`` and ``out/``."""
    aoi_dir: Path
    """The AOI registry folder holding ``testvillage.geojson``."""
    data_root: Path
    """The data folder the simulated scenes were written to."""
    out_root: Path
    """The output folder: runs are under ``<out_root>/testvillage/``."""
    outcome: RunOutcome
    """What ``run_detect`` returned: the run folder, the detection, the report."""

    @property
    def run_dir(self) -> Path:
        return self.outcome.run_dir


def make_small_run(root: Path, *, figures: bool = True, scenes_of: SmallRun | None = None) -> SmallRun:
    """Run ``detect`` on the small AOI's simulated demo, with ``root/aoi``, ``root/data`` and ``root/out`` as absolute paths.

    Absolute on purpose: a run started with relative paths writes them into its reports, so its
    re-run (which reads the manifest's absolute paths) is a different report, and the re-run
    tests need a run that re-runs identically. ``scenes_of``: a run whose data folder is copied
    to ``root/data`` first (files, not links: a test may tamper with its copy), so that the demo
    is found there instead of simulated again (the same seed gives the same bytes).
    """
    from pipeline.run import run_detect
    from pipeline.sim.demo import demo_scenes

    root = root.resolve()
    if scenes_of is not None:
        shutil.copytree(scenes_of.data_root, root / "data")
    aoi_dir = write_small_aoi(root / "aoi")
    outcome = run_detect(AOI_NAME, out_root=root / "out", data_root=root / "data", aoi_dir=aoi_dir, make_figures=figures,
                         demo=demo_scenes)
    return SmallRun(root=root, aoi_dir=aoi_dir, data_root=root / "data", out_root=root / "out", outcome=outcome)


def copy_small_run(run: SmallRun, dest: Path, *, data: bool = False) -> SmallRun:
    """The run's output tree (run folder, ``runs.log``, ``latest``) copied to ``dest/out``, for a test that changes it.

    The copied manifest still names the AOI file and scenes where the run read them, so a
    re-run or a verify of the copy reads those: a test must only read them (one that tampers
    with an input makes its own run with :func:`make_small_run`). ``data=True`` copies the data
    folder to ``dest/data`` too, for commands that write beside the scenes (``burnscan review``
    keeps its decisions there) and new runs that read them.
    """
    out_root = dest / "out"
    shutil.copytree(run.out_root, out_root, symlinks=True)  # `latest` stays a link to its run, not a copy of it
    data_root = run.data_root
    if data:
        data_root = dest / "data"
        shutil.copytree(run.data_root, data_root)
    run_dir = out_root / run.run_dir.relative_to(run.out_root)
    return replace(run, root=dest, out_root=out_root, data_root=data_root, outcome=replace(run.outcome, run_dir=run_dir))


def with_kept_alignment(run: SmallRun, out_root: Path) -> Path:
    """``out_root`` holding a copy of the co-registered, normalised scenes and shifts ``run`` kept (``.cache``), so
    that a run there of the same scenes takes them instead of aligning again, as a second run in one output
    folder does; its figures are still drawn. For tests of what a run writes, not of how it aligns; the
    checks that kept work is taken only when it checks are in ``tests/test_kept_scenes.py`` and
    ``tests/test_shift_cache.py``."""
    for kind in ("scenes", "coregistration"):
        shutil.copytree(run.out_root / ".cache" / kind, out_root / ".cache" / kind)
    return out_root


def tree_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (and ``"dir"`` for each folder), by relative path: a tree's fingerprint."""
    return {path.relative_to(folder).as_posix(): "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))}


def savanna_ground(seed: int) -> np.ndarray:
    """(4, 200, 200) reflectance of one textured savanna (the same ground every date) with a
    date's own sensor noise: a scene a careful reader would accept."""
    texture = ndimage.gaussian_filter(np.random.default_rng(1).random((200, 200)), 2.0)
    texture = (texture - texture.mean()) / texture.std()
    red, nir = 0.16 + 0.02 * texture, 0.28 + 0.03 * texture
    return np.stack([red * 0.6, red * 0.8, red, nir]) + np.random.default_rng(seed).normal(0, 0.004, (4, 200, 200))


# --- a registered pair of plain GeoTIFFs ---------------------------------------------------

PAIR_AOI = "geotiffpair"
"""A 300 m AOI near the test village, covered by :func:`write_geotiff_pair`'s two exports."""
PAIR_TIMES = ("2024-01-27T10:38:00Z", "2024-01-28T10:38:00Z")
PAIR_BANDS = "blue,green,red,nir"


def write_geotiff_pair(root: Path) -> tuple[Path, list[Path]]:
    """An AOI file in ``root/aoi`` and two 4-band GeoTIFF exports of it in ``root/exports``: the same textured
    savanna on both dates, with a 60 m square whose NIR dropped by half on the second (a burn to find).

    They carry no time and no band names, as exports often come: add them with ``--bands`` :data:`PAIR_BANDS`
    and ``--acquired`` one of :data:`PAIR_TIMES` each. Returns the AOI folder and the two files.
    """
    from pyproj import Transformer

    from smallaoi import LAT, LON

    aoi_dir = write_square_aoi(root / "aoi", PAIR_AOI, LON, LAT, 150.0, "Africa/Bamako")
    cx, cy = Transformer.from_crs("EPSG:4326", "EPSG:32630", always_xy=True).transform(LON, LAT)
    size, res = 240, 3.0  # 720 m: the AOI and its 150 m margin, with room to spare
    transform = Affine(res, 0, round(cx) - size * res / 2, 0, -res, round(cy) + size * res / 2)
    (root / "exports").mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(2):
        reflectance = np.tile(savanna_ground(k + 2), (1, 2, 2))[:, :size, :size]
        if k == 1:
            reflectance[3, 110:130, 110:130] *= 0.5  # char: the NIR of burned ground halves
        path = root / "exports" / f"export_{k + 1}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=4, dtype="uint16", nodata=0,
                           crs="EPSG:32630", transform=transform) as dst:
            dst.write(np.clip(reflectance * 10000, 1, 65535).astype(np.uint16))
        paths.append(path)
    return aoi_dir, paths


def timed_geotiff_pair(root: Path, **properties) -> tuple[Path, Path]:
    """:func:`write_geotiff_pair` in ``root`` with each export's time in its ``ACQUIRED`` tag (read from the files, as
    ``detect --scenes`` and ``search --scenes`` need), and ``properties`` added to the AOI file's. Returns the AOI
    file and the exports' folder."""
    aoi_dir, paths = write_geotiff_pair(root)
    for path, when in zip(paths, PAIR_TIMES):
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(ACQUIRED=when)
    aoi_file = aoi_dir / f"{PAIR_AOI}.geojson"
    feature = json.loads(aoi_file.read_text())
    feature["properties"].update(properties)
    aoi_file.write_text(json.dumps(feature))
    return aoi_file, paths[0].parent


def add_geotiff_pair(root: Path, *, data: Path | None = None) -> tuple[Path, Path, list[Path]]:
    """:func:`write_geotiff_pair` in ``root``, both exports registered (``burnscan add``) in ``data`` (default ``root/data``).

    Returns the AOI folder, the data folder and the two exports.
    """
    from pipeline.cli import main

    aoi_dir, paths = write_geotiff_pair(root)
    data = root / "data" if data is None else data
    for path, when in zip(paths, PAIR_TIMES):
        code = main(["-q", "add", PAIR_AOI, str(path), "--bands", PAIR_BANDS, "--acquired", when, "--data", str(data),
                     "--aoi-dir", str(aoi_dir)])
        assert code == 0, f"burnscan add {path} failed"
    return aoi_dir, data, paths


def readme_script(marker: str, python: str) -> str:
    """The shell block of README.md that follows ``<!-- marker ... -->``, with ``.venv/bin/burnscan`` run as
    ``python -m pipeline.cli`` of the checkout under test (its README goes with its code)."""
    import pipeline

    text = (Path(pipeline.__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"<!-- {marker}" in text, f"README.md has no example marked {marker}"
    block = text.split(f"<!-- {marker}", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    return block.replace(".venv/bin/burnscan", f"{python} -m pipeline.cli")
