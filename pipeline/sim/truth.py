"""The simulated series' ground truth: burn dates per pixel, compound and burn tables, other changes.

Drawn from the 1 m ground (:mod:`pipeline.sim.ground`) and the cloud (:mod:`pipeline.sim.sky`), never
from the imaged pixels, so every error a stage makes is measurable: the first scene on which
burns cover at least half of each pixel, one row per compound and per burn with the honest
date bracket around a cloud, and the dated changes that are not burns.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import geopandas
import numpy as np
import shapely
from shapely.geometry import Polygon

from pipeline.sim.ground import ground_cells, crs_transform, Landscape
from pipeline.sim.scenarios import ScenarioPlan
from pipeline.sim.sky import OBSCURED, CloudPlan, compound_fraction

_UTC = timezone.utc


def first_visible_raster(land: Landscape, first_index: list[int | None]) -> np.ndarray:
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


def _add_cover(covered: np.ndarray, poly: Polygon, land: Landscape) -> None:
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


def truth_tables(land: Landscape, times: list[datetime], plan: ScenarioPlan,
                  first_index: list[int | None],
                  cloud: CloudPlan | None) -> tuple[geopandas.GeoDataFrame, geopandas.GeoDataFrame]:
    """The compounds table and the burned-footprints table, in the grid's CRS."""
    to_crs = crs_transform(land)
    hidden = np.zeros(len(land.plans))
    if cloud is not None:
        hidden = np.maximum(compound_fraction(land, cloud.alpha > 0.05),
                            compound_fraction(land, cloud.shade < 0.97))
    rows, burns = [], []
    for cid, (p, ev, fp) in enumerate(zip(land.plans, land.events, land.footprints)):
        idx = first_index[ev - 1] if ev else None
        seen = iso(times[idx]) if idx is not None else ""
        obscured = plan.cloud_scene if hidden[cid] >= OBSCURED else -1
        rows.append({"compound_id": cid, "event": plan.events[ev - 1].name if ev else "", "first_visible": seen,
                     "obscured_scene": obscured, "obscured_fraction": round(float(hidden[cid]), 3),
                     "geometry": to_crs(Polygon(p.corners()))})
        if fp is not None and idx is not None:
            burns.append(_burn_row(cid, plan.events[ev - 1].name, "settlement", fp, idx, obscured, times, to_crs))
    for ev, fp in land.outside:
        if first_index[ev - 1] is not None:
            obscured = plan.cloud_scene if _hidden_fraction(land, fp, cloud) >= OBSCURED else -1
            burns.append(_burn_row(-1, plan.events[ev - 1].name, "outside", fp, first_index[ev - 1], obscured,
                                   times, to_crs))
    crs = land.grid.crs
    columns = ["compound_id", "event", "first_visible", "last_clear_before", "area_m2", "setting",
               "first_seen_clear", "geometry"]
    burns_gdf = geopandas.GeoDataFrame(burns or None, columns=columns, geometry="geometry", crs=crs)
    return geopandas.GeoDataFrame(rows, geometry="geometry", crs=crs), burns_gdf


def structure_table(land: Landscape, times: list[datetime], plan: ScenarioPlan,
                     first_index: list[int | None]) -> geopandas.GeoDataFrame:
    """Every roof (hut or granary) with whether it burned: at least half its disc inside its
    compound's burned footprint, the rule a reader of the imagery would apply too."""
    to_crs = crs_transform(land)
    rows = []
    for sid, (cid, u, v, r) in enumerate(land.roofs):
        cid = int(cid)
        disc = shapely.Point(u, v).buffer(r, quad_segs=8)
        fp, ev = land.footprints[cid], int(land.events[cid])
        burned = bool(fp is not None and ev and first_index[ev - 1] is not None
                      and disc.intersection(fp).area >= 0.5 * disc.area)
        rows.append({"structure_id": sid, "compound_id": cid, "kind": "granary" if r < 1.6 else "hut",
                     "burned": burned, "event": plan.events[ev - 1].name if burned else "",
                     "first_visible": iso(times[first_index[ev - 1]]) if burned else "",
                     "geometry": to_crs(disc)})
    return geopandas.GeoDataFrame(rows or None, columns=["structure_id", "compound_id", "kind", "burned", "event",
                                                         "first_visible", "geometry"],
                                  geometry="geometry", crs=land.grid.crs)


def _burn_row(cid: int, event: str, setting: str, fp: Polygon, idx: int, obscured: int,
              times: list[datetime], to_crs) -> dict:
    """One truth row; the bracket skips the scene whose cloud or shadow hides the burn."""
    before = [j for j in range(idx) if j != obscured]
    after = [j for j in range(idx, len(times)) if j != obscured]
    return {"compound_id": cid, "event": event, "first_visible": iso(times[idx]),
            "last_clear_before": iso(times[before[-1]]) if before else "",
            "area_m2": round(fp.area, 1), "setting": setting,
            "first_seen_clear": iso(times[after[0]]) if after else "", "geometry": to_crs(fp)}


def _hidden_fraction(land: Landscape, poly: Polygon, cloud: CloudPlan | None) -> float:
    """Share of the 1 m cells inside ``poly`` under the cloud or its shadow."""
    if cloud is None:
        return 0.0
    rr, cc = ground_cells(np.asarray(poly.convex_hull.exterior.coords), land.labels.shape)
    hit = (cloud.alpha[rr, cc] > 0.05) | (cloud.shade[rr, cc] < 0.97)
    return float(hit.mean()) if rr.size else 0.0


def dated_changes(land: Landscape, plan: ScenarioPlan, times: list[datetime],
                  cloud: CloudPlan | None = None) -> list[dict]:
    """Dated non-burn changes with where they happen, as WKT in the grid's CRS.

    Burns are not listed: they are in the truth. A method that flags any of these as a burn
    makes a commission error the benchmark can explain.
    """
    to_crs = crs_transform(land)
    h, w = land.labels.shape
    grid_box = shapely.box(land.margin, land.margin, w - land.margin, h - land.margin)
    whole = to_crs(grid_box).wkt
    when = [iso(t) for t in times]
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
        seen = next(s for s in when if s > iso(plan.harvest_time))
        out.append({"change": "harvest", "what": "standing millet cut to stubble over bare soil",
                    "assumed_time": iso(plan.harvest_time), "first_visible": seen,
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
    if plan.building_shadows:
        out.append({"change": "building_shadow", "what": "walls (2 m) and huts (3 m) cast shadows from "
                     "each scene's sun; another time of day makes them longer and turns them",
                     "scenes": late or when, "wkt": shapely.to_wkt(to_crs(land.settlement), rounding_precision=1)})
    if cloud is not None and not plan.shadow_flagged and plan.cloud_scene is not None:
        shade = _mask_outline(cloud.shade < 0.97, land)
        if shade is not None:
            out.append({"change": "cloud_shadow", "what": "the shadow of a flagged cumulus, not flagged "
                        "itself: every band dimmed to the sky light for one scene", "scenes": [when[plan.cloud_scene]],
                        "wkt": shapely.to_wkt(to_crs(shade.intersection(grid_box)), rounding_precision=1)})
    return out


def _mask_outline(mask: np.ndarray, land: Landscape, cell_m: int = 5) -> Polygon | None:
    """Outline (ground metres) of a 1 m mask, traced on ``cell_m`` blocks: a truth layer's
    outline of a shadow does not need the metre, and stays a readable size."""
    rows, cols = np.nonzero(mask[::cell_m, ::cell_m])
    if not rows.size:
        return None
    blocks = shapely.box(cols * cell_m, rows * cell_m, (cols + 1) * cell_m, (rows + 1) * cell_m)
    return shapely.coverage_union_all(blocks)


def iso(t: datetime) -> str:
    return t.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


FOOTPRINT_OFFSET_M = (4.8, -3.6)
"""East and north offset of the simulated footprint layer from the ground (6 m, as open layers traced
on other imagery often are)."""


def simulated_footprint_map(structures: geopandas.GeoDataFrame, settlement: Polygon, *, seed: int,
                            offset_m: tuple[float, float] = FOOTPRINT_OFFSET_M, jitter_m: float = 0.8,
                            missing: float = 0.05, extra: float = 0.03) -> geopandas.GeoDataFrame:
    """A building-footprint layer as an open dataset would give the simulated village: imperfect.

    Footprints traced on other imagery sit a few metres off the scenes (``offset_m``, east and
    north, the same for the whole layer), each outline is redrawn a little (``jitter_m``
    per building, radius within 15 %), a share of the buildings is ``missing``, and ``extra``
    footprints stand where nothing is built (a demolished hut, a tracing error). Each row has
    its own ``structure_id`` and keeps ``truth_structure_id`` (-1 for an extra), the link a
    benchmark needs and a user never has.
    """
    rng = np.random.default_rng([seed, 77])
    keep = structures[rng.random(len(structures)) >= missing]
    centres = keep.geometry.centroid
    radii = np.sqrt(keep.geometry.area / math.pi) * rng.uniform(0.85, 1.15, len(keep))
    dx = offset_m[0] + rng.normal(0, jitter_m, len(keep))
    dy = offset_m[1] + rng.normal(0, jitter_m, len(keep))
    # Tracers draw round roofs as polygons of a few vertices.
    geoms = [shapely.Point(c.x + a, c.y + b).buffer(r, quad_segs=2) for c, a, b, r in zip(centres, dx, dy, radii)]
    ids = list(keep["structure_id"])
    n_extra = int(round(extra * len(structures)))
    built = shapely.union_all(list(structures.geometry.buffer(1.0)))
    minx, miny, maxx, maxy = settlement.bounds
    while n_extra > 0:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        spot = shapely.Point(x, y).buffer(rng.uniform(2.0, 3.0), quad_segs=2)
        if settlement.contains(spot) and not spot.intersects(built):
            geoms.append(spot)
            ids.append(-1)
            n_extra -= 1
    return geopandas.GeoDataFrame({"structure_id": [f"sim-{i}" for i in range(len(ids))], "truth_structure_id": ids,
                                   "simulated": True}, geometry=geoms, crs=structures.crs)
