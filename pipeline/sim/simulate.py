"""Simulated satellite time series over a Sahel village: the demo, the hard cases and their truth.

Real scenes of burned villages cannot be shipped with their ground truth, and an accuracy
figure is only as good as the truth behind it. So the simulator builds the truth first: it
paints a 1 m ground map of a dry-season village in central Mali (soils, dry grass, millet
fields, trees, tracks, walled compounds with thatched huts), burns what the scenario says on
the dates it says, then images that ground the way the scenario's sensor would: a 3 m
four-band PlanetScope-like sensor, or a 10 m Sentinel-2-like one with 20 m SWIR bands. Each
scene is misregistered by a known shift, integrated over the detector, blurred by a small
point-spread function, seen through harmattan dust haze, scaled by its own satellite's gain
and offset, noised and, where the plan says so, partly hidden by a cumulus and its shadow.
Tree shadows follow each scene's sun (except in the frozen ``"demo"`` rendering).

This module is the entry point and holds the order of the work: check the arguments, paint
the ground, plan the sky, image each acquisition, draw the truth, record the metadata. The
engine's parts have their own modules: :mod:`pipeline.sim.materials` (material codes and spectra,
with their sources), :mod:`pipeline.sim.ground` (the 1 m ground and its burns), :mod:`pipeline.sim.sky`
(sun, haze, cloud and shadows), :mod:`pipeline.sim.imaging` (sensors, sampling, PSF, radiometry,
UDM2) and :mod:`pipeline.sim.truth`. What happens when, in each named scenario, is a plan in
:mod:`pipeline.sim.scenarios`. Everything is deterministic from ``seed`` and everything returned
says ``simulated: True``; the caller labels the files.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime

import geopandas
import numpy as np
import pyproj
import shapely
from shapely.geometry import Polygon

from pipeline.errors import ParameterError
from pipeline.grid import Grid
from pipeline.sim.ground import (AOI_MARGIN_M, build_landscape, crs_transform, Landscape, labels_at, land_image,
                             stream_rng, village_room)
from pipeline.sim.imaging import BANDS, S2_BANDS, sensor_radiometry, scene_lut, Sensor, SENSORS, make_udm2
from pipeline.sim.materials import ALL_SPECTRA, MATERIALS, SPECTRA, SWIR_SPECTRA
from pipeline.sim.scenarios import SCENARIOS, Acquisition, Scenario, ScenarioPlan
from pipeline.sim.sky import CloudPlan, ground_band, ground_factor, haze_model, observed_dn, plan_cloud, sun_positions
from pipeline.sim.truth import dated_changes, iso, structure_table, first_visible_raster, truth_tables, simulated_footprint_map

__all__ = ["BANDS", "S2_BANDS", "SIMULATOR_VERSION", "Scenario", "SimulatedScene", "SimulatedSeries",
           "simulate_village_series", "simulated_footprint_map"]

#: Bumped whenever the same seed would give different pixels, so benchmark numbers stay comparable.
#: Version 2 gave char its measured SWIR brightness (only the ``"sentinel2"`` scenario sees SWIR).
#: Version 3 lights the shadows of the unflagged-shadow cases by a bluish sky (``ScenarioPlan.sky_light``);
#: version 4 those of ``"nonfire_with_burns"`` too.
SIMULATOR_VERSION = "4"


@dataclass(frozen=True, eq=False)
class SimulatedScene:
    """One simulated acquisition, laid out like a Planet delivery (arrays are read-only).

    Attributes
    ----------
    scene_id:
        Planet-like id ``YYYYMMDD_HHMMSS_sim_d<k>``; ``k`` is the scene's index in the series.
    acquired:
        Acquisition time, timezone-aware UTC.
    satellite_id:
        Simulated satellite, e.g. ``"SIM-1057"`` or ``"SIM-S2A"``; each scene has its own gain
        and offset.
    reflectance:
        uint16 ``(band, H, W)`` surface reflectance x 10000 (no offset); 0 = nodata. Bands are
        ``BANDS`` (PlanetScope-like) or ``S2_BANDS`` (``"sentinel2"``), as in ``metadata["bands"]``.
    udm2:
        uint8 ``(8, H, W)`` in Planet UDM2 order: clear, snow, shadow, light haze, heavy haze,
        cloud, confidence (0-100), legacy udm (0 = ok). Sentinel-2-like scenes carry their
        masks in the same layout, as a loader converting SCL would.
    true_shift_px:
        ``(dy, dx)``: the content is displaced by +dy rows and +dx columns, so nominal pixel
        ``(r, c)`` shows the ground at ``(r - dy, c - dx)`` and
        ``scipy.ndimage.shift(image, (-dy, -dx))`` puts it back. Exactly the shift applied.
    metadata:
        JSON-able: radiometric model and its parameters, haze, cloud, sun angles, shift,
        ``"simulated": True`` and ``"acquired"`` as ISO UTC ending in ``Z``.
    """

    scene_id: str
    acquired: datetime
    satellite_id: str
    reflectance: np.ndarray
    udm2: np.ndarray
    true_shift_px: tuple[float, float]
    metadata: dict


@dataclass(frozen=True, eq=False)
class SimulatedSeries:
    """A simulated time series with its ground truth (arrays are read-only).

    Attributes
    ----------
    grid:
        The grid every scene is written on (the caller's AOI grid plus its margin).
    scenes:
        The acquisitions, sorted by time.
    truth_first_visible:
        int16 ``(H, W)`` on ``grid``: index into ``scenes`` of the first scene on which at least
        half of the pixel is burned, whether or not a cloud hides it then; -1 = never burned.
    truth_burns:
        One row per burn: ``compound_id`` (-1 for a field), ``event``, ``first_visible`` (ISO
        UTC), ``last_clear_before`` (ISO UTC of the latest earlier scene not hiding it under
        cloud or shadow, the honest start of a date bracket), ``area_m2``, ``setting``
        (``"settlement"`` or ``"outside"``), ``first_seen_clear`` (ISO UTC of the first scene
        from ``first_visible`` on that does not hide it; "" if none) and the burned footprint.
    compounds:
        Every compound outline with ``compound_id``, ``event`` ("" if never burned),
        ``first_visible``, ``obscured_scene`` (index of the scene whose cloud or shadow covers
        at least a quarter of it, -1 if none) and ``obscured_fraction``.
    structures:
        Every roof (thatched hut or granary) as its disc, with ``structure_id``,
        ``compound_id``, ``kind``, ``burned`` (at least half of it inside its compound's burned
        footprint), ``event`` and ``first_visible``: the truth behind burned-structure counts.
    settlement:
        Outline of the built-up area, in ``grid.crs``.
    metadata:
        JSON-able: seed, scenario, its ``description``, ``SIMULATOR_VERSION``, events, cloud,
        ``changes`` (dated non-burn changes, WKT in ``grid.crs``), notes, ``"simulated": True``.
    """

    grid: Grid
    scenes: tuple[SimulatedScene, ...]
    truth_first_visible: np.ndarray
    truth_burns: geopandas.GeoDataFrame
    compounds: geopandas.GeoDataFrame
    structures: geopandas.GeoDataFrame
    settlement: Polygon
    metadata: dict

    def __repr__(self) -> str:
        dates = ", ".join(f"{s.acquired:%Y-%m-%d}" for s in self.scenes)
        return (f"SimulatedSeries(simulated, {self.metadata['scenario']}, {self.grid.width}x{self.grid.height} px, "
                f"{len(self.compounds)} compounds, {len(self.truth_burns)} burned, scenes: {dates})")


def simulate_village_series(grid: Grid, *, seed: int = 20240127, n_compounds: int = 220,
                            n_burned_first: int = 150, scenario: Scenario = "demo") -> SimulatedSeries:
    """Simulate a scenario's series: by default the village attacked on 27 January and 1 February.

    The truth is drawn before any pixel is imaged, so every error a stage makes on these scenes
    is measurable. Acquisitions are on 26, 27, 28 and 31 January and 1 February 2024 at
    10:38 UTC (``"dry_season"`` takes the 27th at 09:40). In the two-attack scenarios
    ``n_burned_first`` compounds burn on the evening of the 27th (visible from the 28th) and
    all the others on the morning of 1 February (visible that day, not on the 31st). The
    other scenarios are described in :mod:`pipeline.sim.scenarios`.

    Parameters
    ----------
    grid:
        A north-up grid in a metric projected CRS, the AOI grid with its ~200 m margin: 3 m
        pixels, or 10 m for ``scenario="sentinel2"``. The village is put near its centre and
        must fit inside the AOI part.
    seed:
        Everything (landscape, shifts, satellites, haze field, cloud, noise) derives from it.
    n_compounds:
        Compounds in the village (about 1300 m2 of village each); lower it on small grids.
    n_burned_first:
        Compounds burned by the first attack; the return burns the rest. Ignored by
        ``"single_compound"`` (one burns) and the cases where none burns (``"dry_season"``,
        ``"leaf_drop"``, ``"harvest"``, ``"wet_soil"``, ``"building_shadow"``,
        ``"cloud_shadow_unflagged"``).
    scenario:
        One of :data:`pipeline.sim.scenarios.Scenario`; ``"demo"`` is byte-identical to version 1.

    Returns
    -------
    SimulatedSeries

    Raises
    ------
    ParameterError
        (a ``ValueError``) for a bad argument or a village that does not fit the grid.

    Examples
    --------
    >>> from pipeline.grid import grid_for_bounds
    >>> g = grid_for_bounds((500000, 1520000, 500900, 1520900), "EPSG:32630", 3.0)
    >>> s = simulate_village_series(g, n_compounds=40, n_burned_first=25)
    >>> [sc.scene_id for sc in s.scenes][2], s.metadata["simulated"]
    ('20240128_103800_sim_d2', True)
    """
    _check_arguments(grid, seed, n_compounds, n_burned_first, scenario)
    plan = SCENARIOS[scenario]
    suns = sun_positions(grid, plan)
    k_cloud = plan.cloud_scene
    land = build_landscape(grid, seed=seed, n_compounds=n_compounds, n_burned_first=n_burned_first,
                            plan=plan, sun_azimuth=suns[k_cloud if k_cloud is not None else 0][0])
    cloud = None if k_cloud is None else plan_cloud(land, stream_rng(seed, 40), *suns[k_cloud],
                                                     geometry=plan.cloud_geometry)
    satellites = _satellite_ids(seed, plan)
    scenes = tuple(
        _acquire(land, plan, k, seed=seed, satellite=satellites[k], sun=suns[k],
                 state=sum(acq.time > e.time for e in plan.events),
                 cloud=cloud if k == k_cloud else None)
        for k, acq in enumerate(plan.acquisitions))
    times = [a.time for a in plan.acquisitions]
    first_index = [next((k for k, t in enumerate(times) if t > e.time), None) for e in plan.events]
    truth = first_visible_raster(land, first_index)
    compounds, burns = truth_tables(land, times, plan, first_index, cloud)
    metadata = _series_metadata(land, plan, first_index, cloud, seed=seed,
                                n_compounds=n_compounds, n_burned_first=n_burned_first)
    return SimulatedSeries(grid=grid, scenes=scenes, truth_first_visible=_frozen(truth),
                           truth_burns=burns, compounds=compounds,
                           structures=structure_table(land, times, plan, first_index),
                           settlement=crs_transform(land)(land.settlement), metadata=metadata)


def _satellite_ids(seed: int, plan: ScenarioPlan) -> list[str]:
    """One simulated satellite per scene (Sentinel-2A and 2B alternate)."""
    n = len(plan.acquisitions)
    if plan.sensor == "sentinel2":
        return [f"SIM-S2{'AB'[k % 2]}" for k in range(n)]
    return [f"SIM-{s}" for s in stream_rng(seed, 50).choice(np.arange(1000, 2600), n, replace=False)]


def _series_metadata(land: Landscape, plan: ScenarioPlan, first_index: list[int | None],
                     cloud: CloudPlan | None, *, seed: int, n_compounds: int, n_burned_first: int) -> dict:
    """The series' JSON-able record; keys of version 1 first, in their order, then new ones."""
    times = [a.time for a in plan.acquisitions]
    events = [{"event": e.name, "assumed_time": iso(e.time), "reported": e.reported,
               "n_compounds": int(np.sum(land.events == k + 1)),
               "first_visible_scene": first_index[k],
               "first_visible": iso(times[first_index[k]]) if first_index[k] is not None else None,
               "setting": e.setting}
              for k, e in enumerate(plan.events)]
    to_crs = crs_transform(land)
    grid = land.grid
    cloud_meta = None if cloud is None else {"scene_index": plan.cloud_scene, **cloud.info,
                                             "shadow_flagged": plan.shadow_flagged}
    return {
        "simulated": True, "simulator": "burnscan pipeline.sim.simulate", "version": SIMULATOR_VERSION,
        "seed": int(seed), "scenario": plan.name, "n_compounds": int(n_compounds),
        "n_burned_first": int(n_burned_first), "acquisitions": [iso(t) for t in times],
        "events": events, "cloud": cloud_meta,
        "grid": {"crs": grid.crs, "transform": list(grid.transform)[:6],
                 "width": grid.width, "height": grid.height},
        "village_centre_xy": list(to_crs(shapely.Point(land.centre)).coords[0]),
        "village_radius_m": round(land.radius, 1),
        "old_burn_scar_bounds": (list(to_crs(land.old_scar).bounds) if land.old_scar else None),
        "reflectance": _reflectance_table(plan),
        "notes": _notes(plan),
        "description": plan.description,
        "changes": dated_changes(land, plan, times, cloud),
    }


_BURN_NOTES = {
    "two_events": "Every compound burns: the first attack burns n_burned_first, the return the rest.",
    "one_compound": "One compound burns over a 10 x 10 m footprint; n_burned_first is ignored.",
    "none": "No compound burns; n_burned_first is ignored. Field burns outside the village are "
            "in the truth with setting 'outside'.",
}


def _notes(plan: ScenarioPlan) -> list[str]:
    """Plain-language notes; the demo's are the five of version 1, in their order."""
    notes = [
        "Synthetic scenes rendered by burnscan's simulator: no satellite observed them.",
        "Reflectances are representative values after the USGS Spectral Library v7 (Kokaly "
        "et al. 2017) and Trigg & Flasse 2000 / Pereira et al. 1999, not measurements.",
        _BURN_NOTES[plan.settlement_burns],
        "An old field burn scar (before the series) is static: it is not in the truth.",
        "Radiometry per scene: observed = gain * (t * rho + path) + offset + noise.",
    ]
    if plan.tree_shadows:
        notes.append("Tree shadows are painted from each scene's sun; they are not in the truth.")
    if plan.sensor == "sentinel2":
        notes.append("Sentinel-2-like: blue, green, red, NIR integrated on 10 m pixels; SWIR "
                     "integrated on 20 m pixels (pairs of the grid's pixels from its origin) and "
                     "resampled to the 10 m grid bilinearly; reflectance without the L2A offset.")
    if any(a.instrument for a in plan.acquisitions):
        notes.append("Dove Classic (PS2) scenes read each material class through its own band "
                     "factors (within 4 %) on top of the instrument's band gain and offset.")
    if plan.burn_extent == "partial":
        notes.append("Partial burns: each burned compound catches over 30-90 % of its area inside its walls, "
                     "in one irregular patch; a third of them leave mostly white ash. The truth's burned area is "
                     "the painted cells' area.")
    if plan.layout == "blocks":
        notes.append("Compounds of 8-30 m, some in pairs whose walls stand 1 m apart (3 m of unburned ground "
                     "between their yards), some with a corner cut off.")
    if plan.courtyard_trees:
        notes.append("A deciduous tree stands over a third of the courtyards; leaf fall is not a burn.")
    if plan.building_shadows:
        notes.append("Walls (2 m) and huts (3 m) cast shadows from each scene's sun; they are not in the truth.")
    if plan.cloud_scene is not None and not plan.shadow_flagged:
        notes.append("UDM2 does not flag the cloud shadow (a known UDM failure): its pixels say clear.")
    return notes + list(plan.notes)


def _reflectance_table(plan: ScenarioPlan) -> dict[str, list[float]]:
    """Spectra the plan can paint: the 14 of version 1, plus dry-season and SWIR values."""
    seasonal = plan.harvest_time is not None or any(a.leaf_loss for a in plan.acquisitions)
    names = MATERIALS if seasonal else tuple(SPECTRA)
    swir = plan.sensor == "sentinel2"
    return {m: list(ALL_SPECTRA[m] + (SWIR_SPECTRA[m] if swir else ())) for m in names}


# --------------------------------------------------------------------------- arguments
def _check_arguments(grid: Grid, seed: int, n_compounds: int, n_burned_first: int, scenario: str) -> None:
    if scenario not in SCENARIOS:
        raise ParameterError(f"unknown scenario {scenario!r}; use one of {sorted(SCENARIOS)}")
    for name, value in (("seed", seed), ("n_compounds", n_compounds), ("n_burned_first", n_burned_first)):
        if isinstance(value, bool):
            raise ParameterError(f"{name} must be an integer, got {value!r}")
        try:
            operator.index(value)
        except TypeError:
            raise ParameterError(f"{name} must be an integer, got {value!r}") from None
    if seed < 0:
        raise ParameterError(f"seed must be >= 0, got {seed}")
    if n_compounds < 1:
        raise ParameterError(f"n_compounds must be >= 1, got {n_compounds}")
    if not 0 <= n_burned_first <= n_compounds:
        raise ParameterError(f"n_burned_first must be between 0 and n_compounds={n_compounds}, "
                             f"got {n_burned_first}")
    _check_grid(grid, SCENARIOS[scenario])


def _check_grid(grid: Grid, plan: ScenarioPlan) -> None:
    """The grid must have the plan's sensor's pixel, be north-up, metric and large enough."""
    t, res = grid.transform, SENSORS[plan.sensor].pixel_m
    if not math.isclose(grid.resolution, res) or t.b != 0 or t.d != 0 or not math.isclose(t.e, -res):
        hint = "" if plan.sensor == "sentinel2" else "; only scenario='sentinel2' takes 10 m grids"
        raise ParameterError(f"scenario {plan.name!r} images {res} m north-up pixels; got a grid with "
                             f"transform {tuple(t)[:6]}; build it with grid_for_bounds(..., "
                             f"resolution={res:.1f}){hint}")
    crs = pyproj.CRS(grid.crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise ParameterError(f"grid CRS {grid.crs!r} is not a metric projected CRS; use a UTM zone "
                             "such as EPSG:32630")
    if village_room(grid) < 60.0:
        raise ParameterError(f"grid {grid.width}x{grid.height} px is too small for a village inside "
                             f"a {AOI_MARGIN_M:.0f} m margin; use at least "
                             f"{math.ceil((2 * (60 + 30 + AOI_MARGIN_M)) / res)} px a side")


# --------------------------------------------------------------------------- one acquisition
def _acquire(land: Landscape, plan: ScenarioPlan, k: int, *, seed: int, satellite: str,
             sun: tuple[float, float], state: int, cloud: CloudPlan | None) -> SimulatedScene:
    """Image the ground as it was at scene ``k`` (``state`` events burned) through one satellite.

    The random draws keep version 1's order (shift, gains, offsets, day field, noise), which is
    what keeps the demo's pixels identical.
    """
    acq, sensor, shape = plan.acquisitions[k], SENSORS[plan.sensor], land.grid.shape
    rng = stream_rng(seed, 100 + k)
    fine = rng.uniform(*plan.fine_shift_px, 2) * rng.choice([-1.0, 1.0], 2)
    shift = tuple(float(x) for x in fine + np.array(acq.coarse_shift_px))
    gain, offset = sensor_radiometry(rng, sensor, acq.instrument)
    labels = labels_at(land, plan, acq.time, state)
    factor = ground_factor(land, plan, k, labels, sun, cloud, seed)
    lut = scene_lut(acq, sensor)
    rho = np.stack([land_image(land, ground_band(lut[b], labels, land, factor, cloud, band), shift, coarse=coarse)
                    for b, (band, coarse) in enumerate(zip(sensor.bands, sensor.coarse))])
    dn = observed_dn(rho, acq.haze, sensor, gain, offset, rng)
    cloud_px = shadow_px = None
    if cloud is not None:
        cloud_px = land_image(land, cloud.alpha, shift)
        shadow_px = land_image(land, 1.0 - cloud.shade, shift)
    udm2 = make_udm2(shape, acq.haze, cloud_px, shadow_px, flag_shadow=plan.shadow_flagged)
    scene_id = f"{acq.time:%Y%m%d_%H%M%S}_sim_d{k}"
    metadata = {**scene_metadata(scene_id, acq.time, satellite, sensor, acq.haze, gain, offset, udm2, sun, shift,
                                 cloud is not None), **_scene_extras(plan, acq, sensor)}
    return SimulatedScene(scene_id, acq.time, satellite, _frozen(dn), _frozen(udm2), shift, metadata)


def scene_metadata(scene_id: str, when: datetime, satellite: str, sensor: Sensor, haze: str, gain: np.ndarray,
                   offset: np.ndarray, udm2: np.ndarray, sun: tuple[float, float], shift: tuple[float, float],
                   cloud: bool) -> dict:
    """What every simulated scene's metadata says of its acquisition and radiometry (the
    village series and the search box write the same fields, in the same order)."""
    t, path = haze_model(haze, sensor)
    return {
        "scene_id": scene_id, "acquired": iso(when), "satellite_id": satellite, "simulated": True,
        "bands": list(sensor.bands), "reflectance_scale": 10000, "nodata": 0,
        "radiometric_model": "observed = gain * (t * rho + path) + offset + noise; rho carries a "
                             "smooth +-0.4 % day-to-day variation",
        "gain": [float(x) for x in gain], "offset": [float(x) for x in offset],
        "haze": haze, "haze_transmittance": t, "haze_path_reflectance": list(path),
        "noise_sigma": list(sensor.noise), "cloud": cloud,
        "cloud_fraction": round(float(udm2[5].mean()), 5), "shadow_fraction": round(float(udm2[2].mean()), 5),
        "sun_azimuth": round(sun[0], 2), "sun_elevation": round(sun[1], 2),
        "true_shift_px": list(shift), "simulator_version": SIMULATOR_VERSION,
    }


def _scene_extras(plan: ScenarioPlan, acq: Acquisition, sensor: Sensor) -> dict:
    """Scene metadata beyond version 1's, only where the plan uses it (none for the demo)."""
    extras: dict = {}
    if acq.instrument:
        extras["instrument"] = acq.instrument
    if acq.leaf_loss or acq.soil_wetness:
        extras.update(leaf_loss=acq.leaf_loss, soil_wetness=acq.soil_wetness)
    if plan.sensor == "sentinel2":
        extras["native_resolution_m"] = {b: 2 * sensor.pixel_m if c else sensor.pixel_m
                                         for b, c in zip(sensor.bands, sensor.coarse)}
        extras["resampling"] = "20 m bands resampled to the 10 m grid bilinearly"
    return extras


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
