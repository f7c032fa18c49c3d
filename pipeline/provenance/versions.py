"""Who and what produced a run: code version, git state, library versions.

A finding must be re-runnable by someone else; that needs the exact code (commit and
whether the tree had uncommitted changes) and the versions of the numeric libraries,
since a GDAL or scikit-image upgrade can move a pixel. :func:`pipeline.provenance.verify.verify_run` checks a run
folder against its ``manifest.json``, inputs and run log (:mod:`pipeline.provenance.verify`);
:func:`pipeline.rerun.rerun` runs it again from that manifest into a new folder and :func:`pipeline.provenance.compare.compare_runs`
says which outputs came out the same. Every manifest is read through the validated
reader of :mod:`pipeline.provenance.manifest`.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["package_versions", "git_state", "code_version"]

_PACKAGES = ("burnscan", "numpy", "scipy", "rasterio", "xarray", "scikit-image", "geopandas", "shapely", "pyproj", "pyogrio", "matplotlib")
_REPO = Path(__file__).resolve().parents[2]
_LOCK = _REPO / "requirements.lock"


def package_versions() -> dict[str, str]:
    """Installed versions of burnscan and its numeric dependencies (and GDAL, PROJ).

    Run from a checkout, also the SHA-256 of its ``requirements.lock``: with the commit, it names
    the whole pinned set ``make`` installs for this code, not only the numeric libraries listed.
    """
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        import rasterio
        from pyproj import proj_version_str

        versions["gdal"] = rasterio.__gdal_version__
        versions["proj"] = proj_version_str
    except ImportError:
        pass
    if _LOCK.is_file():  # absent where burnscan was installed as a package rather than run from a clone
        versions["requirements.lock"] = f"sha256:{hashlib.sha256(_LOCK.read_bytes()).hexdigest()}"
    return versions


def git_state() -> dict[str, str | bool | None]:
    """Commit of the code that runs, and whether its tree had uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def code_version() -> str:
    """``burnscan <version> (<commit>[+dirty])``."""
    state = git_state()
    commit = (state["commit"] or "unknown")[:12]
    dirty = "+dirty" if state["dirty"] else ""
    return f"burnscan {package_versions().get('burnscan', '?')} ({commit}{dirty})"



"""Report and manifest fields that name or time one run, or give the git state it ran from."""




