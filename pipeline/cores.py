"""Independent CPU-bound work on every core, in forked processes that share the parent's arrays.

A village run spends most of its time in a few independent pieces of work: the shift of
each scene, the rendering of each figure. Threads do not help much there (the numerical
and drawing code holds the interpreter lock for long stretches); forked children do, and
they read the parent's stacks and figures without copying them. Only the results travel
back, pickled. :func:`fork_map` waits for them; :func:`fork_soon` starts one child and returns
at once, for work that needs only what exists already (the review page's scenes) while this
process goes on with work of one core (dating the burns).

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
import pickle
import signal
import sys
import tempfile
import threading
from typing import IO, Callable, Generic, TypeVar

from threadpoolctl import threadpool_limits

__all__ = ["fork_map", "fork_soon", "Pending"]

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


def _compute_and_write(task: Callable[[int], object], n: int, answer: IO[bytes], parent: int) -> None:
    """A :func:`fork_soon` child: every result, then all of them (or the error) pickled into ``answer``."""
    _die_with_parent(parent)
    try:
        message = ("done", [task(i) for i in range(n)])
    except BaseException as exc:  # noqa: BLE001 - carried to the parent, which raises it
        message = ("error", exc)
    try:
        data = pickle.dumps(message)
    except Exception as exc:  # noqa: BLE001 - what does not pickle: its words still travel
        data = pickle.dumps(("error", RuntimeError(f"the background work's answer does not pickle: {exc}"[:500])))
    answer.write(data)
    answer.flush()


def _unnamed_file() -> IO[bytes]:
    """A file with no name in any folder, gone when closed: in memory where the system allows (Linux), else an
    unlinked temporary file. What the scenes looked like never lands anywhere a name could find it."""
    if hasattr(os, "memfd_create"):
        try:
            return open(os.memfd_create("burnscan-background", os.MFD_CLOEXEC), "w+b")
        except OSError:
            pass  # refused (a sandbox, no memory left): a temporary file instead
    return tempfile.TemporaryFile()


class Pending(Generic[T]):
    """Results :func:`fork_soon` is computing in one forked child; :meth:`result` waits for them.

    The child writes its answer into an unnamed file (:func:`_unnamed_file`) and exits: it does not wait for
    this process to ask. While a child lives, every page this process writes that the two still
    share is copied first; a child waiting to hand its answer over through a pipe cost the
    polygon stage half a second of such copies.
    """

    def __init__(self, task: Callable[[int], T], n: int) -> None:
        self._task, self._n = task, n
        self._process: multiprocessing.process.BaseProcess | None = None
        self._answer: IO[bytes] | None = None
        self._results: list[T] | None = None
        if n and (os.cpu_count() or 1) >= 2 and _may_fork():
            context = multiprocessing.get_context("fork")
            try:
                self._answer = _unnamed_file()
                # A plain process, not a pool: a pool keeps threads running in this process, and a later
                # fork (fork_map) must find none here (a lock one of them held would stay locked in the child).
                process = context.Process(target=_compute_and_write, args=(task, n, self._answer, os.getpid()), daemon=True)
                process.start()
                self._process = process
            except OSError:  # no file for the answer, or no fork (out of memory, a process limit): done here, later
                self.cancel()

    def result(self) -> list[T]:
        """``[task(0), ..., task(n - 1)]``; raises what the task raised. Computed here when no child runs
        (no second core, ``BURNSCAN_NO_FORK``, or a child that died without an answer)."""
        if self._results is not None:
            return self._results
        if self._process is None:
            self._results = [self._task(i) for i in range(self._n)]
            return self._results
        assert self._answer is not None
        self._process.join()
        answered = self._process.exitcode == 0
        self._answer.seek(0)
        data = self._answer.read() if answered else b""
        self.cancel()
        if not data:  # the child was killed (out of memory...): the same work, here
            self._results = [self._task(i) for i in range(self._n)]
            return self._results
        kind, payload = pickle.loads(data)
        if kind == "error":
            raise payload
        self._results = payload
        return self._results

    def cancel(self, *, grace_s: float = 0.0) -> None:
        """Stop the child if it still runs (the caller no longer needs it); idempotent.

        ``grace_s`` is how long it may still finish first: a child writing files ends its own
        writes cleanly (their staging removed), where a killed one would leave them half done.
        """
        if self._process is not None:
            if grace_s > 0:
                self._process.join(timeout=grace_s)
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._process = None
        if self._answer is not None:
            self._answer.close()
            self._answer = None


def fork_soon(task: Callable[[int], T], n: int) -> Pending[T]:
    """Start computing ``[task(0), ..., task(n - 1)]`` in one forked child and return at once.

    For work that needs only what exists now, started while this process goes on with work
    of one core (dating a village): the other core draws meanwhile. ``task`` may close over
    large arrays (the child inherits them); results must pickle. Call :meth:`Pending.result`
    to get them, or :meth:`Pending.cancel` where they are no longer wanted. Under
    ``BURNSCAN_NO_FORK=1`` or on one core, nothing starts and ``result`` computes them here.
    """
    return Pending(task, n)
