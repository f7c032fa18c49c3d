"""A simulated search box: villages, bush fires and field fires over several kilometres, with truth.

Investigators who do not know where the burned villages lie scan a box of several kilometres and
want every burned village ranked above every bush or field fire. This module simulates such a box
on the demo's five dates (26, 27, 28, 31 January and 1 February 2024, 10:38 UTC) so that a
wide-area search can be scored against known answers:

- five villages of 25-90 walled compounds: two burned by an attack on the evening of 27 January
  (visible from 28 January), one burned on the morning of 1 February (visible that day), two never
  burned; most but not all compounds of a burned village burn, each as its own char patch;
- four bush fires (5-80 ha, irregular, wind-driven) in savanna, one of them a few hundred metres
  from a village burned the same day, and four stubble burns of harvested millet fields
  (0.5-3 ha), on various dates, two of them on the attack dates;
- a December scar that is dark on every date (not a change, so not in the truth), moderate
  harmattan haze on 1 February, and a cumulus on 31 January whose cloud and shadow both lie over
  the village burned on 1 February, so part of it is last seen clear on 28 January.

Why one ground for the whole box, not one ``simulate_village_series`` per village: a real scene
has one misregistration, one gain and offset, one haze and one noise level over its whole
footprint, and the analysis co-registers with one shift per scene; tiles simulated separately
would each carry their own. So the box paints a single 1 m ground with the village engine's own
painters (:mod:`pipeline.sim.ground`: compounds, burned footprints, field burns; spectra of
:mod:`pipeline.sim.materials`) and images it once per scene with the engine's sampler, PSF,
radiometry and UDM2 (:mod:`pipeline.sim.imaging`) and its haze, tree shadows and cumulus
(:mod:`pipeline.sim.sky`). Char therefore reads exactly as in the demo. The cumulus lives on a window
around its village only, so a 6 km box needs no box-sized cloud arrays; it takes about 1.5 GB and half
a minute on two cores. Everything is deterministic from ``seed``, and every object and file
says it is simulated.

The layout, painting and imaging live in :mod:`pipeline.sim.search_ground`; this module holds the
public API, the truth tables and metadata, and writes the files.

Examples
--------
>>> grid = search_box_grid((-3.785, 13.835), size_m=2500.0)
>>> grid.shape, grid.crs
((833, 833), 'EPSG:32630')
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from functools import partial
from typing import Any, Callable, Literal

import geopandas
import numpy as np
import pyproj
import shapely
from shapely.geometry import Polygon
from shapely.geometry import shape as geojson_shape

from pipeline.aoi import Aoi, utm_crs_for
from pipeline.sim.demo import write_scenes
from pipeline.errors import AoiError, OutputError, ParameterError
from pipeline.grid import Grid, grid_for_bounds
from pipeline.sim.ground import crs_transform, Landscape, stream_rng
from pipeline.sim.materials import ALL_SPECTRA, SPECTRA
from pipeline.preflight import SEARCH_BOX_SIDE_M
from pipeline.sim.search_ground import (SEARCH_BOX_VERSION, ACQUISITIONS, CLOUD_SCENE, HAZE, SUB, SearchSite, WindowCloud,
                            acquire, first_visible_pixels, layout_sites, paint_ground, plan_cloud)
from pipeline.sim.simulate import SIMULATOR_VERSION, SimulatedScene
from pipeline.sim.sky import OBSCURED
from pipeline.stages.sky import sun_angles
from pipeline.sim.truth import iso
from pipeline.outputs.write import remove_stale_staging, staging_folder, write_geotiff, write_json, write_vector

__all__ = ["SEARCH_BOX_VERSION", "search_box_scenes", "SiteKind", "SimulatedSearchBox", "ensure_search_box", "search_box_grid",
           "simulate_search_box", "write_search_box"]

#: What a truth site is: a village that burned or did not, or a fire that is not a village.
SiteKind = Literal["village_burned", "village_unburned", "bush_fire", "field_fire"]

_SIDE_LIMITS_M = SEARCH_BOX_SIDE_M  # smaller leaves no room for the sites; larger exceeds ~3 GB


@dataclass(frozen=True, eq=False)
class SimulatedSearchBox:
    """A simulated search box: five scenes of several km and the truth behind them (arrays read-only).

    Attributes
    ----------
    grid:
        The box grid (UTM, north-up, 3 m); every scene and the truth raster lie on it.
    scenes:
        The five acquisitions, time-sorted, laid out as :class:`pipeline.sim.simulate.SimulatedScene`.
    sites:
        One row per site, CRS ``grid.crs``: ``site_id`` (``"village-1"``, ``"bush-2"``,
        ``"field-3"``...), ``kind`` (:data:`SiteKind`), ``first_visible_index`` (-1 never),
        ``first_visible`` (ISO UTC, "" never), ``burned_area_m2``, ``event``, ``assumed_time``,
        ``area_m2`` (of the outline), ``n_compounds`` and ``n_compounds_burned`` (villages),
        ``obscured_scene`` (the cloud scene if its cloud or shadow covers any of the site, else
        -1), ``obscured_fraction`` (share of the outline covered), ``last_clear_before`` (ISO UTC
        of the latest scene before the burn that hides none of it), ``nearest_village_m``
        (outline to the nearest other village outline), and the geometry: the built-up area of
        a village, the outline of a fire (the tree crowns it spared lie inside it but are not in
        ``burned_area_m2`` nor in the truth raster).
    truth_first_visible:
        int16 ``(H, W)``: the first scene on which at least half of the pixel is burned, whether
        or not a cloud hides it then; -1 never burned.
    metadata:
        JSON-able: ``simulated``, ``seed``, ``version``, ``box``, ``description``,
        ``haze_scene_indices``, ``cloud_scene_index``, the cloud, events, static scars, notes.
    compounds:
        Every compound of every village, CRS ``grid.crs``: ``site_id``, ``compound_id``,
        ``burned``, ``first_visible_index``, ``burned_area_m2``, ``obscured_scene`` (the cloud
        scene if it hides at least a quarter of the compound), ``obscured_fraction``,
        ``last_clear_before`` and the compound's walls as geometry.
    """

    grid: Grid
    scenes: tuple[SimulatedScene, ...]
    sites: geopandas.GeoDataFrame
    truth_first_visible: np.ndarray
    metadata: dict
    compounds: geopandas.GeoDataFrame = field(default_factory=geopandas.GeoDataFrame)

    def __repr__(self) -> str:
        kinds = self.sites["kind"].value_counts().to_dict()
        return (f"SimulatedSearchBox(simulated, {self.grid.width}x{self.grid.height} px, "
                f"{', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")


# --------------------------------------------------------------------------- public API
def search_box_grid(centre_lonlat: tuple[float, float], size_m: float = 6000.0,
                    resolution_m: float = 3.0) -> Grid:
    """A ``size_m`` square, north-up grid in the UTM zone of ``centre_lonlat``, snapped to its pixel.

    The corner is snapped to a multiple of ``resolution_m`` (as :func:`pipeline.grid.grid_for_bounds`
    snaps), and the side is exactly ``round(size_m / resolution_m)`` pixels.

    Examples
    --------
    >>> g = search_box_grid((-3.785, 13.835), 6000.0)
    >>> g.shape, g.resolution
    ((2000, 2000), 3.0)
    """
    lon, lat = (float(v) for v in centre_lonlat)
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise ParameterError(f"centre {centre_lonlat} is not a (lon, lat) pair inside the UTM zones; "
                             "give longitude first, in degrees")
    if not (size_m > 0 and resolution_m > 0):
        raise ParameterError(f"size_m and resolution_m must be positive, got {size_m} and {resolution_m}")
    crs = utm_crs_for(lon, lat)
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    n = int(round(size_m / resolution_m))
    half = n * resolution_m / 2
    x0 = round((x - half) / resolution_m) * resolution_m
    y1 = round((y + half) / resolution_m) * resolution_m
    return grid_for_bounds((x0, y1 - n * resolution_m, x0 + n * resolution_m, y1), crs, resolution_m)


def simulate_search_box(grid: Grid, *, seed: int = 20240127) -> SimulatedSearchBox:
    """Simulate five PlanetScope-like scenes of a search box, with its villages, fires and truth.

    The truth is drawn before any pixel is imaged: the sites are laid out, the 1 m ground is
    painted and burned, the cumulus is planned over the village burned on 1 February, then each
    acquisition images the ground as it stood at its time.

    Parameters
    ----------
    grid:
        A north-up 3 m grid in a metric projected CRS, 2-8 km a side (see :func:`search_box_grid`).
        Site sizes are meant for 6 km; on smaller boxes villages and bush fires shrink (never
        below 25 compounds or 5 ha).
    seed:
        Everything (layout, ground, fires, shifts, satellites, cloud, noise) derives from it.

    Returns
    -------
    SimulatedSearchBox

    Raises
    ------
    ParameterError
        (a ``ValueError``) for a grid of another pixel size, CRS or size, or a bad seed.
    """
    _check(grid, seed)
    lon, lat = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(
        (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2)
    suns = [sun_angles(lon, lat, a.time) for a in ACQUISITIONS]
    sites, static_scar = layout_sites(grid, seed)
    land = paint_ground(grid, sites, static_scar, seed)
    cloud = plan_cloud(land, next(s for s in sites if s.site_id == "village-3"), suns[CLOUD_SCENE], seed)
    visible = np.full(256, 255, dtype=np.uint8)  # scene index at which each burn code shows
    for s in sites:
        if s.code:
            visible[s.code] = s.visible
    ids = stream_rng(seed, 7050).choice(np.arange(1000, 2600), len(ACQUISITIONS), replace=False)
    satellites = [f"SIM-{n}" for n in ids]  # one satellite, so one gain and offset, per scene
    scenes = tuple(acquire(land, k, visible, seed=seed, satellite=satellites[k], sun=suns[k],
                            cloud=cloud if k == CLOUD_SCENE else None) for k in range(len(ACQUISITIONS)))
    truth = first_visible_pixels(land, visible)
    compounds = _compound_table(land, sites, cloud)
    table = _site_table(land, sites, cloud, compounds)
    metadata = _metadata(grid, seed, (lon, lat), sites, cloud, static_scar, land)
    return SimulatedSearchBox(grid=grid, scenes=scenes, sites=table, truth_first_visible=truth,
                              metadata=metadata, compounds=compounds)


def write_search_box(box: SimulatedSearchBox, folder: Path) -> Path:
    """Write a box as a Planet delivery plus its truth into ``folder``, all or nothing.

    Each scene is written as the demo writes its scenes (SR GeoTIFF, UDM2, metadata JSON), so
    :func:`pipeline.readers.recognise.recognise` finds five Planet scenes, all simulated. Beside them:
    ``sites_SIMULATED.geojson`` and ``compounds_SIMULATED.geojson`` (EPSG:4326, as GeoJSON
    requires), ``truth_first_visible_SIMULATED.tif`` (on the box grid, -1 never burned) and
    ``search_box_SIMULATED.json`` (the metadata, written last). The folder is assembled in a
    locked staging folder beside ``folder`` and renamed when complete, so a half-written box never
    exists under its final name (the staging folder of a killed writer is removed by the next
    one). Returns ``folder``.

    Raises
    ------
    OutputError
        (an ``OSError``) when ``folder`` already holds files, or cannot be written.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"{folder}: already exists and is not an empty folder; a search box is never "
                          "written over another; remove it or choose another folder")
    with staging_folder(folder.parent, folder.name, root=folder.parent) as staging:
        write_scenes(box.scenes, box.grid, staging, generator=f"burnscan search box v{SEARCH_BOX_VERSION}")
        write_geotiff(staging / "truth_first_visible_SIMULATED.tif", box.truth_first_visible, box.grid, nodata=None,
                      tags={"SIMULATED": "yes", "MEANING": "index of first scene showing the burn; -1 never"}, root=staging)
        for name in ("sites", "compounds"):  # GeoJSON is lon/lat by its standard (RFC 7946)
            write_vector(staging / f"{name}_SIMULATED.geojson", {name: getattr(box, name).to_crs("EPSG:4326")},
                         driver="GeoJSON", root=staging)
        grid = box.grid
        write_json(staging / "search_box_SIMULATED.json", {
            **box.metadata,
            "grid": {"crs": grid.crs, "transform": list(grid.transform)[:6], "width": grid.width,
                     "height": grid.height},
            "scenes": [{"scene_id": s.scene_id, "acquired": s.metadata["acquired"],
                        "true_shift_px": list(s.true_shift_px)} for s in box.scenes],
            "files": {"sites": "sites_SIMULATED.geojson (EPSG:4326)",
                      "compounds": "compounds_SIMULATED.geojson (EPSG:4326)",
                      "truth": "truth_first_visible_SIMULATED.tif (box grid, int16, -1 never burned)"},
        }, root=staging)
        try:
            os.rename(staging, folder)
        except OSError as exc:
            raise OutputError(f"{folder}: the box is complete but could not be moved into place "
                              f"({exc.strerror or exc}); remove {folder} if it is left over, and retry") from None
    return folder


def ensure_search_box(data_root: Path, aoi: Aoi, *, resolution_m: float = 3.0, size_m: float = 6000.0,
                      seed: int = 20240127) -> tuple[Path, SimulatedSearchBox | None]:
    """The simulated box centred on ``aoi``'s ``search_area``, written once under ``data_root/<aoi>/``.

    The folder is named after the version, seed, size, resolution and the grid's UTM zone and
    corner, so a change of any of them gives a new folder and never rewrites one an earlier run
    cited. Returns ``(folder, box)`` when it was simulated now and ``(folder, None)`` when a
    complete folder was already there.

    Raises
    ------
    AoiError
        When the AOI has no readable ``search_area`` polygon.
    OutputError
        When an incomplete folder of that name is in the way.
    """
    area = aoi.properties.get("search_area")
    try:
        centre = geojson_shape(area).centroid
    except Exception:  # shapely raises several types for malformed GeoJSON
        raise AoiError(f"AOI {aoi.name!r} has no readable search_area (got {str(area)[:60]!r}); add a lon/lat "
                       "GeoJSON Polygon as its 'search_area' property") from None
    grid = search_box_grid((centre.x, centre.y), size_m, resolution_m)
    epsg = grid.crs.split(":")[-1]
    name = (f"search-box-SIMULATED-v{SEARCH_BOX_VERSION}-seed{seed}-{int(round(size_m))}m-"
            f"{int(round(resolution_m * 100))}cm-{epsg}-E{int(grid.transform.c)}-N{int(grid.transform.f)}")
    folder = Path(data_root) / aoi.name / name
    marker = folder / "search_box_SIMULATED.json"
    remove_stale_staging(folder.parent)  # a writer killed half-way left one; a running one keeps its lock
    if marker.is_file():
        return folder, None
    box = simulate_search_box(grid, seed=seed)
    try:
        write_search_box(box, folder)
    except OutputError:
        if not marker.is_file():  # not a concurrent run finishing the same box first
            raise
    return folder, box


# --------------------------------------------------------------------------- arguments
def _check(grid: Grid, seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be an integer >= 0, got {seed!r}")
    t = grid.transform
    if not math.isclose(grid.resolution, SUB) or t.b != 0 or t.d != 0 or not math.isclose(t.e, -SUB):
        raise ParameterError(f"the search box images 3 m north-up pixels; got a grid with transform {tuple(t)[:6]}; "
                             "build it with search_box_grid(..., resolution_m=3.0)")
    crs = pyproj.CRS(grid.crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise ParameterError(f"grid CRS {grid.crs!r} is not a metric projected CRS; use search_box_grid for a UTM grid")
    lo, hi = _SIDE_LIMITS_M
    sides = (grid.width * SUB, grid.height * SUB)
    if min(sides) < lo or max(sides) > hi:
        raise ParameterError(f"a search box is {lo / 1000:.0f}-{hi / 1000:.0f} km a side, got "
                             f"{sides[0]:.0f} x {sides[1]:.0f} m; pass size_m within that range to search_box_grid")


# --------------------------------------------------------------------------- truth tables
def _last_clear_before(visible: int, hidden_on_cloud_scene: bool) -> str:
    """ISO time of the latest scene before ``visible`` that hides none of it ("" if none or never burned)."""
    before = [j for j in range(max(visible, 0)) if not (j == CLOUD_SCENE and hidden_on_cloud_scene)]
    return iso(ACQUISITIONS[before[-1]].time) if before else ""


def _compound_table(land: Landscape, sites: list[SearchSite], cloud: WindowCloud) -> geopandas.GeoDataFrame:
    """One row per compound of every village, with its burn and how the cumulus hides it."""
    to_crs, hidden, rows = crs_transform(land), cloud.hidden(), []
    cid = 0
    for s in (s for s in sites if s.kind.startswith("village")):
        for p, fp in zip(s.plans, s.burns):
            walls = Polygon(p.corners())
            share = cloud.share(walls, hidden, land.labels.shape)
            seen = s.visible if fp is not None else -1
            rows.append({"site_id": s.site_id, "compound_id": cid, "burned": fp is not None,
                         "first_visible_index": seen, "burned_area_m2": round(fp.area, 1) if fp is not None else 0.0,
                         "obscured_scene": CLOUD_SCENE if share >= OBSCURED else -1,
                         "obscured_fraction": round(share, 3),
                         "last_clear_before": _last_clear_before(seen, share >= OBSCURED),
                         "geometry": to_crs(walls)})
            cid += 1
    return geopandas.GeoDataFrame(rows, geometry="geometry", crs=land.grid.crs)


def _site_table(land: Landscape, sites: list[SearchSite], cloud: WindowCloud,
                compounds: geopandas.GeoDataFrame) -> geopandas.GeoDataFrame:
    """One row per site: the ground truth a search is scored against, in the grid's CRS."""
    to_crs, hidden, shape = crs_transform(land), cloud.hidden(), land.labels.shape
    villages = [s.outline for s in sites if s.kind.startswith("village")]
    rows = []
    for s in sites:
        is_village = s.kind.startswith("village")
        burns = [fp for fp in s.burns if fp is not None]
        share = cloud.share(s.outline, hidden, shape)
        burn_hidden = any(cloud.share(fp, hidden, shape) > 0 for fp in burns) if is_village else share > 0
        mine = compounds[compounds["site_id"] == s.site_id]
        rows.append({
            "site_id": s.site_id, "kind": s.kind, "first_visible_index": s.visible,
            "first_visible": iso(ACQUISITIONS[s.visible].time) if s.visible >= 0 else "",
            "burned_area_m2": round(sum(fp.area for fp in burns), 1), "event": s.event,
            "assumed_time": iso(s.when) if s.when else "", "area_m2": round(s.outline.area, 1),
            "n_compounds": len(mine), "n_compounds_burned": int(mine["burned"].sum()) if len(mine) else 0,
            "obscured_scene": CLOUD_SCENE if share > 0 else -1, "obscured_fraction": round(share, 3),
            "last_clear_before": _last_clear_before(s.visible, burn_hidden),
            "nearest_village_m": round(min(s.outline.distance(v) for v in villages if v is not s.outline), 1),
            "geometry": to_crs(s.outline)})
    return geopandas.GeoDataFrame(rows, geometry="geometry", crs=land.grid.crs)


def _metadata(grid: Grid, seed: int, centre: tuple[float, float], sites: list[SearchSite], cloud: WindowCloud,
              static_scar: Polygon, land: Landscape) -> dict:
    """The box's JSON-able record."""
    to_crs = crs_transform(land)
    kinds = [s.kind for s in sites]
    return {
        "simulated": True, "generator": "burnscan pipeline.sim.search_box", "version": SEARCH_BOX_VERSION,
        "simulator_version": SIMULATOR_VERSION, "seed": int(seed),
        "description": "Simulated search box: five villages (two burned by the attack of 27 January, visible "
                       "28 January; one burned on 1 February; two never burned), four bush fires and four "
                       "field stubble burns on various dates, an old static scar, harmattan haze on "
                       "1 February and a flagged cumulus with its shadow over the 1 February village on "
                       "31 January. Every burned village should rank above every fire.",
        "box": {"size_m": [grid.width * grid.resolution, grid.height * grid.resolution],
                "width": grid.width, "height": grid.height, "resolution_m": grid.resolution, "crs": grid.crs,
                "transform": list(grid.transform)[:6], "centre_lonlat": [round(c, 6) for c in centre]},
        "acquisitions": [iso(a.time) for a in ACQUISITIONS],
        "haze": list(HAZE), "haze_scene_indices": [k for k, h in enumerate(HAZE) if h != "none"],
        "cloud_scene_index": CLOUD_SCENE, "cloud": cloud.info,
        "site_counts": {k: kinds.count(k) for k in ("village_burned", "village_unburned", "bush_fire", "field_fire")},
        "events": [{"site_id": s.site_id, "event": s.event, "assumed_time": iso(s.when),
                    "first_visible_scene": s.visible, "first_visible": iso(ACQUISITIONS[s.visible].time)}
                   for s in sorted((s for s in sites if s.code), key=lambda s: s.code)],
        "static_scars": [{"what": "a December bush-fire scar, dark on every date: not a change, not in the truth",
                          "wkt": shapely.to_wkt(to_crs(static_scar), rounding_precision=1)}],
        "reflectance": {m: list(ALL_SPECTRA[m]) for m in SPECTRA},
        "notes": [
            "Synthetic scenes rendered by burnscan's search-box simulator: no satellite observed them.",
            "Reflectances are representative values after the USGS Spectral Library v7 (Kokaly et al. 2017) "
            "and Trigg & Flasse 2000 / Pereira et al. 1999, not measurements.",
            "One 1 m ground for the whole box, imaged once per scene: one shift, gain, offset and haze per scene.",
            "Burned villages: 75-92 % of compounds burn, each as its own footprint inside its walls.",
            "Bush and field fires turn fuel to char, scorch bare soil and spare tree crowns.",
            "truth_first_visible counts a pixel burned from the first scene on which at least half of it is.",
            "Tree shadows follow each scene's sun; they are not in the truth.",
        ],
    }


def search_box_scenes(size_m: float = 6000.0, seed: int = 20240127) -> Callable[[Aoi, Any, Path], tuple[Path, geopandas.GeoDataFrame]]:
    """Scenes and truth for :func:`pipeline.search.run_search` when no scene is given: the SIMULATED
    box of ``size_m`` and ``seed`` (made once under the data folder) and its sites.

    ``size_m`` is checked here, before any work, as the command line checks ``--box-size``.
    """
    from pipeline.preflight import check_search_options

    check_search_options(box_size_m=size_m)
    return partial(_box_and_truth, size_m=size_m, seed=seed)


def _box_and_truth(aoi: Aoi, params: Any, data_root: Path, *, size_m: float, seed: int) -> tuple[Path, geopandas.GeoDataFrame]:
    folder, _ = ensure_search_box(Path(data_root), aoi, resolution_m=params.resolution_m, size_m=size_m, seed=seed)
    return folder, geopandas.read_file(folder / "sites_SIMULATED.geojson")

