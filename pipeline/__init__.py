"""burnscan: find and date burned villages on before/after infrared satellite scenes.

The folders are the flow (see docs/ARCHITECTURE.md):

================  ====================================================================
``readers/``      scenes, catalogues, vector layers and fire archives, checked before use
``stages/``       pure functions on arrays: plausibility, coregister, normalise, indices,
                  change, threshold, dating, polygons, perimeter, structures, corroborate,
                  confidence, clusters
``run``           the flow: ``calibrate`` once, ``apply`` to the whole AOI or each chunk
``outputs/``      figures, reports, vectors, atomic writes
``provenance/``   manifest, run log, signatures, verify, compare
``sim/``          the simulator: SIMULATED scenes, the demo, the search box
``bench/``        accuracy and speed benchmarks, with the baselines
================  ====================================================================

Around the flow: ``cli`` (the door), ``aoi`` (the registry), ``config`` (parameters),
``preflight`` (what a run checks before its work), ``model`` (the data types), ``chunked``,
``search`` and ``batch`` (large areas and many AOIs), ``review`` (analysts' decisions),
``evidence`` (structures, fires, confidence for one run), ``rerun``, ``names``, ``grid``,
``cores``, ``progress`` and ``errors``.
"""

import os as _os

# Before numpy is imported (it reads this once): numpy asks the kernel for 2 MB pages on every array
# of 4 MB or more, and a kernel that compacts memory to find them at once (transparent huge pages with
# defrag "madvise", as on the development machine) spends more time on that than the pages save: a
# warm `burnscan detect ogota` took 12.9-13.0 s with 4 KB pages against 14.0-14.7 s (three runs each,
# alternated), and the quarter tile pair 24.6 s against 23.9 s (medians of three, within the day's
# spread). An explicit NUMPY_MADVISE_HUGEPAGE=1 keeps the 2 MB pages; see docs/PERFORMANCE.md.
_os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

from pipeline.aoi import Aoi, list_aois, load_aoi
from pipeline.config import Params, resolve_params
from pipeline.errors import AoiError, OutputError, ParameterError, PipelineError, SceneError
from pipeline.model import Calibration, Detection

__all__ = [
    "Aoi",
    "AoiError",
    "Calibration",
    "Detection",
    "OutputError",
    "Params",
    "ParameterError",
    "PipelineError",
    "SceneError",
    "apply",
    "calibrate",
    "detect_burns",
    "list_aois",
    "load_aoi",
    "resolve_params",
    "run_detect",
]

# The flow's entry points are loaded on first use (PEP 562): importing them pulls in every stage,
# scipy, scikit-image and geopandas, about a second, which every command paid at start-up through
# `import pipeline.cli` although `verify`, `scenes`, `add` or a refusal never runs the flow.
_FLOW = frozenset({"apply", "calibrate", "detect_burns", "run_detect"})


def __getattr__(name: str):
    if name in _FLOW:
        from pipeline import run

        return getattr(run, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
