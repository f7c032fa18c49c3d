"""``burnscan search``: scan an AOI's whole search area for burned villages.

Where a village's location is known only to a commune (Ogota and Ouémbé: somewhere in a
~30 x 30 km box), the investigator first needs to find the burns. This runs the chunked
analysis (:mod:`pipeline.chunked`) over the AOI's ``search_area`` at full resolution,
groups the burns into clusters (:mod:`pipeline.stages.clusters`), ranks them settlement-like
first, and writes for each cluster its centre, area, first-seen bracket and a small
before/after card, so that a tight AOI can be drawn around each burned village.

Without ``--scenes`` the search runs on a SIMULATED search box (:mod:`pipeline.sim.search_box`)
inside the search area, and scores itself against that box's truth; every output then says
it is simulated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import geopandas as gpd
import numpy as np
from shapely.geometry import box, shape

from pipeline.aoi import AOI_DIR, Aoi, candidate_aoi_feature, load_aoi
from pipeline.chunked import ChunkedDetection, detect_chunked, load_window
from pipeline.stages.clusters import SETTLEMENT_LIKE, cluster_burns, score_search
from pipeline.config import NATIVE, Params, resolve_params
from pipeline.stages.coregister import apply_shifts
from pipeline.errors import AoiError, SceneError
from pipeline.grid import Grid, grid_for_bounds
from pipeline.readers.rasters import memoised_hashes, sha256_file
from pipeline.provenance.runlog import check_log_continues
from pipeline.provenance.manifest import input_entry, recorded_overrides, seal_manifest
from pipeline.stages.normalise import apply_fits
from pipeline.preflight import refuse_night_scenes, check_coreg_band, check_search_grid, check_search_options, scene_shape
from pipeline.provenance.versions import git_state, package_versions
from pipeline.outputs.report import scene_time
from pipeline.outputs.run_folder import SIMULATED_VECTORS
from pipeline.readers.recognise import recognise
from pipeline.resolution import DEMO_PIXEL_M, choose_resolution
from pipeline.outputs import figures as figs
from pipeline.outputs.composites import composite_problem
from pipeline.outputs.write import check_output_folder, finish_run_dir, new_run_dir, save_figures, write_json, write_text, write_vector

__all__ = ["SearchOutcome", "lat_lon_text", "search_grid", "run_search"]

logger = logging.getLogger(__name__)

_CARD_PAD_M = 120.0
_CARD_MIN_SIDE_M = 450.0


@dataclass(frozen=True)
class SearchOutcome:
    """Where a search wrote, what it found and, on a simulated box, how it scored."""

    run_dir: Path
    clusters: gpd.GeoDataFrame
    detection: ChunkedDetection
    simulated: bool
    score: dict | None
    manifest_sha256: str = ""
    """SHA-256 of the search's manifest, as chained in ``<out>/<aoi>/runs.log``."""


def lat_lon_text(lat: float, lon: float) -> str:
    """``13.82373 N, 3.80354 W``: hemispheres spelled out, never a minus sign before an E."""
    return f"{abs(lat):.5f} {'N' if lat >= 0 else 'S'}, {abs(lon):.5f} {'E' if lon >= 0 else 'W'}"


def search_grid(aoi: Aoi, resolution: float) -> Grid:
    """The AOI's search area on a grid in the AOI's UTM zone."""
    area = aoi.properties.get("search_area")
    if not area:
        raise AoiError(f"{aoi.path or aoi.name}: no search_area in the AOI file; add a lon/lat GeoJSON polygon "
                       f"'search_area' to its properties")
    outline = Aoi(aoi.name, shape(area)).projected(aoi.utm_crs)
    return grid_for_bounds(outline.bounds, aoi.utm_crs, resolution)


def _card(det: ChunkedDetection, cluster: Any, simulated: bool, tz_name: str) -> Any:
    """Before/after of one cluster: the last clear scene before it and the scene it was first seen on."""
    grid = det.grid
    left, bottom, right, top = cluster.geometry.bounds
    half = max(right - left + 2 * _CARD_PAD_M, top - bottom + 2 * _CARD_PAD_M, _CARD_MIN_SIDE_M) / 2
    cx, cy = (left + right) / 2, (bottom + top) / 2
    window = grid_for_bounds((cx - half, cy - half, cx + half, cy + half), grid.crs, grid.resolution)
    usable = np.flatnonzero(det.calibration.usable)
    halo = det.halo_px
    with memoised_hashes():
        stack, _ = load_window(det.sources, det.footprints, window.buffered(halo), det.all_records)
    stack = apply_fits(apply_shifts(stack.isel(time=usable), list(det.calibration.shifts)), [list(f) for f in det.calibration.fits])
    stack = stack.isel(y=slice(halo, halo + window.height), x=slice(halo, halo + window.width))
    after_i = int(cluster.first_seen_index)
    before_i = int(cluster.last_clear_index) if cluster.last_clear_index >= 0 else max(after_i - 1, 0)

    def scene(i: int):
        rec = det.records[i]
        out = stack["reflectance"].isel(time=i)
        out.attrs.update(acquired=rec.acquired_utc, time_of_day_known=rec.time_of_day_known, scene_id=rec.scene_id, crs=grid.crs)
        return out

    inside = det.polygons[det.polygons.intersects(cluster.geometry)]
    return figs.before_after_figure(
        scene(before_i), scene(after_i), before_clear=stack["clear"].isel(time=before_i),
        after_clear=stack["clear"].isel(time=after_i),
        title=f"Rank {cluster.rank}: {cluster.kind}, {cluster.burned_ha:.2f} ha",
        caption=(f"{'SIMULATED DATA, not a real place. ' if simulated else ''}Cluster {cluster.cluster_id} at "
                 f"{lat_lon_text(cluster.centre_lat, cluster.centre_lon)}; first seen {scene_time(det.records[after_i], tz_name)}, "
                 f"not visible on the clear scene of {scene_time(det.records[before_i], tz_name)}."),
        simulated=simulated, polygons_new=inside[inside["first_seen_index"] == after_i],
        polygons_earlier=inside[inside["first_seen_index"] != after_i], tz_name=tz_name)


def _markdown(aoi: Aoi, clusters: gpd.GeoDataFrame, det: ChunkedDetection, simulated: bool, score: dict | None,
              cards: dict[int, str], candidates: dict[int, str], coverage: float, tz_name: str) -> str:
    lines = [f"# Search for burned settlements: {aoi.display_name}", ""]
    if simulated:
        lines += ["**SIMULATED DATA.** These scenes are simulated; nothing here is evidence about a real place.", ""]
    lines += [f"Search area {det.grid.width * det.grid.resolution / 1000:.1f} x {det.grid.height * det.grid.resolution / 1000:.1f} km "
              f"at {det.grid.resolution:g} m ({det.grid.crs}); {coverage:.1%} of it covered by the scenes; "
              f"{det.chunks} chunk(s){' planned, none run: the scenes lie inside the calibration window, analysed whole' if det.whole_window else ''}, "
              f"{det.pieces_merged} polygon piece(s) merged across chunk edges.", "",
              "Scenes:", ""]
    for r in det.all_records:
        lines.append(f"- {r.scene_id}: {r.acquired_utc} ({scene_time(r, tz_name)}), {r.sensor}, "
                     f"sha256 {next(iter(r.sha256.values()), '')[:16]}")
    n_settle = int((clusters["kind"] == SETTLEMENT_LIKE).sum()) if len(clusters) else 0
    lines += ["", f"{len(clusters)} burned-area cluster(s), {n_settle} settlement-like. Ranked settlement-like first, "
              f"then by burned area. A cluster is a starting point for a tight AOI, not a finding: each "
              f"settlement-like one has a candidate AOI file to copy into aoi/ and run with burnscan detect.", "",
              "| rank | kind | score | burned ha | patches (compound-sized) | first seen (UTC) | last clear before (UTC) | centre | card | AOI file |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in clusters.itertuples():
        lines.append(f"| {c.rank} | {c.kind} | {c.settlement_score:.2f} | {c.burned_ha:.2f} | {c.n_patches} ({c.n_compound_sized}) | "
                     f"{c.first_seen} | {c.last_clear_before or 'none'} | {lat_lon_text(c.centre_lat, c.centre_lon)} | "
                     f"{cards.get(c.rank, '')} | {candidates.get(c.rank, '')} |")
    if score is not None:
        lines += ["", "## Check against the simulated truth", "",
                  f"- every burned village found: {score['all_villages_found']}",
                  f"- every burned village ranked above every bush or field fire: {score['villages_above_fires']}",
                  f"- no unburned village listed: {score['no_unburned_village']}",
                  f"- burned villages dated on their true first-visible scene: {score['dated_right']} of {len(score['villages'])}"]
        for v in score["villages"]:
            lines.append(f"- {v['site_id']}: rank {v['rank']}, called {v['kind_called']}")
    return "\n".join(lines) + "\n"


def run_search(
    aoi_name: str,
    *,
    out_root: Path = Path("out"),
    data_root: Path = Path("data"),
    scenes_dir: Path | None = None,
    aoi_dir: Path = AOI_DIR,
    overrides: dict[str, Any] | None = None,
    chunk_px: int = 1024,
    workers: int | None = None,
    max_cards: int = 12,
    simulated_box: Callable[[Aoi, Params, Path], tuple[Path, gpd.GeoDataFrame]] | None = None,
) -> SearchOutcome:
    """Search the AOI's ``search_area`` and write ``<out>/<aoi>/search/<run-id>/``.

    Without ``scenes_dir`` the scenes come from ``simulated_box(aoi, params, data_root)``,
    which returns a folder of SIMULATED scenes and their truth (the command line passes
    :func:`pipeline.sim.search_box.search_box_scenes`); the result is scored against it.
    Without either, there is nothing to search.
    """
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    # Checked before any work, as run_detect does: the options, the AOI file, the parameters,
    # the output folder and the search grid; then the scenes' count and bands.
    check_search_options(chunk_px=chunk_px, workers=workers, max_cards=max_cards)
    aoi = load_aoi(aoi_name, aoi_dir)
    requested = resolve_params(aoi.parameters, overrides, aoi_source=f"AOI file {aoi.path}")
    sources = None
    # Plain GeoTIFFs are read with the band map the AOI file names (search has no --bands: a search area's
    # deliveries are many, and one map for all of them belongs with the place).
    band_map = aoi.properties.get("band_map")

    def scenes_in(folder: Path) -> list:
        try:
            return recognise(folder, **({"bands": band_map} if band_map is not None else {}))
        except SceneError as exc:
            raise SceneError(str(exc).replace("a GeoTIFF with --bands", "a GeoTIFF whose bands the AOI file's band_map "
                                              "property names")) from None

    if requested.resolution_m != NATIVE:
        params = requested
    elif scenes_dir is not None:  # the grid follows the scenes, as detect's does (recorded parameters stay as asked)
        sources = scenes_in(Path(scenes_dir))
        params = replace(requested, resolution_m=choose_resolution([s.describe() for s in sources], requested).resolution_m)
    else:
        params = replace(requested, resolution_m=DEMO_PIXEL_M)  # the SIMULATED box is PlanetScope's 3 m
    grid = search_grid(aoi, float(params.resolution_m))
    check_output_folder(Path(out_root) / aoi.name)
    check_log_continues(Path(out_root) / aoi.name)  # searches are recorded in the AOI's run log too
    where = f"{aoi.path or aoi.name}: search_area"
    check_search_grid(grid, params=params, chunk_px=chunk_px, workers=workers, where=where)
    truth = None
    if scenes_dir is None:
        if simulated_box is None or not aoi.takes_the_demo:  # as detect's demo: never someone else's place
            raise SceneError(f"{aoi.path or aoi.name}: no scenes to search; give --scenes DIR (the SIMULATED search box "
                             f"runs on the project's own AOIs, and on an AOI file that asks for it with "
                             f"\"simulated_demo\": true)")
        folder, truth = simulated_box(aoi, params, Path(data_root))
        logger.info(f"no scenes given: using the SIMULATED search box in {folder}")
        scenes_dir = folder
    sources = sources or scenes_in(Path(scenes_dir))
    infos = [s.describe() for s in sources]  # metadata only: no pixel read yet
    refuse_night_scenes(infos, aoi)
    scenes, bands = scene_shape(infos)
    check_search_grid(grid, params=params, chunk_px=chunk_px, workers=workers, scenes=scenes, bands=bands, where=where)
    for info in infos:
        check_coreg_band(params, info.bands, where=f"{scenes_dir}: scene {info.scene_id}")
        problem = composite_problem(info.bands, fix="give --cards 0, or scenes with it") if max_cards and info.bands else None
        if problem:  # said now, not after every chunk, when the first card is drawn
            raise SceneError(f"{scenes_dir}: scene {info.scene_id} {problem}")
    tz_name = aoi.local_zone
    try:
        det = detect_chunked(sources, grid, params=params, chunk_px=chunk_px, workers=workers)
    except SceneError as exc:  # name the folder: the scenes' own names do not say which delivery they came from
        raise SceneError(f"{scenes_dir}: {exc}") from None
    simulated = any(r.simulated for r in det.all_records)
    times = [r.acquired_utc for r in det.records]
    clusters = cluster_burns(det.polygons, times=times)
    score = score_search(clusters, truth) if truth is not None and simulated else None
    covered = gpd.GeoSeries(det.footprints, crs=grid.crs).union_all().intersection(box(*grid.bounds)).area
    coverage = float(covered / ((grid.width * grid.resolution) * (grid.height * grid.resolution)))

    run_id, partial = new_run_dir(Path(out_root) / aoi.name, "search", now=started)
    tag = "_SIMULATED" if simulated else ""
    cards: dict[int, str] = {}
    to_save = []
    for c in clusters.head(max_cards).itertuples():
        name = f"cards/rank{c.rank:02d}_{c.cluster_id}{tag}.png"
        to_save.append((partial / name, _card(det, c, simulated, tz_name)))
        cards[c.rank] = name
    save_figures(to_save, root=partial)
    candidates: dict[int, str] = {}
    for c in clusters[clusters["kind"] == SETTLEMENT_LIKE].itertuples():
        name = f"{aoi.name}-{'sim-' if simulated else ''}c{c.rank:02d}"
        left, bottom, right, top = c.geometry.bounds
        side = max(float(aoi.properties.get("aoi_size_m", 3000.0)), right - left + 600.0, top - bottom + 600.0)
        feature = candidate_aoi_feature(
            aoi, name, (c.centre_lon, c.centre_lat), side_m=side, simulated=simulated,
            source=f"burnscan search run {run_id}, cluster {c.cluster_id} (rank {c.rank}, {c.kind}, first seen {c.first_seen})")
        candidates[c.rank] = f"aoi_candidates{tag}/{name}.geojson"
        write_json(partial / candidates[c.rank], feature, root=partial)
    frame_4326 = clusters.to_crs("EPSG:4326").assign(simulated=simulated)
    # Simulated features say so in every row and layer description, as a village run's do (run_folder.write_findings).
    description = SIMULATED_VECTORS if simulated else None
    write_vector(partial / f"clusters{tag}.geojson", {"clusters": frame_4326}, driver="GeoJSON", root=partial,
                 description=description)
    write_text(partial / f"clusters{tag}.csv", frame_4326.drop(columns="geometry").to_csv(index=False), root=partial)
    write_vector(partial / f"burns{tag}.gpkg", {"polygons": det.polygons.assign(simulated=simulated),
                                                "clusters": clusters.assign(simulated=simulated)}, root=partial,
                 description=description)
    write_text(partial / f"search{tag}.md", _markdown(aoi, clusters, det, simulated, score, cards, candidates, coverage, tz_name),
               root=partial)
    summary = {"aoi": aoi.name, "simulated": simulated, "coverage": round(coverage, 4), "clusters": len(clusters),
               "settlement_like": int((clusters["kind"] == SETTLEMENT_LIKE).sum()) if len(clusters) else 0,
               "score": score, "thresholds": [t.as_dict() if t else None for t in det.calibration_detection.thresholds],
               "shifts": [s.as_dict() for s in det.calibration.shifts], "chunks": det.chunks,
               "pieces_merged": det.pieces_merged, "analysed_whole": det.whole_window}
    write_json(partial / f"search{tag}.json", summary, root=partial)
    digest = seal_manifest(partial, {
        "kind": "search", "run_id": run_id, "aoi": aoi.name, "simulated": simulated,
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "seconds": round(time.perf_counter() - clock, 2),
        "code": git_state(), "versions": package_versions(), "parameters": requested.as_dict(),
        "overrides": recorded_overrides(overrides),
        "chunk_px": chunk_px, "grid": {"crs": grid.crs, "transform": list(grid.transform)[:6], "width": grid.width,
                                       "height": grid.height},
        "aoi_file": (input_entry(aoi.path, sha256_file(aoi.path)) if aoi.path else {"path": None, "sha256": None}),
        "inputs": [{"scene_id": r.scene_id, "acquired_utc": r.acquired_utc, "simulated": r.simulated,
                    "files": [input_entry(r.files[k], r.sha256[k], role=k) for k in r.files]}
                   for r in det.all_records],
    }, aoi_folder=Path(out_root) / aoi.name)
    return SearchOutcome(run_dir=finish_run_dir(partial), clusters=clusters, detection=det, simulated=simulated, score=score,
                         manifest_sha256=digest)
