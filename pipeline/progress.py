"""How far long work has got: the stage a run is in, and one "k of n" counter for chunks, scenes and cases.

A search over hundreds of chunks or a detection over dozens of scenes runs for minutes; the
user needs to see it move, but a line per unit would bury the messages that matter. So the
count is logged at INFO on the first unit, at every tenth of the total and on the last (at
most a dozen lines whatever the total), and at DEBUG for every other unit (``burnscan -v``).
It goes through :mod:`logging`, never to a terminal directly: the command line decides where
it is shown and ``burnscan -q`` hides it, and a log file or a batch worker receives plain lines
instead of carriage returns.

A village run (``burnscan detect``) spends most of a minute in stages that each take seconds:
inside :func:`timed` each :func:`stage` is said at INFO with the seconds since the run began
(``[12.3 s] co-registration: ...``), and so is every count. Outside it (a chunk analysed on a
worker thread, which starts with a fresh context) the same calls are DEBUG lines, so a search
over hundreds of chunks does not repeat the stages of each.

Example
-------
>>> import logging
>>> chunks = Progress(40, "chunks done", logger=logging.getLogger("pipeline.chunked"))
>>> for _ in range(40):
...     chunks.advance()  # INFO at 1, 4, 8, ..., 40 of 40
"""

from __future__ import annotations

import logging
import re
import resource
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

__all__ = ["Progress", "StageClock", "StageTime", "counted", "mark_stage", "profiled", "stage", "stage_done",
           "timed"]

T = TypeVar("T")

# When the timed work began (time.perf_counter), or None outside it. A context variable, not a
# global: batch runs and tests run several at once, and worker threads start without it.
_STARTED: ContextVar[float | None] = ContextVar("burnscan_progress_started", default=None)


@contextmanager
def timed(started: float | None = None) -> Iterator[None]:
    """Within the block, :func:`stage` lines and counts are INFO and carry the seconds since ``started``.

    ``started`` is a :func:`time.perf_counter` reading (default: now), so a run that did its
    checks before the block still counts from its own start.
    """
    token = _STARTED.set(time.perf_counter() if started is None else started)
    try:
        yield
    finally:
        _STARTED.reset(token)


def _elapsed() -> str:
    """``"[12.3 s] "`` inside :func:`timed`, else nothing."""
    started = _STARTED.get()
    return "" if started is None else f"[{time.perf_counter() - started:.1f} s] "


@dataclass
class StageTime:
    """What one stage cost over a run: seconds on the clock of the threads that ran it (summed over
    threads: chunks analysed on two threads at once count twice), CPU seconds (with the forked
    workers it waited for), bytes read and written through system calls while it ran (the
    process's, so on threads running side by side each stage also sees the others'), and how
    many times it was entered (once per chunk on a large area)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    read_bytes: int = 0
    written_bytes: int = 0
    entries: int = 0


def _io_bytes() -> tuple[int, int]:
    """Bytes this process has read and written through system calls (``rchar``, ``wchar``; 0 where unknown)."""
    try:
        with open("/proc/self/io", encoding="ascii") as io:
            fields = dict(line.split(":", 1) for line in io.read().splitlines() if ":" in line)
        return int(fields.get("rchar", 0)), int(fields.get("wchar", 0))
    except OSError:
        return 0, 0


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


class StageClock:
    """Where a run's time goes, stage by stage (:func:`profiled`).

    Every :func:`stage` call on a thread ends that thread's previous stage and starts the new
    one, under the stage's name (its text up to the first colon, numbers as ``N``: "co-registration",
    "threshold and dating", "loading N scenes onto N x N px"); :meth:`finish` ends the stages
    still open. CPU is the thread's own, plus, on the main thread, that of the forked workers
    it reaped (:mod:`pipeline.cores` forks only from there).
    """

    def __init__(self) -> None:
        self.stages: dict[str, StageTime] = {}
        self._open: dict[int, tuple[str, float, float, tuple[int, int]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _reading() -> tuple[float, float, tuple[int, int]]:
        main = threading.current_thread() is threading.main_thread()
        return time.perf_counter(), time.thread_time() + (_children_cpu() if main else 0.0), _io_bytes()

    def _close(self, thread: int, wall: float, cpu: float, io: tuple[int, int]) -> None:
        if thread not in self._open:
            return
        name, wall0, cpu0, io0 = self._open.pop(thread)
        spent = self.stages.setdefault(name, StageTime())
        spent.wall_s += wall - wall0
        spent.cpu_s += cpu - cpu0
        spent.read_bytes += io[0] - io0[0]
        spent.written_bytes += io[1] - io0[1]
        spent.entries += 1

    def enter(self, what: str) -> None:
        """End this thread's stage and start ``what``."""
        name = re.sub(r"\d+(\.\d+)?", "N", what.split(":", 1)[0]).strip()
        reading = self._reading()
        thread = threading.get_ident()
        with self._lock:
            self._close(thread, *reading)
            self._open[thread] = (name, *reading)

    def leave(self) -> None:
        """End this thread's stage without starting another (a chunk is done: the wait for the next is no stage)."""
        reading = self._reading()
        with self._lock:
            self._close(threading.get_ident(), *reading)

    def finish(self) -> None:
        """End every open stage (the last one of each thread) now."""
        wall, _, io = self._reading()
        with self._lock:
            for thread in list(self._open):
                # Another thread's CPU cannot be read from here: its last stage is ended with what it had then.
                cpu = self._reading()[1] if thread == threading.get_ident() else self._open[thread][2]
                self._close(thread, wall, cpu, io)


_CLOCK: StageClock | None = None  # module-wide, not a context variable: worker threads report to it too


@contextmanager
def profiled() -> Iterator[StageClock]:
    """Within the block, every :func:`stage` on any thread is timed by the :class:`StageClock` yielded.

    For the performance benchmark (``burnscan bench-perf --profile``): one profiled run per process.
    """
    global _CLOCK
    clock = StageClock()
    _CLOCK = clock
    try:
        yield clock
    finally:
        clock.finish()
        _CLOCK = None


def stage(what: str, *, logger: logging.Logger) -> None:
    """Say that the run has entered the stage ``what``: INFO inside :func:`timed`, DEBUG outside it.

    Parameters
    ----------
    what:
        The stage and what it works on (``"co-registration: 5 scenes onto the first"``).
    logger:
        The module logger of the work, so that the line says where it came from.
    """
    if _CLOCK is not None:
        _CLOCK.enter(what)
    if _STARTED.get() is None:
        logger.debug(what)
    else:
        logger.info(_elapsed() + what)


def mark_stage(what: str) -> None:
    """Start the stage ``what`` for a profiled run (:func:`profiled`) without a log line: for work that says
    where it is in its own words (a large area's calibration, chunks and seams)."""
    if _CLOCK is not None:
        _CLOCK.enter(what)


def stage_done() -> None:
    """Say that this thread's stage is over without another starting (the end of a chunk's work), so a
    profiled run (:func:`profiled`) does not count the wait for the next chunk to it."""
    if _CLOCK is not None:
        _CLOCK.leave()


class Progress:
    """Count units of work done and log ``"<what>: k of n"`` at a rate a person can read.

    Parameters
    ----------
    total:
        Units of work expected (chunks, scenes, cases).
    what:
        What a unit done is called, the start of each line (``"chunks done"``).
    logger:
        The module logger of the work, so that the line says where it came from.
    """

    def __init__(self, total: int, what: str, *, logger: logging.Logger) -> None:
        self.total, self.what, self.logger = max(int(total), 0), what, logger
        self.done = 0
        self._next_tenth = 1

    def advance(self, count: int = 1, *, note: str = "") -> None:
        """Record ``count`` more units done; log the count at INFO on a new tenth, else at DEBUG.

        ``note`` names what was just done (a scene id), in brackets after the count.
        """
        self.done += count
        line = _elapsed() + f"{self.what}: {self.done} of {self.total}" + (f" ({note})" if note else "")
        # Integer arithmetic: a tenth is crossed when done / total >= step / 10, exactly, at any total.
        if self.done == count or self.done >= self.total or self.done * 10 >= self._next_tenth * self.total:
            self._next_tenth = self.done * 10 // max(self.total, 1) + 1
            self.logger.info(line)
        else:
            self.logger.debug(line)


def counted(items: Iterable[T], what: str, *, logger: logging.Logger, total: int | None = None,
            label: Callable[[T], str] | None = None) -> Iterator[T]:
    """Yield ``items``, counting each as done when the next one is asked for (or the loop ends).

    ``[load(s) for s in counted(sources, "scenes loaded", logger=logger)]`` says how far the
    loop has got without changing its body. ``total`` defaults to ``len(items)``; ``label``
    names each item in its line.
    """
    progress = Progress(len(items) if total is None else total, what, logger=logger)  # type: ignore[arg-type]
    for item in items:
        yield item
        progress.advance(note=label(item) if label is not None else "")
