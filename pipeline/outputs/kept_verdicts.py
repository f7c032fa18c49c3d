"""The plausibility verdicts on a run's scenes kept between runs, so that a re-run of the same scenes does not judge
them again.

Judging whether each scene's numbers can be ground (:mod:`pipeline.stages.plausibility`: the scale,
a constant fill, an NIR darker than the visible, two bands exchanged against the first scene) reads
every clear pixel of every scene: about two seconds of a warm village run, for the same verdicts as
the last run. They depend only on the scenes' pixels over the AOI, their clear masks, the band
names and the code, so they are kept in a :class:`pipeline.outputs.figure_cache.FigureCache` store
under a :func:`pipeline.outputs.figure_cache.content_key` of exactly those (the code through the
store's version of burnscan's source and libraries).

Nothing is trusted blindly: an entry is used only when the store checks it (its own key, every
file's SHA-256), and when it holds one verdict per scene, each a sentence or none, and exchanges
only of scenes that exist; anything else is judged again.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.outputs.figure_cache import FigureCache

__all__ = ["Verdicts", "keep_verdicts", "kept_verdicts"]

logger = logging.getLogger(__name__)

Verdicts = tuple[list[str | None], dict[int, str]]
"""Per scene, why its numbers cannot be ground (``None``: they can); and, by position, why a scene's bands read as
exchanged against the first plausible scene's."""


def keep_verdicts(store: FigureCache, key: str, verdicts: Verdicts) -> None:
    """Keep ``verdicts`` under ``key`` (an entry of words only, no file)."""
    refused, exchanged = verdicts
    store.put_files(key, {}, {"refused": list(refused), "exchanged": {str(i): why for i, why in exchanged.items()}})


def kept_verdicts(store: FigureCache, key: str, n_scenes: int) -> Verdicts | None:
    """The verdicts on ``n_scenes`` scenes kept under ``key``, checked; ``None`` when there are none that check."""
    found = store.get_entry(key)
    if found is None:
        return None
    files, meta = found
    try:
        return _checked(files, meta, n_scenes)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.info(f"kept plausibility verdicts {key[:12]} do not check ({exc}); the scenes are judged again")
        return None


def _checked(files: dict[str, bytes], meta: dict[str, Any], n_scenes: int) -> Verdicts:
    """The verdicts of an entry, or ValueError where it is not what :func:`keep_verdicts` writes for ``n_scenes`` scenes.

    >>> _checked({}, {"refused": [None, "constant"], "exchanged": {"1": "nir and swir22"}}, 2)
    ([None, 'constant'], {1: 'nir and swir22'})
    >>> _checked({}, {"refused": [None], "exchanged": {}}, 2)
    Traceback (most recent call last):
    ValueError: 1 verdicts for 2 scenes
    """
    refused, exchanged = meta["refused"], meta["exchanged"]
    if files or set(meta) != {"refused", "exchanged"}:
        raise ValueError("an entry that holds more than verdicts")
    if not isinstance(refused, list) or len(refused) != n_scenes:
        raise ValueError(f"{len(refused)} verdicts for {n_scenes} scenes")
    if not all(why is None or isinstance(why, str) for why in refused) or not isinstance(exchanged, dict):
        raise ValueError("a verdict that is neither a sentence nor none")
    positions = {}
    for where, why in exchanged.items():
        if not (isinstance(where, str) and where.isdigit() and int(where) < n_scenes and isinstance(why, str)):
            raise ValueError(f"an exchange of scene {where!r}")
        positions[int(where)] = why
    return list(refused), positions
