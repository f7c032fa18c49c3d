"""burnscan: find and date burned villages on before/after infrared satellite scenes.

The flow, one module per stage (the order lives in :mod:`pipeline.run`):

==============  =====================================================================
``load``        scenes onto the AOI grid, with quality mask, time and file hashes
``coregister``  sub-pixel shift of every scene to a reference, burns kept out
``normalise``   per-band gain/offset to the reference, fitted on unchanged pixels
``indices``     burn index per scene (NIR drop without SWIR, NBR with it)
``change``      difference with each pixel's last clear observation
``threshold``   noise-adaptive burn mask with mixed-pixel rule and minimum unit
``dating``      first-seen date and last-clear bracket of every burned pixel
``polygons``    burned-area polygons with equal-area hectares
``report``      per-date reading, report.json / report.md
``figures``     before/after false-colour pairs and overlays
==============  =====================================================================

Around them: ``aoi`` (the registry), ``config`` (parameters), ``preflight`` (what a run checks
before its work: grid size and memory, options, the scenes' bands), ``simulate`` (with its parts
``materials``, ``ground``, ``sky``, ``imaging`` and ``truth``), ``scenarios`` and ``demo`` (the
simulated demo and hard cases), ``search_box`` (the simulated search box, with its part
``search_ground``), ``chunked`` (large areas chunk by chunk), ``clusters`` and ``search`` (the
wide-area search), ``batch`` (many AOIs on Dask), ``names`` (names that become paths),
``write`` (atomic outputs, never outside their folder),
``evaluate`` (accuracy metrics), ``baselines`` and ``bench`` (the benchmark, not the
pipeline), ``provenance`` (versions, compare, re-run), ``manifest``, ``runlog``, ``signing``
and ``verify`` (what a run claims about itself and everything that checks it), ``errors``
and ``cli``.
"""

from pipeline.aoi import Aoi, list_aois, load_aoi
from pipeline.config import Params, resolve_params
from pipeline.errors import AoiError, OutputError, ParameterError, PipelineError, SceneError
from pipeline.run import Detection, detect_burns, run_detect

__all__ = [
    "Aoi",
    "AoiError",
    "Detection",
    "OutputError",
    "Params",
    "ParameterError",
    "PipelineError",
    "SceneError",
    "detect_burns",
    "list_aois",
    "load_aoi",
    "resolve_params",
    "run_detect",
]
