"""Independent CPU-bound work on every core, in forked processes that share the parent's arrays.

A village run spends most of its time in a few independent pieces of work: the shift of
each scene, the rendering of each figure. Threads do not help much there (the numerical
and drawing code holds the interpreter lock for long stretches); forked children do, and
they read the parent's stacks and figures without copying them. Only the results travel
back, pickled.

Forking is done only from the main thread of a process that may have children: never from
a worker thread (a lock another thread held at the fork would stay locked in the child) nor
from a daemon worker process (a Dask worker). There the same work runs one item at a time,
with the same results.

Workers die with their parent: on Linux each asks the kernel (``prctl(PR_SET_PDEATHSIG)``) to
be killed when the thread that forked it ends, so a run stopped with ``kill -9`` leaves no
worker behind still drawing figures into its ``.partial`` folder; a worker whose parent is
already gone when it starts exits at once.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from typing import Callable, TypeVar

from threadpoolctl import threadpool_limits

__all__ = ["fork_map"]

T = TypeVar("T")
_TASK: Callable[[int], object] | None = None


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Pool initializer: be killed when the parent dies; exit now if it already has.

    The death signal is asked for first, then the parent checked: a parent that died in
    between is seen by the check, one that dies after is caught by the kernel. Elsewhere than
    Linux there is no such call and this only checks.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no usable libc: the parent check below still applies
    if os.getppid() != parent:
        os._exit(0)
    # Each worker is one core's worth of work: a BLAS pool per worker as wide as the machine would have
    # two workers' threads fight over two cores and spin (seen: a third more time in co-registration).
    threadpool_limits(limits=1)


def _run(i: int) -> object:
    assert _TASK is not None
    return _TASK(i)


def _may_fork() -> bool:
    return ("fork" in multiprocessing.get_all_start_methods()
            and threading.current_thread() is threading.main_thread()
            and not multiprocessing.current_process().daemon
            and os.environ.get("BURNSCAN_NO_FORK", "") == "")


def fork_map(task: Callable[[int], T], n: int, *, workers: int | None = None) -> list[T]:
    """``[task(0), ..., task(n - 1)]``, computed on up to ``workers`` cores (default: all).

    ``task`` may be a closure over large arrays: children inherit them. Results must pickle.
    Set ``BURNSCAN_NO_FORK=1`` to run everything in this process.
    """
    workers = min(workers or os.cpu_count() or 1, n)
    if workers < 2 or not _may_fork():
        return [task(i) for i in range(n)]
    global _TASK
    _TASK = task
    try:
        # Created from this (main) thread, which lives until the results are in: the death signal
        # follows the thread that forked a worker, so it fires when this process dies.
        with multiprocessing.get_context("fork").Pool(workers, initializer=_die_with_parent,
                                                      initargs=(os.getpid(),)) as pool:
            return pool.map(_run, range(n), chunksize=1)
    finally:
        _TASK = None
