"""Fuzz what burnscan reads from outside with random and mutated files (``make fuzz``).

Four targets, taken in turn:

- ``scenes``: Planet deliveries (SR GeoTIFF, UDM2, metadata JSON) with mutated bytes or metadata,
  loaded onto a grid (and plain GeoTIFFs with a band map);
- ``stac``: Sentinel-2 STAC items with mutated structure (fields deleted, of the wrong type,
  hostile ids and hrefs, deep nesting), recognised, described and loaded;
- ``aoi``: AOI files with mutated structure, loaded, their parameters resolved, their grid and
  time zone used;
- ``manifest``: the ``manifest.json`` of a real small run with mutated structure, verified,
  compared and checked for a re-run.

Every input must end in one of two ways: it is accepted (and then every clear pixel is finite,
the shapes are right), or it raises a :class:`pipeline.errors.PipelineError` whose message is one
line naming a file of the case. Anything else (another exception, a hang, a crash of the
interpreter) is a defect: the input that caused it is kept under ``out/fuzz/`` and the run exits
non-zero. ``--cases N`` runs a fixed number of inputs instead of a time, so a seed replays.

Not part of ``make test`` beyond a short fixed-seed smoke run (tests/test_fuzz_smoke.py): it runs
for minutes, and its inputs are random.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from pipeline.errors import PipelineError
from pipeline.grid import grid_for_bounds
from pipeline.readers.recognise import load_sources, recognise
from pipeline.readers.geotiff import load_geotiff
from pipeline.sim.demo import demo_scenes

TARGETS = ("scenes", "stac", "aoi", "manifest")

GRID = grid_for_bounds((500000, 1500000, 500150, 1500150), "EPSG:32630", 3.0)
_PER_INPUT_SECONDS = 30


class _Hang(Exception):
    pass


def _seed_folder(folder: Path, rng: np.random.Generator) -> None:
    """A small valid Planet-style delivery: SR GeoTIFF, UDM2 and metadata JSON."""
    folder.mkdir(parents=True)
    transform = Affine(3.0, 0, 499950.0, 0, -3.0, 1500200.0)
    common = {"driver": "GTiff", "width": 80, "height": 80, "crs": "EPSG:32630", "transform": transform}
    sr = rng.integers(500, 4000, (4, 80, 80), dtype=np.uint16)
    profile = {**common, "count": 4, "dtype": "uint16", "nodata": 0}
    if rng.random() < 0.5:
        profile.update(tiled=True, blockxsize=16, blockysize=16, compress=str(rng.choice(["deflate", "lzw"])))
    with rasterio.open(folder / "s_3B_AnalyticMS_SR.tif", "w", **profile) as dst:
        dst.write(sr)
    udm = np.zeros((8, 80, 80), np.uint8)
    udm[0] = 1
    with rasterio.open(folder / "s_3B_udm2.tif", "w", **common, count=8, dtype="uint8") as dst:
        dst.write(udm)
    meta = {"properties": {"acquired": "2024-01-28T10:38:00Z", "satellite_id": "2405", "sun_elevation": 50.1}}
    (folder / "s_metadata.json").write_text(json.dumps(meta))


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["flip", "truncate", "insert", "zero_header", "random_header", "splice", "empty", "random"])
    buf = bytearray(data)
    if kind == "flip" and buf:
        for _ in range(rng.randint(1, 64)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        buf = buf[: rng.randrange(max(1, len(buf)))]
    elif kind == "insert":
        at = rng.randrange(len(buf) + 1)
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 512)))
    elif kind == "zero_header":
        buf[: rng.randint(8, 512)] = bytes(min(len(buf), 512))[: rng.randint(8, 512)]
    elif kind == "random_header":
        for i in range(8, min(len(buf), 1024)):
            if rng.random() < 0.05:
                buf[i] = rng.randrange(256)
    elif kind == "splice":
        a, b = sorted(rng.randrange(len(buf) + 1) for _ in range(2))
        buf = buf[:a] + buf[b:] + buf[a:b]
    elif kind == "empty":
        buf = bytearray()
    else:
        buf = bytearray(rng.randrange(256) for _ in range(rng.randint(0, 4096)))
    return bytes(buf)


def _mutate_metadata(rng: random.Random) -> str:
    values = [None, "", "2024-13-45T99:99:99Z", "2024-01-28", 12345, 1e308, -1, [], {}, "x" * 10000,
              "2024-01-28T10:38:00+25:00", "2024-01-28T10:38:00Z", True]
    doc: object = {"properties": {"acquired": rng.choice(values), "satellite_id": rng.choice(values)}}
    shape = rng.random()
    if shape < 0.15:
        doc = rng.choice(values)
    elif shape < 0.3:
        doc = {"acquired": rng.choice(values)}
    text = json.dumps(doc)
    if rng.random() < 0.3:
        text = text[: rng.randrange(len(text) + 1)]
    if rng.random() < 0.1:
        text = "[" * 100_000  # nesting beyond the parser's recursion limit
    return text


def _check_loaded(stack) -> None:
    refl, clear = stack["reflectance"].values, stack["clear"].values
    assert refl.shape[0] == clear.shape[0] and refl.shape[2:] == clear.shape[1:] == GRID.shape
    assert clear.dtype == bool
    assert np.isfinite(refl.transpose(1, 0, 2, 3)[:, clear]).all(), "a clear pixel is not finite"


def _scenes_case(folder: Path, rng: random.Random, np_rng: np.random.Generator) -> tuple[str, object]:
    """Mutate one to three files of a seed delivery; return what was done and how to exercise it."""
    _seed_folder(folder, np_rng)
    what = []
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(["s_3B_AnalyticMS_SR.tif", "s_3B_AnalyticMS_SR.tif", "s_3B_udm2.tif", "s_metadata.json"])
        path = folder / target
        if target.endswith(".json"):
            path.write_text(_mutate_metadata(rng), encoding="utf-8")
            what.append(f"metadata {path.name}")
        else:
            path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
            what.append(f"bytes of {path.name}")
    as_geotiff = rng.random() >= 0.8
    bands = rng.choice([["blue", "green", "red", "nir"], ["red", "nir"], ["a", "b", "c", "d", "e"], [None, "nir", "red"]])

    def exercise() -> None:
        if not as_geotiff:
            stack, _ = load_sources(recognise(folder), GRID)
            _check_loaded(stack)
            return
        record, refl, clear = load_geotiff(folder / "s_3B_AnalyticMS_SR.tif", bands=bands, grid=GRID,
                                           acquired=datetime(2024, 1, 28, tzinfo=timezone.utc))
        assert np.isfinite(refl[:, clear]).all(), "a clear pixel is not finite"

    return ", ".join(what), exercise


# --- structure-aware JSON mutation ------------------------------------------------------

_HOSTILE_VALUES = [None, True, False, 0, -1, 1e308, -1e308, 2**70, "", " ", "x" * 5000, "../../../../etc/passwd",
                   "/tmp/absolute", "a/b/c", "..", "C:\\\\evil", "\u0000nul", "\u202eevil", "Mars/Olympus",
                   "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-13-45T99:99:99Z", "NaN", "inf", [], {},
                   [1, 2, 3], {"a": {"b": None}}, ["x"] * 50]


def _paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys and indices) into a parsed JSON document, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:20]):
            out += _paths(value, prefix + (i,))
    return out


def _mutate_json(doc: object, rng: random.Random) -> object:
    """One structural mutation of a parsed JSON document: delete, retype, replace, duplicate or nest a node."""
    import copy

    doc = copy.deepcopy(doc)
    path = rng.choice(_paths(doc))
    if not path:
        return rng.choice(_HOSTILE_VALUES + [[doc], {"wrapped": doc}])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    kind = rng.choice(["delete", "replace", "replace", "retype", "nest", "duplicate"])
    if kind == "delete":
        del parent[key]
    elif kind == "replace":
        parent[key] = rng.choice(_HOSTILE_VALUES)
    elif kind == "retype":
        value = parent[key]
        parent[key] = (str(value) if not isinstance(value, str) else [value]) if rng.random() < 0.5 else {"value": value}
    elif kind == "nest":
        value = parent[key]
        for _ in range(rng.choice([2, 10, 60])):  # parser-breaking depth is the text-level case
            value = [value]
        parent[key] = value
    elif isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    else:
        parent[f"{key}_copy"] = copy.deepcopy(parent[key])
    return doc


def _json_text(doc: object, rng: random.Random) -> str:
    """``doc`` as JSON text, sometimes cut short or nested beyond any parser's limit."""
    text = json.dumps(doc, allow_nan=True)
    roll = rng.random()
    if roll < 0.05:
        return "[" * 100_000
    if roll < 0.12:
        return text[: rng.randrange(len(text) + 1)]
    return text


def _mutated_json_text(doc: object, rng: random.Random) -> tuple[str, str]:
    """Apply one to four structural mutations; return the text and what was done."""
    done = []
    for _ in range(rng.randint(1, 4)):
        doc = _mutate_json(doc, rng)
        done.append("mutation")
    return _json_text(doc, rng), f"{len(done)} structural mutation(s)"


# --- STAC items --------------------------------------------------------------------------

_S2_KEYS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11", "swir22": "B12", "scl": "SCL"}


def _seed_stac(folder: Path, np_rng: np.random.Generator) -> dict:
    """Band files of a small Sentinel-2 L2A scene over GRID, and the STAC item that names them."""
    folder.mkdir(parents=True)
    for key, name in _S2_KEYS.items():
        res, size = (20.0, 10) if key in ("swir16", "swir22", "scl") else (10.0, 20)
        data = (np.full((size, size), 4, np.uint8) if key == "scl"
                else np_rng.integers(1200, 4000, (size, size), dtype=np.uint16))
        with rasterio.open(folder / f"{name}.tif", "w", driver="GTiff", width=size, height=size, count=1,
                           dtype=data.dtype.name, crs="EPSG:32630", transform=Affine(res, 0, 499950.0, 0, -res, 1500200.0),
                           nodata=0) as dst:
            dst.write(data, 1)
    return {"type": "Feature", "stac_version": "1.0.0", "id": "S2B_30PVT_20240128_0_L2A",
            "geometry": {"type": "Polygon", "coordinates": [[[-3.002, 13.56], [-2.998, 13.56], [-2.998, 13.565],
                                                               [-3.002, 13.565], [-3.002, 13.56]]]},
            "bbox": [-3.002, 13.56, -2.998, 13.565],
            "properties": {"datetime": "2024-01-28T10:58:21Z", "platform": "sentinel-2b", "s2:processing_baseline": "05.10",
                           "eo:cloud_cover": 3.2},
            "assets": {k: {"href": f"{v}.tif", "type": "image/tiff; application=geotiff",
                           "raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]} for k, v in _S2_KEYS.items()},
            "links": []}


def _stac_case(folder: Path, rng: random.Random, np_rng: np.random.Generator) -> tuple[str, object]:
    from pipeline.readers.recognise import recognise

    seed = _seed_stac(folder, np_rng)
    text, what = _mutated_json_text(seed, rng)
    item = folder / "item.json"
    item.write_text(text, encoding="utf-8")

    def exercise() -> None:
        for source in recognise(item):
            source.describe()
            record, refl, clear = source.load(GRID)
            assert refl.shape[1:] == clear.shape == GRID.shape
            assert np.isfinite(refl[:, clear]).all(), "a clear pixel is not finite"

    return f"STAC item: {what}", exercise


# --- AOI files ---------------------------------------------------------------------------

_AOI_SEED = Path(__file__).resolve().parent.parent / "aoi" / "ogota.geojson"


def _aoi_case(folder: Path, rng: random.Random, np_rng: np.random.Generator) -> tuple[str, object]:
    from pipeline.aoi import load_aoi
    from pipeline.config import resolve_params
    from pipeline.outputs.report import format_time

    folder.mkdir(parents=True)
    seed = json.loads(_AOI_SEED.read_text(encoding="utf-8"))
    seed["properties"].setdefault("parameters", {"noise_k": 4.0, "min_area_m2": 60})
    text, what = _mutated_json_text(seed, rng)
    (folder / "fuzzed.geojson").write_text(text, encoding="utf-8")

    def exercise() -> None:
        aoi = load_aoi("fuzzed", folder)
        params = resolve_params(aoi.parameters)
        grid = aoi.analysis_grid(3.0 if params.resolution_m == "native" else params.resolution_m)
        assert grid.width > 0 and grid.height > 0
        format_time(datetime(2024, 1, 28, 10, 38, tzinfo=timezone.utc), str(aoi.properties.get("timezone", "UTC")))

    return f"AOI file: {what}", exercise


# --- manifests ---------------------------------------------------------------------------

_RUN: dict[str, Path] = {}


def _base_run(work: Path) -> Path:
    """One small complete run (simulated demo, no figures), built once per fuzz session."""
    if "dir" not in _RUN:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from pipeline.run import run_detect
        from smallaoi import AOI_NAME, write_small_aoi

        aoi_dir = write_small_aoi(work / "aoi")
        outcome = run_detect(AOI_NAME, out_root=work / "out", data_root=work / "data", aoi_dir=aoi_dir, make_figures=False, demo=demo_scenes)
        _RUN["dir"] = outcome.run_dir
        _RUN["manifest"] = json.loads((outcome.run_dir / "manifest.json").read_text(encoding="utf-8"))
    return _RUN["dir"]


def _manifest_case(folder: Path, rng: random.Random, np_rng: np.random.Generator) -> tuple[str, object]:
    from pipeline.provenance.compare import compare_runs
    from pipeline.provenance.verify import verify_run
    from pipeline.rerun import check_run_inputs

    run = _base_run(folder.parent / "base-run")
    case = folder / run.name  # a copy of the run folder, so the original stays intact for the next case
    shutil.copytree(run, case)
    text, what = _mutated_json_text(_RUN["manifest"], rng)
    (case / "manifest.json").write_text(text, encoding="utf-8")

    def exercise() -> None:
        verify_run(case)
        compare_runs(run, case)
        check_run_inputs(case)

    return f"manifest: {what}", exercise


_CASES = {"scenes": _scenes_case, "stac": _stac_case, "aoi": _aoi_case, "manifest": _manifest_case}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--cases", type=int, default=None, help="Stop after this many inputs (replayable with --seed).")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--target", choices=TARGETS, action="append", help="What to fuzz (repeatable; default: all in turn).")
    parser.add_argument("--out", type=Path, default=Path("out/fuzz"))
    args = parser.parse_args(argv)
    targets = args.target or list(TARGETS)
    logging.getLogger("rasterio").setLevel(logging.CRITICAL)
    rng = random.Random(args.seed)
    np_rng = np.random.default_rng(args.seed)
    deadline = time.monotonic() + args.seconds
    outcomes = {t: {"accepted": 0, "refused": 0, "defect": 0} for t in targets}
    defects: list[str] = []

    def on_alarm(signum, frame):
        raise _Hang(f"no answer within {_PER_INPUT_SECONDS} s")

    signal.signal(signal.SIGALRM, on_alarm)
    n = 0
    with tempfile.TemporaryDirectory(prefix="burnscan-fuzz-") as tmp, rasterio.Env(CPL_LOG="/dev/null"):
        while time.monotonic() < deadline and (args.cases is None or n < args.cases):
            target = targets[n % len(targets)]
            n += 1
            folder = Path(tmp) / f"case{n}"
            what, exercise = _CASES[target](folder, rng, np_rng)
            signal.alarm(_PER_INPUT_SECONDS)
            try:
                exercise()
                outcomes[target]["accepted"] += 1
            except PipelineError as exc:
                message = str(exc)
                # the case's own files, and for manifests the run they point back to
                named = [p.name for p in folder.rglob("*")] + [folder.name] + [p.name for p in (Path(tmp) / "base-run").glob("*/*")]
                if "\n" in message or not any(name in message for name in named):
                    outcomes[target]["defect"] += 1
                    defects.append(f"case {n} [{target}] ({what}): unclear error: {message}")
                    shutil.copytree(folder, args.out / f"case{n}", dirs_exist_ok=True)
                else:
                    outcomes[target]["refused"] += 1
            except BaseException as exc:  # anything else is a defect, recorded with its input
                if isinstance(exc, KeyboardInterrupt):
                    raise
                outcomes[target]["defect"] += 1
                defects.append(f"case {n} [{target}] ({what}): {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
                shutil.copytree(folder, args.out / f"case{n}", dirs_exist_ok=True)
                (args.out / f"case{n}" / "traceback.txt").write_text(traceback.format_exc())
            finally:
                signal.alarm(0)
                shutil.rmtree(folder, ignore_errors=True)
    print(f"fuzz: {n} inputs (seed {args.seed}):")
    for target, counts in outcomes.items():
        print(f"  {target}: {counts['accepted']} accepted, {counts['refused']} refused with a one-line error, "
              f"{counts['defect']} defects")
    for line in defects[:50]:
        print("  " + line)
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
