"""Names that become paths: the one place they are checked.

Ids from providers (a STAC item's ``id``, Planet scene ids, Landsat product ids), names that
burnscan derives from users' files (a plain GeoTIFF's scene id, a fire archive's kept name, a
zip's unpacked folder), AOI names and run ids all end up as file or folder names. A hostile
or merely careless one (``../../out/ogota/<run>/manifest``, ``a/b/c``, a name with a NUL or a
newline, ``CON`` on a drive later opened on Windows) must never choose where burnscan writes.

- :func:`safe_name` refuses a name that is not one plain file name of a conservative
  character set. Ids that come from a provider go through it: they are evidence, so an
  unsafe one is refused, never silently renamed.
- :func:`derived_name` turns a name burnscan makes from a user's file name into a safe one,
  deterministically (the same file name always gives the same name, and two different file
  names never give the same one), so ordinary names with spaces keep working.
- :func:`path_inside` joins checked names onto a folder and refuses the result unless it
  resolves, symbolic links followed, inside that folder.
- :func:`aoi_name` is the stricter rule of the AOI registry (lowercase, no dots).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from pipeline.errors import AoiError, PipelineError, SceneError

__all__ = ["AOI_NAME_PATTERN", "MAX_NAME_CHARS", "aoi_name", "derived_name", "path_inside", "safe_name"]

MAX_NAME_CHARS = 200
"""Longest name accepted: file systems stop at 255 bytes, and burnscan adds prefixes and suffixes."""

_MAX_AOI_CHARS = 64
AOI_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,%d}" % (_MAX_AOI_CHARS - 1))
"""AOI registry names: lowercase ASCII letters, digits, ``-`` and ``_``, at most 64 characters."""
# The same characters at any length: a name that only breaks the length limit is told so.
_AOI_CHARACTERS = re.compile(r"[a-z0-9][a-z0-9_-]*")

# ASCII only: look-alike letters (a Cyrillic 'а', a full-width '／' or a division slash '∕')
# would otherwise give two names that read the same in a report and are different files.
_SAFE = re.compile(r"[A-Za-z0-9._+-]+")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._+-]+")
# Names Windows reserves whatever the extension: evidence folders are often copied to Windows.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_SHOWN_CHARS = 60


def _shown(name: object) -> str:
    """The value as the message shows it: repr, truncated, always one line."""
    text = repr(name)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS - 5]}...{text[-2:]} ({len(str(name))} characters)"


def _problem(name: object) -> str | None:
    """Why ``name`` cannot be a file name, or None."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return "it names a folder itself or its parent"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it holds a NUL or control character"
    if len(name) > MAX_NAME_CHARS:
        return f"it is {len(name)} characters long (at most {MAX_NAME_CHARS})"
    if name.startswith("."):
        return "it starts with a dot (a hidden file)"
    if not _SAFE.fullmatch(name):
        bad = sorted({c for c in name if not _SAFE.fullmatch(c)})
        return f"it holds {', '.join(repr(c) for c in bad[:5])}, outside ASCII letters, digits, '.', '_', '-' and '+'"
    if name.startswith("-"):
        return "it starts with '-' (read as an option by command-line tools)"
    if name.endswith("."):
        return "it ends with a dot (dropped by Windows)"
    if name.split(".")[0].upper() in _RESERVED:
        return "it is a device name reserved by Windows"
    return None


def safe_name(name: str, *, what: str, source: object = None, error: type[PipelineError] = SceneError) -> str:
    """Return ``name`` unchanged if it is one plain file name, else raise ``error``.

    Accepted: 1 to 200 ASCII letters, digits, ``.``, ``_``, ``-`` and ``+``, not starting with a
    dot or ``-``, not ending with a dot, not a device name Windows reserves (``CON``,
    ``NUL``, ``COM1``...). Everything else is refused: empty, ``.`` and ``..``, path separators,
    NUL and control characters, spaces, non-ASCII letters (look-alikes), over-long names.

    Parameters
    ----------
    name:
        The candidate name.
    what:
        What the name is, for the message (``"STAC item id"``, ``"scene id"``...).
    source:
        The file the name was read from, named first in the message.
    error:
        The :class:`~pipeline.errors.PipelineError` subclass to raise.

    Raises
    ------
    PipelineError
        ``error``, one line: the source, the value (repr, truncated), why, and the fix.

    Examples
    --------
    >>> safe_name("S2B_30PVT_20240128_0_L2A", what="STAC item id")
    'S2B_30PVT_20240128_0_L2A'
    >>> safe_name("../../out/ogota/manifest", what="STAC item id", source="item.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.SceneError: item.json: STAC item id '../../out/ogota/manifest' cannot be used as a file name (it holds a path separator); ...
    """
    problem = _problem(name)
    if problem is None:
        return name
    where = f"{source}: " if source is not None else ""
    raise error(f"{where}{what} {_shown(name)} cannot be used as a file name ({problem}); "
                f"burnscan keeps ids as given, so correct it at its source to ASCII letters, digits, '.', '_', '-' or '+' "
                f"(at most {MAX_NAME_CHARS} characters)")


def derived_name(name: str) -> str:
    """A safe file name made from ``name`` (a user's file or folder name), the same every time.

    A name that :func:`safe_name` accepts is returned unchanged. Any other has each run of
    characters outside the safe set replaced by ``_`` (letters with accents lose them first),
    is cut to 150 characters, and gets ``-`` and 8 hex digits of its SHA-256 appended, so two
    different names never give the same result (``a b`` and ``a_b`` stay apart).

    Examples
    --------
    >>> derived_name("5_INCIDENT_20240715")
    '5_INCIDENT_20240715'
    >>> derived_name("Ségou export (1)")
    'Segou_export_1-7b949c31'
    """
    if _problem(name) is None:
        return name
    text = str(name)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE_RUN.sub("_", ascii_text).strip("._-")[:150].rstrip("._-")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    candidate = f"{slug}-{digest}" if slug else f"unnamed-{digest}"
    return candidate if _problem(candidate) is None else f"unnamed-{digest}"  # e.g. a slug that is a device name


def path_inside(root: Path, *names: str, what: str = "name", source: object = None,
                error: type[PipelineError] = SceneError) -> Path:
    """``root / names[0] / names[1] ...`` after checking each name and where the whole resolves.

    Each name must pass :func:`safe_name`; then the joined path is resolved (symbolic links
    followed, as the operating system would when writing) and refused unless it lies inside
    ``root`` resolved. The path is returned as joined, not resolved, so messages show it as
    the user knows it.

    Raises
    ------
    PipelineError
        ``error``, one line, for a bad name or a path that resolves outside ``root``.

    Examples
    --------
    >>> path_inside(Path("data"), "ogota", "reviews.json")
    PosixPath('data/ogota/reviews.json')
    """
    for name in names:
        safe_name(name, what=what, source=source, error=error)
    path = Path(root).joinpath(*names)
    where = f"{source}: " if source is not None else ""
    try:
        base = Path(root).resolve()
        resolved = path.resolve()
    except RuntimeError:  # pathlib's word for a loop of symbolic links
        raise error(f"{where}{path}: a symbolic link on the way loops back on itself; remove the link") from None
    if names and (resolved == base or not resolved.is_relative_to(base)):
        raise error(f"{where}{path} resolves to {resolved}, outside {root} (a symbolic link points elsewhere); "
                    f"remove the link or choose another folder")
    return path


def aoi_name(name: str) -> str:
    """Return ``name`` if it is a registry name (lowercase letters, digits, ``-``, ``_``), else raise :class:`AoiError`.

    Stricter than :func:`safe_name`: no dots, no capitals, at most 64 characters, so an AOI
    name reads the same everywhere and is never a path.
    """
    if isinstance(name, str) and len(name) > _MAX_AOI_CHARS and _AOI_CHARACTERS.fullmatch(name):
        raise AoiError(f"AOI name {_shown(name)} is not allowed: it is over the "
                       f"{_MAX_AOI_CHARS}-character limit of AOI names; give a shorter name (for example 'ogota')")
    if not isinstance(name, str) or not AOI_NAME_PATTERN.fullmatch(name):
        raise AoiError(
            f"AOI name {_shown(name)} is not allowed: use up to {_MAX_AOI_CHARS} lowercase letters, digits, '-' or '_' "
            f"(for example 'ogota'); list the registry with `burnscan aois`"
        )
    return name
