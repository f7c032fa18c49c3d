"""The layout is the architecture: rules on who imports whom and who touches files, read from the code.

Every import counts, those inside functions too: an import moved into a function to dodge a
cycle is still a dependency. The rules:

- ``stages/`` are pure functions on arrays: they import nothing from ``readers/``, ``outputs/``,
  ``provenance/``, ``sim/`` or ``bench/``, and open no file;
- the simulator is a wing of its own: only ``cli`` (the demo it runs when no scenes are
  registered) and ``bench/`` import ``sim/``; ``bench/`` is imported by ``cli`` alone;
- only ``readers/``, ``outputs/`` and ``provenance/`` touch files, and the few edge modules named
  in ``FILE_EDGES`` with their reason;
- no import cycle between modules, and no private name (``_name``) imported across modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _imports(name: str) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every import of a ``pipeline`` module in ``name``, wherever it stands."""
    found = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{name}: relative import (from {'.' * node.level}{node.module or ''}); write pipeline.x.y")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pipeline":
            names = [a.name for a in node.names]
            subs = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in MODULES]  # from pipeline.x import module
            found += [(s, []) for s in subs]
            if len(subs) < len(names):
                found.append((node.module, [n for n in names if f"{node.module}.{n}" not in MODULES]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "pipeline"]
    return found


def _in(name: str, *packages: str) -> bool:
    return any(name == f"pipeline.{p}" or name.startswith(f"pipeline.{p}.") for p in packages)


GRAPH = {name: sorted({m for m, _ in _imports(name) if m in MODULES and m != name}) for name in MODULES}


def test_every_module_is_in_the_graph():
    assert len(MODULES) > 40 and all(name.startswith("pipeline") for name in MODULES)


@pytest.mark.parametrize("name", [n for n in MODULES if _in(n, "stages")])
def test_stages_import_no_reader_output_simulator_or_benchmark(name):
    wrong = [m for m in GRAPH[name] if _in(m, "readers", "outputs", "provenance", "sim", "bench")]
    assert not wrong, f"{name} imports {wrong}"


def test_only_the_command_line_and_the_benchmark_import_the_simulator():
    importers = {n for n, deps in GRAPH.items() if any(_in(m, "sim") for m in deps)}
    assert importers - {"pipeline.cli"} == {n for n in importers if _in(n, "sim", "bench")}, importers


def test_only_the_command_line_imports_the_benchmark():
    importers = {n for n, deps in GRAPH.items() if any(_in(m, "bench") for m in deps) and not _in(n, "bench")}
    assert importers <= {"pipeline.cli"}, importers


# Calls and imports that read or write a file's contents.
_FILE_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "read_file", "to_file", "copyfile",
               "copy2", "copytree", "rmtree", "unlink", "mkdir", "touch"}
_FILE_MODULES = {"rasterio", "rasterio.io", "rasterio.vrt", "zipfile", "sqlite3", "shutil", "tempfile", "pyogrio", "fcntl"}

FILE_EDGES = {
    "pipeline.cli": "writes the private log file of an unexpected error (before any other module could)",
    "pipeline.aoi": "reads the AOI registry's own files, aoi/*.geojson",
    "pipeline.review": "reads and appends the analysts' decisions file, data/<aoi>/reviews.json",
    "pipeline.progress": "reads the process's own I/O counters, /proc/self/io, for a profiled run's bytes per stage",
    "pipeline.cores": "carries a background child's answer back in a file with no name (in memory on Linux)",
}
"""Modules outside readers/, outputs/ and provenance/ that touch files, each with its reason."""


def _from_the_package(name: str) -> set[str]:
    """Names ``name`` imports from ``pipeline`` modules: calling them is using a reader or writer, not touching files."""
    return {a.asname or a.name for node in ast.walk(TREES[name]) if isinstance(node, ast.ImportFrom)
            and node.module and node.module.split(".")[0] == "pipeline" for a in node.names}


def _touches_files(name: str) -> list[str]:
    found = []
    ours = _from_the_package(name)
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if isinstance(func, ast.Name) and called in ours:  # e.g. outputs.write.write_text(..., root=...)
                continue
            if called in _FILE_CALLS:
                found.append(f"line {node.lineno}: {called}()")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name in _FILE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in _FILE_MODULES:
            found.append(f"line {node.lineno}: from {node.module} import")
    return found


@pytest.mark.parametrize("name", [n for n in MODULES if not _in(n, "readers", "outputs", "provenance", "sim", "bench")
                                  and n not in FILE_EDGES])
def test_only_readers_outputs_and_provenance_touch_files(name):
    assert not _touches_files(name), f"{name} touches files: {_touches_files(name)}"


def test_the_file_edges_do_touch_files():
    """An edge listed for nothing would hide the next module that starts touching files."""
    assert all(_touches_files(name) for name in FILE_EDGES), [n for n in FILE_EDGES if not _touches_files(n)]


def test_no_import_cycle():
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in GRAPH[name]:
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep] if dep in path else [name, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[name] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles[:5])


def test_no_private_name_is_imported_across_modules():
    private = [(name, module, n) for name in MODULES for module, names in _imports(name) for n in names if n.startswith("_")]
    assert not private, [f"{name} imports {n} from {module}" for name, module, n in private][:20]


def test_the_architecture_page_lists_every_module():
    """docs/ARCHITECTURE.md is the map a newcomer reads first: a module it does not list is a module nobody can find."""
    import re

    page = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w/.]+)` \|", page, re.M))
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"} | {"readers/__init__.py"}
    assert not modules - listed and not listed - modules, (sorted(modules - listed), sorted(listed - modules))
