"""Fuzz the scene readers with random and mutated files for a bounded time (``make fuzz``).

Every input must end in one of two ways: it loads (and then every clear pixel is finite, the
shapes are right), or it raises a :class:`pipeline.errors.PipelineError` whose message is one
line naming a file. Anything else (another exception, a hang, a crash of the interpreter) is
a defect: the input that caused it is kept under ``out/fuzz/`` and the run exits non-zero.

Not part of ``make test``: it runs for minutes, and its inputs are random.
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
from pipeline.load import discover_scenes, load_geotiff, load_stack

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


def _one_input(folder: Path, rng: random.Random) -> str:
    """Mutate one file of the seed delivery; return what was done."""
    target = rng.choice(["s_3B_AnalyticMS_SR.tif", "s_3B_AnalyticMS_SR.tif", "s_3B_udm2.tif", "s_metadata.json"])
    path = folder / target
    if target.endswith(".json"):
        path.write_text(_mutate_metadata(rng), encoding="utf-8")
        return f"metadata {path.name}"
    path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
    return f"bytes of {path.name}"


def _exercise(folder: Path, rng: random.Random) -> None:
    if rng.random() < 0.8:
        stack, _ = load_stack(discover_scenes(folder), GRID)
        _check_loaded(stack)
    else:
        bands = rng.choice([["blue", "green", "red", "nir"], ["red", "nir"], ["a", "b", "c", "d", "e"], [None, "nir", "red"]])
        record, refl, clear = load_geotiff(folder / "s_3B_AnalyticMS_SR.tif", bands=bands, grid=GRID,
                                           acquired=datetime(2024, 1, 28, tzinfo=timezone.utc))
        assert np.isfinite(refl[:, clear]).all(), "a clear pixel is not finite"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, default=Path("out/fuzz"))
    args = parser.parse_args(argv)
    logging.getLogger("rasterio").setLevel(logging.CRITICAL)
    rng = random.Random(args.seed)
    np_rng = np.random.default_rng(args.seed)
    deadline = time.monotonic() + args.seconds
    outcomes = {"loaded": 0, "refused": 0, "defect": 0}
    defects: list[str] = []

    def on_alarm(signum, frame):
        raise _Hang(f"no answer within {_PER_INPUT_SECONDS} s")

    signal.signal(signal.SIGALRM, on_alarm)
    n = 0
    with tempfile.TemporaryDirectory(prefix="burnscan-fuzz-") as tmp, rasterio.Env(CPL_LOG="/dev/null"):
        while time.monotonic() < deadline:
            n += 1
            folder = Path(tmp) / f"case{n}"
            _seed_folder(folder, np_rng)
            what = [_one_input(folder, rng) for _ in range(rng.randint(1, 3))]
            signal.alarm(_PER_INPUT_SECONDS)
            try:
                _exercise(folder, rng)
                outcomes["loaded"] += 1
            except PipelineError as exc:
                message = str(exc)
                if "\n" in message or not any(p.name in message or str(folder) in message for p in folder.iterdir()):
                    outcomes["defect"] += 1
                    defects.append(f"case {n} ({', '.join(what)}): unclear error: {message}")
                    shutil.copytree(folder, args.out / f"case{n}", dirs_exist_ok=True)
                else:
                    outcomes["refused"] += 1
            except BaseException as exc:  # anything else is a defect, recorded with its input
                if isinstance(exc, KeyboardInterrupt):
                    raise
                outcomes["defect"] += 1
                defects.append(f"case {n} ({', '.join(what)}): {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
                shutil.copytree(folder, args.out / f"case{n}", dirs_exist_ok=True)
                (args.out / f"case{n}" / "traceback.txt").write_text(traceback.format_exc())
            finally:
                signal.alarm(0)
                shutil.rmtree(folder, ignore_errors=True)
    print(f"fuzz: {n} inputs in {args.seconds:.0f} s (seed {args.seed}): {outcomes['loaded']} loaded, "
          f"{outcomes['refused']} refused with a one-line error, {outcomes['defect']} defects")
    for line in defects[:50]:
        print("  " + line)
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
