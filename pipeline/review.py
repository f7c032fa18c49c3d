"""Analysts' review decisions on burned-area polygons, kept so that they survive re-runs.

A decision (confirmed, rejected with a reason, or edited with a corrected outline) is made by a
named analyst on a polygon of a run. It is stored in ``<data>/<aoi>/reviews.json`` with the
polygon's outline and first-seen date, never its id alone: a re-run (new parameters, one more
scene) renumbers nothing on purpose, yet a polygon can change shape a little. A later polygon
takes a decision when it is first seen on the same date and overlaps the reviewed outline with an
intersection over union of at least 0.5. Decisions on simulated runs never apply to real ones.

The file is an append-only history (the latest decision on an outline wins), written
atomically: a crash mid-update leaves the previous file. A decision is added under the file's
lock, so two analysts recording at once both keep theirs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely import wkt
from shapely.geometry.base import BaseGeometry

from .errors import ParameterError, SceneError
from .write import exclusive_lock, write_json

__all__ = ["Decision", "DECISIONS", "apply_decisions", "read_decisions", "record_decision", "review_summary", "reviews_path"]

DECISIONS = ("confirmed", "rejected", "edited")
_MIN_IOU = 0.5


@dataclass(frozen=True)
class Decision:
    """One analyst's decision on one polygon."""

    polygon_id: str
    decision: str
    by: str
    at_utc: str
    first_seen: str
    outline_wkt: str
    """The reviewed polygon in lon/lat (EPSG:4326), as the machine drew it."""
    simulated: bool
    run_id: str
    reason: str = ""
    edited_wkt: str = ""
    """The analyst's corrected outline (lon/lat), for ``edited``."""


def reviews_path(data_root: Path, aoi_name: str) -> Path:
    """Where an AOI's decisions are kept (beside its scenes and catalogue)."""
    return Path(data_root) / aoi_name / "reviews.json"


def read_decisions(path: Path) -> list[Decision]:
    """Every decision recorded in ``path`` (oldest first); none when there is no file."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["decisions"]
        return [Decision(**row) for row in rows]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise SceneError(f"{path}: review decisions cannot be read ({type(exc).__name__}); restore the file from a copy") from None


def record_decision(path: Path, polygons_4326: gpd.GeoDataFrame, polygon_id: str, *, decision: str, by: str, run_id: str,
                    simulated: bool, reason: str = "", edited: BaseGeometry | None = None) -> Decision:
    """Add one decision on ``polygon_id`` of a run (its polygons in EPSG:4326) to the file at ``path``."""
    if decision not in DECISIONS:
        raise ParameterError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if not by.strip():
        raise ParameterError("a decision needs the reviewer's name; give --by NAME")
    if decision == "rejected" and not reason.strip():
        raise ParameterError("a rejection needs a reason; give --reject REASON")
    if decision == "edited" and (edited is None or edited.is_empty or not edited.is_valid):
        raise ParameterError("an edit needs the corrected outline as a valid polygon (GeoJSON, lon/lat)")
    match = polygons_4326[polygons_4326["polygon_id"] == polygon_id]
    if match.empty:
        raise ParameterError(f"polygon {polygon_id!r} is not in run {run_id}; pick an id from its report or GeoJSON")
    row = match.iloc[0]
    made = Decision(polygon_id=polygon_id, decision=decision, by=by.strip(),
                    at_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), first_seen=str(row["first_seen"]),
                    outline_wkt=row.geometry.wkt, simulated=simulated, run_id=run_id, reason=reason.strip(),
                    edited_wkt=edited.wkt if edited is not None else "")
    with exclusive_lock(path):
        history = read_decisions(path)
        write_json(path, {"decisions": [asdict(d) for d in [*history, made]]}, root=Path(path).parent)
    return made


def _iou(a: BaseGeometry, b: BaseGeometry) -> float:
    union = a.union(b).area
    return a.intersection(b).area / union if union > 0 else 0.0


def apply_decisions(polygons: gpd.GeoDataFrame, decisions: list[Decision], *, simulated: bool) -> gpd.GeoDataFrame:
    """``polygons`` with ``review``, ``review_by``, ``review_at``, ``review_reason`` and ``reviewed_outline`` columns.

    Each polygon takes the latest decision of the same kind of run (simulated or real) whose
    outline it overlaps with IoU >= 0.5 and whose first-seen date is its own; "" where none.
    """
    out = polygons.copy()
    for column in ("review", "review_by", "review_at", "review_reason", "reviewed_outline"):
        out[column] = ""
    if not len(out) or not decisions:
        return out
    lonlat = out.geometry.to_crs("EPSG:4326")
    for decision in decisions:  # oldest first: later decisions overwrite earlier ones
        if decision.simulated != simulated:
            continue
        outline = wkt.loads(decision.outline_wkt)
        for i, geom in enumerate(lonlat):
            if str(out.iloc[i]["first_seen"])[:10] == decision.first_seen[:10] and _iou(geom, outline) >= _MIN_IOU:
                out.iloc[i, out.columns.get_indexer(["review", "review_by", "review_at", "review_reason", "reviewed_outline"])] = [
                    decision.decision, decision.by, decision.at_utc, decision.reason, decision.edited_wkt]
    return out


def review_summary(polygons: gpd.GeoDataFrame) -> dict[str, Any]:
    """Counts and hectares per decision, and the unreviewed machine output, for reports."""
    if "review" not in polygons or not len(polygons):
        return {"n_reviewed": 0, "by_decision": {}, "machine_output": {"n_polygons": int(len(polygons))}}
    reviewed = polygons[polygons["review"] != ""]
    by = {d: {"n_polygons": int((reviewed["review"] == d).sum()),
              "area_ha": round(float(reviewed.loc[reviewed["review"] == d, "area_ha"].sum()), 4)}
          for d in DECISIONS if (reviewed["review"] == d).any()}
    return {
        "n_reviewed": int(len(reviewed)),
        "by_decision": by,
        "machine_output": {"n_polygons": int(len(polygons)), "area_ha": round(float(polygons["area_ha"].sum()), 4)},
        "decisions": [{"polygon_id": r.polygon_id, "decision": r.review, "by": r.review_by, "at_utc": r.review_at,
                       "reason": r.review_reason} for r in reviewed.itertuples()],
    }
