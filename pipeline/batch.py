"""Many AOIs at once: every AOI of the registry detected in parallel on a Dask cluster.

Investigators watch dozens of villages. Each AOI is one task running the whole
:func:`pipeline.run.run_detect` on a worker of a ``dask.distributed`` cluster: a local
cluster of worker processes by default, or an existing cluster reached through its
scheduler's address (``tcp://host:port``), unchanged. Workers must see the same
``aoi/``, ``data/`` and ``out/`` folders (one machine, or a shared file system).

Progress comes back as it happens: each worker publishes its log records as "AOI: stage"
events on a topic the client logs again, and each AOI is reported when it finishes. One AOI failing
(a bad AOI file, a corrupt scene, a full disk) is reported with its one-line error
and never stops the others; the batch then exits non-zero.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import check_parameters
from pipeline.errors import ParameterError, PipelineError, import_extra

__all__ = ["AoiOutcome", "run_many", "PROGRESS_TOPIC"]

CONNECT_TIMEOUT_S = 10
"""Seconds to keep trying a scheduler given with ``--scheduler`` before saying it cannot be reached."""

PROGRESS_TOPIC = "burnscan-progress"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AoiOutcome:
    """How one AOI of a batch ended."""

    aoi: str
    ok: bool
    seconds: float
    run_dir: str | None = None
    summary: str = ""
    error: str = ""
    exit_code: int = 0
    manifest_sha256: str = ""
    """SHA-256 of the run's manifest, as chained in the AOI's runs.log."""


class _Publisher(logging.Handler):
    """Worker side: the records of one AOI's run, published as events for the client to log.

    Only records of the thread running the AOI: a worker with several threads runs several AOIs
    at once, and each line must carry the name of the AOI it is about.
    """

    def __init__(self, worker: Any, aoi: str, level: int) -> None:
        super().__init__(level)
        self.worker, self.aoi, self.thread = worker, aoi, threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        # A worker thread in the client's own process (a threaded local cluster) would show the line twice:
        # once here without its AOI, once as the event. The mark tells the command line's handler to skip it.
        record.published_as_event = True
        try:
            self.worker.log_event(PROGRESS_TOPIC, {"aoi": self.aoi, "message": record.getMessage(), "level": record.levelno})
        except Exception:  # a lost line of progress must never fail the AOI
            self.handleError(record)


def _detect_one(aoi: str, options: dict[str, Any], level: int = logging.INFO) -> AoiOutcome:
    """Worker side: one AOI, its log records at ``level`` and above published as events, every error kept to one line."""
    from distributed import get_worker

    from pipeline.run import run_detect

    started = time.perf_counter()
    package = logging.getLogger("pipeline")
    try:
        publisher: logging.Handler | None = _Publisher(get_worker(), aoi, level)
    except ValueError:  # not on a worker (a synchronous scheduler): the records stay in this process's logging
        publisher = None
    if publisher is not None:
        package.handlers.insert(0, publisher)  # first, so that its mark is set before any other handler sees the record
        # A worker process has no logging set up: its package logger would drop INFO (the root's WARNING).
        if package.getEffectiveLevel() > level:
            package.setLevel(level)
    try:
        try:
            outcome = run_detect(aoi, **options)
        except PipelineError as exc:
            return AoiOutcome(aoi, False, time.perf_counter() - started, error=str(exc), exit_code=exc.exit_code)
        except Exception as exc:  # a defect must not take the other AOIs down with it
            return AoiOutcome(aoi, False, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}", exit_code=1)
        logger.info("done")
    finally:
        if publisher is not None:
            package.removeHandler(publisher)
    return AoiOutcome(aoi, True, time.perf_counter() - started, run_dir=str(outcome.run_dir),
                      summary=outcome.report["summary"], manifest_sha256=outcome.manifest_sha256)


def run_many(
    aois: list[str],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    **options: Any,
) -> list[AoiOutcome]:
    """Run :func:`pipeline.run.run_detect` for every AOI in ``aois`` on a Dask cluster.

    Parameters
    ----------
    aois
        AOI names (each is checked by the worker that runs it).
    scheduler
        Address of an existing cluster's scheduler (``tcp://host:port``); ``None`` starts a
        local cluster of ``workers`` processes (default: the machine's cores, at most one
        per AOI) and stops it afterwards.
    options
        Passed to :func:`pipeline.run.run_detect` (``out_root``, ``data_root``, ``aoi_dir``,
        ``overrides``, ``make_figures``...). Paths must mean the same on every worker.

    Returns
    -------
    list of AoiOutcome
        In the order of ``aois``.

    Each stage of each AOI is logged here as its worker logs it, prefixed with the AOI's name,
    and each AOI as it finishes.
    """
    # Only this command needs distributed (the batch extra): checked first, so that a missing one is said
    # once, as its fix, rather than as a traceback.
    import_extra("distributed", package="distributed", extra="batch", needed_by="burnscan detect --all")
    from distributed import Client, LocalCluster, as_completed

    if not aois:
        raise ParameterError("no AOI to run; add AOI files to the registry (burnscan aois lists it)")
    # Overrides apply to every AOI: a bad one is said once, before a cluster is started, rather
    # than by every worker. Each AOI's own file, grid and scenes are checked by run_detect on its worker.
    check_parameters(options.get("overrides") or {}, source="command line")
    options = {k: (Path(v).resolve() if isinstance(v, Path) else v) for k, v in options.items()}  # same on every worker
    cluster = None
    if scheduler is None:
        n = max(1, min(workers or os.cpu_count() or 1, len(aois)))
        # One single-threaded process per worker: the stages hold the GIL in places, and a
        # worker that dies takes only its AOI with it.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        address = cluster.scheduler_address
    else:
        address = scheduler
    try:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise ParameterError(f"{address}: cannot reach the Dask scheduler ({exc}); start it or fix --scheduler") from None
        with client:
            client.subscribe_topic(PROGRESS_TOPIC, _log_event)
            level = logger.getEffectiveLevel()  # workers send what would be shown here, no more
            futures = {client.submit(_detect_one, name, options, level, pure=False, key=f"burnscan-detect-{name}"): name
                       for name in aois}
            done: dict[str, AoiOutcome] = {}
            for future in as_completed(futures):
                name = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # the worker itself died (out of memory, killed)
                    result = AoiOutcome(name, False, 0.0, error=f"worker lost: {exc}", exit_code=1)
                done[name] = result
                state = f"done in {result.seconds:.0f} s: {result.run_dir}" if result.ok else f"FAILED: {result.error}"
                logger.info(f"[{len(done)}/{len(aois)}] {name} {state}")
            client.unsubscribe_topic(PROGRESS_TOPIC)
    finally:
        if cluster is not None:
            cluster.close()
    return [done[name] for name in aois]


def _log_event(event: tuple[float, dict[str, Any]]) -> None:
    """Client side: a worker's record logged again here, with the AOI it is about."""
    message = event[1]
    logger.log(int(message.get("level", logging.INFO)), f"{message['aoi']}: {message['message']}")
