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

from pipeline.aoi import Aoi, list_aois, load_aoi
from pipeline.config import Params, resolve_params
from pipeline.errors import AoiError, OutputError, ParameterError, PipelineError, SceneError
from pipeline.model import Calibration, Detection
from pipeline.run import apply, calibrate, detect_burns, run_detect

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
