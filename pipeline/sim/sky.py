"""The simulated sky: where the sun stands, harmattan haze, a cumulus and its shadow, tree shadows.

What lies between the sun, the ground and the sensor on each date: the sun's azimuth and
elevation [1] (so where tree and cloud shadows fall), how much dust haze dims and brightens
each band, the cloud's opacity, brightness and shadow, and the darkening of wet soil [2].
:func:`ground_band` lays them over one band of the ground map as the sensor's top of canopy sees it.

References
----------
.. [1] NOAA Global Monitoring Laboratory, "General solar position calculations" (low-precision
   solar declination, equation of time and hour-angle formulas; about 0.5 degree).
.. [2] Lobell, D. B. & Asner, G. P. (2002). Moisture effects on soil reflectance. Soil Science
   Society of America Journal 66(3), 722-727. (wet soil darkens in every band)
.. [3] Iqbal, M. (1983). An Introduction to Solar Radiation. Academic Press, ch. 6-7. (the diffuse share of
   clear-sky irradiance falls with wavelength; aerosol makes the fall shallower)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyproj
import shapely
from skimage import draw

from pipeline.grid import Grid
from pipeline.stages.sky import sun_angles
from pipeline.sim.ground import crs_transform, Landscape, land_image, stream_rng, smooth_field
from pipeline.sim.imaging import Sensor
from pipeline.sim.materials import CROWNS, SOILS, WALL
from pipeline.sim.scenarios import ScenarioPlan

# Harmattan dust: observed = t * rho + path. Path is largest in blue (small-particle scattering).
_HAZE = {"none": (1.0, (0.0, 0.0, 0.0, 0.0)),
         "light": (0.95, (0.025, 0.02, 0.015, 0.0075)),
         "moderate": (0.88, (0.05, 0.04, 0.03, 0.015)),
         "dense": (0.80, (0.08, 0.065, 0.05, 0.025))}
# Coarse dust scatters nearly as much in the SWIR as in the NIR; the share is our choice.
_SWIR_PATH_SHARE = (0.6, 0.4)
OBSCURED = 0.25  # share of a compound under cloud or shadow that makes a date useless for it
SKY_LIGHT = 0.35  # diffuse share of the illumination: what a cloud or tree shadow still gets
SKY_LIGHT_BLUISH = {"blue": 0.50, "green": 0.41, "red": 0.36, "nir": 0.31, "swir16": 0.27, "swir22": 0.25}
"""Diffuse share of each band's illumination under a dusty dry-season sky: scattering falls with wavelength
(Rayleigh as the inverse fourth power, dust far less steeply), so a shadow keeps more of the blue than of the NIR
[3]. Green and red keep about :data:`SKY_LIGHT`; the NIR loses most, as it does under char."""
_CLOUD_SWIR = {"swir16": 0.8, "swir22": 0.7}  # water droplets absorb in the SWIR: darker tops


@dataclass
class CloudPlan:
    alpha: np.ndarray  # float32 opacity on the ground map
    brightness: np.ndarray  # float32 cloud-top reflectance
    shade: np.ndarray  # float32 illumination factor, 0.35 in the core of the shadow
    shadow_alpha: np.ndarray  # float32 share of the direct sun the cloud blocks on the ground
    info: dict


# --------------------------------------------------------------------------- the sun
def sun_positions(grid: Grid, plan: ScenarioPlan) -> list[tuple[float, float]]:
    """Sun azimuth and elevation at the grid's centre for every acquisition."""
    lon, lat = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(
        (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2)
    return [sun_angles(lon, lat, a.time) for a in plan.acquisitions]


# --------------------------------------------------------------------------- the cloud
def plan_cloud(land: Landscape, rng: np.random.Generator, sun_azimuth: float, sun_elevation: float,
                geometry: str = "far_return") -> CloudPlan:
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
    alpha, brightness = cumulus_field(rng, shape, cu, cv, size)
    if geometry == "far_return":
        height = float(rng.uniform(1000.0, 1800.0))
    else:
        height = round(reach * math.tan(math.radians(sun_elevation)), 1)
    reach = height / math.tan(math.radians(sun_elevation))
    du = int(round(-reach * math.sin(math.radians(sun_azimuth))))
    dv = int(round(reach * math.cos(math.radians(sun_azimuth))))  # v grows southward
    shade = np.ones(shape, dtype=np.float32)
    shadow_alpha = np.zeros(shape, dtype=np.float32)
    dst, src = overlap(shape, dv, du)
    shade[dst] = 1.0 - 0.65 * alpha[src]  # diffuse skylight only: ~0.35 of full illumination
    shadow_alpha[dst] = alpha[src]
    cloud_frac = compound_fraction(land, alpha > 0.05)
    shadow_frac = compound_fraction(land, shade < 0.97)
    to_crs = crs_transform(land)
    info = {"centre_xy": list(to_crs(shapely.Point(cu, cv)).coords[0]), "size_m": round(2 * size, 1),
            "cloud_base_m": round(height, 1), "shadow_offset_east_north_m": [du, -dv],
            "sun_azimuth": round(sun_azimuth, 2), "sun_elevation": round(sun_elevation, 2),
            "compound_ids_under_cloud": [int(i) for i in np.flatnonzero(cloud_frac >= OBSCURED)],
            "compound_ids_under_shadow": [int(i) for i in np.flatnonzero(shadow_frac >= OBSCURED)],
            "shadow_on_grid": bool(np.any(land_image(land, 1.0 - shade, (0.0, 0.0)) > 0.03))}
    return CloudPlan(alpha, brightness, shade, shadow_alpha, info)


def _over_the_return(land: Landscape, rng: np.random.Generator, size: float) -> tuple[float, float]:
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


def _across_the_village(land: Landscape, size: float, sun_azimuth: float) -> tuple[float, float, float]:
    """Cloud centre a third of a radius sunward of the village centre, and the shadow's reach.

    The shadow's centre lands 0.8 radius on the anti-sun side, so the shadow covers the outer
    compounds there and spills onto the fields beyond; the reach (at least 2.4 cloud sizes)
    keeps cloud and shadow apart.
    """
    su, sv = math.sin(math.radians(sun_azimuth)), -math.cos(math.radians(sun_azimuth))  # toward the sun
    reach = max(1.15 * land.radius, 2.4 * size)
    cu, cv = land.centre[0] + 0.35 * land.radius * su, land.centre[1] + 0.35 * land.radius * sv
    return cu, cv, reach


def cumulus_field(rng: np.random.Generator, shape: tuple[int, int], cu: float, cv: float,
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
    body *= 1 + 0.25 * smooth_field(rng, body.shape, 20.0)
    a = np.clip((body - 0.25) / 0.2, 0, 1)  # a ~10-20 m soft rim around an opaque core
    alpha = np.zeros(shape, dtype=np.float32)
    alpha[v0:v1, u0:u1] = a * a * (3 - 2 * a)
    brightness = np.zeros(shape, dtype=np.float32)
    brightness[v0:v1, u0:u1] = 0.45 + 0.15 * np.clip(body, 0, 1)
    return alpha, brightness


def overlap(shape: tuple[int, int], dv: int, du: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices so that ``dst`` is ``src`` moved by (dv, du) cells, clipped to ``shape``."""
    h, w = shape
    # max(0, ...) on the stops too: a shift longer than the map must give empty slices, not
    # negative stops that Python would count from the end.
    dst = (slice(max(0, dv), max(0, min(h, h + dv))), slice(max(0, du), max(0, min(w, w + du))))
    src = (slice(max(0, -dv), max(0, min(h, h - dv))), slice(max(0, -du), max(0, min(w, w - du))))
    return dst, src


def compound_fraction(land: Landscape, mask: np.ndarray) -> np.ndarray:
    """Share of each compound's cells where ``mask`` is true."""
    inside = land.compound_map >= 0
    n = len(land.plans)
    total = np.bincount(land.compound_map[inside], minlength=n)
    hit = np.bincount(land.compound_map[inside & mask], minlength=n)
    return hit / np.maximum(total, 1)


# --------------------------------------------------------------------------- light on the ground
def tree_light(land: Landscape, sun: tuple[float, float], leaf_loss: float) -> np.ndarray:
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
    light[np.isin(land.labels, CROWNS)] = 1.0
    return light


WALL_HEIGHT_M, HUT_HEIGHT_M = 2.0, 3.0  # banco walls; a thatched hut's eaves and cone, as one block


def building_light(land: Landscape, sun: tuple[float, float]) -> np.ndarray:
    """Share of the direct sun that reaches each 1 m cell past walls and huts (float32).

    A cell is in shadow when a wall (2 m) or hut (3 m) stands between it and the sun, higher
    than the sun's ray: the height map is marched toward the sun 1 m at a time and compared
    with ``distance * tan(elevation)``. So at 50 degrees a wall's shadow is 1.7 m long, at
    25 degrees 4.3 m. The tops of walls and roofs stay lit; a shadow blocks all the direct beam.
    """
    height = np.where(land.labels == WALL, np.float32(WALL_HEIGHT_M), np.float32(0.0))
    for u, v, r in land.roofs[:, 1:]:
        height[draw.disk((v - 0.5, u - 0.5), r, shape=height.shape)] = HUT_HEIGHT_M
    az, rise = math.radians(sun[0]), math.tan(math.radians(sun[1]))
    toward_u, toward_v = math.sin(az), -math.cos(az)  # v grows southward
    shadow = np.zeros(height.shape, dtype=bool)
    for d in range(1, int(math.ceil(HUT_HEIGHT_M / rise)) + 1):
        # the obstacle d metres toward the sun, moved onto the cell it may shade
        dst, src = overlap(height.shape, -int(round(d * toward_v)), -int(round(d * toward_u)))
        shadow[dst] |= height[src] > d * rise
    shadow &= height == 0
    return np.where(shadow, np.float32(0.0), np.float32(1.0))


def haze_model(haze: str, sensor: Sensor) -> tuple[float, tuple[float, ...]]:
    """Dust transmittance and per-band path reflectance for the sensor's bands."""
    t, path = _HAZE[haze]
    if len(sensor.bands) > len(path):
        path = path + tuple(path[3] * s for s in _SWIR_PATH_SHARE)
    return t, path


def observed_dn(rho: np.ndarray, haze: str, sensor: Sensor, gain: np.ndarray, offset: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """``(band, y, x)`` ground reflectance as the sensor records it: through the dust, with a
    tiny smooth day-to-day variation, the scene's gain and offset and the sensor's noise, as
    uint16 reflectance x 10000 (0 is kept for nodata)."""
    t, path = haze_model(haze, sensor)
    day = 1.0 + 0.004 * smooth_field(rng, rho.shape[1:], 100.0)  # moisture, view angle: tiny
    observed = gain[:, None, None] * (t * rho * day + np.array(path)[:, None, None]) + offset[:, None, None]
    sigma = np.array(sensor.noise, dtype=np.float32)[:, None, None]
    observed += rng.standard_normal(observed.shape, dtype=np.float32) * sigma
    return np.clip(np.rint(observed * 10000.0), 1, 10000).astype(np.uint16)


def ground_factor(land: Landscape, plan: ScenarioPlan, k: int, labels: np.ndarray, sun: tuple[float, float],
                   cloud: CloudPlan | None, seed: int) -> np.ndarray | dict[str, np.ndarray] | None:
    """Illumination (tree and cloud shadows) times moisture darkening on the ground map.

    None when nothing dims the ground. The demo keeps version 1's rendering: no tree shadows,
    the cloud shadow alone. Elsewhere shadows combine as blocked direct sun (the diffuse sky
    light still reaches a shadow), and wet soils darken in every band [2].
    """
    acq = plan.acquisitions[k]
    if not plan.tree_shadows and not acq.soil_wetness and plan.sky_light == "neutral":
        return None if cloud is None else cloud.shade
    direct = tree_light(land, sun, acq.leaf_loss) if plan.tree_shadows else np.ones(labels.shape, np.float32)
    if plan.building_shadows:
        direct *= building_light(land, sun)
    if cloud is not None:
        direct *= 1 - cloud.shadow_alpha
    wet_factor = None
    if acq.soil_wetness:
        patchy = np.clip(smooth_field(stream_rng(seed, 300 + k), labels.shape, 200.0), -1, 1)
        wet = acq.soil_wetness * (1 + 0.1 * patchy)  # rain fell unevenly: +-10 % of the darkening
        wet_factor = np.where(np.isin(labels, SOILS), 1 - wet, np.float32(1))
    if plan.sky_light == "bluish":
        return {band: _lit(direct, sky, wet_factor) for band, sky in SKY_LIGHT_BLUISH.items()}
    return _lit(direct, SKY_LIGHT, wet_factor)


def _lit(direct: np.ndarray, sky: float, wet_factor: np.ndarray | None) -> np.ndarray:
    """Illumination where ``direct`` of the sun gets through and the sky lights ``sky`` of it, times the wetting."""
    factor = 1 - (1 - sky) * (1 - direct)
    if wet_factor is not None:
        factor *= wet_factor
    return factor


def ground_band(lut_band: np.ndarray, labels: np.ndarray, land: Landscape, factor: np.ndarray | dict[str, np.ndarray] | None,
            cloud: CloudPlan | None, band: str) -> np.ndarray:
    """One band of the 1 m ground as the sensor's top of canopy sees it, cloud included."""
    ground = lut_band[labels] * land.texture
    if isinstance(factor, dict):  # a bluish sky lights each band's shadows by its own share
        factor = factor[band]
    if factor is not None:
        ground *= factor
    if cloud is not None:
        top = cloud.brightness * _CLOUD_SWIR[band] if band in _CLOUD_SWIR else cloud.brightness
        ground += cloud.alpha * (top - ground)
    return ground
