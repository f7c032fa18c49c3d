"""The simulated village's 1 m ground: soils, fields, tracks, trees, compounds and burns.

:func:`build_landscape` paints the ground map around the grid (with a margin for the largest
shift), lays out the walled compounds, decides which burn in which event and paints their
char and ash, then adds the dry season's changes (deciduous crowns, a harvest, field burns).
Each part draws from its own random stream of the seed (:func:`stream_rng`). The materials and
their spectra are in :mod:`pipeline.sim.materials`; :mod:`pipeline.sim.imaging` images the ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
import shapely
from scipy import ndimage
from shapely import affinity
from shapely.geometry import Polygon
from skimage import draw

from pipeline.errors import ParameterError
from pipeline.grid import Grid
from pipeline.sim.imaging import MARGIN_M, SENSORS, image_ground
from pipeline.sim.materials import (ASH, CHAR, CROWNS, DECIDUOUS, DRY_VEG, FUEL, LANE, LATERITE, MILLET,
                                OLD_SCAR, OLD_THATCH, SAND, STRAW, THATCH, TRACK, TREE, WALL, YARD)
from pipeline.sim.scenarios import SCENARIOS, ScenarioPlan

AOI_MARGIN_M = 200.0  # the caller's buffer around its AOI: the village stays inside the AOI
_SLOT_M = 36.0  # compound lattice spacing: 20-28 m enclosures leave 4-16 m lanes


class Plan(NamedTuple):
    """A compound's rectangle in ground metres (u east, v south from the ground's corner)."""

    cu: float
    cv: float
    hx: float
    hy: float
    angle: float
    cut: float = 0.0
    """Metres cut off one corner along both its walls (0: a plain rectangle)."""

    def to_ground(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.cu + x * c - y * s, self.cv + x * s + y * c

    def corners(self, inset: float = 0.0) -> np.ndarray:
        hx, hy = self.hx - inset, self.hy - inset
        if self.cut <= 0:
            x, y = np.array([-1, 1, 1, -1]) * hx, np.array([-1, -1, 1, 1]) * hy
        else:  # the (+x, +y) corner cut diagonally, by the same length inside the wall
            x = np.array([-hx, hx, hx, hx - self.cut, -hx])
            y = np.array([-hy, -hy, hy - self.cut, hy, hy])
        return np.stack(self.to_ground(x, y), axis=1)


@dataclass
class Landscape:
    grid: Grid
    sub: int  # 1 m ground cells per pixel side
    margin: int  # ground metres beyond the grid on every side
    pad: int  # pixels imaged beyond the grid so the PSF has true neighbours at the edges
    labels: np.ndarray  # uint8 material of each 1 m cell before any burn or harvest
    burn_event: np.ndarray  # uint8: 0 never, k = burned by the plan's event k
    burn_label: np.ndarray  # uint8 material once burned (char, ash or scorched soil)
    compound_map: np.ndarray  # int16 compound id, -1 outside compounds
    texture: np.ndarray  # float32 multiplicative brightness of the ground
    plans: list[Plan]
    events: np.ndarray  # event of each compound (0 = never burns)
    footprints: list[Polygon | None]
    roofs: np.ndarray  # (n, 4): compound id, u, v, radius (m) of every hut and granary roof
    settlement: Polygon
    centre: tuple[float, float]
    radius: float
    old_scar: Polygon | None
    trees: np.ndarray  # (n, 4): u, v, crown radius, height, all metres
    deciduous: np.ndarray  # bool per tree: sheds its leaves in the dry season
    outside: list[tuple[int, Polygon]]  # (event, burned footprint) of field burns
    harvest: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # rows, cols, labels once cut
    harvest_field: Polygon | None


def village_room(grid: Grid) -> float:
    """Largest village radius (m) that keeps the village inside the AOI part of ``grid``."""
    return 0.5 * grid.resolution * min(grid.width, grid.height) - AOI_MARGIN_M - 30.0


def _ground_margin(plan: ScenarioPlan, sub: int) -> int:
    """Ground metres beyond the grid so that the largest shift, padding and PSF never run out."""
    sensor = SENSORS[plan.sensor]
    shift = max(max(abs(c) for c in a.coarse_shift_px) for a in plan.acquisitions) + plan.fine_shift_px[1]
    return max(MARGIN_M, sub * (math.ceil(shift) + sensor.pad_px + 2))


def build_landscape(grid: Grid, *, seed: int, n_compounds: int, n_burned_first: int,
                     plan: ScenarioPlan = SCENARIOS["demo"], sun_azimuth: float = 135.0) -> Landscape:
    """Paint the 1 m ground map around ``grid``, compounds, burns and seasonal changes included.

    Each part draws from its own random stream, so the demo's ground stays the same whatever
    the other scenarios add (they only add streams 8 and 9).
    """
    sub = int(round(grid.resolution))
    margin = _ground_margin(plan, sub)
    shape = (sub * grid.height + 2 * margin, sub * grid.width + 2 * margin)
    rng = stream_rng(seed, 1)
    jitter = rng.uniform(-1, 1, 2) * min(30.0, 0.03 * sub * min(grid.shape))
    centre = (shape[1] / 2 + jitter[0], shape[0] / 2 + jitter[1])
    plans, radius = plan_compounds(rng, centre, n_compounds, village_room(grid), layout=plan.layout)
    outlines = [Polygon(p.corners()) for p in plans]
    settlement = shapely.union_all([o.buffer(9.0, join_style="mitre") for o in outlines]).buffer(-5.0)
    settlement = Polygon(settlement.exterior) if settlement.geom_type == "Polygon" else settlement.convex_hull

    labels = np.full(shape, SAND, dtype=np.uint8)
    old_scar, fields = _paint_soils_and_fields(labels, stream_rng(seed, 2), centre, radius, margin)
    labels[ground_cells(np.asarray(settlement.exterior.coords), shape)] = LANE
    _paint_tracks(labels, stream_rng(seed, 3), centre)
    trees = _paint_trees(labels, stream_rng(seed, 4), centre, radius)
    compound_map = np.full(shape, -1, dtype=np.int16)
    crng = stream_rng(seed, 5)
    roofs = [(cid, u, v, r) for cid, p in enumerate(plans) for u, v, r in paint_compound(labels, compound_map, crng, p, cid)]
    n_yard_trees = 0
    if plan.courtyard_trees:
        yard_trees = plant_courtyard_trees(labels, stream_rng(seed, 10), plans)
        trees, n_yard_trees = np.concatenate([trees, yard_trees]), len(yard_trees)

    burn_event = np.zeros(shape, dtype=np.uint8)
    burn_label = np.full(shape, CHAR, dtype=np.uint8)
    phi = math.atan2(math.cos(math.radians(sun_azimuth)), -math.sin(math.radians(sun_azimuth)))
    events, footprints = _burn_compounds(stream_rng(seed, 6), plan, plans, outlines, centre, radius,
                                         n_burned_first, burn_event, burn_label,
                                         phi=phi if plan.attack_towards_sun else None,
                                         partial_rng=stream_rng(seed, 11))
    trng = stream_rng(seed, 7)
    texture = 1.0 + 0.03 * smooth_field(trng, shape, 300.0) + 0.015 * smooth_field(trng, shape, 40.0)
    texture += 0.02 * trng.standard_normal(shape, dtype=np.float32)  # sand grain, litter, stones
    # Sahel parkland trees (Faidherbia, Balanites, Sclerocarya...) stand about 6-13 m tall.
    heights = 1.6 * trees[:, 2] + stream_rng(seed, 8).uniform(2.5, 5.0, len(trees))
    land = Landscape(grid, sub, margin, SENSORS[plan.sensor].pad_px, labels, burn_event, burn_label, compound_map,
                      np.clip(texture, 0.85, 1.15).astype(np.float32), plans, events, footprints,
                      np.asarray(roofs, dtype=np.float64).reshape(-1, 4), settlement, centre, radius, old_scar, np.column_stack([trees, heights]),
                      np.zeros(len(trees), dtype=bool), [], None, None)
    _plan_seasons(land, plan, stream_rng(seed, 9), fields)
    if n_yard_trees:  # the courtyard trees are the deciduous kind, whatever the draw said
        land.deciduous[-n_yard_trees:] = True
        for u, v, r, _ in land.trees[-n_yard_trees:]:
            rr, cc = draw.disk((v - 0.5, u - 0.5), r, shape=land.labels.shape)
            crown = land.labels[rr, cc] == TREE
            land.labels[rr[crown], cc[crown]] = DECIDUOUS
    return land


def plan_compounds(rng: np.random.Generator, centre: tuple[float, float], n: int,
                    room: float, *, layout: str = "lattice") -> tuple[list[Plan], float]:
    """Lay ``n`` walled compounds on a jittered lattice, grown outward from the centre.

    Slots are taken by a noisy, lobed radius so the village edge is ragged; a few inner slots
    stay empty (squares, a mosque yard). Rows slide against each other and compounds tilt, but
    sizes and jitter are bounded so that lanes stay at least 3.5 m wide: footprints of
    neighbours never touch, which keeps per-compound truth unambiguous.

    With ``layout="blocks"`` a slot holds one compound of 8-30 m (a fifth with a corner cut
    off) or two neighbours side by side, 1 m apart: each keeps its own 1 m wall, so 3 m of
    unburned ground (one PlanetScope pixel) lies between their yards. ``n`` counts compounds,
    so a blocks village takes fewer slots.
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
    plans: list[Plan] = []
    for s in np.argsort(lobed, kind="stable"):
        if len(plans) >= n:
            break
        if layout == "blocks":
            plans += _block_plans(rng, centre[0] + du[s], centre[1] + dv[s], theta0, c0, s0)[:n - len(plans)]
            continue
        hx, hy = rng.uniform(10.0, 14.0, 2)
        delta = math.radians(rng.uniform(-12, 12))
        ext = np.array([hx * abs(math.cos(delta)) + hy * abs(math.sin(delta)),
                        hx * abs(math.sin(delta)) + hy * abs(math.cos(delta))])
        half_slot = _SLOT_M / 2 - 1.75  # half a slot minus half the narrowest lane
        shrink = min(1.0, half_slot / ext.max())  # a tilted big compound would touch its neighbour
        hx, hy, ext = hx * shrink, hy * shrink, ext * shrink
        jx, jy = rng.uniform(-1, 1, 2) * np.maximum(0.0, half_slot - ext)
        plans.append(Plan(centre[0] + du[s] + jx * c0 - jy * s0, centre[1] + dv[s] + jx * s0 + jy * c0,
                           hx, hy, theta0 + delta))
    corners = np.concatenate([p.corners() for p in plans])
    radius = float(np.hypot(corners[:, 0] - centre[0], corners[:, 1] - centre[1]).max())
    if radius > room:
        fit = max(1, int(0.75 * math.pi * (room - 20) ** 2 / _SLOT_M ** 2))
        raise ParameterError(f"n_compounds={n} needs a village about {2 * radius:.0f} m across, but this "
                             f"grid leaves room for {2 * room:.0f} m inside its {AOI_MARGIN_M:.0f} m "
                             f"margin; pass n_compounds <= about {fit} or a larger grid")
    return plans, radius


_GAP_M = 1.0  # between the walls of two neighbours in a block: 1 + 1 + 1 m = one 3 m pixel


def _block_plans(rng: np.random.Generator, su: float, sv: float, theta0: float, c0: float,
                 s0: float) -> list[Plan]:
    """One lattice slot of a ``"blocks"`` village: a compound of 8-30 m, or two neighbours."""
    half_slot = _SLOT_M / 2 - 1.75
    delta = math.radians(rng.uniform(-12, 12))
    pair = rng.random() < 0.5
    if pair:  # widths of 8 m or more each, side by side along the slot's x axis
        depth, total = rng.uniform(8.0, 28.0), rng.uniform(2 * 8.0 + _GAP_M, 31.0)
        w1 = rng.uniform(8.0, total - _GAP_M - 8.0)
        pieces = [(-total / 2 + w1 / 2, w1 / 2), (total / 2 - (total - w1 - _GAP_M) / 2, (total - w1 - _GAP_M) / 2)]
        hy = depth / 2
        ext_x, ext_y = total / 2, hy
    else:
        hx1, hy = rng.uniform(4.0, 15.0, 2)
        pieces = [(0.0, hx1)]
        ext_x, ext_y = hx1, hy
    ext = np.array([ext_x * abs(math.cos(delta)) + ext_y * abs(math.sin(delta)),
                    ext_x * abs(math.sin(delta)) + ext_y * abs(math.cos(delta))])
    if ext.max() > half_slot:  # turn it square to the lattice rather than shrink it
        delta = 0.0
        ext = np.array([ext_x, ext_y])
    jx, jy = rng.uniform(-1, 1, 2) * np.maximum(0.0, half_slot - ext)
    angle = theta0 + delta
    ca, sa = math.cos(angle), math.sin(angle)
    cu, cv = su + jx * c0 - jy * s0, sv + jx * s0 + jy * c0
    cuts = rng.random(len(pieces)) < 0.2
    out = []
    for (ox, hx), cut in zip(pieces, cuts):
        corner = rng.uniform(0.25, 0.5) * 2 * min(hx, hy) if cut and min(hx, hy) >= 5.0 else 0.0
        out.append(Plan(cu + ox * ca, cv + ox * sa, hx, hy, angle, corner))
    return out


def plant_courtyard_trees(labels: np.ndarray, rng: np.random.Generator, plans: list[Plan]) -> np.ndarray:
    """A shade tree (crown radius 3.5-6 m) in a third of the courtyards, its crown over the yard.

    Returns ``(n, 3)`` crown centres and radii (ground metres), painted as green canopy; the
    caller makes them deciduous. Crowns overhang roofs and walls, as real ones do.
    """
    out = []
    for p in plans:
        r = float(rng.uniform(3.5, 6.0))
        x, y = rng.uniform(-1, 1, 2) * np.maximum(0.0, np.array([p.hx, p.hy]) - r - 1.0)
        plant = rng.random() < 1 / 3 and min(p.hx, p.hy) >= r + 1.5
        if plant:
            u, v = p.to_ground(np.array(x), np.array(y))
            labels[draw.disk((float(v) - 0.5, float(u) - 0.5), r, shape=labels.shape)] = TREE
            out.append((float(u), float(v), r))
    return np.asarray(out, dtype=np.float64).reshape(-1, 3)


def _paint_soils_and_fields(labels: np.ndarray, rng: np.random.Generator, centre: tuple[float, float],
                            radius: float, margin: int = MARGIN_M) -> tuple[Polygon | None, list[Polygon]]:
    """Sand with lateritic patches and dry grass, then millet parcels around the village.

    The first parcel lying well inside the grid and 100 m clear of the village becomes an old
    (December) burn scar: dark on every date, so only a method that looks at change ignores it.
    Returns its outline (None when no parcel qualifies) and the outlines of the other parcels
    clear of the village, where seasonal scenarios harvest and burn.
    """
    shape = labels.shape
    labels[smooth_field(rng, shape, 120.0) > 1.0] = LATERITE
    grass = (smooth_field(rng, shape, 50.0) > 0.8) & (rng.random(shape, dtype=np.float32) < 0.55)
    labels[grass] = DRY_VEG
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
        corners = Plan(cu[f], cv[f], a[f], b[f], angles[f]).corners()
        rr, cc = ground_cells(corners, shape)
        pick = rng.random(rr.size) < covers[f]
        labels[rr, cc] = SAND  # ploughed or bare between stubble
        is_scar = scar is None and far[f] and corners.min() > edge \
            and corners[:, 0].max() < shape[1] - edge and corners[:, 1].max() < shape[0] - edge
        labels[rr[pick], cc[pick]] = OLD_SCAR if is_scar else DRY_VEG
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
        stamp(labels, np.interp(t, 5 * np.arange(n_steps + 1), u),
               np.interp(t, 5 * np.arange(n_steps + 1), v), rng.uniform(1.5, 2.5), TRACK)


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
        labels[draw.disk((vv - 0.5, uu - 0.5), r, shape=labels.shape)] = TREE
    return trees


def paint_compound(labels: np.ndarray, compound_map: np.ndarray, rng: np.random.Generator,
                    p: Plan, cid: int) -> list[tuple[float, float, float]]:
    """Mud wall, swept yard, a secco fence, 2-5 thatched huts and 1-3 granaries.

    Returns the roofs as (u, v, radius) in ground metres: the buildings a footprint map
    would hold.
    """
    shape = labels.shape
    rr, cc = ground_cells(p.corners(), shape)
    labels[rr, cc] = WALL
    compound_map[rr, cc] = cid
    labels[ground_cells(p.corners(inset=1.0), shape)] = YARD
    fx, fy = rng.uniform(-p.hx + 3, p.hx - 3), rng.uniform(-2.0, p.hy - 3)  # from a wall into the yard
    fence = p.to_ground(np.array([fx - 0.5, fx + 0.5, fx + 0.5, fx - 0.5]),
                        np.array([-p.hy + 1, -p.hy + 1, fy, fy]))
    labels[ground_cells(np.stack(fence, axis=1), shape)] = STRAW
    huts = rng.uniform(2.0, 3.0, rng.integers(2, 6))  # 4-6 m round huts
    granaries = rng.uniform(1.0, 1.5, rng.integers(1, 4))  # 2-3 m
    placed: list[tuple[float, float, float]] = []
    for r in np.concatenate([huts, granaries]):
        if min(p.hx, p.hy) - r - 1.2 <= 0:  # a hut too big for a small compound is not built
            continue
        for _ in range(30):  # rejection sampling: roofs do not overlap
            x = rng.uniform(-(p.hx - r - 1.2), p.hx - r - 1.2)
            y = rng.uniform(-(p.hy - r - 1.2), p.hy - r - 1.2)
            if all(math.hypot(x - a, y - b) >= r + c + 0.6 for a, b, c in placed):
                placed.append((x, y, r))
                break
    roofs = []
    for x, y, r in placed:
        u, v = p.to_ground(np.array(x), np.array(y))
        roof = OLD_THATCH if r < 1.6 or rng.random() < 0.3 else THATCH
        labels[draw.disk((float(v) - 0.5, float(u) - 0.5), r, shape=shape)] = roof
        roofs.append((float(u), float(v), float(r)))
    return roofs


# --------------------------------------------------------------------------- the burns
def _assign_events(rng: np.random.Generator, plans: list[Plan], centre: tuple[float, float],
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


def compound_outline(rng: np.random.Generator, p: Plan, outline: Polygon) -> Polygon:
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


def paint_burn(burn_event: np.ndarray, burn_label: np.ndarray, rng: np.random.Generator,
                fp: Polygon, event: int) -> None:
    """Char over the footprint with white ash specks (1-2 m) on 5-15 % of it."""
    rr, cc = ground_cells(np.asarray(fp.exterior.coords), burn_event.shape)
    burn_event[rr, cc] = event
    burn_label[rr, cc] = CHAR
    n = int(rng.uniform(0.05, 0.15) * rr.size / 2.0)  # specks average ~2 cells
    seeds = rng.integers(0, rr.size, n)
    big = rng.random(n) < 0.35
    offsets = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    si = np.concatenate([rr[seeds]] + [rr[seeds[big]] + o[0] for o in offsets[1:]])
    sj = np.concatenate([cc[seeds]] + [cc[seeds[big]] + o[1] for o in offsets[1:]])
    ok = (si < burn_event.shape[0]) & (sj < burn_event.shape[1])
    si, sj = si[ok], sj[ok]
    inside = burn_event[si, sj] == event
    burn_label[si[inside], sj[inside]] = ASH


def _burn_compounds(rng: np.random.Generator, plan: ScenarioPlan, plans: list[Plan], outlines: list[Polygon],
                    centre: tuple[float, float], radius: float, n_first: int, burn_event: np.ndarray,
                    burn_label: np.ndarray, *, phi: float | None,
                    partial_rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[Polygon | None]]:
    """Decide which compounds burn in which settlement event, and paint their footprints.

    With ``plan.burn_extent == "partial"`` the footprints come from :func:`partial_burn`,
    drawn from ``partial_rng`` so that the choice of events stays the demo's.
    """
    if plan.settlement_burns == "two_events":
        events = _assign_events(rng, plans, centre, radius, n_first, phi)
    else:
        events = np.zeros(len(plans), dtype=np.uint8)
        if plan.settlement_burns == "one_compound":
            events[_pick_inner(rng, plans, centre, radius)] = 1
    footprints: list[Polygon | None] = []
    for p, outline, ev in zip(plans, outlines, events):
        fp = None
        if ev and plan.burn_extent == "partial" and partial_rng is not None:
            fp = partial_burn(burn_event, burn_label, partial_rng, p, int(ev))
        elif ev:
            fp = compound_outline(rng, p, outline) if plan.settlement_burns == "two_events" else _small_footprint(rng, p)
            paint_burn(burn_event, burn_label, rng, fp, int(ev))
        footprints.append(fp)
    return events, footprints


ASH_RICH_SHARE = 1 / 3
"""Share of partial burns that leave mostly white ash (55-85 % of their cells) rather than char."""


def partial_burn(burn_event: np.ndarray, burn_label: np.ndarray, rng: np.random.Generator, p: Plan,
                 event: int) -> Polygon:
    """Burn one irregular patch of 30-90 % of a compound's area inside its walls; paint it.

    The burnable ground is every 1 m cell lying wholly inside the yard (the outline 1 m in:
    the mud wall never burns), so two neighbours 1 m apart keep 3 m of unburned ground between
    their burns. The patch is the chosen share of those cells nearest an off-centre point, by
    a distance stretched with direction (lobes) and roughened by small-scale noise: the
    cells the fire reached, kept as one 4-connected piece with its holes filled. Most burns are
    char with ash specks on 5-15 %; :data:`ASH_RICH_SHARE` of them are 55-85 % white ash in
    patches. Returns the exact outline of the painted cells, so its area is the painted area.
    """
    yard = Polygon(p.corners(inset=1.0))
    u0, v0, u1, v1 = (int(math.floor(b)) for b in yard.bounds)
    h, w = v1 - v0 + 1, u1 - u0 + 1
    rr, cc = np.mgrid[v0:v0 + h, u0:u0 + w]
    inside = shapely.covers(yard, shapely.box(cc, rr, cc + 1, rr + 1))
    ox, oy = rng.uniform(-0.5, 0.5, 2) * np.array([p.hx, p.hy])
    cu, cv = p.to_ground(np.array(ox), np.array(oy))
    du, dv = cc + 0.5 - float(cu), rr + 0.5 - float(cv)
    th = np.arctan2(dv, du)
    q1, q2, q3 = rng.uniform(0, 2 * math.pi, 3)
    lobes = 1 + 0.35 * np.sin(th + q1) + 0.25 * np.sin(2 * th + q2) + 0.15 * np.sin(3 * th + q3)
    rough = 1 + 0.25 * ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.5) / 0.2
    score = np.hypot(du, dv) / np.clip(lobes, 0.3, None) * np.clip(rough, 0.5, 1.5)
    # The share is of the compound's whole outline; a small compound's wall takes so much of
    # it that the yard caps what can burn.
    target = min(int(round(rng.uniform(0.3, 0.9) * Polygon(p.corners()).area)), int(inside.sum()))
    order = np.argsort(np.where(inside, score, np.inf), axis=None, kind="stable")
    n = max(1, target)
    while True:  # widen the front until the one connected patch is as large as planned
        chosen = np.zeros((h, w), dtype=bool)
        chosen.flat[order[:n]] = True
        chosen &= inside
        parts, count = ndimage.label(chosen)  # 4-connected: one patch the fire spread through
        if count > 1:
            chosen = parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))
        chosen = ndimage.binary_fill_holes(chosen) & inside
        if chosen.sum() >= target or n >= inside.sum():
            break
        n += max(1, target // 20)
    ash_share = rng.uniform(0.55, 0.85) if rng.random() < ASH_RICH_SHARE else rng.uniform(0.05, 0.15)
    field = ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.2)
    cut = np.quantile(field[chosen], 1 - ash_share)
    ash = chosen & (field > cut)
    bi, bj = np.nonzero(chosen)
    burn_event[bi + v0, bj + u0] = event
    burn_label[bi + v0, bj + u0] = CHAR
    ai, aj = np.nonzero(ash)
    burn_label[ai + v0, aj + u0] = ASH
    return cells_outline(chosen, u0, v0)


def cells_outline(mask: np.ndarray, u0: int, v0: int) -> Polygon:
    """The outline (ground metres) of a 4-connected, hole-free block of 1 m cells whose corner is (u0, v0).

    The union of the cells' squares, exactly: its area is the number of cells.
    """
    ii, jj = np.nonzero(mask)
    poly = shapely.coverage_union_all(shapely.box(jj + u0, ii + v0, jj + u0 + 1, ii + v0 + 1))
    if poly.geom_type != "Polygon" or not poly.is_valid:  # a defect of partial_burn, never of input
        raise AssertionError(f"burned cells at ({u0}, {v0}) do not form one valid polygon")
    return shapely.simplify(poly, 0.0)  # drop the collinear vertices between cells


def _pick_inner(rng: np.random.Generator, plans: list[Plan], centre: tuple[float, float], radius: float) -> int:
    """A compound in the inner half of the village, where a lone burn is surrounded by houses."""
    dist = np.array([math.hypot(p.cu - centre[0], p.cv - centre[1]) for p in plans])
    inner = np.flatnonzero(dist <= 0.5 * radius)
    return int(rng.choice(inner if inner.size else np.arange(len(plans))))


def _small_footprint(rng: np.random.Generator, p: Plan, side: float = 10.0) -> Polygon:
    """A ``side`` x ``side`` m burn (a hut, its granary and a fence) inside the compound walls."""
    room = np.maximum(0.0, np.array([p.hx, p.hy]) - side / 2 - 1.0)
    ox, oy = rng.uniform(-1, 1, 2) * room
    h = side / 2
    u, v = p.to_ground(ox + np.array([-h, h, h, -h]), oy + np.array([-h, -h, h, h]))
    return Polygon(np.stack([u, v], axis=1))


# --------------------------------------------------------------------------- the dry season
def _plan_seasons(land: Landscape, plan: ScenarioPlan, rng: np.random.Generator, fields: list[Polygon]) -> None:
    """Dry-season ground: deciduous crowns, a millet field to harvest and fields to burn."""
    if any(a.leaf_loss for a in plan.acquisitions):
        # About half the parkland trees shed leaves now (Sclerocarya, Lannea, Combretum...);
        # Faidherbia albida, leafy in the dry season, and Balanites keep theirs.
        land.deciduous = rng.random(len(land.trees)) < 0.5
        for u, v, r, _ in land.trees[land.deciduous]:
            rr, cc = draw.disk((v - 0.5, u - 0.5), r, shape=land.labels.shape)
            crown = land.labels[rr, cc] == TREE
            land.labels[rr[crown], cc[crown]] = DECIDUOUS
    burns = [k + 1 for k, e in enumerate(plan.events) if e.setting == "outside"]
    chosen = _pick_fields(rng, fields, land, len(burns) + (plan.harvest_time is not None))
    if plan.harvest_time is not None:
        land.harvest_field = chosen.pop()
        land.harvest = _plan_harvest(rng, land, land.harvest_field)
    for event, field in zip(burns, chosen):
        land.outside.append((event, burn_field(rng, land, field, event)))


def _pick_fields(rng: np.random.Generator, fields: list[Polygon], land: Landscape, count: int) -> list[Polygon]:
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


def _plan_harvest(rng: np.random.Generator, land: Landscape,
                  field: Polygon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stand millet in ``field`` now; return the cells and the stubble-and-soil they become."""
    rr, cc = ground_cells(np.asarray(field.exterior.coords), land.labels.shape)
    lab = land.labels[rr, cc]
    crop = (lab == DRY_VEG) | ((lab == SAND) & (rng.random(rr.size) < 0.6))
    rr, cc = rr[crop], cc[crop]
    land.labels[rr, cc] = MILLET
    after = np.where(rng.random(rr.size) < 0.3, DRY_VEG, SAND).astype(np.uint8)
    return rr, cc, after


def burn_field(rng: np.random.Generator, land: Landscape, field: Polygon, event: int) -> Polygon:
    """Burn a field's stubble: char and ash on fuel, scorched soil elsewhere, crowns spared.

    Returns the burned footprint: the field minus the tree crowns standing in it, whose green
    tops still show from above.
    """
    points = shapely.points(land.trees[:, :2])
    inside = shapely.distance(field, points) < land.trees[:, 2]
    crowns = shapely.union_all(shapely.buffer(points[inside], land.trees[inside, 2]))
    paint_burn(land.burn_event, land.burn_label, rng, field, event)
    c0, r0, c1, r1 = (int(x) for x in field.bounds)
    box = (slice(max(0, r0 - 1), r1 + 2), slice(max(0, c0 - 1), c1 + 2))
    mine = land.burn_event[box] == event
    labels, burn_label = land.labels[box], land.burn_label[box]
    land.burn_event[box][mine & np.isin(labels, CROWNS)] = 0
    burn_label[mine & ~np.isin(labels, FUEL) & (burn_label == CHAR)] = OLD_SCAR
    return field.difference(crowns) if inside.any() else field


# --------------------------------------------------------------------------- the ground on a date
def labels_at(land: Landscape, plan: ScenarioPlan, when: datetime, state: int) -> np.ndarray:
    """The ground's materials at ``when``: burned cells and the harvest as far as they happened."""
    burned = (land.burn_event > 0) & (land.burn_event <= state)
    labels = np.where(burned, land.burn_label, land.labels)
    if land.harvest is not None and when > plan.harvest_time:
        rr, cc, after = land.harvest
        keep = ~burned[rr, cc]
        labels[rr[keep], cc[keep]] = after[keep]
    return labels


def land_image(land: Landscape, ground: np.ndarray, shift: tuple[float, float], *,
                coarse: bool = False) -> np.ndarray:
    """:func:`image_ground` with the landscape's pixel, margin and padding."""
    return image_ground(ground, shift, land.grid.shape, sub=land.sub, margin=land.margin, pad=land.pad, coarse=coarse)


# --------------------------------------------------------------------------- helpers
def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """An independent generator per job, so changing one part never reshuffles the others."""
    return np.random.default_rng([int(seed), stream])


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, roughly unit-variance float32 noise with features about ``scale`` cells wide."""
    step = max(1, int(round(scale / 2)))
    coarse = rng.standard_normal((shape[0] // step + 4, shape[1] // step + 4))
    coarse = ndimage.gaussian_filter(coarse, 1.0, mode="wrap")
    coarse = (coarse - coarse.mean()) / (coarse.std() + 1e-12)
    return ndimage.zoom(coarse.astype(np.float32), step, order=1)[:shape[0], :shape[1]]


def ground_cells(coords_uv: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the 1 m cells whose centres fall inside a polygon given in ground metres."""
    c = np.asarray(coords_uv, dtype=float)
    return draw.polygon(c[:, 1] - 0.5, c[:, 0] - 0.5, shape)


def stamp(labels: np.ndarray, u: np.ndarray, v: np.ndarray, radius: float, value: int) -> None:
    """Paint a disc of ``radius`` metres at every point of a densely sampled path."""
    r = int(math.ceil(radius))
    di, dj = np.mgrid[-r:r + 1, -r:r + 1]
    disc = di ** 2 + dj ** 2 <= radius ** 2
    ii = (np.floor(v).astype(int)[:, None] + di[disc]).ravel()
    jj = (np.floor(u).astype(int)[:, None] + dj[disc]).ravel()
    ok = (ii >= 0) & (ii < labels.shape[0]) & (jj >= 0) & (jj < labels.shape[1])
    labels[ii[ok], jj[ok]] = value


def crs_transform(land: Landscape):
    """Ground metres (u east, v south of the ground map's corner) to ``grid.crs`` coordinates."""
    x0, y0 = land.grid.transform.c - land.margin, land.grid.transform.f + land.margin
    return lambda geom: affinity.affine_transform(geom, [1.0, 0.0, 0.0, -1.0, x0, y0])
