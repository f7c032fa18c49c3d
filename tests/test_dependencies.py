"""Dependencies are declared, minimal and pinned: every import is in pyproject.toml, the packages of
one command are extras imported only where that command runs, and requirements.lock says what is
installed.

Imports are read from the code (ast), every one of them, those inside functions too, and mapped
to the distribution that provides them (``importlib.metadata.packages_distributions``), so a
module that starts using a package nobody declared fails here rather than on a fresh clone.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from pipeline.errors import PipelineError

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
CORE = PYPROJECT["project"]["dependencies"]
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
EXTRA_EXIT = 10
"""Exit code of a command whose extra is not installed (``pipeline.errors.ExtraError``)."""
COMMAND_EXTRAS = {"batch": "distributed", "fetch": "pystac_client"}
"""The extra of each command-specific package, by the name it is imported as."""


def _normalise(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): case and runs of ``-_.`` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings (``folium>=0.15`` -> ``folium``); extras of burnscan itself left out."""
    names = {_normalise(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip()).group()) for r in requirements}
    return names - {"burnscan"}


DECLARED_CORE = _names(CORE)
DECLARED_ALL = DECLARED_CORE | {n for reqs in EXTRAS.values() for n in _names(reqs)}
PROVIDERS = packages_distributions()


def _third_party_imports(folder: Path, *, module_level_only: bool = False) -> dict[str, list[str]]:
    """Top-level names of the modules imported by the ``.py`` files under ``folder``, with where.

    Not counted: the standard library, ``pipeline`` itself, relative imports and modules that are
    files of ``folder`` (tests import their helpers by name). With ``module_level_only``, imports
    run when a module is imported: outside functions and ``if TYPE_CHECKING:`` blocks.
    """
    local = {p.stem for p in folder.rglob("*.py")} | {p.name for p in folder.rglob("*") if p.is_dir()}
    found: dict[str, list[str]] = {}

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if module_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(ast.Module(body=child.orelse, type_ignores=[]), where)
                continue
            modules = []
            if isinstance(child, ast.Import):
                modules = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and not child.level and child.module:
                modules = [child.module]
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "pipeline" and top not in local:
                    found.setdefault(top, []).append(f"{where}:{child.lineno}")
            visit(child, where)

    for path in sorted(folder.rglob("*.py")):
        visit(ast.parse(path.read_text(encoding="utf-8")), str(path.relative_to(REPO)))
    return found


def _undeclared(imports: dict[str, list[str]], declared: set[str]) -> list[str]:
    """Imports that no declared distribution provides, each with its first place and its providers."""
    wrong = []
    for module, places in sorted(imports.items()):
        providers = {_normalise(d) for d in PROVIDERS.get(module, [module])}  # not installed: its own name
        if not providers & declared:
            wrong.append(f"{module} (from {' or '.join(sorted(providers))}; imported at {places[0]})")
    return wrong


def test_every_import_of_the_package_is_declared():
    imports = _third_party_imports(REPO / "pipeline")
    assert {"numpy", "rasterio", "pandas", "affine"} <= set(imports), sorted(imports)  # the scan sees the code
    wrong = _undeclared(imports, DECLARED_ALL)
    assert not wrong, f"imported but not declared in pyproject.toml: {wrong}"


def test_every_import_of_the_tests_is_declared():
    imports = _third_party_imports(REPO / "tests")
    assert {"pytest", "hypothesis"} <= set(imports), sorted(imports)
    wrong = _undeclared(imports, DECLARED_ALL)
    assert not wrong, f"imported by the tests but not declared in pyproject.toml: {wrong}"


def test_importing_the_package_needs_no_extra():
    """Whatever a module imports when it is imported is a core dependency; extras wait for their command."""
    imports = _third_party_imports(REPO / "pipeline", module_level_only=True)
    wrong = _undeclared(imports, DECLARED_CORE)
    assert not wrong, f"imported when the package is imported, but not a core dependency: {wrong}"


def test_starting_a_command_loads_no_drawing_and_no_signal_processing():
    """Every command starts by importing the command line; what only drawing (matplotlib: a third of a second) or the
    sky stage's shadow matching (scipy.signal, which loads scipy.stats: half a second) needs is loaded where it runs,
    so that `burnscan verify`, a refusal or a run whose figures are all kept does not wait for it."""
    code = ("import sys, pipeline.cli; "
            "print(sorted({m.split('.')[0] + ('.signal' if m.startswith('scipy.signal') else '') for m in sys.modules "
            "if m.startswith(('matplotlib', 'scipy.signal', 'scipy.stats'))}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_starting_a_command_loads_no_stage_and_the_package_still_offers_the_flow():
    """`import pipeline.cli` took 1.2-1.8 s while the package loaded the flow (every stage, scikit-image,
    geopandas) for commands such as `verify` that never run it; the flow's names load on first use."""
    code = ("import sys, pipeline.cli; loaded = sorted(m for m in sys.modules if m.startswith(('pipeline.run', "
            "'pipeline.stages', 'skimage', 'geopandas'))); import pipeline; from pipeline import run_detect, apply; "
            "print(loaded, run_detect.__module__, apply is sys.modules['pipeline.run'].apply)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[] pipeline.run True", done.stdout
    with pytest.raises(AttributeError, match="no attribute 'detect'"):
        import pipeline

        pipeline.detect  # noqa: B018


def test_command_packages_are_extras_not_core():
    for extra, module in COMMAND_EXTRAS.items():
        distribution = _normalise(module)
        assert distribution in _names(EXTRAS[extra]) and distribution not in DECLARED_CORE, (extra, module)
    assert "rioxarray" not in DECLARED_ALL  # nothing imports it
    assert EXTRAS["all"] == ["burnscan[batch,fetch,test]"]  # what make installs: every command and the tests
    # The review map is the offline review page now: folium (Leaflet, jQuery and Bootstrap from CDNs) is no dependency.
    assert "folium" not in DECLARED_ALL and "review" not in EXTRAS


def test_every_dependency_keeps_a_comment_saying_why():
    lines = [line.strip() for line in (REPO / "pyproject.toml").read_text(encoding="utf-8").splitlines()]
    start, end = lines.index("dependencies = ["), lines.index("[project.scripts]")
    requirements = [i for i in range(start, end) if lines[i].startswith('"') or re.match(r'[a-z]+ = \["[a-z]', lines[i])]
    assert len(requirements) == len(CORE) + sum(len(r) for r in EXTRAS.values())  # every requirement line was found
    missing = [lines[i] for i in requirements if not lines[i - 1].startswith("#")]
    assert not missing, f"dependencies without a comment on the line above saying why: {missing}"


_BLOCKER = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # what `import name` meets where the extra is not installed
"""


@pytest.mark.slow
def test_the_package_and_its_command_line_work_without_the_extras():
    """Every module imports, and ``burnscan --help`` runs, with distributed and pystac_client absent."""
    code = _BLOCKER.format(blocked=list(COMMAND_EXTRAS.values())) + """
import importlib, pkgutil, pipeline
names = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")]
for name in names:
    importlib.import_module(name)
from pipeline.cli import main
print(len(names), "modules")
sys.exit(main(["--help"]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "modules" in done.stdout and int(done.stdout.split(" modules")[0]) > 40
    assert "detect" in done.stdout and "fetch" in done.stdout


def _without(monkeypatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_detect_all_without_distributed_says_which_extra(monkeypatch, capsys, tmp_path):
    from pipeline.cli import main

    _without(monkeypatch, "distributed")
    (tmp_path / "aoi").mkdir()
    code = main(["detect", "--all", "--aoi-dir", str(tmp_path / "aoi"), "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data")])
    err = _one_line_error(capsys)
    assert code == EXTRA_EXIT
    assert err.startswith("burnscan: error: burnscan detect --all needs the Python package distributed, which is not installed")
    assert "pip install 'burnscan[batch]'" in err and "make" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aoi"]  # nothing written


def test_fetch_without_pystac_client_says_which_extra_before_any_search(monkeypatch, capsys, tmp_path):
    from pipeline.cli import main

    _without(monkeypatch, "pystac_client")
    code = main(["fetch", "ogota", "--start", "2024-01-20", "--end", "2024-02-05", "--api", "http://127.0.0.1:9/unreachable",
                 "--data", str(tmp_path / "data")])
    err = _one_line_error(capsys)
    assert code == EXTRA_EXIT
    assert "burnscan fetch needs the Python package pystac-client" in err and "pip install 'burnscan[fetch]'" in err
    assert "STAC search failed" not in err  # the fix, not a network failure
    assert not (tmp_path / "data").exists()


def test_lock_pins_every_declared_package_with_hashes():
    text = (REPO / "requirements.lock").read_text(encoding="utf-8")
    assert "CPython 3.11 on Linux x86_64" in " ".join(text.splitlines()[:3])  # the header says which machines it is for
    pins = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", text, flags=re.M))
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    unhashed = [e.split()[0] for e in entries[1:] if "==" in e.split()[0] and "--hash=sha256:" not in e]
    assert not unhashed, f"pinned without a hash: {unhashed}"
    assert not re.search(r"^[A-Za-z0-9][^=\n]* @ ", text, flags=re.M), "a package by URL or path cannot be hashed"
    locked = {_normalise(n) for n in pins}
    assert DECLARED_ALL <= locked, f"declared but not in the lock (run make lock): {sorted(DECLARED_ALL - locked)}"
    assert "rioxarray" not in locked


def test_manifest_versions_record_the_lock(monkeypatch):
    import jsonschema

    from pipeline.provenance import versions

    recorded = versions.package_versions()
    lock = REPO / "requirements.lock"
    assert recorded["requirements.lock"] == f"sha256:{hashlib.sha256(lock.read_bytes()).hexdigest()}"
    schema = json.loads((REPO / "pipeline" / "provenance" / "manifest.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(recorded, schema["properties"]["versions"])  # an optional key of manifest_version 1
    monkeypatch.setattr(versions, "_LOCK", REPO / "no-such.lock")
    assert "requirements.lock" not in versions.package_versions()  # installed as a package: nothing to hash


def test_a_missing_extra_is_an_import_error_with_its_own_exit_code():
    from pipeline import errors

    codes = {cls.exit_code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, PipelineError)}
    assert errors.ExtraError.exit_code == EXTRA_EXIT and len(codes) == len(
        [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, PipelineError)])  # each code says one thing
    assert issubclass(errors.ExtraError, ImportError)  # callers that catch ImportError keep working


@pytest.mark.parametrize("asked, expected", [(None, "False"), ("1", "True")])
def test_the_command_asks_numpy_for_small_pages_unless_told_otherwise(asked, expected):
    """`burnscan` sets numpy's page policy before numpy is imported (pipeline/__init__.py); an explicit setting wins."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if asked is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = asked
    probe = "import pipeline.cli; from numpy._core.multiarray import _get_madvise_hugepage as h; print(h())"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
