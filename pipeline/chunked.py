"""Large areas chunk by chunk: memory set by the chunk size, not by the scene size.

A commune-wide search box or a whole Sentinel-2 tile does not fit in memory as a float
stack of every scene. It is analysed in three steps:

1. **Calibrate once.** The usable scenes, each scene's shift to the reference, its band
   fits and the background and noise of every date's change are measured on one window
   (the whole area when it is small, else the ``calibration_px`` window the most scenes
   cover) by exactly the stages a village AOI runs through (:func:`pipeline.run.calibrate`, then
   :func:`pipeline.run.apply` on each chunk).
   A scene-wide translation and radiometric drift are measured as well on a few million
   pixels as on a hundred million.
   When every pixel the scenes have lies in that window, more than a halo from its edges (a
   search area far larger than its delivery) and a chunk would hold the window, the window's
   analysis is the area's: the chunks would only repeat it with the same numbers and cut it
   at seams, so none is run.
2. **Chunks.** The area is cut into ``chunk_px`` squares. Each is loaded with a halo of
   ``halo_px`` around it (every reader warps onto the chunk's grid, so tiled and
   cloud-optimised GeoTIFFs are read only where the chunk lies), then analysed with the
   calibration. The halo gives the shift, the 3 x 3 seed filter, hysteresis growth, rim
   peeling and the persistence check the ground beyond the chunk edge; polygons are kept
   for the chunk itself only, so every pixel belongs to exactly one chunk. Chunks run as
   dask tasks on every core.
3. **Seams.** A burn crossing a chunk edge arrives as one piece per chunk. Pieces of the
   same date that touch across an inner edge (sharing an edge or a corner: the
   8-connectivity used inside a chunk) are merged into one polygon; pixel counts add up,
   the bracket starts at the earliest last clear observation, and area, id and setting
   are computed again on the merged outline.

What the halo cannot give: a burn wider than the halo whose only seeds lie in the
neighbouring chunk beyond the halo, or whose rim contrast differs between its pieces.
The seam test and ``burnscan bench-perf`` compare chunked and whole-scene results.
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass, replace
from typing import Any, Literal

import dask
from dask.callbacks import Callback
import geopandas as gpd
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import LineString, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from threadpoolctl import threadpool_limits

from pipeline.config import Params
from pipeline.errors import ParameterError, SceneError
from pipeline.grid import Grid
from pipeline.stages.indices import choose_index, index_bands
from pipeline.stages.spectral import TEST_BANDS
from pipeline.stages.split import WALL_BANDS
from pipeline.stages.fraction import unmixing_bands
from pipeline.model import SceneRecord
from pipeline.readers.rasters import memoised_hashes, stack_scenes
from pipeline.stages.polygons import describe_polygons, empty_polygons
from pipeline.model import Calibration, Detection
from pipeline.progress import Progress, mark_stage, stage, stage_done
from pipeline.run import apply, detect_burns
from pipeline.readers import SceneSource

__all__ = ["Chunk", "ChunkedDetection", "plan_chunks", "detect_chunked", "load_window", "merge_across_edges", "scene_footprints"]

logger = logging.getLogger(__name__)

_SEAM_TOLERANCE_M = 1e-6


@dataclass(frozen=True)
class Chunk:
    """One square of the area: its grid and its place in the area."""

    row: int
    col: int
    grid: Grid


@dataclass(frozen=True)
class ChunkedDetection:
    """Polygons of a large area and the scene-wide measurements they rest on."""

    polygons: gpd.GeoDataFrame
    """Columns :data:`pipeline.stages.polygons.POLYGON_COLUMNS`, in the area grid's CRS, seams merged."""
    records: list[SceneRecord]
    """Usable scenes, in time order (hashed once)."""
    all_records: list[SceneRecord]
    sources: list[SceneSource]
    """Every scene given, in the order of ``all_records``."""
    footprints: list[BaseGeometry]
    """Each scene's data outline in the area's CRS, in the same order."""
    halo_px: int
    """Ground loaded around a window so that the moved scenes still fill it."""
    calibration: Calibration
    calibration_grid: Grid
    calibration_detection: Detection
    """The calibration window's whole analysis (thresholds, shifts, fits for reports)."""
    index_name: str
    grid: Grid
    chunks: int
    pieces_merged: int
    """Polygon pieces that met another across a chunk edge and were merged."""
    whole_window: bool = False
    """True when the scenes lie inside the calibration window, whose analysis is then the area's (no chunk run)."""


def plan_chunks(grid: Grid, chunk_px: int) -> list[Chunk]:
    """Cut ``grid`` into squares of ``chunk_px`` (the last row and column take the rest)."""
    if isinstance(chunk_px, bool) or not isinstance(chunk_px, int) or chunk_px < 16:
        raise ParameterError(f"chunk size {chunk_px!r} px is not a whole number of at least 16; give a larger --chunk")
    chunks = []
    for row in range(0, grid.height, chunk_px):
        for col in range(0, grid.width, chunk_px):
            size = (min(chunk_px, grid.height - row), min(chunk_px, grid.width - col))
            chunks.append(Chunk(row // chunk_px, col // chunk_px, _window(grid, row, col, *size)))
    return chunks


def _window(grid: Grid, row: int, col: int, height: int, width: int) -> Grid:
    """The ``height`` x ``width`` part of ``grid`` from pixel ``(row, col)``."""
    res = grid.resolution
    return Grid(grid.crs, Affine(res, 0.0, grid.transform.c + col * res, 0.0, -res, grid.transform.f - row * res), width, height)


def scene_footprints(sources: list[SceneSource], crs: str) -> list[BaseGeometry]:
    """Each scene's data outline in the area's CRS (from metadata, no pixels read)."""
    return list(gpd.GeoSeries([s.describe().footprint for s in sources], crs="EPSG:4326").to_crs(crs))


def _calibration_window(grid: Grid, footprints: list[BaseGeometry], size: int) -> Grid:
    """The whole area when small; else the ``size`` window centred where every scene has
    data (else where most do), so the shifts and noise are measured where every date was seen."""
    if grid.width <= size and grid.height <= size:
        return grid
    area = box(*grid.bounds)
    common = area
    for f in footprints:
        common = common.intersection(f)
    if common.is_empty:
        common = unary_union([f.intersection(area) for f in footprints])
    centre = common.centroid if common.contains(common.centroid) else common.representative_point()
    h, w = min(size, grid.height), min(size, grid.width)
    col = int(round((centre.x - grid.transform.c) / grid.resolution - w / 2))
    row = int(round((grid.transform.f - centre.y) / grid.resolution - h / 2))
    return _window(grid, min(max(row, 0), grid.height - h), min(max(col, 0), grid.width - w), h, w)


def _holds_every_scene(window: Grid, halo_px: int, footprints: list[BaseGeometry], grid: Grid) -> bool:
    """Whether every scene's data over ``grid`` lies inside ``window`` shrunk by ``halo_px`` on each side."""
    left, bottom, right, top = window.bounds
    inset = halo_px * window.resolution
    if right - left <= 2 * inset or top - bottom <= 2 * inset:
        return False
    data = unary_union([f.intersection(box(*grid.bounds)) for f in footprints])
    return data.is_empty or box(left + inset, bottom + inset, right - inset, top - inset).contains(data)


def load_window(sources: list[SceneSource], footprints: list[BaseGeometry], grid: Grid,
                 records: list[SceneRecord] | None):
    """Every scene on ``grid``; a scene that does not reach the window is all "not observed".

    ``records`` (from the calibration) stand in for scenes that do not reach the window;
    without them the window must be reached by every scene.
    """
    window = box(*grid.bounds)
    loaded = []
    for i, (source, footprint) in enumerate(zip(sources, footprints)):
        # Half a pixel in from its outline: a footprint carried through lon/lat can overreach the file's own bounds
        # by a sliver, and a window that the sliver alone reaches holds none of the scene's pixels.
        if footprint.buffer(-grid.resolution / 2).intersects(window):
            loaded.append(source.load(grid))
        elif records is not None:
            bands = len(records[i].bands)
            loaded.append((records[i], np.full((bands, *grid.shape), np.nan, np.float32), np.zeros(grid.shape, bool)))
        else:
            raise SceneError(f"{source.describe().files.get('reflectance', source.scene_id)}: scene does not reach the "
                             f"calibration window of the area; give scenes that overlap one another")
    return stack_scenes(loaded, grid, copies=records is None)  # the calibration window, not every chunk, judges copies


def _time_order(sources: list[SceneSource]) -> list[SceneSource]:
    return sorted(sources, key=lambda s: s.describe().acquired)


def _detect_chunk(sources: list[SceneSource], footprints: list[BaseGeometry], chunk: Chunk, halo_px: int,
                  params: Params, calibration: Calibration, records: list[SceneRecord],
                  settlement: BaseGeometry | None) -> gpd.GeoDataFrame:
    """Polygons of one chunk, analysed with its halo and the scene-wide calibration."""
    stage("reading a chunk's window", logger=logger)
    try:
        return _chunk_polygons(sources, footprints, chunk, halo_px, params, calibration, records, settlement)
    finally:
        stage_done()


def _chunk_polygons(sources: list[SceneSource], footprints: list[BaseGeometry], chunk: Chunk, halo_px: int,
                    params: Params, calibration: Calibration, records: list[SceneRecord],
                    settlement: BaseGeometry | None) -> gpd.GeoDataFrame:
    loaded_grid = chunk.grid.buffered(halo_px)
    if not any(f.intersects(box(*loaded_grid.bounds)) for f in footprints):
        return empty_polygons(chunk.grid.crs)
    with memoised_hashes():
        stack, _ = load_window(sources, footprints, loaded_grid, records)
    observed = stack["clear"].values.any(axis=(1, 2))
    if (observed & np.array(calibration.usable)).sum() < 2:  # at most one date saw this chunk: nothing to compare
        return empty_polygons(chunk.grid.crs)
    # Only the index's bands, those of the spectral test (is a darkening fire-like?), the walls' and those the
    # burned fraction is unmixed on (so that a chunk's fractions are the whole scene's) are moved,
    # normalised and read: the others would cost most of the time.
    bands = [str(b) for b in stack.band.values]
    wanted = (set(index_bands(choose_index(bands, params.burn_index), bands)) | set(TEST_BANDS) | set(WALL_BANDS)
              | set(unmixing_bands(bands)))
    needed = [b for b in bands if b in wanted]
    stack = stack.sel(band=needed)
    calibration = replace(calibration, fits=tuple(tuple(f for f in fits if f.band in needed) for fits in calibration.fits),
                          spectral_fits=tuple(tuple(f for f in fits if f.band in needed) for fits in calibration.spectral_fits))
    det = apply(stack, records, calibration, params=params, loaded_grid=loaded_grid, analysis_grid=loaded_grid,
                settlement=settlement, window=chunk.grid)
    return det.polygons


def _inner_edges(grid: Grid, chunks: list[Chunk]) -> list[BaseGeometry]:
    """The lines between neighbouring chunks (not the area's outer boundary)."""
    left, bottom, right, top = grid.bounds

    xs = sorted({c.grid.bounds[0] for c in chunks if c.col > 0})
    ys = sorted({c.grid.bounds[3] for c in chunks if c.row > 0})
    return [LineString([(x, bottom), (x, top)]) for x in xs] + [LineString([(left, y), (right, y)]) for y in ys]


def merge_across_edges(pieces: gpd.GeoDataFrame, edges: list[BaseGeometry]) -> tuple[gpd.GeoDataFrame, int]:
    """Merge polygon pieces of the same date that touch across a chunk edge.

    Pieces of different patches in one chunk never touch (they are separate 8-connected
    patches); pieces from neighbouring chunks touch exactly when their pixels are 8-neighbours
    across the edge. Pieces that a chunk split from one patch along a wall (same ``patch_id``)
    touch along that wall and are never merged with each other; a split piece joins a piece
    across the edge only along a shared stretch of edge, not at a corner where a wall meets
    the seam, and only the piece it shares the most edge with (two chunks may give a wall
    pixel on the seam to different sides). Each chunk splits on its own pixels (its halo only feeds the burn mask), so a
    wall seen in one chunk that ends at the seam while the burn goes on beyond it is merged
    again through the piece beyond: the patch is not cut into two there, as the whole-scene
    analysis would not cut it either (the burn joins around the wall's end).
    Returns the merged frame (same columns; ``area``, ids and setting to be recomputed by
    the caller; ``patch_id`` a key shared by the pieces of one patch, named by the caller)
    and how many pieces took part in a merge.
    """
    if pieces.empty or not edges:
        return pieces.reset_index(drop=True), 0
    pieces = pieces.reset_index(drop=True)
    n = len(pieces)
    patch = pieces["patch_id"].to_numpy() if "patch_id" in pieces else np.arange(n)
    _, patch_code = np.unique(patch.astype(str), return_inverse=True)
    split = np.bincount(patch_code)[patch_code] > 1
    seam = unary_union(edges).buffer(_SEAM_TOLERANCE_M)
    on_edge = np.flatnonzero(pieces.geometry.intersects(seam).to_numpy())
    pairs = pd.DataFrame(columns=["left", "right"], dtype=int)
    if on_edge.size >= 2:
        candidates = pieces.iloc[on_edge]
        joined = gpd.sjoin(candidates[["first_seen_index", "geometry"]], candidates[["first_seen_index", "geometry"]],
                           predicate="intersects")
        joined = joined[(joined.index != joined["index_right"])
                        & (joined["first_seen_index_left"] == joined["first_seen_index_right"])]
        left, right = joined.index.to_numpy(), joined["index_right"].to_numpy().astype(int)
        other_patch = patch_code[left] != patch_code[right]
        left, right = left[other_patch], right[other_patch]
        pairs = pd.DataFrame({"left": left, "right": right})
    # Every pair found touches across the seam: one connected patch. A split piece merges only along a stretch
    # of edge, and only with the piece it shares the longest stretch with (or that shares its longest with it):
    # two chunks may hand a wall pixel on the seam to different sides, leaving a pixel of edge in common.
    outline = pieces.geometry.to_numpy()
    shared = np.array([outline[a].intersection(outline[b]).length for a, b in zip(pairs["left"], pairs["right"])])
    best = np.full(n, -1)
    if len(pairs):
        order = np.argsort(shared, kind="stable")  # the longest last, so it is the one kept per piece
        best[pairs["left"].to_numpy()[order]] = pairs["right"].to_numpy()[order]
    along = np.array([not (split[a] or split[b]) or (length > 0 and (best[a] == b or best[b] == a))
                      for a, b, length in zip(pairs["left"], pairs["right"], shared)], dtype=bool)
    merge_pairs = pairs[along] if len(pairs) else pairs
    graph = coo_matrix((np.ones(len(merge_pairs)), (merge_pairs["left"].to_numpy(), merge_pairs["right"].to_numpy())),
                       shape=(n, n))
    _, group = connected_components(graph, directed=False)
    # Patches: the pieces that touch across a seam, and those a chunk split from one patch, are one patch.
    same_patch = np.flatnonzero(split)
    links = (np.concatenate([pairs["left"].to_numpy(int), same_patch]),
             np.concatenate([pairs["right"].to_numpy(int), np.array([same_patch[patch_code[same_patch] == patch_code[i]][0]
                                                                     for i in same_patch], dtype=int)]))
    _, patch_group = connected_components(coo_matrix((np.ones(links[0].size), links), shape=(n, n)), directed=False)
    sizes = np.bincount(group)
    merged_count = int((sizes[group] > 1).sum())
    pieces = pieces.assign(patch_id=patch_group, _group=group,
                           _change_sum=pieces["mean_index_change"] * pieces["n_pixels"],
                           _confirmed_px=pieces["confirmed"].astype(float) * pieces["n_pixels"])
    if merged_count == 0:
        return pieces.drop(columns=["_group", "_change_sum", "_confirmed_px"]), 0
    rows = []
    for g, part in pieces.groupby("_group", sort=False):
        first = part.iloc[0].to_dict()
        if len(part) > 1:
            n_px = int(part["n_pixels"].sum())
            if "spectral_test" in part:  # the spectral verdict of most of its pixels, as for one whole patch
                largest = part.loc[part["n_pixels"].idxmax()]
                first.update(spectral_test=largest["spectral_test"], spectral_reason=largest["spectral_reason"])
            first.update(
                n_pixels=n_px,
                last_clear_index=int(part["last_clear_index"].min()),
                mean_index_change=round(float(part["_change_sum"].sum() / max(n_px, 1)), 4),
                confirmed=bool(part["_confirmed_px"].sum() / max(n_px, 1) >= 0.5),
                geometry=unary_union(list(part.geometry)),
            )
            if "burned_fraction_ha" in part:
                # Shares add; their sigmas are added linearly, an upper bound: the end-member part is one
                # error for every pixel (linear), only the noise part would add in quadrature.
                first.update(burned_fraction_ha=round(float(part["burned_fraction_ha"].sum()), 4),
                             burned_fraction_sigma_ha=round(float(part["burned_fraction_sigma_ha"].sum()), 4))
        rows.append(first)
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=pieces.crs).drop(columns=["_group", "_change_sum", "_confirmed_px"])
    return out, merged_count


class _ChunkProgress(Callback):
    """Says how many chunks are done, at every tenth of them: a search area takes minutes."""

    def __init__(self, total: int):
        super().__init__()
        self.progress = Progress(total, "chunks done", logger=logger)

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        if str(key).startswith("_detect_chunk"):
            self.progress.advance()


def detect_chunked(
    sources: list[SceneSource],
    grid: Grid,
    *,
    params: Params,
    chunk_px: int = 1024,
    halo_px: int = 32,
    calibration_px: int = 1024,
    settlement: BaseGeometry | None = None,
    scheduler: Literal["threads", "processes", "sync"] = "threads",
    workers: int | None = None,
) -> ChunkedDetection:
    """Burn polygons over ``grid`` from ``sources``, one chunk at a time.

    Parameters
    ----------
    sources:
        Scenes (:func:`pipeline.readers.recognise.recognise`), any order; they need not cover all of
        ``grid`` (uncovered ground is "not observed").
    grid:
        The area's analysis grid.
    chunk_px, halo_px:
        Chunk side and the ground loaded around each chunk; the halo grows to the largest
        shift plus 8 px so that a moved scene still fills the chunk.
    calibration_px:
        Side of the window the scene-wide measurements are made on.
    scheduler, workers:
        A dask local scheduler (``"threads"``, ``"processes"`` or ``"sync"``) and its workers
        (default: every core).

    Each stage is logged at INFO, and the chunks done at every tenth of them.
    """
    if len(sources) < 2:
        raise SceneError(f"{len(sources)} scene(s) given; a search needs scenes before and after the event")
    sources = _time_order(sources)
    footprints = scene_footprints(sources, grid.crs)
    if not any(f.intersects(box(*grid.bounds)) for f in footprints):
        raise SceneError("no scene overlaps the area; check its extent or pick scenes that cover it")
    window = _calibration_window(grid, footprints, calibration_px)
    logger.info(f"calibrating on a {window.width} x {window.height} px window")
    mark_stage("calibration: loading its window")
    stack, all_records = load_window(sources, footprints, window, None)
    # calibrate, then apply to the window: detect_burns does both in one pass (the same numbers, tests/test_house.py)
    calib_det = detect_burns(stack, all_records, params=params, loaded_grid=window, analysis_grid=window,
                             settlement=settlement)
    calibration = calib_det.calibration
    largest_shift = max((max(abs(s.dy), abs(s.dx)) for s in calibration.shifts if s.reliable), default=0.0)
    halo = max(halo_px, int(np.ceil(largest_shift)) + 8)
    chunks = plan_chunks(grid, chunk_px)
    if chunk_px >= max(window.width, window.height) and _holds_every_scene(window, halo, footprints, grid):
        # Every pixel any scene has lies in the calibration window, beyond a halo's reach of its edges: its whole
        # analysis is the area's (the chunks would repeat it with the same numbers, and the seams could only split it).
        logger.info(f"{len(chunks)} chunk(s) planned; every scene's data lies inside the {window.width} x "
                    f"{window.height} px calibration window, whose analysis is the area's: no chunk is run")
        polygons = describe_polygons(calib_det.polygons, grid=grid, times=[r.acquired_utc for r in calib_det.records],
                                     settlement=settlement) if len(calib_det.polygons) else empty_polygons(grid.crs)
        logger.info(f"{len(polygons)} polygon(s); 0 piece(s) merged across chunk edges")
        stage_done()
        return ChunkedDetection(polygons=polygons, records=calib_det.records, all_records=all_records,
                                sources=sources, footprints=footprints, halo_px=halo,
                                calibration=calibration, calibration_grid=window, calibration_detection=calib_det,
                                index_name=calib_det.index_name, grid=grid, chunks=len(chunks), pieces_merged=0,
                                whole_window=True)
    logger.info(f"{len(chunks)} chunk(s) of up to {chunk_px} px with a {halo} px halo")
    # What every chunk shares is bound once: dask would otherwise walk the scenes' records and the calibration
    # (hundreds of small objects) again for each chunk's task, a second on a search's hundred chunks.
    run_chunk = functools.partial(_detect_chunk, sources, footprints, halo_px=halo, params=params, calibration=calibration,
                                  records=all_records, settlement=settlement)
    tasks = [dask.delayed(run_chunk)(c) for c in chunks]
    options: dict[str, Any] = {"scheduler": scheduler}
    if workers:
        options["num_workers"] = workers
    # rasterio wraps its in-memory datasets in warnings.catch_warnings(), which is process-wide: a worker thread
    # leaving that block restores filters under another one still inside it, whose NotGeoreferencedWarning then
    # escapes. The readers check georeferencing themselves (readers/rasters.py), so the warning is muted here,
    # before any worker starts.
    stage_done()  # the main thread waits for the chunks: their stages are timed on the threads that run them
    # Chunks already run one per core: a BLAS pool per chunk as wide as the machine would oversubscribe it.
    with _ChunkProgress(len(tasks)), warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
        results = dask.compute(*tasks, **options)
    found = [r for r in results if not r.empty]
    mark_stage("seams: merging pieces across chunk edges")
    if found:
        merged, n_merged = merge_across_edges(gpd.GeoDataFrame(pd.concat(found, ignore_index=True), geometry="geometry",
                                                               crs=grid.crs), _inner_edges(grid, chunks))
        polygons = describe_polygons(merged, grid=grid, times=[r.acquired_utc for r in calib_det.records],
                                     settlement=settlement)
    else:
        polygons, n_merged = empty_polygons(grid.crs), 0
    logger.info(f"{len(polygons)} polygon(s); {n_merged} piece(s) merged across chunk edges")
    stage_done()
    return ChunkedDetection(polygons=polygons, records=calib_det.records, all_records=all_records,
                            sources=sources, footprints=footprints, halo_px=halo,
                            calibration=calibration, calibration_grid=window, calibration_detection=calib_det,
                            index_name=calib_det.index_name, grid=grid, chunks=len(chunks), pieces_merged=n_merged)
