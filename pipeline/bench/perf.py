"""The performance benchmark: the pipeline against the decode floor and a naive method, on the same files.

``burnscan bench-perf`` (``make bench-perf``) writes a before/after pair of 4-band uint16
tiled, compressed GeoTIFFs of a chosen size (a Sentinel-2 tile is 10980 x 10980 at 10 m)
with a realistic mix of land: fields, bush, villages whose compounds burn, and bush-fire
scars of every size, so that the polygon count is what a real tile gives. It then times, in
separate processes so that each peak memory is its own:

- **floor**: only decoding both files with rasterio, one process per file (both cores);
- **pipeline**: burnscan's whole analysis as it runs on large areas (:mod:`pipeline.chunked`:
  calibration on one window, then chunks read window by window and analysed on both cores,
  polygons merged across chunk edges);
- **naive**: whole arrays in memory, NIR drop, a fixed threshold, polygons, one thread.

Each is run ``repeats`` times; the medians of wall time, CPU time and peak resident memory
are printed with the ratios the targets are stated in (pipeline <= 2 x the floor, goal 1.5;
never slower than naive; CPU / wall >= 1.7; peak RSS <= 2 GB; a pair of twice the side, four
times the pixels, in <= 4.2 x the time). Figures live here, never in tests.
"""

from __future__ import annotations

import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.progress import Progress

__all__ = ["write_pair", "run_perf", "perf_lines", "run_profile", "profile_lines"]

logger = logging.getLogger(__name__)

_RES_M = 10.0
_ORIGIN = (300000.0, 1600000.0)  # UTM 30N, Sahel latitudes
_CRS = "EPSG:32630"


def write_pair(folder: Path, size: int, *, seed: int = 7) -> tuple[Path, Path]:
    """Write ``pre`` and ``post`` scenes of ``size`` x ``size`` pixels (SIMULATED) into ``folder``."""
    import rasterio
    from rasterio.transform import from_origin
    from scipy import ndimage

    from pipeline.outputs.write import atomic_path

    rng = np.random.default_rng(seed)
    small = max(8, size // 64)
    # Soils and fields: smooth noise at two scales, upsampled (cheap for a whole tile).
    base = ndimage.zoom(rng.random((small, small)), size / small, order=1)[:size, :size]
    fields = ndimage.zoom(rng.random((small * 4, small * 4)), size / (small * 4), order=0)[:size, :size]
    nir = (0.22 + 0.08 * base + 0.06 * (fields > 0.6)).astype(np.float32)
    red = (0.16 + 0.05 * base - 0.03 * (fields > 0.6)).astype(np.float32)
    burned = np.zeros((size, size), dtype=bool)
    n_villages = max(2, size * size // 2_000_000)
    for _ in range(n_villages):  # villages of 20-60 compounds, 2-3 px each at 10 m, most burned
        cy, cx = rng.integers(50, size - 50, 2)
        for _ in range(rng.integers(20, 60)):
            y, x = cy + rng.integers(-25, 25), cx + rng.integers(-25, 25)
            nir[y:y + 2, x:x + 3] -= 0.03
            if rng.random() < 0.7:
                burned[y:y + 2, x:x + 3] = True
    n_scars = max(5, size * size // 400_000)
    yy, xx = np.ogrid[:size, :size]
    for _ in range(n_scars):  # bush-fire scars, 50 m to 3 km across
        r = rng.lognormal(2.5, 1.0)
        cy, cx = rng.integers(0, size, 2)
        r = int(min(r, 150))
        y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, size), max(cx - r, 0), min(cx + r + 1, size)
        disc = (yy[y0:y1] - cy) ** 2 + (xx[:, x0:x1] - cx) ** 2 <= r * r
        burned[y0:y1, x0:x1] |= disc
    noise = lambda: rng.normal(0, 0.004, (size, size)).astype(np.float32)  # noqa: E731
    paths = []
    for name, after in (("pre", False), ("post", True)):
        n, r = nir + noise(), red + noise()
        if after:
            n = np.where(burned, 0.07, n * 0.98 + 0.004)  # char; the rest a little different in calibration
            r = np.where(burned, 0.06, r * 0.98)
        bands = np.stack([r * 0.6, r * 0.8, r, n])  # blue, green, red, nir
        data = np.clip(bands * 10000, 1, 65535).astype(np.uint16)
        path = Path(folder) / f"perf_{size}_{name}_SIMULATED.tif"
        profile = dict(driver="GTiff", width=size, height=size, count=4, dtype="uint16", crs=_CRS,
                       transform=from_origin(*_ORIGIN, _RES_M, _RES_M), tiled=True, blockxsize=512, blockysize=512,
                       compress="deflate", predictor=2, nodata=0)
        with atomic_path(path, root=folder) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            dst.update_tags(SIMULATED="yes")
        paths.append(path)
    return paths[0], paths[1]


# --------------------------------------------------------------------------- the three methods
_OWN_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds this pipeline package


def _this_code(*args: str) -> list[str]:
    """A child command line that runs this process's burnscan, wherever it is started: ``python -m`` puts the working
    directory first on the path, so a benchmark started with another checkout's package on ``PYTHONPATH`` would time
    the working directory's instead. ``-P`` leaves it out; :func:`_this_code_env` puts this package first."""
    return [sys.executable, "-P", *args]


def _this_code_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a :func:`_this_code` child: this one's, with this package's folder first on the path."""
    import os

    path = os.pathsep.join(p for p in (str(_OWN_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **(extra or {}), "PYTHONPATH": path}


def _floor(pre: str, post: str) -> dict[str, Any]:
    """Decode both files, one process per file (both cores), and drop the pixels."""
    code = "import rasterio,sys\nwith rasterio.open(sys.argv[1]) as s: s.read()"
    procs = [subprocess.Popen([sys.executable, "-c", code, p]) for p in (pre, post)]
    for p in procs:
        p.wait()
    return {"ok": all(p.returncode == 0 for p in procs)}


def _pipeline(pre: str, post: str) -> dict[str, Any]:
    import os
    from datetime import datetime, timezone

    from pipeline.chunked import detect_chunked
    from pipeline.config import Params
    from pipeline.readers.rasters import native_grid
    from pipeline.readers.recognise import recognise

    grid = native_grid(Path(pre))
    t0 = datetime(2024, 1, 27, 10, 38, tzinfo=timezone.utc)
    sources = [s for i, p in enumerate((pre, post))
               for s in recognise(Path(p), bands="blue,green,red,nir", acquired=t0.replace(day=27 + i))]
    params = Params(resolution_m=grid.resolution, margin_m=0.0)
    result = detect_chunked(sources, grid, params=params, chunk_px=int(os.environ.get("BURNSCAN_CHUNK_PX", "1024")),
                            scheduler=os.environ.get("BURNSCAN_SCHEDULER", "threads"), workers=2)
    return {"polygons": int(len(result.polygons)), "burned_ha": round(float(result.polygons["area_ha"].sum()), 1)}


def _naive(pre: str, post: str) -> dict[str, Any]:
    import rasterio
    from rasterio.features import shapes

    with rasterio.open(pre) as a, rasterio.open(post) as b:
        nir0, nir1, transform = a.read(4).astype(np.float32) / 1e4, b.read(4).astype(np.float32) / 1e4, a.transform
    mask = (nir0 - nir1) > 0.05
    n = sum(1 for _ in shapes(mask.astype(np.uint8), mask=mask, transform=transform))
    return {"polygons": n}


def _village(data_root: str, out_root: str) -> dict[str, Any]:
    """``burnscan detect ogota`` on its SIMULATED demo scenes (made first if missing, so time a second run), figures included."""
    from pipeline.run import run_detect
    from pipeline.sim.demo import demo_scenes

    outcome = run_detect("ogota", out_root=Path(out_root), data_root=Path(data_root), demo=demo_scenes)
    return {"polygons": int(len(outcome.detection.polygons)), "burned_ha": outcome.report["totals"]["burned_fraction_ha"]}


_METHODS: dict[str, Callable[[str, str], dict[str, Any]]] = {"floor": _floor, "pipeline": _pipeline, "naive": _naive,
                                                              "village": _village}


def _own_peak_kb() -> int:
    """This process's peak resident memory since it started (``VmHWM``; not inherited across exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(method: str, pre: str, post: str, profile: bool = False) -> None:
    """Run one method in this process and print its figures as JSON (peak RSS of this process tree);
    with ``profile``, also each stage's time (:func:`pipeline.progress.profiled`)."""
    from pipeline.progress import profiled

    start, cpu0 = time.perf_counter(), time.process_time()
    with profiled() if profile else nullcontext() as clock:  # timed runs carry no clock
        out = _METHODS[method](pre, post)
    wall = time.perf_counter() - start
    if clock is not None:
        out["stages"] = {name: {"wall_s": round(t.wall_s, 3), "cpu_s": round(t.cpu_s, 3), "read_mb": round(t.read_bytes / 1e6, 1),
                                "written_mb": round(t.written_bytes / 1e6, 1), "entries": t.entries}
                         for name, t in clock.stages.items()}
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - cpu0) + kids.ru_utime + kids.ru_stime
    peak_mb = max(_own_peak_kb(), kids.ru_maxrss) / 1024  # Linux: kilobytes
    print(json.dumps({"method": method, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak_mb, **out}))


def _measure(method: str, pre: Path, post: Path, env: dict[str, str] | None = None, profile: bool = False) -> dict[str, Any]:
    env_threads = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if method == "naive" else {}
    done = subprocess.run(_this_code("-m", "pipeline.bench.perf", method, str(pre), str(post), *(["profile"] if profile else [])),
                          capture_output=True, text=True, env=_this_code_env({**env_threads, **(env or {})}), check=False)
    if done.returncode != 0:
        return {"method": method, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def _pair(folder: Path, size: int) -> Iterator[tuple[Path, Path]]:
    """A generated ``size`` pair in ``folder`` for the block, removed after it."""
    t = time.perf_counter()
    # Written in a child process: a parent grown by the generation would hand its peak to every
    # child it starts (Linux records the old memory's high-water mark at exec), and inflate them.
    subprocess.run(_this_code("-m", "pipeline.bench.perf", "write", str(folder), str(size)), env=_this_code_env(), check=True)
    pre, post = (Path(folder) / f"perf_{size}_{name}_SIMULATED.tif" for name in ("pre", "post"))
    logger.info(f"{size} x {size} px pair written in {time.perf_counter() - t:.0f} s "
                f"({(pre.stat().st_size + post.stat().st_size) / 1e6:.0f} MB, SIMULATED)")
    try:
        yield pre, post
    finally:
        for path in (pre, post):
            path.unlink(missing_ok=True)


def run_perf(folder: Path, sizes: list[int], *, repeats: int = 3,
             chunk_sizes: tuple[int, ...] = (512, 2048)) -> list[dict[str, Any]]:
    """Time the three methods on a pair of each size; return one row per size and method (medians).

    On the first size the pipeline also runs once with each of ``chunk_sizes`` (the default
    chunk is 1024 px): its peak memory should follow the chunk, not the scene. Each pair
    written and the timings done ("k of n") are logged at INFO; :func:`perf_lines` says the results.
    """
    rows = []
    progress = Progress(len(sizes) * 3 * repeats + (len(chunk_sizes) if sizes else 0), "timings done", logger=logger)
    for size in sizes:
        with _pair(folder, size) as (pre, post):
            for method in ("floor", "pipeline", "naive"):
                runs = []
                for _ in range(repeats):
                    runs.append(_measure(method, pre, post))
                    progress.advance()
                good = [r for r in runs if "error" not in r]
                if not good:
                    rows.append({"size": size, "method": method, "error": runs[0]["error"]})
                    continue
                row = {"size": size, "method": method, "runs": len(good),
                       **{k: round(statistics.median(r[k] for r in good), 2) for k in ("wall_s", "cpu_s", "peak_mb")},
                       **{k: v for k, v in good[0].items() if k not in ("method", "wall_s", "cpu_s", "peak_mb")}}
                rows.append(row)
            if size == sizes[0]:
                for chunk in chunk_sizes:
                    r = _measure("pipeline", pre, post, env={"BURNSCAN_CHUNK_PX": str(chunk)})
                    progress.advance()
                    if "error" not in r:
                        rows.append({"size": size, "method": f"pipeline_chunk{chunk}", "runs": 1,
                                     **{k: round(r[k], 2) for k in ("wall_s", "cpu_s", "peak_mb")}, "polygons": r.get("polygons")})
    return rows


VILLAGE_TARGET_S = 10.0
"""Issue target for a warm ``burnscan detect ogota`` (scenes present, environment installed), figures and report included."""


def _village_command(data_root: Path, out_root: Path, *flags: str) -> dict[str, Any]:
    """Wall seconds of ``burnscan detect ogota`` as a user types it: its own process, imports, run and exit."""
    start = time.perf_counter()
    done = subprocess.run(_this_code("-m", "pipeline.cli", "detect", "ogota", "--out", str(out_root),
                                    "--data", str(data_root), *flags), capture_output=True, text=True, env=_this_code_env(),
                          check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return {"wall_s": wall}


def run_village(folder: Path, *, data_root: Path = Path("data"), repeats: int = 3) -> list[dict[str, Any]]:
    """``burnscan detect ogota`` on its SIMULATED demo, warm: once to make the scenes and keep its work, then
    ``repeats`` times as it comes (shifts and figures kept from the first run) alternated with ``--recompute``
    (nothing kept is used). One row each, with the median and every run's seconds."""
    out_root = Path(folder) / "village"
    first = _village_command(data_root, out_root)
    if "error" in first:
        return [{"size": "ogota demo", "method": "village", **first}]
    runs: dict[str, list[dict[str, Any]]] = {"village": [], "village_recompute": []}
    for _ in range(repeats):
        runs["village"].append(_village_command(data_root, out_root))
        runs["village_recompute"].append(_village_command(data_root, out_root, "--recompute"))
    rows = []
    for method, done in runs.items():
        good = [r["wall_s"] for r in done if "wall_s" in r]
        errors = [r["error"] for r in done if "error" in r]
        rows.append({"size": "ogota demo", "method": method, **({"error": errors[0]} if errors else
                     {"runs": len(good), "wall_s": round(statistics.median(good), 2), "each_s": [round(w, 2) for w in good]})})
    return rows


def run_profile(folder: Path, sizes: list[int], *, data_root: Path = Path("data"), village: bool = True) -> list[dict[str, Any]]:
    """Where the time goes: the pipeline once on a pair of each size, and ``burnscan detect ogota`` on
    its demo, each in its own process with every stage timed (:func:`pipeline.progress.profiled`).

    The village is run twice and the second run kept: the first may have to make the demo scenes
    (a warm run is the one the target is set for). One row per run, with its stages.
    """
    rows = []
    for size in sizes:
        with _pair(folder, size) as (pre, post):
            for method in ("floor", "pipeline"):
                rows.append({"size": size, **_measure(method, pre, post, profile=method == "pipeline")})
    if village:
        for _ in range(2):
            warm = _measure("village", data_root, Path(folder) / "village", profile=True)
        rows.append({"size": "ogota demo", **warm})
    return rows


def profile_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The rows of :func:`run_profile` as printed: per run, each stage's seconds, CPU, bytes and share of the run."""
    lines: list[str] = []
    floors = {r["size"]: r["wall_s"] for r in rows if r.get("method") == "floor" and "wall_s" in r}
    for row in rows:
        if row.get("method") == "floor" or "error" in row:
            if "error" in row:
                lines.append(f"{row['size']}: {row['method']} FAILED: {row['error']}")
            continue
        what = "village run" if row["method"] == "village" else f"{row['size']} x {row['size']} px pair (SIMULATED), chunked"
        floor = f", decode floor {floors[row['size']]:.2f} s" if row["size"] in floors else ""
        lines.append(f"{what}: wall {row['wall_s']:.2f} s, cpu {row['cpu_s']:.2f} s (cpu/wall {row['cpu_s'] / row['wall_s']:.2f})"
                     f", peak RSS {row['peak_mb']:.0f} MB{floor}")
        lines.append(f"  {'stage':44} {'thread-s':>9} {'cpu s':>8} {'of wall':>8} {'read MB':>9} {'written MB':>11} {'entered':>8}")
        for name, t in sorted(row.get("stages", {}).items(), key=lambda kv: -kv[1]["wall_s"]):
            lines.append(f"  {name[:44]:44} {t['wall_s']:9.2f} {t['cpu_s']:8.2f} {t['wall_s'] / row['wall_s']:8.0%} "
                         f"{t['read_mb']:9.1f} {t['written_mb']:11.1f} {t['entries']:8d}")
    return lines


def perf_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The rows of :func:`run_perf` as printed: per size, each method's medians, each chunk size, the ratios."""
    lines: list[str] = []
    for row in (r for r in rows if r["size"] == "ogota demo"):
        what = {"village": "kept work used", "village_recompute": "--recompute"}.get(row["method"], row["method"])
        if "error" in row:
            lines.append(f"burnscan detect ogota ({what}) FAILED: {row['error']}")
        else:
            lines.append(f"burnscan detect ogota, warm ({what}; SIMULATED demo): median {row['wall_s']:.2f} s of "
                         f"{', '.join(f'{w:.2f}' for w in row['each_s'])} (target <= {VILLAGE_TARGET_S:.0f} s)")
    for size in dict.fromkeys(r["size"] for r in rows if r["size"] != "ogota demo"):
        lines.append(f"{size} x {size} px pair (SIMULATED)")
        mine = [r for r in rows if r["size"] == size]
        for row in mine:
            method = row["method"]
            if "error" in row:
                lines.append(f"  {method:9} FAILED: {row['error']}")
            elif method.startswith("pipeline_chunk"):
                lines.append(f"  chunk {int(method.removeprefix('pipeline_chunk')):5d} wall {row['wall_s']:8.2f} s   "
                             f"cpu {row['cpu_s']:8.2f} s   peak RSS {row['peak_mb']:8.0f} MB   polygons {row.get('polygons')}")
            else:
                lines.append(f"  {method:9} wall {row['wall_s']:8.2f} s   cpu {row['cpu_s']:8.2f} s   peak RSS {row['peak_mb']:8.0f} MB"
                             + (f"   polygons {row['polygons']}" if "polygons" in row else ""))
        by = {r["method"]: r for r in mine if "wall_s" in r}
        if {"floor", "pipeline", "naive"} <= set(by):
            pipeline = by["pipeline"]
            lines.append(f"  ratios: pipeline / floor {pipeline['wall_s'] / by['floor']['wall_s']:.1f} (target <= 2, goal 1.5); "
                         f"naive / pipeline {by['naive']['wall_s'] / pipeline['wall_s']:.2f} (target >= 1: never slower "
                         f"than the naive script); pipeline CPU / wall {pipeline['cpu_s'] / pipeline['wall_s']:.2f} "
                         f"(target >= 1.7); pipeline peak {pipeline['peak_mb'] / 1024:.2f} GB (target <= 2)")
    walls = {r["size"]: r["wall_s"] for r in rows if r["method"] == "pipeline" and "wall_s" in r}
    for small, large in ((s, 2 * s) for s in walls if 2 * s in walls):
        lines.append(f"{small} -> {large} px (4x the pixels): pipeline wall {walls[large] / walls[small]:.2f}x (target <= 4.2)")
    return lines


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write_pair(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        _child(*sys.argv[1:4], profile=sys.argv[4:5] == ["profile"])
