"""A short, replayable run of ``make fuzz`` on every target: mutated scenes, STAC items, AOI files, manifests.

The full fuzz runs for minutes on random seeds (``make fuzz``); this fixed-seed sample keeps the
harness itself working and catches the commonest regressions in ``make test``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_inputs  # noqa: E402


@pytest.mark.parametrize("target", fuzz_inputs.TARGETS)
@pytest.mark.slow
def test_fixed_seed_fuzz_finds_no_defect(target, tmp_path, capsys):
    code = fuzz_inputs.main(["--cases", "40", "--seed", "20240127", "--target", target, "--out", str(tmp_path / "kept")])
    printed = capsys.readouterr().out
    assert "0 defects" in printed and code == 0, printed
