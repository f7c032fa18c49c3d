"""Co-registration shifts kept between runs of the same scenes, so that a re-run does not search again.

Searching for a scene's shift is most of a village run's co-registration. The estimate
depends only on the two images and masks it reads and on the code that reads them, so it is
kept under :func:`pipeline.stages.coregister.shift_key` (a SHA-256 of those inputs, bit for
bit) in a folder named after the code: the source of :mod:`pipeline.stages.coregister` and the
numpy and scipy versions. Nothing is trusted blindly: an entry whose file does not parse,
whose key is not its own, or whose numbers are not finite is ignored, and the stage itself
accepts a kept shift only where one refinement step from it stays put
(:func:`pipeline.stages.coregister.confirm_shift`); else the shift is searched again. A shift
that cannot be kept (disk full, folder not writable) costs the next run its search, never
this run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import re
import stat
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from pipeline.errors import OutputError
from pipeline.outputs.write import write_json
from pipeline.stages import coregister
from pipeline.stages.coregister import ShiftEstimate

__all__ = ["ShiftCache", "checked_record", "code_version"]

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{64}")
_MAX_ENTRY_BYTES = 64 * 1024  # an entry is a few hundred bytes
_FIELDS = dict(ShiftEstimate.__annotations__)  # field name -> its type's name


def checked_record(kind: type, values: dict[str, Any]) -> Any:
    """``kind(**values)`` for a dataclass of numbers, flags and words read back from JSON, when ``values`` has exactly
    its fields, each of its type, numbers finite; else ValueError (a kept entry that is not what was kept).

    >>> checked_record(ShiftEstimate, {**ShiftEstimate(1.5, 0.0).as_dict(), "dy": float("inf")})
    Traceback (most recent call last):
    ValueError: ShiftEstimate.dy = inf
    """
    fields = {f.name: f.type for f in dataclasses.fields(kind)}
    if set(values) != set(fields):
        raise ValueError(f"{kind.__name__} with fields {sorted(values)}")
    for name, kind_of in fields.items():
        type_name = kind_of if isinstance(kind_of, str) else kind_of.__name__
        value = values[name]
        ok = {"float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "str": isinstance(value, str)}.get(type_name, False)
        if not ok:
            raise ValueError(f"{kind.__name__}.{name} = {value!r}")
    return kind(**values)


def code_version() -> str:
    """Short SHA-256 of the co-registration code and the numerical libraries under it."""
    digest = hashlib.sha256(Path(coregister.__file__).read_bytes())
    digest.update(f"numpy {np.__version__} scipy {scipy.__version__}".encode("ascii"))
    return digest.hexdigest()[:16]


class ShiftCache(MutableMapping[str, ShiftEstimate]):
    """Reliable shift estimates under ``folder/<code version>/<key>.json`` (one small file each, written atomically)."""

    def __init__(self, folder: Path) -> None:
        self.root = Path(folder)
        self.folder = self.root / code_version()

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):  # a key is a SHA-256 in hex, never a path
            raise KeyError(key)
        return self.folder / f"{key}.json"

    def __getitem__(self, key: str) -> ShiftEstimate:
        path = self._path(key)
        try:
            info = path.lstat()  # a link, pipe or device in its place is no entry (and a pipe would never end)
            if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_ENTRY_BYTES:
                raise KeyError(key)
            entry = json.loads(path.read_text(encoding="utf-8"))
            values = {name: entry[name] for name in _FIELDS}
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
            raise KeyError(key) from None
        try:
            if entry.get("key") != key:
                raise ValueError("another key")
            return checked_record(ShiftEstimate, values)
        except ValueError:
            logger.debug(f"{path}: not a kept shift for its key; the shift is searched again")
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: ShiftEstimate) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, {"key": key, **value.as_dict()}, root=self.root)
        except (OSError, OutputError) as exc:
            logger.warning(f"{path}: the shift could not be kept ({exc}); the next run of these scenes searches it again")

    def __delitem__(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[str]:
        return (p.stem for p in sorted(self.folder.glob("*.json")) if _KEY.fullmatch(p.stem))

    def __len__(self) -> int:
        return sum(1 for _ in self)
