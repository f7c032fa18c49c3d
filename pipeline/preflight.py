"""What a run checks before its work: the grid it will allocate, its options, its scenes' bands.

``detect`` holds the whole stack of scenes in memory: every band of every scene on the AOI's
grid plus its margin, and the copies the stages make of it. ``search`` holds a chunk per worker
and one calibration window, whatever the size of the area. Both are estimated here from the
grid, the scenes and the bands before a pixel is read, so that a grid too large for the machine
(a wide bounding box, a fine ``resolution_m``, a huge ``margin_m`` or ``extent_close_m``) is one
line saying the size, the limit and the fix, not a ``MemoryError`` after minutes of work.

The estimates are deliberately simple (bytes proportional to the samples held, plus the
libraries' own footprint) and were measured on the simulated demo; they guard against grids
that are wrong by a factor, not against a few per cent.
"""

from __future__ import annotations

import math
import os
from datetime import timezone
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.config import Params
from pipeline.errors import AoiError, ParameterError, SceneError
from pipeline.grid import Grid

if TYPE_CHECKING:  # only for the type: the readers stay unimported until a run needs them
    from pipeline.aoi import Aoi
    from pipeline.model import SceneInfo, SceneRecord

__all__ = ["refuse_night_scenes", "NIGHT_ELEVATION_DEG", "memory_budget", "detect_peak_bytes", "search_peak_bytes", "check_detect_grid", "check_search_grid",
           "check_search_options", "check_coreg_band", "scene_shape", "MIN_GRID_SIDE_PX", "CHUNK_PX_RANGE",
           "SEARCH_BOX_SIDE_M"]

# Peak resident memory of `burnscan detect` on the simulated demo (5 four-band PlanetScope-like
# scenes at 3 m, figures on), per sample held (one band of one scene at one pixel of the loaded
# grid, margin included). Measured with resource.getrusage(RUSAGE_SELF).ru_maxrss after the
# imports (195 MB) and after run_detect, in one process per run, the demo scenes already written:
#   1.2 km test AOI (tests/smallaoi.py)  0.25 Mpx loaded   5.0 M samples    510 MB peak
#   ogota, 3 km                          1.21 Mpx loaded  24.2 M samples    784 MB peak
#   6 km square around ogota             4.41 Mpx loaded  88.2 M samples   2209 MB peak
# The slope is 14 bytes per sample between the two smaller runs and 22 between the two larger
# (the float32 sample, its aligned, normalised and cropped copies, the index and change layers,
# more of them alive at once on larger grids); the intercept of the larger pair is ~440 MB with
# the imports. Both are rounded up, so the estimate errs towards refusing (by ~20 % at 6 km).
BYTES_PER_SAMPLE = 24
FIXED_BYTES = 512 * 1024**2
"""Libraries, figures and caches: the imports' 195 MB and the ~250 MB measured above them, rounded up."""

# The burned extent pads the analysis grid by the closing radius and runs two Euclidean
# distance transforms on it: a float64 result and an int32 feature index per axis, ~24 bytes
# per padded pixel at the peak (scipy.ndimage.distance_transform_edt).
_EXTENT_BYTES_PER_PX = 24

# The 3 x 3 seed filter and the one-pixel rim peel leave nothing of a narrower grid, and the
# background noise is a robust spread that wants about a hundred pixels to settle.
MIN_GRID_SIDE_PX = 10

# A search area is analysed a chunk at a time, so its memory does not grow with it, but its
# time does: past a billion pixels (eight Sentinel-2 tiles at 10 m; 1000 km2 at 1 m) a search
# runs for days, and the resolution or the area is a mistake.
MAX_SEARCH_PIXELS = 1_000_000_000

CHUNK_PX_RANGE = (64, 8192)
"""``search --chunk``: below 64 px the 32 px halo is most of every load; a chunk of 8192 px of ten
four-band scenes already needs ~65 GB (the memory check refuses it on most machines)."""

SEARCH_BOX_SIDE_M = (2000.0, 8000.0)
"""``search --box-size``: the simulated box needs 2 km for its sites; past 8 km it takes over 3 GB."""

# When the machine's memory cannot be read (no sysconf): a laptop's worth.
_FALLBACK_MEMORY = 8 * 1024**3
# Address space the interpreter and the libraries reserve before a run starts (measured 0.5 GB
# of VmSize after importing the pipeline; threads and GDAL add arenas): subtracted from an
# address-space limit (ulimit -v) before the run's own arrays.
_LIBRARY_ADDRESS_SPACE = 1024**3


def memory_budget() -> int:
    """Bytes a run may plan to hold: half the machine's memory, less under an address-space limit.

    Half, because the estimate is rough, the operating system and other programs need the rest,
    and ``detect --all`` runs one AOI per core side by side.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = _FALLBACK_MEMORY
    budget = total // 2
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            budget = min(budget, max(soft - _LIBRARY_ADDRESS_SPACE, 0))
    except (ImportError, OSError, ValueError):
        pass
    return int(budget)


def _extent_bytes(grid: Grid, params: Params) -> int:
    pad = int(math.ceil(params.extent_close_m / grid.resolution)) + 1  # the grid's metres (resolution_m may be "native")
    return (grid.width + 2 * pad) * (grid.height + 2 * pad) * _EXTENT_BYTES_PER_PX


def detect_peak_bytes(analysis: Grid, loaded: Grid, *, params: Params, scenes: int, bands: int) -> int:
    """Estimated peak memory of ``detect`` on ``loaded`` (the AOI's grid plus the margin).

    Examples
    --------
    The ogota demo (a 3 km AOI at 3 m, 150 m of margin, five 4-band scenes) peaked at 784 MB:

    >>> from affine import Affine
    >>> g = Grid("EPSG:32630", Affine(3.0, 0, 0, 0, -3.0, 0), 1000, 1000)
    >>> round(detect_peak_bytes(g, g.buffered(50), params=Params(), scenes=5, bands=4) / 1e6)
    1143
    """
    samples = loaded.width * loaded.height * max(scenes, 1) * max(bands, 1)
    return FIXED_BYTES + samples * BYTES_PER_SAMPLE + _extent_bytes(analysis, params)


def _gb(n: float) -> str:
    return f"{n / 1024**3:.1f} GB"


def _check_sides(grid: Grid, params: Params, where: str, what: str) -> None:
    if min(grid.width, grid.height) < MIN_GRID_SIDE_PX:
        raise AoiError(f"{where}: {what} is {grid.width} x {grid.height} px at resolution_m={grid.resolution:g}; "
                       f"the analysis needs at least {MIN_GRID_SIDE_PX} x {MIN_GRID_SIDE_PX} px (the seed filter, rim "
                       f"peeling and the noise estimate need room): draw a larger AOI or set a finer resolution_m")


def check_detect_grid(analysis: Grid, loaded: Grid, *, params: Params, scenes: int = 2, bands: int = 3,
                      where: str = "AOI", budget: int | None = None) -> None:
    """Refuse a ``detect`` grid too small to analyse or too large to hold in memory.

    Called once before anything is read with the fewest scenes and bands a run can have (two
    dates, green, red and NIR), so that only grids sure to be too large are refused then, and
    again when the scenes are known.

    Raises
    ------
    AoiError
        The analysis grid is narrower than :data:`MIN_GRID_SIDE_PX`.
    ParameterError
        The estimated peak memory exceeds ``budget`` (default :func:`memory_budget`).
    """
    _check_sides(analysis, params, where, "the analysis grid")
    need = detect_peak_bytes(analysis, loaded, params=params, scenes=scenes, bands=bands)
    limit = memory_budget() if budget is None else budget
    if need > limit:
        side_km = (loaded.width * loaded.resolution / 1000, loaded.height * loaded.resolution / 1000)
        raise ParameterError(
            f"{where}: detect would hold {loaded.width} x {loaded.height} px ({side_km[0]:.1f} x {side_km[1]:.1f} km with "
            f"margin_m={params.margin_m:g} at resolution_m={loaded.resolution:g}) x {scenes} scenes x {bands} bands, about "
            f"{_gb(need)} at its peak (limit {_gb(limit)}, half this machine's memory); draw a tighter AOI, set a coarser "
            f"resolution_m or a smaller margin_m, or scan wide areas with `burnscan search`")


def search_peak_bytes(*, params: Params, chunk_px: int, workers: int, scenes: int, bands: int,
                      calibration_px: int = 1024) -> int:
    """Estimated peak memory of ``search``: a chunk with its halo per worker, and the calibration window."""
    halo = max(32, int(math.ceil(params.coreg_max_shift_px)) + 8)  # as chunked.detect_chunked grows it
    chunk = (chunk_px + 2 * halo) ** 2 * scenes * bands * BYTES_PER_SAMPLE
    window = calibration_px**2 * scenes * bands * BYTES_PER_SAMPLE
    pad = int(math.ceil(params.extent_close_m / params.resolution_m)) + 1
    return FIXED_BYTES + workers * chunk + window + (calibration_px + 2 * pad) ** 2 * _EXTENT_BYTES_PER_PX


def check_search_grid(grid: Grid, *, params: Params, chunk_px: int, workers: int | None, scenes: int = 2,
                      bands: int = 3, where: str = "search_area", budget: int | None = None) -> None:
    """Refuse a search grid too small, too many pixels to scan, or chunks too large for memory.

    Raises
    ------
    AoiError
        The grid is narrower than :data:`MIN_GRID_SIDE_PX` or has more than
        :data:`MAX_SEARCH_PIXELS`.
    ParameterError
        A chunk per worker and the calibration window would exceed ``budget``.
    """
    _check_sides(grid, params, where, "the search grid")
    pixels = grid.width * grid.height
    if pixels > MAX_SEARCH_PIXELS:
        raise AoiError(f"{where}: the search grid is {grid.width} x {grid.height} px ({pixels / 1e9:.1f} billion) at "
                       f"resolution_m={grid.resolution:g}, over the {MAX_SEARCH_PIXELS / 1e9:.0f} billion a search can "
                       f"scan in reasonable time; set a coarser resolution_m or draw a smaller search_area")
    n_workers = workers or os.cpu_count() or 1
    need = search_peak_bytes(params=params, chunk_px=chunk_px, workers=n_workers, scenes=scenes, bands=bands)
    limit = memory_budget() if budget is None else budget
    if need > limit:
        raise ParameterError(
            f"{where}: {n_workers} worker(s) each holding a {chunk_px} px chunk of {scenes} scenes x {bands} bands need "
            f"about {_gb(need)} (limit {_gb(limit)}, half this machine's memory); lower --chunk or --workers")


def check_search_options(*, chunk_px: int = 1024, workers: int | None = None, max_cards: int = 0,
                         box_size_m: float = 6000.0) -> None:
    """The ranges of ``search``'s own options, for callers that bypass the command line.

    Raises
    ------
    ParameterError
        For a value outside its range (the command line refuses the same values itself).
    """
    lo, hi = CHUNK_PX_RANGE
    checks = [
        (_whole(chunk_px) and lo <= chunk_px <= hi, f"chunk_px={chunk_px!r} must be a whole number from {lo} to {hi} (--chunk)"),
        (workers is None or (_whole(workers) and workers >= 1), f"workers={workers!r} must be a whole number >= 1 (--workers)"),
        (_whole(max_cards) and max_cards >= 0, f"max_cards={max_cards!r} must be a whole number >= 0 (--cards)"),
        (_finite(box_size_m) and SEARCH_BOX_SIDE_M[0] <= box_size_m <= SEARCH_BOX_SIDE_M[1],
         f"box_size_m={box_size_m!r} must be from {SEARCH_BOX_SIDE_M[0]:g} to {SEARCH_BOX_SIDE_M[1]:g} m (--box-size)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ParameterError(f"search option {message}; fix the value")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# PlanetScope's describe() reads no raster header, so its bands are unknown until loaded: the
# 4-band delivery is assumed (an 8-band one doubles the samples, which the half-memory budget
# absorbs).
_UNKNOWN_BANDS = 4


def scene_shape(infos: Sequence[SceneInfo]) -> tuple[int, int]:
    """``(scenes, bands)`` for the memory estimates, from the scenes' metadata alone."""
    bands = max((len(i.bands) for i in infos), default=0)
    return len(infos), bands or _UNKNOWN_BANDS


def check_coreg_band(params: Params, bands: Sequence[str], *, where: str) -> None:
    """Refuse a ``coreg_band`` the scenes do not carry (before co-registration reads it).

    ``bands`` may be empty when the scenes' metadata does not list them: nothing is refused
    then, and the check runs again on the loaded stack.

    Raises
    ------
    ParameterError
        ``params.coreg_band`` is not among ``bands``.
    """
    names = [str(b) for b in bands]
    if names and params.coreg_band not in names:
        raise ParameterError(f"{where}: parameter coreg_band={params.coreg_band!r} but the scenes carry "
                             f"{', '.join(names)}; set coreg_band to one of them (red is the default)")


NIGHT_ELEVATION_DEG = -1.0
"""Sun elevation at the AOI below which no optical scene can have been taken (the horizon, less refraction's margin)."""


def refuse_night_scenes(scenes: Sequence[SceneRecord | SceneInfo], aoi: Aoi) -> None:
    """Refuse a scene whose stated time puts the sun below the AOI's horizon: reflectance is sunlight, so the time
    is wrong, most often a local time given as UTC, and every bracket dated from it would be too.

    Read from the scenes' metadata alone (``search`` checks them so before any chunk, ``detect`` once loaded)."""
    from pipeline.stages.sky import sun_angles

    centre = aoi.geometry.centroid
    for scene in scenes:
        # A date alone has no time of day to check; a simulated scene's time is the simulator's (the demo's 10:38 UTC,
        # on an AOI of one's own that asks for the demo anywhere), not a claim about the sky over the place.
        simulated = getattr(scene, "simulated", None)
        if simulated is None:
            simulated = bool(getattr(scene, "properties", {}).get("simulated", False))
        if not scene.time_of_day_known or simulated:
            continue
        when = scene.acquired.astimezone(timezone.utc)
        _, elevation = sun_angles(centre.x, centre.y, when)
        if elevation < NIGHT_ELEVATION_DEG:
            how = {"acquired-option": "as given with --acquired", "metadata": "as its metadata states"}.get(
                scene.time_source, f"as its {scene.time_source} states")
            first = next(iter(scene.files.values()), scene.scene_id)
            raise SceneError(f"{first}: acquired {when:%Y-%m-%dT%H:%M:%SZ} ({how}), when the sun stood {-elevation:.0f} "
                             f"degrees below the horizon at the AOI {aoi.name}: an optical scene is taken in daylight; check "
                             f"the time, in UTC (not local time), and give it again")
