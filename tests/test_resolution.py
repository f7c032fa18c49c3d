"""The analysis grid follows the scenes' native pixel; plain GeoTIFFs go through `detect --scenes DIR --bands`.

Known answers: scenes built at 20 m (five bands, SWIR among them) with a burned square of known
size; the grid must be 20 m without anyone asking for it, the report and manifest must say why,
and the square must come back.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage
from shapely.geometry import box

from factories import readme_script, run_cli as _cli, write_square_aoi as _aoi
from pipeline.config import Params, resolve_params
from pipeline.model import SceneInfo
BANDS = "blue,green,red,nir,swir22"
ORIGIN = (500000.0, 1530000.0)  # UTM 30N, near 13.84 N 3.0 W
SQUARE_PX = 20  # 400 m at 20 m: 16 ha


def _lonlat_centre(res: float, size: int) -> tuple[float, float]:
    from pyproj import Transformer

    x, y = ORIGIN[0] + res * size / 2, ORIGIN[1] - res * size / 2
    lon, lat = Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True).transform(x, y)
    return lon, lat


def _pair(folder: Path, *, res: float = 20.0, size: int = 150, post_res: float | None = None) -> Path:
    """``pre_20240110.tif`` and ``post_20240205.tif``: textured savanna, 5 bands x 10000, a char square after."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed, burned, r in (("pre_20240110.tif", 1, False, res), ("post_20240205.tif", 2, True, post_res or res)):
        n = int(round(size * res / r))
        texture = ndimage.gaussian_filter(np.random.default_rng(7).random((n, n)), 2.0)
        texture = (texture - texture.mean()) / texture.std()
        red, nir, swir = 0.16 + 0.02 * texture, 0.28 + 0.03 * texture, 0.30 + 0.02 * texture
        data = np.stack([red * 0.6, red * 0.8, red, nir, swir]) + np.random.default_rng(seed).normal(0, 0.004, (5, n, n))
        if burned:  # char: NIR 0.06, SWIR 2.2 um 0.18 (a real Sentinel-2 grass-fire scar)
            half, c = int(round(SQUARE_PX * res / r / 2)), n // 2
            data[:, c - half:c + half, c - half:c + half] = np.array([0.04, 0.05, 0.06, 0.06, 0.18])[:, None, None]
        with rasterio.open(folder / name, "w", driver="GTiff", width=n, height=n, count=5, dtype="uint16", crs="EPSG:32630",
                           transform=Affine(r, 0, ORIGIN[0], 0, -r, ORIGIN[1])) as dst:
            dst.write(np.clip(data * 10000, 1, 65535).astype("uint16"))
    return folder


def _run(out: str) -> Path:
    return Path(out.strip().splitlines()[-1].split("outputs: ")[1])


def _info(scene_id: str, kind: str, pixel: dict[str, float], bands: tuple[str, ...] = ()) -> SceneInfo:
    return SceneInfo(scene_id, kind, datetime(2024, 1, 28, tzinfo=timezone.utc), "x", "x", box(0, 0, 1, 1), {},
                     bands or tuple(pixel), pixel_m=pixel)


S2 = {"blue": 10.0, "green": 10.0, "red": 10.0, "nir": 10.0, "swir16": 20.0, "swir22": 20.0}
PLANET = dict.fromkeys(("blue", "green", "red", "nir"), 3.0)


@pytest.mark.parametrize("kind, pixel, index, metres, says", [
    ("sentinel2", S2, "auto", 20.0, "NBR index needs (B12, 20 m)"),
    ("sentinel2", S2, "nir", 10.0, "NIR index needs (B08, 10 m)"),
    ("landsat", dict.fromkeys(S2, 30.0), "auto", 30.0, "(swir22, 30 m)"),
    ("planet", PLANET, "auto", 3.0, "NIR index needs (nir, 3 m)"),
])
def test_native_grid_is_the_coarsest_band_the_index_reads(kind, pixel, index, metres, says):
    from pipeline.resolution import choose_resolution

    choice = choose_resolution([_info("a", kind, pixel), _info("b", kind, pixel)], Params(burn_index=index))
    assert choice.resolution_m == metres and choice.rule == "native" and says in choice.reason, choice


def test_mixed_series_is_compared_on_its_coarsest_pixel_and_says_so():
    from pipeline.resolution import choose_resolution

    planet = _info("p", "planet", PLANET)
    s2 = _info("s", "geotiff", {"blue": 10.0, "green": 10.0, "red": 10.0, "nir": 10.0})
    choice = choose_resolution([planet, planet, s2], Params())
    assert choice.resolution_m == 10.0
    assert "mix native pixels of 3 m (2 scene(s)), 10 m (1 scene(s))" in choice.reason and "--resolution 3" in choice.reason


def test_a_number_given_wins_and_names_the_native_grid():
    from pipeline.resolution import choose_resolution

    s2 = _info("a", "sentinel2", S2)
    choice = choose_resolution([s2, s2], resolve_params(None, {"resolution_m": "10"}))
    assert (choice.resolution_m, choice.rule) == (10.0, "given")
    assert choice.statement() == ("analysis grid 10 m: set by resolution_m=10 (the scenes' native grid: 20 m, the coarsest "
                                  "band the NBR index needs (B12, 20 m))")


def test_resolution_m_native_in_an_aoi_file_or_set():
    assert Params().resolution_m == "native" and resolve_params({"resolution_m": "Native"}).resolution_m == "native"
    assert resolve_params(None, {"resolution_m": "20"}).resolution_m == 20.0


def test_a_20m_pair_added_to_the_catalogue_is_analysed_at_20m(tmp_path, capsys):
    """The new user's report: a pair of 20 m files was analysed on a 3 m grid unless one knew --set resolution_m=20."""
    pair = _pair(tmp_path / "pair")
    aoi_dir = _aoi(tmp_path / "aoi", "pair20", *_lonlat_centre(20.0, 150), 1000.0, "Africa/Ouagadougou")
    common = ["--data", str(tmp_path / "data"), "--aoi-dir", str(aoi_dir)]
    for f in sorted(pair.iterdir()):
        code, out, err = _cli(capsys, "add", "pair20", str(f), "--bands", BANDS, "--time-from-name", *common)
        assert code == 0, err
    code, out, err = _cli(capsys, "detect", "pair20", *common, "--out", str(tmp_path / "out"), "--no-figures")
    assert code == 0, err
    statement = "analysis grid 20 m: the coarsest band the NBR index needs (swir22, 20 m)"
    assert statement in out and statement in err
    run = _run(out)
    manifest = json.loads((run / "manifest.json").read_text())
    report = json.loads((run / "report.json").read_text())
    assert manifest["grid"]["resolution_m"] == 20.0 and manifest["grid"]["rule"] == "native"
    assert manifest["grid"]["transform"][0] == 20.0 and manifest["parameters"]["resolution_m"] == "native"
    assert report["grid"] == manifest["grid"] and statement[1:] in (run / "report.md").read_text()
    assert 0.8 * 16 <= report["totals"]["area_ha"] <= 1.2 * 16, report["totals"]


def test_detect_scenes_folder_with_bands(tmp_path, capsys):
    """`detect --scenes DIR --bands MAP`: the folder's GeoTIFFs, each a scene dated by its name when asked
    (--time-from-name; never guessed, as `burnscan add`)."""
    pair = _pair(tmp_path / "pair")
    aoi_dir = _aoi(tmp_path / "aoi", "pair20", *_lonlat_centre(20.0, 150), 1000.0, "Africa/Ouagadougou")
    common = ["--aoi-dir", str(aoi_dir), "--data", str(tmp_path / "data"), "--no-figures", "--scenes", str(pair)]
    # Without --bands the error's advice is now a real option of detect.
    code, out, err = _cli(capsys, "detect", "pair20", *common, "--out", str(tmp_path / "out"))
    last = err.strip().splitlines()[-1]
    assert code != 0 and last.startswith("burnscan: error:") and "or a GeoTIFF with --bands" in last
    code, out, err = _cli(capsys, "detect", "pair20", *common, "--out", str(tmp_path / "out"), "--bands", BANDS)
    assert code != 0 and "acquisition time unknown" in err and "--time-from-name" in err  # the name's date only when asked
    # one --acquired would date every file alike (one acquisition, refused): a folder's fix is a tag in each file
    assert "each file of a folder needs a time of its own" in err and "gdal_edit.py -mo ACQUIRED=2024-01-28T10:38:00Z" in err
    assert "give it with --acquired" not in err
    code, out, err = _cli(capsys, "detect", "pair20", *common, "--out", str(tmp_path / "out"), "--bands", BANDS,
                          "--time-from-name")
    assert code == 0, err
    assert "2024-02-05 (time of day unknown)" in out
    report = json.loads((_run(out) / "report.json").read_text())
    assert [s["scene_id"][:4] for s in report["scenes"]] == ["pre_", "post"] and report["index"] == "nbr"
    assert report["grid"]["resolution_m"] == 20.0 and 0.8 * 16 <= report["totals"]["area_ha"] <= 1.2 * 16
    # --resolution overrides the native grid (and the report says what the native one would have been).
    code, out, err = _cli(capsys, "detect", "pair20", *common, "--out", str(tmp_path / "out"), "--bands", BANDS,
                          "--time-from-name", "--resolution", "10")
    assert code == 0, err
    assert "analysis grid 10 m: set by resolution_m=10 (the scenes' native grid: 20 m" in out
    manifest = json.loads((_run(out) / "manifest.json").read_text())
    assert manifest["grid"]["transform"][0] == 10.0 and manifest["overrides"] == {"resolution_m": 10.0}


def test_detect_bands_needs_scenes_and_one_resolution(tmp_path, capsys):
    aoi_dir = _aoi(tmp_path / "aoi", "pair20", *_lonlat_centre(20.0, 150), 1000.0, "Africa/Ouagadougou")
    code, _, err = _cli(capsys, "detect", "pair20", "--aoi-dir", str(aoi_dir), "--bands", BANDS, "--out", str(tmp_path / "o"))
    assert code != 0 and err.strip().count("\n") == 0 and "--bands, --acquired, --time-from-name and --provider read plain GeoTIFFs" in err
    code, _, err = _cli(capsys, "detect", "pair20", "--aoi-dir", str(aoi_dir), "--resolution", "10", "--set", "resolution_m=20",
                        "--out", str(tmp_path / "o"))
    assert code != 0 and "--resolution 10 and --set resolution_m=20 disagree" in err
    code, _, err = _cli(capsys, "detect", "pair20", "--aoi-dir", str(aoi_dir), "--resolution", "500", "--out", str(tmp_path / "o"))
    assert code != 0 and err.startswith("burnscan: error: --resolution '500' is not accepted")


def test_mixed_pixel_series_warns_and_uses_the_coarser_grid(tmp_path, capsys):
    """A 10 m scene before and a 20 m one after: compared at 20 m, with a warning saying why."""
    pair = _pair(tmp_path / "pair", res=10.0, size=300, post_res=20.0)
    aoi_dir = _aoi(tmp_path / "aoi", "mixed", *_lonlat_centre(10.0, 300), 1000.0, "Africa/Ouagadougou")
    code, out, err = _cli(capsys, "detect", "mixed", "--aoi-dir", str(aoi_dir), "--scenes", str(pair), "--bands", BANDS,
                          "--time-from-name", "--out", str(tmp_path / "out"), "--no-figures")
    assert code == 0, err
    assert "scenes of different native pixels in one series" in err and "analysis grid 20 m" in out
    assert "mix native pixels of 10 m (1 scene(s)), 20 m (1 scene(s))" in out


@pytest.mark.slow
def test_readme_pair_example_runs(shared_data, tmp_path):
    """README's `detect --scenes DIR --bands` example, as written, on the real CAL FIRE pair: the known answer
    of tests/test_real_detect.py (about 137 ha, nearly all inside the 141 ha perimeter), on B12's 20 m grid."""
    import subprocess
    import sys

    import geopandas as gpd
    from rasterio.features import rasterize

    import pipeline

    repo = Path(pipeline.__file__).resolve().parents[1]
    script = readme_script("pair-example", sys.executable)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "analysis grid 20 m: the coarsest band the NBR index needs (swir22, 20 m)" in done.stdout
    run = _run(done.stdout)
    assert run.is_relative_to(tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert report["index"] == "nbr" and not report["simulated"] and report["grid"]["resolution_m"] == 20.0
    burns = gpd.read_file(run / "burns.geojson")
    with rasterio.open(shared_data / "real" / "s2-calfire-prepost" / "set_a" / "masks" / "5_INCIDENT_20240715.tif") as src:
        mask = src.read(1) > 0
        burned = rasterize(burns.to_crs(src.crs).geometry, out_shape=mask.shape, transform=src.transform) > 0
    dice = 2 * (burned & mask).sum() / (burned.sum() + mask.sum())
    print(f"README pair: {report['totals']['area_ha']:.1f} ha, Dice {dice:.3f} against the CAL FIRE perimeter")  # pytest -rP
    assert 110 <= report["totals"]["area_ha"] <= 160 and (burned & mask).sum() >= 0.9 * burned.sum() and dice >= 0.93, dice
