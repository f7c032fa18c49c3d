"""The error family of burnscan.

Every error a user can cause (a bad AOI name, a missing band, a scene that does not
cover the AOI...) is raised as one of these, with a message that names the file or
value, says what is wrong and says the fix. The command line turns them into one line
on stderr and a non-zero exit; it never shows a traceback for them.

The subclasses also inherit the matching builtin (``ValueError`` for bad values,
``OSError`` for unreadable files) so that callers who catch builtins keep working.
"""

from __future__ import annotations

import importlib
from numbers import Real
from types import ModuleType
from typing import Any

__all__ = [
    "PipelineError",
    "AoiError",
    "SceneError",
    "ParameterError",
    "OutputError",
    "BatchError",
    "IntegrityError",
    "RunError",
    "ExtraError",
    "import_extra",
    "json_kind",
]


class PipelineError(Exception):
    r"""Base of every error burnscan raises on purpose.

    The message is kept to one line whatever a library put into it (PROJ and GDAL messages
    can span lines).

    >>> str(PipelineError("a.tif: cannot be read (line one\n  line two); replace it"))
    'a.tif: cannot be read (line one line two); replace it'
    """

    exit_code = 2

    def __init__(self, message: str = "") -> None:
        super().__init__(" ".join(str(message).split()))


class AoiError(PipelineError, ValueError):
    """An AOI name or AOI file is invalid or unknown."""

    exit_code = 3


class SceneError(PipelineError, OSError):
    """A scene file is missing, unreadable, lacks a band or does not cover the AOI."""

    exit_code = 4


class ParameterError(PipelineError, ValueError):
    """A parameter value is out of range or of the wrong kind."""

    exit_code = 5


class OutputError(PipelineError, OSError):
    """An output could not be written (folder not writable, disk full...)."""

    exit_code = 6


class BatchError(PipelineError):
    """Some AOIs of a batch failed (each reported on its own line); the others completed."""

    exit_code = 7


class IntegrityError(PipelineError, ValueError):
    """A run folder does not match its manifest, its run log or its signature, or the manifest
    itself is not one burnscan can check."""

    exit_code = 8


class RunError(PipelineError):
    """A run stopped for a reason that is not a bad input: out of memory, or a defect in burnscan.

    The message is one line naming the incomplete run folder; the original exception is
    chained (``__cause__``) so that a handler can log its traceback.
    """

    exit_code = 9


class ExtraError(PipelineError, ImportError):
    """A command needs a package of an optional extra (``burnscan[review]``...) that is not installed."""

    exit_code = 10


def import_extra(module: str, *, package: str, extra: str, needed_by: str) -> ModuleType:
    """Import ``module`` of an optional extra, or say in one line which extra installs it.

    The review map, ``detect --all`` and ``fetch`` each need a package that nothing else
    does; importing it only where that command runs keeps the rest of burnscan working
    without it, and a missing one becomes a fix rather than a traceback.

    >>> import_extra("json", package="json", extra="none", needed_by="a doctest").__name__
    'json'
    >>> import_extra("no_such_module_x", package="x", extra="x", needed_by="burnscan x")
    Traceback (most recent call last):
    ...
    pipeline.errors.ExtraError: burnscan x needs the Python package x, which is not installed (No module named 'no_such_module_x'); install it with pip install 'burnscan[x]' (in a clone, make installs every extra)
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # Absent; or present but broken, or missing one of its own dependencies: the same fix reinstalls it.
        absent = isinstance(exc, ModuleNotFoundError) and exc.name == module.split(".")[0]
        raise ExtraError(f"{needed_by} needs the Python package {package}, which {'is not installed' if absent else 'does not import'} "
                         f"({exc}); install it with pip install 'burnscan[{extra}]' (in a clone, make installs every extra)") from None


def json_kind(value: Any) -> str:
    """What a value read from JSON is, with its article, for messages about a field of the wrong type.

    >>> [json_kind(v) for v in (True, 3.5, "x", [1], {}, None)]
    ['a boolean', 'a number', 'text', 'a list', 'an object', 'null']
    """
    if isinstance(value, bool):  # before numbers: JSON's true is no number, whatever Python says
        return "a boolean"
    if isinstance(value, Real):
        return "a number"
    kinds = {str: "text", list: "a list", tuple: "a list", dict: "an object", type(None): "null"}
    return next((text for kind, text in kinds.items() if isinstance(value, kind)), f"a {type(value).__name__}")
