"""The embedded demo: simulated scenes of an AOI, written once and reused.

The simulator is deterministic, so the demo folder is named after its version, seed and
grid: a change of any of them gives a new folder and never rewrites scenes an earlier
run cited by hash. The folder is assembled in a locked staging folder and renamed when
complete, so a half-written demo is never mistaken for a whole one; the staging folder of a
generation that was killed is removed the next time the demo is looked for. Every file name
carries ``SIMULATED`` and every GeoTIFF a ``SIMULATED=yes`` tag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import geopandas as gpd
import numpy as np
import shapely

from pipeline.aoi import Aoi
from pipeline.grid import Grid
from pipeline.sim.simulate import (SIMULATOR_VERSION, SimulatedScene, SimulatedSeries, simulate_village_series,
                       simulated_footprint_map)
from pipeline.outputs.write import remove_stale_staging, staging_folder, write_geotiff, write_json, write_text, write_vector

__all__ = ["DemoScenes", "demo_grid", "ensure_demo_scenes", "demo_scenes", "write_scenes", "DEMO_SEED"]

DEMO_SEED = 20240127
_BANDS = ["blue", "green", "red", "nir"]
_UDM2_BANDS = ["clear", "snow", "shadow", "light_haze", "heavy_haze", "cloud", "confidence", "udm1"]
_LAYOUT = 3  # files in a demo folder; bumped when a file is added, so old folders are not reused
_SIM_MARGIN_M = 210.0  # beyond the analysis margin, so shifted scenes still cover it


@dataclass(frozen=True)
class DemoScenes:
    """Where a demo's scenes and truth lie."""

    folder: Path
    grid: Grid
    truth_raster: Path
    truth_polygons: Path
    truth_json: Path


def demo_grid(aoi: Aoi, resolution: float, margin_m: float) -> Grid:
    """The grid the simulator draws on: the AOI grid grown by the analysis and a shift margin."""
    pixels = int(np.ceil((margin_m + _SIM_MARGIN_M) / resolution))
    return aoi.analysis_grid(resolution).buffered(pixels)


def _village_size(grid: Grid) -> tuple[int, int]:
    """Compounds in the village and burned on 27 January, scaled to small test AOIs."""
    side_km = min(grid.width, grid.height) * grid.resolution / 1000.0
    if side_km >= 2.5:
        return 220, 150
    n = max(12, int(220 * (side_km / 2.5) ** 2))
    return n, max(1, int(round(n * 150 / 220)))


def write_scenes(scenes: Sequence[SimulatedScene], grid: Grid, folder: Path, *,
                 generator: str = f"burnscan simulator v{SIMULATOR_VERSION}") -> None:
    """Write simulated scenes as a Planet delivery would hold them, so the Planet reader finds them.

    Each scene gives ``<id>_3B_AnalyticMS_SR_SIMULATED.tif``, ``<id>_3B_udm2_SIMULATED.tif`` and
    ``<id>_metadata_SIMULATED.json``; every GeoTIFF carries ``SIMULATED=yes`` and ``generator``.
    Nothing is written outside ``folder``.
    """
    for scene in scenes:
        tags = {"SIMULATED": "yes", "ACQUIRED": scene.metadata["acquired"], "SCENE_ID": scene.scene_id,
                "SATELLITE_ID": scene.satellite_id, "GENERATOR": generator}
        bands = list(scene.metadata.get("bands", _BANDS))
        write_geotiff(folder / f"{scene.scene_id}_3B_AnalyticMS_SR_SIMULATED.tif", scene.reflectance, grid,
                      nodata=0, band_names=bands, tags=tags, root=folder)
        write_geotiff(folder / f"{scene.scene_id}_3B_udm2_SIMULATED.tif", scene.udm2, grid,
                      band_names=_UDM2_BANDS, tags=tags, root=folder)
        write_json(folder / f"{scene.scene_id}_metadata_SIMULATED.json",
                   {"id": scene.scene_id, "type": "Feature", "properties": scene.metadata}, root=folder)


def _write_series(series: SimulatedSeries, folder: Path) -> None:
    write_scenes(series.scenes, series.grid, folder)
    write_geotiff(folder / "truth_first_visible_SIMULATED.tif", series.truth_first_visible, series.grid,
                  nodata=None, tags={"SIMULATED": "yes", "MEANING": "index of first scene showing the burn; -1 never"}, root=folder)
    burns = series.truth_burns
    # The settlement outline is an input a user would draw or take from footprints, not truth.
    outline = gpd.GeoDataFrame({"name": ["settlement"], "simulated": [True]}, geometry=[series.settlement], crs=series.grid.crs)
    write_vector(folder / "settlement_SIMULATED.geojson", {"settlement": outline.to_crs("EPSG:4326")}, driver="GeoJSON",
                 root=folder)
    layers = {"burns": burns, "compounds": series.compounds, "structures": series.structures}
    if series.metadata.get("changes"):  # the non-fire changes, as a layer of their own
        layers["changes"] = changes_layer(series.metadata["changes"], series.grid.crs)
    write_vector(folder / "truth_burns_SIMULATED.gpkg", layers, root=folder)
    # A footprint layer as an open dataset would give it: off by a few metres, some buildings missing.
    footprints = simulated_footprint_map(series.structures, series.settlement, seed=series.metadata["seed"])
    write_vector(folder / "buildings_SIMULATED.gpkg", {"buildings": footprints}, root=folder)
    if series.metadata["scenario"] == "demo":
        write_text(folder / "fires_viirs_SIMULATED.csv", _fires_csv(series), root=folder)
    write_json(
        folder / "truth_SIMULATED.json",
        {
            **series.metadata,
            "simulated": True,
            "grid": {"crs": series.grid.crs, "transform": list(series.grid.transform)[:6], "width": series.grid.width, "height": series.grid.height},
            "scenes": [
                {"scene_id": s.scene_id, "acquired": s.metadata["acquired"], "true_shift_px": list(s.true_shift_px)}
                for s in series.scenes
            ],
            "settlement_wkt": series.settlement.wkt,
        },
        root=folder,
    )


def changes_layer(changes: list[dict[str, Any]], crs: str) -> gpd.GeoDataFrame:
    """The series' dated non-fire changes as features: what changed, when it shows, where."""
    rows = [{"change": c["change"], "what": c["what"],
             "scenes": ", ".join(c.get("scenes") or [c.get("first_visible", "")]),
             "simulated": True, "geometry": shapely.from_wkt(c["wkt"])} for c in changes]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


_FIRMS_HEADER = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight,type"


def _fires_csv(series: SimulatedSeries) -> str:
    """A VIIRS active-fire archive consistent with the demo's story, labelled SIMULATED.

    The attack of the 27th begins at 18:00 local (= UTC); thatch burns out within hours,
    but granaries smoulder, so the NOAA-20 night pass at 01:12 catches two weak pixels. The
    return on 1 February at dawn falls between the 01:30 and 13:30 passes: no detection,
    which is not evidence of no fire. A field fire 5 km away on the 29th and an old field
    burn on the 25th are in the archive too (too far, too early), and one row arrives
    truncated, as downloads sometimes do.
    """
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(series.grid.crs, "EPSG:4326", always_xy=True)
    first = series.compounds[series.compounds["event"] == "attack-2024-01-27"]
    rng = np.random.default_rng([series.metadata["seed"], 91])
    picks = first.geometry.centroid.iloc[rng.choice(len(first), 2, replace=False)] if len(first) >= 2 else first.geometry.centroid
    centre = series.settlement.centroid
    rows = []
    for point, conf, frp in zip(picks, ("n", "l"), (3.4, 1.9)):
        # VIIRS puts a detection at its 375 m pixel's centre: up to ~200 m from the fire.
        lon, lat = to_lonlat.transform(point.x + rng.uniform(-150, 150), point.y + rng.uniform(-150, 150))
        rows.append(f"{lat:.5f},{lon:.5f},318.6,0.41,0.37,2024-01-28,112,N20,VIIRS,{conf},2.0NRT,281.4,{frp},N,0")
    lon, lat = to_lonlat.transform(centre.x + 5000, centre.y - 800)
    rows.append(f"{lat:.5f},{lon:.5f},341.2,0.39,0.36,2024-01-29,1318,N,VIIRS,h,2.0NRT,296.0,12.7,D,0")
    lon, lat = to_lonlat.transform(centre.x - 600, centre.y + 300)
    rows.append(f"{lat:.5f},{lon:.5f},329.9,0.45,0.39,2024-01-25,1342,N20,VIIRS,n,2.0NRT,293.1,5.2,D,0")
    rows.append(f"{lat:.5f},{lon:.5f},330.1,0.45")  # truncated
    return "\n".join([_FIRMS_HEADER, *rows]) + "\n"


def ensure_demo_scenes(
    aoi: Aoi,
    data_root: Path,
    *,
    resolution: float = 3.0,
    margin_m: float = 150.0,
    seed: int = DEMO_SEED,
    scenario: str = "demo",
) -> DemoScenes:
    """Simulated scenes of ``scenario`` for ``aoi`` under ``data_root``, generating them if missing."""
    grid = demo_grid(aoi, resolution, margin_m)
    name = f"{scenario}-sim-v{SIMULATOR_VERSION}.{_LAYOUT}-seed{seed}-{grid.width}x{grid.height}-{int(resolution * 100)}cm"
    folder = Path(data_root) / aoi.name / "simulated" / name
    remove_stale_staging(folder.parent)  # a generation killed half-way left one; a running one keeps its lock
    if not (folder / "truth_SIMULATED.json").is_file():
        with staging_folder(folder.parent, name, root=Path(data_root) / aoi.name) as staging:
            n_compounds, n_first = _village_size(grid)
            series = simulate_village_series(grid, seed=seed, n_compounds=n_compounds, n_burned_first=n_first, scenario=scenario)
            _write_series(series, staging)
            try:
                os.rename(staging, folder)
            except OSError:
                if not (folder / "truth_SIMULATED.json").is_file():  # not a concurrent run finishing first
                    raise
    return DemoScenes(
        folder=folder,
        grid=grid,
        truth_raster=folder / "truth_first_visible_SIMULATED.tif",
        truth_polygons=folder / "truth_burns_SIMULATED.gpkg",
        truth_json=folder / "truth_SIMULATED.json",
    )


def demo_scenes(aoi: Aoi, params: Any, data_root: Path) -> Path:
    """The folder of the SIMULATED demo for ``aoi`` (made once under ``data_root``), for
    :func:`pipeline.run.run_detect` when no scene is given or registered.

    The command line hands this to the flow; the flow itself never invents scenes.
    """
    return ensure_demo_scenes(aoi, Path(data_root), resolution=params.resolution_m, margin_m=params.margin_m).folder

