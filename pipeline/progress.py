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
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, TypeVar

__all__ = ["Progress", "counted", "stage", "timed"]

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


def stage(what: str, *, logger: logging.Logger) -> None:
    """Say that the run has entered the stage ``what``: INFO inside :func:`timed`, DEBUG outside it.

    Parameters
    ----------
    what:
        The stage and what it works on (``"co-registration: 5 scenes onto the first"``).
    logger:
        The module logger of the work, so that the line says where it came from.
    """
    if _STARTED.get() is None:
        logger.debug(what)
    else:
        logger.info(_elapsed() + what)


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
