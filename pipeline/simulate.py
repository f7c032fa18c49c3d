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

This module is the engine: how ground and sky are painted and imaged. What happens when, in
each named scenario, is a plan in :mod:`pipeline.scenarios`. Everything is deterministic from
``seed`` and everything returned says ``simulated: True``; the caller labels the files.

References
----------
.. [1] Kokaly, R. F. et al. (2017). USGS Spectral Library Version 7. U.S. Geological Survey
   Data Series 1035. (soils, dry grass, green vegetation, in the visible, NIR and SWIR)
.. [2] Trigg, S. & Flasse, S. (2000). Characterizing the spectral-temporal response of burned
   savannah using in situ spectroradiometry and infrared thermometry. International Journal
   of Remote Sensing 21(16), 3161-3168. (savanna char and ash)
.. [3] Pereira, J. M. C. et al. (1999). Spectral characterisation and discrimination of burnt
   areas. In Chuvieco, E. (ed.), Remote Sensing of Large Wildfires, Springer, 123-138.
.. [4] NOAA Global Monitoring Laboratory, "General solar position calculations" (low-precision
   solar declination, equation of time and hour-angle formulas; about 0.5 degree).
.. [5] Planet Labs PBC, "PlanetScope overview": Dove Classic (PS2) and SuperDove (PSB.SD)
   band passes.
.. [6] ESA, Sentinel-2 MSI User Guide: 10 m blue, green, red, NIR (B2, B3, B4, B8) and 20 m
   SWIR (B11, B12) bands.
.. [7] Lobell, D. B. & Asner, G. P. (2002). Moisture effects on soil reflectance. Soil Science
   Society of America Journal 66(3), 722-727. (wet soil darkens in every band)
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

import geopandas
import numpy as np
import pyproj
import shapely
from scipy import ndimage
from shapely import affinity
from shapely.geometry import Polygon
from skimage import draw

from pipeline.errors import ParameterError
from pipeline.grid import Grid
from pipeline.scenarios import SCENARIOS, Acquisition, Scenario, ScenarioPlan

__all__ = ["BANDS", "S2_BANDS", "SIMULATOR_VERSION", "Scenario", "SimulatedScene", "SimulatedSeries",
           "simulate_village_series"]

#: Bumped whenever the same seed would give different pixels, so benchmark numbers stay comparable.
#: Only the ``"demo"`` pixels are frozen by it; the other scenarios are new in this version.
SIMULATOR_VERSION = "1"
#: Band order of PlanetScope-like ``SimulatedScene.reflectance`` (4-band analytic order).
BANDS = ("blue", "green", "red", "nir")
#: Band order of the ``"sentinel2"`` scenario (B2, B3, B4, B8, B11, B12 [6]).
S2_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")

# Representative surface reflectance (blue, green, red, NIR) of each ground material. Rounded
# values in the ranges of the cited spectra, not band-integrated library spectra: sand,
# laterite, dry vegetation (dry grass and millet stubble) and tree canopy after [1]; char and
# ash after [2, 3]. The village materials are variants of soil and dry grass (mud brick is soil,
# thatch and fences are dry grass stems) and are our own choice. They stand for what the
# SuperDove / Sentinel-2 band passes see; Dove Classic reads them through _PS2_RESPONSE.
_SPECTRA: dict[str, tuple[float, float, float, float]] = {
    "sand": (0.14, 0.20, 0.27, 0.33),
    "laterite": (0.09, 0.14, 0.24, 0.30),
    "dry_vegetation": (0.08, 0.12, 0.17, 0.27),
    "tree": (0.03, 0.07, 0.05, 0.38),
    "lane": (0.16, 0.22, 0.29, 0.35),  # trampled sand between compounds
    "track": (0.18, 0.25, 0.32, 0.38),  # compacted sandy paths, brighter than their sides
    "wall": (0.13, 0.18, 0.25, 0.31),  # banco (sun-dried mud brick)
    "yard": (0.15, 0.21, 0.28, 0.33),  # swept earth
    "thatch": (0.13, 0.19, 0.25, 0.36),
    "old_thatch": (0.11, 0.16, 0.21, 0.31),  # weathered roofs and granary caps
    "straw": (0.10, 0.14, 0.19, 0.29),  # secco mat fences and stalk piles
    "char": (0.04, 0.04, 0.05, 0.06),
    "ash": (0.20, 0.21, 0.22, 0.23),
    "old_scar": (0.07, 0.08, 0.10, 0.15),  # a December field fire, char mixed into sand
}
# Materials only the dry season paints, appended so the demo's label codes never change. A
# deciduous crown in leaf is the tree spectrum; shedding moves it toward bare branches over
# litter and soil (NIR ~0.25, red up), after [1]'s dry-stem and soil spectra.
_SPECTRA_EXTRA: dict[str, tuple[float, float, float, float]] = {
    "deciduous_tree": (0.03, 0.07, 0.05, 0.38),
    "bare_crown": (0.09, 0.12, 0.16, 0.25),
    "millet": (0.07, 0.10, 0.14, 0.25),  # standing dry stalks: dry grass darkened by their shade
}
# SWIR (1.61, 2.19 um) reflectance for the Sentinel-2 scenario: sand, dry grass and green
# canopy after [1]; char after [2]; ash brighter than char in the SWIR after [2, 3]; the rest
# by analogy (soil-like, dry-grass-like) and our own choice.
_SWIR: dict[str, tuple[float, float]] = {
    "sand": (0.45, 0.40), "laterite": (0.42, 0.36), "dry_vegetation": (0.38, 0.27),
    "tree": (0.18, 0.08), "lane": (0.47, 0.42), "track": (0.50, 0.45), "wall": (0.44, 0.39),
    "yard": (0.46, 0.41), "thatch": (0.42, 0.30), "old_thatch": (0.37, 0.27), "straw": (0.36, 0.26),
    "char": (0.07, 0.07), "ash": (0.32, 0.29), "old_scar": (0.22, 0.19),
    "deciduous_tree": (0.18, 0.08), "bare_crown": (0.32, 0.25), "millet": (0.35, 0.25),
}
_MATERIALS = tuple(_SPECTRA) + tuple(_SPECTRA_EXTRA)
_ALL_SPECTRA = {**_SPECTRA, **_SPECTRA_EXTRA}
_LUT = np.array([_ALL_SPECTRA[m] for m in _MATERIALS], dtype=np.float32).T  # (band, material)
_LUT_S2 = np.array([_ALL_SPECTRA[m] + _SWIR[m] for m in _MATERIALS], dtype=np.float32).T
(_SAND, _LATERITE, _DRY_VEG, _TREE, _LANE, _TRACK, _WALL, _YARD, _THATCH, _OLD_THATCH, _STRAW,
 _CHAR, _ASH, _OLD_SCAR, _DECIDUOUS, _BARE_CROWN, _MILLET) = range(len(_MATERIALS))
_SOILS = (_SAND, _LATERITE, _LANE, _TRACK, _WALL, _YARD, _OLD_SCAR)  # what rain darkens
_CROWNS = (_TREE, _DECIDUOUS)
_FUEL = (_DRY_VEG, _MILLET, _STRAW)  # what a field fire turns to char

# Dove Classic (PS2) relative to SuperDove (PSB.SD), per material class and band. PS2's green,
# red and NIR passes (500-590, 590-670, 780-860 nm) sit 20-45 nm shorter than SuperDove's
# (547-585, 650-682, 846-888 nm) [5]: soils and dry grass, whose reflectance rises with
# wavelength, read lower; a green canopy reads higher in red (PS2 misses most of the 670 nm
# chlorophyll well) and lower in green (it averages in the blue-green slope). Factors stay
# within 4 %, our own estimate of the size of such effects, not a calibration.
_PS2_RESPONSE = {
    "soil": (0.995, 0.98, 0.97, 0.985),
    "dry": (0.99, 0.975, 0.96, 0.99),
    "green": (1.0, 0.97, 1.04, 0.99),
    "burned": (1.0, 1.0, 0.995, 0.995),
}
_MATERIAL_CLASS = {m: "soil" for m in ("sand", "laterite", "lane", "track", "wall", "yard", "old_scar")} | {
    m: "dry" for m in ("dry_vegetation", "thatch", "old_thatch", "straw", "bare_crown", "millet")} | {
    "tree": "green", "deciduous_tree": "green", "char": "burned", "ash": "burned"}
_PS2_FACTORS = np.array([_PS2_RESPONSE[_MATERIAL_CLASS[m]] for m in _MATERIALS], dtype=np.float32).T
# Each instrument's systematic band gain and offset on top of every satellite's own (a linear
# map per band: the part that per-band normalisation can undo).
_INSTRUMENT_RADIOMETRY = {"PS2": ((1.03, 0.97, 1.05, 0.94), (0.004, 0.002, -0.003, 0.006)),
                          "PSB.SD": ((1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.0))}

_SUB = 3  # 1 m ground cells per 3 m pixel side
_MARGIN_M = 48  # least ground beyond the grid: the demo's shifts (<= 12 m), padding (9 m) and PSF
_PAD_PX = 3  # pixels imaged beyond the grid so the PSF has true neighbours at the edges
_PSF_SIGMA_PX = 0.5  # with the pixel's box integration, MTF ~0.2 at Nyquist (S2's spec: 0.15-0.3)
_AOI_MARGIN_M = 200.0  # the caller's buffer around its AOI: the village stays inside the AOI
_SLOT_M = 36.0  # compound lattice spacing: 20-28 m enclosures leave 4-16 m lanes
_NOISE_SIGMA = (0.005, 0.0045, 0.0045, 0.006)  # per band, reflectance units
# Harmattan dust: observed = t * rho + path. Path is largest in blue (small-particle scattering).
_HAZE = {"none": (1.0, (0.0, 0.0, 0.0, 0.0)),
         "light": (0.95, (0.025, 0.02, 0.015, 0.0075)),
         "moderate": (0.88, (0.05, 0.04, 0.03, 0.015)),
         "dense": (0.80, (0.08, 0.065, 0.05, 0.025))}
# Coarse dust scatters nearly as much in the SWIR as in the NIR; the share is our choice.
_SWIR_PATH_SHARE = (0.6, 0.4)
_CONFIDENCE = {"none": 95, "light": 85, "moderate": 75, "dense": 70}
_OBSCURED = 0.25  # share of a compound under cloud or shadow that makes a date useless for it
_SKY_LIGHT = 0.35  # diffuse share of the illumination: what a cloud or tree shadow still gets
_CLOUD_SWIR = {"swir16": 0.8, "swir22": 0.7}  # water droplets absorb in the SWIR: darker tops

_UTC = timezone.utc


@dataclass(frozen=True)
class _Sensor:
    """How a sensor samples the ground (pixel, bands, noise, per-satellite radiometry)."""

    name: str
    bands: tuple[str, ...]
    pixel_m: int
    noise: tuple[float, ...]
    gain: tuple[float, float]  # per-satellite band gains drawn in this range
    offset: tuple[float, float]
    coarse: tuple[bool, ...]  # bands integrated on pixels twice as large, resampled bilinearly
    pad_px: int  # even for Sentinel-2, so 20 m pixels pair the grid's 10 m pixels (0-1, 2-3...)


_SENSORS = {
    "planetscope": _Sensor("PlanetScope-like", BANDS, 3, _NOISE_SIGMA, (0.93, 1.07), (-0.01, 0.01),
                           (False,) * 4, _PAD_PX),
    "sentinel2": _Sensor("Sentinel-2-like", S2_BANDS, 10, (0.003, 0.0025, 0.0025, 0.003, 0.003, 0.003),
                         (0.98, 1.02), (-0.003, 0.003), (False,) * 4 + (True, True), 4),
}


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
    settlement: Polygon
    metadata: dict

    def __repr__(self) -> str:
        dates = ", ".join(f"{s.acquired:%Y-%m-%d}" for s in self.scenes)
        return (f"SimulatedSeries(simulated, {self.metadata['scenario']}, {self.grid.width}x{self.grid.height} px, "
                f"{len(self.compounds)} compounds, {len(self.truth_burns)} burned, scenes: {dates})")


class _Plan(NamedTuple):
    """A compound's rectangle in ground metres (u east, v south from the ground's corner)."""

    cu: float
    cv: float
    hx: float
    hy: float
    angle: float

    def to_ground(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.cu + x * c - y * s, self.cv + x * s + y * c

    def corners(self, inset: float = 0.0) -> np.ndarray:
        x = np.array([-1, 1, 1, -1]) * (self.hx - inset)
        y = np.array([-1, -1, 1, 1]) * (self.hy - inset)
        return np.stack(self.to_ground(x, y), axis=1)


@dataclass
class _Landscape:
    grid: Grid
    sub: int  # 1 m ground cells per pixel side
    margin: int  # ground metres beyond the grid on every side
    pad: int  # pixels imaged beyond the grid so the PSF has true neighbours at the edges
    labels: np.ndarray  # uint8 material of each 1 m cell before any burn or harvest
    burn_event: np.ndarray  # uint8: 0 never, k = burned by the plan's event k
    burn_label: np.ndarray  # uint8 material once burned (char, ash or scorched soil)
    compound_map: np.ndarray  # int16 compound id, -1 outside compounds
    texture: np.ndarray  # float32 multiplicative brightness of the ground
    plans: list[_Plan]
    events: np.ndarray  # event of each compound (0 = never burns)
    footprints: list[Polygon | None]
    settlement: Polygon
    centre: tuple[float, float]
    radius: float
    old_scar: Polygon | None
    trees: np.ndarray  # (n, 4): u, v, crown radius, height, all metres
    deciduous: np.ndarray  # bool per tree: sheds its leaves in the dry season
    outside: list[tuple[int, Polygon]]  # (event, burned footprint) of field burns
    harvest: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # rows, cols, labels once cut
    harvest_field: Polygon | None


@dataclass
class _Cloud:
    alpha: np.ndarray  # float32 opacity on the ground map
    brightness: np.ndarray  # float32 cloud-top reflectance
    shade: np.ndarray  # float32 illumination factor, 0.35 in the core of the shadow
    shadow_alpha: np.ndarray  # float32 share of the direct sun the cloud blocks on the ground
    info: dict


def simulate_village_series(grid: Grid, *, seed: int = 20240127, n_compounds: int = 220,
                            n_burned_first: int = 150, scenario: Scenario = "demo") -> SimulatedSeries:
    """Simulate a scenario's series: by default the village attacked on 27 January and 1 February.

    The truth is drawn before any pixel is imaged, so every error a stage makes on these scenes
    is measurable. Acquisitions are on 26, 27, 28 and 31 January and 1 February 2024 at
    10:38 UTC (``"dry_season"`` takes the 27th at 09:40). In the two-attack scenarios
    ``n_burned_first`` compounds burn on the evening of the 27th (visible from the 28th) and
    all the others on the morning of 1 February (visible that day, not on the 31st). The
    other scenarios are described in :mod:`pipeline.scenarios`.

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
        ``"single_compound"`` (one burns) and ``"dry_season"`` (none burns).
    scenario:
        One of :data:`pipeline.scenarios.Scenario`; ``"demo"`` is byte-identical to version 1.

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
    suns = _suns(grid, plan)
    k_cloud = plan.cloud_scene
    land = _build_landscape(grid, seed=seed, n_compounds=n_compounds, n_burned_first=n_burned_first,
                            plan=plan, sun_azimuth=suns[k_cloud if k_cloud is not None else 0][0])
    cloud = None if k_cloud is None else _plan_cloud(land, _rng(seed, 40), *suns[k_cloud],
                                                     geometry=plan.cloud_geometry)
    satellites = _satellite_ids(seed, plan)
    scenes = tuple(
        _acquire(land, plan, k, seed=seed, satellite=satellites[k], sun=suns[k],
                 state=sum(acq.time > e.time for e in plan.events),
                 cloud=cloud if k == k_cloud else None)
        for k, acq in enumerate(plan.acquisitions))
    times = [a.time for a in plan.acquisitions]
    first_index = [next((k for k, t in enumerate(times) if t > e.time), None) for e in plan.events]
    truth = _truth_first_visible(land, first_index)
    compounds, burns = _truth_tables(land, scenes, plan, first_index, cloud)
    metadata = _series_metadata(land, plan, scenes, first_index, cloud, seed=seed,
                                n_compounds=n_compounds, n_burned_first=n_burned_first)
    return SimulatedSeries(grid=grid, scenes=scenes, truth_first_visible=_frozen(truth),
                           truth_burns=burns, compounds=compounds,
                           settlement=_crs_transform(land)(land.settlement), metadata=metadata)


def _suns(grid: Grid, plan: ScenarioPlan) -> list[tuple[float, float]]:
    """Sun azimuth and elevation at the grid's centre for every acquisition."""
    lon, lat = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(
        (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2)
    return [_sun_angles(lon, lat, a.time) for a in plan.acquisitions]


def _satellite_ids(seed: int, plan: ScenarioPlan) -> list[str]:
    """One simulated satellite per scene (Sentinel-2A and 2B alternate)."""
    n = len(plan.acquisitions)
    if plan.sensor == "sentinel2":
        return [f"SIM-S2{'AB'[k % 2]}" for k in range(n)]
    return [f"SIM-{s}" for s in _rng(seed, 50).choice(np.arange(1000, 2600), n, replace=False)]


def _series_metadata(land: _Landscape, plan: ScenarioPlan, scenes: tuple[SimulatedScene, ...],
                     first_index: list[int | None], cloud: _Cloud | None, *, seed: int,
                     n_compounds: int, n_burned_first: int) -> dict:
    """The series' JSON-able record; keys of version 1 first, in their order, then new ones."""
    times = [a.time for a in plan.acquisitions]
    events = [{"event": e.name, "assumed_time": _iso(e.time), "reported": e.reported,
               "n_compounds": int(np.sum(land.events == k + 1)),
               "first_visible_scene": first_index[k],
               "first_visible": _iso(times[first_index[k]]) if first_index[k] is not None else None,
               "setting": e.setting}
              for k, e in enumerate(plan.events)]
    to_crs = _crs_transform(land)
    grid = land.grid
    cloud_meta = None if cloud is None else {"scene_index": plan.cloud_scene, **cloud.info,
                                             "shadow_flagged": plan.shadow_flagged}
    return {
        "simulated": True, "simulator": "burnscan pipeline.simulate", "version": SIMULATOR_VERSION,
        "seed": int(seed), "scenario": plan.name, "n_compounds": int(n_compounds),
        "n_burned_first": int(n_burned_first), "acquisitions": [_iso(t) for t in times],
        "events": events, "cloud": cloud_meta,
        "grid": {"crs": grid.crs, "transform": list(grid.transform)[:6],
                 "width": grid.width, "height": grid.height},
        "village_centre_xy": list(to_crs(shapely.Point(land.centre)).coords[0]),
        "village_radius_m": round(land.radius, 1),
        "old_burn_scar_bounds": (list(to_crs(land.old_scar).bounds) if land.old_scar else None),
        "reflectance": _reflectance_table(plan),
        "notes": _notes(plan),
        "description": plan.description,
        "changes": _changes(land, plan, scenes),
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
    if plan.cloud_scene is not None and not plan.shadow_flagged:
        notes.append("UDM2 does not flag the cloud shadow (a known UDM failure): its pixels say clear.")
    return notes + list(plan.notes)


def _reflectance_table(plan: ScenarioPlan) -> dict[str, list[float]]:
    """Spectra the plan can paint: the 14 of version 1, plus dry-season and SWIR values."""
    seasonal = plan.harvest_time is not None or any(a.leaf_loss for a in plan.acquisitions)
    names = _MATERIALS if seasonal else tuple(_SPECTRA)
    swir = plan.sensor == "sentinel2"
    return {m: list(_ALL_SPECTRA[m] + (_SWIR[m] if swir else ())) for m in names}


def _changes(land: _Landscape, plan: ScenarioPlan, scenes: tuple[SimulatedScene, ...]) -> list[dict]:
    """Dated non-burn changes with where they happen, as WKT in the grid's CRS.

    Burns are not listed: they are in the truth. A method that flags any of these as a burn
    makes a commission error the benchmark can explain.
    """
    to_crs = _crs_transform(land)
    h, w = land.labels.shape
    grid_box = shapely.box(land.margin, land.margin, w - land.margin, h - land.margin)
    whole = to_crs(grid_box).wkt
    when = [s.metadata["acquired"] for s in scenes]
    out = []
    loss = [a.leaf_loss for a in plan.acquisitions]
    if any(loss):
        trees = land.trees[land.deciduous]
        # Octagons at 0.1 m: thousands of crowns stay a readable size in the metadata.
        crowns = shapely.union_all(shapely.buffer(shapely.points(trees[:, :2]), trees[:, 2], quad_segs=2))
        out.append({"change": "leaf_fall", "what": "deciduous tree crowns shed their leaves "
                    "(NIR falls toward bare branches over soil, red rises)", "scenes": when,
                    "leaf_loss": loss,
                    "wkt": shapely.to_wkt(to_crs(crowns.intersection(grid_box)), rounding_precision=1)})
    if land.harvest_field is not None:
        seen = next(s for s in when if s > _iso(plan.harvest_time))
        out.append({"change": "harvest", "what": "standing millet cut to stubble over bare soil",
                    "assumed_time": _iso(plan.harvest_time), "first_visible": seen,
                    "wkt": shapely.to_wkt(to_crs(land.harvest_field), rounding_precision=1)})
    wet = [a.soil_wetness for a in plan.acquisitions]
    if any(wet):
        out.append({"change": "wet_soil", "what": "rain darkens soils in every band, then they dry",
                    "scenes": [s for s, x in zip(when, wet) if x], "darkening": [x for x in wet if x],
                    "wkt": whole})
    clock = [f"{a.time:%H:%M}" for a in plan.acquisitions]
    usual = max(set(clock), key=clock.count)
    late = [s for s, c in zip(when, clock) if c != usual]
    if late:
        out.append({"change": "sun_angle", "what": "acquired at another time of day: other sun "
                    "elevation and azimuth, so tree shadows change length and direction",
                    "scenes": late, "wkt": whole})
    return out


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
    t, res = grid.transform, _SENSORS[plan.sensor].pixel_m
    if not math.isclose(grid.resolution, res) or t.b != 0 or t.d != 0 or not math.isclose(t.e, -res):
        hint = "" if plan.sensor == "sentinel2" else "; only scenario='sentinel2' takes 10 m grids"
        raise ParameterError(f"scenario {plan.name!r} images {res} m north-up pixels; got a grid with "
                             f"transform {tuple(t)[:6]}; build it with grid_for_bounds(..., "
                             f"resolution={res:.1f}){hint}")
    crs = pyproj.CRS(grid.crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise ParameterError(f"grid CRS {grid.crs!r} is not a metric projected CRS; use a UTM zone "
                             "such as EPSG:32630")
    if _village_room(grid) < 60.0:
        raise ParameterError(f"grid {grid.width}x{grid.height} px is too small for a village inside "
                             f"a {_AOI_MARGIN_M:.0f} m margin; use at least "
                             f"{math.ceil((2 * (60 + 30 + _AOI_MARGIN_M)) / res)} px a side")


def _village_room(grid: Grid) -> float:
    """Largest village radius (m) that keeps the village inside the AOI part of ``grid``."""
    return 0.5 * grid.resolution * min(grid.width, grid.height) - _AOI_MARGIN_M - 30.0


def _ground_margin(plan: ScenarioPlan, sub: int) -> int:
    """Ground metres beyond the grid so that the largest shift, padding and PSF never run out."""
    sensor = _SENSORS[plan.sensor]
    shift = max(max(abs(c) for c in a.coarse_shift_px) for a in plan.acquisitions) + plan.fine_shift_px[1]
    return max(_MARGIN_M, sub * (math.ceil(shift) + sensor.pad_px + 2))


# --------------------------------------------------------------------------- the ground
def _build_landscape(grid: Grid, *, seed: int, n_compounds: int, n_burned_first: int,
                     plan: ScenarioPlan = SCENARIOS["demo"], sun_azimuth: float = 135.0) -> _Landscape:
    """Paint the 1 m ground map around ``grid``, compounds, burns and seasonal changes included.

    Each part draws from its own random stream, so the demo's ground stays the same whatever
    the other scenarios add (they only add streams 8 and 9).
    """
    sub = int(round(grid.resolution))
    margin = _ground_margin(plan, sub)
    shape = (sub * grid.height + 2 * margin, sub * grid.width + 2 * margin)
    rng = _rng(seed, 1)
    jitter = rng.uniform(-1, 1, 2) * min(30.0, 0.03 * sub * min(grid.shape))
    centre = (shape[1] / 2 + jitter[0], shape[0] / 2 + jitter[1])
    plans, radius = _plan_compounds(rng, centre, n_compounds, _village_room(grid))
    outlines = [Polygon(p.corners()) for p in plans]
    settlement = shapely.union_all([o.buffer(9.0, join_style="mitre") for o in outlines]).buffer(-5.0)
    settlement = Polygon(settlement.exterior) if settlement.geom_type == "Polygon" else settlement.convex_hull

    labels = np.full(shape, _SAND, dtype=np.uint8)
    old_scar, fields = _paint_soils_and_fields(labels, _rng(seed, 2), centre, radius, margin)
    labels[_cells(np.asarray(settlement.exterior.coords), shape)] = _LANE
    _paint_tracks(labels, _rng(seed, 3), centre)
    trees = _paint_trees(labels, _rng(seed, 4), centre, radius)
    compound_map = np.full(shape, -1, dtype=np.int16)
    crng = _rng(seed, 5)
    for cid, p in enumerate(plans):
        _paint_compound(labels, compound_map, crng, p, cid)

    burn_event = np.zeros(shape, dtype=np.uint8)
    burn_label = np.full(shape, _CHAR, dtype=np.uint8)
    phi = math.atan2(math.cos(math.radians(sun_azimuth)), -math.sin(math.radians(sun_azimuth)))
    events, footprints = _burn_compounds(_rng(seed, 6), plan, plans, outlines, centre, radius,
                                         n_burned_first, burn_event, burn_label,
                                         phi=phi if plan.attack_towards_sun else None)
    trng = _rng(seed, 7)
    texture = 1.0 + 0.03 * _smooth_field(trng, shape, 300.0) + 0.015 * _smooth_field(trng, shape, 40.0)
    texture += 0.02 * trng.standard_normal(shape, dtype=np.float32)  # sand grain, litter, stones
    # Sahel parkland trees (Faidherbia, Balanites, Sclerocarya...) stand about 6-13 m tall.
    heights = 1.6 * trees[:, 2] + _rng(seed, 8).uniform(2.5, 5.0, len(trees))
    land = _Landscape(grid, sub, margin, _SENSORS[plan.sensor].pad_px, labels, burn_event, burn_label, compound_map,
                      np.clip(texture, 0.85, 1.15).astype(np.float32), plans, events, footprints,
                      settlement, centre, radius, old_scar, np.column_stack([trees, heights]),
                      np.zeros(len(trees), dtype=bool), [], None, None)
    _plan_seasons(land, plan, _rng(seed, 9), fields)
    return land


def _plan_compounds(rng: np.random.Generator, centre: tuple[float, float], n: int,
                    room: float) -> tuple[list[_Plan], float]:
    """Lay ``n`` walled compounds on a jittered lattice, grown outward from the centre.

    Slots are taken by a noisy, lobed radius so the village edge is ragged; a few inner slots
    stay empty (squares, a mosque yard). Rows slide against each other and compounds tilt, but
    sizes and jitter are bounded so that lanes stay at least 3.5 m wide: footprints of
    neighbours never touch, which keeps per-compound truth unambiguous.
    """
    theta0 = rng.uniform(0, math.pi / 2)
    k = int(math.sqrt(1.6 * n / math.pi)) + 3
    i, j = (a.ravel() for a in np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1)))
    c0, s0 = math.cos(theta0), math.sin(theta0)
    x = i + rng.uniform(-0.5, 0.5, 2 * k + 1)[j + k]  # each row slides: no grid-plan streets
    du, dv = _SLOT_M * (x * c0 - j * s0), _SLOT_M * (x * s0 + j * c0)
    r, phi = np.hypot(du, dv), np.arctan2(dv, du)
    p1, p2 = rng.uniform(0, 2 * math.pi, 2)
    lobed = r * (1 + 0.12 * np.sin(2 * phi + p1) + 0.08 * np.sin(3 * phi + p2))
    lobed += rng.uniform(0, 0.4 * _SLOT_M, r.size)
    lobed[(rng.random(r.size) < 0.06) & (r > 0)] = np.inf
    plans = []
    for s in np.argsort(lobed, kind="stable")[:n]:
        hx, hy = rng.uniform(10.0, 14.0, 2)
        delta = math.radians(rng.uniform(-12, 12))
        ext = np.array([hx * abs(math.cos(delta)) + hy * abs(math.sin(delta)),
                        hx * abs(math.sin(delta)) + hy * abs(math.cos(delta))])
        half_slot = _SLOT_M / 2 - 1.75  # half a slot minus half the narrowest lane
        shrink = min(1.0, half_slot / ext.max())  # a tilted big compound would touch its neighbour
        hx, hy, ext = hx * shrink, hy * shrink, ext * shrink
        jx, jy = rng.uniform(-1, 1, 2) * np.maximum(0.0, half_slot - ext)
        plans.append(_Plan(centre[0] + du[s] + jx * c0 - jy * s0, centre[1] + dv[s] + jx * s0 + jy * c0,
                           hx, hy, theta0 + delta))
    corners = np.concatenate([p.corners() for p in plans])
    radius = float(np.hypot(corners[:, 0] - centre[0], corners[:, 1] - centre[1]).max())
    if radius > room:
        fit = max(1, int(0.75 * math.pi * (room - 20) ** 2 / _SLOT_M ** 2))
        raise ParameterError(f"n_compounds={n} needs a village about {2 * radius:.0f} m across, but this "
                             f"grid leaves room for {2 * room:.0f} m inside its {_AOI_MARGIN_M:.0f} m "
                             f"margin; pass n_compounds <= about {fit} or a larger grid")
    return plans, radius


def _paint_soils_and_fields(labels: np.ndarray, rng: np.random.Generator, centre: tuple[float, float],
                            radius: float, margin: int = _MARGIN_M) -> tuple[Polygon | None, list[Polygon]]:
    """Sand with lateritic patches and dry grass, then millet parcels around the village.

    The first parcel lying well inside the grid and 100 m clear of the village becomes an old
    (December) burn scar: dark on every date, so only a method that looks at change ignores it.
    Returns its outline (None when no parcel qualifies) and the outlines of the other parcels
    clear of the village, where seasonal scenarios harvest and burn.
    """
    shape = labels.shape
    labels[_smooth_field(rng, shape, 120.0) > 1.0] = _LATERITE
    grass = (_smooth_field(rng, shape, 50.0) > 0.8) & (rng.random(shape, dtype=np.float32) < 0.55)
    labels[grass] = _DRY_VEG
    n_fields = int(0.35 * shape[0] * shape[1] / 7000)
    cu, cv = rng.uniform(0, shape[1], n_fields), rng.uniform(0, shape[0], n_fields)
    a, b = rng.uniform(25, 75, n_fields), rng.uniform(20, 60, n_fields)
    angles = rng.uniform(0, math.pi / 2) + rng.uniform(-0.3, 0.3, n_fields)
    covers = rng.uniform(0.45, 0.85, n_fields)
    outside = np.hypot(cu - centre[0], cv - centre[1]) - np.hypot(a, b) > radius + 40
    far = np.hypot(cu - centre[0], cv - centre[1]) > radius + 100
    edge = margin + 60  # keep the scar off the grid's border, where shifts would cut it
    scar, fields = None, []
    for f in np.flatnonzero(outside):
        corners = _Plan(cu[f], cv[f], a[f], b[f], angles[f]).corners()
        rr, cc = _cells(corners, shape)
        pick = rng.random(rr.size) < covers[f]
        labels[rr, cc] = _SAND  # ploughed or bare between stubble
        is_scar = scar is None and far[f] and corners.min() > edge \
            and corners[:, 0].max() < shape[1] - edge and corners[:, 1].max() < shape[0] - edge
        labels[rr[pick], cc[pick]] = _OLD_SCAR if is_scar else _DRY_VEG
        if is_scar:
            scar = Polygon(corners)
        else:
            fields.append(Polygon(corners))
    return scar, fields


def _paint_tracks(labels: np.ndarray, rng: np.random.Generator, centre: tuple[float, float]) -> None:
    """Sandy tracks, 3-5 m wide, radiating from the village and wandering gently."""
    length = float(np.hypot(*labels.shape))
    n_steps = int(length / 5) + 1
    base = rng.uniform(0, 2 * math.pi)
    n_tracks = int(rng.integers(5, 8))
    for k in range(n_tracks):
        wander = ndimage.gaussian_filter1d(rng.standard_normal(n_steps), 20.0)
        heading = base + 2 * math.pi * k / n_tracks + rng.uniform(-0.25, 0.25) \
            + math.radians(10) * wander / (wander.std() + 1e-12)
        u = centre[0] + np.concatenate([[0], np.cumsum(5 * np.cos(heading))])
        v = centre[1] + np.concatenate([[0], np.cumsum(5 * np.sin(heading))])
        t = np.arange(0, 5 * n_steps, 0.5)
        _stamp(labels, np.interp(t, 5 * np.arange(n_steps + 1), u),
               np.interp(t, 5 * np.arange(n_steps + 1), v), rng.uniform(1.5, 2.5), _TRACK)


def _paint_trees(labels: np.ndarray, rng: np.random.Generator, centre: tuple[float, float],
                 radius: float) -> np.ndarray:
    """Green Faidherbia/Balanites canopies, 4-10 m, densest in and around the village.

    Returns ``(n, 3)`` crown centres and radii in ground metres, for the shadows they cast.
    """
    h, w = labels.shape
    lam_max = 7.0  # trees per hectare near the village; 1.2 far out in the parkland
    n = rng.poisson(lam_max * h * w / 1e4)
    u, v = rng.uniform(0, w, n), rng.uniform(0, h, n)
    d = np.hypot(u - centre[0], v - centre[1])
    lam = 1.2 + 5.5 * np.exp(-np.maximum(0.0, d - radius) / 150.0)
    keep = rng.random(n) * lam_max < lam
    trees = np.column_stack([u[keep], v[keep], rng.uniform(2.0, 5.0, n)[keep]])
    for uu, vv, r in trees:
        labels[draw.disk((vv - 0.5, uu - 0.5), r, shape=labels.shape)] = _TREE
    return trees


def _paint_compound(labels: np.ndarray, compound_map: np.ndarray, rng: np.random.Generator,
                    p: _Plan, cid: int) -> None:
    """Mud wall, swept yard, a secco fence, 2-5 thatched huts and 1-3 granaries."""
    shape = labels.shape
    rr, cc = _cells(p.corners(), shape)
    labels[rr, cc] = _WALL
    compound_map[rr, cc] = cid
    labels[_cells(p.corners(inset=1.0), shape)] = _YARD
    fx, fy = rng.uniform(-p.hx + 3, p.hx - 3), rng.uniform(-2.0, p.hy - 3)  # from a wall into the yard
    fence = p.to_ground(np.array([fx - 0.5, fx + 0.5, fx + 0.5, fx - 0.5]),
                        np.array([-p.hy + 1, -p.hy + 1, fy, fy]))
    labels[_cells(np.stack(fence, axis=1), shape)] = _STRAW
    huts = rng.uniform(2.0, 3.0, rng.integers(2, 6))  # 4-6 m round huts
    granaries = rng.uniform(1.0, 1.5, rng.integers(1, 4))  # 2-3 m
    placed: list[tuple[float, float, float]] = []
    for r in np.concatenate([huts, granaries]):
        for _ in range(30):  # rejection sampling: roofs do not overlap
            x = rng.uniform(-(p.hx - r - 1.2), p.hx - r - 1.2)
            y = rng.uniform(-(p.hy - r - 1.2), p.hy - r - 1.2)
            if all(math.hypot(x - a, y - b) >= r + c + 0.6 for a, b, c in placed):
                placed.append((x, y, r))
                break
    for x, y, r in placed:
        u, v = p.to_ground(np.array(x), np.array(y))
        roof = _OLD_THATCH if r < 1.6 or rng.random() < 0.3 else _THATCH
        labels[draw.disk((float(v) - 0.5, float(u) - 0.5), r, shape=shape)] = roof


def _assign_events(rng: np.random.Generator, plans: list[_Plan], centre: tuple[float, float],
                   radius: float, n_first: int, phi: float | None = None) -> np.ndarray:
    """Event 1 takes one side of the village (a ragged sector), event 2 the rest.

    Event 1 lies opposite the bearing ``phi`` (radians from east toward south), random unless
    given.
    """
    drawn = rng.uniform(0, 2 * math.pi)  # drawn even when given, so the footprints stay the same
    phi = drawn if phi is None else phi
    proj = np.array([(p.cu - centre[0]) * math.cos(phi) + (p.cv - centre[1]) * math.sin(phi) for p in plans])
    order = np.argsort(proj + rng.normal(0, 0.25 * radius, len(plans)), kind="stable")
    events = np.full(len(plans), 2, dtype=np.uint8)
    events[order[:n_first]] = 1
    return events


def _footprint(rng: np.random.Generator, p: _Plan, outline: Polygon) -> Polygon:
    """An irregular burned footprint covering most of a compound (roofs, yard straw, fences)."""
    th = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    cos, sin = np.maximum(np.abs(np.cos(th)), 1e-9), np.maximum(np.abs(np.sin(th)), 1e-9)
    edge = np.minimum(p.hx / cos, p.hy / sin)  # centre-to-wall distance in each direction
    q1, q2 = rng.uniform(0, 2 * math.pi, 2)
    f = 0.9 + 0.07 * np.sin(th + q1) + 0.05 * np.sin(2 * th + q2) + rng.uniform(-0.06, 0.06, th.size)
    f = np.clip(f, 0.6, 1.1)
    ox, oy = rng.uniform(-1.5, 1.5, 2)
    u, v = p.to_ground(ox + f * edge * np.cos(th), oy + f * edge * np.sin(th))
    star = shapely.make_valid(Polygon(np.stack([u, v], 1)))
    fp = star.intersection(outline.buffer(0.5, join_style="mitre"))  # fire stops at the wall
    if fp.geom_type != "Polygon":  # keep the main piece if the clip left slivers
        fp = max((g for g in getattr(fp, "geoms", []) if g.geom_type == "Polygon"), key=lambda g: g.area)
    return fp


def _paint_burn(burn_event: np.ndarray, burn_label: np.ndarray, rng: np.random.Generator,
                fp: Polygon, event: int) -> None:
    """Char over the footprint with white ash specks (1-2 m) on 5-15 % of it."""
    rr, cc = _cells(np.asarray(fp.exterior.coords), burn_event.shape)
    burn_event[rr, cc] = event
    burn_label[rr, cc] = _CHAR
    n = int(rng.uniform(0.05, 0.15) * rr.size / 2.0)  # specks average ~2 cells
    seeds = rng.integers(0, rr.size, n)
    big = rng.random(n) < 0.35
    offsets = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    si = np.concatenate([rr[seeds]] + [rr[seeds[big]] + o[0] for o in offsets[1:]])
    sj = np.concatenate([cc[seeds]] + [cc[seeds[big]] + o[1] for o in offsets[1:]])
    ok = (si < burn_event.shape[0]) & (sj < burn_event.shape[1])
    si, sj = si[ok], sj[ok]
    inside = burn_event[si, sj] == event
    burn_label[si[inside], sj[inside]] = _ASH




def _burn_compounds(rng: np.random.Generator, plan: ScenarioPlan, plans: list[_Plan], outlines: list[Polygon],
                    centre: tuple[float, float], radius: float, n_first: int, burn_event: np.ndarray,
                    burn_label: np.ndarray, *, phi: float | None) -> tuple[np.ndarray, list[Polygon | None]]:
    """Decide which compounds burn in which settlement event, and paint their footprints."""
    if plan.settlement_burns == "two_events":
        events = _assign_events(rng, plans, centre, radius, n_first, phi)
    else:
        events = np.zeros(len(plans), dtype=np.uint8)
        if plan.settlement_burns == "one_compound":
            events[_pick_inner(rng, plans, centre, radius)] = 1
    footprints: list[Polygon | None] = []
    for p, outline, ev in zip(plans, outlines, events):
        fp = None
        if ev:
            fp = _footprint(rng, p, outline) if plan.settlement_burns == "two_events" else _small_footprint(rng, p)
            _paint_burn(burn_event, burn_label, rng, fp, int(ev))
        footprints.append(fp)
    return events, footprints


def _pick_inner(rng: np.random.Generator, plans: list[_Plan], centre: tuple[float, float], radius: float) -> int:
    """A compound in the inner half of the village, where a lone burn is surrounded by houses."""
    dist = np.array([math.hypot(p.cu - centre[0], p.cv - centre[1]) for p in plans])
    inner = np.flatnonzero(dist <= 0.5 * radius)
    return int(rng.choice(inner if inner.size else np.arange(len(plans))))


def _small_footprint(rng: np.random.Generator, p: _Plan, side: float = 10.0) -> Polygon:
    """A ``side`` x ``side`` m burn (a hut, its granary and a fence) inside the compound walls."""
    room = np.maximum(0.0, np.array([p.hx, p.hy]) - side / 2 - 1.0)
    ox, oy = rng.uniform(-1, 1, 2) * room
    h = side / 2
    u, v = p.to_ground(ox + np.array([-h, h, h, -h]), oy + np.array([-h, -h, h, h]))
    return Polygon(np.stack([u, v], axis=1))


def _plan_seasons(land: _Landscape, plan: ScenarioPlan, rng: np.random.Generator, fields: list[Polygon]) -> None:
    """Dry-season ground: deciduous crowns, a millet field to harvest and fields to burn."""
    if any(a.leaf_loss for a in plan.acquisitions):
        # About half the parkland trees shed leaves now (Sclerocarya, Lannea, Combretum...);
        # Faidherbia albida, leafy in the dry season, and Balanites keep theirs.
        land.deciduous = rng.random(len(land.trees)) < 0.5
        for u, v, r, _ in land.trees[land.deciduous]:
            rr, cc = draw.disk((v - 0.5, u - 0.5), r, shape=land.labels.shape)
            crown = land.labels[rr, cc] == _TREE
            land.labels[rr[crown], cc[crown]] = _DECIDUOUS
    burns = [k + 1 for k, e in enumerate(plan.events) if e.setting == "outside"]
    chosen = _pick_fields(rng, fields, land, len(burns) + (plan.harvest_time is not None))
    if plan.harvest_time is not None:
        land.harvest_field = chosen.pop()
        land.harvest = _plan_harvest(rng, land, land.harvest_field)
    for event, field in zip(burns, chosen):
        land.outside.append((event, _burn_field(rng, land, field, event)))


def _pick_fields(rng: np.random.Generator, fields: list[Polygon], land: _Landscape, count: int) -> list[Polygon]:
    """``count`` disjoint parcels inside the imaged grid, clear of the village and the old scar."""
    if count == 0:
        return []
    h, w = land.labels.shape
    near = land.settlement.buffer(40.0)
    for edge in (land.margin + 60, land.margin + 15):  # well inside the grid if possible
        fits = [f for f in fields if min(f.bounds[:2]) > edge and f.bounds[2] < w - edge
                and f.bounds[3] < h - edge and not f.intersects(near)
                and not (land.old_scar is not None and f.intersects(land.old_scar))]
        picked: list[Polygon] = []
        for i in rng.permutation(len(fits)):
            if not any(fits[i].intersects(g) for g in picked):
                picked.append(fits[i])
            if len(picked) == count:
                return picked
    raise ParameterError(f"the grid {land.grid.width}x{land.grid.height} px leaves fewer than {count} "
                         "millet fields clear of the village for the seasonal changes; use a larger grid "
                         f"(about {math.ceil(1200 / land.grid.resolution)} px a side)")


def _plan_harvest(rng: np.random.Generator, land: _Landscape,
                  field: Polygon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stand millet in ``field`` now; return the cells and the stubble-and-soil they become."""
    rr, cc = _cells(np.asarray(field.exterior.coords), land.labels.shape)
    lab = land.labels[rr, cc]
    crop = (lab == _DRY_VEG) | ((lab == _SAND) & (rng.random(rr.size) < 0.6))
    rr, cc = rr[crop], cc[crop]
    land.labels[rr, cc] = _MILLET
    after = np.where(rng.random(rr.size) < 0.3, _DRY_VEG, _SAND).astype(np.uint8)
    return rr, cc, after


def _burn_field(rng: np.random.Generator, land: _Landscape, field: Polygon, event: int) -> Polygon:
    """Burn a field's stubble: char and ash on fuel, scorched soil elsewhere, crowns spared.

    Returns the burned footprint: the field minus the tree crowns standing in it, whose green
    tops still show from above.
    """
    points = shapely.points(land.trees[:, :2])
    inside = shapely.distance(field, points) < land.trees[:, 2]
    crowns = shapely.union_all(shapely.buffer(points[inside], land.trees[inside, 2]))
    _paint_burn(land.burn_event, land.burn_label, rng, field, event)
    c0, r0, c1, r1 = (int(x) for x in field.bounds)
    box = (slice(max(0, r0 - 1), r1 + 2), slice(max(0, c0 - 1), c1 + 2))
    mine = land.burn_event[box] == event
    labels, burn_label = land.labels[box], land.burn_label[box]
    land.burn_event[box][mine & np.isin(labels, _CROWNS)] = 0
    burn_label[mine & ~np.isin(labels, _FUEL) & (burn_label == _CHAR)] = _OLD_SCAR
    return field.difference(crowns) if inside.any() else field


# --------------------------------------------------------------------------- the sky
def _plan_cloud(land: _Landscape, rng: np.random.Generator, sun_azimuth: float, sun_elevation: float,
                geometry: str = "far_return") -> _Cloud:
    """A soft-edged cumulus and its shadow, placed as the plan's ``geometry`` says.

    The shadow lies ``height / tan(elevation)`` away in the anti-solar azimuth. ``"far_return"``
    (the demo): over compounds that burn on the return, with a 1-1.8 km cloud base and the
    ~49-degree, south-east sun of 10:38 UTC in central Mali in late January, so the shadow is
    0.9-1.6 km to the north-west, off the grid when the grid is small. ``"across_village"``: a
    low cloud over the sun side of the village (where the first attack burned when the plan
    puts it there) whose base is chosen so its shadow falls on the far side and the fields
    beyond the village edge.
    """
    shape = land.labels.shape
    size = float(np.clip(0.35 * land.radius, 45.0, 160.0))
    if geometry == "far_return":
        cu, cv = _over_the_return(land, rng, size)
    else:
        cu, cv, reach = _across_the_village(land, size, sun_azimuth)
    alpha, brightness = _cumulus(rng, shape, cu, cv, size)
    if geometry == "far_return":
        height = float(rng.uniform(1000.0, 1800.0))
    else:
        height = round(reach * math.tan(math.radians(sun_elevation)), 1)
    reach = height / math.tan(math.radians(sun_elevation))
    du = int(round(-reach * math.sin(math.radians(sun_azimuth))))
    dv = int(round(reach * math.cos(math.radians(sun_azimuth))))  # v grows southward
    shade = np.ones(shape, dtype=np.float32)
    shadow_alpha = np.zeros(shape, dtype=np.float32)
    dst, src = _overlap(shape, dv, du)
    shade[dst] = 1.0 - 0.65 * alpha[src]  # diffuse skylight only: ~0.35 of full illumination
    shadow_alpha[dst] = alpha[src]
    cloud_frac = _compound_fraction(land, alpha > 0.05)
    shadow_frac = _compound_fraction(land, shade < 0.97)
    to_crs = _crs_transform(land)
    info = {"centre_xy": list(to_crs(shapely.Point(cu, cv)).coords[0]), "size_m": round(2 * size, 1),
            "cloud_base_m": round(height, 1), "shadow_offset_east_north_m": [du, -dv],
            "sun_azimuth": round(sun_azimuth, 2), "sun_elevation": round(sun_elevation, 2),
            "compound_ids_under_cloud": [int(i) for i in np.flatnonzero(cloud_frac >= _OBSCURED)],
            "compound_ids_under_shadow": [int(i) for i in np.flatnonzero(shadow_frac >= _OBSCURED)],
            "shadow_on_grid": bool(np.any(_land_image(land, 1.0 - shade, (0.0, 0.0)) > 0.03))}
    return _Cloud(alpha, brightness, shade, shadow_alpha, info)


def _over_the_return(land: _Landscape, rng: np.random.Generator, size: float) -> tuple[float, float]:
    """Centre over one of the return's compounds farthest from the attack (hides only them)."""
    later = np.flatnonzero(land.events == 2)
    pick = later if later.size else np.arange(len(land.plans))
    first = np.flatnonzero(land.events == 1)
    if first.size and later.size:  # the half of the return's compounds farthest from the attack
        fu, fv = np.mean([[land.plans[i].cu, land.plans[i].cv] for i in first], axis=0)
        dist = np.array([math.hypot(land.plans[i].cu - fu, land.plans[i].cv - fv) for i in later])
        pick = later[dist >= np.median(dist)]
    c = land.plans[int(rng.choice(pick))]
    return c.cu + rng.normal(0, 0.2 * size), c.cv + rng.normal(0, 0.2 * size)


def _across_the_village(land: _Landscape, size: float, sun_azimuth: float) -> tuple[float, float, float]:
    """Cloud centre a third of a radius sunward of the village centre, and the shadow's reach.

    The shadow's centre lands 0.8 radius on the anti-sun side, so the shadow covers the outer
    compounds there and spills onto the fields beyond; the reach (at least 2.4 cloud sizes)
    keeps cloud and shadow apart.
    """
    su, sv = math.sin(math.radians(sun_azimuth)), -math.cos(math.radians(sun_azimuth))  # toward the sun
    reach = max(1.15 * land.radius, 2.4 * size)
    cu, cv = land.centre[0] + 0.35 * land.radius * su, land.centre[1] + 0.35 * land.radius * sv
    return cu, cv, reach


def _cumulus(rng: np.random.Generator, shape: tuple[int, int], cu: float, cv: float,
             size: float) -> tuple[np.ndarray, np.ndarray]:
    """Opacity and cloud-top reflectance of a fair-weather cumulus centred at (cu, cv)."""
    v0, u0 = max(0, int(cv - 2.2 * size)), max(0, int(cu - 2.2 * size))
    v1, u1 = min(shape[0], int(cv + 2.2 * size)), min(shape[1], int(cu + 2.2 * size))
    vv, uu = np.mgrid[v0:v1, u0:u1].astype(np.float32) + 0.5
    body = np.zeros(vv.shape, dtype=np.float32)
    for k in range(5):  # a few rising turrets make the lumpy outline of a fair-weather cumulus
        ou, ov = (0.0, 0.0) if k == 0 else rng.normal(0, 0.35 * size, 2)
        s = rng.uniform(0.35, 0.55) * size
        body += rng.uniform(0.6, 1.0) * np.exp(-((uu - cu - ou) ** 2 + (vv - cv - ov) ** 2) / (2 * s * s))
    body /= body.max()
    body *= 1 + 0.25 * _smooth_field(rng, body.shape, 20.0)
    a = np.clip((body - 0.25) / 0.2, 0, 1)  # a ~10-20 m soft rim around an opaque core
    alpha = np.zeros(shape, dtype=np.float32)
    alpha[v0:v1, u0:u1] = a * a * (3 - 2 * a)
    brightness = np.zeros(shape, dtype=np.float32)
    brightness[v0:v1, u0:u1] = 0.45 + 0.15 * np.clip(body, 0, 1)
    return alpha, brightness


def _tree_light(land: _Landscape, sun: tuple[float, float], leaf_loss: float) -> np.ndarray:
    """Share of the direct sun that reaches each 1 m cell past the tree crowns (float32).

    A crown is a flattened spheroid (half-depth 0.45 of its radius) whose centre stands at the
    tree's height minus that half-depth; its shadow on flat ground is an ellipse displaced
    ``centre height / tan(elevation)`` in the anti-solar azimuth and stretched along it, so the
    lower the sun the longer and farther the shadow. Crowns block 85 % of the direct beam (a
    bare deciduous crown half that); the crown tops themselves stay lit.
    """
    az, cot = math.radians(sun[0]), 1.0 / math.tan(math.radians(sun[1]))
    light = np.ones(land.labels.shape, dtype=np.float32)
    if not len(land.trees):
        return light
    u, v, r, h = land.trees.T
    depth = 0.45 * r
    su, sv = u - (h - depth) * cot * math.sin(az), v + (h - depth) * cot * math.cos(az)
    along = np.sqrt(r ** 2 + (depth * cot) ** 2)
    off = np.arange(-math.ceil(along.max()) - 1, math.ceil(along.max()) + 2)
    rows = np.floor(sv)[:, None, None] + off[None, :, None]
    cols = np.floor(su)[:, None, None] + off[None, None, :]
    dv, du = rows + 0.5 - sv[:, None, None], cols + 0.5 - su[:, None, None]
    a = -du * math.sin(az) + dv * math.cos(az)  # along the shadow
    x = du * math.cos(az) + dv * math.sin(az)  # across it
    n, i, j = np.nonzero((a / along[:, None, None]) ** 2 + (x / r[:, None, None]) ** 2 <= 1.0)
    rr, cc = rows[n, i, 0].astype(np.intp), cols[n, 0, j].astype(np.intp)
    ok = (rr >= 0) & (rr < light.shape[0]) & (cc >= 0) & (cc < light.shape[1])
    opacity = np.where(land.deciduous, 0.85 * (1.0 - 0.5 * leaf_loss), 0.85).astype(np.float32)
    np.minimum.at(light, (rr[ok], cc[ok]), 1.0 - opacity[n[ok]])
    light[np.isin(land.labels, _CROWNS)] = 1.0
    return light


def _overlap(shape: tuple[int, int], dv: int, du: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices so that ``dst`` is ``src`` moved by (dv, du) cells, clipped to ``shape``."""
    h, w = shape
    # max(0, ...) on the stops too: a shift longer than the map must give empty slices, not
    # negative stops that Python would count from the end.
    dst = (slice(max(0, dv), max(0, min(h, h + dv))), slice(max(0, du), max(0, min(w, w + du))))
    src = (slice(max(0, -dv), max(0, min(h, h - dv))), slice(max(0, -du), max(0, min(w, w - du))))
    return dst, src


def _compound_fraction(land: _Landscape, mask: np.ndarray) -> np.ndarray:
    """Share of each compound's cells where ``mask`` is true."""
    inside = land.compound_map >= 0
    n = len(land.plans)
    total = np.bincount(land.compound_map[inside], minlength=n)
    hit = np.bincount(land.compound_map[inside & mask], minlength=n)
    return hit / np.maximum(total, 1)


def _sun_angles(lon: float, lat: float, when: datetime) -> tuple[float, float]:
    """Solar azimuth (degrees clockwise from north) and elevation (degrees) at ``when`` (UTC) [4]."""
    hour = when.hour + when.minute / 60 + when.second / 3600
    g = 2 * math.pi / 365 * (when.timetuple().tm_yday - 1 + (hour - 12) / 24)
    eqt = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                    - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    ha = math.radians((hour * 60 + eqt + 4 * lon) / 4 - 180)
    phi = math.radians(lat)
    elevation = math.asin(math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha))
    azimuth = math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    return (math.degrees(azimuth) + 180) % 360, math.degrees(elevation)


# --------------------------------------------------------------------------- imaging
def _acquire(land: _Landscape, plan: ScenarioPlan, k: int, *, seed: int, satellite: str,
             sun: tuple[float, float], state: int, cloud: _Cloud | None) -> SimulatedScene:
    """Image the ground as it was at scene ``k`` (``state`` events burned) through one satellite.

    The random draws keep version 1's order (shift, gains, offsets, day field, noise), which is
    what keeps the demo's pixels identical.
    """
    acq, sensor, shape = plan.acquisitions[k], _SENSORS[plan.sensor], land.grid.shape
    rng = _rng(seed, 100 + k)
    fine = rng.uniform(*plan.fine_shift_px, 2) * rng.choice([-1.0, 1.0], 2)
    shift = tuple(float(x) for x in fine + np.array(acq.coarse_shift_px))
    gain, offset = _radiometry(rng, sensor, acq.instrument)
    labels = _labels_at(land, plan, acq.time, state)
    factor = _ground_factor(land, plan, k, labels, sun, cloud, seed)
    lut = _scene_lut(acq, sensor)
    rho = np.stack([_land_image(land, _ground(lut[b], labels, land, factor, cloud, band), shift, coarse=coarse)
                    for b, (band, coarse) in enumerate(zip(sensor.bands, sensor.coarse))])
    t, path = _haze_model(acq.haze, sensor)
    day = 1.0 + 0.004 * _smooth_field(rng, shape, 100.0)  # moisture, view angle: tiny
    observed = gain[:, None, None] * (t * rho * day + np.array(path)[:, None, None]) + offset[:, None, None]
    sigma = np.array(sensor.noise, dtype=np.float32)[:, None, None]
    observed += rng.standard_normal(observed.shape, dtype=np.float32) * sigma
    dn = np.clip(np.rint(observed * 10000.0), 1, 10000).astype(np.uint16)
    cloud_px = shadow_px = None
    if cloud is not None:
        cloud_px = _land_image(land, cloud.alpha, shift)
        shadow_px = _land_image(land, 1.0 - cloud.shade, shift)
    udm2 = _udm2(shape, acq.haze, cloud_px, shadow_px, flag_shadow=plan.shadow_flagged)
    scene_id = f"{acq.time:%Y%m%d_%H%M%S}_sim_d{k}"
    metadata = {
        "scene_id": scene_id, "acquired": _iso(acq.time), "satellite_id": satellite, "simulated": True,
        "bands": list(sensor.bands), "reflectance_scale": 10000, "nodata": 0,
        "radiometric_model": "observed = gain * (t * rho + path) + offset + noise; rho carries a "
                             "smooth +-0.4 % day-to-day variation",
        "gain": [float(x) for x in gain], "offset": [float(x) for x in offset],
        "haze": acq.haze, "haze_transmittance": t, "haze_path_reflectance": list(path),
        "noise_sigma": list(sensor.noise), "cloud": cloud is not None,
        "cloud_fraction": round(float(udm2[5].mean()), 5), "shadow_fraction": round(float(udm2[2].mean()), 5),
        "sun_azimuth": round(sun[0], 2), "sun_elevation": round(sun[1], 2),
        "true_shift_px": list(shift), "simulator_version": SIMULATOR_VERSION,
        **_scene_extras(plan, acq, sensor),
    }
    return SimulatedScene(scene_id, acq.time, satellite, _frozen(dn), _frozen(udm2), shift, metadata)


def _scene_extras(plan: ScenarioPlan, acq: Acquisition, sensor: _Sensor) -> dict:
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


def _radiometry(rng: np.random.Generator, sensor: _Sensor, instrument: str) -> tuple[np.ndarray, np.ndarray]:
    """Band gains and offsets of one scene: its satellite's, times its instrument's (rounded)."""
    n = len(sensor.bands)
    # Rounded before use, so the metadata holds exactly what was applied.
    gain, offset = np.round(rng.uniform(*sensor.gain, n), 5), np.round(rng.uniform(*sensor.offset, n), 5)
    if instrument:
        g, o = _INSTRUMENT_RADIOMETRY[instrument]
        gain, offset = np.round(gain * np.array(g), 5), np.round(offset + np.array(o), 5)
    return gain, offset


def _haze_model(haze: str, sensor: _Sensor) -> tuple[float, tuple[float, ...]]:
    """Dust transmittance and per-band path reflectance for the sensor's bands."""
    t, path = _HAZE[haze]
    if len(sensor.bands) > len(path):
        path = path + tuple(path[3] * s for s in _SWIR_PATH_SHARE)
    return t, path


def _labels_at(land: _Landscape, plan: ScenarioPlan, when: datetime, state: int) -> np.ndarray:
    """The ground's materials at ``when``: burned cells and the harvest as far as they happened."""
    burned = (land.burn_event > 0) & (land.burn_event <= state)
    labels = np.where(burned, land.burn_label, land.labels)
    if land.harvest is not None and when > plan.harvest_time:
        rr, cc, after = land.harvest
        keep = ~burned[rr, cc]
        labels[rr[keep], cc[keep]] = after[keep]
    return labels


def _scene_lut(acq: Acquisition, sensor: _Sensor) -> np.ndarray:
    """(band, material) reflectance as this scene's instrument sees it on its date."""
    lut = _LUT_S2 if len(sensor.bands) > 4 else _LUT
    if acq.leaf_loss or acq.instrument:
        lut = lut.copy()
    if acq.leaf_loss:
        lut[:, _DECIDUOUS] = (1 - acq.leaf_loss) * lut[:, _TREE] + acq.leaf_loss * lut[:, _BARE_CROWN]
    if acq.instrument == "PS2":
        lut *= _PS2_FACTORS
    return lut


def _ground_factor(land: _Landscape, plan: ScenarioPlan, k: int, labels: np.ndarray, sun: tuple[float, float],
                   cloud: _Cloud | None, seed: int) -> np.ndarray | None:
    """Illumination (tree and cloud shadows) times moisture darkening on the ground map.

    None when nothing dims the ground. The demo keeps version 1's rendering: no tree shadows,
    the cloud shadow alone. Elsewhere shadows combine as blocked direct sun (the diffuse sky
    light still reaches a shadow), and wet soils darken in every band [7].
    """
    acq = plan.acquisitions[k]
    if not plan.tree_shadows and not acq.soil_wetness:
        return None if cloud is None else cloud.shade
    direct = _tree_light(land, sun, acq.leaf_loss) if plan.tree_shadows else np.ones(labels.shape, np.float32)
    if cloud is not None:
        direct *= 1 - cloud.shadow_alpha
    factor = 1 - (1 - _SKY_LIGHT) * (1 - direct)
    if acq.soil_wetness:
        patchy = np.clip(_smooth_field(_rng(seed, 300 + k), labels.shape, 200.0), -1, 1)
        wet = acq.soil_wetness * (1 + 0.1 * patchy)  # rain fell unevenly: +-10 % of the darkening
        factor *= np.where(np.isin(labels, _SOILS), 1 - wet, np.float32(1))
    return factor


def _ground(lut_band: np.ndarray, labels: np.ndarray, land: _Landscape, factor: np.ndarray | None,
            cloud: _Cloud | None, band: str) -> np.ndarray:
    """One band of the 1 m ground as the sensor's top of canopy sees it, cloud included."""
    ground = lut_band[labels] * land.texture
    if factor is not None:
        ground *= factor
    if cloud is not None:
        top = cloud.brightness * _CLOUD_SWIR[band] if band in _CLOUD_SWIR else cloud.brightness
        ground += cloud.alpha * (top - ground)
    return ground


def _land_image(land: _Landscape, ground: np.ndarray, shift: tuple[float, float], *,
                coarse: bool = False) -> np.ndarray:
    """:func:`_image` with the landscape's pixel, margin and padding."""
    return _image(ground, shift, land.grid.shape, sub=land.sub, margin=land.margin, pad=land.pad, coarse=coarse)


def _image(ground: np.ndarray, shift: tuple[float, float], shape: tuple[int, int], *, sub: int = _SUB,
           margin: int = _MARGIN_M, pad: int = _PAD_PX, coarse: bool = False) -> np.ndarray:
    """Image a 1 m ground map onto the grid, content displaced by ``shift`` pixels.

    Each pixel averages ``sub`` x ``sub`` sub-samples (the detector's area integration) taken
    at ground position ``nominal - shift``, read by linear interpolation between 1 m cells (the
    same numbers as ``scipy.ndimage.map_coordinates(order=1)``, done as two weighted slices
    because the displacement is the same everywhere), then a Gaussian PSF of 0.5 px. A
    ``coarse`` band is integrated on pixels twice as large instead (pairs of grid pixels from
    the padded origin, so aligned with the grid's even indices), blurred by 0.5 of those
    pixels and resampled bilinearly onto the grid, as a loader putting Sentinel-2's 20 m SWIR
    on the 10 m grid would.
    """
    h, w = shape
    n_r, n_c = sub * (h + 2 * pad), sub * (w + 2 * pad)
    out = ground
    for axis, d, n in ((0, shift[0], n_r), (1, shift[1], n_c)):
        s = -sub * d  # ground metres to read from, relative to the nominal position
        a = math.floor(s)
        f = np.float32(s - a)
        start = margin - sub * pad + a
        lo = out[start:start + n] if axis == 0 else out[:, start:start + n]
        hi = out[start + 1:start + 1 + n] if axis == 0 else out[:, start + 1:start + 1 + n]
        out = lo * (1 - f) + hi * f
    pix = out.reshape(h + 2 * pad, sub, w + 2 * pad, sub).mean(axis=(1, 3))
    pix = _coarse_band(pix) if coarse else ndimage.gaussian_filter(pix, _PSF_SIGMA_PX)
    return pix[pad:-pad, pad:-pad]


def _coarse_band(pix: np.ndarray) -> np.ndarray:
    """Average 2 x 2 pixel blocks, blur, and interpolate back onto the fine pixel centres."""
    h, w = pix.shape
    block = pix[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    block = ndimage.gaussian_filter(block, _PSF_SIGMA_PX)
    # Fine pixel i's centre is at coarse coordinate (i + 0.5) / 2 - 0.5 (centres at 0, 1...).
    rows, cols = (np.arange(h) - 0.5) / 2, (np.arange(w) - 0.5) / 2
    return ndimage.map_coordinates(block, np.meshgrid(rows, cols, indexing="ij"), order=1,
                                   mode="nearest").astype(np.float32)


def _udm2(shape: tuple[int, int], haze: str, cloud_px: np.ndarray | None,
          shadow_px: np.ndarray | None, *, flag_shadow: bool = True) -> np.ndarray:
    """Planet UDM2 bands; flags are dilated by 2 px so they also cover the soft cloud edges.

    ``flag_shadow=False`` reproduces a known UDM2 failure: the shadow is left marked clear.
    """
    udm = np.zeros((8, *shape), dtype=np.uint8)
    cloud = np.zeros(shape, dtype=bool)
    shadow = np.zeros(shape, dtype=bool)
    square = np.ones((3, 3), dtype=bool)
    if cloud_px is not None:
        cloud = ndimage.binary_dilation(cloud_px > 0.02, square, iterations=2)
        if flag_shadow:
            shadow = ndimage.binary_dilation(shadow_px > 0.03, square, iterations=2) & ~cloud
    clear = ~(cloud | shadow)
    udm[0], udm[2], udm[5] = clear, shadow, cloud
    if haze != "none":
        # Project convention: light haze is usable, so it keeps clear = 1. Real UDM2 classes
        # (bands 0-5) are mutually exclusive: a real light-haze pixel has clear = 0.
        udm[3] = clear
    udm[6] = np.where(clear, _CONFIDENCE[haze], 60)
    return udm


# --------------------------------------------------------------------------- the truth
def _truth_first_visible(land: _Landscape, first_index: list[int | None]) -> np.ndarray:
    """Index of the first scene on which burns cover at least half of each pixel."""
    grid = land.grid
    truth = np.full(grid.shape, -1, dtype=np.int16)
    covered = np.zeros(grid.shape)
    for k, idx in enumerate(first_index):
        for fp, ev in zip(land.footprints, land.events):
            if ev == k + 1:
                _add_cover(covered, fp, land)
        for ev, fp in land.outside:
            if ev == k + 1:
                _add_cover(covered, fp, land)
        if idx is not None:
            truth[(covered >= 0.5) & (truth < 0)] = idx
    return truth


def _add_cover(covered: np.ndarray, poly: Polygon, land: _Landscape) -> None:
    """Add the exact share of each pixel that ``poly`` (ground metres) covers."""
    h, w = covered.shape
    sub, margin = land.sub, land.margin
    minu, minv, maxu, maxv = poly.bounds
    c0, c1 = max(0, int((minu - margin) // sub)), min(w, int(math.ceil((maxu - margin) / sub)))
    r0, r1 = max(0, int((minv - margin) // sub)), min(h, int(math.ceil((maxv - margin) / sub)))
    rr, cc = np.mgrid[r0:r1, c0:c1]
    u, v = margin + sub * cc, margin + sub * rr
    boxes = shapely.box(u, v, u + sub, v + sub)
    covered[r0:r1, c0:c1] += shapely.area(shapely.intersection(boxes, poly)) / sub ** 2


def _truth_tables(land: _Landscape, scenes: tuple[SimulatedScene, ...], plan: ScenarioPlan,
                  first_index: list[int | None],
                  cloud: _Cloud | None) -> tuple[geopandas.GeoDataFrame, geopandas.GeoDataFrame]:
    """The compounds table and the burned-footprints table, in the grid's CRS."""
    to_crs = _crs_transform(land)
    hidden = np.zeros(len(land.plans))
    if cloud is not None:
        hidden = np.maximum(_compound_fraction(land, cloud.alpha > 0.05),
                            _compound_fraction(land, cloud.shade < 0.97))
    rows, burns = [], []
    for cid, (p, ev, fp) in enumerate(zip(land.plans, land.events, land.footprints)):
        idx = first_index[ev - 1] if ev else None
        seen = _iso(scenes[idx].acquired) if idx is not None else ""
        obscured = plan.cloud_scene if hidden[cid] >= _OBSCURED else -1
        rows.append({"compound_id": cid, "event": plan.events[ev - 1].name if ev else "", "first_visible": seen,
                     "obscured_scene": obscured, "obscured_fraction": round(float(hidden[cid]), 3),
                     "geometry": to_crs(Polygon(p.corners()))})
        if fp is not None and idx is not None:
            burns.append(_burn_row(cid, plan.events[ev - 1].name, "settlement", fp, idx, obscured, scenes, to_crs))
    for ev, fp in land.outside:
        if first_index[ev - 1] is not None:
            obscured = plan.cloud_scene if _hidden_fraction(land, fp, cloud) >= _OBSCURED else -1
            burns.append(_burn_row(-1, plan.events[ev - 1].name, "outside", fp, first_index[ev - 1], obscured,
                                   scenes, to_crs))
    crs = land.grid.crs
    columns = ["compound_id", "event", "first_visible", "last_clear_before", "area_m2", "setting",
               "first_seen_clear", "geometry"]
    burns_gdf = geopandas.GeoDataFrame(burns or None, columns=columns, geometry="geometry", crs=crs)
    return geopandas.GeoDataFrame(rows, geometry="geometry", crs=crs), burns_gdf


def _burn_row(cid: int, event: str, setting: str, fp: Polygon, idx: int, obscured: int,
              scenes: tuple[SimulatedScene, ...], to_crs) -> dict:
    """One truth row; the bracket skips the scene whose cloud or shadow hides the burn."""
    before = [j for j in range(idx) if j != obscured]
    after = [j for j in range(idx, len(scenes)) if j != obscured]
    return {"compound_id": cid, "event": event, "first_visible": _iso(scenes[idx].acquired),
            "last_clear_before": _iso(scenes[before[-1]].acquired) if before else "",
            "area_m2": round(fp.area, 1), "setting": setting,
            "first_seen_clear": _iso(scenes[after[0]].acquired) if after else "", "geometry": to_crs(fp)}


def _hidden_fraction(land: _Landscape, poly: Polygon, cloud: _Cloud | None) -> float:
    """Share of the 1 m cells inside ``poly`` under the cloud or its shadow."""
    if cloud is None:
        return 0.0
    rr, cc = _cells(np.asarray(poly.convex_hull.exterior.coords), land.labels.shape)
    hit = (cloud.alpha[rr, cc] > 0.05) | (cloud.shade[rr, cc] < 0.97)
    return float(hit.mean()) if rr.size else 0.0


# --------------------------------------------------------------------------- helpers
def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent generator per job, so changing one part never reshuffles the others."""
    return np.random.default_rng([int(seed), stream])


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, roughly unit-variance float32 noise with features about ``scale`` cells wide."""
    step = max(1, int(round(scale / 2)))
    coarse = rng.standard_normal((shape[0] // step + 4, shape[1] // step + 4))
    coarse = ndimage.gaussian_filter(coarse, 1.0, mode="wrap")
    coarse = (coarse - coarse.mean()) / (coarse.std() + 1e-12)
    return ndimage.zoom(coarse.astype(np.float32), step, order=1)[:shape[0], :shape[1]]


def _cells(coords_uv: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the 1 m cells whose centres fall inside a polygon given in ground metres."""
    c = np.asarray(coords_uv, dtype=float)
    return draw.polygon(c[:, 1] - 0.5, c[:, 0] - 0.5, shape)


def _stamp(labels: np.ndarray, u: np.ndarray, v: np.ndarray, radius: float, value: int) -> None:
    """Paint a disc of ``radius`` metres at every point of a densely sampled path."""
    r = int(math.ceil(radius))
    di, dj = np.mgrid[-r:r + 1, -r:r + 1]
    disc = di ** 2 + dj ** 2 <= radius ** 2
    ii = (np.floor(v).astype(int)[:, None] + di[disc]).ravel()
    jj = (np.floor(u).astype(int)[:, None] + dj[disc]).ravel()
    ok = (ii >= 0) & (ii < labels.shape[0]) & (jj >= 0) & (jj < labels.shape[1])
    labels[ii[ok], jj[ok]] = value


def _crs_transform(land: _Landscape):
    """Ground metres (u east, v south of the ground map's corner) to ``grid.crs`` coordinates."""
    x0, y0 = land.grid.transform.c - land.margin, land.grid.transform.f + land.margin
    return lambda geom: affinity.affine_transform(geom, [1.0, 0.0, 0.0, -1.0, x0, y0])


def _iso(t: datetime) -> str:
    return t.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
