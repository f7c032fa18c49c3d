"""Who and what produced a run: code version, git state, library versions.

A finding must be re-runnable by someone else; that needs the exact code (commit and
whether the tree had uncommitted changes) and the versions of the numeric libraries,
since a GDAL or scikit-image upgrade can move a pixel.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["package_versions", "git_state", "code_version", "verify_run"]

_PACKAGES = ("burnscan", "numpy", "scipy", "rasterio", "xarray", "rioxarray", "scikit-image", "geopandas", "shapely", "pyproj", "pyogrio", "matplotlib")
_REPO = Path(__file__).resolve().parent.parent


def package_versions() -> dict[str, str]:
    """Installed versions of burnscan and its numeric dependencies (and GDAL, PROJ)."""
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


def verify_run(run_dir: Path) -> list[str]:
    """Compare every file listed in a run's ``manifest.json`` with its recorded SHA-256.

    Returns one line per file that is missing or changed (empty when all match).
    """
    import json

    from .errors import OutputError
    from .load import sha256_file

    manifest_path = Path(run_dir) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputError(f"{manifest_path}: cannot read the manifest ({exc}); give a complete run folder") from None
    expected = [(Path(f["path"]), f["sha256"]) for scene in manifest.get("inputs", []) for f in scene["files"]]
    expected += [(Path(run_dir) / o["path"], o["sha256"]) for o in manifest.get("outputs", [])]
    problems = []
    for path, digest in expected:
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif sha256_file(path) != digest:
            problems.append(f"changed: {path}")
    return problems
