"""Simulated PlanetScope-like time series over a Sahel village: the demo and the benchmark truth.

Real scenes of burned villages cannot be shipped with their ground truth, and an accuracy
figure is only as good as the truth behind it. So the simulator builds the truth first: it
paints a 1 m ground map of a dry-season village in central Mali (soils, dry grass, millet
fields, green trees, tracks, walled compounds with thatched huts), burns compounds on the
reported dates, then images that ground the way a 3 m four-band sensor would. Each scene is
misregistered by a known sub-pixel shift, integrated over the detector, blurred by a small
point-spread function, seen through harmattan dust haze, scaled by its own satellite's gain
and offset, noised and, on 31 January, partly hidden by a cumulus cloud and its shadow that
UDM2 flags. Everything is deterministic from ``seed`` and everything returned says
``simulated: True``; the caller labels the files it writes.

References
----------
.. [1] Kokaly, R. F. et al. (2017). USGS Spectral Library Version 7. U.S. Geological Survey
   Data Series 1035. (soils, dry grass, green vegetation)
.. [2] Trigg, S. & Flasse, S. (2000). Characterizing the spectral-temporal response of burned
   savannah using in situ spectroradiometry and infrared thermometry. International Journal
   of Remote Sensing 21(16), 3161-3168. (savanna char and ash)
.. [3] Pereira, J. M. C. et al. (1999). Spectral characterisation and discrimination of burnt
   areas. In Chuvieco, E. (ed.), Remote Sensing of Large Wildfires, Springer, 123-138.
.. [4] NOAA Global Monitoring Laboratory, "General solar position calculations" (low-precision
   solar declination, equation of time and hour-angle formulas; about 0.5 degree).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, NamedTuple

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

__all__ = ["BANDS", "SIMULATOR_VERSION", "Scenario", "SimulatedScene", "SimulatedSeries",
           "simulate_village_series"]

#: Bumped whenever the same seed would give different pixels, so benchmark numbers stay comparable.
SIMULATOR_VERSION = "1"
#: Scenarios the simulator knows; only the reported two-event story for now.
Scenario = Literal["demo"]
#: Band order of ``SimulatedScene.reflectance`` (PlanetScope 4-band analytic order).
BANDS = ("blue", "green", "red", "nir")

# Representative surface reflectance (blue, green, red, NIR) of each ground material. Rounded
# values in the ranges of the cited spectra, not band-integrated library spectra: sand,
# laterite, dry vegetation (dry grass and millet stubble) and tree canopy after [1]; char and
# ash after [2, 3]. The village materials are variants of soil and dry grass (mud brick is soil,
# thatch and fences are dry grass stems) and are our own choice.
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
_MATERIALS = tuple(_SPECTRA)
_LUT = np.array([_SPECTRA[m] for m in _MATERIALS], dtype=np.float32).T  # (band, material)
(_SAND, _LATERITE, _DRY_VEG, _TREE, _LANE, _TRACK, _WALL, _YARD, _THATCH, _OLD_THATCH, _STRAW,
 _CHAR, _ASH, _OLD_SCAR) = range(len(_MATERIALS))

_SUB = 3  # 1 m ground cells per 3 m pixel side
_MARGIN_M = 48  # ground beyond the grid: shifts (<= 12 m), padding (9 m) and PSF never run out
_PAD_PX = 3  # pixels imaged beyond the grid so the PSF has true neighbours at the edges
_MAX_SHIFT_PX = 4.0
_PSF_SIGMA_PX = 0.5
_AOI_MARGIN_M = 200.0  # the caller's buffer around its AOI: the village stays inside the AOI
_SLOT_M = 36.0  # compound lattice spacing: 20-28 m enclosures leave 4-16 m lanes
_NOISE_SIGMA = (0.005, 0.0045, 0.0045, 0.006)  # per band, reflectance units
# Harmattan dust: observed = t * rho + path. Path is largest in blue (small-particle scattering).
_HAZE = {"none": (1.0, (0.0, 0.0, 0.0, 0.0)),
         "light": (0.95, (0.025, 0.02, 0.015, 0.0075)),
         "moderate": (0.88, (0.05, 0.04, 0.03, 0.015))}
_CONFIDENCE = {"none": 95, "light": 85, "moderate": 75}
_OBSCURED = 0.25  # share of a compound under cloud or shadow that makes a date useless for it

_UTC = timezone.utc


@dataclass(frozen=True)
class _ScenarioPlan:
    times: tuple[datetime, ...]
    haze: tuple[str, ...]
    cloud_scene: int
    # (name, assumed time, what was reported); event k (1-based) burns compounds marked k.
    events: tuple[tuple[str, datetime, str], ...]


_SCENARIOS = {"demo": _ScenarioPlan(
    times=tuple(datetime(2024, m, d, 10, 38, tzinfo=_UTC)
                for m, d in ((1, 26), (1, 27), (1, 28), (1, 31), (2, 1))),
    haze=("none", "light", "none", "none", "moderate"),
    cloud_scene=3,
    events=(("attack-2024-01-27", datetime(2024, 1, 27, 18, 0, tzinfo=_UTC),
             "attack reported on the evening of 27 January (Mali local time = UTC)"),
            ("return-2024-02-01", datetime(2024, 2, 1, 6, 0, tzinfo=_UTC),
             "return reported on 1 February, before the 10:38 UTC pass")),
)}


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
        Simulated satellite, e.g. ``"SIM-1057"``; each has its own gain and offset.
    reflectance:
        uint16 ``(4, H, W)`` blue, green, red, NIR surface reflectance x 10000; 0 = nodata.
    udm2:
        uint8 ``(8, H, W)`` in Planet UDM2 order: clear, snow, shadow, light haze, heavy haze,
        cloud, confidence (0-100), legacy udm (0 = ok).
    true_shift_px:
        ``(dy, dx)``: the content is displaced by +dy rows and +dx columns, so nominal pixel
        ``(r, c)`` shows the ground at ``(r - dy, c - dx)`` and
        ``scipy.ndimage.shift(image, (-dy, -dx))`` puts it back.
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
        half of the pixel is burned; -1 = never burned.
    truth_burns:
        One row per burned compound: ``compound_id``, ``event``, ``first_visible`` (ISO UTC),
        ``last_clear_before`` (ISO UTC of the latest earlier scene not hiding it under cloud or
        shadow, the honest start of a date bracket), ``area_m2`` and the burned footprint.
    compounds:
        Every compound outline with ``compound_id``, ``event`` ("" if never burned),
        ``first_visible``, ``obscured_scene`` (index of the scene whose cloud or shadow covers
        at least a quarter of it, -1 if none) and ``obscured_fraction``.
    settlement:
        Outline of the built-up area, in ``grid.crs``.
    metadata:
        JSON-able: seed, scenario, ``SIMULATOR_VERSION``, events, cloud, notes,
        ``"simulated": True``.
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
        return (f"SimulatedSeries(simulated, {self.grid.width}x{self.grid.height} px, "
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
    labels: np.ndarray  # uint8 material of each 1 m cell before any burn
    burn_event: np.ndarray  # uint8: 0 never, k = burned by event k
    burn_label: np.ndarray  # uint8 material once burned (char or ash)
    compound_map: np.ndarray  # int16 compound id, -1 outside compounds
    texture: np.ndarray  # float32 multiplicative brightness of the ground
    plans: list[_Plan]
    events: np.ndarray  # event of each compound
    footprints: list[Polygon | None]
    settlement: Polygon
    centre: tuple[float, float]
    radius: float
    old_scar: Polygon | None


@dataclass
class _Cloud:
    alpha: np.ndarray  # float32 opacity on the ground map
    brightness: np.ndarray  # float32 cloud-top reflectance
    shade: np.ndarray  # float32 illumination factor, 0.35 in the core of the shadow
    info: dict


def simulate_village_series(grid: Grid, *, seed: int = 20240127, n_compounds: int = 220,
                            n_burned_first: int = 150, scenario: Scenario = "demo") -> SimulatedSeries:
    """Simulate the demo series: a Sahel village attacked on 27 January and again on 1 February.

    The truth is drawn before any pixel is imaged, so every error a stage makes on these scenes
    is measurable. Acquisitions are on 26, 27, 28 and 31 January and 1 February 2024 at
    10:38 UTC; ``n_burned_first`` compounds burn on the evening of the 27th (visible from the
    28th) and all the others on the morning of 1 February (visible that day, not on the 31st).

    Parameters
    ----------
    grid:
        A north-up 3 m grid in a metric projected CRS, the AOI grid with its ~200 m margin. The
        village is put near its centre and must fit inside the AOI part.
    seed:
        Everything (landscape, shifts, satellites, haze field, cloud, noise) derives from it.
    n_compounds:
        Compounds in the village (about 1300 m2 of village each); lower it on small grids.
    n_burned_first:
        Compounds burned by the first attack; the return burns the rest.
    scenario:
        Only ``"demo"``.

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
    plan = _SCENARIOS[scenario]
    land = _build_landscape(grid, seed=seed, n_compounds=n_compounds, n_burned_first=n_burned_first)
    lon, lat = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(
        (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2)
    suns = [_sun_angles(lon, lat, t) for t in plan.times]
    cloud = _plan_cloud(land, _rng(seed, 40), *suns[plan.cloud_scene])
    satellites = _rng(seed, 50).choice(np.arange(1000, 2600), len(plan.times), replace=False)
    scenes = tuple(
        _acquire(land, k, when, seed=seed, satellite=f"SIM-{satellites[k]}", haze=plan.haze[k],
                 sun=suns[k], state=sum(when > e[1] for e in plan.events),
                 cloud=cloud if k == plan.cloud_scene else None)
        for k, when in enumerate(plan.times))
    first_index = [next((k for k, t in enumerate(plan.times) if t > e[1]), None) for e in plan.events]
    truth = _truth_first_visible(land, first_index)
    compounds, burns = _truth_tables(land, scenes, plan, first_index, cloud)
    events = [{"event": name, "assumed_time": _iso(t), "reported": said,
               "n_compounds": int(np.sum(land.events == k + 1)),
               "first_visible_scene": first_index[k],
               "first_visible": _iso(plan.times[first_index[k]]) if first_index[k] is not None else None}
              for k, (name, t, said) in enumerate(plan.events)]
    to_crs = _crs_transform(land)
    metadata = {
        "simulated": True, "simulator": "burnscan pipeline.simulate", "version": SIMULATOR_VERSION,
        "seed": int(seed), "scenario": scenario, "n_compounds": int(n_compounds),
        "n_burned_first": int(n_burned_first), "acquisitions": [_iso(t) for t in plan.times],
        "events": events, "cloud": {"scene_index": plan.cloud_scene, **cloud.info},
        "grid": {"crs": grid.crs, "transform": list(grid.transform)[:6],
                 "width": grid.width, "height": grid.height},
        "village_centre_xy": list(to_crs(shapely.Point(land.centre)).coords[0]),
        "village_radius_m": round(land.radius, 1),
        "old_burn_scar_bounds": (list(to_crs(land.old_scar).bounds) if land.old_scar else None),
        "reflectance": {m: list(v) for m, v in _SPECTRA.items()},
        "notes": [
            "Synthetic scenes rendered by burnscan's simulator: no satellite observed them.",
            "Reflectances are representative values after the USGS Spectral Library v7 (Kokaly "
            "et al. 2017) and Trigg & Flasse 2000 / Pereira et al. 1999, not measurements.",
            "Every compound burns: the first attack burns n_burned_first, the return the rest.",
            "An old field burn scar (before the series) is static: it is not in the truth.",
            "Radiometry per scene: observed = gain * (t * rho + path) + offset + noise.",
        ],
    }
    return SimulatedSeries(grid=grid, scenes=scenes, truth_first_visible=_frozen(truth),
                           truth_burns=burns, compounds=compounds,
                           settlement=to_crs(land.settlement), metadata=metadata)


# --------------------------------------------------------------------------- arguments
def _check_arguments(grid: Grid, seed: int, n_compounds: int, n_burned_first: int, scenario: str) -> None:
    if scenario not in _SCENARIOS:
        raise ParameterError(f"unknown scenario {scenario!r}; use one of {sorted(_SCENARIOS)}")
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
    t = grid.transform
    if not math.isclose(grid.resolution, 3.0) or t.b != 0 or t.d != 0 or not math.isclose(t.e, -3.0):
        raise ParameterError(f"the simulator images 3 m north-up pixels; got a grid with transform "
                             f"{tuple(t)[:6]}; build it with grid_for_bounds(..., resolution=3.0)")
    crs = pyproj.CRS(grid.crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise ParameterError(f"grid CRS {grid.crs!r} is not a metric projected CRS; use a UTM zone "
                             "such as EPSG:32630")
    if _village_room(grid) < 60.0:
        raise ParameterError(f"grid {grid.width}x{grid.height} px is too small for a village inside "
                             f"a {_AOI_MARGIN_M:.0f} m margin; use at least "
                             f"{math.ceil((2 * (60 + 30 + _AOI_MARGIN_M)) / 3)} px a side")


def _village_room(grid: Grid) -> float:
    """Largest village radius (m) that keeps the village inside the AOI part of ``grid``."""
    return 0.5 * grid.resolution * min(grid.width, grid.height) - _AOI_MARGIN_M - 30.0


# --------------------------------------------------------------------------- the ground
def _build_landscape(grid: Grid, *, seed: int, n_compounds: int, n_burned_first: int) -> _Landscape:
    """Paint the 1 m ground map around ``grid``, compounds and burns included."""
    shape = (_SUB * grid.height + 2 * _MARGIN_M, _SUB * grid.width + 2 * _MARGIN_M)
    rng = _rng(seed, 1)
    jitter = rng.uniform(-1, 1, 2) * min(30.0, 0.03 * _SUB * min(grid.shape))
    centre = (shape[1] / 2 + jitter[0], shape[0] / 2 + jitter[1])
    plans, radius = _plan_compounds(rng, centre, n_compounds, _village_room(grid))
    outlines = [Polygon(p.corners()) for p in plans]
    settlement = shapely.union_all([o.buffer(9.0, join_style="mitre") for o in outlines]).buffer(-5.0)
    settlement = Polygon(settlement.exterior) if settlement.geom_type == "Polygon" else settlement.convex_hull

    labels = np.full(shape, _SAND, dtype=np.uint8)
    old_scar = _paint_soils_and_fields(labels, _rng(seed, 2), centre, radius)
    labels[_cells(np.asarray(settlement.exterior.coords), shape)] = _LANE
    _paint_tracks(labels, _rng(seed, 3), centre)
    _paint_trees(labels, _rng(seed, 4), centre, radius)
    compound_map = np.full(shape, -1, dtype=np.int16)
    crng = _rng(seed, 5)
    for cid, p in enumerate(plans):
        _paint_compound(labels, compound_map, crng, p, cid)

    brng = _rng(seed, 6)
    events = _assign_events(brng, plans, centre, radius, n_burned_first)
    burn_event = np.zeros(shape, dtype=np.uint8)
    burn_label = np.full(shape, _CHAR, dtype=np.uint8)
    footprints: list[Polygon | None] = []
    for p, outline, ev in zip(plans, outlines, events):
        fp = _footprint(brng, p, outline) if ev else None
        if fp is not None:
            _paint_burn(burn_event, burn_label, brng, fp, int(ev))
        footprints.append(fp)

    trng = _rng(seed, 7)
    texture = 1.0 + 0.03 * _smooth_field(trng, shape, 300.0) + 0.015 * _smooth_field(trng, shape, 40.0)
    texture += 0.02 * trng.standard_normal(shape, dtype=np.float32)  # sand grain, litter, stones
    return _Landscape(grid, labels, burn_event, burn_label, compound_map,
                      np.clip(texture, 0.85, 1.15).astype(np.float32), plans, events, footprints,
                      settlement, centre, radius, old_scar)


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
                            radius: float) -> Polygon | None:
    """Sand with lateritic patches and dry grass, then millet parcels around the village.

    The first parcel lying well inside the grid and 100 m clear of the village becomes an old
    (December) burn scar: dark on every date, so only a method that looks at change ignores it.
    Returns its outline, or None when no parcel qualifies.
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
    edge = _MARGIN_M + 60  # keep the scar off the grid's border, where shifts would cut it
    scar = None
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
    return scar


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
                 radius: float) -> None:
    """Green Faidherbia/Balanites canopies, 4-10 m, densest in and around the village."""
    h, w = labels.shape
    lam_max = 7.0  # trees per hectare near the village; 1.2 far out in the parkland
    n = rng.poisson(lam_max * h * w / 1e4)
    u, v = rng.uniform(0, w, n), rng.uniform(0, h, n)
    d = np.hypot(u - centre[0], v - centre[1])
    lam = 1.2 + 5.5 * np.exp(-np.maximum(0.0, d - radius) / 150.0)
    keep = rng.random(n) * lam_max < lam
    for uu, vv, r in zip(u[keep], v[keep], rng.uniform(2.0, 5.0, n)[keep]):
        labels[draw.disk((vv - 0.5, uu - 0.5), r, shape=labels.shape)] = _TREE


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
                   radius: float, n_first: int) -> np.ndarray:
    """Event 1 takes one side of the village (a ragged sector), event 2 the rest."""
    phi = rng.uniform(0, 2 * math.pi)
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


# --------------------------------------------------------------------------- the sky
def _plan_cloud(land: _Landscape, rng: np.random.Generator, sun_azimuth: float,
                sun_elevation: float) -> _Cloud:
    """A soft-edged cumulus over compounds that burn on the return, and its shadow.

    The shadow lies ``height / tan(elevation)`` away in the anti-solar azimuth: with a 1-1.8 km
    cloud base and the ~49-degree, south-east sun of 10:38 UTC in central Mali in late January,
    that is 0.9-1.6 km to the north-west, off the grid when the grid is small.
    """
    shape = land.labels.shape
    later = np.flatnonzero(land.events == 2)
    pick = later if later.size else np.arange(len(land.plans))
    first = np.flatnonzero(land.events == 1)
    if first.size and later.size:  # the half of the return's compounds farthest from the attack
        fu, fv = np.mean([[land.plans[i].cu, land.plans[i].cv] for i in first], axis=0)
        dist = np.array([math.hypot(land.plans[i].cu - fu, land.plans[i].cv - fv) for i in later])
        pick = later[dist >= np.median(dist)]
    c = land.plans[int(rng.choice(pick))]
    size = float(np.clip(0.35 * land.radius, 45.0, 160.0))
    cu, cv = c.cu + rng.normal(0, 0.2 * size), c.cv + rng.normal(0, 0.2 * size)
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
    height = float(rng.uniform(1000.0, 1800.0))
    reach = height / math.tan(math.radians(sun_elevation))
    du = int(round(-reach * math.sin(math.radians(sun_azimuth))))
    dv = int(round(reach * math.cos(math.radians(sun_azimuth))))  # v grows southward
    shade = np.ones(shape, dtype=np.float32)
    dst, src = _overlap(shape, dv, du)
    shade[dst] = 1.0 - 0.65 * alpha[src]  # diffuse skylight only: ~0.35 of full illumination
    cloud_frac = _compound_fraction(land, alpha > 0.05)
    shadow_frac = _compound_fraction(land, shade < 0.97)
    to_crs = _crs_transform(land)
    info = {"centre_xy": list(to_crs(shapely.Point(cu, cv)).coords[0]), "size_m": round(2 * size, 1),
            "cloud_base_m": round(height, 1), "shadow_offset_east_north_m": [du, -dv],
            "sun_azimuth": round(sun_azimuth, 2), "sun_elevation": round(sun_elevation, 2),
            "compound_ids_under_cloud": [int(i) for i in np.flatnonzero(cloud_frac >= _OBSCURED)],
            "compound_ids_under_shadow": [int(i) for i in np.flatnonzero(shadow_frac >= _OBSCURED)],
            "shadow_on_grid": bool(np.any(_image(1.0 - shade, (0.0, 0.0), land.grid.shape) > 0.03))}
    return _Cloud(alpha, brightness, shade, info)


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
def _acquire(land: _Landscape, k: int, when: datetime, *, seed: int, satellite: str, haze: str,
             sun: tuple[float, float], state: int, cloud: _Cloud | None) -> SimulatedScene:
    """Image the ground as it was at ``when`` (``state`` events burned) through one satellite."""
    rng = _rng(seed, 100 + k)
    shift = tuple(float(x) for x in rng.uniform(0.3, _MAX_SHIFT_PX, 2) * rng.choice([-1.0, 1.0], 2))
    # Rounded before use, so the metadata holds exactly what was applied.
    gain, offset = np.round(rng.uniform(0.93, 1.07, 4), 5), np.round(rng.uniform(-0.01, 0.01, 4), 5)
    burned = (land.burn_event > 0) & (land.burn_event <= state)
    labels = np.where(burned, land.burn_label, land.labels)
    rho = np.empty((4, *land.grid.shape), dtype=np.float32)
    for b in range(4):
        ground = _LUT[b][labels] * land.texture
        if cloud is not None:
            ground *= cloud.shade
            ground += cloud.alpha * (cloud.brightness - ground)
        rho[b] = _image(ground, shift, land.grid.shape)
    t, path = _HAZE[haze]
    day = 1.0 + 0.004 * _smooth_field(rng, land.grid.shape, 100.0)  # moisture, view angle: tiny
    observed = gain[:, None, None] * (t * rho * day + np.array(path)[:, None, None]) + offset[:, None, None]
    sigma = np.array(_NOISE_SIGMA, dtype=np.float32)[:, None, None]
    observed += rng.standard_normal(observed.shape, dtype=np.float32) * sigma
    dn = np.clip(np.rint(observed * 10000.0), 1, 10000).astype(np.uint16)
    cloud_px = shadow_px = None
    if cloud is not None:
        cloud_px = _image(cloud.alpha, shift, land.grid.shape)
        shadow_px = _image(1.0 - cloud.shade, shift, land.grid.shape)
    udm2 = _udm2(land.grid.shape, haze, cloud_px, shadow_px)
    scene_id = f"{when:%Y%m%d_%H%M%S}_sim_d{k}"
    metadata = {
        "scene_id": scene_id, "acquired": _iso(when), "satellite_id": satellite, "simulated": True,
        "bands": list(BANDS), "reflectance_scale": 10000, "nodata": 0,
        "radiometric_model": "observed = gain * (t * rho + path) + offset + noise; rho carries a "
                             "smooth +-0.4 % day-to-day variation",
        "gain": [float(x) for x in gain], "offset": [float(x) for x in offset],
        "haze": haze, "haze_transmittance": t, "haze_path_reflectance": list(path),
        "noise_sigma": list(_NOISE_SIGMA), "cloud": cloud is not None,
        "cloud_fraction": round(float(udm2[5].mean()), 5), "shadow_fraction": round(float(udm2[2].mean()), 5),
        "sun_azimuth": round(sun[0], 2), "sun_elevation": round(sun[1], 2),
        "true_shift_px": list(shift), "simulator_version": SIMULATOR_VERSION,
    }
    return SimulatedScene(scene_id, when, satellite, _frozen(dn), _frozen(udm2), shift, metadata)


def _image(ground: np.ndarray, shift: tuple[float, float], shape: tuple[int, int]) -> np.ndarray:
    """Image a 1 m ground map onto the 3 m grid, content displaced by ``shift`` pixels.

    Each pixel averages 3x3 sub-samples (the detector's area integration) taken at ground
    position ``nominal - shift``, read by linear interpolation between 1 m cells (the same
    numbers as ``scipy.ndimage.map_coordinates(order=1)``, done as two weighted slices because
    the displacement is the same everywhere), then a Gaussian PSF of 0.5 px.
    """
    h, w = shape
    n_r, n_c = _SUB * (h + 2 * _PAD_PX), _SUB * (w + 2 * _PAD_PX)
    out = ground
    for axis, d, n in ((0, shift[0], n_r), (1, shift[1], n_c)):
        s = -_SUB * d  # ground metres to read from, relative to the nominal position
        a = math.floor(s)
        f = np.float32(s - a)
        start = _MARGIN_M - _SUB * _PAD_PX + a
        lo = out[start:start + n] if axis == 0 else out[:, start:start + n]
        hi = out[start + 1:start + 1 + n] if axis == 0 else out[:, start + 1:start + 1 + n]
        out = lo * (1 - f) + hi * f
    pix = out.reshape(h + 2 * _PAD_PX, _SUB, w + 2 * _PAD_PX, _SUB).mean(axis=(1, 3))
    pix = ndimage.gaussian_filter(pix, _PSF_SIGMA_PX)
    return pix[_PAD_PX:-_PAD_PX, _PAD_PX:-_PAD_PX]


def _udm2(shape: tuple[int, int], haze: str, cloud_px: np.ndarray | None,
          shadow_px: np.ndarray | None) -> np.ndarray:
    """Planet UDM2 bands; flags are dilated by 2 px so they also cover the soft cloud edges."""
    udm = np.zeros((8, *shape), dtype=np.uint8)
    cloud = np.zeros(shape, dtype=bool)
    shadow = np.zeros(shape, dtype=bool)
    square = np.ones((3, 3), dtype=bool)
    if cloud_px is not None:
        cloud = ndimage.binary_dilation(cloud_px > 0.02, square, iterations=2)
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
    """Index of the first scene on which burns cover at least half of each 3 m pixel."""
    grid = land.grid
    truth = np.full(grid.shape, -1, dtype=np.int16)
    covered = np.zeros(grid.shape)
    for k, idx in enumerate(first_index):
        for fp, ev in zip(land.footprints, land.events):
            if ev == k + 1:
                _add_cover(covered, fp)
        if idx is not None:
            truth[(covered >= 0.5) & (truth < 0)] = idx
    return truth


def _add_cover(covered: np.ndarray, poly: Polygon) -> None:
    """Add the exact share of each 3 m pixel that ``poly`` (ground metres) covers."""
    h, w = covered.shape
    minu, minv, maxu, maxv = poly.bounds
    c0, c1 = max(0, int((minu - _MARGIN_M) // _SUB)), min(w, int(math.ceil((maxu - _MARGIN_M) / _SUB)))
    r0, r1 = max(0, int((minv - _MARGIN_M) // _SUB)), min(h, int(math.ceil((maxv - _MARGIN_M) / _SUB)))
    rr, cc = np.mgrid[r0:r1, c0:c1]
    u, v = _MARGIN_M + _SUB * cc, _MARGIN_M + _SUB * rr
    boxes = shapely.box(u, v, u + _SUB, v + _SUB)
    covered[r0:r1, c0:c1] += shapely.area(shapely.intersection(boxes, poly)) / _SUB ** 2


def _truth_tables(land: _Landscape, scenes: tuple[SimulatedScene, ...], plan: _ScenarioPlan,
                  first_index: list[int | None],
                  cloud: _Cloud) -> tuple[geopandas.GeoDataFrame, geopandas.GeoDataFrame]:
    """The compounds table and the burned-footprints table, in the grid's CRS."""
    to_crs = _crs_transform(land)
    hidden = np.maximum(_compound_fraction(land, cloud.alpha > 0.05),
                        _compound_fraction(land, cloud.shade < 0.97))
    rows, burns = [], []
    for cid, (p, ev, fp) in enumerate(zip(land.plans, land.events, land.footprints)):
        idx = first_index[ev - 1] if ev else None
        seen = _iso(scenes[idx].acquired) if idx is not None else ""
        obscured = plan.cloud_scene if hidden[cid] >= _OBSCURED else -1
        rows.append({"compound_id": cid, "event": plan.events[ev - 1][0] if ev else "", "first_visible": seen,
                     "obscured_scene": obscured, "obscured_fraction": round(float(hidden[cid]), 3),
                     "geometry": to_crs(Polygon(p.corners()))})
        if fp is not None and idx is not None:
            clear = [j for j in range(idx) if j != obscured]
            burns.append({"compound_id": cid, "event": plan.events[ev - 1][0], "first_visible": seen,
                          "last_clear_before": _iso(scenes[clear[-1]].acquired) if clear else "",
                          "area_m2": round(fp.area, 1), "geometry": to_crs(fp)})
    crs = land.grid.crs
    columns = ["compound_id", "event", "first_visible", "last_clear_before", "area_m2", "geometry"]
    burns_gdf = geopandas.GeoDataFrame(burns or None, columns=columns, geometry="geometry", crs=crs)
    return geopandas.GeoDataFrame(rows, geometry="geometry", crs=crs), burns_gdf


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
    x0, y0 = land.grid.transform.c - _MARGIN_M, land.grid.transform.f + _MARGIN_M
    return lambda geom: affinity.affine_transform(geom, [1.0, 0.0, 0.0, -1.0, x0, y0])


def _iso(t: datetime) -> str:
    return t.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
