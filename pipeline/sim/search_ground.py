"""Where the search box's sites lie, and how its ground and scenes are drawn.

The layout of the villages and fires, the single 1 m ground painted and burned with the village
engine's painters, the cumulus on a window around its village, each acquisition imaged from that
ground, and the first scene on which each pixel shows its burn. It is apart from
:mod:`pipeline.sim.search_box` so that module keeps one job (the public API, truth tables, metadata
and files) and reads as the order of the work; why one ground serves the whole box is told there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import shapely
from scipy import ndimage
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon
from skimage import draw

from pipeline.errors import ParameterError
from pipeline.grid import Grid
from pipeline.sim.ground import (burn_field, ground_cells, crs_transform, compound_outline, land_image, Landscape, paint_burn,
                     paint_compound, Plan, plan_compounds, stream_rng, smooth_field, stamp)
from pipeline.sim.imaging import image_ground, sensor_radiometry, SENSORS, make_udm2
from pipeline.sim.materials import CHAR, DRY_VEG, LANE, LATERITE, LUT, OLD_SCAR, SAND, TRACK, TREE
from pipeline.sim.scenarios import SCENARIOS
from pipeline.sim.simulate import SimulatedScene, scene_metadata
from pipeline.sim.sky import SKY_LIGHT, cumulus_field, observed_dn, overlap, tree_light

#: Bumped whenever the same seed and grid would give different pixels or truth. Defined here, not
#: in :mod:`pipeline.sim.search_box` (which exports it), because every scene's metadata carries it.
SEARCH_BOX_VERSION = 1

_UTC = timezone.utc
ACQUISITIONS = SCENARIOS["demo"].acquisitions  # the demo's five dates, 10:38 UTC
_ATTACK, _RETURN = SCENARIOS["demo"].events
HAZE = ("none", "none", "none", "none", "moderate")  # harmattan dust on 1 February only
CLOUD_SCENE = 3  # 31 January, the day before the return
_SENSOR = SENSORS["planetscope"]
SUB = 3  # 1 m ground cells per 3 m pixel side
_MARGIN = 48  # ground metres beyond the grid: the largest shift (12 m), PSF padding and slack
_FINE_SHIFT_PX = (0.3, 4.0)  # each scene's misregistration per axis, as in the demo
_EDGE_M = 160.0  # sites keep at least this far from the box edge (150 m asked, 10 m of slack)
_FULL_SIDE_M = 6000.0  # the box side the site sizes below are meant for; smaller boxes scale down

# (kind, first visible scene, event) of the five villages, in site-id order.
_VILLAGES = (("village_burned", 2, _ATTACK), ("village_burned", 2, _ATTACK), ("village_burned", 4, _RETURN),
             ("village_unburned", -1, None), ("village_unburned", -1, None))
# (first visible scene, area range in ha on a 6 km box) of the bush fires; the first burns near
# village-1 on the night it is attacked, the hardest fire to tell from the village.
_BUSH_FIRES = ((2, (8.0, 14.0)), (4, (45.0, 80.0)), (1, (20.0, 40.0)), (3, (5.0, 12.0)))
_FIELD_FIRES = (1, 2, 3, 4)  # first visible scene of each stubble burn (0.5-3 ha)
# Fires are lit in the afternoon: the day before the scene that first shows them.
_FIRE_TIMES = {1: datetime(2024, 1, 26, 15, 0, tzinfo=_UTC), 2: datetime(2024, 1, 27, 14, 30, tzinfo=_UTC),
               3: datetime(2024, 1, 30, 15, 0, tzinfo=_UTC), 4: datetime(2024, 1, 31, 16, 0, tzinfo=_UTC)}


@dataclass
class SearchSite:
    """A site while it is laid out, in ground metres (u east, v south of the ground's corner)."""

    site_id: str
    kind: str
    visible: int
    event: str
    when: datetime | None
    outline: Polygon
    plans: list[Plan] = field(default_factory=list)
    burns: list[Polygon | None] = field(default_factory=list)  # per compound, or the fire's footprint
    code: int = 0  # its value in the ground's burn_event map (burns numbered in date order)


# --------------------------------------------------------------------------- layout
def layout_sites(grid: Grid, seed: int) -> tuple[list[SearchSite], Polygon]:
    """Place the villages and fires well inside the box, never overlapping; and a static old scar.

    Sites are discs while they are placed (a village with room for its fields, a fire's farthest
    reach); the bush fire near village-1 and the field fires are set against the real village
    outline instead. A crowded draw is retried with the same generator, so it stays deterministic.
    """
    rng = stream_rng(seed, 7001)
    w_m, h_m = grid.width * SUB, grid.height * SUB
    scale = min(1.0, min(w_m, h_m) / _FULL_SIDE_M)
    inner = (_MARGIN + _EDGE_M, _MARGIN + _EDGE_M, _MARGIN + w_m - _EDGE_M, _MARGIN + h_m - _EDGE_M)
    most = 25 + int(round(65 * scale))
    # Spread from the smallest hamlet to the largest village, in random order.
    spread = np.linspace(25, most, len(_VILLAGES)) + rng.uniform(-4, 4, len(_VILLAGES))
    counts = np.clip(np.round(spread), 25, most).astype(int)[rng.permutation(len(_VILLAGES))]
    villages = [plan_compounds(rng, (0.0, 0.0), int(n), 1e4) for n in counts]
    for _ in range(50):
        laid_out = _try_layout(rng, villages, inner, scale)
        if laid_out is not None:
            return laid_out
    raise ParameterError(f"could not lay the villages and fires out in a {w_m:.0f} x {h_m:.0f} m box; "
                         "use a larger size_m or another seed")


def _try_layout(rng: np.random.Generator, villages: list[tuple[list[Plan], float]],
                inner: tuple[float, float, float, float], scale: float) -> tuple[list[SearchSite], Polygon] | None:
    """One attempt at the layout, or None when a site found no room."""
    taken: list[tuple[float, float, float, float]] = []  # u, v, radius, keep-out of every placed disc
    village_gap = 150.0 + 250.0 * scale  # room for each village's fields and a gap of bush
    sites = []
    for k, ((plans, radius), (kind, visible, event)) in enumerate(zip(villages, _VILLAGES), start=1):
        spot = _free_spot(rng, radius + 5.0, village_gap, inner, taken)
        if spot is None:
            return None
        taken.append((*spot, radius + 5.0, village_gap))
        moved = [p._replace(cu=p.cu + spot[0], cv=p.cv + spot[1]) for p in plans]
        sites.append(SearchSite(f"village-{k}", kind, visible, event.name if event else "",
                           event.time if event else None, _settlement(moved), moved))
    box = shapely.box(*inner)
    for k, (visible, (low, high)) in enumerate(_BUSH_FIRES, start=1):
        area = 1e4 * max(5.0, rng.uniform(low, high) * scale ** 2)
        scar = _scar_shape(rng, area)
        reach = _reach(scar)
        if k == 1:  # beside village-1, the day it is attacked: a scar the search must not merge
            spot = _spot_near(rng, scar, reach, sites[0], box, taken[1:])
        else:
            spot = _free_spot(rng, reach, 80.0, inner, taken)
        if spot is None:
            return None
        taken.append((*spot, reach, 80.0))
        sites.append(SearchSite(f"bush-{k}", "bush_fire", visible, f"bush-fire-{_FIRE_TIMES[visible]:%Y-%m-%d}",
                           _FIRE_TIMES[visible], affinity.translate(scar, *spot)))
    order = rng.permutation(len(_VILLAGES))
    for k, visible in enumerate(_FIELD_FIRES, start=1):
        village = sites[int(order[k - 1])]
        spot, parcel = _field_near(rng, village, box, [t for i, t in enumerate(taken) if i != order[k - 1]])
        if spot is None:
            return None
        taken.append((*spot, _reach(affinity.translate(parcel, -spot[0], -spot[1])), 40.0))
        sites.append(SearchSite(f"field-{k}", "field_fire", visible, f"field-burn-{_FIRE_TIMES[visible]:%Y-%m-%d}",
                           _FIRE_TIMES[visible], parcel))
    old = _scar_shape(rng, 1e4 * max(4.0, rng.uniform(10.0, 30.0) * scale ** 2))
    spot = _free_spot(rng, _reach(old), 100.0, inner, taken)
    if spot is None:
        return None
    for code, s in enumerate(sorted((s for s in sites if s.visible >= 0), key=lambda s: s.visible), start=1):
        s.code = code  # numbered in date order, as the village engine numbers its events
    return sites, affinity.translate(old, *spot)


def _reach(shape: Polygon) -> float:
    """Farthest vertex from (0, 0): the radius of the disc that holds a shape centred there."""
    return float(np.hypot(*shapely.get_coordinates(shape).T).max())


def _free_spot(rng: np.random.Generator, radius: float, gap: float, inner: tuple[float, float, float, float],
               taken: list[tuple[float, float, float, float]], tries: int = 400) -> tuple[float, float] | None:
    """A centre whose disc lies inside ``inner`` and keeps every placed disc at its gap, or None."""
    u0, v0, u1, v1 = inner
    if u1 - u0 <= 2 * radius or v1 - v0 <= 2 * radius:
        return None
    u, v = rng.uniform(u0 + radius, u1 - radius, tries), rng.uniform(v0 + radius, v1 - radius, tries)
    ok = np.ones(tries, dtype=bool)
    for tu, tv, tr, tg in taken:
        ok &= np.hypot(u - tu, v - tv) >= radius + tr + max(gap, tg)
    first = np.flatnonzero(ok)
    return (float(u[first[0]]), float(v[first[0]])) if first.size else None


def _spot_near(rng: np.random.Generator, scar: Polygon, reach: float, village: SearchSite, box: Polygon,
               others: list[tuple[float, float, float, float]]) -> tuple[float, float] | None:
    """A scar centre 500-800 m from the village's centre, its edge at least 150 m from the village."""
    cu, cv = village.outline.centroid.coords[0]
    for _ in range(200):
        phi, d = rng.uniform(0, 2 * math.pi), rng.uniform(500.0, 800.0)
        u, v = cu + d * math.cos(phi), cv + d * math.sin(phi)
        placed = affinity.translate(scar, u, v)
        if (box.contains(placed) and placed.distance(village.outline) >= 150.0
                and all(math.hypot(u - tu, v - tv) >= reach + tr + max(80.0, tg) for tu, tv, tr, tg in others)):
            return u, v
    return None


def _field_near(rng: np.random.Generator, village: SearchSite, box: Polygon,
                others: list[tuple[float, float, float, float]]) -> tuple[tuple[float, float] | None, Polygon]:
    """A harvested millet parcel of 0.5-3 ha among the village's fields, 30-250 m beyond its edge."""
    area, aspect = rng.uniform(0.5, 3.0) * 1e4, rng.uniform(1.0, 2.2)
    hx, hy = math.sqrt(area * aspect) / 2, math.sqrt(area / aspect) / 2
    angle = village.plans[0].angle + rng.uniform(-0.3, 0.3)  # fields follow the village's grain, loosely
    reach = math.hypot(hx, hy)
    cu, cv = village.outline.centroid.coords[0]
    edge = math.sqrt(village.outline.area / math.pi)
    parcel = Polygon(Plan(0.0, 0.0, hx, hy, angle).corners())
    for _ in range(200):
        phi, d = rng.uniform(0, 2 * math.pi), edge + rng.uniform(30.0, 250.0) + reach
        u, v = cu + d * math.cos(phi), cv + d * math.sin(phi)
        placed = affinity.translate(parcel, u, v)
        if (box.contains(placed) and placed.distance(village.outline) >= 30.0
                and all(math.hypot(u - tu, v - tv) >= reach + tr + max(40.0, tg) for tu, tv, tr, tg in others)):
            return (u, v), placed
    return None, parcel


def _settlement(plans: list[Plan]) -> Polygon:
    """The built-up area around a village's compounds, drawn as the village engine draws it."""
    outlines = [Polygon(p.corners()) for p in plans]
    merged = shapely.union_all([o.buffer(9.0, join_style="mitre") for o in outlines]).buffer(-5.0)
    return Polygon(merged.exterior) if merged.geom_type == "Polygon" else merged.convex_hull


def _scar_shape(rng: np.random.Generator, area_m2: float) -> Polygon:
    """A wind-driven fire scar of ``area_m2`` centred on (0, 0), without holes.

    A head lobe stretched downwind, with one or two smaller lobes where the fire jumped or the
    wind veered, each with ragged fingers (a few harmonics of the radius, largest at low order).
    """
    wind = rng.uniform(0, 2 * math.pi)
    lobes = [_lobe(rng, 1.0, wind, rng.uniform(1.3, 2.0), (0.0, 0.0))]
    for _ in range(int(rng.integers(1, 3))):
        heading, along = wind + rng.uniform(-0.9, 0.9), rng.uniform(0.6, 1.1)
        lobes.append(_lobe(rng, rng.uniform(0.4, 0.7), wind + rng.uniform(-0.5, 0.5), rng.uniform(1.1, 1.6),
                           (along * math.cos(heading), along * math.sin(heading))))
    merged = shapely.union_all(lobes)
    if merged.geom_type != "Polygon":  # a lobe that missed the head is dropped
        merged = max(merged.geoms, key=lambda g: g.area)
    scar = Polygon(merged.exterior)
    scar = affinity.scale(scar, *(2 * [math.sqrt(area_m2 / scar.area)]), origin=(0, 0))
    c = scar.centroid
    return affinity.translate(scar, -c.x, -c.y)


def _lobe(rng: np.random.Generator, size: float, wind: float, stretch: float,
          centre: tuple[float, float]) -> Polygon:
    """An egg elongated along ``wind`` with ragged edges; star-shaped, so always a valid polygon."""
    th = np.linspace(0, 2 * math.pi, 96, endpoint=False)
    along, across = np.cos(th - wind), np.sin(th - wind)
    r = size / np.sqrt((along / stretch) ** 2 + across ** 2)
    r *= 1.0 + 0.2 * along  # the head runs farther than the flanks and the back
    ks = np.arange(2, 20)
    amp = 0.2 / ks ** 0.75 * rng.uniform(0.3, 1.0, ks.size)
    r *= np.exp((amp[:, None] * np.sin(ks[:, None] * th + rng.uniform(0, 2 * math.pi, ks.size)[:, None])).sum(0))
    return Polygon(np.column_stack([centre[0] + r * np.cos(th), centre[1] + r * np.sin(th)]))


# --------------------------------------------------------------------------- the ground
def paint_ground(grid: Grid, sites: list[SearchSite], static_scar: Polygon, seed: int) -> Landscape:
    """Paint the box's 1 m ground and burn it as the sites say; returns one landscape for the box.

    Painting order is what lies on top: soils and scattered parcels, savanna (with the bush
    fires' ground), the villages' fields, the burned fields, the old scar, settlements, tracks,
    trees and shrubs, compounds; then the burns.
    """
    shape = (SUB * grid.height + 2 * _MARGIN, SUB * grid.width + 2 * _MARGIN)
    labels = np.full(shape, SAND, dtype=np.uint8)
    rng = stream_rng(seed, 7002)
    labels[smooth_field(rng, shape, 120.0) > 1.0] = LATERITE
    labels[(smooth_field(rng, shape, 50.0) > 0.8) & (rng.random(shape, dtype=np.float32) < 0.55)] = DRY_VEG
    villages = [s for s in sites if s.kind.startswith("village")]
    fires = [s for s in sites if not s.kind.startswith("village")]
    for _ in range(int(0.12 * shape[0] * shape[1] / 7000)):  # fields scattered over the box
        _paint_parcel(labels, rng, rng.uniform(0, shape[1]), rng.uniform(0, shape[0]))
    savanna = _paint_savanna(labels, stream_rng(seed, 7003), [s.outline for s in fires if s.kind == "bush_fire"])
    blocked = shapely.union_all([s.outline.buffer(60.0) for s in fires] + [static_scar.buffer(20.0)])
    for v in villages:  # the villages' own millet fields, harvested to stubble
        _village_fields(labels, rng, v, blocked)
    for s in fires:
        if s.kind == "field_fire":  # dense stubble, so the stubble burn reads as one
            rr, cc = ground_cells(np.asarray(s.outline.exterior.coords), shape)
            labels[rr, cc] = np.where(rng.random(rr.size) < rng.uniform(0.65, 0.9), DRY_VEG, SAND)
    rr, cc = ground_cells(np.asarray(static_scar.exterior.coords), shape)
    labels[rr, cc] = np.where(rng.random(rr.size) < 0.75, OLD_SCAR, SAND)
    for v in villages:
        labels[ground_cells(np.asarray(v.outline.exterior.coords), shape)] = LANE
    _paint_tracks(labels, stream_rng(seed, 7004), [v.outline.centroid.coords[0] for v in villages])
    trees = _paint_trees(labels, stream_rng(seed, 7005), villages, savanna)
    del savanna
    compound_map = np.full(shape, -1, dtype=np.int16)
    crng = stream_rng(seed, 7006)
    plans = [p for v in villages for p in v.plans]
    roofs = [(cid, u, v, r) for cid, p in enumerate(plans)
             for u, v, r in paint_compound(labels, compound_map, crng, p, cid)]
    del compound_map  # 74 MB on a 6 km box; the compound table is drawn from the compounds' polygons
    trng = stream_rng(seed, 7008)
    texture = 1.0 + 0.03 * smooth_field(trng, shape, 300.0) + 0.015 * smooth_field(trng, shape, 40.0)
    texture += 0.02 * trng.standard_normal(shape, dtype=np.float32)  # sand grain, litter, stones
    np.clip(texture, 0.85, 1.15, out=texture)
    # One landscape for the whole box, so the engine's burn, shadow and imaging helpers apply
    # unchanged; its single-village fields (settlement, centre, radius) describe the box as a whole.
    land = Landscape(
        grid=grid, sub=SUB, margin=_MARGIN, pad=_SENSOR.pad_px, labels=labels,
        burn_event=np.zeros(shape, dtype=np.uint8), burn_label=np.full(shape, CHAR, dtype=np.uint8),
        compound_map=np.zeros((0, 0), dtype=np.int16), texture=texture, plans=plans,
        events=np.zeros(len(plans), dtype=np.uint8), footprints=[None] * len(plans),
        roofs=np.asarray(roofs, dtype=np.float64).reshape(-1, 4),
        settlement=MultiPolygon([v.outline for v in villages]), centre=(shape[1] / 2, shape[0] / 2),
        radius=min(shape) / 2 - _MARGIN, old_scar=static_scar, trees=trees,
        deciduous=np.zeros(len(trees), dtype=bool), outside=[], harvest=None, harvest_field=None)
    _burn(land, sites, stream_rng(seed, 7007))
    return land


def _paint_parcel(labels: np.ndarray, rng: np.random.Generator, u: float, v: float,
                  angle: float | None = None) -> Polygon:
    """A harvested millet parcel: stubble over 45-85 % of bare, ploughed sand."""
    hx, hy = rng.uniform(20, 65), rng.uniform(15, 50)
    corners = Plan(u, v, hx, hy, rng.uniform(0, math.pi) if angle is None else angle).corners()
    rr, cc = ground_cells(corners, labels.shape)
    labels[rr, cc] = np.where(rng.random(rr.size) < rng.uniform(0.45, 0.85), DRY_VEG, SAND)
    return Polygon(corners)


def _paint_savanna(labels: np.ndarray, rng: np.random.Generator, scars: list[Polygon]) -> np.ndarray:
    """Patches of dense dry grass (the bush), wherever the noise says and around every bush fire.

    A bush fire needs fuel: its scar lies in a bush patch of its own irregular shape, so the
    unburned bush beside the scar is the same grass the fire ran through. Returns the mask.
    """
    savanna = smooth_field(rng, labels.shape, 400.0) > 1.1
    for scar in scars:  # a bush patch of its own shape, two to four times the scar, holding it
        c = scar.centroid
        patch = affinity.translate(_scar_shape(rng, rng.uniform(2.0, 4.0) * scar.area), c.x, c.y)
        patch = shapely.union_all([patch, scar.buffer(rng.uniform(30.0, 60.0))])
        patch = Polygon(patch.exterior if patch.geom_type == "Polygon" else patch.convex_hull.exterior)
        savanna[ground_cells(np.asarray(patch.simplify(2.0).exterior.coords), labels.shape)] = True
    rr, cc = np.nonzero(savanna)
    labels[rr, cc] = np.where(rng.random(rr.size, dtype=np.float32) < 0.85, DRY_VEG, SAND)
    return savanna


def _village_fields(labels: np.ndarray, rng: np.random.Generator, village: SearchSite, blocked) -> None:
    """Millet parcels in a ring out to 350 m from the village edge, clear of the fires' ground."""
    cu, cv = village.outline.centroid.coords[0]
    edge = math.sqrt(village.outline.area / math.pi)
    for _ in range(int(0.35 * math.pi * ((edge + 350) ** 2 - edge ** 2) / 5000)):
        phi, d = rng.uniform(0, 2 * math.pi), edge + rng.uniform(20.0, 350.0)
        u, v = cu + d * math.cos(phi), cv + d * math.sin(phi)
        angle = village.plans[0].angle + rng.uniform(-0.3, 0.3)
        corners = Plan(u, v, 65.0, 50.0, angle).corners()
        if not Polygon(corners).intersects(blocked):
            _paint_parcel(labels, rng, u, v, angle)


def _paint_tracks(labels: np.ndarray, rng: np.random.Generator, centres: list[tuple[float, float]]) -> None:
    """Sandy tracks, 3-5 m wide, wandering from each village to its nearest neighbour and out of the box."""
    h, w = labels.shape
    ends = []
    for i, a in enumerate(centres[1:], start=1):
        ends.append((a, min(centres[:i], key=lambda b: math.hypot(a[0] - b[0], a[1] - b[1]))))
    for a in centres[:3]:  # and off to the villages beyond the box
        phi = rng.uniform(0, 2 * math.pi)
        ends.append((a, (a[0] + 2 * w * math.cos(phi), a[1] + 2 * h * math.sin(phi))))
    for (u0, v0), (u1, v1) in ends:
        length = math.hypot(u1 - u0, v1 - v0)
        t = np.linspace(0, 1, max(2, int(length / 0.5)))
        n = max(8, int(length / 5))
        wander = np.interp(t, np.linspace(0, 1, n), _smooth_walk(rng, n)) * min(60.0, 0.08 * length)
        nu, nv = -(v1 - v0) / length, (u1 - u0) / length
        stamp(labels, u0 + t * (u1 - u0) + wander * nu, v0 + t * (v1 - v0) + wander * nv,
               rng.uniform(1.5, 2.5), TRACK)


def _smooth_walk(rng: np.random.Generator, n: int) -> np.ndarray:
    """A slow sideways wander (bends some 50 m apart for 5 m steps) of unit size, zero at both ends."""
    steps = ndimage.gaussian_filter1d(np.cumsum(rng.standard_normal(n)), 10.0)
    steps -= np.linspace(steps[0], steps[-1], n)
    return steps / (np.abs(steps).max() + 1e-12)


def _paint_trees(labels: np.ndarray, rng: np.random.Generator, villages: list[SearchSite],
                 savanna: np.ndarray) -> np.ndarray:
    """Parkland trees, densest around villages, and shrubs in the bush; ``(n, 4)`` u, v, radius, height."""
    h, w = labels.shape
    lam_max = 7.0  # trees per hectare near a village; 1.2 far out in the parkland
    n = rng.poisson(lam_max * h * w / 1e4)
    u, v = rng.uniform(0, w, n), rng.uniform(0, h, n)
    lam = np.full(n, 1.2)
    for s in villages:
        cu, cv = s.outline.centroid.coords[0]
        edge = math.sqrt(s.outline.area / math.pi)
        lam += 5.5 * np.exp(-np.maximum(0.0, np.hypot(u - cu, v - cv) - edge) / 150.0)
    keep = rng.random(n) * lam_max < np.minimum(lam, lam_max)
    radius = rng.uniform(2.0, 5.0, n)
    trees = np.column_stack([u[keep], v[keep], radius[keep], 1.6 * radius[keep] + rng.uniform(2.5, 5.0, keep.sum())])
    n = rng.poisson(8.0 * h * w / 1e4)  # Guiera and Combretum shrubs, 8 a hectare in the bush
    u, v = rng.uniform(0, w, n), rng.uniform(0, h, n)
    inside = savanna[v.astype(int), u.astype(int)]
    radius = rng.uniform(1.2, 2.5, n)
    shrubs = np.column_stack([u[inside], v[inside], radius[inside], rng.uniform(1.5, 3.0, inside.sum())])
    trees = np.concatenate([trees, shrubs])
    for uu, vv, r, _ in trees:
        labels[draw.disk((vv - 0.5, uu - 0.5), r, shape=labels.shape)] = TREE
    return trees


def _burn(land: Landscape, sites: list[SearchSite], rng: np.random.Generator) -> None:
    """Burn most compounds of each burned village, one footprint each, and every fire's ground."""
    first = 0
    for s in (s for s in sites if s.kind.startswith("village")):
        n = len(s.plans)
        burned = np.zeros(n, dtype=bool)
        if s.code:  # most, not all: a few compounds are spared or only scorched at the wall
            burned[rng.permutation(n)[:max(1, min(n - 1, int(round(rng.uniform(0.75, 0.92) * n))))]] = True
        for i, p in enumerate(s.plans):
            fp = None
            if burned[i]:
                fp = compound_outline(rng, p, Polygon(p.corners()))
                paint_burn(land.burn_event, land.burn_label, rng, fp, s.code)
                land.events[first + i] = s.code
                land.footprints[first + i] = fp
            s.burns.append(fp)
        first += n
    for s in (s for s in sites if not s.kind.startswith("village")):
        fp = burn_field(rng, land, s.outline, s.code)  # char on fuel, scorched soil, crowns spared
        s.burns.append(fp)
        land.outside.append((s.code, fp))


# --------------------------------------------------------------------------- the cumulus
@dataclass
class WindowCloud:
    """A cumulus and its shadow on a window of the ground: 1 m arrays cover ``pixels`` plus the margin."""

    pixels: tuple[slice, slice]  # the window on the grid
    ground: tuple[slice, slice]  # the same window on the 1 m ground, margin included
    alpha: np.ndarray
    brightness: np.ndarray
    shade: np.ndarray
    shadow_alpha: np.ndarray
    info: dict

    def hidden(self) -> np.ndarray:
        """Cells under the cloud or its shadow (the village engine's rule)."""
        return (self.alpha > 0.05) | (self.shade < 0.97)

    def share(self, poly: Polygon, mask: np.ndarray, shape: tuple[int, int]) -> float:
        """Share of the 1 m cells of ``poly`` (ground metres) where ``mask`` (window cells) is true."""
        rr, cc = ground_cells(np.asarray(poly.exterior.coords), shape)
        if not rr.size:
            return 0.0
        lr, lc = rr - self.ground[0].start, cc - self.ground[1].start
        ok = (lr >= 0) & (lr < mask.shape[0]) & (lc >= 0) & (lc < mask.shape[1])
        return float(mask[lr[ok], lc[ok]].sum() / rr.size)


def plan_cloud(land: Landscape, village: SearchSite, sun: tuple[float, float], seed: int) -> WindowCloud:
    """A low cumulus over the sun side of ``village`` whose shadow falls on its far side.

    The geometry is the village engine's ``"across_village"`` one: the cloud centre a third of a
    radius sunward of the village centre, its shadow ``height / tan(elevation)`` away in the
    anti-solar azimuth, far enough (at least 2.4 cloud sizes) that cloud and shadow stay apart
    and both cover compounds.
    """
    rng = stream_rng(seed, 7009)
    az, el = sun
    cu, cv = village.outline.centroid.coords[0]
    radius = max(float(np.hypot(*(p.corners() - (cu, cv)).T).max()) for p in village.plans)
    size = float(np.clip(0.35 * radius, 45.0, 160.0))
    su, sv = math.sin(math.radians(az)), -math.cos(math.radians(az))  # toward the sun (v grows south)
    reach = max(1.15 * radius, 2.4 * size)
    ccu, ccv = cu + 0.35 * radius * su, cv + 0.35 * radius * sv
    height = round(reach * math.tan(math.radians(el)), 1)
    du, dv = int(round(-reach * su)), int(round(-reach * sv))
    h, w = land.grid.shape
    lo_u, hi_u = min(ccu, ccu + du) - 2.3 * size, max(ccu, ccu + du) + 2.3 * size
    lo_v, hi_v = min(ccv, ccv + dv) - 2.3 * size, max(ccv, ccv + dv) + 2.3 * size
    c0, c1 = max(0, int((lo_u - _MARGIN) // SUB)), min(w, math.ceil((hi_u - _MARGIN) / SUB))
    r0, r1 = max(0, int((lo_v - _MARGIN) // SUB)), min(h, math.ceil((hi_v - _MARGIN) / SUB))
    ground = (slice(SUB * r0, SUB * r1 + 2 * _MARGIN), slice(SUB * c0, SUB * c1 + 2 * _MARGIN))
    local = (ground[0].stop - ground[0].start, ground[1].stop - ground[1].start)
    alpha, brightness = cumulus_field(rng, local, ccu - ground[1].start, ccv - ground[0].start, size)
    shade = np.ones(local, dtype=np.float32)
    shadow_alpha = np.zeros(local, dtype=np.float32)
    dst, src = overlap(local, dv, du)
    shade[dst] = 1.0 - (1.0 - SKY_LIGHT) * alpha[src]
    shadow_alpha[dst] = alpha[src]
    to_crs = crs_transform(land)
    info = {"site_id": village.site_id, "centre_xy": list(to_crs(shapely.Point(ccu, ccv)).coords[0]),
            "size_m": round(2 * size, 1), "cloud_base_m": height, "shadow_offset_east_north_m": [du, -dv],
            "sun_azimuth": round(az, 2), "sun_elevation": round(el, 2), "shadow_flagged": True}
    return WindowCloud((slice(r0, r1), slice(c0, c1)), ground, alpha, brightness, shade, shadow_alpha, info)


# --------------------------------------------------------------------------- one acquisition
def acquire(land: Landscape, k: int, visible: np.ndarray, *, seed: int, satellite: str,
             sun: tuple[float, float], cloud: WindowCloud | None) -> SimulatedScene:
    """Image the box's ground as it stood at scene ``k`` through one satellite (as the village engine does).

    One shift, gain, offset, haze and noise draw for the whole scene; the draws keep the village
    engine's order (shift, gains, offsets, day field, noise).
    """
    acq, shape = ACQUISITIONS[k], land.grid.shape
    rng = stream_rng(seed, 7100 + k)
    shift = tuple(float(x) for x in rng.uniform(*_FINE_SHIFT_PX, 2) * rng.choice([-1.0, 1.0], 2))
    gain, offset = sensor_radiometry(rng, _SENSOR, "")
    labels = np.where(visible[land.burn_event] <= k, land.burn_label, land.labels)
    light = tree_light(land, sun, 0.0)  # share of the direct sun past tree crowns
    if cloud is not None:
        light[cloud.ground] *= 1.0 - cloud.shadow_alpha
    light *= 1.0 - SKY_LIGHT  # the diffuse sky still lights a shadow
    light += SKY_LIGHT
    light *= land.texture
    rho = np.empty((len(_SENSOR.bands), *shape), dtype=np.float32)
    for b in range(len(_SENSOR.bands)):
        ground = LUT[b][labels]
        ground *= light
        if cloud is not None:
            window = ground[cloud.ground]
            window += cloud.alpha * (cloud.brightness - window)
        rho[b] = land_image(land, ground, shift)
        del ground
    del labels, light
    dn = observed_dn(rho, HAZE[k], _SENSOR, gain, offset, rng)
    cloud_px = shadow_px = None
    if cloud is not None:
        cloud_px, shadow_px = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        size = (cloud.pixels[0].stop - cloud.pixels[0].start, cloud.pixels[1].stop - cloud.pixels[1].start)
        cloud_px[cloud.pixels] = image_ground(cloud.alpha, shift, size, sub=SUB, margin=_MARGIN, pad=_SENSOR.pad_px)
        shadow_px[cloud.pixels] = image_ground(1.0 - cloud.shade, shift, size, sub=SUB, margin=_MARGIN, pad=_SENSOR.pad_px)
    udm2 = make_udm2(shape, HAZE[k], cloud_px, shadow_px)
    scene_id = f"{acq.time:%Y%m%d_%H%M%S}_sim_d{k}"
    metadata = {**scene_metadata(scene_id, acq.time, satellite, _SENSOR, HAZE[k], gain, offset, udm2, sun, shift,
                                 cloud is not None), "search_box_version": SEARCH_BOX_VERSION}
    for a in (dn, udm2):
        a.setflags(write=False)
    return SimulatedScene(scene_id, acq.time, satellite, dn, udm2, shift, metadata)


# --------------------------------------------------------------------------- first-visible pixels
def first_visible_pixels(land: Landscape, visible: np.ndarray) -> np.ndarray:
    """First scene on which at least half of each pixel's 1 m cells are burned; -1 never.

    Counted on the painted cells, not on the burn polygons, because the cells are what every
    scene images (tree crowns a fire spared included) and because exact polygon areas of
    80 ha scars riddled with crowns take minutes. A pixel is burned by scene k when 5 of its 9
    cells are, so its date is the 5th-earliest of its cells' dates.
    """
    h, w = land.grid.shape
    m = land.margin
    cells = visible[land.burn_event[m:m + SUB * h, m:m + SUB * w]]  # 255 = never burned
    blocks = cells.reshape(h, SUB, w, SUB).transpose(0, 2, 1, 3).reshape(h, w, SUB * SUB)
    fifth = np.partition(blocks, (SUB * SUB) // 2, axis=-1)[..., (SUB * SUB) // 2]
    truth = fifth.astype(np.int16)
    truth[fifth == 255] = -1
    truth.setflags(write=False)
    return truth
