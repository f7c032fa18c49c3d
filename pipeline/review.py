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

A decision is only as good as the polygon it was made on: :func:`run_polygons` reads a run's
polygons only from the file its manifest lists, after the run folder, its report and its
run-log entry check out (:func:`pipeline.provenance.verify.check_run`), so a GeoJSON dropped into a run
folder, or a run of another AOI, never receives a decision.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely import union_all, wkt
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from pipeline.errors import IntegrityError, OutputError, ParameterError, SceneError
from pipeline.outputs.write import exclusive_lock, write_json
from pipeline.readers.rasters import read_small_file

__all__ = ["Decision", "DECISIONS", "apply_decisions", "read_decisions", "record_decision", "review_summary", "reviews_path",
           "run_polygons", "read_edited_outline"]

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
    _check_plain_text(by, "--by", "the reviewer's name", _MAX_NAME_CHARS)
    if decision == "rejected" and not reason.strip():
        raise ParameterError("a rejection needs a reason; give --reject REASON")
    _check_plain_text(reason, "--reject", "the reason", _MAX_REASON_CHARS)
    if decision == "edited" and (edited is None or edited.is_empty or not edited.is_valid):
        raise ParameterError("an edit needs the corrected outline as a valid polygon (GeoJSON, lon/lat)")
    match = polygons_4326[polygons_4326["polygon_id"] == polygon_id]
    if match.empty:
        raise ParameterError(f"polygon {polygon_id!r} is not in run {run_id}; pick an id from its report or GeoJSON")
    row = match.iloc[0]
    if decision == "edited":
        _check_edit_near(row.geometry, edited, polygon_id)
    made = Decision(polygon_id=polygon_id, decision=decision, by=by.strip(),
                    at_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), first_seen=str(row["first_seen"]),
                    outline_wkt=row.geometry.wkt, simulated=simulated, run_id=run_id, reason=reason.strip(),
                    edited_wkt=edited.wkt if edited is not None else "")
    with exclusive_lock(path):
        history = read_decisions(path)
        write_json(path, {"decisions": [asdict(d) for d in [*history, made]]}, root=Path(path).parent)
    return made


_MAX_NAME_CHARS = 200
_MAX_REASON_CHARS = 2000
_EDIT_REACH_M = 100.0
"""How far a corrected outline may lie from the polygon it corrects: a misplaced outline, not another place."""


def _check_plain_text(text: str, option: str, what: str, limit: int) -> None:
    """A name or reason goes into every later report: plain text of a sensible length, no control characters
    and no characters that turn the text's direction (U+202E would make a report show another reason)."""
    import unicodedata

    if len(text) > limit:
        raise ParameterError(f"{option}: {len(text)} characters, more than {limit}; give {what} in fewer words")
    hidden = sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in ("Cc", "Cf")})
    if hidden:
        raise ParameterError(f"{option}: {what} holds control or direction characters ({', '.join(hidden[:5])}); "
                             f"type it as plain text")


def _check_edit_near(outline: BaseGeometry, edited: BaseGeometry, polygon_id: str) -> None:
    """Refuse a corrected outline that lies farther than :data:`_EDIT_REACH_M` from the polygon it corrects."""
    both = gpd.GeoSeries([outline, edited], crs="EPSG:4326")
    metric = both.to_crs(both.estimate_utm_crs())
    apart_m = float(metric.iloc[0].distance(metric.iloc[1]))
    if apart_m > _EDIT_REACH_M:
        far = f"{apart_m / 1000:.0f} km" if apart_m >= 10_000 else f"{apart_m:.0f} m"
        raise ParameterError(f"the corrected outline lies {far} from polygon {polygon_id} (at most {_EDIT_REACH_M:.0f} m); "
                             f"draw it over the burn it corrects, in lon/lat")


def run_polygons(run_dir: Path, aoi_name: str) -> tuple[dict[str, Any], gpd.GeoDataFrame]:
    """The manifest and the burn polygons (EPSG:4326) of a finished, verified village run of ``aoi_name``.

    The polygons are read from the bytes whose SHA-256 was checked against the manifest,
    never from a file found by name.

    Raises
    ------
    OutputError
        When ``run_dir`` is missing, a file, or an incomplete (``.partial``) run.
    IntegrityError
        When the run is of another AOI or a search, or does not verify (its folder, report
        or run-log entry; inputs are not needed to review).
    """
    from pipeline.provenance.manifest import MANIFEST_NAME
    from pipeline.provenance.verify import check_run

    run_dir = Path(run_dir)
    if run_dir.name.endswith(".partial"):
        raise OutputError(f"{run_dir}: an incomplete run (a .partial folder is what a run that failed or is still "
                          f"running leaves); review a finished run of {aoi_name}")
    if run_dir.is_file():
        raise OutputError(f"{run_dir}: a file, not a run folder; give --run the folder of a finished run (out/{aoi_name}/<run-id>)")
    if not run_dir.is_dir():
        raise OutputError(f"{run_dir}: no such run folder; give --run the folder of a finished run (out/{aoi_name}/<run-id>)")
    if not (run_dir / MANIFEST_NAME).is_file():
        raise OutputError(f"{run_dir}: not a run folder (no {MANIFEST_NAME}); give --run the folder of a finished run "
                          f"(out/{aoi_name}/<run-id>)")
    check = check_run(run_dir, inputs=False)
    manifest = check.manifest
    if manifest["aoi"] != aoi_name:
        raise IntegrityError(f"{run_dir}: a run of AOI {manifest['aoi']!r}, not {aoi_name!r}; give a run of {aoi_name}, "
                             f"or record the decision as burnscan review {manifest['aoi']} ...")
    if manifest["kind"] != "detect":
        raise IntegrityError(f"{run_dir}: a {manifest['kind']} run; decisions are recorded on the polygons of a village run "
                             f"(burnscan detect {aoi_name})")
    if check.problems:
        raise IntegrityError(f"{run_dir}: the run does not verify ({len(check.problems)} problem(s), the first: "
                             f"{check.problems[0]}); decisions are recorded only on runs that verify: burnscan verify "
                             f"{run_dir} lists them")
    name = f"burns{'_SIMULATED' if manifest['simulated'] else ''}.geojson"
    digest = next((o["sha256"] for o in manifest["outputs"] if o["path"] == name), None)
    try:
        data = (run_dir / name).read_bytes()
    except OSError as exc:
        raise OutputError(f"{run_dir / name}: cannot be read ({exc.strerror or exc}); restore the run folder") from None
    if digest is None or hashlib.sha256(data).hexdigest() != digest:  # changed since the check above
        raise IntegrityError(f"{run_dir / name}: does not match the SHA-256 in the manifest; burnscan verify {run_dir} says more")
    return manifest, gpd.read_file(io.BytesIO(data))


_OUTLINE_TYPES = ("Polygon", "MultiPolygon")
# An outline drawn by hand around a burned compound is a few kB; 10 MB holds some 300,000 vertices
# (a traced outline of a whole town, or a few decimals too many), and still parses in a second. A
# device or a disk image given by mistake stops there instead of filling the memory.
_MAX_OUTLINE_BYTES = 10_000_000


def read_edited_outline(path: Path) -> BaseGeometry:
    """An analyst's corrected outline from a GeoJSON file (a geometry, Feature or FeatureCollection), in lon/lat.

    Raises
    ------
    ParameterError
        One line naming the file when it is not GeoJSON, holds no polygon, holds a point or
        line, or the polygon is self-intersecting or not in lon/lat.
    """
    path = Path(path)
    fix = "give a GeoJSON Polygon (or a Feature of one) in lon/lat"
    data = read_small_file(path, _MAX_OUTLINE_BYTES, what="corrected outline", fix=fix, error=ParameterError)
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError too
        raise ParameterError(f"{path}: not valid GeoJSON ({exc}); {fix}") from None
    except RecursionError:
        raise ParameterError(f"{path}: not valid GeoJSON (nested too deeply to be an outline); {fix}") from None
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "FeatureCollection":
        features = document.get("features")
        geometries = [f.get("geometry") if isinstance(f, dict) else None for f in features] if isinstance(features, list) else None
    elif kind == "Feature":
        geometries = [document.get("geometry")]
    elif isinstance(kind, str):
        geometries = [document]
    else:
        geometries = None
    if not geometries:
        raise ParameterError(f"{path}: not a GeoJSON geometry, Feature or FeatureCollection, or holds no feature; {fix}")
    if isinstance(document, dict) and isinstance(document.get("crs"), dict):
        name = str((document["crs"].get("properties") or {}).get("name", ""))
        if name and not name.upper().endswith(("CRS84", "4326")):
            raise ParameterError(f"{path}: in {name}; {fix} (RFC 7946: longitude, latitude on WGS 84)")
    shapes = []
    for geometry in geometries:
        try:
            shapes.append(shape(geometry))
        except Exception as exc:  # shapely raises several types for malformed coordinates
            raise ParameterError(f"{path}: a geometry cannot be read ({type(exc).__name__}: {exc}); {fix}") from None
    wrong = sorted({g.geom_type for g in shapes if g.geom_type not in _OUTLINE_TYPES})
    if wrong:
        raise ParameterError(f"{path}: the corrected outline is a {' and a '.join(wrong)}, not an area; {fix}")
    outline = union_all(shapes)
    if outline.is_empty or not outline.is_valid:
        raise ParameterError(f"{path}: the corrected outline is empty or self-intersecting; redraw it as a simple polygon")
    lon0, lat0, lon1, lat1 = outline.bounds
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise ParameterError(f"{path}: coordinates {tuple(round(v, 3) for v in outline.bounds)} are not lon/lat degrees; {fix}")
    return outline


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
