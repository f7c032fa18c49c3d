"""Rules that keep the test suite easy to live in: no test module imports another.

A builder shared by several modules lives in ``tests/factories.py`` (or a fixture in
``tests/conftest.py``): importing one test module from another runs its module-level code,
collects its tests' names into a second namespace, and ties the two files' private helpers
together so that neither can change alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module name) of every import in the file, at any depth (functions included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def _offences(path: Path) -> list[str]:
    return [f"{path.name}:{line} imports {name}" for line, name in _imported_modules(path)
            if name.startswith("test_") or name == "conftest" or name.startswith(".")]


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda p: p.name)
def test_no_test_file_imports_a_test_module_or_conftest(path):
    # tests/fuzz_inputs.py is a script (`make fuzz`), not a test module: test_fuzz_smoke.py imports it
    # to run the harness itself, which is what it tests. Builders shared with tests live in factories.py.
    assert _offences(path) == []


def test_the_rule_sees_imports_at_any_depth(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text("import os\nfrom test_load import GRID\n\ndef helper():\n    import test_other\n    from conftest import X\n")
    assert _offences(bad) == ["test_bad.py:2 imports test_load", "test_bad.py:5 imports test_other",
                              "test_bad.py:6 imports conftest"]
