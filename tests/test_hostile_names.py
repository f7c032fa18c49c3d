"""Property tests: generated hostile names never become a path outside its folder.

Names are drawn from what attackers and careless exports produce: traversal (``..``, ``../x``),
absolute paths, both separators, unicode look-alikes of dots and slashes, NUL and control
characters, very long names, leading and trailing dots, names Windows reserves, and arbitrary
text. They are thrown at :func:`pipeline.names.safe_name`, :func:`pipeline.names.derived_name`,
:func:`pipeline.names.path_inside` and at the writer, in a sandbox whose root holds a link
pointing out of it: nothing is ever written outside the root. Bounded and derandomised so
they run in a few seconds with the rest of ``make test``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import OutputError, SceneError
from pipeline.names import MAX_NAME_CHARS, derived_name, path_inside, safe_name
from pipeline.outputs.write import copy_file, write_text

BOUNDED = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])
WRITES = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])

# Each refused for a reason safe_name must see; none of them is one plain, portable file name.
KNOWN_HOSTILE = [
    "", ".", "..", "...", "../x", "..\\x", "x/..", "/etc/passwd", "C:\\Windows", "C:x", "a/b/c", "a\\b",
    "x\x00y", "x\ny", "x\ty", "x\x7f", "\x1b[31mred",
    "\uff0e\uff0e", "\uff0e\uff0e\uff0fetc",  # full-width dots and slash
    "\u2215etc\u2215passwd", "a\u2044b", "a\u29f8b",  # division slash, fraction slash, big solidus
    "\u0430dmin", "ogot\u0430",  # Cyrillic 'a'
    "caf\u00e9", "a\u200bb", "a\u202eb",  # accented, zero-width space, right-to-left override
    "CON", "con", "con.txt", "NUL.json", "COM1", "LPT9.tif", "aux",
    "x" * (MAX_NAME_CHARS + 1), ".hidden", ".burnscan-unzipped", "trailing.", "-rf", " lead", "a b", "a:b", "a*b", "a?b",
    'a"b', "a<b>", "a|b", "~", "$HOME", "%TEMP%",
]

PIECES = ["..", ".", "", "/", "\\", "a", "B7", "x" * 120, "\x00", "\n", "\uff0e", "\uff0f", "\u2215", "CON", "-", "+",
          " ", "escape", "loop", "\u0430", "_", "~"]

names = st.one_of(
    st.sampled_from(KNOWN_HOSTILE),
    st.lists(st.sampled_from(PIECES), max_size=8).map("".join),
    st.text(max_size=40),  # arbitrary unicode; long names come from the pieces and the list above
    st.from_regex(r"[A-Za-z0-9._+-]{1,40}", fullmatch=True),  # mostly safe names, so both outcomes are exercised
)

SAFE = re.compile(r"(?![.-])[A-Za-z0-9._+-]+")  # the rule safe_name states: no leading dot or dash
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def _is_plain_name(name: str) -> bool:
    return (bool(SAFE.fullmatch(name)) and len(name) <= MAX_NAME_CHARS and not name.endswith(".")
            and name.split(".")[0].upper() not in RESERVED and Path(name).parts == (name,))


@pytest.mark.parametrize("name", KNOWN_HOSTILE)
def test_every_known_hostile_name_is_refused_in_one_line_naming_the_source(name):
    with pytest.raises(SceneError) as err:
        safe_name(name, what="STAC item id", source="item.json")
    message = str(err.value)
    assert message.startswith("item.json: STAC item id ") and "\n" not in message and len(message) < 400
    assert repr(name)[:20] in message  # the value is shown, cut short when long


@BOUNDED
@given(names)
@pytest.mark.slow
def test_safe_name_returns_a_plain_name_unchanged_or_refuses_it(name):
    try:
        kept = safe_name(name, what="scene id", source="x.json", error=OutputError)
    except OutputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("x.json: scene id ")
        assert not _is_plain_name(name)
        return
    assert kept == name and _is_plain_name(name)


@BOUNDED
@given(names, names)
def test_derived_names_are_plain_stable_and_keep_different_names_apart(a, b):
    da, db = derived_name(a), derived_name(b)
    assert _is_plain_name(da) and safe_name(da, what="name") == da
    assert derived_name(a) == da  # the same every time
    if _is_plain_name(a):
        assert da == a  # ordinary names are kept as they are
    if a != b:
        assert da != db


def _sandbox() -> tuple[Path, Path, Path]:
    """``(sandbox, root, outside)``: root holds ``escape``, a link to outside, and ``sub``."""
    sandbox = Path(tempfile.mkdtemp(prefix="burnscan-names-"))
    root, outside = sandbox / "root", sandbox / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "loop").symlink_to(root / "loop")
    return sandbox, root, outside


@BOUNDED
@given(st.lists(names, min_size=1, max_size=3))
@pytest.mark.slow
def test_path_inside_gives_a_path_inside_its_root_or_refuses(parts):
    sandbox, root, _ = _sandbox()
    try:
        path = path_inside(root, *parts, what="name")
    except SceneError as exc:
        assert "\n" not in str(exc)
    else:
        assert path.resolve().is_relative_to(root.resolve()) and path.resolve() != root.resolve()
        assert all(_is_plain_name(p) for p in parts) and "escape" not in parts
    finally:
        shutil.rmtree(sandbox)


def test_path_inside_refuses_a_link_that_leads_out_or_loops():
    sandbox, root, outside = _sandbox()
    with pytest.raises(SceneError, match="outside"):
        path_inside(root, "escape", "manifest.json")
    with pytest.raises(SceneError, match="loops"):
        path_inside(root, "loop", "manifest.json")
    with pytest.raises(OutputError, match="loops"):
        write_text(root / "loop" / "x.json", "{}", root=root)
    assert path_inside(root, "sub", "manifest.json") == root / "sub" / "manifest.json"
    assert not any(outside.iterdir())
    shutil.rmtree(sandbox)


relative_paths = st.lists(st.sampled_from(PIECES[:-2] + ["sub", "escape", "sub/..", "../root"]), min_size=1, max_size=8).map("".join)


@WRITES
@given(st.one_of(relative_paths, names, st.sampled_from(["/outside/x", "../outside/x", "escape/x", "escape/../x",
                                                         "sub/../../x", "sub/../escape/y", "..", ".", ""])))
def test_the_writer_never_writes_outside_its_root(relative):
    sandbox, root, outside = _sandbox()
    # An absolute path is drawn inside the sandbox, so that a broken check could only write there.
    target = outside / relative.lstrip("/") if relative.startswith("/") else root / relative
    try:
        try:
            written = write_text(target, "x", root=root)
        except OutputError as exc:
            assert "\n" not in str(exc)
        else:
            assert written.resolve().is_relative_to(root.resolve()) and written.read_text() == "x"
        assert sorted(p.name for p in sandbox.iterdir()) == ["outside", "root"]
        assert not any(outside.iterdir())
        assert not [p for p in root.rglob("*") if p.name.endswith(".burnscan-staging")]  # no staging left either
    finally:
        shutil.rmtree(sandbox)


def test_an_exclusive_write_never_replaces_a_file_and_leaves_nothing_behind():
    sandbox, root, _ = _sandbox()
    write_text(root / "kept.json", "first", root=root)
    source = root / "sub" / "other.json"
    write_text(source, "second", root=root)
    with pytest.raises(OutputError, match="never written over"):
        copy_file(source, root / "kept.json", root=root, exclusive=True)
    assert (root / "kept.json").read_text() == "first"
    assert copy_file(source, root / "new.json", root=root, exclusive=True).read_text() == "second"
    assert sorted(p.name for p in root.iterdir()) == ["escape", "kept.json", "loop", "new.json", "sub"]
    shutil.rmtree(sandbox)
