"""Shared fixtures: where the shared real data lives, one small run per session, the command line in
process, and a non-interactive plotting backend.

The builders behind them are plain functions in ``tests/factories.py`` (``make fuzz`` uses them
outside pytest too); test modules import builders from there, never from each other.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from pathlib import Path
from typing import Callable, Iterator

import pytest

import pipeline  # noqa: F401  (first: it sets numpy's page policy before numpy is imported, as `burnscan` does)
from factories import SHARED_DATA, CliResult, SmallRun, make_small_run, run_cli, tree_digest

os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under `make test` each core runs a test worker, as each core runs one of burnscan's own workers
    # (pipeline.cores): a BLAS pool per worker as wide as the machine has two workers' threads fight
    # over two cores and spin. One thread each, here and in the commands a test starts (measured on
    # three test files: 7 % less wall and CPU time).
    from threadpoolctl import threadpool_limits

    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")
    threadpool_limits(limits=1)


# The files that take longest (summed test times, measured under `make test`), longest first. Under
# `make test` the workers take files in collection order (the Makefile turns off xdist's own order, by
# how many tests a file holds, which left the longest files to the end: one core busy with one of them
# while the other had nothing left). Only an order: a file missing here runs after these, as before.
_LONGEST_FILES = ("test_integrity.py", "test_search.py", "test_notebooks.py", "test_figures_attach.py",
                  "test_perf_bench.py", "test_hostile_paths.py", "test_verify.py", "test_scenarios.py",
                  "test_search_box.py", "test_end_to_end.py", "test_real_walk.py")


@pytest.fixture(autouse=True)
def _one_process_per_test_worker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``make test`` each core already runs a test worker: work a test forks onto "every core"
    only queues behind the other worker, and forking a large test process costs seconds of
    system time. There a test runs its work in its own process (``BURNSCAN_NO_FORK``, the same
    results by :func:`pipeline.cores.fork_map`'s contract). The session's small run is made before
    this applies (by one worker, for all), so one whole run with figures still forks on every
    core; tests of forking itself are marked ``forks``.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") and request.node.get_closest_marker("forks") is None:
        monkeypatch.setenv("BURNSCAN_NO_FORK", "1")



@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``, or skip where this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present: real-data tests need ../shared/data beside the project")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Iterator[SmallRun]:
    """One complete run of the small simulated AOI, with figures, made once for the whole session.

    Read it, never change it: its run folder, run log, AOI file and scenes are shared by every
    module. A test that changes the outputs works on ``copy_small_run(small_run, tmp_path)``;
    one that tampers with an input makes its own run (``make_small_run``). Held to that: a
    test that changed, added or removed any file of it fails the session at teardown.
    """
    run = _made_once(tmp_path_factory)
    before = tree_digest(run.root)
    yield run
    after = tree_digest(run.root)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, (f"the session's small run was changed by a test ({', '.join(changed[:5])}): "
                         "a test that changes it must work on copy_small_run(small_run, tmp_path)")


def _made_once(tmp_path_factory: pytest.TempPathFactory) -> SmallRun:
    """The small run, made by the first worker that needs it and loaded by the others (under ``make test``
    every core runs a worker, and each made its own: a dozen seconds of both cores for the same files)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make_small_run(tmp_path_factory.mktemp("small-run"))
    shared = tmp_path_factory.getbasetemp().parent / "small-run-shared"  # the session's folder, above every worker's
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here while the first makes it
        made = shared / "small_run.pickle"
        if made.is_file():
            return pickle.loads(made.read_bytes())
        run = make_small_run(shared / "run")
        made.write_bytes(pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))
        return run


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    """``cli("detect", ...)``: burnscan in process, returning ``(code, out, err)``."""
    return lambda *argv: run_cli(capsys, *argv)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the session run is slow: run alone, it waits for the run (tens of seconds).
    The longest files go first, each file's tests in their own order (a stable sort)."""
    for item in items:
        if "small_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(_LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
