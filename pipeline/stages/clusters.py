"""Burned-area clusters of a wide-area search, ranked by how settlement-like and how large.

Why fragmentation tells a village from a bush fire: a Sahel village is a mesh of walled
compounds 20-40 m across with lanes between them. When it is set on fire each compound
burns on its own, so from orbit a burned village is many compound-sized burn patches a
few tens of metres apart (the dotted marks investigators read on Planet imagery). A bush
or field fire spreads across continuous fuel and leaves one large scar, or a few, with at
most some specks at its edge. So:

- a **cluster** is every burn patch within ``gap_m`` of another (patches grown by half the
  gap and joined);
- its **settlement score** is the share of its burned area in compound-sized patches
  (at most ``compound_max_m2``) times how many such patches there are, up to
  ``min_compounds`` (one isolated small burn is not a village);
- clusters are ranked settlement-like first (score >= 0.5), then by burned area.

``score_search`` measures a ranking against a simulated box's truth: every burned village
found, ranked above every bush or field fire, no unburned village listed.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.ops import unary_union

__all__ = ["CLUSTER_COLUMNS", "cluster_burns", "score_search"]

CLUSTER_COLUMNS = ["rank", "cluster_id", "kind", "settlement_score", "burned_ha", "n_patches", "n_compound_sized",
                   "largest_patch_ha", "first_seen", "last_clear_before", "first_seen_index", "last_clear_index",
                   "dates_seen", "centre_lon", "centre_lat"]
SETTLEMENT_LIKE = "settlement-like"
FIRE_LIKE = "bush or field fire"


def cluster_burns(
    polygons: gpd.GeoDataFrame,
    *,
    times: list[str],
    gap_m: float = 60.0,
    compound_max_m2: float = 2500.0,
    min_compounds: int = 5,
) -> gpd.GeoDataFrame:
    """Group burn polygons into clusters and rank them.

    Parameters
    ----------
    polygons:
        Burn polygons (:data:`pipeline.stages.polygons.POLYGON_COLUMNS`) in a metric CRS.
    times:
        ISO UTC time of each scene, indexed like ``first_seen_index``.
    gap_m:
        Patches closer than this belong to one cluster (lanes between compounds are 5-20 m).
    compound_max_m2:
        Largest patch read as one compound (50 x 50 m).
    min_compounds:
        Compound-sized patches that make a cluster fully settlement-like.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per cluster (:data:`CLUSTER_COLUMNS`), geometry the union of its patches,
        in ``polygons.crs``, sorted by rank (1 = most settlement-like and largest).
    """
    if polygons.empty:
        return gpd.GeoDataFrame(columns=CLUSTER_COLUMNS + ["geometry"], geometry="geometry", crs=polygons.crs)
    grown = gpd.GeoSeries(list(polygons.geometry.buffer(gap_m / 2)), crs=polygons.crs)
    blobs = gpd.GeoDataFrame(geometry=list(gpd.GeoSeries([unary_union(list(grown))], crs=polygons.crs).explode(
        index_parts=False)), crs=polygons.crs)
    inside = gpd.GeoDataFrame(geometry=list(polygons.geometry.representative_point()), crs=polygons.crs)
    member = gpd.sjoin(inside, blobs, predicate="within")["index_right"]  # blobs are disjoint: one each
    frame = polygons.reset_index(drop=True).assign(_cluster=member.reindex(range(len(polygons))).to_numpy())
    rows = []
    for _, part in frame.groupby("_cluster"):
        areas = part["area_m2"].to_numpy(dtype=float)
        small = areas <= compound_max_m2
        share = float(areas[small].sum() / max(areas.sum(), 1e-9))
        score = share * min(1.0, small.sum() / min_compounds)
        first = int(part["first_seen_index"].min())
        at_first = part[part["first_seen_index"] == first]
        last_clear = int(at_first["last_clear_index"].min())
        outline = unary_union(list(part.geometry))
        rows.append({
            "kind": SETTLEMENT_LIKE if score >= 0.5 else FIRE_LIKE,
            "settlement_score": round(score, 3),
            "burned_ha": round(float(areas.sum() / 1e4), 4),
            "n_patches": int(len(part)),
            "n_compound_sized": int(small.sum()),
            "largest_patch_ha": round(float(areas.max() / 1e4), 4),
            "first_seen_index": first,
            "last_clear_index": last_clear,
            "first_seen": times[first],
            "last_clear_before": times[last_clear] if last_clear >= 0 else None,
            "dates_seen": ", ".join(f"{times[t][:10]}: {part.loc[part['first_seen_index'] == t, 'area_m2'].sum() / 1e4:.2f} ha"
                                    for t in sorted(part["first_seen_index"].unique())),
            "geometry": outline,
        })
    clusters = gpd.GeoDataFrame(rows, geometry="geometry", crs=polygons.crs)
    clusters["_settlement_like"] = clusters["kind"] == SETTLEMENT_LIKE
    clusters = clusters.sort_values(["_settlement_like", "burned_ha", "settlement_score"], ascending=False).drop(
        columns="_settlement_like").reset_index(drop=True)
    clusters["rank"] = np.arange(1, len(clusters) + 1)
    centres = clusters.geometry.centroid.to_crs("EPSG:4326")
    clusters["centre_lon"], clusters["centre_lat"] = centres.x.round(6), centres.y.round(6)
    clusters["cluster_id"] = [f"{t[:10].replace('-', '')}-{lat:.4f}N-{abs(lon):.4f}{'W' if lon < 0 else 'E'}"
                              for t, lon, lat in zip(clusters["first_seen"], clusters["centre_lon"], clusters["centre_lat"])]
    return gpd.GeoDataFrame(clusters[CLUSTER_COLUMNS + ["geometry"]], geometry="geometry", crs=polygons.crs)


def score_search(clusters: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, *, reach_m: float = 30.0) -> dict:
    """The search targets against a simulated box's truth sites.

    A cluster belongs to a site when it comes within ``reach_m`` of the site's outline
    (a village's built-up area, a fire's scar).

    Returns
    -------
    dict
        ``villages`` (per burned village: found, best rank, first seen scene against
        truth), ``fires`` (per bush or field fire: ranks of its clusters),
        ``unburned_listed`` (unburned villages some cluster reaches), and the three
        targets: ``all_villages_found``, ``villages_above_fires``, ``no_unburned_village``.
    """
    sites = sites.to_crs(clusters.crs) if clusters.crs is not None else sites
    reach = sites.geometry.buffer(reach_m)
    villages, fires, unburned = [], [], []
    for site, zone in zip(sites.itertuples(), reach):
        hits = clusters[clusters.intersects(zone)]
        if site.kind == "village_burned":
            best = hits.sort_values("rank").iloc[0] if len(hits) else None
            villages.append({"site_id": site.site_id, "found": best is not None,
                             "rank": None if best is None else int(best["rank"]),
                             "kind_called": None if best is None else best["kind"],
                             "first_seen_index": None if best is None else int(best["first_seen_index"]),
                             "true_first_visible_index": int(site.first_visible_index)})
        elif site.kind in ("bush_fire", "field_fire"):
            fires.append({"site_id": site.site_id, "kind": site.kind, "ranks": sorted(int(r) for r in hits["rank"])})
        elif site.kind == "village_unburned" and len(hits):
            unburned.append({"site_id": site.site_id, "ranks": sorted(int(r) for r in hits["rank"])})
    village_ranks = [v["rank"] for v in villages if v["found"]]
    fire_ranks = [r for f in fires for r in f["ranks"]]
    return {
        "villages": villages,
        "fires": fires,
        "unburned_listed": unburned,
        "all_villages_found": all(v["found"] for v in villages),
        "villages_above_fires": bool(village_ranks) and (not fire_ranks or max(village_ranks) < min(fire_ranks)),
        "no_unburned_village": not unburned,
        "dated_right": sum(v["first_seen_index"] == v["true_first_visible_index"] for v in villages if v["found"]),
    }
