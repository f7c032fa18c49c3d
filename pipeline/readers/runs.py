"""A finished run folder opened for reading, so that a run can be reviewed without running anything again.

The review notebook (and anything else that looks back at a run) starts here: :func:`find_run`
turns ``latest``, a run id or a folder into the folder of a finished run; :func:`open_run`
reads what the run wrote, and only what its manifest lists with a matching SHA-256, after the
run verifies (:func:`pipeline.review.run_polygons`): a figure or report dropped into a run
folder, or changed after it was sealed, is never shown as the run's. No detection stage is
imported here: opening a run never re-computes it.

``latest`` is the pointer a run leaves in ``<out>/<aoi>/``: a symbolic link to the run's folder,
or, where links cannot be made, a text file holding the run id. Both are read.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from pipeline.errors import IntegrityError, OutputError
from pipeline.names import safe_name
from pipeline.review import run_polygons

__all__ = ["LATEST", "DateView", "FinishedRun", "find_run", "open_run", "run_image", "run_review_page", "listed_bytes"]

LATEST = "latest"
"""The name of the pointer to an AOI's most recent finished run, and the default of :func:`find_run`."""


@dataclass(frozen=True)
class DateView:
    """One acquisition date of a run as its report reads it, with the figure that shows it."""

    scene_id: str
    acquired_utc: str
    acquired: str
    """The time as the report writes it (UTC and local)."""
    new_polygons: int
    new_area_ha: float
    statement: str
    figure: str | None
    """The run folder's before/after pair with the burns outlined (``figures/<time>_overlay*.png``), None
    when the run was made without figures or the date's scene was not usable."""


@dataclass(frozen=True)
class FinishedRun:
    """What a finished, verified village run holds, read back from its folder."""

    run_dir: Path
    manifest: dict[str, Any]
    report: dict[str, Any]
    polygons: gpd.GeoDataFrame
    """The burn polygons in lon/lat (EPSG:4326), from the GeoJSON the manifest lists."""
    dates: list[DateView] = field(default_factory=list)

    @property
    def simulated(self) -> bool:
        """True when the run analysed SIMULATED scenes: nothing it shows is evidence about a real place."""
        return bool(self.manifest["simulated"])

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])


def find_run(out_root: Path, aoi_name: str, run: str | Path = LATEST) -> Path:
    """The folder of a finished run of ``aoi_name``: ``latest``, a run id under ``<out_root>/<aoi>/``, or a folder.

    Raises
    ------
    OutputError
        When there is no ``latest`` (no finished run yet) or it does not name a run folder.
    """
    aoi_folder = Path(out_root) / aoi_name
    if str(run) != LATEST:
        given = Path(run)
        return given if given.is_dir() or len(given.parts) > 1 else aoi_folder / given
    latest = aoi_folder / LATEST
    if latest.is_symlink():  # a link to the run's folder, which must be one of this AOI's runs
        target = Path(str(latest.readlink()))
        if target.parent not in (Path("."), aoi_folder, aoi_folder.resolve()):
            raise OutputError(f"{latest}: points to {target}, not to a run of {aoi_name} beside it; give the run's folder, "
                              f"or run burnscan detect {aoi_name} again to renew it")
        name = target.name
    elif latest.is_file():  # a text file holding the run id, where links cannot be made
        name = latest.read_text(encoding="utf-8").strip()
    else:
        raise OutputError(f"{latest}: no finished run of {aoi_name} to open; run burnscan detect {aoi_name} first, "
                          f"or give the run's folder")
    return aoi_folder / safe_name(name, what="run id", source=latest, error=OutputError)


def open_run(run_dir: Path, aoi_name: str) -> FinishedRun:
    """Read a finished village run of ``aoi_name``: its manifest, report, polygons and per-date figures.

    The run must verify (folder, report and run-log entry; the scenes need not be at hand),
    and every file read is checked against the SHA-256 its manifest records.

    Raises
    ------
    OutputError, IntegrityError
        As :func:`pipeline.review.run_polygons`: no such run, an incomplete run, a run of
        another AOI or a search, a run that does not verify, or a file changed since.
    """
    run_dir = Path(run_dir)
    manifest, polygons = run_polygons(run_dir, aoi_name)
    report = json.loads(listed_bytes(run_dir, manifest, "report.json"))
    listed = {o["path"] for o in manifest["outputs"]}
    suffix = "_SIMULATED" if manifest["simulated"] else ""
    dates = []
    for reading in report.get("readings", []):
        stamp = datetime.strptime(reading["acquired_utc"], "%Y-%m-%dT%H:%M:%SZ").strftime("%Y%m%dT%H%MZ")
        figure = f"figures/{stamp}_overlay{suffix}.png"
        dates.append(DateView(scene_id=reading["scene_id"], acquired_utc=reading["acquired_utc"],
                              acquired=reading.get("acquired", reading["acquired_utc"]),
                              new_polygons=int(reading.get("new_polygons", 0)),
                              new_area_ha=float(reading.get("new_area_ha", 0.0)), statement=reading.get("statement", ""),
                              figure=figure if figure in listed else None))
    return FinishedRun(run_dir=run_dir, manifest=manifest, report=report, polygons=polygons, dates=dates)


def run_image(run: FinishedRun, name: str) -> np.ndarray:
    """The pixels (rows, columns, RGB(A), 0..1) of the run's figure ``name``, checked against the manifest."""
    from matplotlib import image

    return np.asarray(image.imread(io.BytesIO(listed_bytes(run.run_dir, run.manifest, name)), format="png"))


def run_review_page(run: FinishedRun) -> str | None:
    """The run's offline review page (``review.html``, scenes and outlines with everything inline) as an
    ``<iframe srcdoc>`` to show in a notebook, checked against the manifest; ``None`` for a run without one."""
    from html import escape

    if "review.html" not in {o["path"] for o in run.manifest["outputs"]}:
        return None
    page = listed_bytes(run.run_dir, run.manifest, "review.html").decode("utf-8")
    return (f'<iframe srcdoc="{escape(page, quote=True)}" style="width:100%;height:720px;border:1px solid #999" '
            f'title="review page of {escape(run.run_dir.name)}"></iframe>')


def listed_bytes(run_dir: Path, manifest: dict[str, Any], name: str) -> bytes:
    """The bytes of ``name`` in the run folder, only when the manifest lists it with this SHA-256."""
    digest = next((o["sha256"] for o in manifest["outputs"] if o["path"] == name), None)
    if digest is None:
        raise IntegrityError(f"{run_dir / name}: not listed in the run's manifest; open only what the run wrote "
                             f"(burnscan verify {run_dir} lists its files)")
    try:
        data = (run_dir / name).read_bytes()
    except OSError as exc:
        raise OutputError(f"{run_dir / name}: cannot be read ({exc.strerror or exc}); restore the run folder") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityError(f"{run_dir / name}: does not match the SHA-256 in the manifest; burnscan verify {run_dir} says more")
    return data
